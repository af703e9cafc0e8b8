//! A run: one playbook executing for one finding, and the journaled state of each of its steps.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Journaled, not started.
    Pending,
    /// Steps executing.
    Running,
    /// Suspended at a step until a human decides.
    WaitingApproval,
    /// Every step succeeded, was skipped, or failed with `on_error: continue`.
    Succeeded,
    /// A step failed.
    Failed,
    /// An approver said no; later steps did not run.
    Denied,
    /// A non-idempotent step was interrupted: a human must look before anything else happens.
    NeedsAttention,
    /// Undoing its containment steps.
    Releasing,
    /// Every containment step undone.
    Released,
    /// Some undo failed; `release` can be run again.
    ReleaseFailed,
}

impl RunState {
    /// States a restart resumes.
    pub fn is_unfinished(self) -> bool {
        matches!(
            self,
            RunState::Pending | RunState::Running | RunState::Releasing
        )
    }

    /// States from which `release` may start.
    pub fn is_releasable(self) -> bool {
        matches!(
            self,
            RunState::Succeeded
                | RunState::Failed
                | RunState::Denied
                | RunState::NeedsAttention
                | RunState::WaitingApproval
                | RunState::ReleaseFailed
                | RunState::Releasing
        )
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Pending => "pending",
            RunState::Running => "running",
            RunState::WaitingApproval => "waiting_approval",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Denied => "denied",
            RunState::NeedsAttention => "needs_attention",
            RunState::Releasing => "releasing",
            RunState::Released => "released",
            RunState::ReleaseFailed => "release_failed",
        }
    }
}

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Not reached yet.
    Pending,
    /// Marked started (and flushed) before its side effect; not known to be done.
    Started,
    /// Done, with proof.
    Succeeded,
    /// Failed after its retries.
    Failed,
    /// Its `when` was false, or the run ended before it.
    Skipped,
    /// Waiting for a human.
    WaitingApproval,
    /// A human (or the approval timeout) said no.
    Denied,
}

impl StepState {
    /// Lower-case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Started => "started",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
            StepState::WaitingApproval => "waiting_approval",
            StepState::Denied => "denied",
        }
    }
}

/// A human's (or a timeout's) decision on a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Approved or denied.
    pub approved: bool,
    /// Who decided (`timeout` when the default applied).
    pub by: String,
    /// When (epoch ms).
    pub at_ms: u64,
}

/// Release of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseState {
    /// Marked before the undo call.
    Started,
    /// Undone, with proof.
    Done,
    /// The undo failed; `release` retries it.
    Failed,
    /// Not undone: another live run holds the same resource contained (its id is in
    /// `release_detail.held_by`). The last of them to be released undoes every held change,
    /// newest first, back to the state before the first containment.
    Held,
}

/// The journaled record of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Step id from the playbook.
    pub id: String,
    /// Action id.
    pub action: String,
    /// State.
    pub state: StepState,
    /// Attempts started so far.
    pub attempt: u32,
    /// Rendered parameters (no secrets: playbooks hold none, and actions never return any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    /// The pre-state the action read before changing anything; release restores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepared: Option<Value>,
    /// What later steps see as `steps.<id>.output`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// The state read back after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<Value>,
    /// Whether release has something to undo.
    #[serde(default)]
    pub undoable: bool,
    /// Last error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The decision that ended the wait: the approval that made enough, a denial, or the
    /// timeout's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// Every approval given so far, oldest first, one per person (a step with `approvers: N`
    /// goes on at the N-th). Absent from records written before two-person approval.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Decision>,
    /// When a waiting approval applies its default (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// Release progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseState>,
    /// State read back after the undo, or the undo's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_detail: Option<Value>,
    /// First start (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
    /// End (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u64>,
}

impl StepRecord {
    /// How many different people must approve this step before it goes on: its rendered
    /// `approvers` parameter (validated at load, 1 to 5), else 1.
    pub fn approvals_needed(&self) -> usize {
        self.params
            .as_ref()
            .and_then(|p| p.get("approvers"))
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(1)
            .max(1)
    }

    /// A step not reached yet.
    pub fn new(id: &str, action: &str) -> StepRecord {
        StepRecord {
            id: id.to_string(),
            action: action.to_string(),
            state: StepState::Pending,
            attempt: 0,
            params: None,
            prepared: None,
            output: None,
            proof: None,
            undoable: false,
            error: None,
            decision: None,
            approvals: Vec::new(),
            deadline_ms: None,
            release: None,
            release_detail: None,
            started_ms: None,
            finished_ms: None,
        }
    }
}

/// How a run was started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Trigger {
    /// A finding matched the playbook's trigger.
    Event,
    /// A Security Hub custom action named the playbook.
    CustomAction {
        /// The custom action's name.
        name: String,
    },
    /// A person asked for it (CLI or chat).
    Manual {
        /// Who.
        by: String,
    },
}

/// A run, as journaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Time-ordered id (UUIDv7).
    pub id: String,
    /// The journal's version of this record: 1 when created, one more at each write. Updates
    /// are conditional on it (see [`crate::journal`]).
    #[serde(default)]
    pub version: u64,
    /// Playbook id.
    pub playbook: String,
    /// Playbook version.
    pub playbook_version: String,
    /// The playbook text the run started with: a restart executes exactly this, even if the
    /// file changed since.
    pub playbook_source: String,
    /// The file it came from, for error messages.
    pub playbook_file: String,
    /// One run per dedup key.
    pub dedup_key: String,
    /// State.
    pub state: RunState,
    /// How it started.
    pub trigger: Trigger,
    /// The single-finding event (shared with the finding it came from; serialized as the
    /// JSON value itself).
    pub event: Arc<Value>,
    /// The normalized finding.
    pub finding: Value,
    /// Playbook vars, evaluated when the run was created.
    pub vars: Value,
    /// Default account for steps (the finding's).
    pub account: String,
    /// Default region for steps.
    pub region: String,
    /// Steps, in playbook order.
    pub steps: Vec<StepRecord>,
    /// Why the run failed or needs attention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Created (epoch ms).
    pub created_ms: u64,
    /// Last transition (epoch ms).
    pub updated_ms: u64,
}

impl Run {
    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&StepRecord> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// When the run waits for approval: the waiting step's deadline (epoch ms on the runner's
    /// clock), if its approval times out.
    pub fn approval_deadline_ms(&self) -> Option<u64> {
        if self.state != RunState::WaitingApproval {
            return None;
        }
        self.steps
            .iter()
            .filter(|s| s.state == StepState::WaitingApproval)
            .find_map(|s| s.deadline_ms)
    }
}
