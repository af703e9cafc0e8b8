//! The runner: turns matches into journaled runs and drives them step by step.
//!
//! - `mod.rs`: the [`Runner`], submission of findings and creation of runs.
//! - `drive`: executing steps, with intent journaled (flushed) before every side effect.
//! - `decide`: approvals, denials, approval timeouts.
//! - `release`: undoing a run's containment steps, newest first.
//! - `hold`: several runs containing one resource; only the last one's release undoes it.
//! - `plan`: what a run would do, without doing it (`--dry-run`).
//! - `observe`: hooks for metrics ([`Observer`]).
//!
//! The runner drives one run per call and does not schedule anything: the
//! [`Dispatcher`](crate::dispatch::Dispatcher) decides when, how many at once, and makes sure
//! one task drives a given run at a time. Every journal write is conditional on the run's
//! version; a conflict means another writer changed the run, and surfaces as
//! [`JournalError::Conflict`] for the caller to reload and decide again.

mod decide;
mod drive;
mod hold;
mod observe;
mod plan;
mod release;

use std::borrow::Cow;
use std::sync::{Arc, RwLock};

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::cloud::Cloud;
use crate::config::Settings;
use crate::event::FindingEvent;
use crate::ids::{IdSource, RandomIds};
use crate::journal::{Admission, Entry, Inserted, Journal, JournalError};
use crate::playbook::{self, LoadError, MatchOutcome, PlaybookRef, PlaybookSet};
use crate::run::{Run, RunState, StepRecord, Trigger};
use crate::script::{Context, Reads, Sandbox, Script};

pub use decide::{check_approver, Expired};
pub use drive::Driven;

/// Called with a finding just before its first run is journaled (see
/// [`Runner::submit_prepared`]).
pub type Prepare<'a> = dyn Fn(&FindingEvent) + Send + Sync + 'a;
pub use observe::{NoObserver, Observer};
pub use plan::{plan, Plan, PlannedStep};

/// Runner errors (a failed step is not one: it is recorded in the run).
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The journal failed, or a conditional write lost to another writer.
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

impl RunnerError {
    /// Whether another writer changed the run first (reload and decide again).
    pub fn is_conflict(&self) -> bool {
        matches!(self, RunnerError::Journal(JournalError::Conflict { .. }))
    }
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
    /// Why no run started, when that was an error (a trigger `when` script that failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The account the run acts in by default (the finding's).
    #[serde(skip)]
    pub account: String,
    /// The run just created, as journaled (version 1): its driver starts from it instead of
    /// reading it back. Taken by the dispatcher when it schedules the run.
    #[serde(skip)]
    pub created_run: Option<Box<Run>>,
}

impl Submitted {
    /// Whether this match created a new run.
    pub fn created(&self) -> bool {
        self.status == "created" && self.run_id.is_some()
    }
}

/// Drives runs: the one place that writes runs to the journal.
pub struct Runner {
    journal: Arc<dyn Journal>,
    cloud: Cloud,
    settings: Settings,
    sandbox: Arc<Sandbox>,
    playbooks: RwLock<Arc<PlaybookSet>>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    observer: Arc<dyn Observer>,
    stop: CancellationToken,
    holds: hold::HoldLocks,
    hold_index: hold::HoldIndex,
}

impl Runner {
    /// A runner over a journal, a cloud and the loaded playbooks, with random run ids and no
    /// observer (see [`Runner::with_ids`], [`Runner::with_observer`]).
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
            playbooks: RwLock::new(playbooks),
            clock,
            ids: Arc::new(RandomIds),
            observer: Arc::new(NoObserver),
            stop: CancellationToken::new(),
            holds: hold::HoldLocks::default(),
            hold_index: hold::HoldIndex::default(),
        }
    }

    /// Run ids and jitter from `ids` (a seeded source makes a drill repeatable).
    pub fn with_ids(mut self, ids: Arc<dyn IdSource>) -> Runner {
        self.ids = ids;
        self
    }

    /// Step and run events go to `observer` (metrics).
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Runner {
        self.observer = observer;
        self
    }

    /// The journal.
    pub fn journal(&self) -> &dyn Journal {
        self.journal.as_ref()
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The observer.
    pub fn observer(&self) -> &Arc<dyn Observer> {
        &self.observer
    }

    /// The sandbox scripts run in.
    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.sandbox
    }

    /// The loaded playbooks (a snapshot: a reload does not change what the caller holds).
    pub fn playbooks(&self) -> Arc<PlaybookSet> {
        self.playbooks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the loaded playbooks. Runs already created keep the playbook text they started
    /// with (it is journaled with them).
    pub fn set_playbooks(&self, set: Arc<PlaybookSet>) {
        *self.playbooks.write().unwrap_or_else(|p| p.into_inner()) = set;
    }

    /// Asks every drive in progress to stop before its next step (a step already under way
    /// finishes); used by a graceful shutdown. The runs stay open and resume at the next start.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Whether [`Runner::stop`] was called.
    pub fn stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Matches a finding against every playbook and journals a run for each match that starts
    /// one, unless its dedup key already has a run. Returns once the runs are durable; runs are
    /// driven separately.
    pub async fn submit(&self, fe: &FindingEvent) -> Result<Vec<Submitted>> {
        self.submit_as(fe, Admission::Deliver).await
    }

    /// [`Runner::submit`], with the dedup key's earlier run treated as `admission` says: a
    /// person's [`Admission::Rerun`] starts each matching playbook again once its earlier run
    /// for the finding has finished (a match whose earlier run is still open comes back as
    /// `duplicate`, naming that run).
    pub async fn submit_as(
        &self,
        fe: &FindingEvent,
        admission: Admission,
    ) -> Result<Vec<Submitted>> {
        self.submit_prepared(fe, admission, &|_| {}).await
    }

    /// [`Runner::submit_as`], calling `prepare` once before the finding's first run is
    /// journaled, and never for a finding that starts no run (`--cloud sim` creates the
    /// finding's resources in its world there, only for findings something will act on).
    pub async fn submit_prepared(
        &self,
        fe: &FindingEvent,
        admission: Admission,
        prepare: &Prepare<'_>,
    ) -> Result<Vec<Submitted>> {
        let mut prepared = false;
        let mut out = Vec::new();
        let playbooks = self.playbooks();
        for m in playbooks.evaluate(fe, &self.sandbox) {
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
                    let error = match other {
                        MatchOutcome::WhenError(e) => {
                            tracing::warn!(playbook = %m.playbook.id, finding = %fe.finding.id, error = %e, "Trigger script failed; no run");
                            Some(e.clone())
                        }
                        _ => None,
                    };
                    let status = serde_json::to_value(other)
                        .ok()
                        .and_then(|v| v["outcome"].as_str().map(String::from));
                    out.push(Submitted {
                        playbook: m.playbook.id.clone(),
                        run_id: None,
                        status: status.unwrap_or_default(),
                        error,
                        account: fe.finding.account.clone(),
                        created_run: None,
                    });
                    continue;
                }
            };
            if !std::mem::replace(&mut prepared, true) {
                prepare(fe);
            }
            out.push(self.create_run(&m.playbook, fe, trigger, admission).await?);
        }
        Ok(out)
    }

    /// Journals a run of `playbook` for the finding (the CLI's `run --playbook` and chat use this
    /// directly), as `admission` allows: a delivery never repeats a dedup key's run; a person's
    /// [`Admission::Rerun`] may, once that run has finished.
    pub async fn create_run(
        &self,
        playbook: &PlaybookRef,
        fe: &FindingEvent,
        trigger: Trigger,
        admission: Admission,
    ) -> Result<Submitted> {
        let finding = serde_json::to_value(&fe.finding).unwrap_or(Value::Null);
        let refused = |status: String| Submitted {
            playbook: playbook.id.clone(),
            run_id: None,
            status,
            error: None,
            account: fe.finding.account.clone(),
            created_run: None,
        };
        let dedup = match &playbook.dedup {
            None => fe.finding.dedup_id.clone(),
            Some(t) => {
                let ctx = Context::new(&fe.event, &finding, &playbook.vars, &json!({}), &json!({}));
                match self.sandbox.render(t, &ctx) {
                    Ok(Value::String(s)) => s,
                    Ok(other) => other.to_string(),
                    Err(e) => return Ok(refused(format!("dedup key failed: {e}"))),
                }
            }
        };
        let now = self.clock.now_ms();
        let run = Run {
            id: self.ids.run_id(now),
            version: 0,
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
            what: match admission {
                Admission::Deliver => format!("run created for finding {}", fe.finding.id),
                Admission::Rerun => format!(
                    "run created for finding {}, re-run on purpose",
                    fe.finding.id
                ),
            },
        };
        let (run_id, status, created_run) = match self
            .journal
            .insert(&run, &entry, admission)
            .await?
        {
            Inserted::Created => {
                tracing::info!(run_id = %run.id, playbook = %playbook.id, finding = %fe.finding.id, "Run created");
                let mut run = run;
                run.version = 1;
                (run.id.clone(), "created", Some(Box::new(run)))
            }
            Inserted::Duplicate(existing) => (existing, "duplicate", None),
        };
        Ok(Submitted {
            playbook: playbook.id.clone(),
            run_id: Some(run_id),
            status: status.into(),
            error: None,
            account: fe.finding.account.clone(),
            created_run,
        })
    }

    /// A run by id, or [`RunnerError::NoRun`].
    pub async fn load(&self, id: &str) -> Result<Run> {
        self.journal
            .get(id)
            .await?
            .ok_or_else(|| RunnerError::NoRun(id.to_string()))
    }

    /// Saves a transition (durable, conditional on the run's version) with a timeline line,
    /// and takes the new version.
    async fn save(&self, run: &mut Run, step: Option<&str>, what: impl Into<String>) -> Result<()> {
        run.updated_ms = self.clock.now_ms();
        let entry = Entry {
            at_ms: run.updated_ms,
            state: run.state.as_str().into(),
            step: step.map(String::from),
            what: what.into(),
        };
        run.version = self.journal.update(run, &entry).await?;
        if let Some(step) = step {
            self.note_hold(run, step);
        }
        Ok(())
    }

    /// The compiled playbook the run started with: the loaded one when its text is unchanged,
    /// else the run's own journaled copy, compiled.
    fn playbook_for(&self, run: &Run) -> Result<PlaybookRef> {
        if let Some(p) = self.playbooks().get(&run.playbook) {
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

    /// What `scripts` (a step's `when` and templates) see of this run: each variable only as
    /// far as one of them reads it (see `script::reads`), so a template that reads one field
    /// of the finding does not convert the whole event.
    fn context(&self, run: &Run, scripts: &[&Script]) -> Context {
        let reads = |name: &str| {
            scripts
                .iter()
                .fold(Reads::Nothing, |all, s| all.union(s.reads(name)))
        };
        let steps = match reads("steps") {
            Reads::Nothing => Value::Null,
            r => r.pick_json(&Value::Object(
                run.steps
                    .iter()
                    .map(|s| {
                        (
                            s.id.clone(),
                            json!({"state": s.state, "output": s.output.clone().unwrap_or(Value::Null), "error": s.error}),
                        )
                    })
                    .collect(),
            )),
        };
        let meta = match reads("run") {
            Reads::Nothing => Value::Null,
            r => r.pick_json(&json!({"id": run.id, "playbook": run.playbook, "account": run.account, "region": run.region, "trigger": run.trigger})),
        };
        fn pick<'v>(reads: Reads, value: &'v Value) -> Cow<'v, Value> {
            match reads {
                Reads::All => Cow::Borrowed(value),
                r => Cow::Owned(r.pick_json(value)),
            }
        }
        Context::new(
            &pick(reads("event"), &run.event),
            &pick(reads("finding"), &run.finding),
            &pick(reads("vars"), &run.vars),
            &steps,
            &meta,
        )
    }
}
