//! `cordon drill SCENARIO.yaml [--report FILE.md|.html|.json|.xml] [--seed N] [--interactive]`:
//! a tabletop drill on the simulator (never a real cloud) and a virtual clock; see
//! `cordon_simulator::drill`.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use cordon_simulator::drill;

use crate::app::App;
use crate::args::{CloudKind, DrillArgs};
use crate::out::{errln, outln};
use crate::room::Terminal;

/// Runs the drill and writes its report. Exit 0 when every expectation is met, 1 when one is
/// missed (each named on stderr), 2 when the scenario or the playbooks are wrong.
///
/// The playbooks: `--playbooks` (or `CORDON_PLAYBOOKS`) when given, so a team can rehearse its
/// own set with a shipped scenario; else the scenario's `playbooks:`; else `playbooks/` above
/// the scenario's folder (where the shipped drills live).
///
/// `--interactive` needs a terminal on stdin and stdout (the room reads and types there); it
/// exits 2 otherwise, and 2 when the room leaves (end of input) before the drill ends.
pub fn drill(app: &App, args: &DrillArgs) -> anyhow::Result<i32> {
    if app.global.cloud == Some(CloudKind::Aws) {
        errln!("error: --cloud aws: a drill runs on the simulated organization only, never on a real cloud");
        return Ok(2);
    }
    if args.interactive && !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        errln!("error: --interactive needs a terminal on stdin and stdout: the room answers there (without it, the scenario's scripted decisions apply)");
        return Ok(2);
    }
    let mut loaded = match drill::load(&args.scenario) {
        Ok(l) => l,
        Err(e) => {
            errln!("error: {e}");
            return Ok(2);
        }
    };
    if let Some(dir) = &app.global.playbooks {
        loaded.playbooks = dir.clone();
    }
    let result = if args.interactive {
        drill::run_interactive(&loaded, args.seed, &mut Terminal::new())
    } else {
        drill::run(&loaded, args.seed)
    };
    let report = match result {
        Ok(r) => r,
        Err(e @ drill::DrillError::Engine(_)) => return Err(e.into()),
        Err(e) => {
            errln!("error: {e}");
            return Ok(2);
        }
    };
    match &args.report {
        None => {
            for line in report.markdown().lines() {
                outln!("{line}")?;
            }
        }
        Some(path) => {
            let text = match path.extension().and_then(|e| e.to_str()) {
                Some("json") => report.json(),
                Some("xml") => report.junit(),
                Some("html" | "htm") => report.html(),
                _ => report.markdown(),
            };
            std::fs::write(path, text)
                .with_context(|| format!("writing the report to {}", path.display()))?;
            let met = report.expectations.iter().filter(|e| e.met).count();
            outln!(
                "{}: {} of {} expectations met; report written to {}",
                if report.passed { "PASSED" } else { "FAILED" },
                met,
                report.expectations.len(),
                path.display()
            )?;
        }
    }
    for e in report.missed() {
        errln!("missed: {} (at {}): {}", e.expectation, e.at, e.evidence);
    }
    Ok(if report.passed { 0 } else { 1 })
}
