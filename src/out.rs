//! Everything the CLI prints for people goes through here, for two reasons.
//!
//! - Finding fields (ids, titles, tags, user names) are attacker-controlled: a newline would
//!   forge an output or log line, an escape sequence would rewrite the screen. [`printable`]
//!   escapes every control character (and the Unicode bidirectional controls that reorder what
//!   a terminal shows), and [`outln!`] / [`errln!`] apply it to every whole line they print, so
//!   no caller can forget a field. JSON output ([`json`]) is escaped by serde instead.
//! - A reader that closes early (`cordon runs list | head -1`) is normal on Unix. A write to
//!   stdout failing with `BrokenPipe` becomes [`StdoutClosed`], which `main` turns into a quiet
//!   exit 0 (as ripgrep does), instead of `println!`'s panic. SIGPIPE stays ignored (Rust's
//!   default), so a server writing to a socket its peer reset gets an error it can handle, not a
//!   dead process.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Write};

use anyhow::{Context as _, Result};
use serde::Serialize;

/// Stdout was closed by its reader: stop, say nothing, exit 0.
#[derive(Debug)]
pub struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stdout was closed by its reader")
    }
}

impl std::error::Error for StdoutClosed {}

/// Whether a character must not reach a terminal or a log line as it is.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}'
            | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with control characters written as Rust escapes (`\n`, `\u{1b}`, `\u{202e}`): one
/// line, and nothing a terminal would act on. Borrowed when nothing needed escaping.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        other => other.context("writing to stdout"),
    }
}

/// Prints one line to stdout, escaped with [`printable`]. Use through [`outln!`].
pub fn line(args: fmt::Arguments<'_>) -> Result<()> {
    let text = args.to_string();
    let mut bytes = printable(&text).into_owned().into_bytes();
    bytes.push(b'\n');
    write_stdout(&bytes)
}

/// Prints a question on stdout without a newline (the answer is typed after it), escaped with
/// [`printable`].
pub fn prompt(text: &str) -> Result<()> {
    write_stdout(printable(text).as_bytes())
}

/// Prints `value` as pretty JSON (serde escapes control characters in strings).
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    write_stdout(&bytes)
}

/// Prints one line to stderr, escaped with [`printable`]. Use through [`errln!`]. A failing
/// stderr is ignored: there is nowhere left to say anything.
pub fn err_line(args: fmt::Arguments<'_>) {
    let text = args.to_string();
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{}", printable(&text));
}

/// `outln!("run {}", id)?`: one escaped line on stdout; `Err(StdoutClosed)` once nobody reads.
macro_rules! outln {
    () => { $crate::out::line(format_args!("")) };
    ($($arg:tt)*) => { $crate::out::line(format_args!($($arg)*)) };
}

/// `errln!("error: {e}")`: one escaped line on stderr.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::out::err_line(format_args!($($arg)*)) };
}

pub(crate) use {errln, outln};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_plain_text_is_kept() {
        assert!(matches!(printable("i-0abc / café"), Cow::Borrowed(_)));
        assert_eq!(
            printable("id\n2026-01-01 INFO forged\r\u{1b}[2J\u{7}\t\u{9b}x"),
            "id\\n2026-01-01 INFO forged\\r\\u{1b}[2J\\u{7}\\t\\u{9b}x"
        );
        assert_eq!(printable("abc\u{202e}fdp.exe"), "abc\\u{202e}fdp.exe");
        assert_eq!(printable("\u{2028}\u{2066}"), "\\u{2028}\\u{2066}");
    }
}
