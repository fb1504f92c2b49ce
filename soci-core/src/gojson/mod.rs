//! JSON exactly as Go's `encoding/json` reads and writes it.
//!
//! Why not serde_json: a SOCI index is only usable if its bytes equal Go's re-encoding of it
//! (FORMAT.md section 6), and Go differs from serde_json in ways that change bytes or
//! acceptance: HTML characters and U+2028/U+2029 are escaped, invalid UTF-8 and lone surrogate
//! escapes become U+FFFD one byte at a time, object keys match struct fields case-insensitively,
//! duplicate keys merge into the value decoded so far, and numbers for integer fields must be
//! integer literals.
//!
//! The decoder works like Go's: the whole document is first checked for syntax by an iterative
//! scanner (so no input can exhaust the stack; nesting is capped at Go's 10,000 levels), then a
//! [`Decoder`] walks the checked bytes and the typed structs in [`crate::oci`] pull the fields they
//! know, skipping the rest. Nothing here panics on any input: every malformed input is a
//! [`JsonError`] naming what is wrong and the byte offset.

/// Go's scanner refuses documents nested deeper than this (`maxNestingDepth`).
pub const MAX_NESTING_DEPTH: usize = 10_000;

/// A JSON document Go's `json.Unmarshal` would refuse, with the byte offset of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at byte {offset})")]
pub struct JsonError {
    message: String,
    offset: usize,
    kind: JsonErrorKind,
}

/// The broad class of a [`JsonError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonErrorKind {
    /// Not JSON at all (Go's `*json.SyntaxError`).
    Syntax,
    /// Valid JSON whose value does not fit the Go field (Go's `*json.UnmarshalTypeError`).
    Type,
    /// A `[]byte` field holding a string that is not standard padded base64.
    Base64,
}

impl JsonError {
    /// The text Go's error would print (`err.Error()`), without our offset suffix.
    pub fn go_message(&self) -> &str {
        &self.message
    }

    /// Byte offset in the input where the problem was found.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Syntax, type or base64 problem.
    pub fn kind(&self) -> JsonErrorKind {
        self.kind
    }

    fn syntax(message: String, offset: usize) -> Self {
        Self {
            message,
            offset,
            kind: JsonErrorKind::Syntax,
        }
    }
}

mod decoder;
mod encode;
mod slice;
mod syntax;
mod typed;
mod unquote;

pub use decoder::{Decoder, GoStruct, ValueKind};
pub use encode::{ObjectWriter, encode_string, write_base64, write_string, write_string_bytes};
pub use slice::GoSlice;
pub use syntax::validate;
pub use typed::decode_string_document;
pub use unquote::unquote_body;
