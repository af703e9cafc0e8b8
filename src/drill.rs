//! `cordon drill SCENARIO.yaml [--report FILE.md|.html|.json|.xml] [--seed N]`: a tabletop drill on the simulator
//! (never a real cloud) and a virtual clock; see `cordon_simulator::drill`.

use anyhow::Context as _;
use cordon_simulator::drill;

use crate::app::App;
use crate::args::{CloudKind, DrillArgs};
use crate::out::{errln, outln};

/// Runs the drill and writes its report. Exit 0 when every expectation is met, 1 when one is
/// missed (each named on stderr), 2 when the scenario or the playbooks are wrong.
///
/// The playbooks: `--playbooks` (or `CORDON_PLAYBOOKS`) when given, so a team can rehearse its
/// own set with a shipped scenario; else the scenario's `playbooks:`; else `playbooks/` above
/// the scenario's folder (where the shipped drills live).
pub fn drill(app: &App, args: &DrillArgs) -> anyhow::Result<i32> {
    if app.global.cloud == Some(CloudKind::Aws) {
        errln!("error: --cloud aws: a drill runs on the simulated organization only, never on a real cloud");
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
    let report = match drill::run(&loaded, args.seed) {
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
        }
    }
    for e in report.missed() {
        errln!("missed: {} (at {}): {}", e.expectation, e.at, e.evidence);
    }
    Ok(if report.passed { 0 } else { 1 })
}
