//! The consumer's checks on a zTOC against its layer, and random-access extraction.

use crate::{Error, Result};

/// Random access to a layer blob (a file, bytes in memory, ranged HTTP reads).
pub trait LayerSource {
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fills `buf` from `offset`; an error if the range is not entirely inside the layer.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;
}

impl LayerSource for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let start = usize::try_from(offset).map_err(std::io::Error::other)?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

impl LayerSource for std::fs::File {
    fn len(&self) -> u64 {
        self.metadata().map(|m| m.len()).unwrap_or(0)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

/// What [`verify`] found; empty `problems` means a consumer would accept every file.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    pub problems: Vec<String>,
    pub entries_checked: usize,
    pub spans_checked: usize,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Runs the consumer's checks (format doc section 9) of `ztoc` against `layer`.
pub fn verify(ztoc: &[u8], layer: &dyn LayerSource) -> Result<VerifyReport> {
    let _ = (ztoc, layer);
    Err(Error::InvalidArgument("verify: not implemented yet".into()))
}

/// Extracts the content of the regular file `path` through `ztoc` with ranged reads of `layer`.
pub fn extract_file(ztoc: &[u8], layer: &dyn LayerSource, path: &str) -> Result<Vec<u8>> {
    let _ = (ztoc, layer, path);
    Err(Error::InvalidArgument("extract_file: not implemented yet".into()))
}
