//! Buttons through the real binary: an approval is bound to the plan it showed, Undo releases
//! (releasers only), and a kill -9 between a click and its step loses nothing and repeats
//! nothing.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{calls, fixture_json, Cordon};
use crate::fake::{self, wait_for};
use crate::harness::*;

const CONTAIN: &str = "id: contain\ntitle: t\nversion: 1\nmode: auto\ntrigger:\n  match:\n    source: [aws.guardduty]\nsteps:\n  - id: isolate\n    action: ec2.isolate_instance\n    with: {instance: \"${finding.resources[0].id}\"}\n";

fn approve_value(seen: &fake::Seen, id: &str) -> String {
    let posted = run_message_in(seen, id, "waiting_approval");
    button(&posted, "cordon_approve")["value"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_click_on_another_plan_than_the_runs_decides_nothing() {
    let c = Cordon::new();
    let (seen, s, id) = one_run(&c, "ask", ASK_PLAYBOOK, "waiting_approval");
    let value = approve_value(&seen, &id);
    let parts: Vec<&str> = value.split(' ').collect();
    assert_eq!(parts.len(), 3, "RUN STEP PLAN_HASH: {value}");
    assert_eq!((parts[0], parts[1]), (id.as_str(), "ask"));
    assert_eq!(parts[2].len(), 32);

    // A click carrying the hash of another plan (a message showing something else).
    let stale = format!("{id} ask 0123456789abcdef0123456789abcdef");
    assert_eq!(s.click(APPROVER, "cordon_approve", &stale, None), 200);
    let told = wait_for(&seen, "chat.postEphemeral", |v| v["user"] == APPROVER.1);
    let text = told["text"].as_str().unwrap();
    assert!(text.starts_with("Not decided: the plan of run"), "{text}");
    assert!(text.contains(parts[2]), "the current plan is named: {text}");
    wait_for(&seen, "chat.postMessage", |v| {
        v["text"]
            .as_str()
            .is_some_and(|t| t.contains("decided nothing") && t.contains("<@U0ALICE>"))
    });
    let shown = c.json(&["runs", "show", &id], 0);
    assert_eq!(shown["state"], "waiting_approval", "{shown}");
    assert!(shown["steps"][0]["decision"].is_null(), "{shown}");
    // A click without a plan hash (a malformed or older value) is refused outright.
    assert_eq!(
        s.click(APPROVER, "cordon_deny", &format!("{id} ask"), None),
        400
    );

    // The click on the plan shown goes through.
    assert_eq!(s.click(APPROVER, "cordon_approve", &value, None), 200);
    s.state(&c, &id, "succeeded");
    assert_eq!(decided_by(&c, &id, "ask"), "slack:T0TEAM/U0ALICE");
}

#[test]
fn undo_shows_the_release_plan_and_releases_for_releasers_only() {
    let c = Cordon::new();
    let (seen, s, id) = one_run(&c, "contain", CONTAIN, "succeeded");
    let isolation = isolation_group(&c).expect("an isolation group");
    assert_eq!(groups(&c), std::slice::from_ref(&isolation));
    let message = run_message_in(&seen, &id, "succeeded");
    let undo = button(&message, "cordon_undo");
    assert_eq!(undo["value"], id.as_str());
    let dialog = undo["confirm"]["text"]["text"].as_str().unwrap();
    assert!(
        dialog.len() <= 300,
        "Slack caps a confirm text at 300: {dialog}"
    );
    for want in ["undo `isolate`", "ec2.isolate_instance", INSTANCE] {
        assert!(
            dialog.contains(want),
            "{want} missing from the release plan: {dialog}"
        );
    }

    for who in [STRANGER, APPROVER] {
        assert_eq!(s.click(who, "cordon_undo", &id, None), 200);
        let told = wait_for(&seen, "chat.postEphemeral", |v| v["user"] == who.1);
        assert!(
            told["text"].as_str().unwrap().contains("may not release"),
            "{told}"
        );
    }
    assert_eq!(c.json(&["runs", "show", &id], 0)["state"], "succeeded");

    assert_eq!(s.click(RELEASER, "cordon_undo", &id, None), 200);
    s.state(&c, &id, "released");
    let restored = groups(&c);
    assert!(
        !restored.is_empty() && !restored.contains(&isolation),
        "the instance's groups are restored: {restored:?}"
    );
    wait_for(&seen, "chat.postMessage", |v| {
        v["text"]
            .as_str()
            .is_some_and(|t| t.contains("released by <@U0BOB>"))
    });
    let timeline = c.json(&["runs", "show", &id], 0);
    assert!(
        timeline.to_string().contains("slack:T0TEAM/U0BOB"),
        "who released is journaled: {timeline}"
    );
}

#[test]
fn a_kill_9_between_the_click_and_the_step_loses_nothing_and_repeats_nothing() {
    let c = Cordon::new();
    let (slack_url, seen) = fake::start();
    let pb = c.playbook_dir("ask", ASK_PLAYBOOK);
    // A pause before every cloud call, so that the kill lands before the step's first call.
    let slow = [("CORDON_SIM_DELAY_MS", "1500")];
    let mut s = serve_with(&c, &slack_url, &pb, &slow);
    let id = s.event(&fixture_json(DEMO));
    s.state(&c, &id, "waiting_approval");
    let value = approve_value(&seen, &id);
    assert_eq!(s.click(APPROVER, "cordon_approve", &value, None), 200);
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    let w = c.world();
    assert_eq!(
        calls(&w, "ec2:CreateSecurityGroup") + calls(&w, "ec2:ModifyNetworkInterfaceAttribute"),
        0,
        "the kill came before the step acted"
    );
    drop(s);

    let s = serve(&c, &slack_url, &pb);
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.json(&["runs", "show", &id], 0)["state"] != "succeeded" {
        assert!(Instant::now() < deadline, "not resumed:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(decided_by(&c, &id, "ask"), "slack:T0TEAM/U0ALICE");
    let w = c.world();
    let region = &w["accounts"][ACCOUNT]["regions"]["us-east-1"];
    let isolation: Vec<&Value> = region["groups"]
        .as_object()
        .unwrap()
        .values()
        .filter(|g| g["name"] == "cordon-isolation")
        .collect();
    assert_eq!(isolation.len(), 1, "one isolation group: {region}");
    // The interface moved once to the allow-all group and once to the isolation group: the
    // step's change was made once.
    assert_eq!(calls(&w, "ec2:ModifyNetworkInterfaceAttribute"), 2, "{w}");
    // The kill lands within milliseconds of the click's answer: before the step journaled its
    // start with its pre-state (nothing changed yet, so the step runs as attempt 1 after the
    // restart), or, rarely, after, from when on the change may be under way and the resumed
    // step counts a second attempt.
    let shown = c.json(&["runs", "show", &id], 0);
    let attempt = shown["steps"][1]["attempt"].as_u64();
    let timeline: Vec<&str> = shown["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["step"] == "isolate")
        .filter_map(|e| e["what"].as_str())
        .collect();
    // The start is journaled with the pre-state: "started ... (attempt N); pre-state recorded".
    let last_start = timeline
        .iter()
        .rposition(|w| w.starts_with("started ec2.isolate_instance"))
        .expect("the step started");
    let pre_state_before_kill = timeline[..last_start]
        .iter()
        .any(|w| w.ends_with("pre-state recorded"));
    let expected = if pre_state_before_kill { 2 } else { 1 };
    assert_eq!(attempt, Some(expected), "the step ran once: {shown}");
}

#[test]
fn a_two_person_step_needs_two_different_approvers_clicking() {
    let c = Cordon::new();
    let (slack_url, seen) = fake::start();
    let two = ASK_PLAYBOOK.replace("default: deny}", "default: deny, approvers: 2}");
    let pb = c.playbook_dir("two", &two);
    let carol = ("T0TEAM", "U0CAROL");
    let yaml = format!(
        "chat:\n  slack:\n    api_base_url: {slack_url}\n    channel: C0CORDON\n    approvers: [T0TEAM/U0ALICE, T0TEAM/U0CAROL]\n"
    );
    let s = serve_config(&c, &yaml, &pb, &[]);
    let id = s.event(&fixture_json(DEMO));
    s.state(&c, &id, "waiting_approval");
    let value = approve_value(&seen, &id);

    assert_eq!(s.click(APPROVER, "cordon_approve", &value, None), 200);
    wait_for(&seen, "chat.postMessage", |v| {
        v["text"]
            .as_str()
            .is_some_and(|t| t.contains("1 of 2 approvals, waiting for another approver"))
    });
    // The same person again counts for nothing.
    assert_eq!(s.click(APPROVER, "cordon_approve", &value, None), 200);
    let told = wait_for(&seen, "chat.postEphemeral", |v| v["user"] == APPROVER.1);
    assert!(
        told["text"]
            .as_str()
            .unwrap()
            .contains("another person must approve"),
        "{told}"
    );
    let shown = c.json(&["runs", "show", &id], 0);
    assert_eq!(shown["state"], "waiting_approval", "{shown}");
    assert_eq!(
        shown["steps"][0]["approvals"].as_array().map(Vec::len),
        Some(1)
    );

    // The message shows the first approval, and its buttons still decide the same plan.
    let message = wait_for(&seen, "chat.update", |v| {
        is_run_message(v, &id)
            && v["blocks"]
                .to_string()
                .contains("approved by slack:T0TEAM/U0ALICE")
    });
    assert_eq!(button(&message, "cordon_approve")["value"], value.as_str());
    assert_eq!(s.click(carol, "cordon_approve", &value, None), 200);
    s.state(&c, &id, "succeeded");
    let shown = c.json(&["runs", "show", &id], 0);
    let by: Vec<&str> = shown["steps"][0]["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["by"].as_str().unwrap())
        .collect();
    assert_eq!(by, ["slack:T0TEAM/U0ALICE", "slack:T0TEAM/U0CAROL"]);
}
