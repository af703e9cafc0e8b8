//! The sled journal. sled is touched only here.
//!
//! Keys start with a record-kind byte (never reused once used), then ids, then big-endian
//! numbers, so that order on disk is order in time (run ids are UUIDv7):
//! - `I` run id -> the run's immutable part, written once (playbook text, event, finding...)
//! - `M` run id -> the run's mutable part (state, steps, error), rewritten at each transition
//! - `D` dedup key -> run id
//! - `T` run id 0x00 seq(u64 BE) -> timeline entry (JSON)
//! - `O` run id -> nothing: the run is open (unfinished or waiting), so start-up need not scan all

use std::path::Path;
use std::time::Duration;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::{Entry, Inserted, Journal, JournalError, Result};
use crate::run::{Run, RunState};

/// How long `open` waits for another handle's lock to go.
const LOCK_WAIT: Duration = Duration::from_secs(2);
const LOCK_POLL: Duration = Duration::from_millis(20);

// `R` (a whole run per record) was used by the first development builds; never reuse it.
const RUN: u8 = b'I';
const MUTABLE: u8 = b'M';
const DEDUP: u8 = b'D';
const TIMELINE: u8 = b'T';
const OPEN: u8 = b'O';

/// A journal in a sled database directory.
pub struct SledJournal {
    db: sled::Db,
    tree: sled::Tree,
    path: String,
}

fn key(kind: u8, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len());
    k.push(kind);
    k.extend_from_slice(id.as_bytes());
    k
}

fn storage(e: impl std::fmt::Display) -> JournalError {
    JournalError::Storage(e.to_string())
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(storage)
}

/// The part of a run that changes after creation; everything else is written once.
#[derive(serde::Serialize)]
struct MutableRef<'a> {
    state: RunState,
    steps: &'a [crate::run::StepRecord],
    #[serde(skip_serializing_if = "Option::is_none")]
    error: &'a Option<String>,
    updated_ms: u64,
}

const MUTABLE_FIELDS: [&str; 4] = ["state", "steps", "error", "updated_ms"];

fn encode_mutable(run: &Run) -> Result<Vec<u8>> {
    encode(&MutableRef {
        state: run.state,
        steps: &run.steps,
        error: &run.error,
        updated_ms: run.updated_ms,
    })
}

fn encode_immutable(run: &Run) -> Result<Vec<u8>> {
    let mut v = serde_json::to_value(run).map_err(storage)?;
    if let Some(map) = v.as_object_mut() {
        for f in MUTABLE_FIELDS {
            map.remove(f);
        }
    }
    encode(&v)
}

fn is_open(state: RunState) -> bool {
    state.is_unfinished() || state == RunState::WaitingApproval
}

impl SledJournal {
    /// Opens (or creates) the journal at `path`. The cache is bounded: a process holding
    /// thousands of waiting runs keeps them on disk, not in memory.
    pub fn open(path: &Path) -> Result<SledJournal> {
        let shown = path.display().to_string();
        // sled releases its file lock from a background thread after the last handle drops, so
        // a lock seen just after another user closed the journal is retried for a moment.
        let mut waited = Duration::ZERO;
        let db = loop {
            let opened = sled::Config::new()
                .path(path)
                .cache_capacity(16 * 1024 * 1024)
                .open();
            match opened {
                Ok(db) => break db,
                Err(sled::Error::Io(io))
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("lock") =>
                {
                    if waited >= LOCK_WAIT {
                        return Err(JournalError::Locked(shown));
                    }
                    std::thread::sleep(LOCK_POLL);
                    waited += LOCK_POLL;
                }
                Err(other) => return Err(JournalError::Storage(format!("{shown}: {other}"))),
            }
        };
        let tree = db.open_tree("cordon-v1").map_err(storage)?;
        Ok(SledJournal {
            db,
            tree,
            path: shown,
        })
    }

    /// Where the journal lives.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn timeline_key(&self, run: &str) -> Result<Vec<u8>> {
        let seq = self.db.generate_id().map_err(storage)?;
        let mut k = key(TIMELINE, run);
        k.push(0);
        k.extend_from_slice(&seq.to_be_bytes());
        Ok(k)
    }

    fn flush(&self) -> Result<()> {
        self.tree.flush().map(|_| ()).map_err(storage)
    }
}

impl Journal for SledJournal {
    fn insert(&self, run: &Run, entry: &Entry) -> Result<Inserted> {
        let (rk, mk, dk, ok, tk) = (
            key(RUN, &run.id),
            key(MUTABLE, &run.id),
            key(DEDUP, &run.dedup_key),
            key(OPEN, &run.id),
            self.timeline_key(&run.id)?,
        );
        let (rv, mv, ev) = (encode_immutable(run)?, encode_mutable(run)?, encode(entry)?);
        let outcome = (&self.tree,).transaction(|(t,)| {
            if let Some(existing) = t.get(&dk)? {
                return Err(ConflictableTransactionError::Abort(
                    String::from_utf8_lossy(&existing).into_owned(),
                ));
            }
            t.insert(dk.as_slice(), run.id.as_bytes())?;
            t.insert(rk.as_slice(), rv.as_slice())?;
            t.insert(mk.as_slice(), mv.as_slice())?;
            t.insert(tk.as_slice(), ev.as_slice())?;
            if is_open(run.state) {
                t.insert(ok.as_slice(), &[][..])?;
            }
            Ok(())
        });
        match outcome {
            Ok(()) => {
                self.flush()?;
                Ok(Inserted::Created)
            }
            Err(TransactionError::Abort(existing)) => Ok(Inserted::Duplicate(existing)),
            Err(TransactionError::Storage(e)) => Err(storage(e)),
        }
    }

    fn update(&self, run: &Run, entry: &Entry) -> Result<()> {
        let mut batch = sled::Batch::default();
        batch.insert(key(MUTABLE, &run.id), encode_mutable(run)?);
        batch.insert(self.timeline_key(&run.id)?, encode(entry)?);
        if is_open(run.state) {
            batch.insert(key(OPEN, &run.id), &[][..]);
        } else {
            batch.remove(key(OPEN, &run.id));
        }
        self.tree.apply_batch(batch).map_err(storage)?;
        self.flush()
    }

    fn get(&self, id: &str) -> Result<Option<Run>> {
        let corrupt = |message: String| JournalError::Corrupt {
            key: format!("run {id}"),
            message,
        };
        let Some(fixed) = self.tree.get(key(RUN, id)).map_err(storage)? else {
            return Ok(None);
        };
        let changing = self
            .tree
            .get(key(MUTABLE, id))
            .map_err(storage)?
            .ok_or_else(|| corrupt("its state record is missing".into()))?;
        let mut run: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&fixed).map_err(|e| corrupt(e.to_string()))?;
        let state: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&changing).map_err(|e| corrupt(e.to_string()))?;
        run.extend(state);
        serde_json::from_value(serde_json::Value::Object(run))
            .map(Some)
            .map_err(|e| corrupt(e.to_string()))
    }

    fn ids(&self) -> Result<Vec<String>> {
        self.ids_with(RUN)
    }

    fn open_ids(&self) -> Result<Vec<String>> {
        self.ids_with(OPEN)
    }

    fn timeline(&self, id: &str) -> Result<Vec<Entry>> {
        let mut prefix = key(TIMELINE, id);
        prefix.push(0);
        self.tree
            .scan_prefix(prefix)
            .map(|kv| {
                let (_, v) = kv.map_err(storage)?;
                serde_json::from_slice(&v).map_err(|e| JournalError::Corrupt {
                    key: format!("timeline of {id}"),
                    message: e.to_string(),
                })
            })
            .collect()
    }
}

impl SledJournal {
    fn ids_with(&self, kind: u8) -> Result<Vec<String>> {
        self.tree
            .scan_prefix([kind])
            .keys()
            .map(|k| {
                k.map(|k| String::from_utf8_lossy(&k[1..]).into_owned())
                    .map_err(storage)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{RunState, StepRecord, Trigger};
    use serde_json::json;

    fn run(id: &str, dedup: &str) -> Run {
        Run {
            id: id.into(),
            playbook: "p".into(),
            playbook_version: "1".into(),
            playbook_source: String::new(),
            playbook_file: "p.yaml".into(),
            dedup_key: dedup.into(),
            state: RunState::Pending,
            trigger: Trigger::Event,
            event: json!({}),
            finding: json!({}),
            vars: json!({}),
            account: "111122223333".into(),
            region: "us-east-1".into(),
            steps: vec![StepRecord::new("a", "notify.chat")],
            error: None,
            created_ms: 1,
            updated_ms: 1,
        }
    }

    fn entry(what: &str) -> Entry {
        Entry {
            at_ms: 1,
            state: "pending".into(),
            step: None,
            what: what.into(),
        }
    }

    #[test]
    fn dedup_key_admits_one_run_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let j = SledJournal::open(dir.path()).unwrap();
            assert_eq!(
                j.insert(&run("r1", "k"), &entry("created")).unwrap(),
                Inserted::Created
            );
            assert_eq!(
                j.insert(&run("r2", "k"), &entry("created")).unwrap(),
                Inserted::Duplicate("r1".into())
            );
            let mut r = j.get("r1").unwrap().unwrap();
            r.state = RunState::Succeeded;
            j.update(&r, &entry("done")).unwrap();
        }
        let j = SledJournal::open(dir.path()).unwrap();
        assert_eq!(j.ids().unwrap(), vec!["r1".to_string()]);
        assert!(j.get("r2").unwrap().is_none());
        assert_eq!(j.get("r1").unwrap().unwrap().state, RunState::Succeeded);
        assert!(
            j.open_ids().unwrap().is_empty(),
            "a finished run is not open"
        );
        let whats: Vec<String> = j
            .timeline("r1")
            .unwrap()
            .into_iter()
            .map(|e| e.what)
            .collect();
        assert_eq!(whats, vec!["created", "done"]);
    }
}
