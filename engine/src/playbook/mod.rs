//! Playbooks: YAML in, a compiled form out (patterns built, Rhai compiled, parameters checked
//! against the action's metadata). The runner only ever sees the compiled form.
//!
//! - `raw`: the serde structs of what authors write (unknown fields refused).
//! - `compile`: checks and compiles one file; every error names file, line and field.
//! - `locate`: finds the line of a field in the YAML text.
//! - `set`: all loaded playbooks and the one matcher over their triggers.
//! - `files`: which files of a directory are playbooks, and reading one (links, size, UTF-8).
//! - `bounds`: the limits on durations and retries, checked at load.
//! - `cover`: the EventBridge rule pattern that delivers every event the playbooks could match.

mod bounds;
mod compile;
mod cover;
mod files;
pub mod inputs;
pub mod locate;
mod raw;
mod set;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::actions::Action;
use crate::pattern::Pattern;
use crate::script::{Script, Template};

pub use bounds::{APPROVAL_TIMEOUT, RETRY_ATTEMPTS, RETRY_BACKOFF, RETRY_TOTAL_WAIT, STEP_TIMEOUT};
pub use compile::compile;
pub use files::{is_candidate, read_file, MAX_PLAYBOOK_BYTES};
pub use inputs::{bind as bind_inputs, Input, InputType};
pub use set::{Match, MatchOutcome, PlaybookSet};

/// When a playbook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// On every matching finding.
    Auto,
    /// On every matching finding; steps marked `approve: true` wait for a human.
    Approval,
    /// Only when a person (CLI, chat) or a Security Hub custom action asks for it.
    Manual,
}

/// What a failed step does to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// The run fails (the default).
    Fail,
    /// The run goes on with the next step.
    Continue,
}

/// Retry policy for retryable (throttled, 5xx) errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// First backoff; doubled each retry, with jitter.
    pub backoff: Duration,
}

/// A step parameter: constant JSON, or a template to render, recursively.
#[derive(Debug)]
pub enum ParamTemplate {
    /// No `${...}` anywhere inside.
    Const(Value),
    /// A string with `${...}`.
    Text(Template),
    /// A list with templates inside.
    List(Vec<ParamTemplate>),
    /// A map with templates inside.
    Map(Vec<(String, ParamTemplate)>),
}

impl ParamTemplate {
    /// Adds the compiled `${...}` expressions inside to `out`, in order.
    pub(crate) fn scripts<'a>(&'a self, out: &mut Vec<&'a crate::script::Script>) {
        match self {
            ParamTemplate::Const(_) => {}
            ParamTemplate::Text(t) => out.extend(t.scripts()),
            ParamTemplate::List(items) => items.iter().for_each(|t| t.scripts(out)),
            ParamTemplate::Map(entries) => entries.iter().for_each(|(_, t)| t.scripts(out)),
        }
    }
}

/// A compiled step.
pub struct Step {
    /// Unique within the playbook.
    pub id: String,
    /// The action.
    pub action: &'static dyn Action,
    /// Parameters, `account` and `region` included when given.
    pub with: Vec<(String, ParamTemplate)>,
    /// Skip the step when this is false.
    pub when: Option<Script>,
    /// Wait for a human before running (mode `approval` or `manual`; always for `approval`).
    pub approve: bool,
    /// Per-attempt time limit.
    pub timeout: Duration,
    /// Retries.
    pub retry: Retry,
    /// On failure.
    pub on_error: OnError,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Step")
            .field("id", &self.id)
            .field("action", &self.action.meta().id)
            .field("approve", &self.approve)
            .finish_non_exhaustive()
    }
}

/// A compiled playbook.
#[derive(Debug)]
pub struct Playbook {
    /// Id (also what a Security Hub custom action names).
    pub id: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Version.
    pub version: String,
    /// Mode.
    pub mode: Mode,
    /// The event pattern, as written (JSON); `None` for playbooks only started by hand.
    pub pattern_json: Option<Value>,
    /// The compiled pattern.
    pub pattern: Option<Pattern>,
    /// The `when` script.
    pub when: Option<Script>,
    /// Dedup key template (default: the finding's dedup id).
    pub dedup: Option<Template>,
    /// Vars, as written.
    pub vars: Value,
    /// Steps, in order.
    pub steps: Vec<Step>,
    /// Typed inputs a person gives when starting it by hand (manual playbooks only; see
    /// [`inputs`]), sorted by name.
    pub inputs: Vec<Input>,
    /// The file it came from.
    pub file: String,
    /// The file's text (journaled with each run).
    pub source: String,
}

/// A shared compiled playbook.
pub type PlaybookRef = Arc<Playbook>;

/// A playbook that failed to load: where, which field, and what would be accepted.
/// Shown as `file:line: field: message`; the line is left out when unknown and the field when
/// the error is about the whole file (`playbooks/x.yaml: is a directory, not a playbook file`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    /// The file.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted path of the field, e.g. `steps[1].with.instance`.
    pub field: String,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}
