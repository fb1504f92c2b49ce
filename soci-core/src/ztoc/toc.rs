//! Tar entries to TOC entries, noting what a consumer could not read (FORMAT.md section 8) and
//! whether the layer may carry the disable-xattrs annotation.

use std::io::BufRead;

use super::packed::PackedToc;
use super::write::TocSize;
use super::{FileMetadata, MemoryBudget, OverBudget};
use crate::tar::{self, TarReader};
use crate::{Error, Result};

/// The reference's name for a tar type, or the error it fails the layer with.
pub(crate) fn type_name(typeflag: u8) -> Result<&'static str> {
    Ok(match typeflag {
        tar::TYPE_LINK => "hardlink",
        tar::TYPE_SYMLINK => "symlink",
        tar::TYPE_DIR => "dir",
        tar::TYPE_REG => "reg",
        tar::TYPE_CHAR => "char",
        tar::TYPE_BLOCK => "block",
        tar::TYPE_FIFO => "fifo",
        other => {
            return Err(Error::Rejected(format!(
                "unsupported input tar entry {:?}",
                char::from(other)
            )));
        }
    })
}

/// Turns tar entries into TOC entries, noting what a consumer could not read.
#[derive(Default)]
pub(super) struct TocCollector {
    pub(super) entries: PackedToc,
    pub(super) unindexable: Vec<String>,
    pub(super) xattrs_disableable: bool,
    /// Upper bound of the serialized TOC so far (the budget's unit, the writer's capacity).
    pub(super) size: TocSize,
}

impl TocCollector {
    pub(super) fn collect<R: BufRead>(
        &mut self,
        tar: &mut TarReader<R>,
        budget: &MemoryBudget,
    ) -> Result<()> {
        self.xattrs_disableable = true;
        while let Some(entry) = tar.next_entry()? {
            if self.entries.len() as u64 >= budget.max_entries {
                return Err(OverBudget::limit(
                    "max_entries",
                    budget.max_entries,
                    self.entries.len() as u64 + 1,
                    format_args!("entry at uncompressed offset {}", entry.header_offset),
                )
                .into());
            }
            let file_type = type_name(entry.typeflag)?;
            let name = String::from_utf8_lossy(&entry.name).into_owned();
            let mod_time = entry.mod_time.to_rfc3339_utc();
            if entry.sparse {
                self.unindexable
                    .push(format!("{name:?} is a GNU sparse file"));
            }
            if entry.is_header_only() && entry.size != 0 {
                self.unindexable.push(format!(
                    "{name:?} is a {file_type} entry with a non-zero size field ({})",
                    entry.size
                ));
            }
            if mod_time.is_none() {
                self.unindexable.push(format!(
                    "{name:?} has a modification time outside years 0..9999"
                ));
            }
            for (what, id) in [("uid", entry.uid), ("gid", entry.gid)] {
                if u32::try_from(id).is_err() {
                    self.unindexable
                        .push(format!("{name:?} has {what} {id}, outside 0..2^32-1"));
                }
            }
            if super::needs_xattr_lookups(&entry.name, entry.pax_records.keys().map(Vec::as_slice))
            {
                self.xattrs_disableable = false;
            }
            let metadata = FileMetadata {
                name: entry.name,
                file_type: file_type.as_bytes().to_vec(),
                uncompressed_offset: entry.data_offset as i64,
                uncompressed_size: entry.size,
                linkname: entry.linkname,
                mode: entry.mode,
                uid: entry.uid as u32,
                gid: entry.gid as u32,
                uname: entry.uname,
                gname: entry.gname,
                mod_time: mod_time.unwrap_or_default().into_bytes(),
                devmajor: entry.devmajor,
                devminor: entry.devminor,
                xattrs: entry.pax_records.into_iter().collect(),
            };
            self.size.add(&metadata);
            if self.size.bytes > budget.max_toc_bytes {
                return Err(OverBudget::limit(
                    "max_toc_bytes",
                    budget.max_toc_bytes,
                    self.size.bytes,
                    format_args!(
                        "entry {} {:?} at uncompressed offset {}",
                        self.entries.len(),
                        String::from_utf8_lossy(&metadata.name),
                        metadata.uncompressed_offset
                    ),
                )
                .into());
            }
            self.entries.push(&metadata);
        }
        Ok(())
    }
}
