//! Unit tests for `leaf.rs`: every value operator, positive and negative, and its errors.

use serde_json::{json, Value};

use crate::pattern::compile;

/// Does `{"f": leaf}` match `{"f": value}`?
fn hit(leaf: Value, value: Value) -> bool {
    compile(&json!({ "f": leaf }))
        .expect("pattern compiles")
        .matches(&json!({ "f": value }))
}

/// Does `{"f": leaf}` match an event without `f`?
fn hit_missing(leaf: Value) -> bool {
    compile(&json!({ "f": leaf }))
        .expect("pattern compiles")
        .matches(&json!({ "other": 1 }))
}

fn err(leaf: Value) -> crate::pattern::PatternError {
    compile(&json!({ "detail": { "f": leaf } })).expect_err("pattern must be rejected")
}

#[test]
fn exact_values() {
    assert!(hit(json!(["aws.guardduty"]), json!("aws.guardduty")));
    assert!(!hit(json!(["aws.guardduty"]), json!("aws.GuardDuty")));
    assert!(hit(json!(["a", "b"]), json!("b")));
    assert!(hit(json!([""]), json!("")));
    assert!(hit(json!([8]), json!(8.0)), "numbers compare numerically");
    assert!(hit(json!([3.018e2]), json!(301.8)));
    assert!(
        !hit(json!([8]), json!("8")),
        "a number never equals a string"
    );
    assert!(!hit(json!(["8"]), json!(8)));
    assert!(hit(json!([true]), json!(true)));
    assert!(!hit(json!([true]), json!(false)));
    assert!(!hit(json!([true]), json!("true")));
    assert!(hit(json!([null]), json!(null)));
    assert!(!hit(json!([null]), json!("")));
    assert!(!hit_missing(json!([null])), "null is a value, not absence");
    assert!(hit(json!([0]), json!(-0.0)));
}

#[test]
fn event_arrays_match_on_any_element() {
    assert!(hit(json!(["x"]), json!(["a", "x"])));
    assert!(
        hit(json!(["x"]), json!([["a"], ["x"]])),
        "nested arrays flatten"
    );
    assert!(!hit(json!(["x"]), json!([])));
    assert!(
        !hit(json!(["x"]), json!([{ "f": "x" }])),
        "objects are not leaf values"
    );
    assert!(!hit(json!(["x"]), json!({ "x": 1 })));
}

#[test]
fn prefix_and_suffix() {
    assert!(hit(
        json!([{ "prefix": "2017-10-02" }]),
        json!("2017-10-02T18:43:48Z")
    ));
    assert!(!hit(
        json!([{ "prefix": "2017-10-02" }]),
        json!("2017-10-03")
    ));
    assert!(
        !hit(json!([{ "prefix": "1" }]), json!(12)),
        "prefix is for strings only"
    );
    assert!(hit(json!([{ "suffix": ".png" }]), json!("a.png")));
    assert!(!hit(json!([{ "suffix": ".png" }]), json!("a.PNG")));
    assert!(hit(
        json!([{ "prefix": { "equals-ignore-case": "EventB" } }]),
        json!("eventbridge")
    ));
    assert!(hit(
        json!([{ "prefix": { "equals-ignore-case": "eventb" } }]),
        json!("EVENTBRIDGE")
    ));
    assert!(!hit(
        json!([{ "prefix": { "equals-ignore-case": "eventb" } }]),
        json!("even")
    ));
    assert!(hit(
        json!([{ "suffix": { "equals-ignore-case": ".png" } }]),
        json!("A.PNG")
    ));
    assert!(!hit(
        json!([{ "suffix": { "equals-ignore-case": ".png" } }]),
        json!("png")
    ));
    assert!(!hit_missing(json!([{ "prefix": "" }])));
}

#[test]
fn equals_ignore_case_and_unicode() {
    assert!(hit(
        json!([{ "equals-ignore-case": "alice" }]),
        json!("ALICE")
    ));
    assert!(hit(json!([{ "equals-ignore-case": "ÉTÉ" }]), json!("été")));
    assert!(!hit(
        json!([{ "equals-ignore-case": "alice" }]),
        json!("alice!")
    ));
    assert!(!hit(json!([{ "equals-ignore-case": "1" }]), json!(1)));
}

#[test]
fn wildcard_operator() {
    assert!(hit(
        json!([{ "wildcard": "dir/*.png" }]),
        json!("dir/a.png")
    ));
    assert!(!hit(
        json!([{ "wildcard": "dir/*.png" }]),
        json!("other/a.png")
    ));
    assert!(hit(json!([{ "wildcard": r"a\*b" }]), json!("a*b")));
    assert!(!hit(json!([{ "wildcard": r"a\*b" }]), json!("aXb")));
    let e = err(json!([{ "wildcard": "a**" }]));
    assert_eq!(e.path, "detail.f[0].wildcard");
}

#[test]
fn anything_but_values() {
    assert!(hit(
        json!([{ "anything-but": "initializing" }]),
        json!("running")
    ));
    assert!(!hit(
        json!([{ "anything-but": "initializing" }]),
        json!("initializing")
    ));
    assert!(
        !hit_missing(json!([{ "anything-but": "initializing" }])),
        "a missing field fails"
    );
    assert!(hit(json!([{ "anything-but": 123 }]), json!(124)));
    assert!(!hit(json!([{ "anything-but": 123 }]), json!(123.0)));
    assert!(hit(
        json!([{ "anything-but": ["stopped", "overloaded"] }]),
        json!("running")
    ));
    assert!(!hit(
        json!([{ "anything-but": ["stopped", "overloaded"] }]),
        json!("stopped")
    ));
    assert!(
        hit(json!([{ "anything-but": [100, 200] }]), json!([100, 50])),
        "any element"
    );
    assert!(!hit(
        json!([{ "anything-but": [100, 200] }]),
        json!([100, 200])
    ));
    assert!(
        hit(json!([{ "anything-but": "x" }]), json!(5)),
        "other types are not excluded"
    );
}

#[test]
fn anything_but_objects() {
    let p = json!([{ "anything-but": { "prefix": "init" } }]);
    assert!(hit(p.clone(), json!("running")));
    assert!(!hit(p, json!("initializing")));
    let p = json!([{ "anything-but": { "prefix": ["init", "err"] } }]);
    assert!(!hit(p.clone(), json!("error")));
    assert!(hit(p, json!("ok")));
    let p = json!([{ "anything-but": { "suffix": ["1234", "6789"] } }]);
    assert!(!hit(p.clone(), json!("i-6789")));
    assert!(hit(p, json!("i-0000")));
    let p = json!([{ "anything-but": { "equals-ignore-case": ["Stopped", "OverLoaded"] } }]);
    assert!(!hit(p.clone(), json!("STOPPED")));
    assert!(hit(p, json!("running")));
    let p = json!([{ "anything-but": { "wildcard": ["*/lib/*", "*.tmp"] } }]);
    assert!(!hit(p.clone(), json!("/usr/lib/x")));
    assert!(!hit(p.clone(), json!("a.tmp")));
    assert!(hit(p, json!("/usr/bin/x")));
}

#[test]
fn anything_but_errors() {
    for bad in [
        json!([{ "anything-but": ["a", 1] }]),
        json!([{ "anything-but": [] }]),
        json!([{ "anything-but": true }]),
        json!([{ "anything-but": null }]),
        json!([{ "anything-but": { "numeric": [">", 1] } }]),
        json!([{ "anything-but": { "prefix": 1 } }]),
        json!([{ "anything-but": { "prefix": "" } }]),
        json!([{ "anything-but": { "prefix": "a", "suffix": "b" } }]),
        json!([{ "anything-but": { "wildcard": "a**" } }]),
    ] {
        let e = err(bad.clone());
        assert!(e.path.starts_with("detail.f[0].anything-but"), "{bad}: {e}");
    }
}

#[test]
fn numeric_ranges() {
    assert!(hit(json!([{ "numeric": [">", 0, "<=", 5] }]), json!(5)));
    assert!(!hit(json!([{ "numeric": [">", 0, "<=", 5] }]), json!(0)));
    assert!(!hit(
        json!([{ "numeric": [">", 0, "<=", 5] }]),
        json!(5.000001)
    ));
    assert!(hit(json!([{ "numeric": [">=", 0, "<", 5] }]), json!(0)));
    assert!(!hit(json!([{ "numeric": [">=", 0, "<", 5] }]), json!(5)));
    assert!(hit(json!([{ "numeric": ["<", 10] }]), json!(-1e20)));
    assert!(hit(json!([{ "numeric": ["=", 3.018e2] }]), json!(301.8)));
    assert!(!hit(json!([{ "numeric": ["=", 301.8] }]), json!(301.81)));
    assert!(hit(json!([{ "numeric": [">=", 7] }]), json!(8.9)));
    assert!(hit(json!([{ "numeric": [">=", -5.0e9] }]), json!(-5.0e9)));
    assert!(hit(json!([{ "numeric": ["<=", 5.0e9] }]), json!(5.0e9)));
    assert!(
        !hit(json!([{ "numeric": [">", 1] }]), json!("5")),
        "strings are not numbers"
    );
    assert!(!hit_missing(json!([{ "numeric": [">", 1] }])));
}

#[test]
fn numeric_errors() {
    let cases = [
        (
            json!([{ "numeric": [">", 5.0e9 + 1.0] }]),
            "detail.f[0].numeric[1]",
        ),
        (
            json!([{ "numeric": ["<", -6e9] }]),
            "detail.f[0].numeric[1]",
        ),
        (json!([{ "numeric": ["!=", 1] }]), "detail.f[0].numeric[0]"),
        (json!([{ "numeric": [">", "1"] }]), "detail.f[0].numeric[1]"),
        (
            json!([{ "numeric": [">", 1, ">", 2] }]),
            "detail.f[0].numeric[2]",
        ),
        (
            json!([{ "numeric": ["<", 5, ">", 1] }]),
            "detail.f[0].numeric[0]",
        ),
        (
            json!([{ "numeric": ["=", 1, "<", 2] }]),
            "detail.f[0].numeric[0]",
        ),
        (
            json!([{ "numeric": [">", 5, "<", 5] }]),
            "detail.f[0].numeric",
        ),
        (json!([{ "numeric": [">"] }]), "detail.f[0].numeric"),
        (json!([{ "numeric": 5 }]), "detail.f[0].numeric"),
        (
            json!([{ "numeric": [">", 1, "<", 2, "<", 3] }]),
            "detail.f[0].numeric",
        ),
    ];
    for (bad, path) in cases {
        let e = err(bad.clone());
        assert_eq!(e.path, path, "{bad}: {e}");
    }
    let e = err(json!([{ "numeric": [">", 6e9] }]));
    assert!(e.message.contains("5.0e9"), "{e}");
    let e = err(json!([{ "numeric": ["!=", 1] }]));
    assert!(
        e.message.contains("[\">=\", 7]"),
        "message says what is accepted: {e}"
    );
}

#[test]
fn exists_operator() {
    assert!(hit(json!([{ "exists": true }]), json!("x")));
    assert!(hit(json!([{ "exists": true }]), json!(null)));
    assert!(!hit_missing(json!([{ "exists": true }])));
    assert!(hit_missing(json!([{ "exists": false }])));
    assert!(!hit(json!([{ "exists": false }]), json!(0)));
    // Only leaf values count, as in event-ruler: objects and empty arrays are not leaves.
    assert!(hit(json!([{ "exists": false }]), json!({ "c1": 100 })));
    assert!(hit(json!([{ "exists": false }]), json!([])));
    assert!(!hit(json!([{ "exists": true }]), json!({ "c1": 100 })));
    // Mixed: absent or a given value.
    assert!(hit_missing(json!([{ "exists": false }, "1"])));
    assert!(hit(json!([{ "exists": false }, "1"]), json!("1")));
    assert!(!hit(json!([{ "exists": false }, "1"]), json!("2")));
    assert_eq!(err(json!([{ "exists": "yes" }])).path, "detail.f[0].exists");
}

#[test]
fn cidr_operator() {
    assert!(hit(json!([{ "cidr": "10.0.0.0/24" }]), json!("10.0.0.33")));
    assert!(!hit(json!([{ "cidr": "10.0.0.0/24" }]), json!("10.0.1.33")));
    assert!(hit(
        json!([{ "cidr": "2001:db8::/32" }]),
        json!("2001:db8::1")
    ));
    assert!(!hit(
        json!([{ "cidr": "2001:db8::/32" }]),
        json!("2001:db9::1")
    ));
    assert!(!hit(json!([{ "cidr": "10.0.0.0/8" }]), json!(10)));
    let e = err(json!([{ "cidr": "10.0.0.0/40" }]));
    assert_eq!(e.path, "detail.f[0].cidr");
    assert_eq!(err(json!([{ "cidr": 10 }])).path, "detail.f[0].cidr");
}

#[test]
fn malformed_leaves() {
    let e = err(json!([]));
    assert_eq!(e.path, "detail.f");
    assert!(e.message.contains("empty array"));
    let e = err(json!([{ "contains": "x" }]));
    assert_eq!(e.path, "detail.f[0].contains");
    assert!(e.message.contains("unknown operator `contains`") && e.message.contains("prefix"));
    let e = err(json!(["ok", { "prefix": "a", "suffix": "b" }]));
    assert_eq!(e.path, "detail.f[1]");
    assert_eq!(err(json!([{}])).path, "detail.f[0]");
    assert_eq!(err(json!([["nested"]])).path, "detail.f[0]");
    assert_eq!(err(json!([{ "prefix": 5 }])).path, "detail.f[0].prefix");
    assert_eq!(
        err(json!([{ "prefix": { "equals-ignore-case": 5 } }])).path,
        "detail.f[0].prefix"
    );
    assert_eq!(
        err(json!([{ "suffix": { "other": "x" } }])).path,
        "detail.f[0].suffix"
    );
    assert_eq!(
        err(json!([{ "equals-ignore-case": ["a"] }])).path,
        "detail.f[0].equals-ignore-case"
    );
}
