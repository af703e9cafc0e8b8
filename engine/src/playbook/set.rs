//! All loaded playbooks, and one matcher over all their triggers.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};

use super::{compile, LoadError, Mode, PlaybookRef};
use crate::event::FindingEvent;
use crate::pattern::{Condition, PatternSet};
use crate::script::{Context, Reads, Sandbox, Script};

/// The loaded playbooks.
#[derive(Default)]
pub struct PlaybookSet {
    playbooks: Vec<PlaybookRef>,
    patterns: PatternSet,
}

/// Why a playbook does or does not start a run for a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "detail")]
pub enum MatchOutcome {
    /// Pattern matched (and `when`, if any, was true): a run starts.
    Run,
    /// A Security Hub custom action named this playbook: a run starts.
    CustomAction,
    /// Pattern matched, but the playbook is manual: a person must start it.
    ManualOnly,
    /// Pattern matched, `when` was false.
    WhenFalse,
    /// Pattern matched, `when` failed: no run, and the error is logged.
    WhenError(String),
    /// Pattern matched, but the finding is a sample GuardDuty generated
    /// ([`Finding::sample`](crate::Finding::sample)): an `auto` or `approval` playbook does not
    /// start on it, so teams can test their pipelines with samples. A person may still start the
    /// playbook on it by hand (`cordon run --playbook`), or through a Security Hub custom action.
    /// The detail says so.
    Sample(String),
}

impl MatchOutcome {
    /// Whether a run starts.
    pub fn starts_run(&self) -> bool {
        matches!(self, MatchOutcome::Run | MatchOutcome::CustomAction)
    }
}

/// What `explain` and `run` say of a sample finding.
const SAMPLE: &str = "sample finding: GuardDuty generated it to test pipelines, so no containment \
starts on its own; start one by hand with `cordon run --playbook ID` if you mean it";

/// A playbook whose trigger matched a finding.
#[derive(Debug, Clone)]
pub struct Match {
    /// The playbook.
    pub playbook: PlaybookRef,
    /// What follows.
    pub outcome: MatchOutcome,
}

/// One playbook's verdict on a finding, for `cordon explain`.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// Playbook id.
    pub playbook: String,
    /// Mode.
    pub mode: Mode,
    /// Whether the event pattern matched.
    pub pattern_matched: bool,
    /// The outcome, when the pattern matched (or a custom action named it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<MatchOutcome>,
    /// Each field condition of the pattern and whether it held.
    pub conditions: Vec<ExplainedCondition>,
}

/// A pattern condition, explained.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainedCondition {
    /// Field path.
    pub path: String,
    /// The pattern for that field.
    pub expected: String,
    /// Whether the event satisfied it.
    pub matched: bool,
    /// The trigger's alternative it belongs to (`$or`, numbered from 0; see
    /// [`crate::pattern::Condition::branch`]).
    pub branch: usize,
}

impl From<Condition> for ExplainedCondition {
    fn from(c: Condition) -> Self {
        ExplainedCondition {
            path: c.path,
            expected: c.expected,
            matched: c.matched,
            branch: c.branch,
        }
    }
}

impl PlaybookSet {
    /// Compiles playbooks from `(file name, text)` pairs; every error of every file is returned.
    pub fn from_sources<S: AsRef<str>>(
        sources: &[(S, S)],
        sandbox: &Sandbox,
    ) -> Result<PlaybookSet, Vec<LoadError>> {
        let mut set = PlaybookSet::default();
        let mut errors = Vec::new();
        for (file, text) in sources {
            match compile(file.as_ref(), text.as_ref(), sandbox) {
                Ok(p) => {
                    if let Some(other) = set.get(&p.id) {
                        errors.push(LoadError {
                            file: p.file.clone(),
                            line: Some(1),
                            field: "id".into(),
                            message: format!(
                                "playbook id {:?} is already used by {}",
                                p.id, other.file
                            ),
                        });
                        continue;
                    }
                    if let Some(pattern) = &p.pattern_json {
                        if let Err(e) = set.patterns.add(set.playbooks.len(), pattern) {
                            errors.push(LoadError {
                                file: p.file.clone(),
                                line: None,
                                field: format!("trigger.match.{}", e.path),
                                message: e.message,
                            });
                            continue;
                        }
                    }
                    set.playbooks.push(Arc::new(p));
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(errors)
        }
    }

    /// A playbook by id.
    pub fn get(&self, id: &str) -> Option<&PlaybookRef> {
        self.playbooks.iter().find(|p| p.id == id)
    }

    /// Every playbook, in load order.
    pub fn iter(&self) -> impl Iterator<Item = &PlaybookRef> {
        self.playbooks.iter()
    }

    /// Number of playbooks.
    pub fn len(&self) -> usize {
        self.playbooks.len()
    }

    /// Whether none are loaded.
    pub fn is_empty(&self) -> bool {
        self.playbooks.is_empty()
    }

    /// The playbook a Security Hub custom action names: by the action's name or the last part of
    /// its ARN, compared without case (console names are free text; ids are at most 20 chars).
    fn named_by(&self, fe: &FindingEvent) -> Option<&PlaybookRef> {
        let action = fe.custom_action.as_ref()?;
        let arn_id = action.arn.as_deref().and_then(|a| a.rsplit('/').next());
        self.playbooks.iter().find(|p| {
            p.id.eq_ignore_ascii_case(action.name.trim())
                || arn_id.is_some_and(|a| p.id.eq_ignore_ascii_case(a))
        })
    }

    /// Every playbook whose trigger matched the finding, with what follows for each.
    pub fn evaluate(&self, fe: &FindingEvent, sandbox: &Sandbox) -> Vec<Match> {
        let mut out: Vec<Match> = Vec::new();
        if let Some(p) = self.named_by(fe) {
            out.push(Match {
                playbook: p.clone(),
                outcome: MatchOutcome::CustomAction,
            });
        }
        let matched: Vec<&PlaybookRef> = self
            .patterns
            .matches(&fe.event)
            .into_iter()
            .filter_map(|idx| self.playbooks.get(idx))
            .filter(|p| !out.iter().any(|m| Arc::ptr_eq(&m.playbook, p)))
            .collect();
        // The script context is built only if a matched playbook has a `when`, and holds only
        // what those scripts read: converting the whole event costs more than matching.
        let whens: Vec<&Script> = matched
            .iter()
            .filter(|p| p.mode != Mode::Manual && !fe.finding.sample)
            .filter_map(|p| p.when.as_ref())
            .collect();
        let ctx = (!whens.is_empty()).then(|| {
            let reads = |name: &str| {
                whens
                    .iter()
                    .fold(Reads::Nothing, |all, w| all.union(w.reads(name)))
            };
            trigger_context(fe, &reads("event"), &reads("finding"))
        });
        for p in matched {
            let outcome = match (&p.when, p.mode, &ctx) {
                (_, Mode::Manual, _) => MatchOutcome::ManualOnly,
                _ if fe.finding.sample => MatchOutcome::Sample(SAMPLE.to_string()),
                (Some(w), _, Some(ctx)) => match sandbox.eval_bool(w, ctx) {
                    Ok(true) => MatchOutcome::Run,
                    Ok(false) => MatchOutcome::WhenFalse,
                    Err(e) => MatchOutcome::WhenError(e.to_string()),
                },
                _ => MatchOutcome::Run,
            };
            out.push(Match {
                playbook: p.clone(),
                outcome,
            });
        }
        out
    }

    /// Every playbook's verdict on the finding, with the pattern conditions.
    pub fn explain(&self, fe: &FindingEvent, sandbox: &Sandbox) -> Vec<Explanation> {
        let matched = self.evaluate(fe, sandbox);
        self.playbooks
            .iter()
            .enumerate()
            .map(|(idx, p)| {
                let m = matched.iter().find(|m| Arc::ptr_eq(&m.playbook, p));
                let conditions: Vec<ExplainedCondition> = self
                    .patterns
                    .explain(idx, &fe.event)
                    .into_iter()
                    .map(Into::into)
                    .collect();
                Explanation {
                    playbook: p.id.clone(),
                    mode: p.mode,
                    pattern_matched: p.pattern.as_ref().is_some_and(|pat| pat.matches(&fe.event)),
                    outcome: m.map(|m| m.outcome.clone()),
                    conditions,
                }
            })
            .collect()
    }
}

/// What a trigger's `when` sees: the event and the finding (no vars, steps or run yet), each
/// only as far as the scripts read it.
pub(crate) fn trigger_context(fe: &FindingEvent, event: &Reads, finding: &Reads) -> Context {
    let empty = json!({});
    let finding = match finding {
        Reads::Nothing => json!({}),
        reads => reads.pick_json(&serde_json::to_value(&fe.finding).unwrap_or(Value::Null)),
    };
    let event = match event {
        Reads::Nothing => Cow::Owned(json!({})),
        Reads::All => Cow::Borrowed(&*fe.event),
        reads => Cow::Owned(reads.pick_json(&fe.event)),
    };
    Context::new(&event, &finding, &empty, &empty, &empty)
}

#[cfg(test)]
#[path = "set_tests.rs"]
mod tests;
