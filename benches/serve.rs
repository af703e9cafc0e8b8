//! `cordon serve` under load: the issue's three server benchmarks, against the real binary
//! (`--cloud sim`) over loopback HTTP, each figure a ratio against (or beside) a baseline
//! measured in the same run, round by round, because the machines are shared and noisy.
//!
//! 1. Latency: event received -> the run's first containment call, at a steady open-loop rate
//!    (default 500 events/s: each request is sent on its schedule whatever the answers do).
//!    Read from the server's own histogram `cordon_time_to_first_containment_seconds` (from
//!    the handler's first line to the moment the containment step makes its first call, once
//!    the run is durable), the difference of two scrapes around the steady phase. Target: p99 <= 5 ms.
//!    Beside it: the same load against a bare axum handler (the client's and loopback's share),
//!    and bare sled insert + flush latencies on the same disk. The path to the first call
//!    flushes once (the run created); an undoable first step journals its start with its
//!    pre-state, after that call, which reads it. During each round a probe on the same disk
//!    flushes a record every 10 ms: a round where one of its flushes took over 5 ms had a disk
//!    stall no durable intake can hide, and the figures over the other rounds are printed
//!    apart (beside the figure over all rounds, never instead of it).
//! 2. Intake of events that match no playbook (answered 200, nothing journaled), closed loop
//!    with N concurrent senders, against a bare axum handler that reads the body and answers
//!    202, on its own runtime in this process. Target: >= 50% of its rate.
//! 3. Intake of matching events (each answered 202 once its run is durable; the runs are then
//!    driven, which the same server does meanwhile), closed loop as in 2, against a bare sled
//!    loop on the same disk: one insert of a run record's size, then flush, one after another.
//!    Target: >= 1x that loop's rate (group commit must make concurrent requests cheaper
//!    than one flush each).
//!
//! Every event is a finding of its own on an instance of its own, in one account (so that no
//! event is a repeat, and no run waits for another's turn on its instance). The simulator keeps
//! its world as a snapshot and a log of calls, one line per call; every phase starts a fresh
//! server (the world's size on disk at the end of each phase is printed).
//!
//! Settings (environment): `SERVE_BENCH_SECONDS` per phase (default 5), `SERVE_BENCH_ROUNDS`
//! (3), `SERVE_BENCH_RATE` for 1 (500), `SERVE_BENCH_CONCURRENCY` for 2 and 3 (32).
//!
//! Run: `bench/serve.sh`, or `cargo bench --workspace --bench serve`. Under
//! `cargo test --benches` (no `--bench` argument) it makes one short smoke round.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Client;

#[path = "serve/stats.rs"]
mod stats;
#[path = "serve/support.rs"]
mod support;

use stats::{median, Hist};
use support::{Events, Served, Tally};

const CONTAINMENT: &str = "cordon_time_to_first_containment_seconds";
/// The issue's target for benchmark 1, in seconds; a bucket bound of that histogram.
const TARGET_P99: f64 = 0.005;

struct Settings {
    seconds: Duration,
    rounds: usize,
    rate: f64,
    concurrency: usize,
}

impl Settings {
    fn from_env(smoke: bool) -> Settings {
        let get = |name: &str, default: f64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| *v > 0.0)
                .unwrap_or(default)
        };
        if smoke {
            return Settings {
                seconds: Duration::from_millis(300),
                rounds: 1,
                rate: 100.0,
                concurrency: 4,
            };
        }
        Settings {
            seconds: Duration::from_secs_f64(get("SERVE_BENCH_SECONDS", 5.0)),
            rounds: get("SERVE_BENCH_ROUNDS", 3.0) as usize,
            rate: get("SERVE_BENCH_RATE", 500.0),
            concurrency: get("SERVE_BENCH_CONCURRENCY", 32.0) as usize,
        }
    }
}

/// Finding ids never repeat within the process.
static SEQ: AtomicU64 = AtomicU64::new(0);

fn next_id() -> u64 {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// Benchmark 1.
async fn latency(http: &Client, s: &Settings, matching: &Arc<Events>) {
    println!(
        "== serve 1: event received -> first containment call (sim cloud), {} events/s open loop, {} x {:.1} s ==",
        s.rate,
        s.rounds,
        s.seconds.as_secs_f64()
    );
    let bare = support::BareServer::start();
    let mut hist = Hist::default();
    // Rounds in which no flush of the disk probe took over 5 ms.
    let (mut quiet, mut quiet_rounds) = (Hist::default(), 0usize);
    let (mut cordon_rtt, mut bare_rtt, mut flushes) = (Vec::new(), Vec::new(), Vec::new());
    let (mut sent, mut statuses, mut record_size) = (0usize, BTreeMap::new(), 0);
    for _ in 0..s.rounds {
        let server = Served::start(http).await;
        let record = server.record_bytes(http, matching, next_id()).await;
        // Warm-up: connections, the world's instances, the journal's first segments.
        let warm = s.seconds.mul_f64(0.2);
        support::open_loop(http, &server.events_url(), s.rate, warm, matching, next_id).await;
        server.settle(http).await;
        let before = server.hist(http, CONTAINMENT).await;
        let probe = support::DiskProbe::start(
            &server.dir.path().join("probe"),
            record,
            Duration::from_millis(10),
        );
        let answers = support::open_loop(
            http,
            &server.events_url(),
            s.rate,
            s.seconds,
            matching,
            next_id,
        )
        .await;
        let probed = probe.stop();
        server.settle(http).await;
        let after = server.hist(http, CONTAINMENT).await;
        let round = after.minus(&before);
        hist.add(&round);
        let disk_max = probed.iter().copied().fold(0.0, f64::max);
        if disk_max <= TARGET_P99 {
            quiet.add(&round);
            quiet_rounds += 1;
        }
        sent += answers.len();
        for (status, rtt) in &answers {
            *statuses.entry(*status).or_insert(0usize) += 1;
            cordon_rtt.push(rtt.as_secs_f64());
        }
        println!(
            "  round: first containment p99 {:>7.3} ms; disk probe in the same window (sled insert + flush every 10 ms, same disk): p99 {:>7.3} ms, max {:>7.3} ms; runs settled by state {:?}; sim world file {} KB at the end",
            round.quantile(0.99) * 1e3,
            stats::quantile(&probed, 0.99) * 1e3,
            disk_max * 1e3,
            server.settled(http).await,
            server.world_kb()
        );
        drop(server);
        let answers =
            support::open_loop(http, &bare.url, s.rate, s.seconds, matching, next_id).await;
        bare_rtt.extend(answers.iter().map(|(_, d)| d.as_secs_f64()));
        let dir = tempfile::tempdir().expect("temporary directory");
        let bare_sled = support::sled_loop(dir.path(), record, s.seconds.mul_f64(0.4));
        flushes.extend(bare_sled.latencies);
        record_size = record;
    }
    let created = statuses.get(&202).copied().unwrap_or(0);
    println!("  requests {sent}, answers by status {statuses:?} (-1: no answer)");
    println!(
        "  time to first containment, {} runs (server histogram, buckets sqrt(2) apart, interpolated):",
        hist.count
    );
    let (p50, p99) = (hist.quantile(0.5), hist.quantile(0.99));
    println!(
        "    p50 {:>7.3} ms   p99 {:>7.3} ms   mean {:>7.3} ms   {:.2}% <= 5 ms (exact: a bucket bound)",
        p50 * 1e3,
        p99 * 1e3,
        hist.sum / hist.count.max(1) as f64 * 1e3,
        hist.share_at_or_below(TARGET_P99) * 100.0
    );
    let ms = |v: &[f64], q: f64| stats::quantile(v, q) * 1e3;
    println!(
        "  202 answer at the client: p50 {:>7.3} ms p99 {:>7.3} ms; bare axum, same load: p50 {:>7.3} ms p99 {:>7.3} ms",
        ms(&cordon_rtt, 0.5),
        ms(&cordon_rtt, 0.99),
        ms(&bare_rtt, 0.5),
        ms(&bare_rtt, 0.99)
    );
    println!(
        "  bare sled insert {record_size} B + flush, same disk: p50 {:>7.3} ms p99 {:>7.3} ms (the path flushes once before the first call)",
        ms(&flushes, 0.5),
        ms(&flushes, 0.99)
    );
    let met = hist.share_at_or_below(TARGET_P99) >= 0.99 && created == sent;
    println!(
        "  p99 <= 5 ms (target), every event answered 202: {}",
        verdict(met)
    );
    // A journal flush waits for the disk: in a round where the disk itself stalled past 5 ms,
    // no durable intake can keep its p99 under 5 ms. Shown apart, never instead of the above.
    if quiet_rounds > 0 {
        println!(
            "  rounds in which the disk probe never exceeded 5 ms: {quiet_rounds} of {}; first containment over them: p50 {:>7.3} ms p99 {:>7.3} ms, {:.2}% <= 5 ms: {}",
            s.rounds,
            quiet.quantile(0.5) * 1e3,
            quiet.quantile(0.99) * 1e3,
            quiet.share_at_or_below(TARGET_P99) * 100.0,
            verdict(quiet.share_at_or_below(TARGET_P99) >= 0.99)
        );
    } else {
        println!(
            "  the disk probe exceeded 5 ms in every round: no round measured cordon apart from the disk's stalls"
        );
    }
}

/// Benchmark 2.
async fn no_match(http: &Client, s: &Settings, other: &Arc<Events>) {
    println!(
        "== serve 2: events matching no playbook, {} senders, vs a bare axum 202 handler, {} rounds of {:.1} s each ==",
        s.concurrency,
        s.rounds,
        s.seconds.as_secs_f64()
    );
    let bare = support::BareServer::start();
    let server = Served::start(http).await;
    let (mut ratios, mut ours, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..s.rounds {
        let b =
            support::closed_loop(http, &bare.url, s.concurrency, s.seconds, other, next_id).await;
        let c = support::closed_loop(
            http,
            &server.events_url(),
            s.concurrency,
            s.seconds,
            other,
            next_id,
        )
        .await;
        check_only(&c, 200, "no-match events");
        let (rb, rc) = (b.rate(202), c.rate(200));
        ratios.push(rc / rb);
        ours.push(rc);
        theirs.push(rb);
    }
    println!("  sim world file {} KB at the end", server.world_kb());
    let r = median(ratios.clone());
    println!(
        "  bare axum: {:>8.0} req/s   cordon (200, no run): {:>8.0} req/s   (medians)",
        median(theirs),
        median(ours)
    );
    println!(
        "  cordon / bare = {:.2} (median of rounds {}) (target >= 0.5) {}",
        r,
        fmt_list(&ratios),
        verdict(r >= 0.5)
    );
}

/// Benchmark 3, twice per round: with the bench playbook's runs waiting for an approval (what
/// is measured is the intake alone: parse, match, run journaled, 202) and with its runs driven
/// to the end by the same server meanwhile (intake and containment sharing the two cores).
async fn durable(http: &Client, s: &Settings, matching: &Arc<Events>) {
    println!(
        "== serve 3: matching events, each run durable before its 202, {} senders, vs a bare sled insert + flush loop, {} rounds of {:.1} s each ==",
        s.concurrency,
        s.rounds,
        s.seconds.as_secs_f64()
    );
    let mut kinds: Vec<Durable> = [
        ("runs wait for approval", APPROVAL_PLAYBOOK),
        ("runs driven meanwhile", PLAYBOOK),
    ]
    .into_iter()
    .map(|(name, playbook)| Durable {
        name,
        playbook,
        ratios: Vec::new(),
        ours: Vec::new(),
        theirs: Vec::new(),
    })
    .collect();
    let mut record = 0usize;
    for _ in 0..s.rounds {
        for kind in &mut kinds {
            let server = Served::start_with(http, kind.playbook).await;
            record = server.record_bytes(http, matching, next_id()).await;
            let bare = support::sled_loop(&server.dir.path().join("bare"), record, s.seconds);
            let c = support::closed_loop(
                http,
                &server.events_url(),
                s.concurrency,
                s.seconds,
                matching,
                next_id,
            )
            .await;
            check_only(&c, 202, "matching events");
            let (rb, rc) = (bare.rate(), c.rate(202));
            kind.ratios.push(rc / rb);
            kind.ours.push(rc);
            kind.theirs.push(rb);
            let (open, wait) = (server.queue_depth(http).await, Instant::now());
            server.settle(http).await;
            println!(
                "  round, {}: {} runs accepted; {open} not yet settled when the load stopped, {:.1} s later settled by state {:?}; sim world on disk {} KB",
                kind.name,
                c.count(202),
                wait.elapsed().as_secs_f64(),
                server.settled(http).await,
                server.world_kb()
            );
        }
    }
    for kind in kinds {
        let r = median(kind.ratios.clone());
        println!(
            "  {}: bare sled insert {record} B + flush {:>8.0} /s, cordon 202 (run durable) {:>8.0} /s (medians); cordon / bare = {:.2} (median of rounds {}) (target >= 1) {}",
            kind.name,
            median(kind.theirs),
            median(kind.ours),
            r,
            fmt_list(&kind.ratios),
            verdict(r >= 1.0)
        );
    }
}

/// One variant of benchmark 3 and its figures, round by round.
struct Durable {
    name: &'static str,
    playbook: &'static str,
    ratios: Vec<f64>,
    ours: Vec<f64>,
    theirs: Vec<f64>,
}

/// Warns when the server answered anything but `want`: a rate of other answers is no rate.
fn check_only(t: &Tally, want: i32, what: &str) {
    if t.by_status.keys().any(|s| *s != want) {
        println!(
            "  WARNING: {what} got answers other than {want}: {:?}",
            t.by_status
        );
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "MET"
    } else {
        "MISSED"
    }
}

fn fmt_list(v: &[f64]) -> String {
    let items: Vec<String> = v.iter().map(|r| format!("{r:.2}")).collect();
    format!("[{}]", items.join(", "))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not and wants a quick run.
    let smoke = !args.iter().any(|a| a == "--bench");
    let which = args
        .iter()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .cloned()
        .unwrap_or_else(|| "all".into());
    let s = Settings::from_env(smoke);
    if smoke {
        println!("smoke run (no --bench argument): checks that the bench works; its figures mean nothing");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // reqwest is built without a default TLS provider (see Cargo.toml).
    cordon_connectors::tls::install_crypto_provider();
    let http = Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client");
    let fixture = support::fixture();
    let matching = Arc::new(Events::new(&fixture, true));
    let other = Arc::new(Events::new(&fixture, false));
    let started = Instant::now();
    rt.block_on(async {
        if which == "all" || which == "latency" {
            latency(&http, &s, &matching).await;
        }
        if which == "all" || which == "nomatch" {
            no_match(&http, &s, &other).await;
        }
        if which == "all" || which == "durable" {
            durable(&http, &s, &matching).await;
        }
    });
    println!(
        "serve benchmarks took {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

/// The playbook every server of this bench loads: one containment step on the finding's
/// instance, for the finding type of [`Events`]' matching events only.
pub const PLAYBOOK: &str = r#"id: bench-isolate
title: Isolate the instance (serve bench)
version: 1
mode: auto
trigger:
  match:
    source: [aws.guardduty]
    detail:
      type: ["UnauthorizedAccess:EC2/MaliciousIPCaller.Custom"]
steps:
  - id: isolate
    action: ec2.isolate_instance
    with:
      instance: ${finding.resources[0].id}
"#;

/// The bench playbook with an approval first: its runs are journaled, then wait for a person.
pub const APPROVAL_PLAYBOOK: &str = r#"id: bench-isolate
title: Isolate the instance after approval (serve bench)
version: 1
mode: approval
trigger:
  match:
    source: [aws.guardduty]
    detail:
      type: ["UnauthorizedAccess:EC2/MaliciousIPCaller.Custom"]
steps:
  - id: ask
    action: approval
  - id: isolate
    action: ec2.isolate_instance
    with:
      instance: ${finding.resources[0].id}
"#;

/// The limits of the bench's `cordon.yaml`: the default per-account limit (8) would queue a
/// 500/s load on one account; the queue must never refuse (a 429 is not a rate).
pub const CONFIG: &str = "server:\n  limits: {runs: 64, per_account: 64, queue: 1000000}\n";
