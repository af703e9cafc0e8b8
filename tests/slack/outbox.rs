//! The chat outbox through the real binary: a Slack outage or rate limit delays messages and
//! never containment; each run has one message, posted once and edited in place after.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{fixture_json, Cordon};
use crate::fake::{self, wait_for, Failing};
use crate::harness::*;

const ISOLATE_AND_TELL: &str = "id: isolate-and-tell\ntitle: t\nversion: 1\nmode: auto\ntrigger:\n  match:\n    source: [aws.guardduty]\nsteps:\n  - id: isolate\n    action: ec2.isolate_instance\n    with: {instance: \"${finding.resources[0].id}\"}\n  - id: tell\n    action: notify.chat\n    with: {text: \"Isolated ${finding.resources[0].id}\"}\n";

#[test]
fn a_slack_outage_delays_the_messages_never_the_containment() {
    let c = Cordon::new();
    let (slack_url, seen) = fake::start();
    let pb = c.playbook_dir("it", ISOLATE_AND_TELL);
    let s = serve(&c, &slack_url, &pb);
    // Slack answers 500 to everything for the next 4 seconds, from the finding's arrival (a
    // server slow to start on a loaded machine must not eat into the outage).
    let outage = Duration::from_secs(4);
    seen.fail(Failing::Until(Instant::now() + outage));
    let started = Instant::now();
    let id = s.event(&fixture_json(DEMO));
    s.state(&c, &id, "succeeded");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "containment waited for Slack: {:?}\n{}",
        started.elapsed(),
        s.log()
    );
    assert_eq!(
        Some(groups(&c)),
        isolation_group(&c).map(|g| vec![g]),
        "the instance is isolated during the outage"
    );
    let shown = c.json(&["runs", "show", &id], 0);
    assert_eq!(shown["steps"][1]["state"], "succeeded", "{shown}");
    assert_eq!(shown["steps"][1]["output"]["delivery"], "queued", "{shown}");
    assert!(
        seen.all().iter().all(|call| call.status == 500),
        "Slack answered something during the outage: {:?}",
        seen.all()
    );

    // After the outage, each message arrives, exactly once.
    let told = |v: &Value| v["text"] == format!("Isolated {INSTANCE}");
    wait_for(&seen, "chat.postMessage", told);
    wait_for(&seen, "chat.postMessage", |v| is_run_message(v, &id));
    std::thread::sleep(Duration::from_secs(2));
    let posts = seen.ok("chat.postMessage");
    assert_eq!(posts.iter().filter(|v| told(v)).count(), 1, "{posts:#?}");
    assert_eq!(
        posts.iter().filter(|v| is_run_message(v, &id)).count(),
        1,
        "{posts:#?}"
    );
    assert!(
        seen.all().iter().filter(|call| call.status == 500).count() >= 2,
        "the outbox retried: {:?}",
        seen.all()
    );
}

#[test]
fn a_rate_limited_message_waits_for_retry_after() {
    let c = Cordon::new();
    let (slack_url, seen) = fake::start();
    seen.fail(Failing::RateLimitedOnce(2));
    let pb = c.playbook_dir("it", ISOLATE_AND_TELL);
    let s = serve(&c, &slack_url, &pb);
    let id = s.event(&fixture_json(DEMO));
    s.state(&c, &id, "succeeded");
    wait_for(&seen, "chat.postMessage", |v| is_run_message(v, &id));
    wait_for(&seen, "chat.postMessage", |v| {
        v["text"] == format!("Isolated {INSTANCE}")
    });
    let calls = seen.all();
    let limited = calls
        .iter()
        .find(|call| call.status == 429)
        .expect("the 429");
    let next = calls
        .iter()
        .find(|call| call.at > limited.at)
        .expect("a call after the 429");
    assert!(
        next.at - limited.at >= Duration::from_millis(1900),
        "the next call came {:?} after a 429 asking for 2 s",
        next.at - limited.at
    );
}

#[test]
fn a_run_has_one_message_posted_once_and_updated_in_place() {
    let c = Cordon::new();
    let (seen, s, id) = one_run(&c, "ask", ASK_PLAYBOOK, "waiting_approval");
    let first = run_message_in(&seen, &id, "waiting_approval");
    let value = button(&first, "cordon_approve")["value"]
        .as_str()
        .unwrap()
        .to_string();

    // Slack delivers the click twice (its retry, `X-Slack-Retry-Num`), nearly at once.
    let (a, b) = std::thread::scope(|t| {
        let a = t.spawn(|| s.click(APPROVER, "cordon_approve", &value, None));
        let b = t.spawn(|| s.click(APPROVER, "cordon_approve", &value, Some("1")));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!((a, b), (200, 200));
    s.state(&c, &id, "succeeded");
    let shown = c.json(&["runs", "show", &id], 0);
    assert_eq!(
        shown["steps"][0]["approvals"].as_array().map(Vec::len),
        Some(1),
        "one decision: {shown}"
    );
    wait_for(&seen, "chat.update", |v| {
        is_run_message(v, &id) && v["text"].as_str().unwrap().ends_with(": succeeded")
    });
    let v = s.command(RELEASER, &format!("release {id}"));
    assert_eq!(v["response_type"], "in_channel", "{v}");
    s.state(&c, &id, "released");
    let last = wait_for(&seen, "chat.update", |v| {
        is_run_message(v, &id) && v["text"].as_str().unwrap().ends_with(": released")
    });

    let posts: Vec<Value> = seen
        .ok("chat.postMessage")
        .into_iter()
        .filter(|v| is_run_message(v, &id))
        .collect();
    assert_eq!(posts.len(), 1, "one post per run: {posts:#?}");
    let updates: Vec<Value> = seen
        .ok("chat.update")
        .into_iter()
        .filter(|v| is_run_message(v, &id))
        .collect();
    assert!(updates.len() >= 2, "{updates:#?}");
    for u in &updates {
        assert_eq!(
            u["ts"], "1700000000.000001",
            "every update edits the first post"
        );
        assert_eq!(u["channel"], "C0CORDON");
    }
    // Once released, the message offers neither decision nor undo.
    let blocks = last["blocks"].to_string();
    assert!(
        !blocks.contains("cordon_approve") && !blocks.contains("cordon_undo"),
        "{blocks}"
    );
    assert!(
        blocks.contains("approved by slack:T0TEAM/U0ALICE"),
        "{blocks}"
    );
}

#[test]
fn a_run_of_several_steps_edits_its_one_message_as_each_step_starts() {
    let c = Cordon::new();
    let (slack_url, seen) = fake::start();
    let shipped = crate::common::root().join("playbooks");
    // A pause before each cloud call, so that the steps' starts are apart.
    let s = serve_with(
        &c,
        &slack_url,
        shipped.to_str().unwrap(),
        &[("CORDON_SIM_DELAY_MS", "150")],
    );
    let id = s.event(&fixture_json(DEMO));
    s.state(&c, &id, "succeeded");
    let last = wait_for(&seen, "chat.update", |v| {
        is_run_message(v, &id) && v["text"].as_str().unwrap().ends_with(": succeeded")
    });
    let posts: Vec<Value> = seen
        .ok("chat.postMessage")
        .into_iter()
        .filter(|v| is_run_message(v, &id))
        .collect();
    assert_eq!(posts.len(), 1, "{posts:#?}");
    assert!(
        posts[0]["text"].as_str().unwrap().ends_with(": running"),
        "posted when the first step started: {}",
        posts[0]
    );
    let updates: Vec<Value> = seen
        .ok("chat.update")
        .into_iter()
        .filter(|v| is_run_message(v, &id))
        .collect();
    let running = updates
        .iter()
        .filter(|u| u["text"].as_str().unwrap().ends_with(": running"))
        .count();
    assert!(
        running >= 1,
        "a later step's start edits the message: {updates:#?}"
    );
    for u in &updates {
        assert_eq!(u["ts"], "1700000000.000001", "{u}");
    }
    let steps = last["blocks"].to_string();
    assert!(
        !steps.contains("*started*") && !steps.contains("*pending*"),
        "{steps}"
    );
}

#[test]
fn messages_queued_during_an_outage_survive_a_kill_9_and_are_sent_once_after_restart() {
    let c = Cordon::new();
    let (slack_url, seen) = fake::start();
    seen.fail(Failing::Until(Instant::now() + Duration::from_secs(3600)));
    let pb = c.playbook_dir("it", ISOLATE_AND_TELL);
    let mut s = serve(&c, &slack_url, &pb);
    let id = s.event(&fixture_json(DEMO));
    s.state(&c, &id, "succeeded");
    // The outbox has tried (and failed) at least once: the messages are recorded.
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.all().len() < 2 {
        assert!(Instant::now() < deadline, "no attempt: {:?}", seen.all());
        std::thread::sleep(Duration::from_millis(25));
    }
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    drop(s);
    assert!(seen.ok("chat.postMessage").is_empty());

    seen.fail(Failing::No);
    let _s = serve(&c, &slack_url, &pb);
    let told = |v: &Value| v["text"] == format!("Isolated {INSTANCE}");
    wait_for(&seen, "chat.postMessage", told);
    run_message_in(&seen, &id, "succeeded");
    std::thread::sleep(Duration::from_secs(2));
    let posts = seen.ok("chat.postMessage");
    assert_eq!(posts.iter().filter(|v| told(v)).count(), 1, "{posts:#?}");
    assert_eq!(
        posts.iter().filter(|v| is_run_message(v, &id)).count(),
        1,
        "{posts:#?}"
    );
}
