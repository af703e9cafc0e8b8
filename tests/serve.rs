//! `cordon serve` end to end: the real binary on a loopback port, requests shaped like an
//! EventBridge API destination's (its headers, one event per request), the CLI beside the
//! running server, signals, and `kill -9`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{fixture, fixture_json, Cordon};
use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};

const KEY: &str = "test-api-key-0123456789";
const DEMO: &str = "aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json";
const DEMO_V2: &str = "constructed/aws.securityhub__FindingsImportedV2_GuardDuty-MaliciousIPCaller.Custom_EC2Instance__constructed.json";
const ACCOUNT: &str = "352283894008";

/// A running `cordon serve --cloud sim`.
struct Served<'a> {
    c: &'a Cordon,
    child: Child,
    url: String,
    token: String,
    http: Client,
}

fn serve<'a>(c: &'a Cordon, args: &[&str], env: &[(&str, &str)]) -> Served<'a> {
    serve_under(c, None, args, env)
}

/// `cordon serve`, started by `bash -c SHELL` when given (to set limits before it execs).
fn serve_under<'a>(
    c: &'a Cordon,
    shell: Option<&str>,
    args: &[&str],
    env: &[(&str, &str)],
) -> Served<'a> {
    let journal = c.path().join(".cordon/journal");
    let _ = std::fs::remove_file(journal.join("serve.json"));
    let mut cmd = c.command(&["serve", "--cloud", "sim", "--listen", "127.0.0.1:0"]);
    if let Some(script) = shell {
        let mut wrapped = std::process::Command::new("bash");
        wrapped
            .current_dir(c.path())
            .env_remove("RUST_LOG")
            .env("CORDON_PLAYBOOKS", common::root().join("playbooks"))
            .arg("-c")
            .arg(format!("{script}; exec \"$0\" \"$@\""))
            .arg(cmd.get_program())
            .args(cmd.get_args());
        cmd = wrapped;
    }
    cmd.args(args)
        .env("CORDON_API_KEY", KEY)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(c.path().join("serve.log")).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn cordon serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    let endpoint = loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("cordon serve exited ({status}):\n{}", log(c));
        }
        let found = std::fs::read(journal.join("serve.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .filter(|e| e["pid"] == child.id());
        if let Some(e) = found {
            break e;
        }
        assert!(Instant::now() < deadline, "no serve.json:\n{}", log(c));
        std::thread::sleep(Duration::from_millis(20));
    };
    // reqwest is built without a default TLS provider (see Cargo.toml).
    cordon_connectors::tls::install_crypto_provider();
    Served {
        c,
        child,
        url: endpoint["url"].as_str().unwrap().to_string(),
        token: endpoint["token"].as_str().unwrap().to_string(),
        http: Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
    }
}

fn log(c: &Cordon) -> String {
    std::fs::read_to_string(c.path().join("serve.log")).unwrap_or_default()
}

impl Served<'_> {
    /// POSTs one event as an API destination does, with the API-key header when `key` is set.
    fn post(&self, body: &[u8], key: Option<&str>) -> Response {
        let mut r = self
            .http
            .post(format!("{}/v1/events", self.url))
            .header("content-type", "application/json; charset=utf-8")
            .header("user-agent", "Amazon/EventBridge/ApiDestinations")
            .body(body.to_vec());
        if let Some(k) = key {
            r = r.header("x-cordon-api-key", k);
        }
        r.send().expect("POST /v1/events")
    }

    fn post_json(&self, event: &Value) -> (u16, Value) {
        let r = self.post(&serde_json::to_vec(event).unwrap(), Some(KEY));
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    fn admin(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    fn reload(&self) -> Response {
        self.http
            .post(format!("{}/v1/admin/reload", self.url))
            .bearer_auth(&self.token)
            .send()
            .unwrap()
    }

    fn runs(&self) -> Vec<Value> {
        self.admin("/v1/runs").as_array().cloned().unwrap()
    }

    /// Waits until every run is settled (not pending, running or releasing).
    fn settled(&self) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let runs = self.runs();
            let open = runs.iter().any(|r| {
                ["pending", "running", "releasing"].contains(&r["state"].as_str().unwrap())
            });
            if !open {
                return runs;
            }
            assert!(
                Instant::now() < deadline,
                "runs never settled: {runs:?}\n{}",
                log(self.c)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "cordon serve did not stop:\n{}",
                log(self.c)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served<'_> {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The demo finding with its own id and instance.
fn finding(id: &str, instance: &str) -> Value {
    let mut e = fixture_json(DEMO);
    e["detail"]["id"] = json!(id);
    e["detail"]["resource"]["instanceDetails"]["instanceId"] = json!(instance);
    e
}

fn instance_groups(c: &Cordon, instance: &str) -> Vec<String> {
    let w = c.world();
    let i = &w["accounts"][ACCOUNT]["regions"]["us-east-1"]["instances"][instance];
    let mut groups: Vec<String> = i["interfaces"]
        .as_object()
        .unwrap_or_else(|| panic!("no instance {instance}: {i}"))
        .values()
        .flat_map(|g| g.as_array().unwrap().iter())
        .map(|g| g.as_str().unwrap().to_string())
        .collect();
    groups.sort();
    groups
}

fn fixture_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [fixture(""), fixture("constructed")] {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "json") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_fixture_event_gets_an_answer_eventbridge_acts_on() {
    let c = Cordon::new();
    let s = serve(&c, &[], &[]);
    let mut created = 0;
    for path in fixture_files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let body = std::fs::read(&path).unwrap();
        assert_eq!(
            s.post(&body, None).status().as_u16(),
            401,
            "{name} without credentials"
        );
        assert_eq!(
            s.post(&body, Some("wrong-key")).status().as_u16(),
            401,
            "{name} with a wrong key"
        );
        let r = s.post(&body, Some(KEY));
        let status = r.status().as_u16();
        let answer: Value = r.json().unwrap();
        match status {
            202 => {
                let runs = answer["runs"].as_array().unwrap();
                let new = runs.iter().filter(|r| r["status"] == "created").count();
                assert!(new > 0, "{name}: 202 means a run was created: {answer}");
                created += new;
            }
            200 => assert!(
                answer.get("ignored").is_some()
                    || answer["runs"]
                        .as_array()
                        .is_some_and(|r| r.iter().all(|r| r["status"] != "created")),
                "{name}: {answer}"
            ),
            400 => assert!(
                !answer["error"].as_str().unwrap_or_default().is_empty(),
                "{name}: a 400 says why: {answer}"
            ),
            other => panic!("{name}: {other} is not an answer EventBridge should get: {answer}"),
        }
        if name == DEMO {
            assert_eq!(status, 202, "the demo GuardDuty finding starts a run");
        }
        if name.starts_with("slack__") {
            assert_eq!(status, 400, "a Slack payload is no event: {answer}");
        }
    }
    assert!(created > 0);
    let runs = s.runs();
    assert_eq!(runs.len(), created, "one journaled run per created answer");
}

#[test]
fn a_repeat_of_the_event_or_of_the_finding_via_security_hub_starts_nothing() {
    let c = Cordon::new();
    let s = serve(&c, &[], &[]);
    let event = fixture_json(DEMO);
    let (first, a) = s.post_json(&event);
    assert_eq!(first, 202, "{a}");
    let (again, b) = s.post_json(&event);
    assert_eq!(again, 200, "{b}");
    assert_eq!(b["runs"][0]["status"], "duplicate", "{b}");
    assert_eq!(b["runs"][0]["run_id"], a["runs"][0]["run_id"]);
    let (via_hub, h) = s.post_json(&fixture_json(DEMO_V2));
    assert_eq!(via_hub, 200, "the same finding through Security Hub: {h}");
    assert_eq!(s.runs().len(), 1);

    // EventBridge gives up on an answer after 5 s and sends the event again: a request whose
    // answer never arrives (the connection closed right after sending) is the same case.
    let other = serde_json::to_vec(&finding("lost-answer-1", "i-0aaaaaaaaaaaaaaa1")).unwrap();
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut raw = TcpStream::connect(&addr).unwrap();
    write!(
        raw,
        "POST /v1/events HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json; charset=utf-8\r\nx-cordon-api-key: {KEY}\r\ncontent-length: {}\r\n\r\n",
        other.len()
    )
    .unwrap();
    raw.write_all(&other).unwrap();
    raw.shutdown(std::net::Shutdown::Write).unwrap();
    let mut ignored = Vec::new();
    let _ = raw.read_to_end(&mut ignored);
    drop(raw);
    let r = s.post(&other, Some(KEY));
    assert!(r.status().is_success(), "{}", r.status());
    let runs = s.settled();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs.iter().all(|r| r["state"] == "succeeded"), "{runs:?}");
}

#[test]
fn bad_bodies_are_refused_for_good_and_big_ones_are_413() {
    let c = Cordon::new();
    let s = serve(&c, &[], &[]);
    let r = s.post(b"{\"detail\": ", Some(KEY));
    assert_eq!(r.status().as_u16(), 400);
    let e: Value = r.json().unwrap();
    assert!(e["error"].as_str().unwrap().contains("not JSON"), "{e}");

    let mut wrong = fixture_json(DEMO);
    wrong["detail"]["accountId"] = json!("12345");
    let (status, e) = s.post_json(&wrong);
    assert_eq!(status, 400, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("accountId"),
        "names the field: {e}"
    );

    let big = vec![b' '; 1024 * 1024 + 1];
    assert_eq!(s.post(&big, Some(KEY)).status().as_u16(), 413);
    assert_eq!(s.runs().len(), 0);
    // The server still takes good events.
    assert_eq!(s.post_json(&fixture_json(DEMO)).0, 202);
}

#[test]
fn a_full_queue_answers_429_with_retry_after_and_takes_the_event_later() {
    let c = Cordon::new();
    std::fs::write(
        c.path().join("cordon.yaml"),
        "server:\n  limits: {runs: 1, per_account: 1, queue: 1}\n",
    )
    .unwrap();
    let s = serve(&c, &[], &[("CORDON_SIM_DELAY_MS", "100")]);
    let (a, _) = s.post_json(&finding("queue-a", "i-0aaaaaaaaaaaaaaa2"));
    assert_eq!(a, 202);
    let b = finding("queue-b", "i-0aaaaaaaaaaaaaaa3");
    let r = s.post(&serde_json::to_vec(&b).unwrap(), Some(KEY));
    assert_eq!(r.status().as_u16(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    s.settled();
    // Sent again within Retry-After, it is taken: the first run may be settled in the journal
    // a moment before its driver lets go of the queue's one place, so a 429 meanwhile is fine.
    let deadline = Instant::now() + Duration::from_secs(retry);
    let accepted = loop {
        match s.post_json(&b).0 {
            429 if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            status => break status,
        }
    };
    assert_eq!(accepted, 202, "accepted on retry");
    let runs = s.settled();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        instance_groups(&c, "i-0aaaaaaaaaaaaaaa3").len(),
        1,
        "isolated: one quarantine group"
    );
}

#[test]
fn the_cli_approves_and_releases_through_the_running_server() {
    let c = Cordon::new();
    let pb = c.playbook_dir(
        "ask",
        "id: ask-first\ntitle: t\nversion: 1\nmode: approval\ntrigger:\n  match:\n    source: [aws.guardduty]\nsteps:\n  - id: ask\n    action: approval\n    with: {timeout: 1h, default: deny}\n  - id: isolate\n    action: ec2.isolate_instance\n    with: {instance: \"${finding.resources[0].id}\"}\n",
    );
    let s = serve(&c, &["--playbooks", &pb], &[]);
    let (status, a) = s.post_json(&fixture_json(DEMO));
    assert_eq!(status, 202, "{a}");
    let id = a["runs"][0]["run_id"].as_str().unwrap().to_string();
    let runs = s.settled();
    assert_eq!(runs[0]["state"], "waiting_approval");

    // The CLI, with the journal held by the server, lists and shows through its admin API.
    let listed = c.json(&["runs", "list"], 0);
    assert_eq!(listed[0]["id"], id.as_str());
    let shown = c.json(&["runs", "show", &id], 0);
    assert_eq!(shown["state"], "waiting_approval");

    let out = c.ok(
        &["--playbooks", &pb, "approve", &id, "ask", "--by", "alice"],
        0,
    );
    assert!(out.contains("approved by alice; run is succeeded"), "{out}");
    let before = instance_groups(&c, "i-0961e0b3af8b3ec39");
    assert_eq!(before.len(), 1, "isolated: {before:?}");

    let out = c.ok(&["--playbooks", &pb, "release", &id, "--by", "bob"], 0);
    assert!(out.contains("released"), "{out}");
    assert!(
        instance_groups(&c, "i-0961e0b3af8b3ec39").len() > 1
            || instance_groups(&c, "i-0961e0b3af8b3ec39") != before,
        "groups restored"
    );
    let out = c.ok(&["resume"], 0);
    assert!(out.contains("cordon serve"), "{out}");
    // A wrong admin token is refused.
    let r = s
        .http
        .get(format!("{}/v1/runs", s.url))
        .bearer_auth("not-the-token")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

/// A playbook `id` that posts to chat on every GuardDuty finding.
fn telling(id: &str) -> String {
    format!("id: {id}\ntitle: t\nversion: 1\nmode: auto\ntrigger:\n  match:\n    source: [aws.guardduty]\nsteps:\n  - id: say\n    action: notify.chat\n    with: {{text: hello}}\n")
}

#[test]
fn a_broken_playbook_reload_keeps_the_running_set() {
    let c = Cordon::new();
    let pb = c.playbook_dir("tell", &telling("tell"));
    let s = serve(&c, &["--playbooks", &pb], &[]);
    let broken = telling("broken").replace("notify.chat", "no.such_action");
    std::fs::write(Path::new(&pb).join("broken.yaml"), broken).unwrap();
    let r = s.reload();
    assert_eq!(r.status().as_u16(), 422);
    let body: Value = r.json().unwrap();
    let errors = body["errors"].to_string();
    assert!(
        errors.contains("broken.yaml") && errors.contains("no.such_action"),
        "{body}"
    );
    s.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert!(log(&c).contains("Playbook reload failed"), "{}", log(&c));
    let (status, a) = s.post_json(&fixture_json(DEMO));
    assert_eq!(status, 202, "the old set still runs: {a}");
    assert_eq!(a["runs"][0]["playbook"], "tell");

    std::fs::remove_file(Path::new(&pb).join("broken.yaml")).unwrap();
    std::fs::write(Path::new(&pb).join("tell.yaml"), telling("tell2")).unwrap();
    assert_eq!(s.reload().status().as_u16(), 200);
    let (status, a) = s.post_json(&finding("after-reload", "i-0aaaaaaaaaaaaaaa4"));
    assert_eq!(status, 202);
    assert_eq!(a["runs"][0]["playbook"], "tell2");
}

#[test]
fn sigterm_drains_and_the_next_start_finishes_what_was_accepted() {
    let c = Cordon::new();
    let mut s = serve(&c, &[], &[("CORDON_SIM_DELAY_MS", "150")]);
    for i in 0..3 {
        let (status, a) = s.post_json(&finding(
            &format!("drain-{i}"),
            &format!("i-0bbbbbbbbbbbbbbb{i}"),
        ));
        assert_eq!(status, 202, "{a}");
    }
    s.signal("TERM");
    let code = s.wait_exit();
    assert!(code == 0 || code == 1, "exit {code}:\n{}", log(&c));
    assert!(log(&c).contains("Stopping"), "{}", log(&c));
    assert!(
        !c.path().join(".cordon/journal/serve.json").exists(),
        "serve.json removed"
    );
    drop(s);
    let s = serve(&c, &[], &[]);
    let runs = s.settled();
    assert_eq!(runs.len(), 3);
    for r in &runs {
        assert_eq!(r["state"], "succeeded", "{runs:?}");
    }
    for i in 0..3 {
        assert_eq!(
            instance_groups(&c, &format!("i-0bbbbbbbbbbbbbbb{i}")).len(),
            1
        );
    }
}

#[test]
fn kill_9_with_runs_in_flight_loses_no_accepted_run_and_repeats_no_step() {
    let c = Cordon::new();
    let mut s = serve(&c, &[], &[("CORDON_SIM_DELAY_MS", "100")]);
    for i in 0..4 {
        let (status, a) = s.post_json(&finding(
            &format!("k9-{i}"),
            &format!("i-0ccccccccccccccc{i}"),
        ));
        assert_eq!(status, 202, "{a}");
    }
    std::thread::sleep(Duration::from_millis(400));
    s.signal("KILL");
    s.wait_exit();
    drop(s);
    let s = serve(&c, &[], &[]);
    let runs = s.settled();
    assert_eq!(runs.len(), 4, "every accepted run is still there");
    let world = c.world();
    for r in &runs {
        assert!(
            ["succeeded", "needs_attention"].contains(&r["state"].as_str().unwrap()),
            "{runs:?}"
        );
    }
    for i in 0..4 {
        let instance = format!("i-0ccccccccccccccc{i}");
        // No step twice: one snapshot per instance at most (CreateSnapshot is not idempotent).
        let snapshots = world["calls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| {
                let c = c.as_str().unwrap();
                c.starts_with("ec2:CreateSnapshot") && c.contains(&instance)
            })
            .count();
        assert!(snapshots <= 1, "{instance}: {snapshots} snapshots");
    }
}

#[test]
fn metrics_and_probes_need_credentials_and_carry_no_finding_ids() {
    let c = Cordon::new();
    let s = serve(&c, &[], &[]);
    assert_eq!(s.post_json(&fixture_json(DEMO)).0, 202);
    s.settled();
    let get = |path: &str, bearer: Option<&str>| {
        let mut r = s.http.get(format!("{}{path}", s.url));
        if let Some(t) = bearer {
            r = r.bearer_auth(t);
        }
        r.send().unwrap()
    };
    assert_eq!(get("/metrics", None).status().as_u16(), 401);
    assert_eq!(get("/healthz", None).status().as_u16(), 401);
    assert_eq!(get("/healthz", Some(&s.token)).status().as_u16(), 200);
    let ready = get("/readyz", Some(&s.token));
    assert_eq!(ready.status().as_u16(), 200);
    let text = get("/metrics", Some(&s.token)).text().unwrap();
    for want in [
        "cordon_events_received_total{source=\"guardduty\",outcome=\"accepted\"} 1",
        "cordon_runs_created_total{playbook=\"isolate-ec2-instance\"} 1",
        "cordon_runs_settled_total{playbook=\"isolate-ec2-instance\",state=\"succeeded\"} 1",
        "cordon_step_duration_seconds_bucket",
        "cordon_time_to_first_containment_seconds_count",
        "cordon_queue_depth 0",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    assert!(
        !text.contains("3aaf83ddd9c31405246fa1c62e3e034d"),
        "no finding id"
    );
    assert!(!text.contains(ACCOUNT), "no account");
}

#[test]
fn serve_refuses_to_start_without_credentials_or_a_cloud() {
    let c = Cordon::new();
    let out = c
        .command(&["serve", "--cloud", "sim", "--listen", "127.0.0.1:0"])
        .env_remove("CORDON_API_KEY")
        .env_remove("CORDON_BASIC_AUTH")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("CORDON_API_KEY"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = c
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .env("CORDON_API_KEY", KEY)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--cloud sim"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A journal whose disk refuses writes (a file-size limit, `ulimit -f`): the event that cannot
/// be made durable gets 503 with `Retry-After`, never a 4xx EventBridge would drop; every event
/// answered 202 before has its run in the journal, which the next start finishes, and the
/// refused event is taken on its retry.
#[test]
fn a_failing_journal_answers_503_and_loses_no_accepted_run() {
    let c = Cordon::new();
    let mut s = serve_under(&c, Some("trap '' XFSZ; ulimit -f 2048"), &[], &[]);
    let mut accepted = Vec::new();
    let mut refused = None;
    for i in 0..2000 {
        let event = finding(&format!("full-{i}"), "i-0ddddddddddddddd1");
        let r = s.post(&serde_json::to_vec(&event).unwrap(), Some(KEY));
        match r.status().as_u16() {
            202 => accepted.push(format!("full-{i}")),
            503 => {
                assert!(r.headers().contains_key("retry-after"));
                let e: Value = r.json().unwrap();
                assert!(e["error"].as_str().unwrap().contains("journal"), "{e}");
                refused = Some(event);
                break;
            }
            other => panic!("event {i}: {other}"),
        }
    }
    let refused = refused.expect("the journal filled up");
    assert!(!accepted.is_empty());
    let ready = s
        .http
        .get(format!("{}/readyz", s.url))
        .bearer_auth(&s.token)
        .send()
        .unwrap();
    assert_eq!(
        ready.status().as_u16(),
        503,
        "not ready once the journal refuses writes"
    );
    let ready: Value = ready.json().unwrap();
    assert!(
        ready["journal"].as_str().unwrap().contains("flush failed"),
        "{ready}"
    );
    s.signal("KILL");
    s.wait_exit();
    drop(s);

    let s = serve(&c, &[], &[]);
    let runs = s.settled();
    for f in &accepted {
        let run = runs.iter().find(|r| r["finding"] == f.as_str());
        let run = run.unwrap_or_else(|| panic!("accepted finding {f} has no run: {runs:?}"));
        let id = run["id"].as_str().unwrap();
        assert!(
            ["succeeded", "needs_attention"].contains(&run["state"].as_str().unwrap()),
            "{}",
            s.admin(&format!("/v1/runs/{id}"))
        );
    }
    let (status, a) = s.post_json(&refused);
    assert!(
        status == 202 || status == 200,
        "taken on retry: {status} {a}"
    );
}

/// `--sqs-queue-url` against moto's SQS: a finding's message is deleted once its run is
/// durable (and the run contains the instance); a message that can never be valid is not
/// deleted, so the queue's redrive policy moves it to the dead-letter queue.
#[test]
fn findings_from_sqs_run_and_only_the_valid_messages_are_deleted() {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let moto = common::moto::Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sqs = aws_sdk_sqs::Client::new(&rt.block_on(moto.config()));
    let queue = rt.block_on(async {
        let dlq = sqs
            .create_queue()
            .queue_name("cordon-dlq")
            .send()
            .await
            .unwrap();
        let dlq_arn = sqs
            .get_queue_attributes()
            .queue_url(dlq.queue_url().unwrap())
            .attribute_names(A::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes()
            .unwrap()[&A::QueueArn]
            .clone();
        let q = sqs
            .create_queue()
            .queue_name("cordon-findings")
            .attributes(
                A::RedrivePolicy,
                json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}).to_string(),
            )
            .send()
            .await
            .unwrap();
        let url = q.queue_url().unwrap().to_string();
        for body in [
            String::from_utf8(std::fs::read(fixture(DEMO)).unwrap()).unwrap(),
            "this is not an event".to_string(),
        ] {
            sqs.send_message()
                .queue_url(&url)
                .message_body(body)
                .send()
                .await
                .unwrap();
        }
        url
    });
    let c = Cordon::new();
    let env = [
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let s = serve(&c, &["--sqs-queue-url", &queue], &env);
    let deadline = Instant::now() + Duration::from_secs(30);
    let runs = loop {
        let runs = s.runs();
        if runs.first().is_some_and(|r| r["state"] == "succeeded") {
            break runs;
        }
        assert!(
            Instant::now() < deadline,
            "no run from SQS: {runs:?}\n{}",
            log(&c)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(runs.len(), 1);
    assert_eq!(
        instance_groups(&c, "i-0961e0b3af8b3ec39").len(),
        1,
        "isolated"
    );
    // The finding's message is gone; the bad one is still in the queue (in flight until its
    // visibility timeout ends), for the redrive policy.
    let (visible, in_flight) = rt.block_on(async {
        let a = sqs
            .get_queue_attributes()
            .queue_url(&queue)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let a = a.attributes().unwrap();
        let n = |k: &A| a[k].parse::<u32>().unwrap();
        (
            n(&A::ApproximateNumberOfMessages),
            n(&A::ApproximateNumberOfMessagesNotVisible),
        )
    });
    assert_eq!(visible + in_flight, 1, "only the invalid message is left");
    assert!(
        log(&c).contains("not JSON"),
        "the reason is logged:\n{}",
        log(&c)
    );
    assert!(
        !log(&c).contains("this is not an event"),
        "the body is not logged"
    );
}
