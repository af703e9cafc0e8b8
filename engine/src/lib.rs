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
//! - `clock`: time handed to the code, RFC 3339 formatting, duration parsing.
//! - `run`: the run and step records and their states.
//! - `journal`: durable run state (sled), behind a trait.
//! - `playbook`: YAML playbooks loaded, validated (file, line, field) and compiled.
//! - `runner`: runs created from matches, driven step by step, approved, released.
//! - `policy`: least-privilege IAM policies (and the member-role template) for the playbooks.

pub mod actions;
pub mod clock;
pub mod cloud;
pub mod config;
pub mod event;
pub mod finding;
pub mod journal;
pub mod pattern;
pub mod playbook;
pub mod policy;
pub mod run;
pub mod runner;
pub mod script;
pub mod secret;

pub use finding::{Finding, FindingSource, Resource, SeverityLabel};
