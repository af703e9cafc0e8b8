//! One function per command. Each returns the process exit code.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};
use cordon_engine::actions;
use cordon_engine::event::{self, FindingEvent, Parsed};
use cordon_engine::journal::Journal;
use cordon_engine::playbook::{self, PlaybookSet};
use cordon_engine::run::{RunState, Trigger};
use cordon_engine::runner::{self, Runner};
use cordon_simulator::SimCloud;
use serde_json::{json, Value};

use crate::app::{load_errors, App};
use crate::embedded;
use crate::render;

/// Exit code when a run failed, was denied or needs attention.
pub const EXIT_RUN_FAILED: i32 = 3;

pub fn validate(app: &App, paths: &[PathBuf]) -> Result<i32> {
    let mut errors = Vec::new();
    let mut count = 0;
    let targets: Vec<PathBuf> = if paths.is_empty() {
        app.playbook_dir().into_iter().collect()
    } else {
        paths.to_vec()
    };
    if targets.is_empty() {
        let set = PlaybookSet::from_sources(&embedded::PLAYBOOKS, &app.sandbox)
            .map_err(|e| anyhow!("{}", load_errors(&e)))?;
        println!("ok: {} built-in playbook(s) valid", set.len());
        return Ok(0);
    }
    for path in targets {
        let result = if path.is_dir() {
            PlaybookSet::load_dir(&path, &app.sandbox).map(|s| s.len())
        } else {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            playbook::compile(&path.display().to_string(), &text, &app.sandbox).map(|_| 1)
        };
        match result {
            Ok(n) => count += n,
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        println!("ok: {count} playbook(s) valid");
        Ok(0)
    } else {
        eprintln!("{}", load_errors(&errors));
        Ok(1)
    }
}

fn read_event(path: Option<&Path>) -> Result<(String, Vec<u8>)> {
    match path {
        None => Ok((
            "built-in demo finding".into(),
            embedded::DEMO_EVENT.as_bytes().to_vec(),
        )),
        Some(p) if p == Path::new("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading the event from stdin")?;
            Ok(("stdin".into(), buf))
        }
        Some(p) => Ok((
            p.display().to_string(),
            std::fs::read(p).with_context(|| format!("reading event {}", p.display()))?,
        )),
    }
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
                eprintln!("{name}: rejected {r}");
            }
            Ok(Findings {
                rejected: batch.rejected.len(),
                list: batch.findings,
            })
        }
        Parsed::Ignored(i) => {
            eprintln!(
                "{name}: ignored: {} event from {}: {}",
                i.detail_type, i.source, i.reason
            );
            Ok(Findings {
                list: Vec::new(),
                rejected: 0,
            })
        }
    }
}

pub fn explain(app: &App, event: &Path, as_json: bool) -> Result<i32> {
    let set = app.playbooks()?;
    let parsed = findings(Some(event))?;
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
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        render::explain(&out);
    }
    Ok(parsed.exit(0))
}

pub async fn run(
    app: &App,
    event: Option<&Path>,
    playbook: Option<&str>,
    dry_run: bool,
    by: &str,
    as_json: bool,
) -> Result<i32> {
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
    let (cloud, sim) = app.cloud(false).await?;
    let runner = app.runner(cloud, set)?;
    let mut report = Vec::new();
    let mut code = 0;
    for fe in fes {
        seed(sim.as_deref(), fe)?;
        let submitted = match playbook {
            Some(id) => {
                let pb = runner
                    .playbooks()
                    .get(id)
                    .cloned()
                    .ok_or_else(|| anyhow!("no playbook {id}"))?;
                vec![runner.create_run(&pb, fe, Trigger::Manual { by: by.to_string() })?]
            }
            None => runner.submit(fe)?,
        };
        for s in submitted {
            let mut entry = serde_json::to_value(&s)?;
            entry["finding"] = json!(fe.finding.id);
            if let (Some(id), "created") = (&s.run_id, s.status.as_str()) {
                let state = runner.drive(id).await?;
                code = code.max(exit_for(state));
                let run = runner.journal().get(id)?;
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
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        render::run_report(&report, fes.len());
    }
    Ok(parsed.exit(code))
}

fn dry(
    app: &App,
    set: PlaybookSet,
    fes: &[FindingEvent],
    playbook: Option<&str>,
    as_json: bool,
) -> Result<i32> {
    let mut plans = Vec::new();
    for fe in fes {
        let chosen: Vec<_> = match playbook {
            Some(id) => set.get(id).cloned().into_iter().collect(),
            None => set
                .evaluate(fe, &app.sandbox)
                .into_iter()
                .filter(|m| m.outcome.starts_run())
                .map(|m| m.playbook)
                .collect(),
        };
        for pb in chosen {
            let mut p = serde_json::to_value(runner::plan(&app.sandbox, &pb, fe))?;
            p["finding"] = json!(fe.finding.id);
            plans.push(p);
        }
    }
    if as_json {
        println!("{}", serde_json::to_string_pretty(&plans)?);
    } else {
        render::plans(&plans, fes.len());
    }
    Ok(0)
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

pub fn runs_list(app: &App, as_json: bool) -> Result<i32> {
    let journal = app.journal()?;
    let mut runs = Vec::new();
    for id in journal.ids()? {
        if let Some(r) = journal.get(&id)? {
            runs.push(json!({
                "id": r.id, "playbook": r.playbook, "state": r.state, "account": r.account,
                "finding": r.finding.get("id"), "created_ms": r.created_ms, "updated_ms": r.updated_ms,
            }));
        }
    }
    if as_json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
    } else {
        render::runs(&runs);
    }
    Ok(0)
}

pub fn runs_show(app: &App, id: &str, as_json: bool) -> Result<i32> {
    let journal = app.journal()?;
    let run = journal
        .get(id)?
        .ok_or_else(|| anyhow!("no run {id} in {}", app.journal_dir().display()))?;
    let timeline = journal.timeline(id)?;
    if as_json {
        let mut v = serde_json::to_value(&run)?;
        if let Some(o) = v.as_object_mut() {
            o.remove("playbook_source");
        }
        v["timeline"] = serde_json::to_value(&timeline)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        render::run(&run, &timeline);
    }
    Ok(0)
}

pub async fn approve(app: &App, run: &str, step: &str, deny: bool, by: &str) -> Result<i32> {
    let runner = acting_runner(app).await?;
    let state = runner.decide(run, step, !deny, by).await?;
    println!(
        "run {run}: step {step} {} by {by}; run is {}",
        if deny { "denied" } else { "approved" },
        state.as_str()
    );
    Ok(exit_for(state))
}

pub async fn release(app: &App, run: &str, by: &str) -> Result<i32> {
    let runner = acting_runner(app).await?;
    let state = runner.release(run, by).await?;
    let r = runner
        .journal()
        .get(run)?
        .ok_or_else(|| anyhow!("no run {run}"))?;
    render::release(&r);
    Ok(exit_for(state))
}

pub async fn resume(app: &App) -> Result<i32> {
    let runner = acting_runner(app).await?;
    let mut code = 0;
    for (id, state) in runner.resume_all().await? {
        println!("{id}: {}", state.as_str());
        code = code.max(exit_for(state));
    }
    Ok(code)
}

/// A runner for commands that act on runs already journaled.
async fn acting_runner(app: &App) -> Result<Runner> {
    let (cloud, _) = app.cloud(true).await?;
    app.runner(cloud, app.playbooks()?)
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
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        render::actions(&list);
    }
    Ok(0)
}
