//! The drill's report: a timeline on virtual time, per finding the time to first action and to
//! containment (MTTC), every expectation with its evidence. Markdown, JSON, JUnit XML; the same
//! scenario and seed give the same bytes (virtual time, seeded ids, ordered maps).

use std::collections::HashMap;
use std::fmt::Write as _;

use cordon_engine::run::{Run, RunState};
use serde::Serialize;

use super::check::{self, Injected, Outcome};
use super::run::START_MS;
use super::scenario::{Decide, Loaded};
use crate::world::World;

/// One timeline line.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// When (epoch ms, virtual; the report shows T+).
    #[serde(skip)]
    pub at_ms: u64,
    /// What happened.
    pub event: String,
    /// Playbook id.
    pub playbook: String,
    /// Step id.
    pub step: String,
    /// Account.
    pub account: String,
    /// Resource acted on.
    pub resource: String,
    /// Outcome.
    pub outcome: String,
    /// Who: `drill`, `cordon`, a responder, `timeout`.
    pub actor: String,
}

impl Line {
    /// A note from the drill.
    pub fn note(at_ms: u64, text: &str) -> Line {
        Line {
            at_ms,
            event: "note".into(),
            playbook: String::new(),
            step: String::new(),
            account: String::new(),
            resource: String::new(),
            outcome: text.into(),
            actor: "drill".into(),
        }
    }

    /// A responder's decision.
    pub fn decision(
        at_ms: u64,
        d: &Decide,
        approved: bool,
        run: Option<&Run>,
        result: Result<String, String>,
    ) -> Line {
        Line {
            at_ms,
            event: if approved { "approve" } else { "deny" }.into(),
            playbook: d.playbook.clone(),
            step: d.step.clone(),
            account: run.map(|r| r.account.clone()).unwrap_or_default(),
            resource: String::new(),
            outcome: match result {
                Ok(state) => format!("run {state}"),
                Err(e) => format!("refused: {e}"),
            },
            actor: d.by.clone(),
        }
    }

    /// The attacker's move.
    pub fn attack(a: &super::attacker::Attempt) -> Line {
        let verdict = match a.allowed {
            Some(true) => "ALLOWED",
            Some(false) => "denied",
            None => "undecided",
        };
        Line {
            at_ms: a.at_ms,
            event: format!("attacker: {}", a.what),
            playbook: String::new(),
            step: String::new(),
            account: a.account.clone(),
            resource: a.id.clone().unwrap_or_default(),
            outcome: format!("{verdict}: {}", a.reason),
            actor: "attacker".into(),
        }
    }

    /// A call an injected fault hit.
    pub fn fault(h: &super::faults::Hit) -> Line {
        Line {
            at_ms: h.at_ms,
            event: "fault hit".into(),
            playbook: String::new(),
            step: String::new(),
            account: h.account.clone(),
            resource: h.operation.clone(),
            outcome: h.fault.clone(),
            actor: "fault injection".into(),
        }
    }

    /// The release of a run at the drill's end.
    pub fn release(
        at_ms: u64,
        run: &Run,
        state: Result<RunState, cordon_engine::dispatch::DispatchError>,
    ) -> Line {
        Line {
            at_ms,
            event: "release".into(),
            playbook: run.playbook.clone(),
            step: String::new(),
            account: run.account.clone(),
            resource: String::new(),
            outcome: match state {
                Ok(s) => s.as_str().into(),
                Err(e) => format!("failed: {e}"),
            },
            actor: "drill".into(),
        }
    }
}

/// The lines of every step that started, and every decision a timeout made.
pub fn step_lines(runs: &[Run]) -> Vec<Line> {
    let mut lines = Vec::new();
    for run in runs {
        for s in &run.steps {
            if let Some(d) = s.decision.as_ref().filter(|d| d.by == "timeout") {
                lines.push(Line {
                    at_ms: d.at_ms,
                    event: "approval timeout".into(),
                    playbook: run.playbook.clone(),
                    step: s.id.clone(),
                    account: run.account.clone(),
                    resource: String::new(),
                    outcome: if d.approved { "approved" } else { "denied" }.into(),
                    actor: "timeout".into(),
                });
            }
            let (Some(at_ms), true) = (s.started_ms, s.action != "approval") else {
                continue;
            };
            lines.push(Line {
                at_ms: s.finished_ms.unwrap_or(at_ms),
                event: s.action.clone(),
                playbook: run.playbook.clone(),
                step: s.id.clone(),
                account: run.account.clone(),
                resource: resource(s.params.as_ref()),
                outcome: match &s.error {
                    Some(e) => format!("{}: {e}", s.state.as_str()),
                    None => s.state.as_str().into(),
                },
                actor: "cordon".into(),
            });
        }
    }
    lines
}

/// The step parameters that name the resource a step acted on, in the order the report looks.
pub(crate) const RESOURCE_PARAMS: [&str; 5] = ["instance", "key_id", "user", "role", "account"];

fn resource(params: Option<&serde_json::Value>) -> String {
    RESOURCE_PARAMS
        .iter()
        .find_map(|k| params?.get(k)?.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Per finding: when it was injected, its first action and its containment.
#[derive(Debug, Clone, Serialize)]
pub struct FindingSummary {
    /// Finding id.
    pub finding: String,
    /// Finding type.
    pub kind: String,
    /// Account.
    pub account: String,
    /// Injected at (T+).
    pub injected: String,
    /// Time to first action (from injection), if any.
    pub time_to_first_action: Option<String>,
    /// Time to containment (MTTC, from injection to the last containment step's end), if
    /// contained.
    pub time_to_containment: Option<String>,
    /// Containment state at the end of the timeline: `contained`, `partial` or
    /// `not_contained`, with why (a partial containment is never called contained).
    pub containment: String,
    /// Runs it started: `playbook state`.
    pub runs: Vec<String>,
}

/// An expectation's outcome as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ExpectationLine {
    /// The expectation.
    pub expectation: String,
    /// Checked at (T+).
    pub at: String,
    /// Met or missed.
    pub met: bool,
    /// What was seen.
    pub evidence: String,
}

/// A timeline line as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineLine {
    /// T+.
    pub at: String,
    /// The line.
    #[serde(flatten)]
    pub line: Line,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Scenario file.
    pub file: String,
    /// Seed of the run ids.
    pub seed: u64,
    /// Timeline, in virtual time order.
    pub timeline: Vec<TimelineLine>,
    /// Per finding.
    pub findings: Vec<FindingSummary>,
    /// Every expectation, then the release check.
    pub expectations: Vec<ExpectationLine>,
    /// Mutating cloud calls the drill's containment made (before release).
    pub cloud_calls: usize,
    /// True when every expectation was met.
    pub passed: bool,
}

/// Virtual time as `T+1h02m03s` from the drill's start.
pub fn at(ms: u64) -> String {
    format!("T+{}", span(ms.saturating_sub(START_MS)))
}

/// A span: `0s`, `1.5s`, `2m05s`, `1h00m00s`.
pub fn span(ms: u64) -> String {
    let (h, m, s, rest) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let frac = if rest == 0 {
        String::new()
    } else {
        format!(".{rest:03}")
    };
    match (h, m) {
        (0, 0) => format!("{s}{frac}s"),
        (0, m) => format!("{m}m{s:02}{frac}s"),
        (h, m) => format!("{h}h{m:02}m{s:02}{frac}s"),
    }
}

/// What the report needs of the world once the timeline ended (before release).
#[derive(Debug, Clone, Default)]
pub struct Contained {
    /// The accounts (and `organization`) that differ from the pre-drill snapshot
    /// ([`check::changed`]).
    pub changed: Vec<String>,
    /// Mutating cloud calls made since the pre-drill snapshot.
    pub cloud_calls: usize,
}

impl Contained {
    /// `now` against the pre-drill world.
    pub fn of(before: &World, now: &World) -> Contained {
        Contained {
            changed: check::changed(before, now),
            cloud_calls: now.calls.len().saturating_sub(before.calls.len()),
        }
    }
}

/// Builds the report. `runs`: every run as the timeline left it; `after`: each run's state
/// after the release.
#[allow(clippy::too_many_arguments)]
pub fn build(
    loaded: &Loaded,
    seed: u64,
    mut lines: Vec<Line>,
    injected: &[Injected],
    runs: &[Run],
    after: &HashMap<String, RunState>,
    mut outcomes: Vec<Outcome>,
    contained: &Contained,
) -> Report {
    // Stable: lines at one moment keep the order they were recorded in.
    lines.sort_by_key(|l| l.at_ms);
    let end = lines.last().map_or(START_MS, |l| l.at_ms);
    if let Some(last) = outcomes.last_mut() {
        last.at_ms = end;
    }
    let changed = &contained.changed;
    let by_id: HashMap<&str, &Run> = runs.iter().map(|r| (r.id.as_str(), r)).collect();
    let findings = injected
        .iter()
        .map(|f| {
            let mine: Vec<&Run> = f
                .runs
                .iter()
                .filter_map(|id| by_id.get(id.as_str()).copied())
                .collect();
            let first = mine.iter().filter_map(|r| check::first_action_at(r)).min();
            let contained = mine.iter().filter_map(|r| check::contained_at(r)).max();
            let states: Vec<(&str, String)> = mine
                .iter()
                .map(|r| check::containment_state(r, changed))
                .collect();
            let worst = ["not_contained", "partial", "contained"]
                .into_iter()
                .find(|w| states.iter().any(|(s, _)| s == w))
                .unwrap_or("not_contained");
            let why: Vec<String> = states.into_iter().map(|(_, why)| why).collect();
            FindingSummary {
                containment: if mine.is_empty() {
                    "no run".into()
                } else {
                    format!("{worst}: {}", why.join("; "))
                },
                finding: f.finding.clone(),
                kind: f.kind.clone(),
                account: f.account.clone(),
                injected: at(f.at_ms),
                time_to_first_action: first.map(|t| span(t.saturating_sub(f.at_ms))),
                time_to_containment: contained.map(|t| span(t.saturating_sub(f.at_ms))),
                runs: mine
                    .iter()
                    .map(|r| {
                        let then = after.get(&r.id).copied().unwrap_or(r.state);
                        format!(
                            "{} {} (then {})",
                            r.playbook,
                            r.state.as_str(),
                            then.as_str()
                        )
                    })
                    .collect(),
            }
        })
        .collect();
    let expectations: Vec<ExpectationLine> = outcomes
        .into_iter()
        .map(|o| ExpectationLine {
            expectation: o.expectation,
            at: at(o.at_ms),
            met: o.met,
            evidence: o.evidence,
        })
        .collect();
    Report {
        scenario: loaded.scenario.name.clone(),
        file: loaded.path.display().to_string(),
        seed,
        passed: expectations.iter().all(|e| e.met),
        timeline: lines
            .into_iter()
            .map(|l| TimelineLine {
                at: at(l.at_ms),
                line: l,
            })
            .collect(),
        findings,
        expectations,
        cloud_calls: contained.cloud_calls,
    }
}

impl Report {
    /// The expectations missed.
    pub fn missed(&self) -> Vec<&ExpectationLine> {
        self.expectations.iter().filter(|e| !e.met).collect()
    }

    /// JSON, pretty-printed.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// Markdown. Every value from a finding or a scenario is escaped (no markup, no control
    /// characters).
    pub fn markdown(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "# Drill: {}\n", md(&self.scenario));
        let verdict = if self.passed { "PASSED" } else { "FAILED" };
        let partial = self
            .findings
            .iter()
            .filter(|f| !f.containment.starts_with("contained") && f.containment != "no run")
            .count();
        if partial > 0 {
            let _ = writeln!(
                o,
                "**Containment: NOT COMPLETE** for {partial} of {} findings that started a run (see the containment state column).\n",
                self.findings.iter().filter(|f| f.containment != "no run").count()
            );
        }
        let _ = writeln!(
            o,
            "{verdict}: {} of {} expectations met. Scenario `{}`, seed {}, {} mutating cloud calls.\n",
            self.expectations.iter().filter(|e| e.met).count(),
            self.expectations.len(),
            md(&self.file),
            self.seed,
            self.cloud_calls
        );
        o.push_str("## Timeline\n\n| time | event | playbook | step | account | resource | outcome | actor |\n|---|---|---|---|---|---|---|---|\n");
        for t in &self.timeline {
            let l = &t.line;
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                t.at,
                md(&l.event),
                md(&l.playbook),
                md(&l.step),
                md(&l.account),
                md(&l.resource),
                md(&l.outcome),
                md(&l.actor)
            );
        }
        o.push_str("\n## Findings\n\n| finding | type | account | injected | first action | containment (MTTC) | containment state | runs |\n|---|---|---|---|---|---|---|---|\n");
        for f in &self.findings {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                md(&f.finding),
                md(&f.kind),
                md(&f.account),
                f.injected,
                f.time_to_first_action.as_deref().unwrap_or("none"),
                f.time_to_containment.as_deref().unwrap_or("not contained"),
                md(&f.containment),
                md(&f.runs.join(", "))
            );
        }
        o.push_str(
            "\n## Expectations\n\n| | expectation | checked | evidence |\n|---|---|---|---|\n",
        );
        for e in &self.expectations {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                if e.met { "met" } else { "MISSED" },
                md(&e.expectation),
                e.at,
                md(&e.evidence)
            );
        }
        o
    }

    /// JUnit XML: one test suite, one test case per expectation (a failure when missed).
    pub fn junit(&self) -> String {
        let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            o,
            "<testsuite name=\"{}\" tests=\"{}\" failures=\"{}\">",
            xml(&self.scenario),
            self.expectations.len(),
            self.missed().len()
        );
        for e in &self.expectations {
            let _ = write!(
                o,
                "  <testcase classname=\"drill\" name=\"{}\"",
                xml(&e.expectation)
            );
            if e.met {
                o.push_str("/>\n");
            } else {
                let _ = writeln!(
                    o,
                    ">\n    <failure message=\"{}\"/>\n  </testcase>",
                    xml(&e.evidence)
                );
            }
        }
        o.push_str("</testsuite>\n");
        o
    }
}

/// Markdown table cell text: control characters dropped, markup characters escaped.
fn md(text: &str) -> String {
    let mut o = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            c if c.is_control() => o.push(' '),
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' => {
                o.push('\\');
                o.push(c);
            }
            c => o.push(c),
        }
    }
    o
}

/// XML attribute text.
fn xml(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '&' => "&amp;".into(),
            '"' => "&quot;".into(),
            c if c.is_control() => " ".into(),
            c => c.to_string(),
        })
        .collect()
}
