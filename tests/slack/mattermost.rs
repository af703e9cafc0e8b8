//! The Mattermost-compatible command endpoint through the real binary: token-authenticated,
//! access by team and user id, Markdown-escaped answers.

use serde_json::Value;

use crate::common::{fixture_json, Cordon};
use crate::harness::*;

const TOKEN: &str = "mattermost-command-token-for-tests";
const TEAM: &str = "4xp9fdt77pncbef59f4k1qe83o";
const ALICE: &str = "9w7bzqbt9jdnbgcuoagxzyvg7c";
const MALLORY: &str = "p8t1ppnfbjfqfyhqkrsqa1kjyo";

/// POSTs `/cordon TEXT` as Mattermost sends it; `auth` is the `Authorization` header.
fn command(s: &Served, user: &str, text: &str, auth: Option<&str>) -> (u16, Value) {
    let body = form(&[
        ("channel_id", "fukm8xi9rtbtmy1ojegpy1x3ir"),
        ("command", "/cordon"),
        ("team_id", TEAM),
        ("user_id", user),
        ("user_name", "alice"),
        ("text", text),
    ]);
    let mut r = s
        .http
        .post(format!("{}/v1/chat/mattermost/commands", s.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    let r = r.send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

#[test]
fn mattermost_commands_need_the_token_and_an_approver() {
    let c = Cordon::new();
    let pb = c.playbook_dir("ask", ASK_PLAYBOOK);
    let yaml = format!(
        "chat:\n  mattermost:\n    approvers: [{TEAM}/{ALICE}]\n    releasers: [{TEAM}/{ALICE}]\n"
    );
    let s = serve_config(&c, &yaml, &pb, &[("CORDON_MATTERMOST_TOKEN", TOKEN)]);
    let id = s.event(&fixture_json(DEMO));
    s.state(&c, &id, "waiting_approval");
    let approve = format!("approve {id}");

    let good = format!("Token {TOKEN}");
    assert_eq!(command(&s, ALICE, &approve, None).0, 401, "no token");
    assert_eq!(
        command(&s, ALICE, &approve, Some("Token wrong-token")).0,
        401,
        "wrong token"
    );
    assert_eq!(
        command(&s, ALICE, &approve, Some(&format!("Token {TOKEN}x"))).0,
        401,
        "a longer token"
    );
    // The token in the form body serves when the header is absent.
    let in_body = |token: &str| {
        let body = form(&[
            ("token", token),
            ("team_id", TEAM),
            ("user_id", ALICE),
            ("text", "list"),
        ]);
        s.http
            .post(format!("{}/v1/chat/mattermost/commands", s.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(in_body("wrong-token"), 401);
    assert_eq!(in_body(TOKEN), 200);

    let (status, v) = command(&s, MALLORY, &approve, Some(&good));
    assert_eq!(status, 200);
    assert_eq!(v["response_type"], "ephemeral");
    let text = v["text"].as_str().unwrap();
    assert!(
        text.contains("may not approve or deny runs (chat.mattermost.approvers)"),
        "{text}"
    );
    assert_eq!(
        c.json(&["runs", "show", &id], 0)["state"],
        "waiting_approval"
    );

    // Data in answers is inert for Markdown: inside a code span no mention, link or
    // emphasis works, and the data's own backticks cannot close it.
    let (_, v) = command(&s, ALICE, "@channel", Some(&good));
    let text = v["text"].as_str().unwrap();
    assert!(text.starts_with("Unknown command ``@channel``."), "{text}");
    let (_, v) = command(&s, ALICE, "`x`@all", Some(&good));
    let text = v["text"].as_str().unwrap();
    assert!(
        text.starts_with("Unknown command ``` `x`@all ```."),
        "{text}"
    );

    let (status, v) = command(&s, ALICE, &approve, Some(&good));
    assert_eq!(status, 200);
    assert_eq!(v["response_type"], "in_channel", "{v}");
    s.state(&c, &id, "succeeded");
    assert_eq!(
        decided_by(&c, &id, "ask"),
        format!("mattermost:{TEAM}/{ALICE}")
    );
    let (_, v) = command(&s, ALICE, &format!("approve {id} ask"), Some(&good));
    assert!(
        v["text"].as_str().unwrap().contains("already approved"),
        "{v}"
    );
    let metrics = s
        .http
        .get(format!("{}/metrics", s.url))
        .header("x-cordon-api-key", KEY)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains(r#"source="mattermost",outcome="forged""#),
        "{metrics}"
    );
}

#[test]
fn serve_says_what_is_missing_from_the_mattermost_config() {
    let c = Cordon::new();
    let start = |yaml: &str, env: &[(&str, &str)]| {
        std::fs::write(c.path().join("cordon.yaml"), yaml).unwrap();
        let mut cmd = c.command(&["serve", "--cloud", "sim", "--listen", "127.0.0.1:0"]);
        cmd.env("CORDON_API_KEY", KEY)
            .env_remove("CORDON_MATTERMOST_TOKEN");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{yaml}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = start("chat:\n  mattermost:\n    approvers: []\n", &[]);
    assert!(
        err.contains("chat.mattermost is configured without chat.mattermost.token: set CORDON_MATTERMOST_TOKEN"),
        "{err}"
    );
    // Slack-shaped ids are not Mattermost ids.
    let err = start(
        "chat:\n  mattermost:\n    approvers: [T0TEAM/U0ALICE]\n",
        &[("CORDON_MATTERMOST_TOKEN", TOKEN)],
    );
    assert!(
        err.contains("chat.mattermost.approvers: \"T0TEAM/U0ALICE\" is not TEAM_ID/USER_ID"),
        "{err}"
    );
}
