//! cordon's engine: everything between an EventBridge event and a containment call, with no
//! AWS SDK in sight.
//!
//! - `finding`: the normalized [`Finding`] and its resources.
//! - `event`: EventBridge envelopes parsed, Security Hub batches split, findings normalized.
//! - `pattern`: EventBridge event patterns compiled into one matcher.
//! - `script`: the Rhai sandbox (limits, compiled expressions, `${...}` templates).
//! - `cloud`: the traits actions call (organizations, iam, ec2, ssm, events, chat) and their types.
//! - `actions`: one file per action, written once over the cloud traits, with metadata.
//! - `config`: settings the actions read (names, break-glass roles).
//! - `secret`: a string type that never prints or serializes.
//! - `clock`: time handed to the code (now and sleep; system or virtual), RFC 3339, durations.
//! - `ids`: run ids (UUIDv7 from the runner's clock) and jitter, random or seeded.
//! - `run`: the run and step records and their states.
//! - `journal`: durable run state behind a trait: sled with group commit, or memory; versioned
//!   records with conditional updates.
//! - `playbook`: YAML playbooks loaded, validated (file, line, field) and compiled.
//! - `runner`: runs created from matches, driven step by step, approved, released.
//! - `dispatch`: the dispatcher: runs driven as tasks under global and per-account limits, one
//!   driver per run, approval timers, resume at start, graceful shutdown.
//! - `intake`: one delivered event (HTTP or SQS) taken through the dispatcher, and the verdict
//!   its transport answers with (accepted once durable, invalid for good, or retry).
//! - `policy`: least-privilege IAM policies (and the member-role template) for the playbooks.

pub mod actions;
pub mod clock;
pub mod cloud;
pub mod config;
pub mod dispatch;
pub mod event;
pub mod finding;
pub mod ids;
pub mod intake;
pub mod journal;
pub mod pattern;
pub mod playbook;
pub mod policy;
pub mod run;
pub mod runner;
pub mod script;
pub mod secret;

pub use finding::{Finding, FindingSource, Resource, SeverityLabel};
