//! The serve bench's parts: events, the real server in a scratch directory, the bare baselines
//! (an axum handler, a sled loop) and the two load shapes.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use reqwest::Client;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::stats::Hist;

/// The intake API key of every server of the bench.
const KEY: &str = "bench-api-key-0123456789";
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/events/aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json"
);
/// A finding id is this prefix and a zero-padded counter of [`ID_DIGITS`] digits.
const ID_PREFIX: &str = "bench";
const ID_DIGITS: usize = 16;

/// The demo GuardDuty event (EC2 instance, `UnauthorizedAccess:EC2/MaliciousIPCaller.Custom`).
pub fn fixture() -> Value {
    let bytes = std::fs::read(FIXTURE).expect("fixture event");
    serde_json::from_slice(&bytes).expect("fixture is JSON")
}

/// Request bodies, compact JSON as EventBridge sends it. Event `n` is finding `bench<n>` on
/// instance `i-0<n>` (both zero-padded to [`ID_DIGITS`]): every finding names its own instance,
/// as findings from a fleet do. (Findings on one instance take turns by design, so a load
/// spread over a handful of instances measures that queue, not the intake.) A body is a copy
/// of one template with the counter written in place, so that making one costs the load
/// generator a copy, not a serialization.
pub struct Events {
    template: Vec<u8>,
    at: [usize; 2],
}

impl Events {
    /// `matching`: the type the bench playbook matches; otherwise a type no playbook does
    /// (`Recon:EC2/PortProbeUnprotectedPort`), the same size within a few bytes.
    pub fn new(fixture: &Value, matching: bool) -> Events {
        let digits = "0".repeat(ID_DIGITS);
        let (id, instance) = (format!("{ID_PREFIX}{digits}"), format!("i-0{digits}"));
        let mut e = fixture.clone();
        e["detail"]["id"] = json!(id);
        e["detail"]["resource"]["instanceDetails"]["instanceId"] = json!(instance);
        if !matching {
            e["detail"]["type"] = json!("Recon:EC2/PortProbeUnprotectedPort");
        }
        let template = serde_json::to_vec(&e).expect("encode");
        let find = |marker: &str, skip: usize| {
            let quoted = format!("\"{marker}\"");
            template
                .windows(quoted.len())
                .position(|w| w == quoted.as_bytes())
                .expect("marker in body")
                + 1
                + skip
        };
        let at = [find(&id, ID_PREFIX.len()), find(&instance, "i-0".len())];
        Events { template, at }
    }

    /// The body of event `n`: finding id `bench<n>` on instance `i-0<n>`.
    pub fn body(&self, n: u64) -> Vec<u8> {
        let mut b = self.template.clone();
        let digits = format!("{n:0ID_DIGITS$}");
        for at in self.at {
            b[at..at + ID_DIGITS].copy_from_slice(digits.as_bytes());
        }
        b
    }
}

/// A running `cordon serve --cloud sim` in a scratch directory of its own (journal, world,
/// `cordon.yaml`, the bench playbook). Killed on drop.
pub struct Served {
    child: Child,
    url: String,
    token: String,
    /// The scratch directory.
    pub dir: tempfile::TempDir,
}

impl Served {
    /// Starts the server and waits until `/readyz` says ready.
    pub async fn start(http: &Client) -> Served {
        Served::start_with(http, crate::PLAYBOOK).await
    }

    /// [`Served::start`] with `playbook` (YAML) as the only playbook.
    pub async fn start_with(http: &Client, playbook: &str) -> Served {
        let dir = tempfile::tempdir().expect("temporary directory");
        let root = dir.path();
        std::fs::write(root.join("cordon.yaml"), crate::CONFIG).expect("cordon.yaml");
        std::fs::create_dir_all(root.join("playbooks")).expect("playbooks");
        std::fs::write(root.join("playbooks/bench.yaml"), playbook).expect("playbook");
        let log = std::fs::File::create(root.join("serve.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_cordon"))
            .current_dir(root)
            .env(
                "RUST_LOG",
                std::env::var("SERVE_BENCH_LOG").unwrap_or_default(),
            )
            .env("CORDON_PLAYBOOKS", root.join("playbooks"))
            .env("CORDON_API_KEY", KEY)
            .args(["serve", "--cloud", "sim", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn cordon serve");
        let mut served = Served {
            child,
            url: String::new(),
            token: String::new(),
            dir,
        };
        let discovery = served.dir.path().join(".cordon/journal/serve.json");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = served.child.try_wait().expect("wait") {
                panic!("cordon serve exited ({status}):\n{}", served.log());
            }
            let found = std::fs::read(&discovery)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .filter(|e| e["pid"] == served.child.id());
            if let Some(e) = found {
                served.url = e["url"].as_str().expect("url").to_string();
                served.token = e["token"].as_str().expect("token").to_string();
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no serve.json:\n{}",
                served.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let ready = served.get(http, "/readyz").await;
        assert!(
            ready["ready"] == true,
            "not ready: {ready}\n{}",
            served.log()
        );
        served
    }

    /// `POST /v1/events`.
    pub fn events_url(&self) -> String {
        format!("{}/v1/events", self.url)
    }

    fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default();
        let tail = (text.len().saturating_sub(4000)..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text[tail..].to_string()
    }

    async fn text(&self, http: &Client, path: &str) -> String {
        let r = http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.log()));
        r.text().await.expect("answer body")
    }

    async fn get(&self, http: &Client, path: &str) -> Value {
        let text = self.text(http, path).await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
    }

    /// The histogram `name` from `/metrics`, all label sets added up.
    pub async fn hist(&self, http: &Client, name: &str) -> Hist {
        Hist::parse(&self.text(http, "/metrics").await, name)
    }

    /// Runs admitted and not settled (`cordon_queue_depth`).
    pub async fn queue_depth(&self, http: &Client) -> u64 {
        let text = self.text(http, "/metrics").await;
        text.lines()
            .find_map(|l| l.strip_prefix("cordon_queue_depth "))
            .and_then(|v| v.trim().parse().ok())
            .expect("cordon_queue_depth in /metrics")
    }

    /// Runs settled so far, by state (`cordon_runs_settled_total`).
    pub async fn settled(&self, http: &Client) -> BTreeMap<String, u64> {
        let text = self.text(http, "/metrics").await;
        let mut by_state = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("cordon_runs_settled_total{") else {
                continue;
            };
            let state = rest
                .split("state=\"")
                .nth(1)
                .and_then(|s| s.split('"').next());
            let n = rest
                .split_whitespace()
                .last()
                .and_then(|n| n.parse::<u64>().ok());
            if let (Some(state), Some(n)) = (state, n) {
                *by_state.entry(state.to_string()).or_insert(0) += n;
            }
        }
        by_state
    }

    /// Waits until every admitted run has settled.
    pub async fn settle(&self, http: &Client) {
        let deadline = Instant::now() + Duration::from_secs(300);
        while self.queue_depth(http).await > 0 {
            assert!(
                Instant::now() < deadline,
                "runs never settled:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts one run with event `n`, waits for it to settle, and returns its record's size as
    /// the journal bench sizes it: the run as JSON (`GET /v1/runs/{id}`'s `run`).
    pub async fn record_bytes(&self, http: &Client, events: &Events, n: u64) -> usize {
        let (status, answer) = send(http, &self.events_url(), events.body(n)).await;
        let text = String::from_utf8_lossy(&answer);
        assert_eq!(status, 202, "{text}\n{}", self.log());
        let answer: Value = serde_json::from_slice(&answer).expect("JSON answer");
        let id = answer["runs"][0]["run_id"].as_str().expect("run id");
        self.settle(http).await;
        let shown = self.get(http, &format!("/v1/runs/{id}")).await;
        let state = &shown["run"]["state"];
        assert!(
            state == "succeeded" || state == "waiting_approval",
            "{shown}"
        );
        serde_json::to_vec(&shown["run"]).expect("encode").len()
    }

    /// The simulated world on disk (snapshot and call log), in KiB.
    pub fn world_kb(&self) -> u64 {
        let dir = self.dir.path().join(".cordon/journal");
        ["sim-world.json", "sim-world.log"]
            .iter()
            .map(|f| std::fs::metadata(dir.join(f)).map_or(0, |m| m.len()))
            .sum::<u64>()
            / 1024
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // SERVE_BENCH_KEEP=1 keeps each server's directory (log, journal, world) to look into.
        if std::env::var_os("SERVE_BENCH_KEEP").is_some() {
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
            println!("  kept {}", dir.keep().display());
        }
    }
}

/// The baseline handler: an axum server that reads the body and answers 202, on a runtime of
/// its own (as many workers as cores, like `cordon serve`'s) in a thread of this process.
pub struct BareServer {
    /// Its `POST` URL.
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BareServer {
    /// Binds a loopback port and serves until dropped.
    pub fn start() -> BareServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!(
            "http://{}/v1/events",
            listener.local_addr().expect("address")
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new().route("/v1/events", post(accept));
                tokio::select! {
                    r = axum::serve(listener, app) => r.expect("bare server"),
                    _ = stopped => {}
                }
            });
        });
        BareServer {
            url,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

async fn accept(_body: Bytes) -> StatusCode {
    StatusCode::ACCEPTED
}

impl Drop for BareServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// POSTs one event as an API destination does; returns the status (-1: no answer) and body.
async fn send(http: &Client, url: &str, body: Vec<u8>) -> (i32, Vec<u8>) {
    let r = http
        .post(url)
        .header("content-type", "application/json; charset=utf-8")
        .header("user-agent", "Amazon/EventBridge/ApiDestinations")
        .header("x-cordon-api-key", KEY)
        .body(body)
        .send()
        .await;
    match r {
        Ok(r) => {
            let status = i32::from(r.status().as_u16());
            (
                status,
                r.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
            )
        }
        Err(_) => (-1, Vec::new()),
    }
}

/// Open loop: `rate` requests a second for `duration`, each sent on its schedule whatever the
/// earlier ones are doing. Returns each request's status and its time from its scheduled send
/// to the end of its answer (so a stall counts against every request it delays).
pub async fn open_loop(
    http: &Client,
    url: &str,
    rate: f64,
    duration: Duration,
    events: &Arc<Events>,
    next: fn() -> u64,
) -> Vec<(i32, Duration)> {
    let n = (rate * duration.as_secs_f64()).round() as usize;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = JoinSet::new();
    for _ in 0..n {
        let at = tick.tick().await;
        let (http, url, body) = (http.clone(), url.to_string(), events.body(next()));
        tasks.spawn(async move {
            let (status, _) = send(&http, &url, body).await;
            (status, at.elapsed())
        });
    }
    tasks.join_all().await
}

/// What a closed loop got: answers by status, over how long.
pub struct Tally {
    /// Status (-1: no answer) -> count.
    pub by_status: BTreeMap<i32, u64>,
    elapsed: Duration,
}

impl Tally {
    /// Answers with `status`.
    pub fn count(&self, status: i32) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }

    /// Answers with `status` per second.
    pub fn rate(&self, status: i32) -> f64 {
        self.count(status) as f64 / self.elapsed.as_secs_f64()
    }
}

/// Closed loop: `workers` senders, each sending its next request when the last is answered,
/// until `duration` is over; the time includes the last answers.
pub async fn closed_loop(
    http: &Client,
    url: &str,
    workers: usize,
    duration: Duration,
    events: &Arc<Events>,
    next: fn() -> u64,
) -> Tally {
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..workers {
        let (http, url, events) = (http.clone(), url.to_string(), events.clone());
        tasks.spawn(async move {
            let mut by_status = BTreeMap::new();
            while start.elapsed() < duration {
                let (status, _) = send(&http, &url, events.body(next())).await;
                *by_status.entry(status).or_insert(0u64) += 1;
            }
            by_status
        });
    }
    let mut by_status = BTreeMap::new();
    for one in tasks.join_all().await {
        for (status, n) in one {
            *by_status.entry(status).or_insert(0) += n;
        }
    }
    Tally {
        by_status,
        elapsed: start.elapsed(),
    }
}

/// A bare sled loop's result.
pub struct SledLoop {
    count: u64,
    elapsed: Duration,
    /// Each insert + flush, in seconds.
    pub latencies: Vec<f64>,
}

impl SledLoop {
    /// Insert + flush pairs per second.
    pub fn rate(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }
}

/// A sled database at `dir`, configured as the journal's (16 MiB cache).
fn bare_sled(dir: &Path) -> sled::Db {
    sled::Config::new()
        .path(dir)
        .cache_capacity(16 * 1024 * 1024)
        .open()
        .expect("bare sled")
}

/// Inserts record number `n` (`value`) into `tree` and flushes; returns the seconds it took.
fn insert_flush(tree: &sled::Tree, n: u64, value: &[u8]) -> f64 {
    let t = Instant::now();
    tree.insert(format!("run-{n:012}").as_bytes(), value)
        .expect("insert");
    tree.flush().expect("flush");
    t.elapsed().as_secs_f64()
}

/// A probe of the disk while a phase runs: a bare sled database at `dir` (configured as the
/// journal's), one insert of `record` bytes then a flush every `every`, each flush's latency
/// kept. A flush that takes long here took long for the server too: the disk stalled, not
/// cordon. Stopped (and its latencies, in seconds, returned) by [`DiskProbe::stop`].
pub struct DiskProbe {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<f64>>,
}

impl DiskProbe {
    pub fn start(dir: &Path, record: usize, every: Duration) -> DiskProbe {
        let db = bare_sled(dir);
        let tree = db.open_tree("probe").expect("tree");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let value = vec![b'x'; record];
            let mut latencies = Vec::new();
            let mut count = 0u64;
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                latencies.push(insert_flush(&tree, count, &value));
                count += 1;
                std::thread::sleep(every.saturating_sub(t.elapsed()));
            }
            drop(db);
            latencies
        });
        DiskProbe { stop, thread }
    }

    pub fn stop(self) -> Vec<f64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("disk probe")
    }
}

/// The least a journal that makes each record durable alone can cost: a sled database at
/// `dir`, configured as the journal's (16 MiB cache), one insert of `record` bytes then a
/// flush, one after another, for `duration`.
pub fn sled_loop(dir: &Path, record: usize, duration: Duration) -> SledLoop {
    let db = bare_sled(dir);
    let tree = db.open_tree("bare").expect("tree");
    let value = vec![b'x'; record];
    let (start, mut latencies) = (Instant::now(), Vec::new());
    let mut count = 0u64;
    while start.elapsed() < duration {
        latencies.push(insert_flush(&tree, count, &value));
        count += 1;
    }
    SledLoop {
        count,
        elapsed: start.elapsed(),
        latencies,
    }
}
