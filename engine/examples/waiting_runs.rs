//! Memory held by many waiting runs: one process journals 10,000 runs that each stop at an
//! `approval` step (`WaitingApproval`), then, with the runner and the journal still open, prints
//! its resident set size (VmRSS from /proc/self/status), its peak (VmHWM) and the journal's size
//! on disk. The RSS before any run is created is printed as the baseline.
//!
//! Target: RSS < 200 MB while holding the 10,000 waiting runs.
//!
//! Run: `cargo run --profile bench -p cordon-engine --example waiting_runs [-- RUNS]`
//! (RUNS defaults to 10000).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use cordon_engine::clock::SystemClock;
use cordon_engine::cloud::Cloud;
use cordon_engine::config::Settings;
use cordon_engine::event;
use cordon_engine::journal::{Admission, SledJournal};
use cordon_engine::playbook::PlaybookSet;
use cordon_engine::run::{RunState, Trigger};
use cordon_engine::runner::Runner;
use cordon_engine::script::Sandbox;
use cordon_simulator::SimCloud;

const EVENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/events/aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json"
);

/// The shipped isolation steps behind an approval: every run stops at the first step.
const PLAYBOOK: &str = r##"id: approve-then-isolate
title: Ask, then isolate the instance (memory bench)
version: 1
mode: approval
trigger:
  match:
    source: [aws.guardduty]
    detail:
      resource:
        resourceType: [Instance]
vars:
  channel: "#security-incidents"
steps:
  - id: ok
    action: approval
    with:
      message: "Isolate ${finding.resources.filter(|r| r.type == \"Instance\")[0].id} in ${finding.account}? (${finding.type})"
      timeout: 4h
      default: deny
  - id: isolate
    action: ec2.isolate_instance
    with:
      instance: ${finding.resources.filter(|r| r.type == "Instance")[0].id}
  - id: tell
    action: notify.chat
    with:
      channel: ${vars.channel}
      text: "Isolated ${steps.isolate.output.instance}. Undo: cordon release ${run.id}"
"##;

/// A `kB` line of /proc/self/status, in MiB.
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Apparent size and allocated size (MiB) of every file under `dir`.
fn disk_mib(dir: &Path) -> (f64, f64) {
    use std::os::unix::fs::MetadataExt;
    let (mut len, mut blocks) = (0u64, 0u64);
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                todo.push(e.path());
            } else {
                len += m.len();
                blocks += m.blocks() * 512;
            }
        }
    }
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    (mib(len), mib(blocks))
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    println!(
        "waiting_runs: RSS at start                  {:>8.1} MiB",
        status_mib("VmRSS")
    );

    let dir = tempfile::tempdir().expect("temporary directory");
    let journal_dir = dir.path().join("journal");
    let journal = Arc::new(SledJournal::open(&journal_dir).expect("journal"));
    let sandbox = Arc::new(Sandbox::default());
    let set = PlaybookSet::from_sources(&[("approve-then-isolate.yaml", PLAYBOOK)], &sandbox)
        .expect("playbook loads");
    let playbook = set.get("approve-then-isolate").expect("playbook").clone();
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let baseline = status_mib("VmRSS");
    println!("waiting_runs: RSS before runs (baseline)    {baseline:>8.1} MiB (runner, journal, playbook loaded)");

    let start = Instant::now();
    for i in 0..runs {
        // A distinct finding id per run: the same one would only find the existing run (dedup).
        let mut fe = finding.clone();
        fe.finding.dedup_id = format!("waiting-{i}");
        let submitted = rt
            .block_on(runner.create_run(&playbook, &fe, Trigger::Event, Admission::Deliver))
            .expect("create_run");
        let id = submitted.run_id.expect("run created");
        let state = rt.block_on(runner.drive(&id)).expect("drive");
        assert_eq!(state, RunState::WaitingApproval);
    }
    let took = start.elapsed();

    // Still holding the runner and the open journal.
    let open = rt
        .block_on(runner.journal().open_ids())
        .expect("open ids")
        .len();
    let rss = status_mib("VmRSS");
    let (len, allocated) = disk_mib(&journal_dir);
    println!(
        "waiting_runs: created {runs} runs waiting for approval in {:.1} s ({:.2} ms/run, 3 flushed writes each); {open} open in the journal",
        took.as_secs_f64(),
        took.as_secs_f64() * 1e3 / runs as f64
    );
    println!(
        "waiting_runs: RSS holding {runs} waiting runs  {rss:>8.1} MiB (+{:.1} MiB over baseline; peak VmHWM {:.1} MiB); target < 200 MB {}",
        rss - baseline,
        status_mib("VmHWM"),
        if rss * 1.048_576 < 200.0 { "MET" } else { "MISSED" }
    );
    println!(
        "waiting_runs: journal on disk {len:.1} MiB apparent, {allocated:.1} MiB allocated ({:.1} KiB/run apparent)",
        len * 1024.0 / runs as f64
    );
    drop(runner);
    drop(journal);
}
