//! Runs a loaded scenario: the engine's dispatcher against a [`SimCloud`] seeded from the
//! scenario, on a [`VirtualClock`] driven by a paused tokio runtime (the same code as
//! `cordon serve`, so a day of timeline takes milliseconds).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use cordon_engine::clock::{Clock, VirtualClock};
use cordon_engine::cloud::Cloud;
use cordon_engine::dispatch::{Dispatcher, Limits, RunUpdate};
use cordon_engine::event::{self, Parsed};
use cordon_engine::ids::SeededIds;
use cordon_engine::intake::DRILL_MARKER;
use cordon_engine::journal::{Admission, MemoryJournal};
use cordon_engine::playbook::PlaybookSet;
use cordon_engine::run::{RunState, StepState, Trigger};
use cordon_engine::runner::Runner;
use cordon_engine::script::{Limits as ScriptLimits, Sandbox};
use serde_json::Value;
use tokio::sync::broadcast;

use super::attacker::Attempt;
use super::check::{self, Injected};
use super::faults;
use super::gate::Gate;
use super::report::{self, Line, Report};
use super::room::{self, ApprovalAsk, FindingAsk, Room};
use super::scenario::{Decide, Loaded, ScenarioError};
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
    /// The room of an interactive drill left (end of input) before the drill ended.
    #[error("the drill stopped at {0}: the room gave no answer (end of input)")]
    RoomLeft(String),
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
    /// Peak resident set size of the process (Linux `VmHWM`, KiB) at the end of each phase:
    /// timeline, release, report. `None` where the system does not say.
    pub peak_rss_kb: [Option<u64>; 3],
}

/// Peak resident set size of this process so far (Linux `VmHWM`), in KiB; `None` where the
/// system does not say.
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs the drill on its own thread (a paused current-thread runtime of its own, so it can be
/// called from inside another runtime) and returns its report.
pub fn run(loaded: &Loaded, seed: u64) -> Result<Report, DrillError> {
    run_timed(loaded, seed).map(|(r, _)| r)
}

/// [`run`], with the wall-clock time of each phase.
pub fn run_timed(loaded: &Loaded, seed: u64) -> Result<(Report, Phases), DrillError> {
    run_with(loaded, seed, None)
}

/// [`run`] in facilitator mode: the virtual clock stops at each injected finding that would
/// start a run and at each step that waits for approval, and `room` decides (see
/// [`Room`]). The scenario's scripted `approve`/`deny` entries are skipped (the room decides
/// instead), and the report names who decided what.
///
/// Errors: as [`run`], and [`DrillError::RoomLeft`] when the room answers nothing.
pub fn run_interactive(
    loaded: &Loaded,
    seed: u64,
    room: &mut dyn Room,
) -> Result<Report, DrillError> {
    run_with(loaded, seed, Some(room)).map(|(r, _)| r)
}

fn run_with(
    loaded: &Loaded,
    seed: u64,
    room: Option<&mut dyn Room>,
) -> Result<(Report, Phases), DrillError> {
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
    loaded.check_playbooks(&set)?;
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .start_paused(true)
                    .build()
                    .map_err(|e| DrillError::Engine(e.to_string()))?;
                rt.block_on(drive(loaded, seed, set, sandbox, room))
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
    room: Option<&mut dyn Room>,
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
    let mut floor = room.map(|room| Floor {
        room,
        updates: dispatcher.subscribe(),
    });

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
        match floor.as_mut() {
            Some(f) => f.wait(origin + when, &dispatcher, &mut lines).await?,
            None => tokio::time::sleep_until(origin + when).await,
        }
        let now = clock.now_ms();
        match moment {
            Moment::Timeline(i) => {
                if let Some(a) = &s.timeline[i].attacker {
                    let attempt = a.attempt(&sim.snapshot(), &gate, START_MS, now).await;
                    lines.push(Line::attack(&attempt));
                    attempts.push(attempt);
                    continue;
                }
                let mut acting = Acting {
                    dispatcher: &dispatcher,
                    floor: floor.as_mut(),
                    lines: &mut lines,
                    injected: &mut injected,
                    now,
                };
                act(loaded, i, &mut acting).await?;
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
    // Expectations without `by` are checked once every run has stopped (in an interactive
    // drill: and the room decided every waiting step).
    match floor.as_mut() {
        Some(f) => f.settle(&dispatcher, &mut lines).await?,
        None => dispatcher.idle().await,
    }
    // Loaded once: nothing runs between here and the release (no task is driven, no virtual
    // time passes), so these are the runs as the timeline left them.
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
    phases.timeline = wall.elapsed();
    phases.peak_rss_kb[0] = peak_rss_kb();
    // The world as containment left it is compared now, not kept: one copy of the world (the
    // pre-drill one) is all a drill holds.
    let contained = sim.inspect(|w| report::Contained::of(&before, w));
    let mut release_lines = Vec::new();
    for run in &runs {
        if run.state.is_releasable() {
            let state = dispatcher.release(&run.id, "drill").await;
            release_lines.push(Line::release(clock.now_ms(), run, state));
        }
    }
    // In the scenario's order, whenever each was checked; the undo check last.
    outcomes.sort_by_key(|(i, _)| *i);
    let mut outcomes: Vec<_> = outcomes.into_iter().map(|(_, o)| o).collect();
    outcomes.push(sim.inspect(|after| check::restored(&before, after)));
    drop(before);
    phases.release = wall.elapsed() - phases.timeline;
    phases.peak_rss_kb[1] = peak_rss_kb();
    let after = check::states(journal.as_ref())
        .await
        .map_err(|e| engine(&e))?;
    lines.extend(report::step_lines(&runs));
    lines.extend(release_lines);
    let report = report::build(
        loaded, seed, lines, &injected, &runs, &after, outcomes, &contained,
    );
    phases.report = wall.elapsed() - phases.timeline - phases.release;
    phases.peak_rss_kb[2] = peak_rss_kb();
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
    sim.inspect(|world| {
        let ctx = check::Context {
            world,
            before,
            runs: seen.runs,
            injected: seen.injected,
            attempts: seen.attempts,
            start_ms: START_MS,
            now_ms,
        };
        check::expectation(&s.expect[i], i, &ctx)
    })
}

/// What a timeline entry acts with.
struct Acting<'a, 'r> {
    dispatcher: &'a Dispatcher,
    floor: Option<&'a mut Floor<'r>>,
    lines: &'a mut Vec<Line>,
    injected: &'a mut Vec<Injected>,
    now: u64,
}

async fn act(loaded: &Loaded, i: usize, a: &mut Acting<'_, '_>) -> Result<(), DrillError> {
    let now = a.now;
    let e = &loaded.scenario.timeline[i];
    if let (Some(inject), Some(mut event)) = (&e.inject, loaded.event(i)) {
        if let Some(o) = event.as_object_mut() {
            o.insert(
                DRILL_MARKER.into(),
                Value::String(loaded.scenario.name.clone()),
            );
        }
        return inject_one(a, inject, event).await;
    }
    let (d, approved) = match (&e.approve, &e.deny) {
        (Some(d), _) => (d, true),
        (_, Some(d)) => (d, false),
        _ => {
            a.lines.push(Line::note(now, "nothing to do"));
            return Ok(());
        }
    };
    if a.floor.is_some() {
        let verb = if approved { "approval" } else { "denial" };
        a.lines.push(Line::note(
            now,
            &format!(
                "scripted {verb} of {}/{} by {} skipped: the room decides",
                d.playbook, d.step, d.by
            ),
        ));
        return Ok(());
    }
    let journal = a.dispatcher.runner().journal();
    let latest = check::latest_run(journal, &d.playbook)
        .await
        .unwrap_or_default();
    let Some(run) = latest.as_ref() else {
        a.lines.push(Line::decision(
            now,
            d,
            approved,
            None,
            Err(format!("no run of {}", d.playbook)),
        ));
        return Ok(());
    };
    let result = a
        .dispatcher
        .decide(&run.id, &d.step, approved, &d.by)
        .await
        .map(|s| s.as_str().to_string())
        .map_err(|e| e.to_string());
    a.lines
        .push(Line::decision(now, d, approved, Some(run), result));
    Ok(())
}

async fn inject_one(
    a: &mut Acting<'_, '_>,
    inject: &super::scenario::Inject,
    event: Value,
) -> Result<(), DrillError> {
    let (now, dispatcher) = (a.now, a.dispatcher);
    let findings = match event::parse_value(event) {
        Ok(Parsed::Findings(b)) if !b.findings.is_empty() => b.findings,
        Ok(_) => {
            a.lines
                .push(Line::note(now, "injected event carries no finding"));
            return Ok(());
        }
        Err(e) => {
            a.lines
                .push(Line::note(now, &format!("injected event refused: {e}")));
            return Ok(());
        }
    };
    let by = inject.by.clone().unwrap_or_else(|| "responder".into());
    let named = match &inject.playbook {
        Some(p) => match dispatcher.runner().playbooks().get(p).cloned() {
            Some(pb) => Some(pb),
            None => {
                let f = &findings[0].finding;
                let mut line = injected_line(now, inject, f, format!("no playbook {p}"));
                line.actor = "drill".into();
                a.lines.push(line);
                return Ok(());
            }
        },
        None => None,
    };
    let mut outcome = Vec::new();
    let mut decisions = Vec::new();
    for fe in &findings {
        if let Some(floor) = a.floor.as_deref_mut() {
            let runner = dispatcher.runner();
            let proposed = room::proposed(
                &runner.playbooks(),
                runner.sandbox(),
                fe,
                named.as_ref().map(|p| (p, by.as_str())),
            );
            if !proposed.is_empty() {
                let at = report::at(now);
                let ask = FindingAsk {
                    at: &at,
                    finding: &fe.finding,
                    proposed: &proposed,
                };
                let verdict = floor.room.finding(&ask).ok_or(DrillError::RoomLeft(at))?;
                decisions.push(room_line(now, &fe.finding, &verdict));
                if !verdict.go {
                    outcome.push(format!("held back by {}", verdict.by));
                    a.injected.push(Injected::new(&fe.finding, now, Vec::new()));
                    continue;
                }
            }
        }
        let submitted = match &named {
            Some(pb) => dispatcher
                .start_run(pb, fe, Trigger::Manual { by: by.clone() }, Admission::Rerun)
                .await
                .map(|s| vec![s]),
            None => dispatcher.submit(fe, Instant::now()).await,
        };
        // This finding's runs only: the other findings of a batch have their own.
        let mut runs = BTreeSet::new();
        match submitted {
            Ok(s) => {
                for s in s {
                    outcome.push(format!("{} {}", s.playbook, s.status));
                    runs.extend(s.run_id);
                }
            }
            Err(e) => outcome.push(e.to_string()),
        }
        a.injected
            .push(Injected::new(&fe.finding, now, runs.into_iter().collect()));
    }
    if outcome.is_empty() {
        outcome.push("no playbook matched".into());
    }
    a.lines.extend(decisions);
    let line = injected_line(now, inject, &findings[0].finding, outcome.join("; "));
    a.lines.push(line);
    Ok(())
}

fn injected_line(
    now: u64,
    inject: &super::scenario::Inject,
    f: &cordon_engine::Finding,
    outcome: String,
) -> Line {
    // A playbook started by hand names the responder who started it.
    let actor = match &inject.playbook {
        Some(_) => inject.by.clone().unwrap_or_else(|| "responder".into()),
        None => "drill".into(),
    };
    let mut line = finding_line(now, "finding injected", f, outcome, actor);
    line.playbook = inject.playbook.clone().unwrap_or_default();
    line
}

/// The room's decision on a finding, as a timeline line.
fn room_line(now: u64, f: &cordon_engine::Finding, v: &room::Verdict) -> Line {
    let outcome = if v.go {
        format!("cordon acts on {}", f.kind)
    } else {
        format!("held back: cordon does not act on {}", f.kind)
    };
    finding_line(now, "room decision", f, outcome, v.by.clone())
}

/// A timeline line about a finding: its account and first resource.
fn finding_line(
    now: u64,
    event: &str,
    f: &cordon_engine::Finding,
    outcome: String,
    actor: String,
) -> Line {
    Line {
        at_ms: now,
        event: event.into(),
        playbook: String::new(),
        step: String::new(),
        account: f.account.clone(),
        resource: f
            .resources
            .first()
            .map(|r| r.id.clone())
            .unwrap_or_default(),
        outcome,
        actor,
    }
}

/// The room of an interactive drill, and the run updates it listens to.
struct Floor<'r> {
    room: &'r mut dyn Room,
    updates: broadcast::Receiver<RunUpdate>,
}

impl Floor<'_> {
    /// Sleeps (virtual time) until `deadline`, stopping the clock for the room at each step
    /// that starts waiting for approval meanwhile.
    async fn wait(
        &mut self,
        deadline: tokio::time::Instant,
        dispatcher: &Dispatcher,
        lines: &mut Vec<Line>,
    ) -> Result<(), DrillError> {
        self.attend(tokio::time::sleep_until(deadline), dispatcher, lines)
            .await
    }

    /// Waits until no run is being driven and the room has decided every waiting step.
    async fn settle(
        &mut self,
        dispatcher: &Dispatcher,
        lines: &mut Vec<Line>,
    ) -> Result<(), DrillError> {
        loop {
            self.attend(dispatcher.idle(), dispatcher, lines).await?;
            if !self.every_waiting(dispatcher, lines).await? {
                return Ok(());
            }
        }
    }

    /// Until `done` completes, asks the room about each step as it starts waiting for
    /// approval (about every waiting run when updates were missed).
    async fn attend(
        &mut self,
        done: impl std::future::Future<Output = ()>,
        dispatcher: &Dispatcher,
        lines: &mut Vec<Line>,
    ) -> Result<(), DrillError> {
        tokio::pin!(done);
        let mut open = true;
        loop {
            tokio::select! {
                biased;
                update = self.updates.recv(), if open => match update {
                    Ok(u) if u.settled && u.state == RunState::WaitingApproval => {
                        self.approvals(&u.run_id, dispatcher, lines).await?;
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.every_waiting(dispatcher, lines).await?;
                    }
                    Err(broadcast::error::RecvError::Closed) => open = false,
                },
                () = &mut done => return Ok(()),
            }
        }
    }

    /// Asks the room about every run waiting for approval; returns whether there was one.
    async fn every_waiting(
        &mut self,
        dispatcher: &Dispatcher,
        lines: &mut Vec<Line>,
    ) -> Result<bool, DrillError> {
        let states = check::states(dispatcher.runner().journal())
            .await
            .map_err(|e| DrillError::Engine(e.to_string()))?;
        // Run ids sort in creation order (the seeded id source is time-ordered): the room is
        // asked in the same order every time.
        let mut waiting: Vec<String> = states
            .into_iter()
            .filter(|(_, state)| *state == RunState::WaitingApproval)
            .map(|(id, _)| id)
            .collect();
        waiting.sort();
        for id in &waiting {
            self.approvals(id, dispatcher, lines).await?;
        }
        Ok(!waiting.is_empty())
    }

    /// Asks the room about run `id`'s waiting step until it no longer waits (approved by
    /// enough people, denied), telling the room why a decision was refused.
    async fn approvals(
        &mut self,
        id: &str,
        dispatcher: &Dispatcher,
        lines: &mut Vec<Line>,
    ) -> Result<(), DrillError> {
        let now = dispatcher.runner().clock().now_ms();
        loop {
            let run = match dispatcher.runner().journal().get(id).await {
                Ok(Some(run)) => run,
                Ok(None) => return Ok(()),
                Err(e) => return Err(DrillError::Engine(e.to_string())),
            };
            let waiting = run
                .steps
                .iter()
                .find(|s| s.state == StepState::WaitingApproval);
            let (RunState::WaitingApproval, Some(step)) = (run.state, waiting) else {
                return Ok(());
            };
            let at = report::at(now);
            let ask = ApprovalAsk {
                at: &at,
                run: &run,
                step,
            };
            let verdict = self.room.approval(&ask).ok_or(DrillError::RoomLeft(at))?;
            let result = dispatcher
                .decide(&run.id, &step.id, verdict.go, &verdict.by)
                .await
                .map(|s| s.as_str().to_string())
                .map_err(|e| e.to_string());
            match &result {
                Err(e) => self.room.tell(&format!("refused: {e}")),
                Ok(state) if state == RunState::WaitingApproval.as_str() => {
                    self.room.tell(&format!(
                        "{} approved; step {} needs {} approvals",
                        verdict.by,
                        step.id,
                        step.approvals_needed()
                    ))
                }
                Ok(_) => {}
            }
            let d = Decide {
                playbook: run.playbook.clone(),
                step: step.id.clone(),
                by: verdict.by.clone(),
            };
            lines.push(Line::decision(now, &d, verdict.go, Some(&run), result));
        }
    }
}
