//! The test harness: `cordon serve --cloud sim` wired to the fake Slack, signed requests
//! shaped like Slack's, and reads of the journal and the simulated world.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use reqwest::blocking::Client;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::common::Cordon;

pub const KEY: &str = "test-api-key-0123456789";
pub const SECRET: &str = "slack-signing-secret-for-tests";
pub const DEMO: &str = "aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json";
pub const INSTANCE: &str = "i-0961e0b3af8b3ec39";
pub const ACCOUNT: &str = "352283894008";
pub const APPROVER: (&str, &str) = ("T0TEAM", "U0ALICE");
pub const RELEASER: (&str, &str) = ("T0TEAM", "U0BOB");
pub const STRANGER: (&str, &str) = ("T0TEAM", "U0MALLORY");

pub const ASK_PLAYBOOK: &str = "id: ask-first\ntitle: t\nversion: 1\nmode: approval\ntrigger:\n  match:\n    source: [aws.guardduty]\nsteps:\n  - id: ask\n    action: approval\n    with: {message: \"Isolate ${finding.resources[0].id}?\", timeout: 1h, default: deny}\n  - id: isolate\n    action: ec2.isolate_instance\n    with: {instance: \"${finding.resources[0].id}\"}\n";

/// Slack's v0 signature of `body` at `ts`.
pub fn sign(secret: &str, ts: &str, body: &str) -> String {
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

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A running `cordon serve` wired to the fake Slack.
pub struct Served {
    pub child: Child,
    pub url: String,
    pub log: std::path::PathBuf,
    pub http: Client,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fake Slack, `cordon serve` with `playbook` (YAML, named `name`), and one run of the demo
/// finding, once it is in `state`. Returns what Slack saw, the server and the run id.
pub fn one_run(
    c: &Cordon,
    name: &str,
    playbook: &str,
    state: &str,
) -> (crate::fake::Seen, Served, String) {
    let (slack_url, seen) = crate::fake::start();
    let pb = c.playbook_dir(name, playbook);
    let s = serve(c, &slack_url, &pb);
    let id = s.event(&crate::common::fixture_json(DEMO));
    s.state(c, &id, state);
    (seen, s, id)
}

pub fn serve(c: &Cordon, slack_url: &str, playbooks: &str) -> Served {
    serve_with(c, slack_url, playbooks, &[])
}

/// `cordon serve` with extra environment variables.
pub fn serve_with(c: &Cordon, slack_url: &str, playbooks: &str, env: &[(&str, &str)]) -> Served {
    let yaml = format!(
        "chat:\n  slack:\n    api_base_url: {slack_url}\n    channel: C0CORDON\n    approvers: [{}/{}]\n    releasers: [{}/{}]\n    runners: [{}/{}]\n",
        APPROVER.0, APPROVER.1, RELEASER.0, RELEASER.1, APPROVER.0, APPROVER.1
    );
    serve_config(c, &yaml, playbooks, env)
}

/// `cordon serve` with this `cordon.yaml` and extra environment variables.
pub fn serve_config(c: &Cordon, yaml: &str, playbooks: &str, env: &[(&str, &str)]) -> Served {
    std::fs::write(c.path().join("cordon.yaml"), yaml).unwrap();
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
        .envs(env.iter().copied())
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
    // reqwest is built without a default TLS provider (see Cargo.toml).
    cordon_connectors::tls::install_crypto_provider();
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
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// POSTs a form body to a Slack route, signed at `ts` with `secret` (unsigned when None).
    pub fn slack(&self, route: &str, body: &str, signed: Option<(&str, u64)>) -> (u16, Value) {
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
    pub fn command(&self, who: (&str, &str), text: &str) -> Value {
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
    pub fn click(&self, who: (&str, &str), action: &str, value: &str, retry: Option<&str>) -> u16 {
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

    pub fn event(&self, event: &Value) -> String {
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
    pub fn state(&self, c: &Cordon, id: &str, state: &str) {
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

pub fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

pub fn groups(c: &Cordon) -> Vec<String> {
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
pub fn decided_by(c: &Cordon, id: &str, step: &str) -> Value {
    let shown = c.json(&["runs", "show", id], 0);
    let steps = shown["steps"].as_array().cloned().unwrap_or_default();
    steps
        .iter()
        .find(|s| s["id"] == step)
        .map(|s| s["decision"]["by"].clone())
        .unwrap_or_else(|| panic!("no step {step}: {shown}"))
}

/// The button `action_id` in a message's blocks.
pub fn button(message: &Value, action_id: &str) -> Value {
    message["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .find(|e| e["action_id"] == action_id)
        .unwrap_or_else(|| panic!("no {action_id} button in {message}"))
}

/// Whether a message (post or update) is run `id`'s own message.
pub fn is_run_message(v: &Value, id: &str) -> bool {
    v["text"]
        .as_str()
        .is_some_and(|t| t.starts_with(&format!("Run {id} ")))
}

/// The id of the isolation security group cordon made in the demo region, if any.
pub fn isolation_group(c: &Cordon) -> Option<String> {
    let w = c.world();
    w["accounts"][ACCOUNT]["regions"]["us-east-1"]["groups"]
        .as_object()?
        .iter()
        .find(|(_, g)| g["name"] == "cordon-isolation")
        .map(|(id, _)| id.clone())
}

/// Run `id`'s message as Slack last got it once it said the run is `state` (a post or an
/// update), waiting for it.
pub fn run_message_in(seen: &crate::fake::Seen, id: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    let said = |v: &Value| {
        is_run_message(v, id) && v["text"].as_str().unwrap().ends_with(&format!(": {state}"))
    };
    loop {
        let mut all = seen.ok("chat.postMessage");
        all.extend(seen.ok("chat.update"));
        if let Some(v) = all.into_iter().find(said) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "run {id}'s message never said {state}: {:#?}",
            seen.all()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}
