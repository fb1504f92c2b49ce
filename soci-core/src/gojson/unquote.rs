//! String unquoting (Go's `unquoteBytes`): surrogates and invalid UTF-8 become U+FFFD as Go
//! does.

use super::JsonError;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
