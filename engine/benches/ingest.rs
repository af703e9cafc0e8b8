//! Ingest: "normalize + match one finding", the work done for every event that arrives.
//!
//! Input: the bytes of a real GuardDuty EventBridge event
//! (`UnauthorizedAccess:EC2/MaliciousIPCaller.Custom`). Work measured: `event::parse` (JSON,
//! envelope, normalization) then `PlaybookSet::evaluate` for each finding, against
//! - 1 playbook: the shipped `isolate-ec2-instance.yaml`;
//! - 1,000 playbooks: the shipped one plus 999 generated, realistic ones (GuardDuty exact types
//!   and prefixes, accounts, severity thresholds, resource types, Security Hub label and type
//!   patterns, a few `trigger.when` scripts), of which only a handful match this event.
//!
//! Baseline: `serde_json::from_slice::<Value>` of the same bytes, the least any ingest can do.
//!
//! Targets (ratios, because the machines are shared and noisy):
//! - 1,000 playbooks / JSON parse <= 3x;
//! - 1,000 playbooks / 1 playbook <= 1.5x.
//!
//! Criterion reports the three times; it does not compute ratios, so after its groups this
//! binary measures the three variants again, interleaved round by round (so a noisy neighbour
//! slows all three alike), and prints the medians and the medians of the per-round ratios, with
//! a breakdown. The ratio pass runs only in bench mode (`cargo bench`), not when
//! `cargo test --benches` smoke-runs the target.
//!
//! Run: `cargo bench -p cordon-engine --bench ingest -- --warm-up-time 1 --measurement-time 3`

mod support;

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use cordon_engine::event::{self, FindingEvent};
use cordon_engine::pattern::PatternSet;
use cordon_engine::playbook::{MatchOutcome, PlaybookSet};
use cordon_engine::script::{Context, Sandbox};
use criterion::Criterion;
use serde_json::{json, Value};
use support::Lcg;

const EVENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/events/aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json"
);
const SHIPPED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../playbooks/isolate-ec2-instance.yaml"
);

/// The finding's own values: generated playbooks avoid them except the few meant to match.
const EVENT_TYPE: &str = "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom";
const EVENT_ACCOUNT: &str = "352283894008";

/// Real GuardDuty finding types with the resource type GuardDuty reports for them. The event's
/// own type is deliberately absent.
const GD_TYPES: &[(&str, &str)] = &[
    ("Backdoor:EC2/C&CActivity.B", "Instance"),
    ("Backdoor:EC2/C&CActivity.B!DNS", "Instance"),
    ("Backdoor:EC2/DenialOfService.Tcp", "Instance"),
    ("Backdoor:EC2/Spambot", "Instance"),
    ("Behavior:EC2/NetworkPortUnusual", "Instance"),
    ("Behavior:EC2/TrafficVolumeUnusual", "Instance"),
    ("CryptoCurrency:EC2/BitcoinTool.B", "Instance"),
    ("CryptoCurrency:EC2/BitcoinTool.B!DNS", "Instance"),
    ("Impact:EC2/WinRMBruteForce", "Instance"),
    ("Impact:EC2/PortSweep", "Instance"),
    ("Recon:EC2/PortProbeUnprotectedPort", "Instance"),
    ("Recon:EC2/Portscan", "Instance"),
    ("Trojan:EC2/BlackholeTraffic", "Instance"),
    ("Trojan:EC2/DNSDataExfiltration", "Instance"),
    ("Trojan:EC2/DropPoint", "Instance"),
    ("UnauthorizedAccess:EC2/SSHBruteForce", "Instance"),
    ("UnauthorizedAccess:EC2/RDPBruteForce", "Instance"),
    ("UnauthorizedAccess:EC2/TorClient", "Instance"),
    ("UnauthorizedAccess:EC2/MetadataDNSRebind", "Instance"),
    ("UnauthorizedAccess:EC2/MaliciousIPCaller", "Instance"),
    ("Execution:EC2/MaliciousFile", "Instance"),
    ("Execution:Runtime/NewBinaryExecuted", "Instance"),
    ("DefenseEvasion:Runtime/FilelessExecution", "Instance"),
    ("Discovery:S3/MaliciousIPCaller", "S3Bucket"),
    ("Exfiltration:S3/AnomalousBehavior", "S3Bucket"),
    ("Impact:S3/MaliciousIPCaller", "S3Bucket"),
    ("Policy:S3/BucketBlockPublicAccessDisabled", "S3Bucket"),
    ("Stealth:S3/ServerAccessLoggingDisabled", "S3Bucket"),
    ("Discovery:IAMUser/AnomalousBehavior", "AccessKey"),
    ("Exfiltration:IAMUser/AnomalousBehavior", "AccessKey"),
    ("InitialAccess:IAMUser/AnomalousBehavior", "AccessKey"),
    ("PenTest:IAMUser/KaliLinux", "AccessKey"),
    ("Persistence:IAMUser/AnomalousBehavior", "AccessKey"),
    ("Policy:IAMUser/RootCredentialUsage", "AccessKey"),
    ("PrivilegeEscalation:IAMUser/AnomalousBehavior", "AccessKey"),
    ("Recon:IAMUser/MaliciousIPCaller", "AccessKey"),
    ("Stealth:IAMUser/CloudTrailLoggingDisabled", "AccessKey"),
    (
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
        "AccessKey",
    ),
    (
        "UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B",
        "AccessKey",
    ),
    (
        "CredentialAccess:Kubernetes/MaliciousIPCaller",
        "EKSCluster",
    ),
    ("Discovery:Kubernetes/MaliciousIPCaller", "EKSCluster"),
    ("Execution:Kubernetes/ExecInKubeSystemPod", "EKSCluster"),
    ("Execution:ECS/MaliciousFile", "ECSCluster"),
    (
        "CredentialAccess:RDS/AnomalousBehavior.SuccessfulLogin",
        "RDSDBInstance",
    ),
    ("Execution:Lambda/MaliciousFile", "Lambda"),
];

/// Type prefixes playbooks match whole families with. `UnauthorizedAccess:EC2/` is the event's
/// family: those playbooks become candidates in the index and are rejected only by their
/// severity or account conditions, which is realistic pre-filter work.
const GD_PREFIXES: &[(&str, &str)] = &[
    ("Backdoor:EC2/", "Instance"),
    ("CryptoCurrency:EC2/", "Instance"),
    ("Trojan:EC2/", "Instance"),
    ("Recon:EC2/", "Instance"),
    ("Impact:EC2/", "Instance"),
    ("Behavior:EC2/", "Instance"),
    ("UnauthorizedAccess:EC2/", "Instance"),
    ("Discovery:S3/", "S3Bucket"),
    ("Exfiltration:S3/", "S3Bucket"),
    ("Policy:IAMUser/", "AccessKey"),
    ("Stealth:IAMUser/", "AccessKey"),
    ("PrivilegeEscalation:IAMUser/", "AccessKey"),
    ("UnauthorizedAccess:IAMUser/", "AccessKey"),
    ("Discovery:Kubernetes/", "EKSCluster"),
    ("Execution:Runtime/", "Instance"),
    ("CredentialAccess:RDS/", "RDSDBInstance"),
];

/// ASFF `Types` prefixes (Security Hub's type taxonomy).
const SH_TYPE_PREFIXES: &[&str] = &[
    "TTPs/Initial Access/",
    "TTPs/Discovery/",
    "TTPs/Command and Control/",
    "TTPs/Privilege Escalation/",
    "Effects/Data Exfiltration/",
    "Effects/Resource Consumption/",
    "Unusual Behaviors/User/",
    "Unusual Behaviors/VM/",
    "Software and Configuration Checks/Industry and Regulatory Standards/",
    "Software and Configuration Checks/Vulnerabilities/CVE",
    "Sensitive Data Identifications/PII/",
];

const SH_PRODUCTS: &[&str] = &[
    "GuardDuty",
    "Inspector",
    "Macie",
    "Security Hub",
    "IAM Access Analyzer",
    "Config",
];

const SH_RESOURCES: &[&str] = &[
    "AwsEc2Instance",
    "AwsIamAccessKey",
    "AwsIamRole",
    "AwsIamUser",
    "AwsS3Bucket",
    "AwsEksCluster",
    "AwsLambdaFunction",
];

const SH_LABELS: &[&[&str]] = &[
    &["HIGH", "CRITICAL"],
    &["CRITICAL"],
    &["MEDIUM", "HIGH", "CRITICAL"],
    &["HIGH"],
];

const REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-2",
];

/// A YAML flow list of quoted strings: `["a", "b"]`.
fn list<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{:?}", s.as_ref())).collect();
    format!("[{}]", quoted.join(", "))
}

/// The trigger of generated playbook `i` (YAML, indented under `trigger:`), and whether it is
/// meant to match the event.
fn trigger(i: usize, rng: &mut Lcg, accounts: &[String]) -> String {
    let mut t = String::from("  match:\n");
    // The handful meant to match: exact type, plain or with a `when` (one of them false).
    match i {
        100 => {
            let _ = writeln!(
                t,
                "    source: [aws.guardduty]\n    detail-type: [GuardDuty Finding]\n    detail:\n      type: [{EVENT_TYPE:?}]\n      resource:\n        resourceType: [Instance]"
            );
            return t;
        }
        300 | 500 => {
            let threshold = if i == 300 { 4.0 } else { 8.0 };
            let _ = writeln!(
                t,
                "    source: [aws.guardduty]\n    detail:\n      type: [{{prefix: \"UnauthorizedAccess:EC2/MaliciousIPCaller\"}}]\n  when: |\n    finding.severity >= {threshold:.1} && finding.resources.some(|r| r.type == \"Instance\")"
            );
            return t;
        }
        700 => {
            let _ = writeln!(
                t,
                "    detail-type: [GuardDuty Finding]\n    account: [{EVENT_ACCOUNT:?}]\n    detail:\n      type: [{EVENT_TYPE:?}, \"UnauthorizedAccess:EC2/TorClient\"]"
            );
            return t;
        }
        _ => {}
    }
    let account_filter = |rng: &mut Lcg| -> Option<String> {
        // Half the playbooks are scoped to a few accounts (never the event's).
        (rng.below(2) == 0).then(|| {
            let picked: Vec<&String> = rng.some(accounts, 3);
            list(&picked)
        })
    };
    match rng.below(20) {
        // GuardDuty, exact types of one resource family (45%).
        0..=8 => {
            let (first, rtype) = *rng.pick(GD_TYPES);
            let same: Vec<&str> = GD_TYPES
                .iter()
                .filter(|(_, r)| *r == rtype)
                .map(|(ty, _)| *ty)
                .collect();
            let mut types = vec![first];
            for ty in rng.some(&same, 3) {
                if !types.contains(ty) {
                    types.push(ty);
                }
            }
            let _ = writeln!(
                t,
                "    source: [aws.guardduty]\n    detail-type: [GuardDuty Finding]"
            );
            if let Some(a) = account_filter(rng) {
                let _ = writeln!(t, "    account: {a}");
            }
            let _ = writeln!(
                t,
                "    detail:\n      type: {}\n      resource:\n        resourceType: [{rtype}]",
                list(&types)
            );
            if rng.below(2) == 0 {
                let sev = [2, 4, 5, 7, 8][rng.below(5)];
                let _ = writeln!(t, "      severity: [{{numeric: [\">=\", {sev}]}}]");
            }
            if rng.below(4) == 0 {
                let _ = writeln!(t, "      region: {}", list(&rng.some(REGIONS, 2)));
            }
        }
        // GuardDuty, type prefixes with a severity band (25%).
        9..=13 => {
            let (prefix, rtype) = *rng.pick(GD_PREFIXES);
            let _ = writeln!(
                t,
                "    source: [aws.guardduty]\n    detail-type: [GuardDuty Finding]"
            );
            if let Some(a) = account_filter(rng) {
                let _ = writeln!(t, "    account: {a}");
            }
            // Above the event's severity (5), so the prefix candidates do not match.
            let sev = [6, 7, 7, 8, 9][rng.below(5)];
            let band = if rng.below(3) == 0 {
                format!("[\">=\", {sev}, \"<=\", 10]")
            } else {
                format!("[\">=\", {sev}]")
            };
            let _ = writeln!(
                t,
                "    detail:\n      type: [{{prefix: {prefix:?}}}]\n      resource:\n        resourceType: [{rtype}]\n      severity: [{{numeric: {band}}}]"
            );
        }
        // Security Hub imported findings: label, types prefix, product, resource (25%).
        14..=18 => {
            let labels = *rng.pick(SH_LABELS);
            let _ = writeln!(
                t,
                "    source: [aws.securityhub]\n    detail-type: [Security Hub Findings - Imported]\n    detail:\n      findings:\n        Severity:\n          Label: {}",
                list(labels)
            );
            if rng.below(2) == 0 {
                let prefixes: Vec<String> = rng
                    .some(SH_TYPE_PREFIXES, 2)
                    .iter()
                    .map(|p| format!("{{prefix: {p:?}}}"))
                    .collect();
                let _ = writeln!(t, "        Types: [{}]", prefixes.join(", "));
            }
            if rng.below(2) == 0 {
                let _ = writeln!(
                    t,
                    "        ProductName: {}",
                    list(&rng.some(SH_PRODUCTS, 2))
                );
            }
            if rng.below(2) == 0 {
                let _ = writeln!(
                    t,
                    "        Resources:\n          Type: {}",
                    list(&rng.some(SH_RESOURCES, 2))
                );
            }
            if let Some(a) = account_filter(rng) {
                let _ = writeln!(t, "        AwsAccountId: {a}");
            }
        }
        // Security Hub custom actions (5%).
        _ => {
            let _ = writeln!(
                t,
                "    source: [aws.securityhub]\n    detail-type: [Security Hub Findings - Custom Action]\n    detail:\n      actionName: [\"cordon-{i}\"]"
            );
        }
    }
    // A few generated playbooks also carry a `when` (never reached here: their patterns do
    // not match this event, so they cost nothing at match time, as in production).
    if i % 50 == 7 {
        let _ = writeln!(
            t,
            "  when: |\n    finding.severity >= 7.0 && finding.resources.len() > 0"
        );
    }
    t
}

/// 999 generated playbook files plus the shipped one, as `(file, text)`.
fn thousand_sources(shipped: &str) -> Vec<(String, String)> {
    let mut rng = Lcg(0x5eed_c0de_0001);
    let accounts: Vec<String> = (0..200)
        .map(|_| format!("{:012}", rng.next() % 1_000_000_000_000))
        .filter(|a| a != EVENT_ACCOUNT)
        .collect();
    let mut sources = vec![("isolate-ec2-instance.yaml".to_string(), shipped.to_string())];
    for i in 1..1000 {
        let trig = trigger(i, &mut rng, &accounts);
        let channel = format!("#soc-team-{}", rng.below(12));
        let text = format!(
            r#"id: gen-{i:04}
title: Generated playbook {i} (bench)
version: 1
mode: auto
trigger:
{trig}vars:
  channel: "{channel}"
steps:
  - id: tell
    action: notify.chat
    with:
      channel: ${{vars.channel}}
      text: "${{finding.type}} in ${{finding.account}}/${{finding.region}}, severity ${{finding.severity}}"
  - id: audit
    action: eventbridge.put_event
    with:
      bus: security-audit
      detail:
        finding: ${{finding.id}}
        playbook: gen-{i:04}
"#
        );
        sources.push((format!("gen-{i:04}.yaml"), text));
    }
    sources
}

fn load(sources: &[(String, String)], sandbox: &Sandbox) -> PlaybookSet {
    PlaybookSet::from_sources(sources, sandbox).unwrap_or_else(|errors| {
        let shown: Vec<String> = errors.iter().take(5).map(ToString::to_string).collect();
        panic!("generated playbooks do not load:\n{}", shown.join("\n"))
    })
}

struct Fixture {
    bytes: Vec<u8>,
    sandbox: Sandbox,
    one: PlaybookSet,
    thousand: PlaybookSet,
}

impl Fixture {
    fn new() -> Fixture {
        let bytes = std::fs::read(EVENT).expect("fixture event");
        let shipped = std::fs::read_to_string(SHIPPED).expect("shipped playbook");
        let sandbox = Sandbox::default();
        let one = load(
            &[("isolate-ec2-instance.yaml".to_string(), shipped.clone())],
            &sandbox,
        );
        let thousand = load(&thousand_sources(&shipped), &sandbox);
        assert_eq!(thousand.len(), 1000);
        Fixture {
            bytes,
            sandbox,
            one,
            thousand,
        }
    }

    fn findings(&self) -> Vec<FindingEvent> {
        event::parse(&self.bytes)
            .expect("fixture parses")
            .findings()
            .to_vec()
    }
}

/// The measured work: parse and normalize, then match every finding.
fn ingest(bytes: &[u8], set: &PlaybookSet, sandbox: &Sandbox) -> usize {
    let parsed = event::parse(bytes).expect("fixture parses");
    parsed
        .findings()
        .iter()
        .map(|fe| set.evaluate(fe, sandbox).len())
        .sum()
}

fn baseline(bytes: &[u8]) -> Value {
    serde_json::from_slice::<Value>(bytes).expect("fixture is JSON")
}

/// Says which playbooks match, so a reader can check that only a handful do.
fn describe(fx: &Fixture) {
    for fe in fx.findings() {
        let matches = fx.thousand.evaluate(&fe, &fx.sandbox);
        let shown: Vec<String> = matches
            .iter()
            .map(|m| format!("{} ({})", m.playbook.id, outcome(&m.outcome)))
            .collect();
        println!(
            "ingest: event {} ({} bytes) matches {} of 1000 playbooks: {}",
            fe.finding.kind,
            fx.bytes.len(),
            matches.len(),
            shown.join(", ")
        );
        assert!(
            (1..=10).contains(&matches.len()),
            "only a handful of playbooks should match"
        );
        assert_eq!(fx.one.evaluate(&fe, &fx.sandbox).len(), 1);
    }
}

fn outcome(o: &MatchOutcome) -> &'static str {
    match o {
        MatchOutcome::Run => "run",
        MatchOutcome::CustomAction => "custom action",
        MatchOutcome::ManualOnly => "manual only",
        MatchOutcome::WhenFalse => "when false",
        MatchOutcome::WhenError(_) => "when error",
        MatchOutcome::Sample(_) => "sample",
    }
}

fn criterion_groups(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("ingest");
    g.bench_function("parse_json_baseline", |b| {
        b.iter(|| baseline(black_box(&fx.bytes)))
    });
    g.bench_function("normalize_match_1_playbook", |b| {
        b.iter(|| ingest(black_box(&fx.bytes), &fx.one, &fx.sandbox))
    });
    g.bench_function("normalize_match_1000_playbooks", |b| {
        b.iter(|| ingest(black_box(&fx.bytes), &fx.thousand, &fx.sandbox))
    });
    g.finish();
}

/// The parts of the 1,000-playbook ingest, measured separately through the public API, so the
/// report can say where the time goes.
struct Parts {
    finding: FindingEvent,
    /// The same patterns `PlaybookSet::from_sources` indexes, in their own set.
    patterns: PatternSet,
    /// The shipped playbook's `trigger.when`.
    when: cordon_engine::script::Script,
    /// The whole event and finding as a script context, as the runner's steps see them.
    full_context: Context,
}

impl Parts {
    fn new(fx: &Fixture) -> Parts {
        let mut patterns = PatternSet::new();
        for (i, p) in fx.thousand.iter().enumerate() {
            if let Some(json) = &p.pattern_json {
                patterns.add(i, json).expect("pattern compiles");
            }
        }
        let finding = fx.findings().remove(0);
        let full_context = Context::new(
            &finding.event,
            &serde_json::to_value(&finding.finding).expect("finding to JSON"),
            &json!({}),
            &json!({}),
            &json!({}),
        );
        Parts {
            finding,
            patterns,
            when: fx
                .sandbox
                .compile(r#"finding.resources.some(|r| r.type == "Instance")"#)
                .expect("when compiles"),
            full_context,
        }
    }
}

/// Interleaved medians, the ratios against the targets, and the breakdown.
fn ratios(fx: &Fixture) {
    const ROUNDS: usize = 41;
    let batch = Duration::from_millis(10);
    let parts = Parts::new(fx);
    let mut variants = vec![
        support::variant("parse_json_baseline", || baseline(black_box(&fx.bytes))),
        support::variant("normalize_match_1_playbook", || {
            ingest(black_box(&fx.bytes), &fx.one, &fx.sandbox)
        }),
        support::variant("normalize_match_1000_playbooks", || {
            ingest(black_box(&fx.bytes), &fx.thousand, &fx.sandbox)
        }),
        support::variant("part: event::parse (JSON + normalize)", || {
            event::parse(black_box(&fx.bytes)).expect("parses")
        }),
        support::variant("part: evaluate (1000: match, context, whens)", || {
            fx.thousand.evaluate(black_box(&parts.finding), &fx.sandbox)
        }),
        support::variant("part: 1000 patterns matched", || {
            parts.patterns.matches(black_box(&parts.finding.event))
        }),
        support::variant("part: one `when`, whole event+finding context", || {
            fx.sandbox
                .eval_bool(&parts.when, &parts.full_context)
                .expect("when runs")
        }),
    ];
    let r = support::Rounds::measure(&mut variants, ROUNDS, batch);
    r.print(
        &format!("ingest ratios (medians of {ROUNDS} interleaved {batch:?} batches; ratios are medians of per-round ratios)"),
        &variants,
    );
    r.print_ratio("1000 playbooks / JSON parse", 2, 0, 3.0);
    r.print_ratio("1000 playbooks / 1 playbook", 2, 1, 1.5);
    let whens = |set: &PlaybookSet| -> usize {
        fx.findings()
            .iter()
            .flat_map(|fe| set.evaluate(fe, &fx.sandbox))
            .filter(|m| m.playbook.when.is_some())
            .count()
    };
    println!(
        "  (`when` scripts run per ingest: {} with 1,000 playbooks, {} with 1)",
        whens(&fx.thousand),
        whens(&fx.one)
    );
}

fn main() {
    let fx = Fixture::new();
    describe(&fx);
    let mut c = Criterion::default().configure_from_args();
    criterion_groups(&mut c, &fx);
    c.final_summary();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not and wants a quick smoke run.
    if support::full_run() {
        ratios(&fx);
    }
}
