//! One function per command. Each returns the process exit code.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context as _, Result};
use cordon_engine::actions;
use cordon_engine::dispatch::Dispatcher;
use cordon_engine::event::{self, FindingEvent, Parsed};
use cordon_engine::journal::Admission;
use cordon_engine::journal::Journal;
use cordon_engine::playbook::{MatchOutcome, PlaybookSet};
use cordon_engine::run::{RunState, Trigger};
use cordon_engine::runner;
use cordon_simulator::SimCloud;
use serde_json::{json, Value};

use crate::app::{App, PlaybookErrors};
use crate::args::CloudKind;
use crate::embedded;
use crate::out::{self, errln, outln};
use crate::remote::{self, Remote, Runs};
use crate::render;
use crate::server;

/// Exit code when a run failed, was denied or needs attention.
pub const EXIT_RUN_FAILED: i32 = 3;
/// Exit code when a playbook's trigger script (`trigger.when`) failed on a finding, so the
/// playbook could not decide whether to run.
pub const EXIT_TRIGGER_FAILED: i32 = 4;
/// Exit code when `run` started nothing for a playbook because the finding already has a run
/// of it (without `--rerun`, or with `--rerun` while that run is still open); the output names
/// that run and its state.
pub const EXIT_NOT_STARTED: i32 = 5;

/// How `cordon run` runs.
pub struct RunHow {
    /// Print the plan and change nothing.
    pub dry_run: bool,
    /// Start again a finding whose earlier run has finished.
    pub rerun: bool,
    /// Who starts it.
    pub by: String,
    /// Print JSON.
    pub json: bool,
}

pub fn validate(app: &App, paths: &[PathBuf]) -> Result<i32> {
    let targets: Vec<PathBuf> = if paths.is_empty() {
        app.playbook_dir()?.into_iter().collect()
    } else {
        paths.to_vec()
    };
    if targets.is_empty() {
        let set = PlaybookSet::from_sources(&embedded::PLAYBOOKS, &app.sandbox)
            .map_err(PlaybookErrors)?;
        outln!("ok: {} built-in playbook(s) valid", set.len())?;
        return Ok(0);
    }
    let set = PlaybookSet::load_paths(&targets, &app.sandbox).map_err(PlaybookErrors)?;
    outln!("ok: {} playbook(s) valid", set.len())?;
    Ok(0)
}

/// Reads an event, at most [`event::MAX_INPUT_BYTES`]: reading stops there (`/dev/zero` and an
/// endless stdin end with an error, not with memory exhausted).
fn read_event(path: Option<&Path>) -> Result<(String, Vec<u8>)> {
    let (name, input): (String, Box<dyn Read>) = match path {
        None => {
            return Ok((
                "built-in demo finding".into(),
                embedded::DEMO_EVENT.as_bytes().to_vec(),
            ))
        }
        Some(p) if p == Path::new("-") => ("stdin".into(), Box::new(std::io::stdin())),
        Some(p) => (
            p.display().to_string(),
            Box::new(
                std::fs::File::open(p).with_context(|| format!("reading event {}", p.display()))?,
            ),
        ),
    };
    let limit = event::MAX_INPUT_BYTES;
    let mut buf = Vec::new();
    input
        .take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("reading event {name}"))?;
    if buf.len() > limit {
        bail!("event {name} is larger than {limit} bytes; an EventBridge event is at most 256 KiB");
    }
    Ok((name, buf))
}

/// Exit code when some finding of the input was rejected (the others were still processed).
pub const EXIT_REJECTED: i32 = 1;

/// The findings of an event. A non-finding event is reported, not an error; each finding of a
/// batch that could not be read is reported on stderr with its index and JSON path, and counted,
/// while the others go on.
struct Findings {
    list: Vec<FindingEvent>,
    rejected: usize,
}

impl Findings {
    /// `code`, raised to [`EXIT_REJECTED`] when a finding was rejected.
    fn exit(&self, code: i32) -> i32 {
        if self.rejected > 0 {
            code.max(EXIT_REJECTED)
        } else {
            code
        }
    }
}

fn findings(path: Option<&Path>) -> Result<Findings> {
    let (name, bytes) = read_event(path)?;
    match event::parse(&bytes).map_err(|e| anyhow!("{name}: {e}"))? {
        Parsed::Findings(batch) => {
            for r in &batch.rejected {
                errln!("{name}: rejected {r}");
            }
            Ok(Findings {
                rejected: batch.rejected.len(),
                list: batch.findings,
            })
        }
        Parsed::Ignored(i) => {
            errln!(
                "{name}: ignored: {} event from {}: {}",
                i.detail_type,
                i.source,
                i.reason
            );
            Ok(Findings {
                list: Vec::new(),
                rejected: 0,
            })
        }
    }
}

pub fn explain(app: &App, event: Option<&Path>, as_json: bool) -> Result<i32> {
    let set = app.playbooks()?;
    let parsed = findings(event)?;
    let mut out = Vec::new();
    for fe in &parsed.list {
        let mut v = serde_json::to_value(&fe.finding)?;
        v["playbooks"] = serde_json::to_value(set.explain(fe, &app.sandbox))?;
        if let Some(a) = &fe.custom_action {
            v["custom_action"] = json!({"name": a.name, "arn": a.arn});
        }
        out.push(v);
    }
    if as_json {
        out::json(&out)?;
    } else {
        render::explain(&out)?;
    }
    let mut code = 0;
    for (fe, v) in parsed.list.iter().zip(&out) {
        for p in v["playbooks"].as_array().into_iter().flatten() {
            if p["outcome"]["outcome"] == "when_error" {
                let (id, msg) = (p["playbook"].as_str(), p["outcome"]["detail"].as_str());
                code = trigger_failed(id.unwrap_or("?"), fe, msg.unwrap_or("?"));
            }
        }
    }
    Ok(parsed.exit(code))
}

/// Says on stderr that a playbook's trigger script failed for a finding; returns the exit code.
fn trigger_failed(playbook: &str, fe: &FindingEvent, message: &str) -> i32 {
    errln!(
        "error: playbook {playbook}: trigger `when` failed for finding {}: {message}",
        fe.finding.id
    );
    EXIT_TRIGGER_FAILED
}

pub async fn run(
    app: &App,
    event: Option<&Path>,
    playbook: Option<&str>,
    how: &RunHow,
) -> Result<i32> {
    let (dry_run, by, as_json) = (how.dry_run, how.by.as_str(), how.json);
    let admission = if how.rerun {
        Admission::Rerun
    } else {
        Admission::Deliver
    };
    if event.is_none() && !dry_run && app.global.cloud == Some(CloudKind::Aws) {
        bail!("the built-in demo finding is for --cloud sim only; to act on AWS, give the finding: --event FILE (or - for stdin)");
    }
    let set = app.playbooks()?;
    let parsed = findings(event)?;
    let fes = &parsed.list;
    if let Some(id) = playbook {
        if set.get(id).is_none() {
            let ids: Vec<&str> = set.iter().map(|p| p.id.as_str()).collect();
            bail!("no playbook {id:?}; loaded: {}", ids.join(", "));
        }
    }
    if dry_run {
        return dry(app, set, fes, playbook, as_json).map(|code| parsed.exit(code));
    }
    let (cloud, acting) = app.cloud(false).await?;
    let dispatcher = app.dispatcher(cloud, set)?;
    let mut report = Vec::new();
    let mut code = 0;
    for fe in fes {
        seed(acting.sim(), fe)?;
        let submitted = match playbook {
            Some(id) => {
                let pb = dispatcher
                    .runner()
                    .playbooks()
                    .get(id)
                    .cloned()
                    .ok_or_else(|| anyhow!("no playbook {id}"))?;
                let trigger = Trigger::Manual { by: by.to_string() };
                vec![dispatcher.start_run(&pb, fe, trigger, admission).await?]
            }
            None => dispatcher.submit_as(fe, Instant::now(), admission).await?,
        };
        for s in submitted {
            let mut entry = serde_json::to_value(&s)?;
            entry["finding"] = json!(fe.finding.id);
            if let Some(e) = &s.error {
                entry["error"] = json!(e);
                code = code.max(trigger_failed(&s.playbook, fe, e));
            }
            if let (Some(id), "duplicate") = (&s.run_id, s.status.as_str()) {
                let state = dispatcher.runner().load(id).await?.state;
                entry["existing_state"] = json!(state.as_str());
                entry["why"] = json!(not_started(id, state, how.rerun));
                code = code.max(EXIT_NOT_STARTED);
            }
            if let (Some(id), true) = (&s.run_id, s.created()) {
                let state = dispatcher.wait(id).await?;
                code = code.max(exit_for(state));
                let run = dispatcher.runner().journal().get(id).await?;
                // A step that failed under `on_error: continue` is still a failure to report.
                let failed_step = run
                    .iter()
                    .flat_map(|r| &r.steps)
                    .any(|s| s.state == cordon_engine::run::StepState::Failed);
                if failed_step {
                    code = EXIT_RUN_FAILED;
                }
                entry["state"] = json!(state.as_str());
                entry["run"] = serde_json::to_value(run)?;
            }
            report.push(entry);
        }
    }
    if as_json {
        out::json(&report)?;
    } else {
        render::run_report(&report, fes.len())?;
    }
    Ok(parsed.exit(code))
}

/// Why a run by hand started nothing: the finding already has run `id`, now in `state`.
fn not_started(id: &str, state: RunState, rerun: bool) -> String {
    let open = cordon_engine::journal::is_open(state);
    let state = state.as_str();
    match (open, rerun) {
        (false, _) => format!("duplicate of run {id} ({state}); use --rerun to run it again"),
        (true, false) => format!(
            "duplicate of run {id}, which is still {state}; once it has finished, --rerun runs it again"
        ),
        (true, true) => format!(
            "run {id} of this finding is still {state}; --rerun starts a new run only once it has finished (decide or release it first)"
        ),
    }
}

fn dry(
    app: &App,
    set: PlaybookSet,
    fes: &[FindingEvent],
    playbook: Option<&str>,
    as_json: bool,
) -> Result<i32> {
    let mut plans = Vec::new();
    let mut code = 0;
    for fe in fes {
        let chosen: Vec<_> = match playbook {
            Some(id) => set.get(id).cloned().into_iter().collect(),
            None => {
                let matches = set.evaluate(fe, &app.sandbox);
                for m in &matches {
                    if let MatchOutcome::WhenError(e) = &m.outcome {
                        code = trigger_failed(&m.playbook.id, fe, e);
                    }
                }
                matches
                    .into_iter()
                    .filter(|m| m.outcome.starts_run())
                    .map(|m| m.playbook)
                    .collect()
            }
        };
        for pb in chosen {
            let mut p = serde_json::to_value(runner::plan(&app.sandbox, &pb, fe))?;
            p["finding"] = json!(fe.finding.id);
            plans.push(p);
        }
    }
    if as_json {
        out::json(&plans)?;
    } else {
        render::plans(&plans, fes.len())?;
    }
    Ok(code)
}

/// The simulator creates what a finding names the first time it is seen.
fn seed(sim: Option<&SimCloud>, fe: &FindingEvent) -> Result<()> {
    if let Some(sim) = sim {
        sim.seed(&fe.finding)?;
    }
    Ok(())
}

fn exit_for(state: RunState) -> i32 {
    match state {
        RunState::Failed
        | RunState::Denied
        | RunState::NeedsAttention
        | RunState::ReleaseFailed => EXIT_RUN_FAILED,
        _ => 0,
    }
}

pub async fn runs_list(app: &App, as_json: bool) -> Result<i32> {
    let runs = match remote::runs(app)? {
        Runs::Server(remote) => remote.list().await?,
        Runs::Local => {
            let journal = app.journal()?;
            let mut runs = Vec::new();
            for id in journal.ids().await? {
                if let Some(r) = journal.get(&id).await? {
                    runs.push(server::summary(&r));
                }
            }
            runs
        }
    };
    if as_json {
        out::json(&runs)?;
    } else {
        render::runs(&runs)?;
    }
    Ok(0)
}

pub async fn runs_show(app: &App, id: &str, as_json: bool) -> Result<i32> {
    let (run, timeline) = match remote::runs(app)? {
        Runs::Server(remote) => remote.show(id).await?,
        Runs::Local => {
            let journal = app.journal()?;
            let run = journal
                .get(id)
                .await?
                .ok_or_else(|| anyhow!("no run {id} in {}", app.journal_dir().display()))?;
            (run, journal.timeline(id).await?)
        }
    };
    if as_json {
        let mut v = serde_json::to_value(&run)?;
        if let Some(o) = v.as_object_mut() {
            o.remove("playbook_source");
        }
        v["timeline"] = serde_json::to_value(&timeline)?;
        out::json(&v)?;
    } else {
        render::run(&run, &timeline)?;
    }
    Ok(0)
}

pub async fn approve(app: &App, run: &str, step: &str, deny: bool, by: &str) -> Result<i32> {
    let (state, waiting) = match remote::runs(app)? {
        Runs::Server(remote) => match remote.approve(run, step, !deny, by).await? {
            RunState::WaitingApproval => {
                (RunState::WaitingApproval, Some(remote.show(run).await?.0))
            }
            other => (other, None),
        },
        Runs::Local => {
            let dispatcher = acting_dispatcher(app).await?;
            match dispatcher.decide(run, step, !deny, by).await? {
                RunState::WaitingApproval => (
                    RunState::WaitingApproval,
                    Some(dispatcher.runner().load(run).await?),
                ),
                RunState::Running => (dispatcher.wait(run).await?, None),
                other => (other, None),
            }
        }
    };
    if let Some(r) = waiting {
        // A step that needs more than one person: say how far it got.
        let (have, need) = r
            .step(step)
            .map_or((0, 0), |s| (s.approvals.len(), s.approvals_needed()));
        outln!("run {run}: step {step} approved by {by}: {have} of {need} approvals; waiting for another approver")?;
        return Ok(0);
    }
    outln!(
        "run {run}: step {step} {} by {by}; run is {}",
        if deny { "denied" } else { "approved" },
        state.as_str()
    )?;
    Ok(exit_for(state))
}

pub async fn release(app: &App, run: &str, by: &str) -> Result<i32> {
    let (state, r) = match remote::runs(app)? {
        Runs::Server(remote) => remote.release(run, by).await?,
        Runs::Local => {
            let dispatcher = acting_dispatcher(app).await?;
            let state = dispatcher.release(run, by).await?;
            let r = dispatcher
                .runner()
                .journal()
                .get(run)
                .await?
                .ok_or_else(|| anyhow!("no run {run}"))?;
            (state, r)
        }
    };
    render::release(&r)?;
    Ok(exit_for(state))
}

/// Applies approval timeouts that passed, then drives every unfinished run; says for each run
/// what happened, or that there was nothing to do.
pub async fn resume(app: &App) -> Result<i32> {
    if let Runs::Server(remote) = remote::runs(app)? {
        return resume_remote(app, &remote).await;
    }
    let dispatcher = acting_dispatcher(app).await?;
    let resumed = dispatcher.start().await?;
    dispatcher.idle().await;
    let mut code = 0;
    let journal = dispatcher.runner().journal();
    let load = |id: String| async move {
        journal
            .get(&id)
            .await?
            .ok_or_else(|| anyhow!("no run {id}"))
    };
    for e in &resumed.expired {
        let run = load(e.run_id.clone()).await?;
        let what = format!(
            "approval step {} timed out; its default ({}) was applied",
            e.step,
            if e.approved { "approve" } else { "deny" }
        );
        render::resumed(&run, &what)?;
        code = code.max(exit_for(run.state));
    }
    let expired = |id: &String| resumed.expired.iter().any(|e| &e.run_id == id);
    for id in resumed.driven.iter().filter(|id| !expired(id)) {
        let run = load(id.clone()).await?;
        render::resumed(&run, "resumed")?;
        code = code.max(exit_for(run.state));
    }
    if resumed.expired.is_empty() && resumed.driven.is_empty() {
        match resumed.waiting.len() {
            0 => outln!("nothing to resume: no unfinished run, and no approval past its timeout")?,
            n => {
                outln!("nothing to resume: {n} run(s) waiting for approval, none past its timeout")?
            }
        }
    }
    Ok(code)
}

/// A dispatcher for commands that act on runs already journaled.
async fn acting_dispatcher(app: &App) -> Result<Dispatcher> {
    let (cloud, _) = app.cloud(true).await?;
    app.dispatcher(cloud, app.playbooks()?)
}

/// `resume` while a server holds the journal: the server resumed its runs at start; this asks
/// it to apply timeouts and pick up open runs again, and says what it did.
async fn resume_remote(app: &App, remote: &Remote) -> Result<i32> {
    let resumed = remote.resume().await?;
    let mut code = 0;
    let expired = resumed["expired"].as_array().cloned().unwrap_or_default();
    for e in &expired {
        let id = e["run_id"].as_str().unwrap_or_default();
        let (run, _) = remote.show(id).await?;
        let what = format!(
            "approval step {} timed out; its default ({}) was applied",
            e["step"].as_str().unwrap_or_default(),
            if e["approved"] == true {
                "approve"
            } else {
                "deny"
            }
        );
        render::resumed(&run, &what)?;
        code = code.max(exit_for(run.state));
    }
    let driven = resumed["driven"].as_array().map_or(0, Vec::len);
    let waiting = resumed["waiting"].as_array().map_or(0, Vec::len);
    outln!(
        "cordon serve (journal {}) drives {driven} run(s); {waiting} wait(s) for approval",
        app.journal_dir().display()
    )?;
    Ok(code)
}

pub fn actions_list(as_json: bool) -> Result<i32> {
    let list: Vec<Value> = actions::all()
        .iter()
        .map(|a| {
            let m = a.meta();
            json!({
                "id": m.id, "description": m.description, "iam_actions": m.iam_actions,
                "params": m.params.iter().map(|p| json!({"name": p.name, "required": p.required, "description": p.description})).collect::<Vec<_>>(),
                "idempotent": m.idempotent, "undo": m.undo, "example": m.example,
            })
        })
        .collect();
    if as_json {
        out::json(&list)?;
    } else {
        render::actions(&list)?;
    }
    Ok(0)
}
