//! Path-aware, case-tolerant reading of untrusted JSON, shared by the GuardDuty and ASFF readers.
//!
//! Every accessor treats `null` like an absent key (producers write both), and every failure
//! names the JSON path it happened at, so an operator can find the field in the event.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::EventError;

/// A JSON object.
pub(crate) type Obj = Map<String, Value>;

/// Longest identifier accepted (ids, accounts, types): ASFF caps `Id` at 512; twice that is
/// generous and still keeps a forged event from carrying megabytes in a key field.
pub(crate) const MAX_ID_CHARS: usize = 1024;
/// Longest free text kept (titles, attribute values); longer text is truncated, not rejected.
pub(crate) const MAX_TEXT_CHARS: usize = 1024;
/// Most tags copied into a resource's attributes (AWS allows 50 per resource).
pub(crate) const MAX_TAGS: usize = 50;
/// Most resources kept per finding (ASFF allows 32).
pub(crate) const MAX_RESOURCES: usize = 32;

/// `path.key`, or `key` at the top level.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `path[i]`.
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// The value at `key`: exact match first, then ASCII case-insensitive, because real producers
/// vary in casing (`accessKeyId` vs `AccessKeyId`). `null` counts as absent.
pub(crate) fn get<'a>(o: &'a Obj, key: &str) -> Option<&'a Value> {
    let v = match o.get(key) {
        Some(v) => Some(v),
        None => o
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v),
    };
    v.filter(|v| !v.is_null())
}

/// The key as the input spells it: `key` itself, else its first case-insensitive match.
pub(crate) fn spelled(o: &Obj, key: &str) -> Option<String> {
    if o.contains_key(key) {
        return Some(key.to_string());
    }
    o.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned()
}

/// What a value is, for error messages ("an array", "a number"...).
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A non-empty (after trimming) string at `key`; anything else is `None`.
pub(crate) fn str_of<'a>(o: &'a Obj, key: &str) -> Option<&'a str> {
    get(o, key)?
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The object at `key`, if it is one.
pub(crate) fn obj_of<'a>(o: &'a Obj, key: &str) -> Option<&'a Obj> {
    get(o, key)?.as_object()
}

/// The array at `key`, if it is one.
pub(crate) fn arr_of<'a>(o: &'a Obj, key: &str) -> Option<&'a [Value]> {
    get(o, key)?.as_array().map(Vec::as_slice)
}

/// A string, number or boolean rendered as text (GuardDuty writes some ids as numbers).
pub(crate) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(bounded(s.trim(), MAX_TEXT_CHARS)),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A finite number, also accepted as a numeric string (exports sometimes quote them).
pub(crate) fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

/// The required identifier-like string at `key`: present, a string, non-empty, bounded.
pub(crate) fn require_str<'a>(o: &'a Obj, key: &str, path: &str) -> Result<&'a str, EventError> {
    match get(o, key) {
        None => Err(EventError::Missing {
            path: join(path, key),
        }),
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.is_empty() {
                Err(EventError::Invalid {
                    path: join(path, key),
                    problem: "is empty".to_string(),
                })
            } else if t.chars().count() > MAX_ID_CHARS {
                Err(EventError::Invalid {
                    path: join(path, key),
                    problem: format!("is longer than {MAX_ID_CHARS} characters"),
                })
            } else {
                Ok(t)
            }
        }
        Some(other) => Err(EventError::WrongType {
            path: join(path, key),
            expected: "a string",
            found: kind_of(other),
        }),
    }
}

/// The required object at `key`.
pub(crate) fn require_obj<'a>(o: &'a Obj, key: &str, path: &str) -> Result<&'a Obj, EventError> {
    match get(o, key) {
        None => Err(EventError::Missing {
            path: join(path, key),
        }),
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(EventError::WrongType {
            path: join(path, key),
            expected: "an object",
            found: kind_of(other),
        }),
    }
}

/// `value` when it is an AWS account id (12 ASCII digits), else [`EventError::Invalid`] at `path`.
pub(crate) fn checked_account(value: &str, path: String) -> Result<&str, EventError> {
    crate::cloud::check_account_id(value)
        .map(|()| value)
        .map_err(|problem| EventError::Invalid { path, problem })
}

/// `value` when it has a region name's shape, else [`EventError::Invalid`] at `path`.
pub(crate) fn checked_region(value: &str, path: String) -> Result<&str, EventError> {
    crate::cloud::check_region(value)
        .map(|()| value)
        .map_err(|problem| EventError::Invalid { path, problem })
}

/// At most `max` characters of `s` (cut on a character boundary).
pub(crate) fn bounded(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Sets attribute `name` to `value` (bounded) when there is one.
pub(crate) fn put(attrs: &mut BTreeMap<String, String>, name: &str, value: Option<&str>) {
    if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) {
        attrs.insert(name.to_string(), bounded(v, MAX_TEXT_CHARS));
    }
}

/// Adds `tag:<key>` attributes, at most [`MAX_TAGS`], from `(key, value)` pairs.
pub(crate) fn put_tags<'a>(
    attrs: &mut BTreeMap<String, String>,
    tags: impl Iterator<Item = (&'a str, Option<String>)>,
) {
    for (key, value) in tags.take(MAX_TAGS) {
        let key = key.trim();
        if key.is_empty() {
            continue;
        }
        let name = format!("tag:{}", bounded(key, 128));
        attrs.insert(name, value.unwrap_or_default());
    }
}

/// The part of an ARN after `marker` up to the end (`arn:...:instance/i-1` with `instance/`
/// gives `i-1`), taking the last path segment so role paths (`role/path/name`) give the name.
pub(crate) fn arn_tail<'a>(arn: &'a str, marker: &str) -> Option<&'a str> {
    let (_, rest) = arn.split_once(marker)?;
    rest.rsplit('/').next().filter(|s| !s.is_empty())
}

/// The region field of an ARN (`arn:partition:service:region:account:resource`).
pub(crate) fn arn_region(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    parts.nth(2).filter(|r| !r.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Obj {
        match v {
            Value::Object(m) => m,
            _ => Obj::new(),
        }
    }

    #[test]
    fn get_is_case_tolerant_and_null_is_absent() {
        let o = obj(json!({"AccessKeyId": "AKIA1", "userName": null}));
        assert_eq!(str_of(&o, "accessKeyId"), Some("AKIA1"));
        assert_eq!(get(&o, "userName"), None);
    }

    #[test]
    fn require_str_names_the_path() {
        let o = obj(json!({"type": 3, "id": " "}));
        let err = require_str(&o, "type", "detail")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("detail.type is a number; expected a string")
        );
        let err = require_str(&o, "accountId", "detail")
            .err()
            .map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("detail.accountId is missing"));
        let err = require_str(&o, "id", "").err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("id is empty"));
    }

    #[test]
    fn arn_helpers() {
        assert_eq!(
            arn_tail("arn:aws:ec2:eu-west-1:1:instance/i-0abc", "instance/"),
            Some("i-0abc")
        );
        assert_eq!(
            arn_tail("arn:aws:iam::1:role/path/to/app", ":role/"),
            Some("app")
        );
        assert_eq!(
            arn_region("arn:aws:guardduty:us-east-1:1:detector/x"),
            Some("us-east-1")
        );
        assert_eq!(arn_region("arn:aws:s3:::bucket"), None);
        assert_eq!(arn_region("not an arn"), None);
    }

    #[test]
    fn bounded_cuts_on_characters() {
        assert_eq!(bounded("héllo", 2), "hé");
        assert_eq!(number(&json!("8.5")), Some(8.5));
        assert_eq!(number(&json!("x")), None);
    }
}
