//! The room of an interactive drill (`cordon drill --interactive`): a facilitator and the
//! responders around a terminal. The drill stops the virtual clock at each injected finding and
//! at each step that waits for approval, shows what cordon is about to do and why, and lets the
//! room decide; the report records who decided what.
//!
//! The drill owns the clock: while the room thinks, no simulated time passes, so approval
//! deadlines and the attacker's moves happen at the same virtual times as in the scripted drill.

use cordon_engine::event::FindingEvent;
use cordon_engine::playbook::{MatchOutcome, PlaybookRef, PlaybookSet};
use cordon_engine::run::{Run, StepRecord};
use cordon_engine::runner::{plan, Plan};
use cordon_engine::script::Sandbox;
use cordon_engine::Finding;

/// What the room is asked when a finding arrives.
#[derive(Debug)]
pub struct FindingAsk<'a> {
    /// Virtual time, `T+7m`.
    pub at: &'a str,
    /// The finding (attacker-controlled text: print it escaped).
    pub finding: &'a Finding,
    /// The runs cordon is about to start for it, each with the reason it starts.
    pub proposed: &'a [Proposed],
}

/// A run cordon would start, and why.
#[derive(Debug, Clone)]
pub struct Proposed {
    /// Why it starts: the trigger conditions that held, or the responder who starts it.
    pub why: String,
    /// Its steps, with their parameters rendered from the finding (nothing called yet).
    pub plan: Plan,
}

/// What the room is asked when a step waits for approval.
#[derive(Debug)]
pub struct ApprovalAsk<'a> {
    /// Virtual time, `T+7m`.
    pub at: &'a str,
    /// The run (its finding, account and playbook).
    pub run: &'a Run,
    /// The waiting step: its action, rendered parameters, approvals so far and deadline.
    pub step: &'a StepRecord,
}

/// The room's answer: go ahead (act, approve) or not (hold the finding back, deny), and who
/// decided, as the report will name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Go ahead.
    pub go: bool,
    /// Who decided (a name, as typed).
    pub by: String,
}

/// The room. Each method blocks until the room answers; `None` means the room left (end of
/// input), which stops the drill.
pub trait Room: Send {
    /// A finding is about to be delivered and `ask.proposed` is not empty: does cordon act on it?
    fn finding(&mut self, ask: &FindingAsk<'_>) -> Option<Verdict>;
    /// A step waits for approval: approve it or deny it?
    fn approval(&mut self, ask: &ApprovalAsk<'_>) -> Option<Verdict>;
    /// Something the room should know before it is asked again (a refused decision, a note).
    fn tell(&mut self, text: &str);
}

/// The runs `set` would start for `fe` (or the named playbook a responder starts), with why.
pub fn proposed(
    set: &PlaybookSet,
    sandbox: &Sandbox,
    fe: &FindingEvent,
    started_by: Option<(&PlaybookRef, &str)>,
) -> Vec<Proposed> {
    if let Some((p, by)) = started_by {
        return vec![Proposed {
            why: format!("{by} starts it by hand"),
            plan: plan(sandbox, p, fe),
        }];
    }
    let explained = set.explain(fe, sandbox);
    set.evaluate(fe, sandbox)
        .into_iter()
        .filter(|m| m.outcome.starts_run())
        .map(|m| {
            let why = match m.outcome {
                MatchOutcome::CustomAction => "a Security Hub custom action names it".to_string(),
                _ => {
                    // The first `$or` alternative whose every condition held.
                    let conditions = explained
                        .iter()
                        .find(|e| e.playbook == m.playbook.id)
                        .map_or(&[][..], |e| e.conditions.as_slice());
                    let alternative = |b: usize| conditions.iter().filter(move |c| c.branch == b);
                    let held: Vec<String> = (0..conditions.len())
                        .find(|&b| {
                            alternative(b).next().is_some() && alternative(b).all(|c| c.matched)
                        })
                        .into_iter()
                        .flat_map(alternative)
                        .map(|c| format!("{} {}", c.path, c.expected))
                        .collect();
                    if held.is_empty() {
                        "its trigger matched".to_string()
                    } else {
                        format!("its trigger matched: {}", held.join("; "))
                    }
                }
            };
            Proposed {
                why,
                plan: plan(sandbox, &m.playbook, fe),
            }
        })
        .collect()
}

/// A room that always says the same thing: for tests, and for replaying a room's choice.
#[derive(Debug, Clone)]
pub struct Scripted {
    answers: std::collections::VecDeque<Verdict>,
    /// What the room was told, in order.
    pub told: Vec<String>,
    /// What it was asked, in order: `finding KIND` or `approval PLAYBOOK/STEP`.
    pub asked: Vec<String>,
}

impl Scripted {
    /// A room that gives these answers in order, then leaves.
    pub fn new(answers: impl IntoIterator<Item = Verdict>) -> Scripted {
        Scripted {
            answers: answers.into_iter().collect(),
            told: Vec::new(),
            asked: Vec::new(),
        }
    }
}

impl Room for Scripted {
    fn finding(&mut self, ask: &FindingAsk<'_>) -> Option<Verdict> {
        self.asked.push(format!("finding {}", ask.finding.kind));
        self.answers.pop_front()
    }

    fn approval(&mut self, ask: &ApprovalAsk<'_>) -> Option<Verdict> {
        self.asked
            .push(format!("approval {}/{}", ask.run.playbook, ask.step.id));
        self.answers.pop_front()
    }

    fn tell(&mut self, text: &str) {
        self.told.push(text.to_string());
    }
}
