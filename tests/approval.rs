//! End-to-end: who may approve, through the real binary on the simulated organization (shared/
//! cases row 9). An approver is named and printable; whoever started a run by hand cannot
//! approve it; a step with `approvers: 2` isolates nothing until two different people approved,
//! and the run record keeps who approved and when.

mod common;

use common::Cordon;
use serde_json::Value;

const DEMO_INSTANCE: &str = "i-0961e0b3af8b3ec39";
const DEMO_ACCOUNT: &str = "352283894008";

/// Isolation of the finding's instance, after two people approve.
const TWO_PERSON: &str = "id: two-person-isolate\ntitle: isolate after two approvals\nversion: 1\nmode: approval\ntrigger:\n  match:\n    source: [aws.guardduty]\nsteps:\n  - id: ask\n    action: approval\n    with:\n      message: Isolate ${finding.resources[0].id}?\n      approvers: 2\n  - id: isolate\n    action: ec2.isolate_instance\n    with:\n      instance: ${finding.resources[0].id}\n";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The demo instance's security groups, per network interface.
fn groups(c: &Cordon) -> Vec<Value> {
    let w = c.world();
    w["accounts"][DEMO_ACCOUNT]["regions"]["us-east-1"]["instances"][DEMO_INSTANCE]["interfaces"]
        .as_object()
        .unwrap()
        .values()
        .cloned()
        .collect()
}

fn run_id(c: &Cordon) -> String {
    c.run_of("two-person-isolate")["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_two_person_step_waits_for_a_second_different_person() {
    let c = Cordon::new();
    let pb = c.playbook_dir("two-person-isolate", TWO_PERSON);
    let out = c.ok(&["--playbooks", &pb, "run", "--cloud", "sim"], 0);
    assert!(out.contains("waiting_approval"), "{out}");
    assert!(out.contains("(0 of 2 approvals)"), "{out}");
    let id = run_id(&c);
    let before = groups(&c);
    let approve = |by: &str| c.run(&["approve", &id, "ask", "--by", by]);

    // Approvers are named and printable.
    for (by, why) in [
        ("", "an approver name is required"),
        (
            "eve\n2026-01-01T00:00:00Z INFO approved by admin",
            "control characters",
        ),
        ("\u{1b}[2J", "control characters"),
    ] {
        let o = approve(by);
        assert_eq!(o.status.code(), Some(1), "{by:?}: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains(why), "{by:?}: {}", text(&o.stderr));
    }

    let first = approve("alice");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    assert_eq!(
        text(&first.stdout),
        format!("run {id}: step ask approved by alice: 1 of 2 approvals; waiting for another approver\n")
    );
    assert_eq!(groups(&c), before, "one approval isolates nothing");
    let run = c.run_of("two-person-isolate");
    assert_eq!(run["state"], "waiting_approval");

    // The same person again, in other letters, is not a second person.
    let again = approve("Alice");
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains(&format!(
            "alice already approved step ask of run {id} (1 of 2 approvals); another person must approve"
        )),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(groups(&c), before);

    let second = approve("bob");
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    assert_eq!(
        text(&second.stdout),
        format!("run {id}: step ask approved by bob; run is succeeded\n")
    );
    let after = groups(&c);
    assert_ne!(after, before, "isolated after the second approval");
    assert_eq!(after[0].as_array().unwrap().len(), 1);

    let run = c.run_of("two-person-isolate");
    let approvals = run["steps"][0]["approvals"].as_array().unwrap();
    let who: Vec<&str> = approvals
        .iter()
        .map(|a| a["by"].as_str().unwrap())
        .collect();
    assert_eq!(who, ["alice", "bob"]);
    assert!(approvals.iter().all(|a| a["at_ms"].as_u64() > Some(0)));
    let timeline: Vec<&str> = run["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["what"].as_str().unwrap())
        .collect();
    assert!(
        timeline.contains(&"approved by alice (1 of 2 approvals); waiting for another approver")
    );
    assert!(timeline.contains(&"approved by bob (2 of 2 approvals)"));
}

#[test]
fn the_requester_cannot_approve_and_one_denial_denies() {
    let c = Cordon::new();
    let pb = c.playbook_dir("two-person-isolate", TWO_PERSON);
    c.ok(
        &[
            "--playbooks",
            &pb,
            "run",
            "--cloud",
            "sim",
            "--playbook",
            "two-person-isolate",
            "--by",
            "carol",
        ],
        0,
    );
    let id = run_id(&c);
    let before = groups(&c);
    let own = c.run(&["approve", &id, "ask", "--by", "carol"]);
    assert_eq!(own.status.code(), Some(1));
    assert!(
        text(&own.stderr).contains(&format!(
            "carol started run {id} and cannot also approve it: another person must"
        )),
        "{}",
        text(&own.stderr)
    );
    c.ok(&["approve", &id, "ask", "--by", "dave"], 0);
    let denied = c.ok(&["approve", &id, "ask", "--deny", "--by", "erin"], 3);
    assert_eq!(
        denied,
        format!("run {id}: step ask denied by erin; run is denied\n")
    );
    assert_eq!(groups(&c), before, "a denied step isolates nothing");
    let run = c.run_of("two-person-isolate");
    assert_eq!(run["state"], "denied");
    assert_eq!(run["steps"][0]["approvals"][0]["by"], "dave");
    assert_eq!(run["steps"][0]["decision"]["by"], "erin");
}
