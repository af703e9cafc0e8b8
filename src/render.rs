//! Human-readable output. Everything here is also available as JSON with `--json`.

use cordon_engine::journal::Entry;
use cordon_engine::run::{Run, StepState};
use serde_json::Value;

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

pub fn explain(findings: &[Value]) {
    if findings.is_empty() {
        println!("no findings");
    }
    for f in findings {
        println!("finding {} ({})", s(&f["id"]), s(&f["source"]));
        println!("  type      {}", s(&f["type"]));
        println!(
            "  severity  {} {}",
            s(&f["severity"]),
            s(&f["severity_label"])
        );
        println!(
            "  account   {}  region {}",
            s(&f["account"]),
            s(&f["region"])
        );
        for r in f["resources"].as_array().into_iter().flatten() {
            println!("  resource  {} {}", s(&r["type"]), s(&r["id"]));
        }
        if let Some(u) = f.get("user_name") {
            println!("  user      {} ({})", s(u), s(&f["user_type"]));
        }
        if let Some(st) = f.get("status") {
            println!("  status    {}", s(st));
        }
        if f["sample"] == Value::Bool(true) {
            println!(
                "  sample    yes: a sample finding GuardDuty generated; nothing starts on its own"
            );
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
            println!("  playbook  {:<24} {verdict}", s(&p["playbook"]));
            for c in p["conditions"].as_array().into_iter().flatten() {
                let mark = if c["matched"] == Value::Bool(true) {
                    "ok "
                } else {
                    "NO "
                };
                println!(
                    "              {mark} {} {}",
                    s(&c["path"]),
                    s(&c["expected"])
                );
            }
        }
    }
}

pub fn plans(plans: &[Value], findings: usize) {
    println!(
        "dry run: {findings} finding(s), {} run(s) would start; nothing was changed",
        plans.len()
    );
    for p in plans {
        println!(
            "\nplaybook {} ({}) for finding {} in {} {}",
            s(&p["playbook"]),
            s(&p["mode"]),
            s(&p["finding"]),
            s(&p["account"]),
            s(&p["region"])
        );
        for st in p["steps"].as_array().into_iter().flatten() {
            let wait = if st["approve"] == Value::Bool(true) {
                " [waits for approval]"
            } else {
                ""
            };
            println!("  {:<16} {}{wait}", s(&st["id"]), s(&st["action"]));
            if let Some(w) = st.get("when") {
                println!("      when {}", s(w).trim());
            }
            for (k, v) in st["params"].as_object().into_iter().flatten() {
                println!("      {k}: {}", s(v));
            }
        }
    }
}

pub fn run_report(report: &[Value], findings: usize) {
    if report.is_empty() {
        println!("{findings} finding(s); no playbook matched");
    }
    for e in report {
        match (e.get("run"), s(&e["status"]).as_str()) {
            (Some(run), _) => {
                let run: Run = match serde_json::from_value(run.clone()) {
                    Ok(r) => r,
                    Err(_) => continue,
                };
                println!(
                    "run {} ({}) for finding {}: {}",
                    run.id,
                    run.playbook,
                    s(&e["finding"]),
                    run.state.as_str()
                );
                steps(&run);
                if let Some(err) = &run.error {
                    println!("  ! {err}");
                }
            }
            (None, "duplicate") => println!(
                "{}: finding {} already has run {} (duplicate delivery)",
                s(&e["playbook"]),
                s(&e["finding"]),
                s(&e["run_id"])
            ),
            (None, status) => println!("{}: no run ({status})", s(&e["playbook"])),
        }
    }
}

fn steps(run: &Run) {
    for st in &run.steps {
        let state = format!("{:?}", st.state).to_lowercase();
        let extra = match st.state {
            StepState::Succeeded => st
                .output
                .as_ref()
                .map(|o| o.to_string())
                .unwrap_or_default(),
            StepState::WaitingApproval => {
                format!("-> cordon approve {} {} --by NAME", run.id, st.id)
            }
            _ => st.error.clone().unwrap_or_default(),
        };
        let release = st
            .release
            .map(|r| format!(" [release: {r:?}]"))
            .unwrap_or_default();
        println!(
            "  {:<16} {:<26} {:<16} {extra}{release}",
            st.id, st.action, state
        );
    }
}

pub fn runs(runs: &[Value]) {
    if runs.is_empty() {
        println!("no runs");
    }
    for r in runs {
        println!(
            "{}  {:<22} {:<17} {:<14} {}",
            s(&r["id"]),
            s(&r["playbook"]),
            s(&r["state"]),
            s(&r["account"]),
            s(&r["finding"])
        );
    }
}

pub fn run(run: &Run, timeline: &[Entry]) {
    println!("run {}", run.id);
    println!(
        "  playbook  {} v{} ({})",
        run.playbook, run.playbook_version, run.playbook_file
    );
    println!("  state     {}", run.state.as_str());
    println!(
        "  finding   {} in {} {}",
        s(&run.finding["id"]),
        run.account,
        run.region
    );
    if let Some(e) = &run.error {
        println!("  error     {e}");
    }
    println!("steps:");
    steps(run);
    println!("timeline:");
    for e in timeline {
        println!(
            "  {} {:<17} {:<14} {}",
            cordon_engine::clock::rfc3339(e.at_ms),
            e.state,
            e.step.as_deref().unwrap_or(""),
            e.what
        );
    }
}

pub fn release(run: &Run) {
    println!("run {}: {}", run.id, run.state.as_str());
    for st in run.steps.iter().rev().filter(|s| s.release.is_some()) {
        println!(
            "  {:<16} {:<26} {:?} {}",
            st.id,
            st.action,
            st.release
                .unwrap_or(cordon_engine::run::ReleaseState::Started),
            st.release_detail
                .as_ref()
                .map(|d| d.to_string())
                .unwrap_or_default()
        );
    }
    if let Some(e) = &run.error {
        println!("  ! {e}");
    }
}

pub fn actions(list: &[Value]) {
    for a in list {
        println!("{}\n  {}", s(&a["id"]), s(&a["description"]));
        let iam: Vec<String> = a["iam_actions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(s)
            .collect();
        if !iam.is_empty() {
            println!("  IAM: {}", iam.join(", "));
        }
        println!(
            "  idempotent: {}   undo: {}",
            a["idempotent"],
            s(&a["undo"])
        );
        for line in s(&a["example"]).lines() {
            println!("    {line}");
        }
    }
}
