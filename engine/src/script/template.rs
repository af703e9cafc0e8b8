//! `${...}` templates in playbook step parameters.
//!
//! A template is split once, at load time, into literal text and compiled expressions. Only the
//! template text the playbook author wrote is ever parsed: the *values* an expression yields
//! (finding fields, which attackers influence) are inserted as data and never scanned for
//! `${` again.
//!
//! An expression whose value is `()` (a missing field, JSON `null`, an `if` without `else` that
//! did not run) is an error naming the expression, never an empty string: `i-${x}` with `x`
//! missing would otherwise still name something, and an empty parameter can select more than
//! meant. An author who wants an optional value says so with a default: `${finding.x ?? ""}`.

use std::sync::Arc;

use super::lex;
use super::{Script, ScriptError};

/// One piece of a template.
#[derive(Debug, Clone)]
pub(crate) enum Part {
    /// Text copied verbatim (with `$${` already turned into `${`).
    Literal(String),
    /// A compiled `${...}` expression.
    Expr(Script),
}

/// A compiled `${...}` template; see [`Sandbox::compile_template`](super::Sandbox::compile_template).
///
/// Cheap to clone (the parts are shared).
#[derive(Debug, Clone)]
pub struct Template {
    pub(crate) source: Arc<str>,
    pub(crate) parts: Arc<[Part]>,
}

impl Template {
    /// The template text as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the template has no `${...}`: rendering it runs no script.
    pub fn is_constant(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// True when the template is exactly one `${...}` and nothing else, so it renders to the
    /// expression's typed value rather than to a string.
    pub fn is_single_expression(&self) -> bool {
        matches!(&*self.parts, [Part::Expr(_)])
    }

    /// Its compiled `${...}` expressions, in order.
    pub(crate) fn scripts(&self) -> impl Iterator<Item = &Script> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr(script) => Some(script),
            Part::Literal(_) => None,
        })
    }

    /// The step ids its expressions reference as `steps.<id>` or `steps["<id>"]`, in order of
    /// first appearance, without duplicates.
    pub fn step_refs(&self) -> Vec<String> {
        let mut refs: Vec<String> = Vec::new();
        for id in self.scripts().flat_map(Script::step_refs) {
            if !refs.contains(&id) {
                refs.push(id);
            }
        }
        refs
    }
}

/// A piece of template text before compilation: literal text, or an expression with the byte
/// offset where its source starts in the template.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RawPart<'a> {
    Literal(String),
    Expr { source: &'a str, offset: usize },
}

/// Splits template text into literal and expression parts. Adjacent literals are merged and
/// empty literals dropped, so `"${x}"` is exactly one expression part.
pub(crate) fn split(text: &str) -> Result<Vec<RawPart<'_>>, ScriptError> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut i = 0;
    let mut copied_to = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        if bytes[i..].starts_with(b"$${") {
            // `$${` is an escaped, literal `${`.
            literal.push_str(&text[copied_to..i]);
            literal.push_str("${");
            i += 3;
            copied_to = i;
        } else if bytes[i..].starts_with(b"${") {
            literal.push_str(&text[copied_to..i]);
            if !literal.is_empty() {
                parts.push(RawPart::Literal(std::mem::take(&mut literal)));
            }
            let start = i + 2;
            let close = lex::find_close(text, start).map_err(|e| {
                let (line, column) = line_column(text, e.offset);
                ScriptError::Syntax {
                    line,
                    column,
                    message: e.message.to_string(),
                }
            })?;
            let source = &text[start..close];
            if source.trim().is_empty() {
                let (line, column) = line_column(text, i);
                return Err(ScriptError::Syntax {
                    line,
                    column,
                    message: "empty `${}` expression".to_string(),
                });
            }
            parts.push(RawPart::Expr {
                source,
                offset: start,
            });
            i = close + 1;
            copied_to = i;
        } else {
            i += 1;
        }
    }
    literal.push_str(&text[copied_to..]);
    if !literal.is_empty() {
        parts.push(RawPart::Literal(literal));
    }
    Ok(parts)
}

/// The 1-based line and character column of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Moves a syntax error's position from an expression's own coordinates to the template's,
/// given where the expression starts in the template.
pub(crate) fn shift_error(err: ScriptError, text: &str, offset: usize) -> ScriptError {
    match err {
        ScriptError::Syntax {
            line,
            column,
            message,
        } if line > 0 => {
            let (start_line, start_column) = line_column(text, offset);
            let (line, column) = if line == 1 {
                (start_line, start_column + column.saturating_sub(1))
            } else {
                (start_line + line - 1, column)
            };
            ScriptError::Syntax {
                line,
                column,
                message,
            }
        }
        other => other,
    }
}

/// One `${...}` expression's value, refused when it is `()` (JSON `null`), see the module
/// docs. `source` is the expression as written, quoted (truncated) in the error.
pub(crate) fn require_value(
    value: serde_json::Value,
    source: &str,
) -> Result<serde_json::Value, ScriptError> {
    if value.is_null() {
        return Err(ScriptError::Runtime(format!(
            "in ${{{}}}: the value is () (a missing field or no value), and a template never \
             inserts nothing; where an absent value is meant, give a default: `${{x ?? \"\"}}`",
            super::value::truncate(source.trim(), 80)
        )));
    }
    Ok(value)
}

/// A rendered value (never `null`, see [`require_value`]) spliced into a larger string: strings
/// verbatim, other values as compact JSON.
pub(crate) fn stringify(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::String(s) => out.push_str(s),
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_escapes_and_parts() {
        let parts = split("a $${b} ${x} c").expect("splits");
        assert_eq!(
            parts,
            vec![
                RawPart::Literal("a ${b} ".into()),
                RawPart::Expr {
                    source: "x",
                    offset: 10
                },
                RawPart::Literal(" c".into()),
            ]
        );
        assert_eq!(
            split("${x}").expect("splits"),
            vec![RawPart::Expr {
                source: "x",
                offset: 2
            }]
        );
        assert_eq!(split("").expect("splits"), vec![]);
        assert_eq!(
            split("just $ and { }").expect("splits"),
            vec![RawPart::Literal("just $ and { }".into())]
        );
    }

    #[test]
    fn split_errors_carry_positions() {
        match split("ok\n  ${ 1 + ") {
            Err(ScriptError::Syntax { line, column, .. }) => assert_eq!((line, column), (2, 5)),
            other => panic!("expected a syntax error, got {other:?}"),
        }
        assert!(matches!(split("${  }"), Err(ScriptError::Syntax { .. })));
    }

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("héllo", 3), (1, 3));
        assert_eq!(line_column("a\nbc", 3), (2, 2));
    }
}
