//! JSON <-> Rhai value conversion.
//!
//! Hand-written rather than going through `rhai::serde` so that every case is explicit: which
//! JSON numbers become `INT` and which `FLOAT`, how deep a value may nest (both directions are
//! recursive, and a script can build a 10,000-deep array within its budgets), and what a value
//! that JSON cannot hold (a function pointer, NaN) turns into: a clear error, not a panic.

use rhai::{Array, Dynamic, Map, FLOAT, INT};
use serde_json::{Number, Value};

/// How deep a value may nest when converted either way. serde_json's own parser stops at 128,
/// so nothing read off the wire is cut; the bound keeps both recursions far from the end of a
/// 2 MiB thread stack.
pub(crate) const MAX_DEPTH: usize = 128;

/// Converts a JSON value into a Rhai value, and says how deeply it nests (a scalar is 0, an
/// array or map of scalars 1).
///
/// Integers that fit in `i64` become `INT` and every other number `FLOAT` (so `u64` values above
/// `i64::MAX` lose precision rather than fail). Values nested deeper than [`MAX_DEPTH`] are
/// replaced by `()`: a finding built that way is not one AWS produced.
pub(crate) fn json_to_dynamic(value: &Value) -> (Dynamic, usize) {
    let mut deepest = 0;
    let converted = json_to_dynamic_at(value, 0, &mut deepest);
    (converted, deepest)
}

fn json_to_dynamic_at(value: &Value, depth: usize, deepest: &mut usize) -> Dynamic {
    if depth > MAX_DEPTH {
        tracing::warn!(
            max_depth = MAX_DEPTH,
            "script context value nested too deeply; the excess is replaced by ()"
        );
        return Dynamic::UNIT;
    }
    *deepest = (*deepest).max(depth);
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Number(n) => number_to_dynamic(n),
        Value::String(s) => Dynamic::from(rhai::ImmutableString::from(s.as_str())),
        Value::Array(items) => Dynamic::from_array(
            items
                .iter()
                .map(|item| json_to_dynamic_at(item, depth + 1, deepest))
                .collect::<Array>(),
        ),
        Value::Object(entries) => {
            let mut map = Map::new();
            for (key, item) in entries {
                map.insert(
                    key.as_str().into(),
                    json_to_dynamic_at(item, depth + 1, deepest),
                );
            }
            Dynamic::from_map(map)
        }
    }
}

fn number_to_dynamic(n: &Number) -> Dynamic {
    if let Some(i) = n.as_i64() {
        return Dynamic::from_int(i as INT);
    }
    // Without serde_json's `arbitrary_precision`, every number has an f64 view; the fallback
    // only guards a future feature flip.
    n.as_f64()
        .map_or(Dynamic::UNIT, |f| Dynamic::from_float(f as FLOAT))
}

/// Converts a script's result into JSON.
///
/// `()` becomes `null`, characters become one-character strings and BLOBs arrays of byte
/// values. Non-finite floats, function pointers, timestamps and anything nested deeper than
/// [`MAX_DEPTH`] are errors (the message names the offending value's type).
pub(crate) fn dynamic_to_json(value: Dynamic) -> Result<Value, String> {
    dynamic_to_json_at(value, 0)
}

fn dynamic_to_json_at(value: Dynamic, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "the result is nested more than {MAX_DEPTH} levels deep"
        ));
    }
    // Closures share captured variables; read through the sharing to the value itself.
    let value = value.flatten();
    if value.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = value.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = value.as_int() {
        return Ok(Value::Number(Number::from(i)));
    }
    if let Ok(f) = value.as_float() {
        return Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| format!("the result {f} is not a finite number"));
    }
    if let Ok(c) = value.as_char() {
        return Ok(Value::String(c.to_string()));
    }
    if value.is_string() {
        let s = value
            .into_immutable_string()
            .map_err(|t| format!("cannot read {t} as a string"))?;
        return Ok(Value::String(s.to_string()));
    }
    if value.is_blob() {
        let blob = value
            .into_blob()
            .map_err(|t| format!("cannot read {t} as a BLOB"))?;
        return Ok(Value::Array(blob.into_iter().map(Value::from).collect()));
    }
    if value.is_array() {
        let items = value
            .into_array()
            .map_err(|t| format!("cannot read {t} as an array"))?;
        return items
            .into_iter()
            .map(|item| dynamic_to_json_at(item, depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if value.is_map() {
        let type_name = value.type_name();
        let map = value
            .try_cast::<Map>()
            .ok_or_else(|| format!("cannot read {type_name} as a map"))?;
        let mut out = serde_json::Map::with_capacity(map.len());
        for (key, item) in map {
            out.insert(key.to_string(), dynamic_to_json_at(item, depth + 1)?);
        }
        return Ok(Value::Object(out));
    }
    Err(format!(
        "a value of type {} cannot be converted to JSON",
        value.type_name()
    ))
}

/// A short description of a value for error messages: its type and, for scalars, the value
/// itself (strings quoted and cut at 64 characters, since they may be attacker data).
pub(crate) fn describe(value: &Dynamic) -> String {
    const MAX_CHARS: usize = 64;
    if value.is_unit() {
        return "() (nothing: a missing field?)".to_string();
    }
    if let Ok(b) = value.as_bool() {
        return format!("bool {b}");
    }
    if let Ok(i) = value.as_int() {
        return format!("integer {i}");
    }
    if let Ok(f) = value.as_float() {
        return format!("float {f:?}");
    }
    if value.is_string() {
        let s = value.to_string();
        let cut: String = s.chars().take(MAX_CHARS).collect();
        let ellipsis = if cut.len() < s.len() { "..." } else { "" };
        return format!("string {cut:?}{ellipsis}");
    }
    if value.is_array() {
        return "an array".to_string();
    }
    if value.is_map() {
        return "a map".to_string();
    }
    value.type_name().to_string()
}

/// Cuts `s` to at most `max_bytes`, on a character boundary, marking the cut.
pub(crate) fn truncate(s: &str, max_bytes: usize) -> String {
    if s.len() <= max_bytes {
        return s.to_string();
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips_through_rhai() {
        let v = json!({"a": [1, 2.5, "x", null, true], "b-c": {"d": -3}, "big": u64::MAX});
        let (d, depth) = json_to_dynamic(&v);
        assert_eq!(depth, 2);
        let back = dynamic_to_json(d).expect("convertible");
        assert_eq!(back["a"], json!([1, 2.5, "x", null, true]));
        assert_eq!(back["b-c"], json!({"d": -3}));
        // u64::MAX does not fit an INT: it comes back as the nearest float.
        assert_eq!(back["big"], json!(u64::MAX as f64));
    }

    #[test]
    fn over_deep_json_is_cut_not_overflowed() {
        let mut v = json!(1);
        for _ in 0..1_000 {
            v = json!([v]);
        }
        let (d, depth) = json_to_dynamic(&v);
        assert_eq!(depth, MAX_DEPTH);
        // Converting back stops at the same bound with an error rather than recursing on.
        assert!(dynamic_to_json(d).is_err());
    }

    #[test]
    fn describe_cuts_long_strings() {
        let d = Dynamic::from("y".repeat(500));
        let text = describe(&d);
        assert!(text.len() < 100, "{text}");
        assert!(text.ends_with("..."));
        assert_eq!(describe(&Dynamic::from("x")), "string \"x\"");
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h... (6 bytes)");
        assert_eq!(truncate("ok", 10), "ok");
    }
}
