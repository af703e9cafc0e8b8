//! Actions: what a playbook step can do, one action per file, written once over the cloud traits.
//!
//! An action runs in three parts so that a crash never loses what `release` needs:
//! 1. [`Action::prepare`] only reads: the state before the change (an instance's groups per
//!    network interface, a key's status, a policy already there). The runner journals it, flushed,
//!    before anything changes; a re-run after a crash reuses the journaled pre-state.
//! 2. [`Action::execute`] makes the change, then reads the state back and returns that proof; a
//!    mismatch is an error, so a step is never marked done on faith.
//! 3. [`Action::undo`] reverses the change from that same pre-state, newest step first. Undo is
//!    safe whether or not the change happened, so a step interrupted mid-change can be released.
//!
//! A containment action also names the resource it holds ([`Action::holds`]), so that runs
//! containing one resource are released together: the runner undoes it only when the last of
//! them is released (`runner::release`).

mod approval;
mod attach_deny_scp;
mod deactivate_access_key;
mod disable_user;
mod isolate_instance;
mod notify_chat;
mod out_of_service;
mod put_event;
mod revoke_role_sessions;
mod rotate_access_key;
mod run_command;
mod snapshot_volumes;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::cloud::{Cloud, CloudError, ErrorKind, Target};
use crate::config::Settings;

/// Parameters of a step after `${...}` rendering, without `account` and `region` (which become
/// the [`Target`]).
pub type Params = Map<String, Value>;

/// A parameter an action accepts.
#[derive(Debug)]
pub struct Param {
    /// Name under `with:`.
    pub name: &'static str,
    /// Whether the step must give it.
    pub required: bool,
    /// What it means.
    pub description: &'static str,
}

/// What `cordon actions` prints about an action, and what the loader and `cordon policy` use.
#[derive(Debug)]
pub struct ActionMeta {
    /// The id playbooks use, e.g. `ec2.isolate_instance`.
    pub id: &'static str,
    /// One line.
    pub description: &'static str,
    /// Accepted parameters (besides `account` and `region`, which every action accepts).
    pub params: &'static [Param],
    /// IAM actions the action may call (the response role needs these).
    pub iam_actions: &'static [&'static str],
    /// A playbook step using it, in YAML.
    pub example: &'static str,
    /// Whether running it again after a crash mid-step is safe (it checks state first).
    pub idempotent: bool,
    /// What `release` does, or `None` when there is nothing to undo.
    pub undo: Option<&'static str>,
}

/// What a successful action returns.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// Visible to later steps as `steps.<id>.output`. Never holds a secret.
    pub output: Value,
    /// Whether `release` has something to undo (false when the state was already so before).
    pub undoable: bool,
    /// The state read back after the change; `Value::Null` for an action that cannot read its
    /// effect back (`notify.chat`, `eventbridge.put_event`, `approval`), so that nothing is
    /// journaled as proven that was not.
    pub proof: Value,
}

/// Why an action failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ActionError {
    /// A cloud call failed.
    #[error(transparent)]
    Cloud(#[from] CloudError),
    /// A parameter is missing or has the wrong type.
    #[error("bad parameters: {0}")]
    Params(String),
    /// The state read back after the change is not what the action made.
    #[error("verification failed: {0}")]
    Verify(String),
    /// The action refuses to act (e.g. fencing the management account).
    #[error("refused: {0}")]
    Refused(String),
}

impl ActionError {
    /// Whether the runner may retry the step.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ActionError::Cloud(e) if e.kind.is_retryable())
    }

    /// The error kind, for journals and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ActionError::Cloud(e) => match e.kind {
                ErrorKind::Retryable => "retryable",
                ErrorKind::Throttled => "throttled",
                ErrorKind::NotFound => "not_found",
                ErrorKind::Denied => "denied",
                ErrorKind::Fatal => "fatal",
            },
            ActionError::Params(_) => "params",
            ActionError::Verify(_) => "verify",
            ActionError::Refused(_) => "refused",
        }
    }
}

/// Everything an action may use.
pub struct Context<'a> {
    /// The cloud.
    pub cloud: &'a Cloud,
    /// Engine settings (names, break-glass roles).
    pub settings: &'a Settings,
    /// Account, region and run.
    pub target: Target,
    /// Stable across attempts of one step: `<run>/<step>`; tags and client tokens use it.
    pub step_key: String,
    /// Now, from the runner's clock (epoch ms).
    pub now_ms: u64,
}

/// A playbook action.
#[async_trait]
pub trait Action: Send + Sync {
    /// Metadata.
    fn meta(&self) -> &'static ActionMeta;

    /// Reads the state the change will replace. Must not change anything.
    async fn prepare(&self, _ctx: &Context<'_>, _params: &Params) -> Result<Value, ActionError> {
        Ok(Value::Null)
    }

    /// Makes the change (if not already made), reads it back, returns the proof.
    async fn execute(
        &self,
        ctx: &Context<'_>,
        params: &Params,
        prepared: &Value,
    ) -> Result<Outcome, ActionError>;

    /// Restores the pre-state returned by `prepare`; returns the state read back.
    async fn undo(&self, _ctx: &Context<'_>, _prepared: &Value) -> Result<Value, ActionError> {
        Ok(Value::Null)
    }

    /// The resource this step keeps contained, as a key that two steps share exactly when they
    /// contain the same thing the same way: the action id, then the account and the resource
    /// (e.g. `ec2.isolate_instance/111122223333/us-east-1/i-0abc`). `None` (the default) for
    /// actions that hold nothing. Releasing a run whose step holds a key that another live run
    /// also holds leaves the resource contained (see `runner::release`).
    fn holds(&self, _settings: &Settings, _target: &Target, _params: &Params) -> Option<String> {
        None
    }
}

/// A hold key: `action/part/part...`, or `None` when a part is missing or empty (the step
/// would fail on its parameters anyway).
pub(crate) fn hold_key(action: &str, parts: &[Option<&str>]) -> Option<String> {
    let mut key = action.to_string();
    for part in parts {
        let part = part.filter(|p| !p.is_empty())?;
        key.push('/');
        key.push_str(part);
    }
    Some(key)
}

/// A string parameter, for hold keys.
pub(crate) fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params.get(name).and_then(Value::as_str)
}

/// Every action cordon has, by id.
pub fn all() -> &'static [&'static dyn Action] {
    static ALL: [&dyn Action; 11] = [
        &attach_deny_scp::AttachDenyScp,
        &revoke_role_sessions::RevokeRoleSessions,
        &deactivate_access_key::DeactivateAccessKey,
        &disable_user::DisableUser,
        &rotate_access_key::RotateAccessKey,
        &isolate_instance::IsolateInstance,
        &snapshot_volumes::SnapshotVolumes,
        &run_command::RunCommand,
        &notify_chat::NotifyChat,
        &put_event::PutEvent,
        &approval::Approval,
    ];
    &ALL
}

/// The action with this id.
pub fn find(id: &str) -> Option<&'static dyn Action> {
    all().iter().copied().find(|a| a.meta().id == id)
}

/// Ids of every action, for error messages.
pub fn ids() -> Vec<&'static str> {
    all().iter().map(|a| a.meta().id).collect()
}

/// The id of the action that suspends a run for a human decision.
pub const APPROVAL: &str = "approval";

/// Decodes parameters into an action's typed arguments, with a message naming the parameter.
pub(crate) fn args<T: DeserializeOwned>(params: &Params) -> Result<T, ActionError> {
    serde_json::from_value(Value::Object(params.clone()))
        .map_err(|e| ActionError::Params(e.to_string()))
}

/// Decodes a journaled pre-state written by the same action.
pub(crate) fn record<T: DeserializeOwned>(value: &Value) -> Result<T, ActionError> {
    serde_json::from_value(value.clone())
        .map_err(|e| ActionError::Verify(format!("journaled record is unreadable: {e}")))
}

/// Encodes a record for the journal.
pub(crate) fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}
