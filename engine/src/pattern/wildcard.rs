//! The `wildcard` operator: `*` matches any run of characters (including none), `\*` is a
//! literal asterisk and `\\` a literal backslash. As in EventBridge, consecutive `**` and a
//! backslash escaping anything else are rejected.

use super::PatternError;

/// A compiled wildcard: the literal text between the `*`s.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Wildcard {
    /// `parts[0] * parts[1] * ... * parts[n-1]`; one part means no `*` at all.
    parts: Vec<String>,
}

impl Wildcard {
    /// Parse `pattern`; errors are reported at `path`.
    pub(crate) fn parse(pattern: &str, path: &str) -> Result<Self, PatternError> {
        let mut parts = vec![String::new()];
        let mut chars = pattern.chars();
        let mut previous_was_star = false;
        while let Some(c) = chars.next() {
            match c {
                '*' => {
                    if previous_was_star {
                        return Err(PatternError::new(
                            path,
                            "consecutive wildcard characters `**` are not allowed; use a single `*`",
                        ));
                    }
                    previous_was_star = true;
                    parts.push(String::new());
                    continue;
                }
                '\\' => match chars.next() {
                    Some(escaped @ ('*' | '\\')) => push_char(&mut parts, escaped),
                    _ => {
                        return Err(PatternError::new(
                            path,
                            "a backslash in a wildcard may only escape `*` or `\\` (write `\\*` or `\\\\`)",
                        ))
                    }
                },
                other => push_char(&mut parts, other),
            }
            previous_was_star = false;
        }
        Ok(Wildcard { parts })
    }

    /// Whether `s` matches the whole wildcard.
    pub(crate) fn matches(&self, s: &str) -> bool {
        let (first, rest) = match self.parts.split_first() {
            Some(split) => split,
            None => return s.is_empty(),
        };
        let Some((last, middle)) = rest.split_last() else {
            return s == first;
        };
        if s.len() < first.len() + last.len() || !s.starts_with(first.as_str()) {
            return false;
        }
        if !s.ends_with(last.as_str()) {
            return false;
        }
        // With `*` as the only metacharacter, taking the leftmost occurrence of each middle
        // part is optimal: it leaves the most room for the parts after it.
        let mut window = &s[first.len()..s.len() - last.len()];
        for part in middle {
            match window.find(part.as_str()) {
                Some(at) => window = &window[at + part.len()..],
                None => return false,
            }
        }
        true
    }
}

fn push_char(parts: &mut [String], c: char) {
    if let Some(last) = parts.last_mut() {
        last.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(p: &str) -> Wildcard {
        Wildcard::parse(p, "x").expect("valid wildcard")
    }

    #[test]
    fn stars_match_runs() {
        assert!(w("Simple*Service").matches("SimpleQueueService"));
        assert!(w("Simple*Service").matches("SimpleService"));
        assert!(!w("Simple*Service").matches("SimpleQueue"));
        assert!(w("*/lib/*").matches("/usr/lib/x.so"));
        assert!(!w("*/lib/*").matches("/usr/bin/x"));
        assert!(w("a*b*c").matches("abc"));
        assert!(w("a*b*c").matches("axxbyyc"));
        assert!(!w("a*b*c").matches("acb"));
        assert!(w("*").matches(""));
        assert!(w("ab*ab").matches("abab"));
        assert!(!w("ab*ab").matches("aba"));
        assert!(w("exact").matches("exact"));
        assert!(!w("exact").matches("exact!"));
    }

    #[test]
    fn escapes_are_literal() {
        assert!(w(r"a\*b").matches("a*b"));
        assert!(!w(r"a\*b").matches("axb"));
        assert!(w(r"a\\*").matches(r"a\anything"));
        assert!(w(r"*\**").matches("x*y"));
        assert!(!w(r"*\**").matches("xy"));
    }

    #[test]
    fn bad_wildcards_are_rejected() {
        let e = Wildcard::parse("a**b", "detail.f[0].wildcard").expect_err("** rejected");
        assert_eq!(e.path, "detail.f[0].wildcard");
        assert!(e.message.contains("consecutive"));
        assert!(Wildcard::parse(r"a\b", "x").is_err());
        assert!(Wildcard::parse("a\\", "x").is_err());
        // An escaped star next to a real one is not "consecutive".
        assert!(Wildcard::parse(r"a\**", "x").is_ok());
    }
}
