//! The runner: turns matches into journaled runs and drives them step by step.
//!
//! - `mod.rs`: the [`Runner`], submission of findings and creation of runs.
//! - `drive`: executing steps, with intent journaled (flushed) before every side effect.
//! - `decide`: approvals, denials, approval timeouts.
//! - `release`: undoing a run's containment steps, newest first.
//! - `plan`: what a run would do, without doing it (`--dry-run`).

mod decide;
mod drive;
mod plan;
mod release;

use std::sync::Arc;

use serde_json::{json, Value};

use crate::clock::Clock;
use crate::cloud::Cloud;
use crate::config::Settings;
use crate::event::FindingEvent;
use crate::journal::{Entry, Inserted, Journal, JournalError};
use crate::playbook::{self, LoadError, MatchOutcome, PlaybookRef, PlaybookSet};
use crate::run::{Run, RunState, StepRecord, Trigger};
use crate::script::{Context, Sandbox};

pub use plan::{plan, Plan, PlannedStep};

/// Runner errors (a failed step is not one: it is recorded in the run).
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// No such run.
    #[error("no run {0} in the journal")]
    NoRun(String),
    /// The request does not fit the run's state.
    #[error("{0}")]
    State(String),
    /// The playbook journaled with the run no longer compiles (e.g. after an upgrade).
    #[error("playbook of run {run} does not compile: {errors}")]
    Playbook {
        /// Run id.
        run: String,
        /// The errors, joined.
        errors: String,
    },
}

/// Runner result.
pub type Result<T, E = RunnerError> = std::result::Result<T, E>;

/// What happened to one playbook match of a submitted finding.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Submitted {
    /// Playbook id.
    pub playbook: String,
    /// The run created, or the existing run for the same dedup key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// `created`, `duplicate`, or why no run started.
    pub status: String,
}

/// Drives runs: the one place that writes runs to the journal.
pub struct Runner {
    journal: Arc<dyn Journal>,
    cloud: Cloud,
    settings: Settings,
    sandbox: Arc<Sandbox>,
    playbooks: Arc<PlaybookSet>,
    clock: Arc<dyn Clock>,
}

impl Runner {
    /// A runner over a journal, a cloud and the loaded playbooks.
    pub fn new(
        journal: Arc<dyn Journal>,
        cloud: Cloud,
        settings: Settings,
        sandbox: Arc<Sandbox>,
        playbooks: Arc<PlaybookSet>,
        clock: Arc<dyn Clock>,
    ) -> Runner {
        Runner {
            journal,
            cloud,
            settings,
            sandbox,
            playbooks,
            clock,
        }
    }

    /// The journal.
    pub fn journal(&self) -> &dyn Journal {
        self.journal.as_ref()
    }

    /// The loaded playbooks.
    pub fn playbooks(&self) -> &PlaybookSet {
        &self.playbooks
    }

    /// Matches a finding against every playbook and journals a run for each match that starts
    /// one, unless its dedup key already has a run. Returns at once; runs are driven separately.
    pub fn submit(&self, fe: &FindingEvent) -> Result<Vec<Submitted>> {
        let mut out = Vec::new();
        for m in self.playbooks.evaluate(fe, &self.sandbox) {
            let trigger = match &m.outcome {
                MatchOutcome::Run => Trigger::Event,
                MatchOutcome::CustomAction => Trigger::CustomAction {
                    name: fe
                        .custom_action
                        .as_ref()
                        .map(|a| a.name.clone())
                        .unwrap_or_default(),
                },
                other => {
                    if let MatchOutcome::WhenError(e) = other {
                        tracing::warn!(playbook = %m.playbook.id, finding = %fe.finding.id, error = %e, "Trigger script failed; no run");
                    }
                    let status = serde_json::to_value(other)
                        .ok()
                        .and_then(|v| v["outcome"].as_str().map(String::from));
                    out.push(Submitted {
                        playbook: m.playbook.id.clone(),
                        run_id: None,
                        status: status.unwrap_or_default(),
                    });
                    continue;
                }
            };
            out.push(self.create_run(&m.playbook, fe, trigger)?);
        }
        Ok(out)
    }

    /// Journals a run of `playbook` for the finding (the CLI's `run --playbook` and chat use this
    /// directly), unless the dedup key already has one.
    pub fn create_run(
        &self,
        playbook: &PlaybookRef,
        fe: &FindingEvent,
        trigger: Trigger,
    ) -> Result<Submitted> {
        let finding = serde_json::to_value(&fe.finding).unwrap_or(Value::Null);
        let dedup = match &playbook.dedup {
            None => fe.finding.dedup_id.clone(),
            Some(t) => {
                let ctx = Context::new(&fe.event, &finding, &playbook.vars, &json!({}), &json!({}));
                match self.sandbox.render(t, &ctx) {
                    Ok(Value::String(s)) => s,
                    Ok(other) => other.to_string(),
                    Err(e) => {
                        return Ok(Submitted {
                            playbook: playbook.id.clone(),
                            run_id: None,
                            status: format!("dedup key failed: {e}"),
                        })
                    }
                }
            }
        };
        let now = self.clock.now_ms();
        let run = Run {
            id: uuid::Uuid::now_v7().to_string(),
            playbook: playbook.id.clone(),
            playbook_version: playbook.version.clone(),
            playbook_source: playbook.source.clone(),
            playbook_file: playbook.file.clone(),
            dedup_key: format!("{}:{dedup}", playbook.id),
            state: RunState::Pending,
            trigger,
            event: fe.event.clone(),
            finding,
            vars: playbook.vars.clone(),
            account: fe.finding.account.clone(),
            region: fe.finding.region.clone(),
            steps: playbook
                .steps
                .iter()
                .map(|s| StepRecord::new(&s.id, s.action.meta().id))
                .collect(),
            error: None,
            created_ms: now,
            updated_ms: now,
        };
        let entry = Entry {
            at_ms: now,
            state: "pending".into(),
            step: None,
            what: format!("run created for finding {}", fe.finding.id),
        };
        let (run_id, status) = match self.journal.insert(&run, &entry)? {
            Inserted::Created => {
                tracing::info!(run_id = %run.id, playbook = %playbook.id, finding = %fe.finding.id, "Run created");
                (run.id, "created")
            }
            Inserted::Duplicate(existing) => (existing, "duplicate"),
        };
        Ok(Submitted {
            playbook: playbook.id.clone(),
            run_id: Some(run_id),
            status: status.into(),
        })
    }

    /// Drives every run a restart must pick up (and applies approval timeouts that passed).
    pub async fn resume_all(&self) -> Result<Vec<(String, RunState)>> {
        self.expire_approvals().await?;
        let mut out = Vec::new();
        for id in self.journal.open_ids()? {
            let state = self.drive(&id).await?;
            out.push((id, state));
        }
        Ok(out)
    }

    fn load(&self, id: &str) -> Result<Run> {
        self.journal
            .get(id)?
            .ok_or_else(|| RunnerError::NoRun(id.to_string()))
    }

    /// Saves a transition (flushed) with a timeline line.
    fn save(&self, run: &mut Run, step: Option<&str>, what: impl Into<String>) -> Result<()> {
        run.updated_ms = self.clock.now_ms();
        let entry = Entry {
            at_ms: run.updated_ms,
            state: run.state.as_str().into(),
            step: step.map(String::from),
            what: what.into(),
        };
        self.journal.update(run, &entry)?;
        Ok(())
    }

    /// The compiled playbook the run started with: the loaded one when its text is unchanged,
    /// else the run's own journaled copy, compiled.
    fn playbook_for(&self, run: &Run) -> Result<PlaybookRef> {
        if let Some(p) = self.playbooks.get(&run.playbook) {
            if p.source == run.playbook_source {
                return Ok(p.clone());
            }
        }
        playbook::compile(&run.playbook_file, &run.playbook_source, &self.sandbox)
            .map(Arc::new)
            .map_err(|errors: Vec<LoadError>| RunnerError::Playbook {
                run: run.id.clone(),
                errors: errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            })
    }

    /// What scripts and templates of this run see.
    fn context(&self, run: &Run) -> Context {
        let steps: serde_json::Map<String, Value> = run
            .steps
            .iter()
            .map(|s| {
                (
                    s.id.clone(),
                    json!({"state": s.state, "output": s.output.clone().unwrap_or(Value::Null), "error": s.error}),
                )
            })
            .collect();
        let meta = json!({"id": run.id, "playbook": run.playbook, "account": run.account, "region": run.region, "trigger": run.trigger});
        Context::new(
            &run.event,
            &run.finding,
            &run.vars,
            &Value::Object(steps),
            &meta,
        )
    }
}
