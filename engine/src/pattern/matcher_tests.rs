//! Unit tests for `matcher.rs`: the index never changes results, many patterns sharing one
//! field, and the real fixture events.

use serde_json::{json, Value};

use super::*;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../tests/fixtures/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

fn fixtures() -> Vec<(String, Value)> {
    let dir = format!("{}/../tests/fixtures/events", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {dir}: {e}"))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| (n.clone(), fixture(&n)))
        .collect()
}

/// The set's answer must equal evaluating every pattern one by one.
fn assert_same_as_linear(patterns: &[(usize, Value)], events: &[Value]) {
    let mut set = PatternSet::new();
    let mut compiled = Vec::new();
    for (id, p) in patterns {
        set.add(*id, p).expect("pattern compiles");
        compiled.push((*id, compile(p).expect("pattern compiles")));
    }
    for event in events {
        let mut want: Vec<usize> = compiled
            .iter()
            .filter(|(_, p)| p.matches(event))
            .map(|(id, _)| *id)
            .collect();
        want.sort_unstable();
        want.dedup();
        assert_eq!(set.matches(event), want, "event {event}");
    }
}

#[test]
fn ids_are_sorted_deduplicated_and_may_repeat() {
    let mut set = PatternSet::new();
    assert!(set.is_empty());
    set.add(7, &json!({ "source": ["a"] })).expect("ok");
    set.add(3, &json!({ "source": [{ "prefix": "a" }] }))
        .expect("ok");
    set.add(7, &json!({ "detail": { "x": [1] } })).expect("ok");
    set.add(5, &json!({ "source": ["b"] })).expect("ok");
    assert_eq!(set.len(), 4);
    assert_eq!(
        set.matches(&json!({ "source": "a", "detail": { "x": 1 } })),
        vec![3, 7]
    );
    assert_eq!(
        set.matches(&json!({ "source": "c", "detail": { "x": 1 } })),
        vec![7]
    );
    assert_eq!(set.matches(&json!({ "source": "b" })), vec![5]);
    assert!(set.matches(&json!("not an object")).is_empty());
}

#[test]
fn a_rejected_pattern_adds_nothing() {
    let mut set = PatternSet::new();
    let e = set
        .add(
            1,
            &json!({ "detail": { "severity": [{ "numeric": [">=", "7"] }] } }),
        )
        .expect_err("rejected");
    assert_eq!(e.path, "detail.severity[0].numeric[1]");
    assert!(set.is_empty());
    assert!(set
        .matches(&json!({ "detail": { "severity": 8 } }))
        .is_empty());
}

#[test]
fn index_agrees_with_linear_evaluation() {
    let patterns: Vec<(usize, Value)> = vec![
        (0, json!({ "source": ["aws.guardduty"] })),
        (
            1,
            json!({ "detail": { "type": [{ "prefix": "UnauthorizedAccess:" }] } }),
        ),
        (
            2,
            json!({ "detail": { "type": [{ "prefix": "Recon:" }, "Discovery:Kubernetes/MaliciousIPCaller"] } }),
        ),
        (
            3,
            json!({ "detail": { "severity": [{ "numeric": [">=", 5] }] } }),
        ),
        (
            4,
            json!({ "detail": { "findings": { "Severity": { "Label": ["CRITICAL", "HIGH"] } } } }),
        ),
        (
            5,
            json!({ "detail": { "findings": { "Resources": { "Type": ["AwsAccount"] }, "Severity": { "Label": ["MEDIUM"] } } } }),
        ),
        (
            6,
            json!({ "$or": [ { "account": ["352283894008"] }, { "detail": { "accountId": ["845345345"] } } ] }),
        ),
        (
            7,
            json!({ "detail": { "resource": { "instanceDetails": { "networkInterfaces": { "publicIp": [{ "cidr": "34.204.0.0/16" }] } } } } }),
        ),
        (
            8,
            json!({ "detail": { "findings": { "Types": [{ "prefix": "Software and Configuration Checks/Industry and Regulatory Standards/CIS" }] } } }),
        ),
        (
            9,
            json!({ "detail-type": [{ "anything-but": "GuardDuty Finding" }], "source": [{ "exists": true }] }),
        ),
        (
            10,
            json!({ "resources": [ { "exists": false } ], "id": [{ "exists": true }] }),
        ),
        (
            11,
            json!({ "detail": { "service": { "archived": [false] } } }),
        ),
        (
            12,
            json!({ "detail": { "resource": { "instanceDetails": { "tags": { "key": ["Name"], "value": [{ "wildcard": "AlertLogic*Appliance" }] } } } } }),
        ),
        (
            13,
            json!({ "version": ["0"], "detail": { "findings": { "ProductFields": { "RecommendationUrl": [null] } } } }),
        ),
        (
            14,
            json!({ "source": ["aws.securityhub"], "detail": { "findings": { "Workflow": { "Status": ["NEW"] }, "AwsAccountId": ["111111111111"] } } }),
        ),
    ];
    let events: Vec<Value> = fixtures().into_iter().map(|(_, v)| v).collect();
    assert_same_as_linear(&patterns, &events);
}

#[test]
fn real_guardduty_fixtures() {
    let mut set = PatternSet::new();
    set.add(1, &json!({"source":["aws.guardduty"],"detail-type":["GuardDuty Finding"],"detail":{"severity":[{"numeric":[">=",7]}]}}))
        .expect("ok");
    set.add(2, &json!({"source":["aws.guardduty"],"detail-type":["GuardDuty Finding"],"detail":{"severity":[{"numeric":[">=",4,"<",7]}]}}))
        .expect("ok");
    set.add(
        3,
        &json!({"source":["aws.guardduty"],"detail":{"type":[{"prefix":"Recon:EC2/"}]}}),
    )
    .expect("ok");
    let get = |n: &str| set.matches(&fixture(n));
    assert_eq!(
        get("aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json"),
        vec![2]
    );
    assert_eq!(
        get("aws.guardduty__Discovery_Kubernetes_MaliciousIPCaller__1.json"),
        vec![2]
    );
    assert_eq!(
        get("aws.guardduty__Recon_EC2_PortProbeUnprotectedPort__2.json"),
        vec![3]
    );
    assert!(get("aws.guardduty__Runtime-Protection-Healthy_EC2__1.json").is_empty());
    assert!(get("aws.securityhub__SecurityHub-AFSBP-EC2.8_Imported__1.json").is_empty());

    let why = set.explain(
        1,
        &fixture("aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json"),
    );
    let failed: Vec<&str> = why
        .iter()
        .filter(|c| !c.matched)
        .map(|c| c.path.as_str())
        .collect();
    assert_eq!(failed, vec!["detail.severity"]);
    assert_eq!(why.len(), 3);
    assert!(set.explain(99, &json!({})).is_empty());
}

#[test]
fn real_security_hub_fixtures() {
    let mut set = PatternSet::new();
    set.add(1, &json!({"source":["aws.securityhub"],"detail-type":["Security Hub Findings - Imported"],"detail":{"findings":{"Severity":{"Label":["HIGH","CRITICAL"]}}}}))
        .expect("ok");
    set.add(2, &json!({"source":["aws.securityhub"],"detail":{"findings":{"Types":[{"prefix":"Software and Configuration Checks/Industry and Regulatory Standards/CIS"}],"Severity":{"Label":["MEDIUM"]}}}}))
        .expect("ok");
    // Array consistency: CRITICAL and AwsRdsDbClusterSnapshot are in different findings.
    set.add(3, &json!({"detail":{"findings":{"Severity":{"Label":["CRITICAL"]},"Resources":{"Type":["AwsRdsDbClusterSnapshot"]}}}}))
        .expect("ok");
    set.add(4, &json!({"detail":{"findings":{"Severity":{"Label":["CRITICAL"]},"Resources":{"Type":["AwsAccount"]}}}}))
        .expect("ok");
    let get = |n: &str| set.matches(&fixture(n));
    assert_eq!(
        get("aws.securityhub__SecurityHub-AFSBP-EC2.8_Imported__1.json"),
        vec![1]
    );
    assert_eq!(
        get("aws.securityhub__SecurityHub-CIS-1.2.0-1.3_Imported__1.json"),
        vec![2]
    );
    assert_eq!(
        get("aws.securityhub__SecurityHub-AFSBP-IAM.6_CustomAction__1.json"),
        vec![4]
    );
    assert!(
        get("aws.securityhub__SecurityHub-AFSBP-AutoScaling.1_CustomAction__1.json").is_empty()
    );
}

/// The shape that panics quamina 0.7: thousands of patterns sharing a prefix / numeric /
/// anything-but matcher on one field, differing on a later field.
#[test]
fn two_thousand_patterns_sharing_one_field() {
    let mut set = PatternSet::new();
    for i in 0..2000usize {
        let shared = match i % 3 {
            0 => json!([{ "prefix": "arn:aws:" }]),
            1 => json!([{ "numeric": [">=", 5] }]),
            _ => json!([{ "anything-but": { "prefix": "test-" } }]),
        };
        set.add(i, &json!({ "a": shared, "z": { "n": [format!("v{i}")] } }))
            .expect("ok");
    }
    assert_eq!(set.len(), 2000);
    assert_eq!(
        set.matches(&json!({ "a": "arn:aws:s3", "z": { "n": "v300" } })),
        vec![300]
    );
    assert_eq!(
        set.matches(&json!({ "a": 9, "z": { "n": "v1999" } })),
        vec![1999]
    );
    assert!(set
        .matches(&json!({ "a": 9, "z": { "n": "v1998" } }))
        .is_empty());
    assert_eq!(
        set.matches(&json!({ "a": 9, "z": { "n": "v1000" } })),
        vec![1000]
    );
    assert_eq!(
        set.matches(&json!({ "a": "prod-1", "z": { "n": ["v2", "v5", "v8"] } })),
        vec![2, 5, 8]
    );
    assert!(set
        .matches(&json!({ "a": "test-1", "z": { "n": "v2" } }))
        .is_empty());

    // Same, with nothing indexable at all: every pattern is verified, still correct.
    let mut set = PatternSet::new();
    for i in 0..2000usize {
        set.add(i, &json!({ "a": [{ "prefix": { "equals-ignore-case": "ARN:" } }], "n": [{ "numeric": ["=", i] }] }))
            .expect("ok");
    }
    assert_eq!(set.matches(&json!({ "a": "arn:x", "n": 1234 })), vec![1234]);
}

#[test]
fn generated_mix_agrees_with_linear_evaluation() {
    let mut patterns = Vec::new();
    for i in 0..300usize {
        let p = match i % 6 {
            0 => json!({ "source": ["s"], "d": { "t": [format!("T{}", i % 17)] } }),
            1 => {
                json!({ "d": { "t": [{ "prefix": format!("T{}", i % 5) }], "n": [{ "numeric": [">", i % 10] }] } })
            }
            2 => json!({ "d": { "arr": { "k": [format!("k{}", i % 7)], "v": [i % 3] } } }),
            3 => {
                json!({ "$or": [ { "d": { "t": [format!("T{}", i % 11)] } }, { "e": [true, null] } ] })
            }
            4 => {
                json!({ "d": { "t": [{ "anything-but": format!("T{}", i % 4) }], "x": [{ "exists": false }] } })
            }
            _ => json!({ "d": { "n": [i % 10, -0.0] } }),
        };
        patterns.push((i, p));
    }
    let mut events = Vec::new();
    for j in 0..60usize {
        events.push(json!({
            "source": "s",
            "d": {
                "t": format!("T{}", j % 19),
                "n": j % 12,
                "arr": [ { "k": format!("k{}", j % 7), "v": j % 3 }, { "k": "k0", "v": 2 } ],
                "x": if j % 4 == 0 { json!(1) } else { json!({}) }
            },
            "e": if j % 9 == 0 { json!(true) } else { json!("no") }
        }));
    }
    assert_same_as_linear(&patterns, &events);
}
