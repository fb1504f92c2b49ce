//! The syntax check every document passes before decoding (Go's `checkValid`): iterative, so
//! nesting depth costs no stack.

use super::{JsonError, MAX_NESTING_DEPTH};

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

pub(super) fn is_json_whitespace(byte: u8) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gojson::Decoder;

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
}
