//! Unit tests for `set.rs`: trigger `when` scripts through `evaluate`, which hands each script
//! only what it reads of the event and the finding.

use super::{MatchOutcome, PlaybookSet};
use crate::event;
use crate::script::Sandbox;

const FIXTURE: &str = "aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json";

/// One playbook per `when`, all matching every GuardDuty finding.
fn set(whens: &[&str], sandbox: &Sandbox) -> PlaybookSet {
    let texts: Vec<(String, String)> = whens
        .iter()
        .enumerate()
        .map(|(i, when)| {
            (
                format!("p{i}.yaml"),
                format!(
                    "id: p{i}\ntitle: t\nversion: 1\nmode: auto\ntrigger:\n  match: {{\"source\": [\"aws.guardduty\"]}}\n  when: '{when}'\nsteps:\n  - id: a\n    action: iam.deactivate_access_key\n    with: {{user: u, key_id: k}}\n"
                ),
            )
        })
        .collect();
    PlaybookSet::from_sources(&texts, sandbox).unwrap_or_else(|e| panic!("{e:?}"))
}

/// The outcome of each playbook, in order, for the fixture finding.
fn outcomes(whens: &[&str]) -> Vec<MatchOutcome> {
    let sandbox = Sandbox::default();
    let path = format!(
        "{}/../tests/fixtures/events/{FIXTURE}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let parsed = event::parse(&bytes).expect("fixture parses");
    let set = set(whens, &sandbox);
    let mut matches = set.evaluate(&parsed.findings()[0], &sandbox);
    matches.sort_by(|a, b| a.playbook.id.cmp(&b.playbook.id));
    matches.into_iter().map(|m| m.outcome).collect()
}

#[test]
fn when_scripts_see_every_value_they_read() {
    use MatchOutcome::{Run, WhenFalse};
    // Read key by key, through the items of an iterated array and by quoted keys, evaluated
    // together: the context holds only the union of what they read.
    let got = outcomes(&[
        r#"finding.resources.some(|r| r.type == "Instance" && r.id.starts_with("i-0961"))"#,
        r#"finding.resources.some(|r| r.attributes["tag:Name"] == "AlertLogic Security Appliance")"#,
        r#"event.detail.severity == 5 && event["detail-type"] == "GuardDuty Finding""#,
        r#"finding.resources.all(|r| r.type == "AccessKey")"#,
        r#"finding.resources.some(|r| r.attributes.vpc_id == ())"#,
        r#"finding.title.len() > 1000 || finding.severity > 5.0"#,
    ]);
    assert_eq!(got, vec![Run, Run, Run, WhenFalse, WhenFalse, WhenFalse]);
    // Read whole.
    let got = outcomes(&[
        r#"finding.keys().len() >= 10 && finding.account == "352283894008""#,
        r#"finding.resources.len() == 1 && finding.resources[0].attributes.len() == 13"#,
        r#"`${event.detail.resource}`.contains("AlertLogic") && "resources" in finding"#,
    ]);
    assert_eq!(got, vec![Run, Run, Run]);
}

#[test]
fn a_script_cannot_change_what_the_next_one_reads() {
    let got = outcomes(&[
        r#"finding.severity = 9.0; finding.resources[0].type = "x"; finding.severity == 9.0"#,
        r#"finding.severity == 5.0 && finding.resources.some(|r| r.type == "Instance")"#,
    ]);
    assert_eq!(got, vec![MatchOutcome::Run, MatchOutcome::Run]);
}
