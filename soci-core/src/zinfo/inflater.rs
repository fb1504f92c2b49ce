//! A safe owner of one zlib inflate stream, exposing the block-mode calls checkpoints need.

use libz_rs_sys as zlib;

use crate::{Error, Result};

/// An owned zlib inflate stream.
pub(crate) struct Inflater {
    // Boxed: zlib keeps a pointer from its state back to the stream, so it must not move.
    stream: Box<zlib::z_stream>,
}

/// What one call to [`Inflater::inflate`] did.
pub(crate) struct InflateStep {
    pub code: i32,
    pub consumed: usize,
    pub produced: usize,
    pub data_type: i32,
}

impl Inflater {
    /// `window_bits`: 31 for gzip only, -15 for raw deflate.
    pub(crate) fn new(window_bits: i32) -> Result<Self> {
        let mut stream = Box::new(zlib::z_stream::default());
        // SAFETY: `stream` is a zeroed, boxed z_stream; the version and size are the library's own.
        let code = unsafe {
            zlib::inflateInit2_(
                &mut *stream,
                window_bits,
                zlib::zlibVersion(),
                std::mem::size_of::<zlib::z_stream>() as i32,
            )
        };
        if code != zlib::Z_OK {
            return Err(Error::Rejected(format!(
                "inflateInit2 failed with zlib code {code}"
            )));
        }
        Ok(Self { stream })
    }

    pub(crate) fn inflate(&mut self, input: &[u8], output: &mut [u8], flush: i32) -> InflateStep {
        let avail_in = input.len().min(u32::MAX as usize);
        let avail_out = output.len().min(u32::MAX as usize);
        self.stream.next_in = input.as_ptr();
        self.stream.avail_in = avail_in as u32;
        self.stream.next_out = output.as_mut_ptr();
        self.stream.avail_out = avail_out as u32;
        // SAFETY: next_in/next_out point into live slices of at least avail_in/avail_out bytes
        // for the duration of the call; the stream was initialised by inflateInit2_.
        let code = unsafe { zlib::inflate(&mut *self.stream, flush) };
        let consumed = avail_in - self.stream.avail_in as usize;
        let produced = avail_out - self.stream.avail_out as usize;
        self.stream.next_in = std::ptr::null();
        self.stream.next_out = std::ptr::null_mut();
        InflateStep {
            code,
            consumed,
            produced,
            data_type: self.stream.data_type,
        }
    }

    pub(crate) fn reset(&mut self) -> Result<()> {
        // SAFETY: initialised stream.
        let code = unsafe { zlib::inflateReset(&mut *self.stream) };
        zlib_ok(code, "inflateReset")
    }

    pub(crate) fn prime(&mut self, bits: u8, value: u8) -> Result<()> {
        // SAFETY: initialised stream; bits is 1..=7.
        let code =
            unsafe { zlib::inflatePrime(&mut *self.stream, i32::from(bits), i32::from(value)) };
        zlib_ok(code, "inflatePrime")
    }

    pub(crate) fn set_dictionary(&mut self, window: &[u8]) -> Result<()> {
        // SAFETY: initialised raw stream; the pointer/length describe a live slice.
        let code = unsafe {
            zlib::inflateSetDictionary(&mut *self.stream, window.as_ptr(), window.len() as u32)
        };
        zlib_ok(code, "inflateSetDictionary")
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: the stream was initialised by inflateInit2_ and is ended exactly once.
        unsafe {
            zlib::inflateEnd(&mut *self.stream);
        }
    }
}

fn zlib_ok(code: i32, what: &str) -> Result<()> {
    if code == zlib::Z_OK {
        Ok(())
    } else {
        Err(Error::Rejected(format!(
            "{what} failed with zlib code {code}"
        )))
    }
}
