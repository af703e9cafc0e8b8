//! A small Rhai scanner: just enough lexing to find where a `${...}` template expression ends
//! and which `steps.<id>` a script names.
//!
//! Rhai's own tokenizer is only public under its `internals` feature, which we do not enable.
//! This scanner knows the token shapes that can hide a `{`, `}` or the word `steps` from a
//! naive search: `"..."` and `'...'` literals (with `\` escapes and Rhai's doubled-quote
//! escape), back-tick strings with their own `${...}` interpolation, raw strings `#"..."#`, and
//! line and (nested) block comments. Anything it cannot classify is punctuation; Rhai itself
//! still compiles every expression, so a scanner mistake yields a compile error, never
//! evaluation of text the author did not write as code.

/// A token, as far as this scanner cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok<'a> {
    /// An identifier or keyword.
    Ident(&'a str),
    /// A string literal without interpolation, escapes decoded.
    Str(String),
    /// One ASCII punctuation byte.
    Punct(u8),
    /// Anything else: numbers, characters, interpolated strings (each `${...}` inside one
    /// is `$`, `{`, its code's tokens, `}`, before this token), non-ASCII.
    Other,
}

/// Where and why scanning failed (an unterminated string, comment or `${`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LexError {
    /// Byte offset in the scanned text where the offending construct starts.
    pub offset: usize,
    /// What is unterminated.
    pub message: &'static str,
}

/// The tokens of a whole script, best effort: scanning stops silently at the first
/// unterminated construct (callers only scan sources Rhai has already compiled).
pub(crate) fn tokens(src: &str) -> Vec<Tok<'_>> {
    let mut scanner = Scanner::new(src);
    let _ = scanner.code(0, false);
    scanner.toks
}

/// The tokens of a whole script, or the first unterminated construct: for callers that must
/// not reason about a script from part of its tokens.
pub(crate) fn all_tokens(src: &str) -> Result<Vec<Tok<'_>>, LexError> {
    let mut scanner = Scanner::new(src);
    scanner.code(0, false)?;
    Ok(scanner.toks)
}

/// The identifier that starts at Rhai position `pos` (1-based line, 1-based column in
/// characters) of `src`, if any.
pub(crate) fn word_at(src: &str, pos: rhai::Position) -> Option<&str> {
    let line = src.lines().nth(pos.line()?.checked_sub(1)?)?;
    let (start, _) = line.char_indices().nth(pos.position()?.checked_sub(1)?)?;
    let rest = &line[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    Some(&rest[..end]).filter(|w| !w.is_empty())
}

/// The byte offset of the `}` that closes code starting at `start` (just after a `${`).
pub(crate) fn find_close(src: &str, start: usize) -> Result<usize, LexError> {
    let mut scanner = Scanner::new(src);
    match scanner.code(start, true)? {
        Some(close) => Ok(close),
        None => Err(LexError {
            offset: start,
            message: "unterminated `${`: no matching `}`",
        }),
    }
}

/// The step ids named as `steps.<id>` or `steps["<id>"]` (also with `?.` / `?[`), in order of
/// first appearance, without duplicates. `x.steps.y` is a property of `x`, not a reference.
pub(crate) fn step_refs(src: &str) -> Vec<String> {
    let toks = tokens(src);
    let mut refs: Vec<String> = Vec::new();
    let mut push = |id: String| {
        if !refs.contains(&id) {
            refs.push(id);
        }
    };
    for i in 0..toks.len() {
        if toks[i] != Tok::Ident("steps") {
            continue;
        }
        if i > 0 && toks[i - 1] == Tok::Punct(b'.') {
            continue;
        }
        let mut j = i + 1;
        if toks.get(j) == Some(&Tok::Punct(b'?')) {
            j += 1;
        }
        match (toks.get(j), toks.get(j + 1), toks.get(j + 2)) {
            (Some(Tok::Punct(b'.')), Some(Tok::Ident(id)), _) => push((*id).to_string()),
            (Some(Tok::Punct(b'[')), Some(Tok::Str(id)), Some(Tok::Punct(b']'))) => {
                push(id.clone())
            }
            _ => {}
        }
    }
    refs
}

struct Scanner<'a> {
    text: &'a str,
    src: &'a [u8],
    toks: Vec<Tok<'a>>,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Scanner<'a> {
        Scanner {
            text,
            src: text.as_bytes(),
            toks: Vec::new(),
        }
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.src.get(i).copied()
    }

    /// Scans code from `i`. With `stop_at_close`, returns the offset of the first `}` that
    /// closes nothing opened here; otherwise scans to the end and returns `None`.
    fn code(&mut self, mut i: usize, stop_at_close: bool) -> Result<Option<usize>, LexError> {
        let mut depth = 0usize;
        while let Some(b) = self.at(i) {
            match b {
                b if b.is_ascii_whitespace() => i += 1,
                b'/' if self.at(i + 1) == Some(b'/') => {
                    while self.at(i).is_some_and(|c| c != b'\n') {
                        i += 1;
                    }
                }
                b'/' if self.at(i + 1) == Some(b'*') => i = self.block_comment(i)?,
                b'"' | b'\'' => {
                    let (end, s) = self.quoted(i, b)?;
                    self.toks
                        .push(if b == b'"' { Tok::Str(s) } else { Tok::Other });
                    i = end;
                }
                b'`' => i = self.backtick(i)?,
                b'#' => {
                    let mut j = i;
                    while self.at(j) == Some(b'#') {
                        j += 1;
                    }
                    if self.at(j) == Some(b'"') {
                        i = self.raw(i, j - i)?;
                    } else {
                        self.toks.push(Tok::Punct(b'#'));
                        i += 1;
                    }
                }
                b if b.is_ascii_alphabetic() || b == b'_' => {
                    let start = i;
                    while self
                        .at(i)
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                    {
                        i += 1;
                    }
                    self.toks.push(Tok::Ident(&self.text[start..i]));
                }
                b if b.is_ascii_digit() => {
                    // Numbers never hide braces or identifiers; `1.0` and `0x1F` are one token.
                    while self
                        .at(i)
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                        || (self.at(i) == Some(b'.')
                            && self.at(i + 1).is_some_and(|c| c.is_ascii_digit()))
                    {
                        i += 1;
                    }
                    self.toks.push(Tok::Other);
                }
                b'{' => {
                    depth += 1;
                    self.toks.push(Tok::Punct(b'{'));
                    i += 1;
                }
                b'}' => {
                    if depth == 0 && stop_at_close {
                        return Ok(Some(i));
                    }
                    depth = depth.saturating_sub(1);
                    self.toks.push(Tok::Punct(b'}'));
                    i += 1;
                }
                b if b.is_ascii() => {
                    self.toks.push(Tok::Punct(b));
                    i += 1;
                }
                _ => {
                    self.toks.push(Tok::Other);
                    i += 1;
                }
            }
        }
        Ok(None)
    }

    /// Skips a (nested, as in Rhai) block comment starting at `start`; returns the offset after it.
    fn block_comment(&self, start: usize) -> Result<usize, LexError> {
        let mut depth = 0usize;
        let mut i = start;
        loop {
            match (self.at(i), self.at(i + 1)) {
                (Some(b'/'), Some(b'*')) => {
                    depth += 1;
                    i += 2;
                }
                (Some(b'*'), Some(b'/')) => {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        return Ok(i);
                    }
                }
                (Some(_), _) => i += 1,
                (None, _) => {
                    return Err(LexError {
                        offset: start,
                        message: "unterminated block comment",
                    })
                }
            }
        }
    }

    /// A `"..."` or `'...'` literal at `start`: returns the offset after it and its content with
    /// simple escapes decoded (enough to read a step id).
    fn quoted(&self, start: usize, quote: u8) -> Result<(usize, String), LexError> {
        let mut out = Vec::new();
        let mut i = start + 1;
        loop {
            match self.at(i) {
                Some(b'\\') => {
                    match self.at(i + 1) {
                        Some(b'n') => out.push(b'\n'),
                        Some(b't') => out.push(b'\t'),
                        Some(b'r') => out.push(b'\r'),
                        Some(b'\n') | None => {}
                        Some(c) => out.push(c),
                    }
                    i += 2;
                }
                // Rhai reads a doubled quote inside a literal as one quote character.
                Some(c) if c == quote && self.at(i + 1) == Some(quote) => {
                    out.push(quote);
                    i += 2;
                }
                Some(c) if c == quote => {
                    return Ok((i + 1, String::from_utf8_lossy(&out).into_owned()));
                }
                Some(c) => {
                    out.push(c);
                    i += 1;
                }
                None => {
                    return Err(LexError {
                        offset: start,
                        message: "unterminated string",
                    })
                }
            }
        }
    }

    /// A back-tick string at `start`, scanning the code of each `${...}` inside it.
    fn backtick(&mut self, start: usize) -> Result<usize, LexError> {
        let mut out = Vec::new();
        let mut interpolated = false;
        let mut i = start + 1;
        loop {
            match self.at(i) {
                Some(b'`') if self.at(i + 1) == Some(b'`') => {
                    out.push(b'`');
                    i += 2;
                }
                Some(b'`') => {
                    self.toks.push(if interpolated {
                        Tok::Other
                    } else {
                        Tok::Str(String::from_utf8_lossy(&out).into_owned())
                    });
                    return Ok(i + 1);
                }
                // `\${` is a literal `${` in a back-tick string.
                Some(b'\\') if self.at(i + 1) == Some(b'$') => {
                    out.extend_from_slice(b"\\$");
                    i += 2;
                }
                Some(b'$') if self.at(i + 1) == Some(b'{') => {
                    interpolated = true;
                    // The interpolation as punctuation, so its code reads as a braced block.
                    self.toks.push(Tok::Punct(b'$'));
                    self.toks.push(Tok::Punct(b'{'));
                    let close = match self.code(i + 2, true)? {
                        Some(close) => close,
                        None => {
                            return Err(LexError {
                                offset: i,
                                message: "unterminated `${` in a back-tick string",
                            })
                        }
                    };
                    self.toks.push(Tok::Punct(b'}'));
                    i = close + 1;
                }
                Some(c) => {
                    out.push(c);
                    i += 1;
                }
                None => {
                    return Err(LexError {
                        offset: start,
                        message: "unterminated back-tick string",
                    })
                }
            }
        }
    }

    /// A raw string `#..#"..."#..#` with `hashes` hashes, at `start`.
    fn raw(&mut self, start: usize, hashes: usize) -> Result<usize, LexError> {
        let body = start + hashes + 1;
        let mut i = body;
        while let Some(c) = self.at(i) {
            if c == b'"' && (1..=hashes).all(|k| self.at(i + k) == Some(b'#')) {
                self.toks.push(Tok::Str(
                    String::from_utf8_lossy(&self.src[body..i]).into_owned(),
                ));
                return Ok(i + 1 + hashes);
            }
            i += 1;
        }
        Err(LexError {
            offset: start,
            message: "unterminated raw string",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_brace_skips_nested_braces_strings_and_comments() {
        let src = r##"${ #{a: "}", b: '}', c: `}${ "}" }`, d: #"}"#} /* } */ // }
 }tail"##;
        let close = find_close(src, 2).expect("closes");
        assert_eq!(&src[close..], "}tail");
    }

    #[test]
    fn unterminated_is_an_error() {
        assert!(find_close("${ \"abc", 2).is_err());
        assert!(find_close("${ 1 + 2", 2).is_err());
        assert!(find_close("${ /* } ", 2).is_err());
    }

    #[test]
    fn step_refs_forms() {
        let src = r#"steps.isolate.output + steps["snap-shot"].output + steps?.a
            + x.steps.not_me + "steps.nor_me" + `${steps.inner}` + steps . spaced
            + steps.isolate + // steps.commented
            mysteps.no"#;
        assert_eq!(
            step_refs(src),
            vec!["isolate", "snap-shot", "a", "inner", "spaced"]
        );
    }
}
