//! The journal: durable run state, behind a trait so a second backend (a shared store with
//! per-run leases, for several runners) can be added without touching the runner.
//!
//! Every write is durable when the call returns: the runner writes intent before a side effect
//! and the result after it, and relies on that order surviving a crash.

mod sled_store;

use serde::{Deserialize, Serialize};

use crate::run::Run;

pub use sled_store::SledJournal;

/// Journal errors.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The store failed.
    #[error("journal storage: {0}")]
    Storage(String),
    /// Another process holds the journal.
    #[error(
        "journal {0} is in use by another cordon process (one process owns a journal at a time)"
    )]
    Locked(String),
    /// A record could not be decoded.
    #[error("journal record {key}: {message}")]
    Corrupt {
        /// The record.
        key: String,
        /// What was wrong.
        message: String,
    },
}

/// Journal result.
pub type Result<T, E = JournalError> = std::result::Result<T, E>;

/// What inserting a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// The run was created.
    Created,
    /// A run with the same dedup key exists: this is its id.
    Duplicate(String),
}

/// One line of a run's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// When (epoch ms).
    pub at_ms: u64,
    /// The run's state after the transition.
    pub state: String,
    /// The step concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// What happened.
    pub what: String,
}

/// Durable storage of runs.
pub trait Journal: Send + Sync {
    /// Creates a run unless its dedup key already has one; durable on return.
    fn insert(&self, run: &Run, entry: &Entry) -> Result<Inserted>;
    /// Saves the run and appends a timeline entry, atomically; durable on return.
    fn update(&self, run: &Run, entry: &Entry) -> Result<()>;
    /// A run by id.
    fn get(&self, id: &str) -> Result<Option<Run>>;
    /// Every run id, oldest first.
    fn ids(&self) -> Result<Vec<String>>;
    /// Ids of runs a restart must pick up, and of runs waiting for approval.
    fn open_ids(&self) -> Result<Vec<String>>;
    /// The run's timeline, oldest first.
    fn timeline(&self, id: &str) -> Result<Vec<Entry>>;
}
