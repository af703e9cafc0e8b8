//! EventBridge event patterns: compile, and match many patterns against one event.
//!
//! A playbook's `trigger.match` is an EventBridge event pattern pasted from an EventBridge
//! rule. cordon evaluates AWS's full pattern syntax itself (see the "Content filtering" and
//! "Comparison operators" pages of the EventBridge user guide, and the README of
//! `aws/event-ruler`, the library EventBridge matches with):
//!
//! - `leaf`: one field's array of match values (exact, `prefix`, `suffix`,
//!   `equals-ignore-case`, `wildcard`, `anything-but`, `numeric`, `exists`, `cidr`).
//! - `wildcard`, `cidr`: the two operators with their own little grammars.
//! - `compile`: a whole pattern, `$or` expanded into `$or`-free alternatives, and the
//!   array-consistent evaluation of one alternative against an event.
//! - `matcher`: [`PatternSet`], many patterns matched at once through `index`, which files
//!   each pattern under its necessary conditions in a `trie`, found per event by one walk
//!   along the indexed `paths`; it keeps matching 10,000 patterns about as cheap as matching a
//!   few (`fxhash`: the hash its maps use).
//!
//! Anything cordon cannot evaluate is a [`PatternError`] at compile time, carrying the JSON
//! path of the offending element; a pattern never silently fails to match.
//!
//! Semantic choices where the AWS pages are silent (each follows event-ruler unless noted):
//! - arrays of objects are array-consistent: a nested pattern object must be satisfied by one
//!   element (details and `exists: false` in `compile`);
//! - `anything-but` matches any present scalar not excluded, so `{"anything-but": "x"}`
//!   matches the number 5; a missing field never matches it;
//! - `exists` only sees leaf values: an object, `[]` or an array of objects counts as absent;
//! - an invalid `$or` (not an array of 2+ objects) is an error. event-ruler would instead
//!   treat such a `$or` as an ordinary field name; we refuse the ambiguity;
//! - `numeric` operands must lie in -5.0e9..=5.0e9; event values compare as f64;
//! - `cidr` also accepts a bare address (a /32 or /128 block); host bits are masked.

mod cidr;
mod compile;
mod fxhash;
mod index;
mod leaf;
mod matcher;
mod paths;
mod trie;
mod wildcard;

pub use compile::{compile, Pattern, MAX_ALTERNATIVES};
pub use matcher::PatternSet;

/// A pattern cordon cannot evaluate, and where in the pattern the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at `{path}`: {message}")]
pub struct PatternError {
    /// JSON path of the offending element, e.g. `detail.severity[0].numeric`; `(root)` for
    /// the pattern itself.
    pub path: String,
    /// What is wrong and what would be accepted instead.
    pub message: String,
}

impl PatternError {
    /// An error at `path` (as built by [`child_path`] / [`index_path`]).
    pub(crate) fn new(path: &str, message: impl Into<String>) -> Self {
        let path = if path.is_empty() { "(root)" } else { path };
        PatternError {
            path: path.to_string(),
            message: message.into(),
        }
    }
}

/// One field condition of a pattern and whether it held for an event (for `cordon explain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// Dotted event path of the field, e.g. `detail.severity`.
    pub path: String,
    /// The leaf pattern as compact JSON, e.g. `[{"numeric":[">=",7]}]`.
    pub expected: String,
    /// Whether some value of the event at `path` satisfied the leaf. Each condition is checked
    /// on its own: array consistency between conditions is not reflected here.
    pub matched: bool,
    /// Which alternative of the trigger it belongs to: a trigger with `$or` is one pattern per
    /// alternative, numbered from 0 in the order written (0 for a trigger without `$or`). The
    /// trigger matches when every condition of one alternative held.
    pub branch: usize,
}

/// `parent.key`, the JSON path of an object member (the root's members have no dot).
pub(crate) fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[i]`, the JSON path of an array element.
pub(crate) fn index_path(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// A short name for a JSON value's type, for error messages.
pub(crate) fn type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_display_names_path_and_message() {
        let e = PatternError::new("detail.severity[0].numeric", "bad");
        assert_eq!(e.to_string(), "at `detail.severity[0].numeric`: bad");
        assert_eq!(PatternError::new("", "x").path, "(root)");
    }

    #[test]
    fn paths_compose() {
        assert_eq!(child_path("", "detail"), "detail");
        assert_eq!(child_path("detail", "type"), "detail.type");
        assert_eq!(index_path("detail.type", 2), "detail.type[2]");
    }
}
