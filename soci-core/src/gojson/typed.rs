//! Typed decoding with Go semantics: struct fields matched case-insensitively, integers,
//! maps, slices reusing their backing array, `[]byte` as base64.

use std::collections::BTreeMap;

use super::{Decoder, GoSlice, GoStruct, JsonError, JsonErrorKind, ValueKind, validate};

impl<'a> Decoder<'a> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gojson::write_base64;

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
