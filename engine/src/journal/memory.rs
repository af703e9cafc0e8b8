//! [`MemoryJournal`]: the journal contract in memory, with nothing durable. Drills use it (a
//! drill's runs end with the drill), and so do tests that run on a paused tokio clock, where a
//! write answered from another thread would let virtual time jump while the write is in flight.
//!
//! Runs are kept as compact JSON, as a durable journal keeps them: a parsed run holds its event
//! and finding as JSON trees several times their text's size, and a drill keeps thousands.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{encode, is_open, Admission, Entry, Inserted, Journal, JournalError, Result};
use crate::run::Run;

/// A journal in memory. Every call completes without waiting.
#[derive(Default)]
pub struct MemoryJournal {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Run id -> (version, the run as compact JSON).
    runs: BTreeMap<String, (u64, Box<[u8]>)>,
    dedup: HashMap<String, String>,
    open: BTreeSet<String>,
    timelines: HashMap<String, Vec<Entry>>,
}

impl MemoryJournal {
    /// An empty journal.
    pub fn new() -> MemoryJournal {
        MemoryJournal::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The bytes in an allocation of their own size. An encoded run's buffer grew by doubling, so
/// it is up to twice its length, and an allocator may keep a shrunk buffer in place; a copy is
/// what makes 10,000 kept runs cost their size.
fn tight(bytes: Vec<u8>) -> Box<[u8]> {
    Box::from(bytes.as_slice())
}

#[async_trait]
impl Journal for MemoryJournal {
    async fn insert(&self, run: &Run, entry: &Entry, admission: Admission) -> Result<Inserted> {
        let mut s = self.lock();
        if let Some(existing) = s.dedup.get(&run.dedup_key) {
            if admission == Admission::Deliver || s.open.contains(existing) {
                return Ok(Inserted::Duplicate(existing.clone()));
            }
        }
        let stored = (1, tight(encode(run)?));
        s.dedup.insert(run.dedup_key.clone(), run.id.clone());
        if is_open(run.state) {
            s.open.insert(run.id.clone());
        }
        s.timelines.insert(run.id.clone(), vec![entry.clone()]);
        s.runs.insert(run.id.clone(), stored);
        Ok(Inserted::Created)
    }

    async fn update(&self, run: &Run, entry: &Entry) -> Result<u64> {
        let mut s = self.lock();
        let found = s.runs.get(&run.id).map_or(0, |r| r.0);
        if found != run.version || found == 0 {
            return Err(JournalError::Conflict {
                run: run.id.clone(),
                expected: run.version,
                found,
            });
        }
        let stored = (found + 1, tight(encode(run)?));
        if is_open(run.state) {
            s.open.insert(run.id.clone());
        } else {
            s.open.remove(&run.id);
        }
        s.timelines
            .entry(run.id.clone())
            .or_default()
            .push(entry.clone());
        s.runs.insert(run.id.clone(), stored);
        Ok(found + 1)
    }

    async fn get(&self, id: &str) -> Result<Option<Run>> {
        let Some((version, json)) = self.lock().runs.get(id).cloned() else {
            return Ok(None);
        };
        let mut run: Run = serde_json::from_slice(&json).map_err(|e| JournalError::Corrupt {
            key: format!("run {id}"),
            message: e.to_string(),
        })?;
        run.version = version;
        Ok(Some(run))
    }

    async fn ids(&self) -> Result<Vec<String>> {
        Ok(self.lock().runs.keys().cloned().collect())
    }

    async fn open_ids(&self) -> Result<Vec<String>> {
        Ok(self.lock().open.iter().cloned().collect())
    }

    async fn timeline(&self, id: &str) -> Result<Vec<Entry>> {
        Ok(self.lock().timelines.get(id).cloned().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::contract;

    #[tokio::test]
    async fn keeps_the_journal_contract() {
        contract::check(&MemoryJournal::new()).await;
    }

    #[tokio::test]
    async fn every_field_round_trips() {
        contract::every_field_round_trips(&MemoryJournal::new()).await;
    }
}
