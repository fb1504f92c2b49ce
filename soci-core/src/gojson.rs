//! JSON exactly as Go's `encoding/json` reads and writes it.
//!
//! Why not serde_json: a SOCI index is only usable if its bytes equal Go's re-encoding of it
//! (`format doc` section 6), and Go differs from serde_json in ways that change bytes or
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

use std::collections::BTreeMap;

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

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string the way Go's `json.Marshal` writes a Go string (HTML escaping on).
pub fn write_string(out: &mut Vec<u8>, s: &str) {
    write_string_bytes(out, s.as_bytes());
}

/// Appends arbitrary bytes as a JSON string the way Go writes a Go `string` holding them:
/// each byte of invalid UTF-8 becomes the escape `\ufffd` (while a genuine U+FFFD stays raw).
pub fn write_string_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let mut rest = bytes;
    while !rest.is_empty() {
        let (valid, invalid_len) = match std::str::from_utf8(rest) {
            Ok(valid) => (valid, 0),
            Err(err) => {
                let (valid, _) = rest.split_at(err.valid_up_to());
                // Only the valid prefix is kept; `from_utf8` on it cannot fail.
                (std::str::from_utf8(valid).unwrap_or_default(), 1)
            }
        };
        write_escaped_str(out, valid);
        let consumed = valid.len() + invalid_len;
        if invalid_len > 0 {
            // Go's utf8.DecodeRuneInString reports every invalid sequence as one byte long.
            out.extend_from_slice(b"\\ufffd");
        }
        rest = rest.get(consumed..).unwrap_or_default();
    }
    out.push(b'"');
}

fn write_escaped_str(out: &mut Vec<u8>, s: &str) {
    for ch in s.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            // Go 1.22+ writes \b and \f in short form (older Go wrote \u0008 and \u000c).
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            // HTML-sensitive characters: json.Marshal always uses HTMLEscape-safe output.
            '<' | '>' | '&' | '\u{0}'..='\u{1f}' => {
                let code = ch as u32;
                out.extend_from_slice(b"\\u00");
                out.push(HEX_DIGITS[((code >> 4) & 0xf) as usize]);
                out.push(HEX_DIGITS[(code & 0xf) as usize]);
            }
            // JavaScript line terminators, escaped so the output is valid JSONP.
            '\u{2028}' => out.extend_from_slice(b"\\u2028"),
            '\u{2029}' => out.extend_from_slice(b"\\u2029"),
            _ => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

/// The JSON string literal Go writes for `s` (convenience over [`write_string`]).
pub fn encode_string(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    write_string(&mut out, s);
    out
}

/// Appends standard padded base64, as Go writes a `[]byte` field.
pub fn write_base64(out: &mut Vec<u8>, data: &[u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out.push(b'"');
    for chunk in data.chunks(3) {
        let b0 = chunk.first().copied().unwrap_or(0);
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let triple = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        let sextet = |shift: u32| ALPHABET[((triple >> shift) & 0x3f) as usize];
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { b'=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { b'=' });
    }
    out.push(b'"');
}

/// Writes one JSON object field by field, in the order the caller chooses (Go struct order).
pub struct ObjectWriter<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

impl<'o> ObjectWriter<'o> {
    /// Opens the object (`{`).
    pub fn new(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, first: true }
    }

    /// Writes `"key":` (with the separating comma) and returns the buffer for the value.
    pub fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_string(self.out, key);
        self.out.push(b':');
        self.out
    }

    /// `"key":"value"`.
    pub fn string(&mut self, key: &str, value: &str) {
        let out = self.key(key);
        write_string(out, value);
    }

    /// `"key":"value"` unless `value` is empty (Go `omitempty` on a string).
    pub fn string_omitempty(&mut self, key: &str, value: &str) {
        if !value.is_empty() {
            self.string(key, value);
        }
    }

    /// `"key":123`.
    pub fn int(&mut self, key: &str, value: i64) {
        let out = self.key(key);
        out.extend_from_slice(value.to_string().as_bytes());
    }

    /// `"key":["a","b"]` unless empty (Go `omitempty` on a `[]string`).
    pub fn strings_omitempty(&mut self, key: &str, values: &[String]) {
        if values.is_empty() {
            return;
        }
        let out = self.key(key);
        out.push(b'[');
        for (position, value) in values.iter().enumerate() {
            if position > 0 {
                out.push(b',');
            }
            write_string(out, value);
        }
        out.push(b']');
    }

    /// A `map[string]string` with `omitempty`: keys sorted bytewise, as Go sorts map keys.
    pub fn string_map_omitempty(&mut self, key: &str, map: &BTreeMap<String, String>) {
        if map.is_empty() {
            return;
        }
        let out = self.key(key);
        // BTreeMap<String, _> iterates in `str` order, which is bytewise order.
        let mut inner = ObjectWriter::new(out);
        for (map_key, value) in map {
            inner.string(map_key, value);
        }
        inner.finish();
    }

    /// A `[]byte` with `omitempty`, as base64.
    pub fn bytes_omitempty(&mut self, key: &str, data: &[u8]) {
        if !data.is_empty() {
            let out = self.key(key);
            write_base64(out, data);
        }
    }

    /// Closes the object (`}`).
    pub fn finish(self) {
        self.out.push(b'}');
    }
}

// ---------------------------------------------------------------------------------------------
// Syntax check (Go's checkValid)
// ---------------------------------------------------------------------------------------------

/// Go's `quoteChar`: how a byte is shown in a syntax error message.
fn quote_char(byte: u8) -> String {
    match byte {
        b'\'' => "'\\''".to_string(),
        b'"' => "'\"'".to_string(),
        0x07 => "'\\a'".to_string(),
        0x08 => "'\\b'".to_string(),
        0x0c => "'\\f'".to_string(),
        b'\n' => "'\\n'".to_string(),
        b'\r' => "'\\r'".to_string(),
        b'\t' => "'\\t'".to_string(),
        0x0b => "'\\v'".to_string(),
        0x20..=0x7e => format!("'{}'", byte as char),
        0x00..=0x1f | 0x7f => format!("'\\x{byte:02x}'"),
        // Go converts the byte to the rune U+00XX; printable Latin-1 letters show as themselves.
        0xa1..=0xac | 0xae..=0xff => format!("'{}'", char::from(byte)),
        _ => format!("'\\u{:04x}'", u32::from(byte)),
    }
}

fn is_json_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

#[derive(Clone, Copy)]
enum Container {
    Object,
    Array,
}

struct Scanner<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(is_json_whitespace) {
            self.pos += 1;
        }
    }

    fn unexpected_end(&self) -> JsonError {
        JsonError::syntax("unexpected end of JSON input".to_string(), self.input.len())
    }

    fn invalid(&self, context: &str) -> JsonError {
        match self.peek() {
            Some(byte) => JsonError::syntax(
                format!("invalid character {} {context}", quote_char(byte)),
                self.pos,
            ),
            None => self.unexpected_end(),
        }
    }

    fn scan_string(&mut self) -> Result<(), JsonError> {
        // Caller saw the opening quote.
        self.pos += 1;
        loop {
            match self.peek() {
                None => return Err(self.unexpected_end()),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        None => return Err(self.unexpected_end()),
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1
                        }
                        Some(b'u') => {
                            self.pos += 1;
                            for _ in 0..4 {
                                match self.peek() {
                                    None => return Err(self.unexpected_end()),
                                    Some(digit) if digit.is_ascii_hexdigit() => self.pos += 1,
                                    Some(_) => {
                                        return Err(
                                            self.invalid("in \\u hexadecimal character escape")
                                        );
                                    }
                                }
                            }
                        }
                        Some(_) => return Err(self.invalid("in string escape code")),
                    }
                }
                Some(byte) if byte < 0x20 => return Err(self.invalid("in string literal")),
                Some(_) => self.pos += 1,
            }
        }
    }

    fn scan_digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn scan_number(&mut self) -> Result<(), JsonError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.scan_digits();
            }
            None => return Err(self.unexpected_end()),
            Some(_) => return Err(self.invalid("in numeric literal")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.scan_digits() == 0 {
                return Err(self.invalid("after decimal point in numeric literal"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.scan_digits() == 0 {
                return Err(self.invalid("in exponent of numeric literal"));
            }
        }
        Ok(())
    }

    fn scan_literal(&mut self, word: &'static str) -> Result<(), JsonError> {
        for expected in word.bytes() {
            match self.peek() {
                None => return Err(self.unexpected_end()),
                Some(byte) if byte == expected => self.pos += 1,
                Some(_) => {
                    return Err(self.invalid(&format!(
                        "in literal {word} (expecting {})",
                        quote_char(expected)
                    )));
                }
            }
        }
        Ok(())
    }

    /// After `{` or `,` inside an object: a key string, then `:`.
    fn scan_object_key(&mut self) -> Result<(), JsonError> {
        self.skip_whitespace();
        if self.peek() != Some(b'"') {
            return Err(self.invalid("looking for beginning of object key string"));
        }
        self.scan_string()?;
        self.skip_whitespace();
        if self.peek() != Some(b':') {
            return Err(self.invalid("after object key"));
        }
        self.pos += 1;
        Ok(())
    }
}

/// Checks that `input` is one complete JSON value (surrounded by optional whitespace), as Go
/// does before decoding anything. Iterative: the nesting depth costs heap, never stack.
pub fn validate(input: &[u8]) -> Result<(), JsonError> {
    let mut scanner = Scanner { input, pos: 0 };
    let mut stack: Vec<Container> = Vec::new();
    'value: loop {
        scanner.skip_whitespace();
        match scanner.peek() {
            None => return Err(scanner.unexpected_end()),
            Some(b'{') => {
                // Go counts a container as soon as it opens, empty or not.
                if stack.len() >= MAX_NESTING_DEPTH {
                    return Err(JsonError::syntax(
                        "exceeded max depth".to_string(),
                        scanner.pos,
                    ));
                }
                scanner.pos += 1;
                scanner.skip_whitespace();
                if scanner.peek() == Some(b'}') {
                    scanner.pos += 1;
                } else {
                    stack.push(Container::Object);
                    scanner.scan_object_key()?;
                    continue 'value;
                }
            }
            Some(b'[') => {
                // Go counts a container as soon as it opens, empty or not.
                if stack.len() >= MAX_NESTING_DEPTH {
                    return Err(JsonError::syntax(
                        "exceeded max depth".to_string(),
                        scanner.pos,
                    ));
                }
                scanner.pos += 1;
                scanner.skip_whitespace();
                if scanner.peek() == Some(b']') {
                    scanner.pos += 1;
                } else {
                    stack.push(Container::Array);
                    continue 'value;
                }
            }
            Some(b'"') => scanner.scan_string()?,
            Some(b'-' | b'0'..=b'9') => scanner.scan_number()?,
            Some(b't') => scanner.scan_literal("true")?,
            Some(b'f') => scanner.scan_literal("false")?,
            Some(b'n') => scanner.scan_literal("null")?,
            Some(_) => return Err(scanner.invalid("looking for beginning of value")),
        }
        // A value just ended: close containers until one expects another element.
        loop {
            scanner.skip_whitespace();
            match stack.last() {
                None => {
                    if scanner.peek().is_some() {
                        return Err(scanner.invalid("after top-level value"));
                    }
                    return Ok(());
                }
                Some(Container::Object) => match scanner.peek() {
                    Some(b',') => {
                        scanner.pos += 1;
                        scanner.scan_object_key()?;
                        continue 'value;
                    }
                    Some(b'}') => {
                        scanner.pos += 1;
                        stack.pop();
                    }
                    _ => return Err(scanner.invalid("after object key:value pair")),
                },
                Some(Container::Array) => match scanner.peek() {
                    Some(b',') => {
                        scanner.pos += 1;
                        continue 'value;
                    }
                    Some(b']') => {
                        scanner.pos += 1;
                        stack.pop();
                    }
                    _ => return Err(scanner.invalid("after array element")),
                },
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// String unquoting (Go's unquoteBytes)
// ---------------------------------------------------------------------------------------------

fn hex4(bytes: &[u8]) -> Option<u32> {
    let digits = bytes.get(..4)?;
    let text = std::str::from_utf8(digits).ok()?;
    u32::from_str_radix(text, 16).ok()
}

/// Decodes the body of a JSON string literal (between the quotes) with Go's rules: escapes are
/// resolved; a surrogate escape that does not form a valid pair with the next `\uXXXX` becomes
/// U+FFFD (the next escape is then read on its own); each byte of invalid UTF-8 becomes U+FFFD.
pub fn unquote_body(body: &[u8]) -> Result<String, JsonError> {
    let mut out = String::with_capacity(body.len());
    let mut pos = 0;
    while let Some(&byte) = body.get(pos) {
        if byte == b'\\' {
            let escape = body.get(pos + 1).copied();
            pos += 2;
            let simple = match escape {
                Some(b'"') => Some('"'),
                Some(b'\\') => Some('\\'),
                Some(b'/') => Some('/'),
                Some(b'b') => Some('\u{8}'),
                Some(b'f') => Some('\u{c}'),
                Some(b'n') => Some('\n'),
                Some(b'r') => Some('\r'),
                Some(b't') => Some('\t'),
                _ => None,
            };
            if let Some(ch) = simple {
                out.push(ch);
                continue;
            }
            if escape != Some(b'u') {
                return Err(JsonError::syntax(
                    "invalid escape in string literal".to_string(),
                    pos.saturating_sub(2),
                ));
            }
            let Some(unit) = body.get(pos..).and_then(hex4) else {
                return Err(JsonError::syntax(
                    "invalid \\u escape in string literal".to_string(),
                    pos,
                ));
            };
            pos += 4;
            if (0xd800..0xe000).contains(&unit) {
                // Try to pair with an immediately following \uXXXX low surrogate.
                let next = if body.get(pos) == Some(&b'\\') && body.get(pos + 1) == Some(&b'u') {
                    body.get(pos + 2..).and_then(hex4)
                } else {
                    None
                };
                match next {
                    Some(low)
                        if (0xd800..0xdc00).contains(&unit) && (0xdc00..0xe000).contains(&low) =>
                    {
                        let combined = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
                        out.push(char::from_u32(combined).unwrap_or('\u{fffd}'));
                        pos += 6;
                    }
                    _ => out.push('\u{fffd}'),
                }
            } else {
                out.push(char::from_u32(unit).unwrap_or('\u{fffd}'));
            }
            continue;
        }
        // Copy the run of raw bytes up to the next escape, repairing invalid UTF-8 like Go.
        let run_end = body
            .get(pos..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\\'))
            .map_or(body.len(), |offset| pos + offset);
        push_go_lossy(&mut out, body.get(pos..run_end).unwrap_or_default());
        pos = run_end;
    }
    Ok(out)
}

/// Appends bytes as UTF-8, replacing each invalid byte by U+FFFD (Go's `utf8.DecodeRune` reports
/// every invalid sequence as one byte, unlike Rust's `from_utf8_lossy` which groups them).
fn push_go_lossy(out: &mut String, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match std::str::from_utf8(bytes) {
            Ok(valid) => {
                out.push_str(valid);
                return;
            }
            Err(err) => {
                let (valid, rest) = bytes.split_at(err.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push('\u{fffd}');
                bytes = rest.get(1..).unwrap_or_default();
            }
        }
    }
}

/// Decodes a complete JSON document that must be a string (for tests and tools).
pub fn decode_string_document(input: &[u8]) -> Result<String, JsonError> {
    validate(input)?;
    let mut decoder = Decoder::new(input);
    decoder.skip_whitespace();
    if decoder.peek_kind() != Some(ValueKind::String) {
        return Err(decoder.type_error_here("string"));
    }
    decoder.read_string()
}

// ---------------------------------------------------------------------------------------------
// Decoder over validated bytes (Go's decodeState)
// ---------------------------------------------------------------------------------------------

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
    fn go_description(self) -> &'static str {
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

/// Walks a document already accepted by [`validate`]. Typed decoders pull values from it with Go
/// semantics. Every method still returns errors instead of panicking if fed unvalidated bytes.
pub struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    struct_name: Option<&'static str>,
    field_path: Vec<&'static str>,
}

impl<'a> Decoder<'a> {
    /// A decoder at the start of `input`. Call [`validate`] first: the decoder trusts the syntax
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

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(is_json_whitespace) {
            self.pos += 1;
        }
    }

    fn malformed(&self, what: &str) -> JsonError {
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
    fn type_error(&mut self, value_description: String, go_type: &str) -> JsonError {
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

    fn type_error_here(&mut self, go_type: &str) -> JsonError {
        let description = self
            .peek_kind()
            .map_or("value", ValueKind::go_description)
            .to_string();
        self.type_error(description, go_type)
    }

    /// Consumes `null`.
    fn read_null(&mut self) -> Result<(), JsonError> {
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
    fn read_number_literal(&mut self) -> Result<&'a str, JsonError> {
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

    /// Decodes an object into a Go struct: for each key, finds the field the way Go does (exact
    /// match first, then case-insensitive with Unicode simple folding) and calls `on_field` with
    /// its index; unknown keys are skipped. `null` leaves the struct untouched. Returns `false`
    /// for `null`, `true` for an object.
    pub fn decode_struct(
        &mut self,
        go_struct: &GoStruct,
        mut on_field: impl FnMut(&mut Self, usize) -> Result<(), JsonError>,
    ) -> Result<bool, JsonError> {
        match self.peek_kind() {
            Some(ValueKind::Object) => {}
            Some(ValueKind::Null) => {
                self.read_null()?;
                return Ok(false);
            }
            _ => return Err(self.type_error_here(go_struct.go_type)),
        }
        self.pos += 1;
        loop {
            self.skip_whitespace();
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(true);
                }
                Some(b',') => {
                    self.pos += 1;
                    continue;
                }
                Some(b'"') => {}
                _ => return Err(self.malformed("expected an object key")),
            }
            let key = self.read_string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.malformed("expected ':'"));
            }
            self.pos += 1;
            match find_field(go_struct.fields, &key) {
                Some(index) => {
                    let field_name = go_struct.fields.get(index).copied().unwrap_or_default();
                    let saved_struct = self.struct_name.replace(go_struct.name);
                    self.field_path.push(field_name);
                    let result = on_field(self, index);
                    self.field_path.pop();
                    self.struct_name = saved_struct;
                    result?;
                }
                None => self.skip_value()?,
            }
        }
    }

    /// Decodes into a Go `string` field: `null` leaves it unchanged.
    pub fn decode_string(&mut self, target: &mut String) -> Result<(), JsonError> {
        match self.peek_kind() {
            Some(ValueKind::String) => {
                *target = self.read_string()?;
                Ok(())
            }
            Some(ValueKind::Null) => self.read_null(),
            _ => Err(self.type_error_here("string")),
        }
    }

    /// Decodes into a Go signed integer field (`go_type` is `int` or `int64`, both 64-bit on the
    /// platforms the reference runs on): only integer literals fit, as `strconv.ParseInt`.
    pub fn decode_int(&mut self, target: &mut i64, go_type: &str) -> Result<(), JsonError> {
        match self.peek_kind() {
            Some(ValueKind::Number) => {
                let start = self.pos;
                let literal = self.read_number_literal()?;
                match literal.parse::<i64>() {
                    Ok(value) => {
                        *target = value;
                        Ok(())
                    }
                    Err(_) => {
                        self.pos = start;
                        Err(self.type_error(format!("number {literal}"), go_type))
                    }
                }
            }
            Some(ValueKind::Null) => self.read_null(),
            _ => Err(self.type_error_here(go_type)),
        }
    }

    /// Decodes into a `map[string]string`: `null` empties it (Go sets the map to nil), an object
    /// adds to what is already there (so a duplicated key merges, later values winning). A `null`
    /// value stores the empty string, as Go stores the zero value.
    pub fn decode_string_map(
        &mut self,
        target: &mut BTreeMap<String, String>,
    ) -> Result<(), JsonError> {
        match self.peek_kind() {
            Some(ValueKind::Object) => {}
            Some(ValueKind::Null) => {
                target.clear();
                return self.read_null();
            }
            _ => return Err(self.type_error_here("map[string]string")),
        }
        self.pos += 1;
        loop {
            self.skip_whitespace();
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b',') => {
                    self.pos += 1;
                    continue;
                }
                Some(b'"') => {}
                _ => return Err(self.malformed("expected an object key")),
            }
            let key = self.read_string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.malformed("expected ':'"));
            }
            self.pos += 1;
            let mut value = String::new();
            self.decode_string(&mut value)?;
            target.insert(key, value);
        }
    }

    /// Decodes a JSON array into a Go slice modelled by `slice`, calling `decode_element` for each
    /// element with the slot to decode into (an existing element is decoded into, not replaced,
    /// exactly as Go reuses the slice's backing array). `null` makes the slice nil.
    pub fn decode_slice<T: Default>(
        &mut self,
        slice: &mut GoSlice<T>,
        go_type: &str,
        mut decode_element: impl FnMut(&mut Self, &mut T) -> Result<(), JsonError>,
    ) -> Result<(), JsonError> {
        match self.peek_kind() {
            Some(ValueKind::Array) => {}
            Some(ValueKind::Null) => {
                slice.set_nil();
                return self.read_null();
            }
            _ => return Err(self.type_error_here(go_type)),
        }
        self.pos += 1;
        let mut count = 0usize;
        loop {
            self.skip_whitespace();
            match self.peek() {
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                Some(b',') => {
                    self.pos += 1;
                    continue;
                }
                None => return Err(self.malformed("unterminated array")),
                Some(_) => {}
            }
            let slot = slice.slot(count);
            decode_element(self, slot)?;
            count += 1;
        }
        slice.finish_array(count);
        Ok(())
    }

    /// Decodes into a `[]string`.
    pub fn decode_string_slice(&mut self, slice: &mut GoSlice<String>) -> Result<(), JsonError> {
        self.decode_slice(slice, "[]string", |decoder, element| {
            decoder.decode_string(element)
        })
    }

    /// Decodes into a `[]byte`: a string is standard padded base64 (Go's decoder skips `\r` and
    /// `\n` in it), an array is read element by element as `uint8`, `null` makes it nil.
    pub fn decode_bytes(&mut self, slice: &mut GoSlice<u8>) -> Result<(), JsonError> {
        match self.peek_kind() {
            Some(ValueKind::String) => {
                let start = self.pos;
                let text = self.read_string()?;
                match decode_base64_go(text.as_bytes()) {
                    Ok(bytes) => {
                        slice.replace(bytes);
                        Ok(())
                    }
                    Err(bad_byte) => Err(JsonError {
                        message: format!("illegal base64 data at input byte {bad_byte}"),
                        offset: start,
                        kind: JsonErrorKind::Base64,
                    }),
                }
            }
            _ => self.decode_slice(slice, "[]uint8", |decoder, element| {
                decoder.decode_u8(element)
            }),
        }
    }

    fn decode_u8(&mut self, target: &mut u8) -> Result<(), JsonError> {
        match self.peek_kind() {
            Some(ValueKind::Number) => {
                let start = self.pos;
                let literal = self.read_number_literal()?;
                match literal.parse::<u8>() {
                    Ok(value) if !literal.starts_with('+') => {
                        *target = value;
                        Ok(())
                    }
                    _ => {
                        self.pos = start;
                        Err(self.type_error(format!("number {literal}"), "uint8"))
                    }
                }
            }
            Some(ValueKind::Null) => self.read_null(),
            _ => Err(self.type_error_here("uint8")),
        }
    }

    /// Decodes into a Go pointer-to-struct field (`*T`): `null` sets it to nil, a value is decoded
    /// into the existing pointee (merging) or a fresh zero value.
    pub fn decode_optional<T: Default>(
        &mut self,
        target: &mut Option<T>,
        decode_value: impl FnOnce(&mut Self, &mut T) -> Result<(), JsonError>,
    ) -> Result<(), JsonError> {
        if self.peek_kind() == Some(ValueKind::Null) {
            *target = None;
            return self.read_null();
        }
        decode_value(self, target.get_or_insert_with(T::default))
    }

    /// Checks that only whitespace follows (the document was validated, so this is a guard).
    pub fn finish(mut self) -> Result<(), JsonError> {
        self.skip_whitespace();
        if self.pos < self.input.len() {
            return Err(self.malformed("trailing data"));
        }
        Ok(())
    }
}

/// Go's field lookup: exact key first, then a case-insensitive match (bytes.EqualFold).
fn find_field(fields: &[&str], key: &str) -> Option<usize> {
    fields
        .iter()
        .position(|field| *field == key)
        .or_else(|| fields.iter().position(|field| equal_fold(field, key)))
}

/// `bytes.EqualFold` for an ASCII field name against any key: besides ASCII case, Unicode simple
/// folding maps U+017F (long s) to `s` and U+212A (Kelvin sign) to `k`.
fn equal_fold(ascii_field: &str, key: &str) -> bool {
    let mut key_chars = key.chars();
    for field_byte in ascii_field.bytes() {
        let Some(key_char) = key_chars.next() else {
            return false;
        };
        let field_lower = field_byte.to_ascii_lowercase();
        let matches = match key_char {
            '\u{17f}' => field_lower == b's',
            '\u{212a}' => field_lower == b'k',
            c if c.is_ascii() => (c as u8).to_ascii_lowercase() == field_lower,
            _ => false,
        };
        if !matches {
            return false;
        }
    }
    key_chars.next().is_none()
}

/// Go's `base64.StdEncoding.Decode` (padding required, `\r`/`\n` ignored, non-zero trailing bits
/// accepted). On failure returns the offset Go reports in `CorruptInputError`.
fn decode_base64_go(src: &[u8]) -> Result<Vec<u8>, usize> {
    fn sextet(byte: u8) -> Option<u8> {
        match byte {
            b'A'..=b'Z' => Some(byte - b'A'),
            b'a'..=b'z' => Some(byte - b'a' + 26),
            b'0'..=b'9' => Some(byte - b'0' + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let is_newline = |byte: u8| byte == b'\n' || byte == b'\r';
    let mut out = Vec::with_capacity(src.len() / 4 * 3);
    let mut si = 0usize;
    loop {
        let mut quantum = [0u8; 4];
        let mut filled = 0usize;
        let mut finished = false;
        while filled < 4 {
            let Some(&byte) = src.get(si) else {
                if filled == 0 {
                    return Ok(out);
                }
                // Standard encoding requires padding: a short final quantum is corrupt.
                return Err(si - filled);
            };
            si += 1;
            if let Some(value) = sextet(byte) {
                if let Some(slot) = quantum.get_mut(filled) {
                    *slot = value;
                }
                filled += 1;
                continue;
            }
            if is_newline(byte) {
                continue;
            }
            if byte != b'=' {
                return Err(si - 1);
            }
            // Padding: only after 2 or 3 data characters.
            match filled {
                0 | 1 => return Err(si - 1),
                2 => {
                    while src.get(si).copied().is_some_and(is_newline) {
                        si += 1;
                    }
                    match src.get(si) {
                        None => return Err(src.len()),
                        Some(b'=') => si += 1,
                        Some(_) => return Err(si - 1),
                    }
                }
                _ => {}
            }
            while src.get(si).copied().is_some_and(is_newline) {
                si += 1;
            }
            if si < src.len() {
                return Err(si);
            }
            finished = true;
            break;
        }
        let [a, b, c, d] = quantum;
        let value =
            (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(c) << 6) | u32::from(d);
        let decoded = [(value >> 16) as u8, (value >> 8) as u8, value as u8];
        out.extend_from_slice(decoded.get(..filled - 1).unwrap_or_default());
        if finished {
            return Ok(out);
        }
    }
}

/// A Go slice while it is being decoded: Go decodes a repeated key's array into the SAME backing
/// array, element by element, and elements past the current length survive a truncation and
/// reappear if a later array is longer. `GoSlice` keeps that backing store so duplicate keys
/// give Go's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoSlice<T> {
    backing: Vec<T>,
    len: Option<usize>,
}

impl<T> Default for GoSlice<T> {
    fn default() -> Self {
        Self {
            backing: Vec::new(),
            len: None,
        }
    }
}

impl<T: Default> GoSlice<T> {
    /// Starts from a current value (`None` = nil slice).
    pub fn from_option(value: Option<Vec<T>>) -> Self {
        match value {
            Some(backing) => {
                let len = backing.len();
                Self {
                    backing,
                    len: Some(len),
                }
            }
            None => Self::default(),
        }
    }

    /// Starts from a slice where empty and nil are not distinguished (`omitempty` fields).
    pub fn from_vec(value: Vec<T>) -> Self {
        Self::from_option(Some(value))
    }

    /// The resulting slice (`None` = nil).
    pub fn into_option(self) -> Option<Vec<T>> {
        let mut backing = self.backing;
        self.len.map(|len| {
            backing.truncate(len);
            backing
        })
    }

    /// The resulting slice, nil as empty.
    pub fn into_vec(self) -> Vec<T> {
        self.into_option().unwrap_or_default()
    }

    fn set_nil(&mut self) {
        self.backing = Vec::new();
        self.len = None;
    }

    fn replace(&mut self, values: Vec<T>) {
        self.len = Some(values.len());
        self.backing = values;
    }

    fn slot(&mut self, index: usize) -> &mut T {
        while self.backing.len() <= index {
            self.backing.push(T::default());
        }
        let current_len = self.len.unwrap_or(0);
        if index >= current_len {
            self.len = Some(index + 1);
        }
        let last = self.backing.len() - 1;
        // `index <= last` holds after the loop above; `min` keeps this free of panics.
        let position = index.min(last);
        &mut self.backing[position]
    }

    fn finish_array(&mut self, count: usize) {
        if count == 0 {
            // Go replaces an empty result by a new zero-capacity slice: the backing is gone.
            self.backing = Vec::new();
        }
        self.len = Some(count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(s: &str) -> String {
        String::from_utf8(encode_string(s)).unwrap()
    }

    #[test]
    fn escapes_like_go() {
        assert_eq!(encoded("<a&b>"), r#""\u003ca\u0026b\u003e""#);
        assert_eq!(encoded("\u{2028}\u{2029}"), r#""\u2028\u2029""#);
        assert_eq!(
            encoded("\t\n\r\u{0}\u{7}\u{7f}"),
            "\"\\t\\n\\r\\u0000\\u0007\u{7f}\""
        );
        assert_eq!(encoded("\u{8}\u{c}\u{1f}"), r#""\b\f\u001f""#);
        assert_eq!(encoded("q\"b\\/"), r#""q\"b\\/""#);
        assert_eq!(encoded("é😀\u{fffd}"), "\"é😀\u{fffd}\"");
    }

    #[test]
    fn invalid_utf8_bytes_are_escaped_one_per_byte() {
        let mut out = Vec::new();
        write_string_bytes(&mut out, b"a\xe6\x97b\xff");
        assert_eq!(out, br#""a\ufffd\ufffdb\ufffd""#);
    }

    #[test]
    fn unquote_surrogates_like_go() {
        let decode = |s: &str| unquote_body(s.as_bytes()).unwrap();
        assert_eq!(decode(r"\ud83d\ude00"), "😀");
        assert_eq!(decode(r"x\ud800y"), "x\u{fffd}y");
        // A high surrogate followed by a non-low escape: replacement, then the escape itself.
        assert_eq!(decode(r"\ud800\u0041"), "\u{fffd}A");
        assert_eq!(decode(r"\udc00\ud83d\ude00"), "\u{fffd}😀");
        assert_eq!(decode(r"\ud800\ud800"), "\u{fffd}\u{fffd}");
        assert_eq!(decode(r"a\/b"), "a/b");
    }

    #[test]
    fn invalid_utf8_in_input_becomes_one_replacement_per_byte() {
        assert_eq!(unquote_body(b"a\xe6\x97b").unwrap(), "a\u{fffd}\u{fffd}b");
        assert_eq!(
            unquote_body(b"\xed\xa0\x80").unwrap(),
            "\u{fffd}\u{fffd}\u{fffd}"
        );
    }

    #[test]
    fn syntax_errors_carry_go_messages_and_offsets() {
        let err = validate(b"{\"a\":1,}").unwrap_err();
        assert_eq!(
            err.go_message(),
            "invalid character '}' looking for beginning of object key string"
        );
        assert_eq!(err.offset(), 7);
        assert_eq!(
            validate(b"[1 2]").unwrap_err().go_message(),
            "invalid character '2' after array element"
        );
        assert_eq!(
            validate(b"{\"a\"").unwrap_err().go_message(),
            "unexpected end of JSON input"
        );
        assert_eq!(
            validate(b"01").unwrap_err().go_message(),
            "invalid character '1' after top-level value"
        );
        assert_eq!(
            validate(b"\"a\x01\"").unwrap_err().go_message(),
            "invalid character '\\x01' in string literal"
        );
        assert_eq!(
            validate(b"tru").unwrap_err().go_message(),
            "unexpected end of JSON input"
        );
        assert_eq!(
            validate(b"nul!").unwrap_err().go_message(),
            "invalid character '!' in literal null (expecting 'l')"
        );
        assert!(validate(b" {\"a\":[1,-2.5e+3,true,false,null,\"x\"]} \n").is_ok());
        assert!(validate(b"").is_err());
        assert!(validate(b"1.").is_err());
        assert!(validate(b"-").is_err());
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let deep = "[".repeat(MAX_NESTING_DEPTH + 1) + &"]".repeat(MAX_NESTING_DEPTH + 1);
        assert_eq!(
            validate(deep.as_bytes()).unwrap_err().go_message(),
            "exceeded max depth"
        );
        let ok = "[".repeat(MAX_NESTING_DEPTH) + &"]".repeat(MAX_NESTING_DEPTH);
        assert!(validate(ok.as_bytes()).is_ok());
        let mut decoder = Decoder::new(ok.as_bytes());
        decoder.skip_value().unwrap();
        decoder.finish().unwrap();
    }

    #[test]
    fn base64_like_go() {
        assert_eq!(decode_base64_go(b"e30=").unwrap(), b"{}");
        assert_eq!(decode_base64_go(b"e3\n0=").unwrap(), b"{}");
        assert_eq!(decode_base64_go(b"").unwrap(), b"");
        assert_eq!(decode_base64_go(b"YWJj").unwrap(), b"abc");
        assert_eq!(decode_base64_go(b"YQ==").unwrap(), b"a");
        assert_eq!(decode_base64_go(b"YR==").unwrap(), b"a"); // non-strict trailing bits
        assert_eq!(decode_base64_go(b"e30"), Err(0));
        assert_eq!(decode_base64_go(b"e3=0"), Err(2));
        assert_eq!(decode_base64_go(b"YQ==YQ=="), Err(4));
        assert_eq!(decode_base64_go(b"Y!=="), Err(1));
        let mut out = Vec::new();
        write_base64(&mut out, b"{}");
        assert_eq!(out, br#""e30=""#);
    }

    #[test]
    fn field_matching_folds_case_like_go() {
        let fields = ["schemaVersion", "mediaType", "size"];
        assert_eq!(find_field(&fields, "mediaType"), Some(1));
        assert_eq!(find_field(&fields, "MEDIATYPE"), Some(1));
        assert_eq!(find_field(&fields, "\u{17f}ize"), Some(2));
        assert_eq!(find_field(&fields, "sizes"), None);
        assert_eq!(find_field(&fields, "siz"), None);
    }

    #[test]
    fn go_slice_reuses_backing_like_go() {
        let mut slice: GoSlice<String> = GoSlice::default();
        for doc in [r#"["a","b"]"#, r#"["c"]"#, r#"[null,null]"#] {
            let mut decoder = Decoder::new(doc.as_bytes());
            decoder.decode_string_slice(&mut slice).unwrap();
        }
        assert_eq!(slice.into_vec(), ["c", "b"]);
    }
}
