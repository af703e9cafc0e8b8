//! Human-readable output. Everything here is also available as JSON with `--json`. Every line
//! goes through [`outln!`], which escapes control characters in finding data.

use anyhow::Result;
use cordon_engine::journal::Entry;
use cordon_engine::run::{Run, StepState};
use serde_json::Value;

use crate::out::outln;

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A trigger's conditions, `ok` or `NO` each; a trigger with `$or` alternatives lists each
/// alternative on its own, since it matches when every condition of one of them held.
fn conditions(list: &[Value]) -> Result<()> {
    let branch = |c: &Value| c["branch"].as_u64().unwrap_or(0);
    let alternatives = list.iter().map(branch).max().map_or(0, |m| m + 1);
    for b in 0..alternatives {
        let mine: Vec<&Value> = list.iter().filter(|c| branch(c) == b).collect();
        let indent = if alternatives > 1 {
            let held = mine.iter().all(|c| c["matched"] == Value::Bool(true));
            let verdict = if held {
                "every condition held"
            } else {
                "not all held"
            };
            outln!(
                "              alternative {} of {alternatives}: {verdict}",
                b + 1
            )?;
            "  "
        } else {
            ""
        };
        for c in mine {
            let mark = if c["matched"] == Value::Bool(true) {
                "ok "
            } else {
                "NO "
            };
            outln!(
                "              {indent}{mark} {} {}",
                s(&c["path"]),
                s(&c["expected"])
            )?;
        }
    }
    Ok(())
}

pub fn explain(findings: &[Value]) -> Result<()> {
    if findings.is_empty() {
        outln!("no findings")?;
    }
    for f in findings {
        outln!("finding {} ({})", s(&f["id"]), s(&f["source"]))?;
        outln!("  type      {}", s(&f["type"]))?;
        outln!(
            "  severity  {} {}",
            s(&f["severity"]),
            s(&f["severity_label"])
        )?;
        outln!(
            "  account   {}  region {}",
            s(&f["account"]),
            s(&f["region"])
        )?;
        for r in f["resources"].as_array().into_iter().flatten() {
            outln!("  resource  {} {}", s(&r["type"]), s(&r["id"]))?;
        }
        if let Some(u) = f.get("user_name") {
            outln!("  user      {} ({})", s(u), s(&f["user_type"]))?;
        }
        if let Some(st) = f.get("status") {
            outln!("  status    {}", s(st))?;
        }
        if f["sample"] == Value::Bool(true) {
            outln!(
                "  sample    yes: a sample finding GuardDuty generated; nothing starts on its own"
            )?;
        }
        for p in f["playbooks"].as_array().into_iter().flatten() {
            let verdict = match p.get("outcome") {
                Some(o) => {
                    let detail = o
                        .get("detail")
                        .map(|d| format!(" ({})", s(d)))
                        .unwrap_or_default();
                    format!("MATCH -> {}{detail}", s(&o["outcome"]))
                }
                None => "no match".into(),
            };
            outln!("  playbook  {:<24} {verdict}", s(&p["playbook"]))?;
            conditions(p["conditions"].as_array().map_or(&[], Vec::as_slice))?;
        }
    }
    Ok(())
}

pub fn plans(plans: &[Value], findings: usize) -> Result<()> {
    outln!(
        "dry run: {findings} finding(s), {} run(s) would start; nothing was changed",
        plans.len()
    )?;
    for p in plans {
        outln!()?;
        outln!(
            "playbook {} ({}) for finding {} in {} {}",
            s(&p["playbook"]),
            s(&p["mode"]),
            s(&p["finding"]),
            s(&p["account"]),
            s(&p["region"])
        )?;
        for st in p["steps"].as_array().into_iter().flatten() {
            let wait = if st["approve"] == Value::Bool(true) {
                " [waits for approval]"
            } else {
                ""
            };
            outln!("  {:<16} {}{wait}", s(&st["id"]), s(&st["action"]))?;
            if let Some(w) = st.get("when") {
                outln!("      when {}", s(w).trim())?;
            }
            for (k, v) in st["params"].as_object().into_iter().flatten() {
                outln!("      {k}: {}", param(v))?;
            }
        }
    }
    Ok(())
}

/// A planned parameter: its value, or, when it is made from an earlier step's output, its
/// template and the steps it waits for (see `cordon_engine::runner::PlannedStep::params`).
pub fn param(v: &Value) -> String {
    match (v.get("at_run_time"), v.get("after_steps")) {
        (Some(Value::String(t)), Some(Value::Array(after))) => {
            let after: Vec<String> = after.iter().map(s).collect();
            format!("{t}  (filled in at run time, after {})", after.join(", "))
        }
        _ => s(v),
    }
}

pub fn run_report(report: &[Value], findings: usize) -> Result<()> {
    if report.is_empty() {
        outln!("{findings} finding(s); no playbook matched")?;
    }
    for e in report {
        match (e.get("run"), s(&e["status"]).as_str()) {
            (Some(run), _) => {
                let run: Run = match serde_json::from_value(run.clone()) {
                    Ok(r) => r,
                    Err(_) => continue,
                };
                outln!(
                    "run {} ({}) for finding {}: {}",
                    run.id,
                    run.playbook,
                    s(&e["finding"]),
                    run.state.as_str()
                )?;
                steps(&run)?;
                if let Some(err) = &run.error {
                    outln!("  ! {err}")?;
                }
            }
            (None, "duplicate") => outln!(
                "{}: nothing started for finding {}: {}",
                s(&e["playbook"]),
                s(&e["finding"]),
                s(&e["why"])
            )?,
            (None, "when_error") => outln!(
                "{}: no run for finding {}: trigger `when` failed: {}",
                s(&e["playbook"]),
                s(&e["finding"]),
                s(&e["error"])
            )?,
            (None, status) => outln!("{}: no run ({status})", s(&e["playbook"]))?,
        }
    }
    Ok(())
}

fn steps(run: &Run) -> Result<()> {
    for st in &run.steps {
        let state = st.state.as_str();
        let extra = match st.state {
            StepState::Succeeded => st
                .output
                .as_ref()
                .map(|o| o.to_string())
                .unwrap_or_default(),
            StepState::WaitingApproval => {
                let need = st.approvals_needed();
                let have = st.approvals.len();
                let count = if need > 1 {
                    format!(" ({have} of {need} approvals)")
                } else {
                    String::new()
                };
                format!("-> cordon approve {} {} --by NAME{count}", run.id, st.id)
            }
            _ => st.error.clone().unwrap_or_default(),
        };
        let release = st
            .release
            .map(|r| format!(" [release: {}]", release_name(r)))
            .unwrap_or_default();
        outln!(
            "  {:<16} {:<26} {:<16} {extra}{release}",
            st.id,
            st.action,
            state
        )?;
        // What the responders were told (on --cloud sim the chat is simulated: this is the
        // only place the message shows).
        if let (StepState::Succeeded, Some(text)) = (st.state, chat_text(st)) {
            outln!("      message: {text}")?;
        }
    }
    Ok(())
}

/// The text a `notify.chat` step posted.
fn chat_text(st: &cordon_engine::run::StepRecord) -> Option<&str> {
    (st.action == "notify.chat")
        .then(|| st.params.as_ref()?.get("text")?.as_str())
        .flatten()
}

pub fn runs(runs: &[Value]) -> Result<()> {
    if runs.is_empty() {
        outln!("no runs")?;
    }
    for r in runs {
        outln!(
            "{}  {:<22} {:<17} {:<14} {}",
            s(&r["id"]),
            s(&r["playbook"]),
            s(&r["state"]),
            s(&r["account"]),
            s(&r["finding"])
        )?;
    }
    Ok(())
}

pub fn run(run: &Run, timeline: &[Entry]) -> Result<()> {
    outln!("run {}", run.id)?;
    outln!(
        "  playbook  {} v{} ({})",
        run.playbook,
        run.playbook_version,
        run.playbook_file
    )?;
    outln!("  state     {}", run.state.as_str())?;
    outln!(
        "  finding   {} in {} {}",
        s(&run.finding["id"]),
        run.account,
        run.region
    )?;
    if let Some(e) = &run.error {
        outln!("  error     {e}")?;
    }
    outln!("steps:")?;
    steps(run)?;
    evidence(run)?;
    outln!("timeline:")?;
    for e in timeline {
        outln!(
            "  {} {:<17} {:<14} {}",
            cordon_engine::clock::rfc3339(e.at_ms),
            e.state,
            e.step.as_deref().unwrap_or(""),
            e.what
        )?;
    }
    Ok(())
}

/// Each step's state read before its change (what release restores) and read back after it
/// (the proof), as journaled.
fn evidence(run: &Run) -> Result<()> {
    let read = |st: &&cordon_engine::run::StepRecord| st.prepared.is_some() || st.proof.is_some();
    if !run.steps.iter().any(|st| read(&st)) {
        return Ok(());
    }
    outln!("evidence (read before each change, and read back after it):")?;
    for st in run.steps.iter().filter(read) {
        if let Some(v) = &st.prepared {
            outln!("  {:<16} before  {v}", st.id)?;
        }
        if let Some(v) = &st.proof {
            outln!("  {:<16} after   {v}", st.id)?;
        }
    }
    Ok(())
}

pub fn release(run: &Run) -> Result<()> {
    outln!("run {}: {}", run.id, run.state.as_str())?;
    for st in run.steps.iter().rev().filter(|s| s.release.is_some()) {
        let detail = st.release_detail.as_ref();
        // A held step says in words which run still holds the resource.
        let detail = match detail.and_then(|d| d.get("message")) {
            Some(Value::String(m)) => m.clone(),
            _ => detail.map(|d| d.to_string()).unwrap_or_default(),
        };
        let release = release_name(
            st.release
                .unwrap_or(cordon_engine::run::ReleaseState::Started),
        );
        outln!("  {:<16} {:<26} {release} {detail}", st.id, st.action,)?;
    }
    if let Some(e) = &run.error {
        outln!("  ! {e}")?;
    }
    Ok(())
}

pub fn actions(list: &[Value]) -> Result<()> {
    for a in list {
        outln!("{}", s(&a["id"]))?;
        outln!("  {}", s(&a["description"]))?;
        let iam: Vec<String> = a["iam_actions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(s)
            .collect();
        if !iam.is_empty() {
            outln!("  IAM: {}", iam.join(", "))?;
        }
        outln!(
            "  idempotent: {}   undo: {}",
            a["idempotent"],
            s(&a["undo"])
        )?;
        for line in s(&a["example"]).lines() {
            outln!("    {line}")?;
        }
    }
    Ok(())
}

/// A run `cordon resume` acted on: what it did, the state now, and the steps.
pub fn resumed(run: &Run, what: &str) -> Result<()> {
    outln!(
        "run {} ({}) for finding {}: {what}; run is {}",
        run.id,
        run.playbook,
        s(&run.finding["id"]),
        run.state.as_str()
    )?;
    steps(run)?;
    if let Some(e) = &run.error {
        outln!("  ! {e}")?;
    }
    Ok(())
}

/// A release state as the journal and `--json` name it (`done`, `held`...).
fn release_name(r: cordon_engine::run::ReleaseState) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}
