//! Script errors, phrased for playbook authors.
//!
//! Rhai's own messages are written for Rust embedders ("Too many operations", "Expression
//! exceeds maximum complexity"); a playbook author needs to know which budget was hit and what
//! its value is, and where in their script a syntax error sits.

use rhai::{EvalAltResult, ParseError, ParseErrorType, Position};
use thiserror::Error;

use super::Limits;

/// Which sandbox limit a script ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetLimit {
    /// [`Limits::max_operations`]: the script ran too many steps (usually an endless loop).
    Operations,
    /// [`Limits::max_call_depth`]: functions nested too deeply (usually runaway recursion).
    CallDepth,
    /// [`Limits::max_string_size`]: a string grew too long.
    StringSize,
    /// [`Limits::max_array_size`]: an array (or BLOB) grew too large.
    ArraySize,
    /// [`Limits::max_map_size`]: an object map grew too large.
    MapSize,
    /// [`Limits::max_variables`]: too many variables alive at once.
    Variables,
    /// [`Limits::time`]: the evaluation ran past its wall-clock budget.
    Time,
}

impl BudgetLimit {
    /// The limit's name as written in messages ("operations", "call depth", ...).
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetLimit::Operations => "operations",
            BudgetLimit::CallDepth => "call depth",
            BudgetLimit::StringSize => "string size",
            BudgetLimit::ArraySize => "array size",
            BudgetLimit::MapSize => "map size",
            BudgetLimit::Variables => "variables",
            BudgetLimit::Time => "time",
        }
    }
}

impl std::fmt::Display for BudgetLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Keywords the sandbox disables (see `Sandbox::new`).
const DISABLED: &[&str] = &["eval", "curry"];

/// The message for a disabled keyword.
pub(crate) fn unavailable(word: &str) -> String {
    format!("'{word}' is not available in playbook scripts")
}

/// Why a script or template failed to compile or evaluate.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScriptError {
    /// The source does not compile. `line` and `column` are 1-based and count characters in the
    /// text the author wrote (for a template, the whole template string), or are 0 when Rhai
    /// gave no position.
    #[error("syntax error at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The script ran into one of the sandbox's limits.
    #[error("{message}")]
    Budget {
        /// Which limit.
        limit: BudgetLimit,
        /// A sentence naming the limit and its value.
        message: String,
    },
    /// The script failed while running (a `throw`, an undefined function, a bad index...).
    #[error("script error: {0}")]
    Runtime(String),
    /// The script ran but its value has the wrong type (a trigger that is not a bool) or cannot
    /// be turned into JSON.
    #[error("type error: {0}")]
    Type(String),
}

impl ScriptError {
    /// The limit hit, for [`ScriptError::Budget`].
    pub fn budget_limit(&self) -> Option<BudgetLimit> {
        match self {
            ScriptError::Budget { limit, .. } => Some(*limit),
            _ => None,
        }
    }

    /// A syntax error at a Rhai position (which may be "none").
    pub(crate) fn syntax_at(pos: Position, message: String) -> ScriptError {
        ScriptError::Syntax {
            line: pos.line().unwrap_or(0),
            column: pos.position().unwrap_or(0),
            message,
        }
    }

    /// The message of a parse error, rewritten where Rhai's wording would puzzle an author.
    pub(crate) fn from_parse(err: &ParseError, limits: &Limits) -> ScriptError {
        let message = match err.err_type() {
            ParseErrorType::ExprTooDeep => format!(
                "expression nested too deeply (limits: {} levels, {} inside functions)",
                limits.max_expr_depth, limits.max_function_expr_depth
            ),
            ParseErrorType::Reserved(word) if word == "import" || word == "export" => {
                format!("'{word}': modules are not available in playbook scripts")
            }
            ParseErrorType::Reserved(word) if DISABLED.contains(&word.as_str()) => {
                unavailable(word)
            }
            ParseErrorType::BadInput(rhai::LexError::ImproperSymbol(sym, _))
                if DISABLED.contains(&sym.as_str()) =>
            {
                unavailable(sym)
            }
            other => other.to_string(),
        };
        ScriptError::syntax_at(err.position(), message)
    }

    /// Maps an evaluation error. `time_marker` is the token the wall-clock check terminates with.
    pub(crate) fn from_eval(err: EvalAltResult, limits: &Limits, time_marker: &str) -> ScriptError {
        let budget = |limit: BudgetLimit, message: String| ScriptError::Budget { limit, message };
        match err {
            // A budget error inside a function arrives wrapped once per call level; the author
            // needs the budget, not the call chain.
            EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => {
                ScriptError::from_eval(*inner, limits, time_marker)
            }
            EvalAltResult::ErrorTooManyOperations(pos) => budget(
                BudgetLimit::Operations,
                format!(
                    "script exceeded its budget of {} operations{} (an endless loop?)",
                    limits.max_operations,
                    at(pos)
                ),
            ),
            EvalAltResult::ErrorStackOverflow(pos) => budget(
                BudgetLimit::CallDepth,
                format!(
                    "script exceeded the maximum call depth of {}{} (runaway recursion?)",
                    limits.max_call_depth,
                    at(pos)
                ),
            ),
            EvalAltResult::ErrorTooManyVariables(pos) => budget(
                BudgetLimit::Variables,
                format!(
                    "script exceeded the limit of {} variables{}",
                    limits.max_variables,
                    at(pos)
                ),
            ),
            EvalAltResult::ErrorDataTooLarge(what, pos) => {
                let (limit, message) = if what.starts_with("Length of string") {
                    (
                        BudgetLimit::StringSize,
                        format!(
                            "script built a string longer than the limit of {} bytes",
                            limits.max_string_size
                        ),
                    )
                } else if what.starts_with("Size of object map") {
                    (
                        BudgetLimit::MapSize,
                        format!(
                            "script built a map larger than the limit of {} entries",
                            limits.max_map_size
                        ),
                    )
                } else {
                    // "Size of array/BLOB", "Size of BLOB"
                    (
                        BudgetLimit::ArraySize,
                        format!(
                            "script built an array larger than the limit of {} items",
                            limits.max_array_size
                        ),
                    )
                };
                budget(limit, format!("{message}{}", at(pos)))
            }
            EvalAltResult::ErrorTerminated(token, pos)
                if token.clone().into_immutable_string().ok().as_deref() == Some(time_marker) =>
            {
                budget(
                    BudgetLimit::Time,
                    format!(
                        "script exceeded its time budget of {} ms{}",
                        limits.time.as_millis(),
                        at(pos)
                    ),
                )
            }
            EvalAltResult::ErrorParsing(kind, pos) => {
                ScriptError::from_parse(&ParseError(Box::new(kind), pos), limits)
            }
            EvalAltResult::ErrorMismatchDataType(..)
            | EvalAltResult::ErrorMismatchOutputType(..) => ScriptError::Type(err.to_string()),
            EvalAltResult::ErrorFunctionNotFound(ref signature, _) if signature.contains("()") => {
                // The usual cause is an operator applied to a field the finding does not have.
                ScriptError::Runtime(format!(
                    "{err} (a missing field is (); test presence with `\"field\" in finding`)"
                ))
            }
            other => ScriptError::Runtime(other.to_string()),
        }
    }
}

/// " at line L, column C" for a known position, else nothing.
fn at(pos: Position) -> String {
    match (pos.line(), pos.position()) {
        (Some(line), Some(column)) => format!(" at line {line}, column {column}"),
        (Some(line), None) => format!(" at line {line}"),
        _ => String::new(),
    }
}
