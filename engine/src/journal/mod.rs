//! The journal: durable run state, behind a trait so a second backend (a shared store with
//! conditional writes, such as DynamoDB, for several runners) can be added without touching the
//! runner.
//!
//! - `sled_store`: [`SledJournal`], the production backend: one sled database, written by one
//!   thread that commits many callers' writes with one flush (group commit).
//! - `memory`: [`MemoryJournal`], the same contract without durability, for drills and tests.
//!
//! The contract every backend keeps:
//! - Every write is durable when the call returns: the runner writes intent before a side effect
//!   and the result after it, and relies on that order surviving a crash.
//! - Every run record carries a version. [`Journal::update`] is conditional (compare-and-swap):
//!   it applies only if the stored version is the one the writer read, so two writers of one run
//!   (a worker driving it, a person approving or releasing it) never overwrite each other. The
//!   loser gets [`JournalError::Conflict`], reloads and decides again.
//! - One run per dedup key, unless a person re-runs on purpose ([`Admission::Rerun`]) after the
//!   key's run has finished.

mod memory;
mod sled_store;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::run::{Run, RunState};

pub use memory::MemoryJournal;
pub use sled_store::SledJournal;

/// Journal errors.
#[derive(Debug, Clone, thiserror::Error)]
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
    /// The store is damaged: it cannot be read, or it lost writes it had acknowledged. Nothing
    /// is read from it, so no run is silently forgotten.
    #[error("journal {path} is damaged: {message}. Move the directory aside (keep it for investigation) and restore it from a backup; until then cordon does not know the runs it held")]
    Damaged {
        /// The journal directory.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A conditional update lost: the run changed since the writer read it.
    #[error("run {run} changed while being updated (expected version {expected}, found {found})")]
    Conflict {
        /// Run id.
        run: String,
        /// The version the writer read.
        expected: u64,
        /// The version stored now (0: no such run).
        found: u64,
    },
    /// The journal is closed (the process is shutting down).
    #[error("journal is closed")]
    Closed,
}

/// Journal result.
pub type Result<T, E = JournalError> = std::result::Result<T, E>;

/// What inserting a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// The run was created (version 1).
    Created,
    /// A run with the same dedup key exists (and is still open, or the delivery was a
    /// duplicate): this is its id.
    Duplicate(String),
}

/// How a new run treats an earlier run with the same dedup key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A delivery (EventBridge, SQS, a file): at most one run per dedup key, ever. EventBridge
    /// delivers at least once, so a repeat must start nothing.
    Deliver,
    /// A person asked for this run on purpose: it starts unless the key's run is still open
    /// (running or waiting for approval), and then becomes the key's run.
    Rerun,
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

/// Whether a run in this state is open: a restart must pick it up, or a person must decide.
pub fn is_open(state: RunState) -> bool {
    state.is_unfinished() || state == RunState::WaitingApproval
}

/// Durable storage of runs.
#[async_trait]
pub trait Journal: Send + Sync {
    /// Whether the journal takes writes: `Err` once it refuses them (a sled journal after a
    /// failed flush), so readiness probes can say so before a write fails. Default: `Ok`.
    fn health(&self) -> Result<()> {
        Ok(())
    }

    /// Creates `run` at version 1 with its first timeline entry, unless `admission` refuses
    /// because its dedup key already has a run; durable on return.
    async fn insert(&self, run: &Run, entry: &Entry, admission: Admission) -> Result<Inserted>;
    /// Saves the run and appends a timeline entry, atomically and only if the stored version is
    /// `run.version`; durable on return. Returns the new version (`run.version + 1`).
    /// Errors: [`JournalError::Conflict`] when the run changed (or does not exist).
    async fn update(&self, run: &Run, entry: &Entry) -> Result<u64>;
    /// A run by id, with its current version.
    async fn get(&self, id: &str) -> Result<Option<Run>>;
    /// Every run id, oldest first.
    async fn ids(&self) -> Result<Vec<String>>;
    /// Ids of open runs (see [`is_open`]), oldest first.
    async fn open_ids(&self) -> Result<Vec<String>>;
    /// The run's timeline, oldest first.
    async fn timeline(&self, id: &str) -> Result<Vec<Entry>>;
}

#[cfg(test)]
pub(crate) mod contract;

/// A record as the journals store it: compact JSON. Errors: [`JournalError::Storage`].
fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| JournalError::Storage(e.to_string()))
}
