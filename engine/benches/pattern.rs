//! Pattern matching cost against the cost of parsing the event it runs on.
//!
//! One ~4 KB GuardDuty event (a real fixture), compared three ways: (a) parsing its bytes with
//! `serde_json::from_slice::<Value>`, (b) matching it against a `PatternSet` of 1 pattern,
//! (c) against 1,000 generated realistic playbook patterns of which exactly 3 match, and
//! (d) the same 1,000 with only 1 matching, which isolates the cost of the set's size from the
//! cost of verifying more matches.
//! Targets: (c) <= 3x (a) including normalization elsewhere, and (c) <= 1.5x (b).
//!
//! Run: `cargo bench -p cordon-engine --bench pattern -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use cordon_engine::pattern::PatternSet;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};

const FIXTURE: &str = "aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json";

/// GuardDuty finding-type families, as in the GuardDuty finding-types reference.
const FAMILIES: &[&str] = &[
    "Backdoor:EC2",
    "Behavior:EC2",
    "CryptoCurrency:EC2",
    "Discovery:S3",
    "Exfiltration:S3",
    "Impact:EC2",
    "InitialAccess:IAMUser",
    "PenTest:IAMUser",
    "Persistence:IAMUser",
    "Policy:S3",
    "PrivilegeEscalation:IAMUser",
    "Recon:EC2",
    "Stealth:IAMUser",
    "Trojan:EC2",
    "UnauthorizedAccess:EC2",
    "UnauthorizedAccess:IAMUser",
];

const RESOURCE_TYPES: &[&str] = &["Instance", "AccessKey", "S3Bucket", "EKSCluster", "Lambda"];
const LABELS: &[&str] = &["LOW", "MEDIUM", "HIGH", "CRITICAL"];

fn account(i: usize) -> String {
    format!("{:012}", 210_000_000_000usize + i * 7919)
}

/// 1,000 playbook triggers. The fixture (type UnauthorizedAccess:EC2/MaliciousIPCaller.Custom,
/// account 352283894008, severity 5, an Instance) matches id 0, plus ids 400 and 600 when
/// `three_matches` (otherwise those two name another account).
fn realistic_patterns(three_matches: bool) -> Vec<Value> {
    let fixture_account = |i: usize| {
        if three_matches {
            "352283894008".to_string()
        } else {
            account(i)
        }
    };
    let gd = |detail: Value| json!({ "source": ["aws.guardduty"], "detail-type": ["GuardDuty Finding"], "detail": detail });
    let mut out = Vec::with_capacity(1000);
    // 0..400: one playbook per finding type (exact), some with a severity floor.
    for i in 0..400 {
        let family = FAMILIES[i % FAMILIES.len()];
        let ty = if i == 0 {
            "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom".to_string()
        } else {
            format!("{family}/Finding{i}")
        };
        out.push(match i % 3 {
            0 => gd(json!({ "type": [ty] })),
            1 => gd(json!({ "type": [ty], "severity": [{ "numeric": [">=", (i % 8) as f64] }] })),
            _ => gd(json!({ "type": [ty, format!("{family}/Variant{i}")] })),
        });
    }
    // 400..600: a finding-type family (prefix) for one account.
    for i in 400..600 {
        let (prefix, acct) = if i == 400 {
            ("UnauthorizedAccess:EC2/".to_string(), fixture_account(i))
        } else {
            (format!("{}/", FAMILIES[i % FAMILIES.len()]), account(i))
        };
        out.push(gd(
            json!({ "type": [{ "prefix": prefix }], "accountId": [acct] }),
        ));
    }
    // 600..850: per-account severity bands.
    for i in 600..850 {
        let acct = if i == 600 {
            fixture_account(i)
        } else {
            account(i)
        };
        let band = match i % 3 {
            0 => json!([{ "numeric": [">=", 4, "<", 7] }]),
            1 => json!([{ "numeric": [">=", 7] }]),
            _ => json!([{ "numeric": ["<", 4] }]),
        };
        out.push(gd(json!({ "accountId": [acct], "severity": band })));
    }
    // 850..950: resource-type playbooks per account (none for the fixture's account).
    for i in 850..950 {
        out.push(gd(json!({
            "accountId": [account(i)],
            "resource": { "resourceType": [RESOURCE_TYPES[i % RESOURCE_TYPES.len()]] }
        })));
    }
    // 950..1000: Security Hub findings by standard and label.
    for i in 950..1000 {
        out.push(json!({
            "source": ["aws.securityhub"],
            "detail-type": ["Security Hub Findings - Imported"],
            "detail": { "findings": {
                "Types": [{ "prefix": "Software and Configuration Checks/Industry and Regulatory Standards/" }],
                "Severity": { "Label": [LABELS[i % LABELS.len()]] },
                "AwsAccountId": [account(i)]
            } }
        }));
    }
    out
}

fn bench(c: &mut Criterion) {
    let path = format!(
        "{}/../tests/fixtures/events/{FIXTURE}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let event: Value = serde_json::from_slice(&bytes).expect("fixture parses");

    let mut one = PatternSet::new();
    one.add(0, &json!({
        "source": ["aws.guardduty"],
        "detail-type": ["GuardDuty Finding"],
        "detail": { "type": ["UnauthorizedAccess:EC2/MaliciousIPCaller.Custom"], "severity": [{ "numeric": [">=", 4] }] }
    }))
    .expect("pattern compiles");
    assert_eq!(one.matches(&event), vec![0]);

    let set_of = |three_matches: bool| {
        let mut set = PatternSet::new();
        for (id, p) in realistic_patterns(three_matches).iter().enumerate() {
            set.add(id, p).expect("pattern compiles");
        }
        assert_eq!(set.len(), 1000);
        set
    };
    let many = set_of(true);
    assert_eq!(many.matches(&event), vec![0, 400, 600]);
    let many_one_match = set_of(false);
    assert_eq!(many_one_match.matches(&event), vec![0]);

    let mut g = c.benchmark_group("pattern");
    g.bench_function("parse_event_from_slice", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&bytes)).expect("parses"))
    });
    g.bench_function("match_1_pattern", |b| {
        b.iter(|| one.matches(black_box(&event)))
    });
    g.bench_function("match_1000_patterns_3_match", |b| {
        b.iter(|| many.matches(black_box(&event)))
    });
    g.bench_function("match_1000_patterns_1_match", |b| {
        b.iter(|| many_one_match.matches(black_box(&event)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
