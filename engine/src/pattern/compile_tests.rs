//! Unit tests for `compile.rs`: pattern structure, `$or`, arrays of objects, `exists: false`
//! in nested objects, explain, and structural errors with their paths.

use serde_json::{json, Value};

use super::*;

fn m(pattern: Value, event: Value) -> bool {
    compile(&pattern).expect("pattern compiles").matches(&event)
}

fn err(pattern: Value) -> PatternError {
    compile(&pattern).expect_err("pattern must be rejected")
}

#[test]
fn fields_are_and_nested_objects_follow_structure() {
    let p = json!({ "source": ["aws.ec2"], "detail": { "state": ["terminated"] } });
    assert!(m(
        p.clone(),
        json!({ "source": "aws.ec2", "detail": { "state": "terminated", "x": 1 } })
    ));
    assert!(!m(
        p.clone(),
        json!({ "source": "aws.ec2", "detail": { "state": "running" } })
    ));
    assert!(!m(p.clone(), json!({ "source": "aws.ec2" })));
    assert!(!m(
        p.clone(),
        json!({ "source": "aws.ec2", "detail": "terminated" })
    ));
    assert!(!m(p, json!([1, 2])), "a non-object event has no fields");
}

#[test]
fn or_at_top_and_nested_levels() {
    // source && (metricName || namespace)
    let p = json!({
        "source": ["aws.cloudwatch"],
        "$or": [ { "metricName": ["CPUUtilization"] }, { "namespace": ["AWS/EC2"] } ]
    });
    assert!(m(
        p.clone(),
        json!({ "source": "aws.cloudwatch", "namespace": "AWS/EC2" })
    ));
    assert!(m(
        p.clone(),
        json!({ "source": "aws.cloudwatch", "metricName": "CPUUtilization" })
    ));
    assert!(!m(
        p.clone(),
        json!({ "source": "aws.cloudwatch", "namespace": "AWS/ES" })
    ));
    assert!(!m(p, json!({ "source": "x", "namespace": "AWS/EC2" })));

    // Parallel $or at two levels, and a nested $or inside a branch.
    let p = json!({
        "$or": [ { "a": [1] }, { "b": [2] } ],
        "detail": {
            "$or": [
                { "c": [3] },
                { "d": [4], "$or": [ { "e": [5] }, { "f": [6] } ] }
            ]
        }
    });
    let compiled = compile(&p).expect("compiles");
    assert_eq!(compiled.alternatives(), 6);
    assert!(compiled.matches(&json!({ "a": 1, "detail": { "c": 3 } })));
    assert!(compiled.matches(&json!({ "b": 2, "detail": { "d": 4, "f": 6 } })));
    assert!(!compiled.matches(&json!({ "b": 2, "detail": { "d": 4 } })));
    assert!(!compiled.matches(&json!({ "detail": { "c": 3 } })));
}

#[test]
fn or_branches_merge_into_the_same_array_element() {
    // The branch's `r.b` and the base's `r.a` must hold in the same element of `r`.
    let p = json!({ "r": { "a": [1] }, "$or": [ { "r": { "b": [2] } }, { "z": [0] } ] });
    assert!(m(p.clone(), json!({ "r": [ { "a": 1, "b": 2 } ] })));
    assert!(!m(p.clone(), json!({ "r": [ { "a": 1 }, { "b": 2 } ] })));
    assert!(m(p, json!({ "r": [ { "a": 1 } ], "z": 0 })));
}

#[test]
fn arrays_of_objects_are_array_consistent() {
    let event = json!({ "employees": [
        { "firstName": "John", "lastName": "Doe" },
        { "firstName": "Anna", "lastName": "Smith" },
        { "firstName": "Peter", "lastName": "Jones" }
    ]});
    assert!(m(
        json!({ "employees": { "firstName": ["Anna"] } }),
        event.clone()
    ));
    assert!(m(
        json!({ "employees": { "firstName": ["Anna"], "lastName": ["Smith"] } }),
        event.clone()
    ));
    assert!(!m(
        json!({ "employees": { "firstName": ["Anna"], "lastName": ["Jones"] } }),
        event
    ));
    // Arrays of arrays of objects flatten.
    let nested =
        json!({ "employees": [ [ { "firstName": "Anna" } ], [ { "firstName": "Peter" } ] ] });
    assert!(m(
        json!({ "employees": { "firstName": ["Peter"] } }),
        nested
    ));
    // Deeper: the inner array is consistent on its own.
    let deep = json!({ "findings": [
        { "Resources": [ { "Type": "AwsEc2Instance", "Region": "us-east-1" } ] },
        { "Resources": [ { "Type": "AwsS3Bucket", "Region": "eu-west-1" } ] }
    ]});
    let p =
        |t: &str, r: &str| json!({ "findings": { "Resources": { "Type": [t], "Region": [r] } } });
    assert!(m(p("AwsS3Bucket", "eu-west-1"), deep.clone()));
    assert!(!m(p("AwsS3Bucket", "us-east-1"), deep));
}

#[test]
fn exists_false_in_nested_objects_and_arrays() {
    let p = json!({ "detail": { "c-count": [{ "exists": false }] } });
    assert!(m(p.clone(), json!({ "detail": { "state": "x" } })));
    assert!(
        m(p.clone(), json!({ "other": 1 })),
        "missing parent: the field is missing too"
    );
    assert!(m(p.clone(), json!({ "detail": "scalar" })));
    assert!(
        m(p.clone(), json!({ "detail": { "c-count": { "c1": 100 } } })),
        "not a leaf"
    );
    assert!(!m(p, json!({ "detail": { "c-count": 5 } })));

    // Absence-only under an array of objects: absent from every element.
    let p = json!({ "r": { "tag": [{ "exists": false }] } });
    assert!(m(p.clone(), json!({ "r": [ { "a": 1 }, { "b": 2 } ] })));
    assert!(!m(
        p.clone(),
        json!({ "r": [ { "a": 1 }, { "tag": "x" } ] })
    ));
    assert!(m(p, json!({ "r": [] })));

    // Pinned by another condition: that element must lack the field.
    let p = json!({ "r": { "a": [1], "tag": [{ "exists": false }] } });
    assert!(m(
        p.clone(),
        json!({ "r": [ { "a": 1 }, { "a": 2, "tag": "x" } ] })
    ));
    assert!(!m(
        p,
        json!({ "r": [ { "a": 1, "tag": "x" }, { "a": 2 } ] })
    ));
}

#[test]
fn explain_lists_each_condition() {
    let p = compile(&json!({
        "source": ["aws.guardduty"],
        "detail": { "severity": [{ "numeric": [">=", 7] }], "type": [{ "prefix": "Recon:" }] }
    }))
    .expect("compiles");
    let got = p.explain(
        &json!({ "source": "aws.guardduty", "detail": { "severity": 5, "type": "Recon:EC2/X" } }),
    );
    let summary: Vec<(String, bool)> = got.iter().map(|c| (c.path.clone(), c.matched)).collect();
    assert_eq!(
        summary,
        vec![
            ("detail.severity".to_string(), false),
            ("detail.type".to_string(), true),
            ("source".to_string(), true),
        ]
    );
    assert_eq!(got[0].expected, r#"[{"numeric":[">=",7]}]"#);
}

/// Each `$or` alternative is explained on its own: a condition that held in one alternative does
/// not make another look matched, and a field two alternatives share is listed in each.
#[test]
fn explain_numbers_each_or_alternative() {
    let p = compile(&json!({
        "source": ["aws.guardduty"],
        "$or": [
            { "detail": { "severity": [{ "numeric": [">=", 7] }] } },
            { "detail": { "type": [{ "suffix": ".Custom" }] } }
        ]
    }))
    .expect("compiles");
    let got = p.explain(
        &json!({ "source": "aws.guardduty", "detail": { "severity": 5, "type": "X.Custom" } }),
    );
    let summary: Vec<(usize, &str, bool)> = got
        .iter()
        .map(|c| (c.branch, c.path.as_str(), c.matched))
        .collect();
    assert_eq!(
        summary,
        vec![
            (0, "detail.severity", false),
            (0, "source", true),
            (1, "detail.type", true),
            (1, "source", true),
        ]
    );
}

#[test]
fn structural_errors_carry_paths() {
    let e = err(json!({ "source": "aws.guardduty" }));
    assert_eq!(e.path, "source");
    assert!(e.message.contains("array of match values"), "{e}");
    assert_eq!(
        err(json!({ "detail": { "severity": 5 } })).path,
        "detail.severity"
    );
    assert_eq!(err(json!({ "detail": {} })).path, "detail");
    assert_eq!(err(json!({})).path, "(root)");
    assert_eq!(err(json!(["aws.guardduty"])).path, "(root)");
    assert_eq!(
        err(json!({ "detail": { "severity": [{ "numeric": [">=", "7"] }] } })).path,
        "detail.severity[0].numeric[1]"
    );
    assert_eq!(
        err(json!({ "detail": { "severity": [{ "numeric": "x" }] } })).path,
        "detail.severity[0].numeric"
    );
}

#[test]
fn or_errors() {
    let e = err(json!({ "$or": [ { "a": [1] } ] }));
    assert_eq!(e.path, "$or");
    assert!(e.message.contains("at least two"));
    assert_eq!(err(json!({ "$or": { "a": [1] } })).path, "$or");
    assert_eq!(
        err(json!({ "d": { "$or": [ { "a": [1] }, 5 ] } })).path,
        "d.$or[1]"
    );
    assert_eq!(
        err(json!({ "$or": [ { "a": [1] }, { "b": "x" } ] })).path,
        "$or[1].b"
    );
    assert_eq!(err(json!({ "$or": [ { "a": [1] }, {} ] })).path, "$or[1]");
    // 2^11 combinations exceed the bound.
    let mut p = serde_json::Map::new();
    for i in 0..11 {
        p.insert(
            format!("k{i}"),
            json!({ "$or": [ { "a": [1] }, { "b": [2] } ] }),
        );
    }
    let e = err(Value::Object(p));
    assert!(e.message.contains("1024"), "{e}");
}
