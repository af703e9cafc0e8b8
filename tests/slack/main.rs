//! Slack end to end: the real `cordon serve --cloud sim` on loopback, signed requests shaped
//! like Slack's (slash commands, `block_actions` clicks), and a fake Slack Web API on
//! 127.0.0.1 that records what cordon posts.
//!
//! - this file: request signing, access, commands, escaping, config, TLS;
//! - `outbox.rs`: Slack outages and rate limits, one message per run;
//! - `buttons.rs`: plan-bound approval clicks, Undo, a kill -9 between click and step;
//! - `manual.rs`: `/cordon run` with a manual playbook's typed inputs;
//! - `mattermost.rs`: the Mattermost-compatible command endpoint.

mod buttons;
#[path = "../common/mod.rs"]
mod common;
mod fake;
mod harness;
mod manual;
mod mattermost;
mod outbox;

use std::time::Duration;

use common::{fixture_json, Cordon};
use fake::wait_for;
use harness::*;
use serde_json::{json, Value};

#[test]
fn the_test_signer_matches_slacks_published_vector() {
    let v: Value = fixture_json("slack__signing-test-vector__1.json");
    assert_eq!(
        sign(
            v["signing_secret"].as_str().unwrap(),
            v["timestamp"].as_str().unwrap(),
            v["raw_body"].as_str().unwrap()
        ),
        v["expected_signature"].as_str().unwrap()
    );
}

#[test]
fn unsigned_forged_and_stale_requests_are_refused_with_401() {
    let c = Cordon::new();
    let (slack_url, _seen) = fake::start();
    let pb = c.playbook_dir("ask", ASK_PLAYBOOK);
    let s = serve(&c, &slack_url, &pb);
    let body = form(&[
        ("team_id", APPROVER.0),
        ("user_id", APPROVER.1),
        ("text", "list"),
    ]);
    for route in ["commands", "interactions"] {
        assert_eq!(s.slack(route, &body, None).0, 401, "unsigned {route}");
        assert_eq!(
            s.slack(route, &body, Some(("wrong-secret", now()))).0,
            401,
            "forged {route}"
        );
        assert_eq!(
            s.slack(route, &body, Some((SECRET, now() - 301))).0,
            401,
            "stale {route}"
        );
        assert_eq!(
            s.slack(route, &body, Some((SECRET, now() + 400))).0,
            401,
            "future {route}"
        );
    }
    // `ssl_check=1` with anything else in the body is no shortcut.
    let sneaky = form(&[
        ("ssl_check", "1"),
        ("team_id", APPROVER.0),
        ("user_id", APPROVER.1),
        ("text", "list"),
    ]);
    assert_eq!(s.slack("commands", &sneaky, None).0, 401);
    assert_eq!(s.slack("commands", "ssl_check=1&token=x", None).0, 200);
    // Signed now, the same body is answered.
    let (status, v) = s.slack("commands", &body, Some((SECRET, now())));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["response_type"], "ephemeral");
    let metrics = s
        .http
        .get(format!("{}/metrics", s.url))
        .header("x-cordon-api-key", KEY)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains(r#"source="slack",outcome="forged""#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"source="slack",outcome="stale""#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"source="slack",outcome="unsigned""#),
        "{metrics}"
    );
}

#[test]
fn a_slash_command_approves_and_another_releases() {
    let c = Cordon::new();
    let (seen, s, id) = one_run(&c, "ask", ASK_PLAYBOOK, "waiting_approval");
    let before = groups(&c);

    // The approval request reached Slack with buttons and what will change.
    let posted = wait_for(&seen, "chat.postMessage", |v| v["blocks"].is_array());
    assert_eq!(posted["channel"], "C0CORDON");
    assert_eq!(posted["_authorization"], "Bearer xoxb-test-token");
    let blocks = posted["blocks"].to_string();
    for want in [
        ACCOUNT,
        INSTANCE,
        "ec2.isolate_instance",
        "cordon_approve",
        "cordon_deny",
        "confirm",
    ] {
        assert!(blocks.contains(want), "{want} missing from {blocks}");
    }

    // Someone not in the access config is refused, and nothing changes.
    let v = s.command(STRANGER, &format!("approve {id} ask"));
    assert_eq!(v["response_type"], "ephemeral");
    assert!(
        v["text"].as_str().unwrap().contains("may not approve"),
        "{v}"
    );
    // The releaser may release but not approve.
    let v = s.command(RELEASER, &format!("approve {id} ask"));
    assert!(v["text"].as_str().unwrap().starts_with("Refused"), "{v}");
    assert_eq!(
        c.json(&["runs", "show", &id], 0)["state"],
        "waiting_approval"
    );

    let v = s.command(APPROVER, &format!("approve {id} ask"));
    assert_eq!(v["response_type"], "in_channel", "{v}");
    assert!(
        v["text"]
            .as_str()
            .unwrap()
            .contains("approved by <@U0ALICE>"),
        "{v}"
    );
    s.state(&c, &id, "succeeded");
    assert_eq!(decided_by(&c, &id, "ask"), "slack:T0TEAM/U0ALICE");
    let isolated = groups(&c);
    assert_ne!(isolated, before, "the instance is isolated");
    // The run's message is edited to say so.
    wait_for(&seen, "chat.update", |v| {
        is_run_message(v, &id) && v["text"].as_str().unwrap().ends_with(": succeeded")
    });

    // Approving again decides nothing twice.
    let v = s.command(APPROVER, &format!("approve {id} ask"));
    assert_eq!(v["response_type"], "ephemeral");
    assert!(
        v["text"]
            .as_str()
            .unwrap()
            .contains("already approved by slack:T0TEAM/U0ALICE"),
        "{v}"
    );

    // The approver may not release; the releaser may.
    let v = s.command(APPROVER, &format!("release {id}"));
    assert!(
        v["text"].as_str().unwrap().contains("may not release"),
        "{v}"
    );
    let v = s.command(RELEASER, &format!("release {id}"));
    assert_eq!(v["response_type"], "in_channel", "{v}");
    s.state(&c, &id, "released");
    assert_eq!(groups(&c), before, "the instance's groups are restored");
    wait_for(&seen, "chat.postMessage", |v| {
        v["text"]
            .as_str()
            .is_some_and(|t| t.contains("released by <@U0BOB>"))
    });

    let v = s.command(APPROVER, &format!("status {id}"));
    assert!(v["text"].as_str().unwrap().contains("released"), "{v}");
    let v = s.command(STRANGER, "list");
    assert!(v["text"].as_str().unwrap().starts_with("Refused"), "{v}");
    let v = s.command(STRANGER, "help");
    assert!(
        v["text"].as_str().unwrap().contains("/cordon approve"),
        "{v}"
    );
}

#[test]
fn a_button_click_approves_once_and_a_strangers_click_is_refused() {
    let c = Cordon::new();
    let (seen, s, id) = one_run(&c, "ask", ASK_PLAYBOOK, "waiting_approval");
    let posted = wait_for(&seen, "chat.postMessage", |v| v["blocks"].is_array());
    let value = button(&posted, "cordon_approve")["value"]
        .as_str()
        .unwrap()
        .to_string();

    assert_eq!(s.click(STRANGER, "cordon_approve", &value, None), 200);
    let told = wait_for(&seen, "chat.postEphemeral", |v| v["user"] == STRANGER.1);
    assert!(
        told["text"].as_str().unwrap().contains("may not approve"),
        "{told}"
    );
    assert_eq!(
        c.json(&["runs", "show", &id], 0)["state"],
        "waiting_approval"
    );

    assert_eq!(s.click(APPROVER, "cordon_approve", &value, None), 200);
    s.state(&c, &id, "succeeded");
    assert_eq!(decided_by(&c, &id, "ask"), "slack:T0TEAM/U0ALICE");
    // Slack's retry of the same click, and a late Deny, change nothing and say why.
    assert_eq!(s.click(APPROVER, "cordon_approve", &value, Some("1")), 200);
    assert_eq!(s.click(APPROVER, "cordon_deny", &value, None), 200);
    let told = wait_for(&seen, "chat.postEphemeral", |v| v["user"] == APPROVER.1);
    assert!(
        told["text"].as_str().unwrap().contains("already approved"),
        "{told}"
    );
    assert_eq!(c.json(&["runs", "show", &id], 0)["state"], "succeeded");
    assert_eq!(decided_by(&c, &id, "ask"), "slack:T0TEAM/U0ALICE");
}

#[test]
fn a_mention_in_a_findings_tag_reaches_slack_as_text() {
    let c = Cordon::new();
    let (slack_url, seen) = fake::start();
    let pb = c.playbook_dir(
        "tell",
        "id: tell\ntitle: t\nversion: 1\nmode: auto\ntrigger:\n  match:\n    source: [aws.guardduty]\nsteps:\n  - id: tell\n    action: notify.chat\n    with:\n      text: \"Instance ${finding.resources[0].id} is named ${finding.resources[0].attributes[\\\"tag:Name\\\"]}\"\n",
    );
    let s = serve(&c, &slack_url, &pb);
    let mut e = fixture_json(DEMO);
    e["detail"]["resource"]["instanceDetails"]["tags"] =
        json!([{"key": "Name", "value": "<!channel> see <https://evil.example|bank.com> & co"}]);
    e["detail"]["title"] = json!("<!here> <@U0BOSS> urgent");
    let id = s.event(&e);
    s.state(&c, &id, "succeeded");
    let posted = wait_for(&seen, "chat.postMessage", |v| {
        v["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Instance "))
    });
    assert_eq!(
        posted["text"],
        format!("Instance {INSTANCE} is named &lt;!channel&gt; see &lt;https://evil.example|bank.com&gt; &amp; co")
    );
    assert_eq!(posted["channel"], "C0CORDON");
    // Through the outbox: the step recorded the message, the outbox sent it.
    let shown = c.json(&["runs", "show", &id], 0);
    assert_eq!(shown["steps"][0]["output"]["delivery"], "queued", "{shown}");
    // The run's own message carries the finding's title and resources escaped too.
    let run_message = wait_for(&seen, "chat.postMessage", |v| is_run_message(v, &id));
    let blocks = run_message["blocks"].to_string();
    assert!(
        blocks.contains("&lt;!here&gt; &lt;@U0BOSS&gt; urgent"),
        "{blocks}"
    );
    assert!(
        !blocks.contains("<!here>") && !blocks.contains("<@U0BOSS>"),
        "{blocks}"
    );
}

#[test]
fn serve_says_what_is_missing_from_the_slack_config() {
    let c = Cordon::new();
    let start = |yaml: &str, env: &[(&str, &str)]| {
        std::fs::write(c.path().join("cordon.yaml"), yaml).unwrap();
        let mut cmd = c.command(&["serve", "--cloud", "sim", "--listen", "127.0.0.1:0"]);
        cmd.env("CORDON_API_KEY", KEY);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{yaml}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let secrets = [
        ("CORDON_SLACK_SIGNING_SECRET", SECRET),
        ("CORDON_SLACK_BOT_TOKEN", "xoxb-t"),
    ];
    // The bot token never travels in clear: plain http only to loopback.
    let err = start(
        "chat:\n  slack:\n    channel: C0CORDON\n    api_base_url: http://slack.example/api\n",
        &secrets,
    );
    assert!(
        err.contains("chat.slack.api_base_url \"http://slack.example/api\": plain http is allowed only to a loopback address"),
        "{err}"
    );
    let err = start(
        "chat:\n  slack:\n    channel: C0CORDON\n    api_base_url: http://127.0.0.1:9/api\n",
        &secrets[1..],
    );
    assert!(err.contains("CORDON_SLACK_SIGNING_SECRET"), "{err}");
    let err = start(
        "chat:\n  slack:\n    channel: C0CORDON\n    api_base_url: http://127.0.0.1:9/api\n    approvers: [alice]\n",
        &secrets,
    );
    assert!(
        err.contains("chat.slack.approvers: \"alice\" is not TEAM_ID/USER_ID"),
        "{err}"
    );
}

const TELL_PLAYBOOK: &str = "id: tell\ntitle: t\nversion: 1\nmode: auto\ntrigger:\n  match:\n    source: [aws.guardduty]\nsteps:\n  - id: tell\n    action: notify.chat\n    with:\n      text: \"Instance ${finding.resources[0].id} is named ${finding.resources[0].attributes[\\\"tag:Name\\\"]}\"\n";

#[test]
fn messages_reach_slack_over_https_and_an_untrusted_certificate_is_refused() {
    let c = Cordon::new();
    let certs = tempfile::tempdir().unwrap();
    let (slack_url, ca, seen) = fake::start_tls(certs.path());
    assert!(slack_url.starts_with("https://127.0.0.1:"), "{slack_url}");
    let pb = c.playbook_dir("tell", TELL_PLAYBOOK);
    // The test's CA as the trust store (rustls-native-certs reads SSL_CERT_FILE when set).
    let s = serve_with(
        &c,
        &slack_url,
        &pb,
        &[("SSL_CERT_FILE", ca.to_str().unwrap())],
    );
    let id = s.event(&fixture_json(DEMO));
    s.state(&c, &id, "succeeded");
    let posted = wait_for(&seen, "chat.postMessage", |v| {
        v["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Instance "))
    });
    assert_eq!(posted["_authorization"], "Bearer xoxb-test-token");
    assert_eq!(posted["channel"], "C0CORDON");
    drop(s);

    // With the system's trust store only, the test CA's certificate is refused: nothing is
    // posted.
    let c = Cordon::new();
    let (slack_url, _ca, seen) = fake::start_tls(certs.path());
    let pb = c.playbook_dir("tell", TELL_PLAYBOOK);
    let s = serve(&c, &slack_url, &pb);
    let id = s.event(&fixture_json(DEMO));
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        seen.all().is_empty(),
        "a request got through: {:?}",
        seen.all()
    );
    // The run does not wait for Slack: the message is queued in the outbox.
    s.state(&c, &id, "succeeded");
}
