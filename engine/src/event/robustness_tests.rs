//! Truncated, garbled and structurally mutated variants of every fixture, and hostile
//! shapes: parsing must never panic, and every error must say something.

use serde_json::Value;

use super::corpus_tests::{fixture_files, read};
use super::{parse, parse_value, EventError};

/// A step through a JSON tree.
#[derive(Clone)]
enum Step {
    Key(String),
    At(usize),
}

fn paths(v: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                here.push(Step::Key(k.clone()));
                paths(child, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                here.push(Step::At(i));
                paths(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn at_mut<'a>(v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, step| match step {
        Step::Key(k) => v.get_mut(k.as_str()),
        Step::At(i) => v.get_mut(*i),
    })
}

/// Parse and render the outcome, which must not panic; errors must say something.
fn exercise(v: Value) {
    match parse_value(v) {
        Ok(p) => {
            for fe in p.findings() {
                assert!(!fe.finding.account.is_empty() && !fe.finding.kind.is_empty());
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

#[test]
fn truncated_variants_never_panic() {
    for name in fixture_files() {
        let bytes = read(&name);
        let step = (bytes.len() / 400).max(1);
        for n in (0..bytes.len())
            .step_by(step)
            .chain(0..bytes.len().min(200))
        {
            let cut = bytes.get(..n).unwrap_or_default();
            if let Err(e) = parse(cut) {
                assert!(!e.to_string().is_empty());
            }
        }
    }
}

#[test]
fn garbled_bytes_never_panic() {
    for name in fixture_files() {
        let bytes = read(&name);
        let step = (bytes.len() / 100).max(1);
        for i in (0..bytes.len()).step_by(step) {
            for b in [b'"', b'}', b'0', b'\\', 0xff] {
                let mut g = bytes.clone();
                if let Some(slot) = g.get_mut(i) {
                    *slot = b;
                }
                let _ = parse(&g);
            }
        }
    }
}

#[test]
fn mutated_trees_never_panic() {
    let replacements = [
        Value::Null,
        Value::Bool(true),
        serde_json::json!(-1),
        serde_json::json!(1e300),
        serde_json::json!(""),
        serde_json::json!("x".repeat(5000)),
        serde_json::json!([]),
        serde_json::json!({}),
        serde_json::json!([null, {"Id": []}]),
    ];
    for name in fixture_files() {
        let Ok(root) = serde_json::from_slice::<Value>(&read(&name)) else {
            continue;
        };
        let mut all = Vec::new();
        paths(&root, &mut Vec::new(), &mut all);
        for path in &all {
            for r in &replacements {
                let mut v = root.clone();
                if let Some(slot) = at_mut(&mut v, path) {
                    *slot = r.clone();
                }
                exercise(v);
            }
            // Remove the key (or element) entirely.
            if let Some((last, parent)) = path.split_last() {
                let mut v = root.clone();
                match (at_mut(&mut v, parent), last) {
                    (Some(Value::Object(m)), Step::Key(k)) => {
                        m.remove(k);
                    }
                    (Some(Value::Array(a)), Step::At(i)) if *i < a.len() => {
                        a.remove(*i);
                    }
                    _ => {}
                }
                exercise(v);
            }
        }
    }
}

#[test]
fn hostile_shapes_never_panic() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(
        parse(deep.as_bytes()),
        Err(EventError::NotJson { .. })
    ));
    let many = serde_json::json!({"source": "aws.securityhub",
        "detail-type": "Security Hub Findings - Imported",
        "detail": {"findings": vec![serde_json::json!({"Id": "x"}); 100]}});
    exercise(many);
    exercise(serde_json::json!({"Findings": "no"}));
    exercise(serde_json::json!({"schemaVersion": {"nested": [1, 2]}}));
}
