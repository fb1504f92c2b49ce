//! Writing JSON as Go's `encoding/json` does: escapes, base64 and objects in field order.

use std::collections::BTreeMap;

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
}
