//! Which scripts may run on the caller's stack, and how deep the values they handle can nest.
//!
//! Rhai recurses in three ways while it evaluates: over the AST (bounded by the compile-time
//! expression-depth limits), through function calls (script functions and closures), and over
//! nested values (clone, drop, `==`, printing, its own size checks), with no depth limit of its
//! own. The size limits allow values nested 20,000 deep, so evaluations normally run on a
//! stack segment sized for that (`stack`). Mapping that segment costs more than a typical
//! trigger condition; a script whose shape bounds the nesting of every value it can build runs
//! on the caller's stack instead, when enough of it is left ([`growth`]).
//!
//! The proof, from the script's tokens (scanned by `lex`, which sees inside `${...}` of
//! back-tick strings too). A script qualifies when:
//! - no token names a loop (`for`, `while`, `loop`, `do`), a function definition (`fn`) or a
//!   dynamic call (`Fn`, `call`, `curry`, `eval`): every expression outside closures runs at
//!   most once;
//! - every call is to a function in [`CALLS`], none of which calls back into the script or
//!   returns a value nested deeper than its arguments, or is an iterator in [`ITERATORS`] called
//!   with a closure literal;
//! - a closure body assigns nothing, holds no closure and calls only [`CALLS`]: however often
//!   an iterator runs it, it changes no variable and returns a scalar or part of the values it
//!   reads, and the call depth stays at one;
//! - there is no array or map literal (`[` that does not index, `#{`).
//!
//! Then the only operations that can nest a value deeper than the values that already exist
//! are assignments (`a[0] = a`, `m.k = m`, `a += ..` pushing), each one level, each run at most
//! once, and an iterator's result array, one level. So no value is nested deeper than the
//! context's deepest value plus the number of assignments plus one, which is what [`growth`]
//! returns beyond the context's depth.

use super::lex::{all_tokens, Tok};

/// Functions an inline script may call. None calls back into the script (array `contains`
/// and `index_of` compare with the native `==`), and none returns a value nested deeper than
/// its arguments.
pub(super) const CALLS: &[&str] = &[
    "len",
    "is_empty",
    "contains",
    "starts_with",
    "ends_with",
    "to_lower",
    "to_upper",
    "trim",
    "to_string",
    "to_int",
    "to_float",
    "parse_int",
    "parse_float",
    "abs",
    "floor",
    "ceiling",
    "round",
    "min",
    "max",
    "type_of",
    "sub_string",
    "split",
    "get",
    "keys",
    "values",
    "index_of",
];

/// Array iterators an inline script may call with a closure literal: each calls the closure
/// once per item and returns a boolean, an item, an index, or an array of closure results.
pub(super) const ITERATORS: &[&str] = &["some", "all", "filter", "find", "map", "index_of"];

/// Names that make a script run more than once per expression, or call what it computes.
const DENIED: &[&str] = &[
    "for", "while", "loop", "do", "fn", "Fn", "call", "curry", "eval", "import", "export", "this",
    "global",
];

/// Keywords that may precede `(`, `[` or `|` without being a call, an operand or a value.
const KEYWORDS: &[&str] = &[
    "if", "else", "switch", "return", "throw", "let", "const", "in", "try", "catch", "break",
    "continue",
];

/// How many levels of nesting evaluating `source` can add to the deepest value of its
/// context, or `None` when its shape does not bound it (or it cannot be scanned).
pub(super) fn growth(source: &str) -> Option<usize> {
    let toks = all_tokens(source).ok()?;
    let mut assignments = 0;
    let mut i = 0;
    while i < toks.len() {
        match toks[i] {
            Tok::Ident(name) if is_call(&toks, i) => {
                if ITERATORS.contains(&name) && toks.get(i + 2) == Some(&Tok::Punct(b'|')) {
                    i = closure_end(&toks, i + 2)?;
                    continue;
                }
                if !CALLS.contains(&name) {
                    return None;
                }
            }
            Tok::Punct(b'=') if !is_comparison(&toks, i) => assignments += 1,
            Tok::Punct(b'|') if is_logical_or(&toks, i) => i += 1,
            _ if !plain(&toks, i) => return None,
            _ => {}
        }
        i += 1;
    }
    Some(assignments + 1)
}

/// Whether token `i` is allowed anywhere: not a denied name, a map literal, an array literal,
/// a closure or a bitwise or.
fn plain(toks: &[Tok], i: usize) -> bool {
    match toks[i] {
        Tok::Ident(name) => !DENIED.contains(&name),
        Tok::Punct(b'#') | Tok::Punct(b'|') => false,
        Tok::Punct(b'[') => indexes(toks, i),
        _ => true,
    }
}

/// Whether the `[` at `i` indexes (`a[0]`, `f()[0]`, `a?[0]`) rather than opening an array
/// literal (`[1]`, `in [1]`, `a ?? [1]`).
fn indexes(toks: &[Tok], i: usize) -> bool {
    match i.checked_sub(1).map(|k| &toks[k]) {
        Some(Tok::Punct(b'?')) => i >= 2 && ends_operand(&toks[i - 2]),
        Some(prev) => ends_operand(prev),
        None => false,
    }
}

/// Whether `toks[i]` is a function or method name being called.
fn is_call(toks: &[Tok], i: usize) -> bool {
    matches!(toks[i], Tok::Ident(name) if !KEYWORDS.contains(&name))
        && toks.get(i + 1) == Some(&Tok::Punct(b'('))
}

/// Whether a token can end an operand, so that `[` after it indexes and `||` after it is a
/// logical or. A `}` does not: a block statement may be followed by a new statement.
fn ends_operand(tok: &Tok) -> bool {
    match tok {
        Tok::Ident(name) => !KEYWORDS.contains(name) && !DENIED.contains(name),
        Tok::Punct(c) => matches!(c, b')' | b']'),
        Tok::Str(_) | Tok::Other => true,
    }
}

/// Whether `toks[i]` starts a `||` between two operands.
fn is_logical_or(toks: &[Tok], i: usize) -> bool {
    i > 0 && ends_operand(&toks[i - 1]) && toks.get(i + 1) == Some(&Tok::Punct(b'|'))
}

/// Whether the `=` at `i` belongs to `==`, `!=`, `<=`, `>=` or `=>` rather than to an
/// assignment (`=`, `+=`, `<<=`, `??=`...).
fn is_comparison(toks: &[Tok], i: usize) -> bool {
    let prev = i.checked_sub(1).and_then(|k| punct(toks, k));
    let before = i.checked_sub(2).and_then(|k| punct(toks, k));
    match prev {
        Some(b'=') | Some(b'!') => true,
        Some(c @ (b'<' | b'>')) => before != Some(c),
        _ => matches!(punct(toks, i + 1), Some(b'=') | Some(b'>')),
    }
}

/// The byte of token `k` if it is punctuation.
fn punct(toks: &[Tok], k: usize) -> Option<u8> {
    match toks.get(k) {
        Some(Tok::Punct(c)) => Some(*c),
        _ => None,
    }
}

/// The closure whose opening `|` is at `start` (an iterator's first argument): checks its
/// parameters and body, and returns the index of the `,` or `)` that ends it.
fn closure_end(toks: &[Tok], start: usize) -> Option<usize> {
    let mut i = start + 1;
    // Parameters: `||`, or `|a|`, `|a, b|`.
    while toks.get(i) != Some(&Tok::Punct(b'|')) {
        match toks.get(i)? {
            Tok::Ident(_) | Tok::Punct(b',') => i += 1,
            _ => return None,
        }
    }
    i += 1;
    let mut depth = 0usize;
    loop {
        match toks.get(i)? {
            Tok::Punct(b'(' | b'[' | b'{') => depth += 1,
            Tok::Punct(b')' | b']' | b'}' | b',') if depth == 0 => return Some(i),
            Tok::Punct(b')' | b']' | b'}') => depth -= 1,
            _ => {}
        }
        match toks[i] {
            Tok::Ident(name) if is_call(toks, i) && !CALLS.contains(&name) => return None,
            Tok::Punct(b'=') if !is_comparison(toks, i) => return None,
            Tok::Punct(b'|') if is_logical_or(toks, i) => i += 1,
            _ if !plain(toks, i) => return None,
            _ => {}
        }
        i += 1;
    }
}

#[cfg(test)]
#[path = "inline_tests.rs"]
mod tests;
