//! Journal: one 5-step run end to end, every transition flushed.
//!
//! Work measured: `Runner::create_run` then `Runner::drive` to `Succeeded` for a playbook of five
//! steps (`notify.chat` and `eventbridge.put_event`, mode auto) against the simulated cloud (in
//! memory), with a `SledJournal` in a temporary directory. The journal is wrapped in a counter,
//! so the number of durable writes (each `Journal::insert` / `update` is one sled flush) is
//! counted, not assumed.
//!
//! Baseline: a bare sled tree on the same disk (a sibling directory under the same temporary
//! parent) doing that many `insert` + `flush` pairs, each value the size of the run record: the
//! least any journal that flushes every transition can cost.
//!
//! Target (a ratio, because the machines are shared and noisy): run <= 2x the bare loop.
//!
//! Criterion reports both times; after its group this binary measures both again, interleaved
//! round by round, and prints the medians and the ratio (bench mode only, not under
//! `cargo test --benches`).
//!
//! Run: `cargo bench -p cordon-engine --bench journal -- --warm-up-time 1 --measurement-time 3`

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cordon_engine::clock::SystemClock;
use cordon_engine::cloud::Cloud;
use cordon_engine::config::Settings;
use cordon_engine::event::{self, FindingEvent};
use cordon_engine::journal::{
    Admission, Entry, Inserted, Journal, Result as JournalResult, SledJournal,
};
use cordon_engine::playbook::{PlaybookRef, PlaybookSet};
use cordon_engine::run::{Run, RunState, Trigger};
use cordon_engine::runner::Runner;
use cordon_engine::script::Sandbox;
use cordon_simulator::SimCloud;
use criterion::{Criterion, SamplingMode};

const EVENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/events/aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json"
);

/// Five steps that only talk (no pre-state to journal), so the writes are the runner's own:
/// created, started, then started + succeeded per step, then finished.
const PLAYBOOK: &str = r##"id: five-steps
title: Five notifications (bench)
version: 1
mode: auto
trigger:
  match:
    source: [aws.guardduty]
vars:
  channel: "#security-incidents"
steps:
  - id: tell
    action: notify.chat
    with:
      channel: ${vars.channel}
      text: "${finding.type} in ${finding.account}/${finding.region}, severity ${finding.severity}"
  - id: audit
    action: eventbridge.put_event
    with:
      bus: security-audit
      detail:
        finding: ${finding.id}
  - id: page
    action: notify.chat
    with:
      channel: "#on-call"
      text: "Run ${run.id} for ${finding.id}"
  - id: audit2
    action: eventbridge.put_event
    with:
      bus: security-audit
      detail_type: cordon run
      detail:
        run: ${run.id}
        posted: ${steps.tell.output.posted}
  - id: done
    action: notify.chat
    with:
      channel: ${vars.channel}
      text: "Done with ${finding.id}"
"##;

/// The real journal, counting its durable writes.
struct Counting {
    inner: SledJournal,
    writes: AtomicUsize,
}

#[async_trait::async_trait]
impl Journal for Counting {
    async fn insert(&self, run: &Run, entry: &Entry, a: Admission) -> JournalResult<Inserted> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.insert(run, entry, a).await
    }
    async fn update(&self, run: &Run, entry: &Entry) -> JournalResult<u64> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.update(run, entry).await
    }
    async fn get(&self, id: &str) -> JournalResult<Option<Run>> {
        self.inner.get(id).await
    }
    async fn ids(&self) -> JournalResult<Vec<String>> {
        self.inner.ids().await
    }
    async fn open_ids(&self) -> JournalResult<Vec<String>> {
        self.inner.open_ids().await
    }
    async fn timeline(&self, id: &str) -> JournalResult<Vec<Entry>> {
        self.inner.timeline(id).await
    }
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    journal: Arc<Counting>,
    runner: Runner,
    playbook: PlaybookRef,
    finding: FindingEvent,
    /// Makes every run's dedup key new (a repeated key would only find the existing run).
    seq: AtomicU64,
    bare: sled::Tree,
    /// Held so the bare database stays open.
    _bare_db: sled::Db,
    /// Durable writes one run makes, and the size of its record.
    writes_per_run: usize,
    record_bytes: usize,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temporary directory");
        let journal = Arc::new(Counting {
            inner: SledJournal::open(&dir.path().join("journal")).expect("journal"),
            writes: AtomicUsize::new(0),
        });
        let sandbox = Arc::new(Sandbox::default());
        let set = PlaybookSet::from_sources(&[("five-steps.yaml", PLAYBOOK)], &sandbox)
            .expect("bench playbook loads");
        let playbook = set.get("five-steps").expect("playbook").clone();
        let runner = Runner::new(
            journal.clone(),
            Cloud::from_one(Arc::new(SimCloud::in_memory())),
            Settings::default(),
            sandbox,
            Arc::new(set),
            Arc::new(SystemClock),
        );
        let bytes = std::fs::read(EVENT).expect("fixture event");
        let finding = event::parse(&bytes).expect("fixture parses").findings()[0].clone();
        let (bare_db, bare) = open_bare(&dir.path().join("bare"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let mut fx = Fixture {
            rt,
            journal,
            runner,
            playbook,
            finding,
            seq: AtomicU64::new(0),
            bare,
            _bare_db: bare_db,
            writes_per_run: 0,
            record_bytes: 0,
            _dir: dir,
        };
        // One run to count the writes and size the records, and to check it succeeds.
        let before = fx.journal.writes.load(Ordering::Relaxed);
        let id = fx.one_run();
        fx.writes_per_run = fx.journal.writes.load(Ordering::Relaxed) - before;
        let run = fx
            .rt
            .block_on(fx.journal.get(&id))
            .expect("journal read")
            .expect("run");
        fx.record_bytes = serde_json::to_vec(&run).expect("encode").len();
        println!(
            "journal: a 5-step run makes {} flushed journal writes; run record {} bytes; timeline {} entries",
            fx.writes_per_run,
            fx.record_bytes,
            fx.rt
                .block_on(fx.journal.timeline(&id))
                .expect("timeline")
                .len()
        );
        fx
    }

    /// Creates and drives one run to the end; returns its id.
    fn one_run(&self) -> String {
        let mut fe = self.finding.clone();
        fe.finding.dedup_id = format!("bench-{}", self.seq.fetch_add(1, Ordering::Relaxed));
        self.run_finding(&fe)
    }

    fn run_finding(&self, fe: &FindingEvent) -> String {
        let submitted = self
            .rt
            .block_on(self.runner.create_run(
                &self.playbook,
                fe,
                Trigger::Event,
                Admission::Deliver,
            ))
            .expect("create_run");
        assert_eq!(submitted.status, "created");
        let id = submitted.run_id.expect("run id");
        let state = self.rt.block_on(self.runner.drive(&id)).expect("drive");
        assert_eq!(state, RunState::Succeeded);
        id
    }

    /// A fresh finding per run, built outside the timed part.
    fn next_finding(&self) -> FindingEvent {
        let mut fe = self.finding.clone();
        fe.finding.dedup_id = format!("bench-{}", self.seq.fetch_add(1, Ordering::Relaxed));
        fe
    }

    /// The baseline: as many insert + flush pairs as a run makes journal writes.
    fn bare_loop(&self, value: &[u8]) {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.writes_per_run {
            let key = format!("run-{n:012}-{i:02}");
            self.bare.insert(key.as_bytes(), value).expect("insert");
            self.bare.flush().expect("flush");
        }
    }
}

/// A bare sled database configured as the journal's (same cache bound).
fn open_bare(path: &Path) -> (sled::Db, sled::Tree) {
    let db = sled::Config::new()
        .path(path)
        .cache_capacity(16 * 1024 * 1024)
        .open()
        .expect("bare sled");
    let tree = db.open_tree("bare").expect("tree");
    (db, tree)
}

fn criterion_group(c: &mut Criterion, fx: &Fixture) {
    let value = vec![b'x'; fx.record_bytes];
    let mut g = c.benchmark_group("journal");
    // Each iteration is a dozen fsyncs: flat sampling keeps the iteration count per sample
    // constant, and ten samples fit the short measurement times bench/run.sh uses.
    g.sampling_mode(SamplingMode::Flat).sample_size(10);
    g.bench_function("bare_sled_insert_flush_baseline", |b| {
        b.iter(|| fx.bare_loop(&value))
    });
    g.bench_function("run_5_steps_end_to_end", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let fe = fx.next_finding();
                let start = Instant::now();
                fx.run_finding(&fe);
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Medians of interleaved single runs and bare loops, and the ratio against the target.
fn ratio(fx: &Fixture) {
    const ROUNDS: usize = 31;
    let value = vec![b'x'; fx.record_bytes];
    let (mut bare, mut run) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let start = Instant::now();
        fx.bare_loop(&value);
        bare.push(start.elapsed().as_secs_f64());
        let fe = fx.next_finding();
        let start = Instant::now();
        fx.run_finding(&fe);
        run.push(start.elapsed().as_secs_f64());
    }
    let (b, r) = (median(bare), median(run));
    println!("journal ratio (medians of {ROUNDS} interleaved rounds):");
    println!(
        "  bare sled: {} x (insert {} B + flush) {:>9.3} ms",
        fx.writes_per_run,
        fx.record_bytes,
        b * 1e3
    );
    println!("  run_5_steps_end_to_end            {:>9.3} ms", r * 1e3);
    println!(
        "  run / bare loop = {:.2}x (target <= 2x) {}",
        r / b,
        if r / b <= 2.0 { "MET" } else { "MISSED" }
    );
}

fn main() {
    let fx = Fixture::new();
    let mut c = Criterion::default().configure_from_args();
    criterion_group(&mut c, &fx);
    c.final_summary();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not and wants a quick smoke run.
    // Under `--profile-time` (for a profiler) only the criterion loop runs.
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--profile-time") {
        ratio(&fx);
    }
}
