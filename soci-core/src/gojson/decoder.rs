//! The decoder over validated bytes (Go's `decodeState`): moving through values and skipping
//! them. Typed decoding is in `typed.rs`.

use super::syntax::is_json_whitespace;
use super::unquote::unquote_body;
use super::{JsonError, JsonErrorKind};

/// The kind of the next JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

impl ValueKind {
    /// How Go's `UnmarshalTypeError` names a JSON value of this kind.
    pub(super) fn go_description(self) -> &'static str {
        match self {
            ValueKind::Object => "object",
            ValueKind::Array => "array",
            ValueKind::String => "string",
            ValueKind::Number => "number",
            ValueKind::Bool => "bool",
            ValueKind::Null => "null",
        }
    }
}

/// A Go struct type as the decoder sees it: its name for error messages and its JSON keys.
pub struct GoStruct {
    /// Go type name without package (`Descriptor`), used in "Go struct field X.path".
    pub name: &'static str,
    /// Go type with package (`v1.Descriptor`), used in "of type ...".
    pub go_type: &'static str,
    /// JSON keys of the fields, in struct order.
    pub fields: &'static [&'static str],
}

/// Walks a document already accepted by [`validate`](super::validate). Typed decoders pull values from it with Go
/// semantics. Every method still returns errors instead of panicking if fed unvalidated bytes.
pub struct Decoder<'a> {
    pub(super) input: &'a [u8],
    pub(super) pos: usize,
    pub(super) struct_name: Option<&'static str>,
    pub(super) field_path: Vec<&'static str>,
}

impl<'a> Decoder<'a> {
    /// A decoder at the start of `input`. Call [`validate`](super::validate) first: the decoder trusts the syntax
    /// (it never panics on bad syntax, but its error messages are Go's only for valid JSON).
    pub fn new(input: &'a [u8]) -> Self {
        Self {
            input,
            pos: 0,
            struct_name: None,
            field_path: Vec::new(),
        }
    }

    /// Current byte offset.
    pub fn offset(&self) -> usize {
        self.pos
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    pub(super) fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(is_json_whitespace) {
            self.pos += 1;
        }
    }

    pub(super) fn malformed(&self, what: &str) -> JsonError {
        JsonError::syntax(format!("malformed JSON: {what}"), self.pos)
    }

    /// Kind of the next value (after whitespace), `None` at end of input.
    pub fn peek_kind(&mut self) -> Option<ValueKind> {
        self.skip_whitespace();
        match self.peek()? {
            b'{' => Some(ValueKind::Object),
            b'[' => Some(ValueKind::Array),
            b'"' => Some(ValueKind::String),
            b'-' | b'0'..=b'9' => Some(ValueKind::Number),
            b't' | b'f' => Some(ValueKind::Bool),
            b'n' => Some(ValueKind::Null),
            _ => None,
        }
    }

    /// A Go `UnmarshalTypeError` for the value at the current position, then skips it (Go
    /// records the first such error and keeps going; we stop at the first, which yields the same
    /// message because Go reports the first one).
    pub(super) fn type_error(&mut self, value_description: String, go_type: &str) -> JsonError {
        let offset = self.pos;
        let message = match self.struct_name {
            Some(struct_name) if !self.field_path.is_empty() => format!(
                "json: cannot unmarshal {value_description} into Go struct field {struct_name}.{} of type {go_type}",
                self.field_path.join(".")
            ),
            _ => format!(
                "json: cannot unmarshal {value_description} into Go value of type {go_type}"
            ),
        };
        JsonError {
            message,
            offset,
            kind: JsonErrorKind::Type,
        }
    }

    pub(super) fn type_error_here(&mut self, go_type: &str) -> JsonError {
        let description = self
            .peek_kind()
            .map_or("value", ValueKind::go_description)
            .to_string();
        self.type_error(description, go_type)
    }

    /// Consumes `null`.
    pub(super) fn read_null(&mut self) -> Result<(), JsonError> {
        self.skip_whitespace();
        if self.input.get(self.pos..self.pos + 4) == Some(b"null") {
            self.pos += 4;
            Ok(())
        } else {
            Err(self.malformed("expected null"))
        }
    }

    /// Reads a string value (decoded with Go's rules).
    pub fn read_string(&mut self) -> Result<String, JsonError> {
        self.skip_whitespace();
        if self.peek() != Some(b'"') {
            return Err(self.malformed("expected a string"));
        }
        let body_start = self.pos + 1;
        let mut cursor = body_start;
        loop {
            match self.input.get(cursor) {
                None => return Err(self.malformed("unterminated string")),
                Some(b'"') => break,
                Some(b'\\') => cursor += 2,
                Some(_) => cursor += 1,
            }
        }
        let body = self.input.get(body_start..cursor).unwrap_or_default();
        let decoded = unquote_body(body).map_err(|err| JsonError {
            offset: body_start + err.offset,
            ..err
        })?;
        self.pos = cursor + 1;
        Ok(decoded)
    }

    /// Reads a number literal as written.
    pub(super) fn read_number_literal(&mut self) -> Result<&'a str, JsonError> {
        self.skip_whitespace();
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
        {
            self.pos += 1;
        }
        let literal = self.input.get(start..self.pos).unwrap_or_default();
        std::str::from_utf8(literal).map_err(|_| self.malformed("number"))
    }

    /// Skips one value of any kind. Iterative, so deep nesting cannot overflow the stack.
    pub fn skip_value(&mut self) -> Result<(), JsonError> {
        self.skip_whitespace();
        let mut depth = 0usize;
        loop {
            match self.peek() {
                None => return Err(self.malformed("unexpected end while skipping a value")),
                Some(b'"') => {
                    self.read_string()?;
                }
                Some(b'{' | b'[') => {
                    depth += 1;
                    self.pos += 1;
                }
                Some(b'}' | b']') => {
                    depth = depth.saturating_sub(1);
                    self.pos += 1;
                }
                Some(b',' | b':') if depth > 0 => self.pos += 1,
                Some(_) => {
                    // A number or literal: consume the whole token.
                    let start = self.pos;
                    while self.peek().is_some_and(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.')
                    }) {
                        self.pos += 1;
                    }
                    if self.pos == start {
                        return Err(self.malformed("unexpected byte while skipping a value"));
                    }
                }
            }
            if depth == 0 {
                return Ok(());
            }
            // Inside a container: move past whitespace to the next token.
            self.skip_whitespace();
        }
    }
}
