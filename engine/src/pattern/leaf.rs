//! Leaf patterns: one field's array of match values, and the value matchers inside it
//! (exact values, `prefix`, `suffix`, `equals-ignore-case`, `wildcard`, `anything-but`,
//! `numeric`, `exists`, `cidr`).
//!
//! A leaf matches when ANY of its matchers matches ANY scalar value of the event field; an
//! event array is flattened (arrays of arrays included) and objects inside it are not leaf
//! values. `exists` follows event-ruler: it only sees leaf values, so a field whose value is
//! an object, `[]` or an array of objects counts as absent.

use serde_json::Value;

use super::cidr::Cidr;
use super::wildcard::Wildcard;
use super::{child_path, index_path, type_name, PatternError};

/// Largest magnitude EventBridge accepts in a `numeric` comparison (it documents the range
/// -5.0e9 to +5.0e9 inclusive; older pages said ±1.0e9, we take the current, wider one).
pub(crate) const NUMERIC_LIMIT: f64 = 5.0e9;

/// The operators a match object may use, for error messages.
const OPERATORS: &str =
    "prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, exists, cidr";

/// A compiled leaf: the field's match values, OR-ed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Leaf {
    /// The match values, in pattern order.
    pub(crate) matchers: Vec<Matcher>,
    /// The leaf as compact JSON, for `explain`.
    pub(crate) expected: String,
    /// Set by `PatternSet`: one id per distinct (event path, leaf) so a leaf shared by many
    /// candidates (`source`, `detail-type`...) is evaluated once per event.
    pub(crate) memo_id: Option<u32>,
}

/// An exact value. Numbers compare numerically (`[8]` matches `8.0`), never with strings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Exact {
    /// A JSON string.
    Str(String),
    /// A JSON number, as f64.
    Num(f64),
    /// `true` / `false`.
    Bool(bool),
    /// `null`.
    Null,
}

/// One value matcher of a leaf.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Matcher {
    /// A literal value.
    Exact(Exact),
    /// `{"prefix": "..."}`.
    Prefix(String),
    /// `{"prefix": {"equals-ignore-case": "..."}}`, stored lower-cased.
    PrefixIgnoreCase(String),
    /// `{"suffix": "..."}`.
    Suffix(String),
    /// `{"suffix": {"equals-ignore-case": "..."}}`, stored lower-cased.
    SuffixIgnoreCase(String),
    /// `{"equals-ignore-case": "..."}`, stored lower-cased.
    EqualsIgnoreCase(String),
    /// `{"wildcard": "..."}`.
    Wildcard(Wildcard),
    /// `{"anything-but": ...}`.
    AnythingBut(AnythingBut),
    /// `{"numeric": [...]}`.
    Numeric(Range),
    /// `{"exists": bool}`.
    Exists(bool),
    /// `{"cidr": "..."}`.
    Cidr(Cidr),
}

/// What an `anything-but` excludes. A scalar matches when it is NOT excluded, so numbers,
/// booleans and null pass an `anything-but` of strings (as in event-ruler); only a missing
/// field fails every `anything-but`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AnythingBut {
    /// Exact strings.
    Strings(Vec<String>),
    /// Numbers, compared numerically.
    Numbers(Vec<f64>),
    /// `{"prefix": ...}`.
    Prefixes(Vec<String>),
    /// `{"suffix": ...}`.
    Suffixes(Vec<String>),
    /// `{"equals-ignore-case": ...}`, lower-cased.
    IgnoreCase(Vec<String>),
    /// `{"wildcard": ...}`.
    Wildcards(Vec<Wildcard>),
}

/// A numeric range; `=` is a range whose two ends are the same inclusive value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Range {
    /// Lower bound and whether it is inclusive.
    lower: Option<(f64, bool)>,
    /// Upper bound and whether it is inclusive.
    upper: Option<(f64, bool)>,
}

impl Range {
    fn contains(&self, x: f64) -> bool {
        let above = match self.lower {
            Some((b, true)) => x >= b,
            Some((b, false)) => x > b,
            None => true,
        };
        let below = match self.upper {
            Some((b, true)) => x <= b,
            Some((b, false)) => x < b,
            None => true,
        };
        above && below
    }
}

/// Calls `f` on each scalar under `v` (arrays flattened, objects skipped) until it returns
/// true; returns whether it did.
pub(crate) fn any_scalar(v: &Value, f: &mut impl FnMut(&Value) -> bool) -> bool {
    match v {
        Value::Array(items) => items.iter().any(|item| any_scalar(item, f)),
        Value::Object(_) => false,
        scalar => f(scalar),
    }
}

impl Leaf {
    /// Compile the array `items` found at field path `path`.
    pub(crate) fn parse(items: &[Value], path: &str) -> Result<Self, PatternError> {
        if items.is_empty() {
            return Err(PatternError::new(
                path,
                "an empty array matches nothing; give at least one match value, e.g. [\"value\"]",
            ));
        }
        let matchers = items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_matcher(item, &index_path(path, i)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Leaf {
            matchers,
            expected: Value::Array(items.to_vec()).to_string(),
            memo_id: None,
        })
    }

    /// Whether the event value (None when the field is missing) satisfies the leaf.
    pub(crate) fn matches(&self, event: Option<&Value>) -> bool {
        let mut has_scalar = false;
        if let Some(v) = event {
            let hit = any_scalar(v, &mut |s| {
                has_scalar = true;
                self.matchers.iter().any(|m| m.matches_scalar(s))
            });
            if hit {
                return true;
            }
        }
        self.matchers
            .iter()
            .any(|m| matches!(m, Matcher::Exists(want) if *want == has_scalar))
    }

    /// True when the leaf only asks for the field to be absent (`[{"exists": false}]`).
    pub(crate) fn absence_only(&self) -> bool {
        self.matchers
            .iter()
            .all(|m| matches!(m, Matcher::Exists(false)))
    }
}

impl Matcher {
    /// Whether one scalar event value (string, number, bool or null) matches.
    pub(crate) fn matches_scalar(&self, v: &Value) -> bool {
        match self {
            Matcher::Exact(e) => exact_matches(e, v),
            Matcher::Prefix(p) => v.as_str().is_some_and(|s| s.starts_with(p.as_str())),
            Matcher::PrefixIgnoreCase(p) => v.as_str().is_some_and(|s| starts_with_ic(s, p)),
            Matcher::Suffix(p) => v.as_str().is_some_and(|s| s.ends_with(p.as_str())),
            Matcher::SuffixIgnoreCase(p) => v.as_str().is_some_and(|s| ends_with_ic(s, p)),
            Matcher::EqualsIgnoreCase(p) => v.as_str().is_some_and(|s| equals_ic(s, p)),
            Matcher::Wildcard(w) => v.as_str().is_some_and(|s| w.matches(s)),
            Matcher::AnythingBut(ab) => !ab.excludes(v),
            Matcher::Numeric(r) => v.as_f64().is_some_and(|x| r.contains(x)),
            // `exists` is decided per field in `Leaf::matches`, not per value.
            Matcher::Exists(_) => false,
            Matcher::Cidr(c) => v.as_str().is_some_and(|s| c.contains(s)),
        }
    }
}

impl AnythingBut {
    fn excludes(&self, v: &Value) -> bool {
        match (self, v) {
            (AnythingBut::Strings(list), Value::String(s)) => list.iter().any(|x| x == s),
            (AnythingBut::Numbers(list), Value::Number(n)) => {
                n.as_f64().is_some_and(|x| list.contains(&x))
            }
            (AnythingBut::Prefixes(list), Value::String(s)) => {
                list.iter().any(|p| s.starts_with(p.as_str()))
            }
            (AnythingBut::Suffixes(list), Value::String(s)) => {
                list.iter().any(|p| s.ends_with(p.as_str()))
            }
            (AnythingBut::IgnoreCase(list), Value::String(s)) => {
                list.iter().any(|p| equals_ic(s, p))
            }
            (AnythingBut::Wildcards(list), Value::String(s)) => list.iter().any(|w| w.matches(s)),
            _ => false,
        }
    }
}

fn exact_matches(e: &Exact, v: &Value) -> bool {
    match (e, v) {
        (Exact::Str(a), Value::String(b)) => a == b,
        (Exact::Num(a), Value::Number(b)) => b.as_f64() == Some(*a),
        (Exact::Bool(a), Value::Bool(b)) => a == b,
        (Exact::Null, Value::Null) => true,
        _ => false,
    }
}

/// `s` equals `lower` (already lower-cased) ignoring case, without allocating.
fn equals_ic(s: &str, lower: &str) -> bool {
    s.chars().flat_map(char::to_lowercase).eq(lower.chars())
}

fn starts_with_ic(s: &str, lower: &str) -> bool {
    let mut folded = s.chars().flat_map(char::to_lowercase);
    lower.chars().all(|c| folded.next() == Some(c))
}

fn ends_with_ic(s: &str, lower: &str) -> bool {
    let mut folded = s.chars().rev().flat_map(|c| c.to_lowercase().rev());
    lower.chars().rev().all(|c| folded.next() == Some(c))
}

fn parse_matcher(item: &Value, path: &str) -> Result<Matcher, PatternError> {
    Ok(match item {
        Value::String(s) => Matcher::Exact(Exact::Str(s.clone())),
        Value::Number(n) => Matcher::Exact(Exact::Num(number(n, path)?)),
        Value::Bool(b) => Matcher::Exact(Exact::Bool(*b)),
        Value::Null => Matcher::Exact(Exact::Null),
        Value::Array(_) => return Err(PatternError::new(
            path,
            "arrays cannot be nested in a match list; put the values directly in the field's array",
        )),
        Value::Object(map) => {
            let mut entries = map.iter();
            let (op, operand) = match (entries.next(), entries.next()) {
                (Some(entry), None) => entry,
                _ => {
                    return Err(PatternError::new(
                        path,
                        format!(
                            "a match object must have exactly one operator ({OPERATORS}), found {} keys",
                            map.len()
                        ),
                    ))
                }
            };
            parse_operator(op, operand, &child_path(path, op))?
        }
    })
}

fn parse_operator(op: &str, v: &Value, path: &str) -> Result<Matcher, PatternError> {
    Ok(match op {
        "prefix" | "suffix" => {
            let is_prefix = op == "prefix";
            match v {
                Value::String(s) if is_prefix => Matcher::Prefix(s.clone()),
                Value::String(s) => Matcher::Suffix(s.clone()),
                Value::Object(_) => {
                    let lower = ignore_case_operand(v, path)?;
                    if is_prefix {
                        Matcher::PrefixIgnoreCase(lower)
                    } else {
                        Matcher::SuffixIgnoreCase(lower)
                    }
                }
                other => return Err(expected_string_or_ic(op, other, path)),
            }
        }
        "equals-ignore-case" => Matcher::EqualsIgnoreCase(string(v, path, op)?.to_lowercase()),
        "wildcard" => Matcher::Wildcard(Wildcard::parse(string(v, path, op)?, path)?),
        "anything-but" => Matcher::AnythingBut(parse_anything_but(v, path)?),
        "numeric" => Matcher::Numeric(parse_numeric(v, path)?),
        "exists" => match v {
            Value::Bool(b) => Matcher::Exists(*b),
            other => {
                return Err(PatternError::new(
                    path,
                    format!("`exists` takes true or false, found {}", type_name(other)),
                ))
            }
        },
        "cidr" => Matcher::Cidr(Cidr::parse(string(v, path, op)?, path)?),
        unknown => {
            return Err(PatternError::new(
                path,
                format!("unknown operator `{unknown}`; expected one of {OPERATORS}"),
            ))
        }
    })
}

/// `{"equals-ignore-case": "..."}` inside `prefix` / `suffix`, returned lower-cased.
fn ignore_case_operand(v: &Value, path: &str) -> Result<String, PatternError> {
    if let Value::Object(map) = v {
        if let (1, Some(Value::String(s))) = (map.len(), map.get("equals-ignore-case")) {
            return Ok(s.to_lowercase());
        }
    }
    Err(PatternError::new(
        path,
        "expected a string or {\"equals-ignore-case\": \"...\"}",
    ))
}

fn expected_string_or_ic(op: &str, found: &Value, path: &str) -> PatternError {
    PatternError::new(
        path,
        format!(
            "`{op}` takes a string or {{\"equals-ignore-case\": \"...\"}}, found {}",
            type_name(found)
        ),
    )
}

fn string<'a>(v: &'a Value, path: &str, op: &str) -> Result<&'a str, PatternError> {
    v.as_str().ok_or_else(|| {
        PatternError::new(
            path,
            format!("`{op}` takes a string, found {}", type_name(v)),
        )
    })
}

fn number(n: &serde_json::Number, path: &str) -> Result<f64, PatternError> {
    n.as_f64()
        .filter(|x| x.is_finite())
        .ok_or_else(|| PatternError::new(path, "number is not representable as a 64-bit float"))
}

fn parse_anything_but(v: &Value, path: &str) -> Result<AnythingBut, PatternError> {
    const ACCEPTED: &str = "`anything-but` takes a string, a number, a non-empty array of only strings or only numbers, or an object with one of prefix, suffix, equals-ignore-case, wildcard";
    match v {
        Value::String(s) => Ok(AnythingBut::Strings(vec![s.clone()])),
        Value::Number(n) => Ok(AnythingBut::Numbers(vec![number(n, path)?])),
        Value::Array(items) if !items.is_empty() => {
            if items.iter().all(Value::is_string) {
                Ok(AnythingBut::Strings(
                    items
                        .iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect(),
                ))
            } else if items.iter().all(Value::is_number) {
                let nums = items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| match x {
                        Value::Number(n) => number(n, &index_path(path, i)),
                        _ => Err(PatternError::new(path, ACCEPTED)),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(AnythingBut::Numbers(nums))
            } else {
                Err(PatternError::new(path, ACCEPTED))
            }
        }
        Value::Object(map) if map.len() == 1 => {
            let Some((op, operand)) = map.iter().next() else {
                return Err(PatternError::new(path, ACCEPTED));
            };
            let op_path = child_path(path, op);
            let list = string_list(operand, &op_path, op)?;
            match op.as_str() {
                "prefix" | "suffix" if list.iter().any(String::is_empty) => Err(PatternError::new(
                    &op_path,
                    format!("an empty `{op}` would exclude every string; give a non-empty one"),
                )),
                "prefix" => Ok(AnythingBut::Prefixes(list)),
                "suffix" => Ok(AnythingBut::Suffixes(list)),
                "equals-ignore-case" => Ok(AnythingBut::IgnoreCase(
                    list.iter().map(|s| s.to_lowercase()).collect(),
                )),
                "wildcard" => Ok(AnythingBut::Wildcards(
                    list.iter()
                        .map(|s| Wildcard::parse(s, &op_path))
                        .collect::<Result<_, _>>()?,
                )),
                other => Err(PatternError::new(
                    &op_path,
                    format!("`anything-but` cannot hold `{other}`; expected prefix, suffix, equals-ignore-case or wildcard"),
                )),
            }
        }
        _ => Err(PatternError::new(path, ACCEPTED)),
    }
}

/// A string or a non-empty array of strings.
fn string_list(v: &Value, path: &str, op: &str) -> Result<Vec<String>, PatternError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_string) => Ok(items
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()),
        other => Err(PatternError::new(
            path,
            format!(
                "`{op}` here takes a string or a non-empty array of strings, found {}",
                type_name(other)
            ),
        )),
    }
}

fn parse_numeric(v: &Value, path: &str) -> Result<Range, PatternError> {
    const ACCEPTED: &str = "`numeric` takes one or two comparisons, e.g. [\">=\", 7] or [\">\", 0, \"<=\", 5]: operators =, <, <=, >, >=, a lower bound before an upper bound";
    let items = match v {
        Value::Array(items) if items.len() == 2 || items.len() == 4 => items,
        _ => return Err(PatternError::new(path, ACCEPTED)),
    };
    let mut range = Range {
        lower: None,
        upper: None,
    };
    for (pair, chunk) in items.chunks(2).enumerate() {
        let op_path = index_path(path, pair * 2);
        let val_path = index_path(path, pair * 2 + 1);
        let (Some(op), Some(val)) = (chunk[0].as_str(), chunk.get(1)) else {
            return Err(PatternError::new(&op_path, ACCEPTED));
        };
        let x = match val {
            Value::Number(n) => number(n, &val_path)?,
            other => {
                return Err(PatternError::new(
                    &val_path,
                    format!(
                        "`numeric` compares with a number, found {}",
                        type_name(other)
                    ),
                ))
            }
        };
        if x.abs() > NUMERIC_LIMIT {
            return Err(PatternError::new(
                &val_path,
                format!("numeric values must be between -5.0e9 and 5.0e9 inclusive, found {x}"),
            ));
        }
        match (op, pair) {
            ("=", 0) if items.len() == 2 => {
                range.lower = Some((x, true));
                range.upper = Some((x, true));
            }
            (">", 0) => range.lower = Some((x, false)),
            (">=", 0) => range.lower = Some((x, true)),
            ("<", 0) if items.len() == 2 => range.upper = Some((x, false)),
            ("<=", 0) if items.len() == 2 => range.upper = Some((x, true)),
            ("<", 1) => range.upper = Some((x, false)),
            ("<=", 1) => range.upper = Some((x, true)),
            _ => return Err(PatternError::new(&op_path, ACCEPTED)),
        }
    }
    if let (Some((lo, _)), Some((hi, _))) = (range.lower, range.upper) {
        if lo >= hi && items.len() == 4 {
            return Err(PatternError::new(
                path,
                format!("the range is empty: lower bound {lo} is not below upper bound {hi}"),
            ));
        }
    }
    Ok(range)
}

#[cfg(test)]
#[path = "leaf_tests.rs"]
mod tests;
