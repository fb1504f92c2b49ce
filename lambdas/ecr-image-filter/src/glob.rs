//! Shell globs with exactly the semantics of Python's `fnmatch.fnmatchcase` (CPython 3.11), which
//! the original filter Lambda used on `<repository>:<tag>`.
//!
//! - `*` matches any run of characters, including `/` and `:`; `?` matches one character.
//! - `[seq]` / `[!seq]` match one character in / not in the set; `]` right after `[` or `[!` is a
//!   member; `a-z` is a range, a `-` first, last or right after a range is a literal; an empty range
//!   (`z-a`) is dropped the way CPython drops it (`[z-a]` never matches, `[!z-a]` matches anything).
//! - A `[` without a closing `]` is a literal `[`. There is no escaping: `\` is a literal.
//! - Matching is case-sensitive and anchored at both ends (the WHOLE name must match).

/// One compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    source: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// `*` (consecutive stars are folded into one)
    Star,
    /// `?`
    Any,
    Literal(char),
    Class(CharClass),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CharClass {
    negated: bool,
    /// Inclusive ranges; single characters are `(c, c)`.
    ranges: Vec<(char, char)>,
}

impl CharClass {
    fn matches(&self, c: char) -> bool {
        let member = self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
        member != self.negated
    }
}

impl Glob {
    /// Compiles `pattern`. Every string is a valid pattern (as in Python), so this cannot fail.
    pub fn new(pattern: &str) -> Self {
        let pat: Vec<char> = pattern.chars().collect();
        let n = pat.len();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < n {
            let c = pat[i];
            i += 1;
            match c {
                '*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                '?' => tokens.push(Token::Any),
                '[' => {
                    // Find the closing bracket exactly as CPython does.
                    let mut j = i;
                    if j < n && pat[j] == '!' {
                        j += 1;
                    }
                    if j < n && pat[j] == ']' {
                        j += 1;
                    }
                    while j < n && pat[j] != ']' {
                        j += 1;
                    }
                    if j >= n {
                        tokens.push(Token::Literal('['));
                    } else {
                        tokens.push(Token::Class(parse_class(&pat[i..j])));
                        i = j + 1;
                    }
                }
                other => tokens.push(Token::Literal(other)),
            }
        }
        Self {
            source: pattern.to_owned(),
            tokens,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the WHOLE of `name` matches (`fnmatch.fnmatchcase(name, pattern)`).
    pub fn matches(&self, name: &str) -> bool {
        let text: Vec<char> = name.chars().collect();
        // Iterative matcher with single-star backtracking: every token but `*` consumes exactly
        // one character, so remembering the last star is enough (linear-ish, no blow-up).
        let (mut t, mut p) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None; // (token index after star, text index)
        while t < text.len() {
            if p < self.tokens.len() {
                match &self.tokens[p] {
                    Token::Star => {
                        star = Some((p + 1, t));
                        p += 1;
                        continue;
                    }
                    Token::Any => {
                        p += 1;
                        t += 1;
                        continue;
                    }
                    Token::Literal(c) if *c == text[t] => {
                        p += 1;
                        t += 1;
                        continue;
                    }
                    Token::Class(class) if class.matches(text[t]) => {
                        p += 1;
                        t += 1;
                        continue;
                    }
                    _ => {}
                }
            }
            match star {
                Some((after_star, from)) => {
                    p = after_star;
                    t = from + 1;
                    star = Some((after_star, from + 1));
                }
                None => return false,
            }
        }
        self.tokens[p..].iter().all(|tok| *tok == Token::Star)
    }
}

/// Parses the inside of `[...]` (without the brackets) following CPython 3.11's `translate`.
fn parse_class(stuff: &[char]) -> CharClass {
    let negated = stuff.first() == Some(&'!');
    if !stuff.contains(&'-') {
        let body = if negated { &stuff[1..] } else { stuff };
        return CharClass {
            negated,
            ranges: body.iter().map(|&c| (c, c)).collect(),
        };
    }
    // Split on the hyphens that make ranges: the search starts after the first member, and after a
    // range `a-b` it resumes past `b`, so `-` first, last or right after a range is a literal.
    let mut chunks: Vec<Vec<char>> = Vec::new();
    let mut start = 0usize;
    let mut k = if negated { 2 } else { 1 };
    while let Some(offset) = stuff
        .get(k..)
        .and_then(|rest| rest.iter().position(|&c| c == '-'))
    {
        let hyphen = k + offset;
        chunks.push(stuff[start..hyphen].to_vec());
        start = hyphen + 1;
        k = hyphen + 3;
    }
    let last = stuff[start..].to_vec();
    if last.is_empty() {
        if let Some(prev) = chunks.last_mut() {
            prev.push('-');
        }
    } else {
        chunks.push(last);
    }
    // Remove empty ranges (`z-a`): drop both ends, as CPython does.
    for idx in (1..chunks.len()).rev() {
        let (Some(&end), Some(&begin)) = (chunks[idx - 1].last(), chunks[idx].first()) else {
            continue;
        };
        if end > begin {
            let next = chunks.remove(idx);
            let prev = &mut chunks[idx - 1];
            prev.pop();
            prev.extend_from_slice(&next[1..]);
        }
    }
    let mut ranges = Vec::new();
    for (idx, chunk) in chunks.iter().enumerate() {
        let members = if idx == 0 && negated {
            &chunk[1..]
        } else {
            &chunk[..]
        };
        ranges.extend(members.iter().map(|&c| (c, c)));
        if let (Some(&lo), Some(&hi)) = (chunk.last(), chunks.get(idx + 1).and_then(|c| c.first()))
        {
            ranges.push((lo, hi));
        }
    }
    CharClass { negated, ranges }
}

/// Parses the comma-separated filter list of `soci_repository_image_tag_filters`: entries are
/// trimmed and empty entries dropped.
pub fn parse_filter_list(value: &str) -> Vec<Glob> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Glob::new)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_crosses_separators() {
        assert!(Glob::new("*:*").matches("team/app:v1"));
        assert!(Glob::new("*:*").matches("team/app:"));
        assert!(!Glob::new("repo:latest").matches("repo:"));
    }

    #[test]
    fn list_is_trimmed() {
        let list = parse_filter_list(" a:* , b:latest,,c* ");
        let names: Vec<_> = list.iter().map(Glob::as_str).collect();
        assert_eq!(names, ["a:*", "b:latest", "c*"]);
    }

    #[test]
    fn long_inputs_do_not_blow_up() {
        let name = "a".repeat(5000);
        assert!(!Glob::new("*a*a*a*a*a*a*b").matches(&name));
    }
}
