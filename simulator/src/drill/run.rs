//! Runs a loaded scenario: the engine's dispatcher against a [`SimCloud`] seeded from the
//! scenario, on a [`VirtualClock`] driven by a paused tokio runtime (the same code as
//! `cordon serve`, so a day of timeline takes milliseconds).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use cordon_engine::clock::{Clock, VirtualClock};
use cordon_engine::cloud::Cloud;
use cordon_engine::dispatch::{Dispatcher, Limits};
use cordon_engine::event::{self, Parsed};
use cordon_engine::ids::SeededIds;
use cordon_engine::intake::DRILL_MARKER;
use cordon_engine::journal::{Admission, Journal, MemoryJournal};
use cordon_engine::playbook::PlaybookSet;
use cordon_engine::run::Trigger;
use cordon_engine::runner::Runner;
use cordon_engine::script::{Limits as ScriptLimits, Sandbox};
use serde_json::Value;

use super::attacker::Attempt;
use super::check::{self, Injected};
use super::faults;
use super::gate::Gate;
use super::report::{self, Line, Report};
use super::scenario::{Loaded, ScenarioError};
use super::world;
use crate::SimCloud;

/// Where the virtual clock starts: 2026-01-01T00:00:00Z (T+0 in the report).
pub const START_MS: u64 = 1_767_225_600_000;

/// How long each mutating cloud call takes in a drill (virtual time), so that times to
/// containment reflect the number of calls a playbook makes.
pub const CALL_LATENCY: std::time::Duration = std::time::Duration::from_millis(200);

/// Why a drill could not run (a missed expectation is not an error: it is in the report).
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// The scenario is wrong.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The playbooks did not load.
    #[error("playbooks in {dir}: {errors}")]
    Playbooks {
        /// The directory.
        dir: String,
        /// Their errors, one a line.
        errors: String,
    },
    /// The engine failed (journal, runtime).
    #[error("drill: {0}")]
    Engine(String),
}

/// Wall-clock time of a drill's phases (for the benchmark; never in the report, which stays
/// byte-identical).
#[derive(Debug, Clone, Copy, Default)]
pub struct Phases {
    /// The timeline, and the expectations checked once every run stopped.
    pub timeline: std::time::Duration,
    /// Releasing every run and the snapshot comparison.
    pub release: std::time::Duration,
    /// Building the report.
    pub report: std::time::Duration,
}

/// Runs the drill on its own thread (a paused current-thread runtime of its own, so it can be
/// called from inside another runtime) and returns its report.
pub fn run(loaded: &Loaded, seed: u64) -> Result<Report, DrillError> {
    run_timed(loaded, seed).map(|(r, _)| r)
}

/// [`run`], with the wall-clock time of each phase.
pub fn run_timed(loaded: &Loaded, seed: u64) -> Result<(Report, Phases), DrillError> {
    let sandbox = Arc::new(Sandbox::new(ScriptLimits::default()));
    let set = PlaybookSet::load_dir(&loaded.playbooks, &sandbox).map_err(|errors| {
        DrillError::Playbooks {
            dir: loaded.playbooks.display().to_string(),
            errors: errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        }
    })?;
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .start_paused(true)
                    .build()
                    .map_err(|e| DrillError::Engine(e.to_string()))?;
                rt.block_on(drive(loaded, seed, set, sandbox))
            })
            .join()
    })
    .map_err(|_| DrillError::Engine("the drill's thread panicked".into()))?
}

/// What happens at one moment: a timeline entry or an expectation check.
enum Moment {
    Timeline(usize),
    Expect(usize),
}

async fn drive(
    loaded: &Loaded,
    seed: u64,
    set: PlaybookSet,
    sandbox: Arc<Sandbox>,
) -> Result<(Report, Phases), DrillError> {
    let wall = std::time::Instant::now();
    let mut phases = Phases::default();
    let s = &loaded.scenario;
    let sim = Arc::new(SimCloud::from_world(world::build(s)).with_delay(CALL_LATENCY));
    let before = sim.snapshot();
    let journal = Arc::new(MemoryJournal::new());
    let clock = Arc::new(VirtualClock::starting_at(START_MS));
    let gate = Arc::new(Gate::new(
        sim.clone(),
        clock.clone(),
        START_MS,
        faults::compile(&s.faults),
        seed,
    ));
    let runner = Runner::new(
        journal.clone(),
        Cloud::from_one(gate.clone()),
        s.config.clone().unwrap_or_default(),
        sandbox,
        Arc::new(set),
        clock.clone(),
    )
    .with_ids(Arc::new(SeededIds::new(seed)));
    let dispatcher = Dispatcher::new(runner, Limits::default());
    let engine = |e: &dyn std::fmt::Display| DrillError::Engine(e.to_string());
    dispatcher.start().await.map_err(|e| engine(&e))?;

    let mut moments = Vec::new();
    let at = |text: &str| cordon_engine::clock::parse_duration(text).unwrap_or_default();
    for (i, e) in s.timeline.iter().enumerate() {
        moments.push((at(&e.at), 0, Moment::Timeline(i)));
    }
    for (i, x) in s.expect.iter().enumerate() {
        if let Some(by) = x.by.as_deref() {
            moments.push((at(by), 1, Moment::Expect(i)));
        }
    }
    // Stable: entries at one moment keep file order, timeline before expectations.
    moments.sort_by_key(|m| (m.0, m.1));

    let origin = tokio::time::Instant::now();
    let mut lines = Vec::new();
    let mut injected: Vec<Injected> = Vec::new();
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut outcomes = Vec::new();
    for (when, _, moment) in moments {
        tokio::time::sleep_until(origin + when).await;
        let now = clock.now_ms();
        match moment {
            Moment::Timeline(i) => {
                if let Some(a) = &s.timeline[i].attacker {
                    let attempt = a.attempt(&sim.snapshot(), &gate, START_MS, now).await;
                    lines.push(Line::attack(&attempt));
                    attempts.push(attempt);
                    continue;
                }
                let line = act(loaded, i, &dispatcher, journal.as_ref(), &mut injected, now).await;
                lines.push(line);
            }
            Moment::Expect(i) => {
                let runs = check::runs(journal.as_ref())
                    .await
                    .map_err(|e| engine(&e))?;
                let seen = Seen {
                    runs: &runs,
                    injected: &injected,
                    attempts: &attempts,
                };
                outcomes.push((i, expect(s, i, &sim, &before, &seen, now)));
            }
        }
    }
    // Expectations without `by` are checked once every run has stopped.
    dispatcher.idle().await;
    let runs = check::runs(journal.as_ref())
        .await
        .map_err(|e| engine(&e))?;
    for (i, x) in s.expect.iter().enumerate() {
        if x.by.is_none() {
            let now = clock.now_ms();
            let seen = Seen {
                runs: &runs,
                injected: &injected,
                attempts: &attempts,
            };
            outcomes.push((i, expect(s, i, &sim, &before, &seen, now)));
        }
    }
    // The release runs without faults: the undo check proves the undo, not luck.
    gate.disarm();
    lines.extend(gate.hits().iter().map(Line::fault));
    let runs = check::runs(journal.as_ref())
        .await
        .map_err(|e| engine(&e))?;
    phases.timeline = wall.elapsed();
    let contained_world = sim.snapshot();
    let mut release_lines = Vec::new();
    for run in &runs {
        if run.state.is_releasable() {
            let state = dispatcher.release(&run.id, "drill").await;
            release_lines.push(Line::release(clock.now_ms(), run, state));
        }
    }
    let after = sim.snapshot();
    phases.release = wall.elapsed() - phases.timeline;
    // In the scenario's order, whenever each was checked; the undo check last.
    outcomes.sort_by_key(|(i, _)| *i);
    let mut outcomes: Vec<_> = outcomes.into_iter().map(|(_, o)| o).collect();
    outcomes.push(check::restored(&before, &after));
    let runs_after = check::runs(journal.as_ref())
        .await
        .map_err(|e| engine(&e))?;
    lines.extend(report::step_lines(&runs));
    lines.extend(release_lines);
    let report = report::build(
        loaded,
        seed,
        lines,
        &injected,
        &runs,
        &runs_after,
        outcomes,
        &contained_world,
        &before,
    );
    phases.report = wall.elapsed() - phases.timeline - phases.release;
    Ok((report, phases))
}

/// What the drill has seen so far.
struct Seen<'a> {
    runs: &'a [cordon_engine::run::Run],
    injected: &'a [Injected],
    attempts: &'a [Attempt],
}

fn expect(
    s: &super::scenario::Scenario,
    i: usize,
    sim: &SimCloud,
    before: &crate::World,
    seen: &Seen<'_>,
    now_ms: u64,
) -> check::Outcome {
    let world = sim.snapshot();
    let ctx = check::Context {
        world: &world,
        before,
        runs: seen.runs,
        injected: seen.injected,
        attempts: seen.attempts,
        start_ms: START_MS,
        now_ms,
    };
    check::expectation(&s.expect[i], i, &ctx)
}

async fn act(
    loaded: &Loaded,
    i: usize,
    dispatcher: &Dispatcher,
    journal: &dyn Journal,
    injected: &mut Vec<Injected>,
    now: u64,
) -> Line {
    let e = &loaded.scenario.timeline[i];
    if let (Some(inject), Some(event)) = (&e.inject, &loaded.events[i]) {
        // Checked at load: it parses.
        let mut event: Value = serde_json::from_str(event).unwrap_or_default();
        if let Some(o) = event.as_object_mut() {
            o.insert(
                DRILL_MARKER.into(),
                Value::String(loaded.scenario.name.clone()),
            );
        }
        return inject_one(dispatcher, inject, event, injected, now).await;
    }
    let (d, approved) = match (&e.approve, &e.deny) {
        (Some(d), _) => (d, true),
        (_, Some(d)) => (d, false),
        _ => return Line::note(now, "nothing to do"),
    };
    let runs = check::runs(journal).await.unwrap_or_default();
    let Some(run) = runs.iter().rev().find(|r| r.playbook == d.playbook) else {
        return Line::decision(
            now,
            d,
            approved,
            None,
            Err(format!("no run of {}", d.playbook)),
        );
    };
    let result = dispatcher
        .decide(&run.id, &d.step, approved, &d.by)
        .await
        .map(|s| s.as_str().to_string())
        .map_err(|e| e.to_string());
    Line::decision(now, d, approved, Some(run), result)
}

async fn inject_one(
    dispatcher: &Dispatcher,
    inject: &super::scenario::Inject,
    event: Value,
    injected: &mut Vec<Injected>,
    now: u64,
) -> Line {
    let findings = match event::parse_value(event) {
        Ok(Parsed::Findings(b)) if !b.findings.is_empty() => b.findings,
        Ok(_) => return Line::note(now, "injected event carries no finding"),
        Err(e) => return Line::note(now, &format!("injected event refused: {e}")),
    };
    let mut runs = BTreeSet::new();
    let mut outcome = Vec::new();
    for fe in &findings {
        let submitted = match &inject.playbook {
            Some(p) => match dispatcher.runner().playbooks().get(p).cloned() {
                Some(pb) => {
                    let by = inject.by.clone().unwrap_or_else(|| "responder".into());
                    dispatcher
                        .start_run(&pb, fe, Trigger::Manual { by }, Admission::Rerun)
                        .await
                        .map(|s| vec![s])
                }
                None => {
                    outcome.push(format!("no playbook {p}"));
                    Ok(Vec::new())
                }
            },
            None => dispatcher.submit(fe, Instant::now()).await,
        };
        match submitted {
            Ok(s) => {
                for s in s {
                    outcome.push(format!("{} {}", s.playbook, s.status));
                    runs.extend(s.run_id);
                }
            }
            Err(e) => outcome.push(e.to_string()),
        }
        injected.push(Injected {
            finding: fe.finding.id.clone(),
            kind: fe.finding.kind.clone(),
            account: fe.finding.account.clone(),
            at_ms: now,
            runs: runs.iter().cloned().collect(),
        });
    }
    if outcome.is_empty() {
        outcome.push("no playbook matched".into());
    }
    let f = &findings[0].finding;
    Line {
        at_ms: now,
        event: "finding injected".into(),
        playbook: inject.playbook.clone().unwrap_or_default(),
        step: String::new(),
        account: f.account.clone(),
        resource: f
            .resources
            .first()
            .map(|r| r.id.clone())
            .unwrap_or_default(),
        outcome: outcome.join("; "),
        actor: "drill".into(),
    }
}
