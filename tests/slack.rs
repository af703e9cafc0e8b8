//! Slack end to end: the real `cordon serve --cloud sim` on loopback, signed requests shaped
//! like Slack's (slash commands, `block_actions` clicks), and a fake Slack Web API on
//! 127.0.0.1 that records what cordon posts.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{fixture_json, Cordon};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::blocking::Client;
use serde_json::{json, Value};
use sha2::Sha256;

const KEY: &str = "test-api-key-0123456789";
const SECRET: &str = "slack-signing-secret-for-tests";
const DEMO: &str = "aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json";
const INSTANCE: &str = "i-0961e0b3af8b3ec39";
const ACCOUNT: &str = "352283894008";
const APPROVER: (&str, &str) = ("T0TEAM", "U0ALICE");
const RELEASER: (&str, &str) = ("T0TEAM", "U0BOB");
const STRANGER: (&str, &str) = ("T0TEAM", "U0MALLORY");

const ASK_PLAYBOOK: &str = "id: ask-first\ntitle: t\nversion: 1\nmode: approval\ntrigger:\n  match:\n    source: [aws.guardduty]\nsteps:\n  - id: ask\n    action: approval\n    with: {message: \"Isolate ${finding.resources[0].id}?\", timeout: 1h, default: deny}\n  - id: isolate\n    action: ec2.isolate_instance\n    with: {instance: \"${finding.resources[0].id}\"}\n";

/// What the fake Slack received: (API method, JSON body).
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// A fake Slack Web API: answers every method `{"ok": true}` and records the calls.
fn fake_slack() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let record = record.clone();
            std::thread::spawn(move || answer(stream, &record));
        }
    });
    (url, seen)
}

fn answer(stream: TcpStream, seen: &Seen) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let path = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let (mut length, mut auth) = (0usize, String::new());
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        if h.trim().is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        match k.to_ascii_lowercase().as_str() {
            "content-length" => length = v.trim().parse().unwrap(),
            "authorization" => auth = v.trim().to_string(),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let method = path.rsplit('/').next().unwrap().to_string();
    let mut v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    v["_authorization"] = json!(auth);
    seen.lock().unwrap().push((method, v));
    let reply = r#"{"ok":true,"ts":"1700000000.000100"}"#;
    let mut s = stream;
    let _ = write!(
        s,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
        reply.len()
    );
}

/// Waits for a call to `method` whose body satisfies `pred`.
fn wait_for(seen: &Seen, method: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((_, v)) = seen
            .lock()
            .unwrap()
            .iter()
            .find(|(m, v)| m == method && pred(v))
        {
            return v.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {method} call as expected; seen: {:?}",
            seen.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Slack's v0 signature of `body` at `ts`.
fn sign(secret: &str, ts: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v0={hex}")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A running `cordon serve` wired to the fake Slack.
struct Served {
    child: Child,
    url: String,
    log: std::path::PathBuf,
    http: Client,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(c: &Cordon, slack_url: &str, playbooks: &str) -> Served {
    std::fs::write(
        c.path().join("cordon.yaml"),
        format!(
            "chat:\n  slack:\n    api_base_url: {slack_url}\n    channel: C0CORDON\n    approvers: [{}/{}]\n    releasers: [{}/{}]\n",
            APPROVER.0, APPROVER.1, RELEASER.0, RELEASER.1
        ),
    )
    .unwrap();
    let journal = c.path().join(".cordon/journal");
    let log = c.path().join("serve.log");
    let mut child = c
        .command(&[
            "serve",
            "--cloud",
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--playbooks",
            playbooks,
        ])
        .env("CORDON_API_KEY", KEY)
        .env("CORDON_SLACK_SIGNING_SECRET", SECRET)
        .env("CORDON_SLACK_BOT_TOKEN", "xoxb-test-token")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "cordon serve exited ({status}):\n{}",
                std::fs::read_to_string(&log).unwrap()
            );
        }
        let found = std::fs::read(journal.join("serve.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .filter(|e| e["pid"] == child.id());
        if let Some(e) = found {
            break e["url"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no serve.json");
        std::thread::sleep(Duration::from_millis(20));
    };
    let http = Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    Served {
        child,
        url,
        log,
        http,
    }
}

impl Served {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// POSTs a form body to a Slack route, signed at `ts` with `secret` (unsigned when None).
    fn slack(&self, route: &str, body: &str, signed: Option<(&str, u64)>) -> (u16, Value) {
        let mut r = self
            .http
            .post(format!("{}/v1/chat/slack/{route}", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string());
        if let Some((secret, ts)) = signed {
            let ts = ts.to_string();
            r = r
                .header("x-slack-request-timestamp", &ts)
                .header("x-slack-signature", sign(secret, &ts, body));
        }
        let r = r.send().unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    /// `/cordon TEXT` from `who`, signed now.
    fn command(&self, who: (&str, &str), text: &str) -> Value {
        let body = form(&[
            ("token", "deprecated"),
            ("team_id", who.0),
            ("user_id", who.1),
            ("user_name", "Display Name Is Not Identity"),
            ("command", "/cordon"),
            ("text", text),
            ("response_url", "https://hooks.slack.com/commands/x"),
        ]);
        let (status, v) = self.slack("commands", &body, Some((SECRET, now())));
        assert_eq!(status, 200, "/cordon {text}: {v}\n{}", self.log());
        v
    }

    /// A click on a cordon button by `who`.
    fn click(&self, who: (&str, &str), action: &str, value: &str, retry: Option<&str>) -> u16 {
        let payload = json!({
            "type": "block_actions",
            "team": {"id": who.0},
            "user": {"id": who.1, "team_id": who.0, "username": "alice"},
            "channel": {"id": "C0CORDON"},
            "actions": [{"action_id": action, "block_id": "cordon_decision", "value": value}],
        });
        let body = form(&[("payload", &payload.to_string())]);
        let ts = now().to_string();
        let mut r = self
            .http
            .post(format!("{}/v1/chat/slack/interactions", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", &ts)
            .header("x-slack-signature", sign(SECRET, &ts, &body))
            .body(body);
        if let Some(n) = retry {
            r = r
                .header("x-slack-retry-num", n)
                .header("x-slack-retry-reason", "http_timeout");
        }
        r.send().unwrap().status().as_u16()
    }

    fn event(&self, event: &Value) -> String {
        let r = self
            .http
            .post(format!("{}/v1/events", self.url))
            .header("x-cordon-api-key", KEY)
            .json(event)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
        let v: Value = r.json().unwrap();
        v["runs"][0]["run_id"].as_str().unwrap().to_string()
    }

    /// Waits until run `id` is in `state`.
    fn state(&self, c: &Cordon, id: &str, state: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let shown = c.json(&["runs", "show", id], 0);
            if shown["state"] == state {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "run {id} never {state}: {shown}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

fn groups(c: &Cordon) -> Vec<String> {
    let w = c.world();
    let i = &w["accounts"][ACCOUNT]["regions"]["us-east-1"]["instances"][INSTANCE];
    let mut g: Vec<String> = i["interfaces"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|g| g.as_array().unwrap().iter())
        .map(|g| g.as_str().unwrap().to_string())
        .collect();
    g.sort();
    g
}

/// The approver recorded in the journal for step `step` of run `id`.
fn decided_by(c: &Cordon, id: &str, step: &str) -> Value {
    let shown = c.json(&["runs", "show", id], 0);
    let steps = shown["steps"].as_array().cloned().unwrap_or_default();
    steps
        .iter()
        .find(|s| s["id"] == step)
        .map(|s| s["decision"]["by"].clone())
        .unwrap_or_else(|| panic!("no step {step}: {shown}"))
}

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
    let (slack_url, _seen) = fake_slack();
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
    let (slack_url, seen) = fake_slack();
    let pb = c.playbook_dir("ask", ASK_PLAYBOOK);
    let s = serve(&c, &slack_url, &pb);
    let id = s.event(&fixture_json(DEMO));
    s.state(&c, &id, "waiting_approval");
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
    wait_for(&seen, "chat.postMessage", |v| {
        v["text"]
            .as_str()
            .is_some_and(|t| t.contains(&id) && t.contains("succeeded"))
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
    let (slack_url, seen) = fake_slack();
    let pb = c.playbook_dir("ask", ASK_PLAYBOOK);
    let s = serve(&c, &slack_url, &pb);
    let id = s.event(&fixture_json(DEMO));
    s.state(&c, &id, "waiting_approval");
    let posted = wait_for(&seen, "chat.postMessage", |v| v["blocks"].is_array());
    let approve = posted["blocks"][3]["elements"][0].clone();
    assert_eq!(approve["action_id"], "cordon_approve");
    let value = approve["value"].as_str().unwrap().to_string();

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
    let (slack_url, seen) = fake_slack();
    let pb = c.playbook_dir(
        "tell",
        "id: tell\ntitle: t\nversion: 1\nmode: auto\ntrigger:\n  match:\n    source: [aws.guardduty]\nsteps:\n  - id: tell\n    action: notify.chat\n    with:\n      text: \"Instance ${finding.resources[0].id} is named ${finding.resources[0].attributes[\\\"tag:Name\\\"]}\"\n",
    );
    let s = serve(&c, &slack_url, &pb);
    let mut e = fixture_json(DEMO);
    e["detail"]["resource"]["instanceDetails"]["tags"] =
        json!([{"key": "Name", "value": "<!channel> see <https://evil.example|bank.com> & co"}]);
    let id = s.event(&e);
    s.state(&c, &id, "succeeded");
    let posted = wait_for(&seen, "chat.postMessage", |v| v["text"].is_string());
    assert_eq!(
        posted["text"],
        format!("Instance {INSTANCE} is named &lt;!channel&gt; see &lt;https://evil.example|bank.com&gt; &amp; co")
    );
    assert_eq!(posted["channel"], "C0CORDON");
    let shown = c.json(&["runs", "show", &id], 0);
    assert_eq!(shown["steps"][0]["output"]["posted"], true, "{shown}");
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
    let err = start("chat:\n  slack:\n    channel: C0CORDON\n", &secrets);
    assert!(err.contains("no TLS client"), "{err}");
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
