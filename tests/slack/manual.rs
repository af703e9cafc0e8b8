//! `/cordon run PLAYBOOK NAME=VALUE ...` through the real binary: a manual playbook's typed
//! inputs are checked before any run exists, and a run made from them contains what they name.

use serde_json::json;

use crate::common::Cordon;
use crate::fake::{self, wait_for};
use crate::harness::*;

const QUARANTINE: &str = "id: quarantine-instance\ntitle: Quarantine an instance\nversion: 1\nmode: manual\ninputs:\n  account: {type: account_id, description: the instance's account}\n  region: {type: region}\n  instance: {type: instance_id}\nsteps:\n  - id: isolate\n    action: ec2.isolate_instance\n    with: {instance: \"${event.detail.inputs.instance}\"}\n";

#[test]
fn a_manual_playbook_runs_from_chat_with_its_typed_inputs() {
    let c = Cordon::new();
    let (slack_url, seen) = fake::start();
    let pb = c.playbook_dir("manual", QUARANTINE);
    let s = serve(&c, &slack_url, &pb);
    let good =
        format!("run quarantine-instance account={ACCOUNT} region=us-east-1 instance={INSTANCE}");

    // Only runners may start playbooks.
    let v = s.command(RELEASER, &good);
    assert!(
        v["text"]
            .as_str()
            .unwrap()
            .contains("may not start playbooks (chat.slack.runners)"),
        "{v}"
    );

    // Bad inputs: every problem is named, and no run exists.
    let v = s.command(
        APPROVER,
        "run quarantine-instance account=1234 instance=i-XYZ colour=red oops",
    );
    assert_eq!(v["response_type"], "ephemeral");
    let text = v["text"].as_str().unwrap();
    for want in [
        "Not started:",
        "\"oops\" is not NAME=VALUE",
        "input account: \"1234\" is not an AWS account id: 12 digits",
        "input instance: \"i-XYZ\" is not an EC2 instance id",
        "playbook quarantine-instance has no input \"colour\"",
        "input region is missing (region)",
    ] {
        assert!(text.contains(want), "{want:?} missing from {text}");
    }
    let v = s.command(APPROVER, "run no-such-playbook account=111122223333");
    assert!(
        v["text"]
            .as_str()
            .unwrap()
            .contains("manual playbooks: quarantine-instance"),
        "{v}"
    );
    assert_eq!(c.json(&["runs", "list"], 0), json!([]), "no run exists");

    let v = s.command(APPROVER, &good);
    assert_eq!(v["response_type"], "in_channel", "{v}");
    let text = v["text"].as_str().unwrap();
    assert!(text.contains("started by <@U0ALICE>"), "{text}");
    let id = text.split('`').nth(1).unwrap().to_string();
    s.state(&c, &id, "succeeded");
    let shown = c.json(&["runs", "show", &id], 0);
    assert_eq!(shown["trigger"]["kind"], "manual", "{shown}");
    assert_eq!(shown["trigger"]["by"], "slack:T0TEAM/U0ALICE", "{shown}");
    assert_eq!(shown["account"], ACCOUNT);
    assert_eq!(shown["steps"][0]["params"]["instance"], INSTANCE, "{shown}");
    assert_eq!(
        Some(groups(&c)),
        isolation_group(&c).map(|g| vec![g]),
        "the instance named by the input is isolated"
    );
    // The run has its message, with Undo.
    let message = run_message_in(&seen, &id, "succeeded");
    button(&message, "cordon_undo");
}

#[test]
fn playbook_inputs_are_checked_at_load_with_file_line_and_field() {
    let c = Cordon::new();
    let load = |name: &str, yaml: &str| {
        let dir = c.playbook_dir(name, yaml);
        let out = c.run(&["validate", &dir]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let auto = QUARANTINE.replace(
        "mode: manual\n",
        "mode: auto\ntrigger:\n  match:\n    source: [aws.guardduty]\n",
    );
    let out = load("auto", &auto);
    assert!(
        out.contains("auto.yaml:8: inputs: only manual playbooks take inputs"),
        "{out}"
    );
    let typo = QUARANTINE.replace("type: instance_id", "type: instance");
    let out = load("typo", &typo);
    assert!(out.contains("typo.yaml:"), "{out}");
    assert!(
        out.contains("instance_id"),
        "the known types are listed: {out}"
    );
    let bad_name = QUARANTINE.replace("  instance: {type", "  Instance-Id: {type");
    let out = load("name", &bad_name);
    assert!(
        out.contains("name.yaml:8: inputs.Instance-Id: \"Instance-Id\" is not an input name"),
        "{out}"
    );
}

#[test]
fn the_shipped_quarantine_account_playbook_starts_from_chat_and_waits_for_a_second_person() {
    let c = Cordon::new();
    let (slack_url, seen) = fake::start();
    let shipped = crate::common::root().join("playbooks");
    let s = serve(&c, &slack_url, shipped.to_str().unwrap());
    let v = s.command(APPROVER, "run quarantine-account account=111122223333");
    assert_eq!(v["response_type"], "in_channel", "{v}");
    let id = v["text"]
        .as_str()
        .unwrap()
        .split('`')
        .nth(1)
        .unwrap()
        .to_string();
    s.state(&c, &id, "waiting_approval");
    let shown = c.json(&["runs", "show", &id], 0);
    assert_eq!(shown["account"], "111122223333", "{shown}");
    let message = run_message_in(&seen, &id, "waiting_approval");
    assert!(
        message["blocks"]
            .to_string()
            .contains("org.attach_deny_scp"),
        "{message}"
    );
    // Whoever asked may not approve their own containment.
    let value = button(&message, "cordon_approve")["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.click(APPROVER, "cordon_approve", &value, None), 200);
    let told = wait_for(&seen, "chat.postEphemeral", |v| v["user"] == APPROVER.1);
    assert!(
        told["text"].as_str().unwrap().starts_with("Not decided"),
        "{told}"
    );
    assert_eq!(
        c.json(&["runs", "show", &id], 0)["state"],
        "waiting_approval"
    );
}
