//! The sled journal. sled is touched only here.
//!
//! Keys start with a record-kind byte (never reused once used), then ids, then big-endian
//! numbers, so that order on disk is order in time (run ids are UUIDv7):
//! - `I` run id -> the run's immutable part, written once (playbook text, event, finding...)
//! - `M` run id -> version (u64 BE) then the run's mutable part (state, steps, error) as JSON
//! - `D` dedup key -> run id
//! - `T` run id 0x00 version(u64 BE) -> the timeline entry written with that version (JSON)
//! - `O` run id -> nothing: the run is open (unfinished or waiting), so start-up need not scan all
//! - `S` -> the commit sequence (u64 BE): one more for every group of writes flushed
//!
//! Writes go through one thread (`Writer`): it takes every request waiting in its queue, checks
//! each (dedup, version), applies them all as one atomic sled batch, flushes once, and only then
//! answers each caller. Many runs' transitions share one fsync (group commit), no caller hears
//! "done" before its own bytes are durable, and the async runtime's threads never block on disk.
//! Reads run on tokio's blocking pool.
//!
//! sled recovers from a torn or corrupted log by keeping what precedes the damage, silently. So
//! the writer also records the commit sequence in a small file beside sled's own
//! (`cordon.commit`), after each flush: a journal whose recovered sequence is below the one the
//! file remembers has lost acknowledged writes, and [`SledJournal::open`] refuses it.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{mpsc, Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::oneshot;

use super::{encode, is_open, Admission, Entry, Inserted, Journal, JournalError, Result};
use serde_json::Value;

use crate::run::{Run, RunState, StepRecord, Trigger};

/// How long `open` waits for another handle's lock to go.
const LOCK_WAIT: Duration = Duration::from_secs(2);
const LOCK_POLL: Duration = Duration::from_millis(20);
/// Most writes committed by one flush.
const MAX_GROUP: usize = 1024;
/// The file beside sled's that remembers the last durable commit sequence.
const COMMIT_FILE: &str = "cordon.commit";
/// The tree name; `cordon-v1` (runs without versions) was used by earlier builds.
const TREE: &str = "cordon-v2";

const RUN: u8 = b'I';
const MUTABLE: u8 = b'M';
const DEDUP: u8 = b'D';
const TIMELINE: u8 = b'T';
const OPEN: u8 = b'O';
const SEQUENCE: u8 = b'S';

fn key(kind: u8, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len());
    k.push(kind);
    k.extend_from_slice(id.as_bytes());
    k
}

fn timeline_key(run: &str, version: u64) -> Vec<u8> {
    let mut k = key(TIMELINE, run);
    k.push(0);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

fn storage(e: impl std::fmt::Display) -> JournalError {
    JournalError::Storage(e.to_string())
}

/// The part of a run that changes after creation, as written.
#[derive(serde::Serialize)]
struct MutableRef<'a> {
    state: RunState,
    steps: &'a [StepRecord],
    #[serde(skip_serializing_if = "Option::is_none")]
    error: &'a Option<String>,
    updated_ms: u64,
}

/// The part of a run that changes after creation, as read.
#[derive(serde::Deserialize)]
struct Mutable {
    state: RunState,
    steps: Vec<StepRecord>,
    #[serde(default)]
    error: Option<String>,
    updated_ms: u64,
}

/// The part of a run written once, as written (borrowed: no copy of the event or finding).
#[derive(serde::Serialize)]
struct FixedRef<'a> {
    id: &'a str,
    playbook: &'a str,
    playbook_version: &'a str,
    playbook_source: &'a str,
    playbook_file: &'a str,
    dedup_key: &'a str,
    trigger: &'a Trigger,
    event: &'a Value,
    finding: &'a Value,
    vars: &'a Value,
    account: &'a str,
    region: &'a str,
    created_ms: u64,
}

/// The part of a run written once, as read.
#[derive(serde::Deserialize)]
struct Fixed {
    id: String,
    playbook: String,
    playbook_version: String,
    playbook_source: String,
    playbook_file: String,
    dedup_key: String,
    trigger: Trigger,
    event: Value,
    finding: Value,
    vars: Value,
    account: String,
    region: String,
    created_ms: u64,
}

fn encode_mutable(run: &Run) -> Result<Vec<u8>> {
    encode(&MutableRef {
        state: run.state,
        steps: &run.steps,
        error: &run.error,
        updated_ms: run.updated_ms,
    })
}

fn encode_immutable(run: &Run) -> Result<Vec<u8>> {
    // Destructured field by field: a field added to `Run` must be given a home here.
    let Run {
        id,
        version: _,
        playbook,
        playbook_version,
        playbook_source,
        playbook_file,
        dedup_key,
        state: _,
        trigger,
        event,
        finding,
        vars,
        account,
        region,
        steps: _,
        error: _,
        created_ms,
        updated_ms: _,
    } = run;
    encode(&FixedRef {
        id,
        playbook,
        playbook_version,
        playbook_source,
        playbook_file,
        dedup_key,
        trigger,
        event,
        finding,
        vars,
        account,
        region,
        created_ms: *created_ms,
    })
}

/// A run from its two records.
fn assemble(fixed: Fixed, changing: Mutable, version: u64) -> Run {
    Run {
        id: fixed.id,
        version,
        playbook: fixed.playbook,
        playbook_version: fixed.playbook_version,
        playbook_source: fixed.playbook_source,
        playbook_file: fixed.playbook_file,
        dedup_key: fixed.dedup_key,
        state: changing.state,
        trigger: fixed.trigger,
        event: fixed.event.into(),
        finding: fixed.finding,
        vars: fixed.vars,
        account: fixed.account,
        region: fixed.region,
        steps: changing.steps,
        error: changing.error,
        created_ms: fixed.created_ms,
        updated_ms: changing.updated_ms,
    }
}

fn versioned(version: u64, json: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + json.len());
    v.extend_from_slice(&version.to_be_bytes());
    v.extend_from_slice(json);
    v
}

fn version_of(stored: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(stored.get(..8)?.try_into().ok()?))
}

/// One write, encoded by the caller.
enum Write {
    Insert {
        id: String,
        /// The dedup record's key.
        dedup: Vec<u8>,
        fixed: Vec<u8>,
        state: Vec<u8>,
        entry: Vec<u8>,
        open: bool,
        admission: Admission,
    },
    Update {
        id: String,
        expected: u64,
        state: Vec<u8>,
        entry: Vec<u8>,
        open: bool,
    },
}

/// What a write did.
enum Written {
    Inserted(Inserted),
    Updated(u64),
}

struct Request {
    write: Write,
    reply: oneshot::Sender<Result<Written>>,
}

/// A journal in a sled database directory.
pub struct SledJournal {
    tree: sled::Tree,
    queue: Option<mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    path: String,
    /// Why the writer refuses writes, once a flush failed.
    failed: Arc<OnceLock<String>>,
}

impl SledJournal {
    /// Opens (or creates) the journal at `path`. The cache is bounded: a process holding
    /// thousands of waiting runs keeps them on disk, not in memory.
    ///
    /// Errors: [`JournalError::Locked`] when another process holds it (after waiting
    /// [`LOCK_WAIT`] for a closing handle to let go); [`JournalError::Damaged`] when sled cannot
    /// read it, or recovered fewer commits than were acknowledged (see the module docs).
    pub fn open(path: &Path) -> Result<SledJournal> {
        let shown = path.display().to_string();
        let db = open_db(path, &shown)?;
        let tree = db.open_tree(TREE).map_err(storage)?;
        let recovered = read_sequence(&tree)?;
        let commit_path = path.join(COMMIT_FILE);
        let commit = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&commit_path)
            .map_err(|e| storage(format!("{}: {e}", commit_path.display())))?;
        let mut remembered = [0u8; 8];
        let remembered = match commit.read_exact_at(&mut remembered, 0) {
            Ok(()) => u64::from_be_bytes(remembered),
            Err(_) => 0,
        };
        if remembered > recovered {
            return Err(JournalError::Damaged {
                path: shown,
                message: format!(
                    "it lost acknowledged writes ({remembered} commits were durable, the \
                     database holds {recovered})"
                ),
            });
        }
        let (queue, rx) = mpsc::channel();
        let failed = Arc::new(OnceLock::new());
        let writer = Writer {
            db,
            tree: tree.clone(),
            commit,
            sequence: recovered,
            failed: failed.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("cordon-journal".into())
            .spawn(move || writer.run(rx))
            .map_err(storage)?;
        Ok(SledJournal {
            tree,
            queue: Some(queue),
            writer: Some(handle),
            path: shown,
            failed,
        })
    }

    /// Where the journal lives.
    pub fn path(&self) -> &str {
        &self.path
    }

    async fn write(&self, write: Write) -> Result<Written> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .as_ref()
            .ok_or(JournalError::Closed)?
            .send(Request { write, reply })
            .map_err(|_| JournalError::Closed)?;
        answer.await.map_err(|_| JournalError::Closed)?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&sled::Tree) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let tree = self.tree.clone();
        tokio::task::spawn_blocking(move || f(&tree))
            .await
            .map_err(storage)?
    }
}

impl Drop for SledJournal {
    fn drop(&mut self) {
        // Closing the queue ends the writer after its last group; joining it releases sled's
        // file lock before a reopen in the same process.
        self.queue.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

fn open_db(path: &Path, shown: &str) -> Result<sled::Db> {
    // sled releases its file lock from a background thread after the last handle drops, so
    // a lock seen just after another user closed the journal is retried for a moment.
    let mut waited = Duration::ZERO;
    loop {
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(16 * 1024 * 1024);
        // sled asserts on some damaged files instead of returning an error.
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || config.open()))
            .map_err(|_| JournalError::Damaged {
                path: shown.to_string(),
                message: "sled cannot read its database".into(),
            })?;
        match opened {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(io))
                if io.kind() == std::io::ErrorKind::WouldBlock
                    || io.to_string().contains("lock") =>
            {
                if waited >= LOCK_WAIT {
                    return Err(JournalError::Locked(shown.to_string()));
                }
                std::thread::sleep(LOCK_POLL);
                waited += LOCK_POLL;
            }
            Err(sled::Error::Corruption { .. }) => {
                return Err(JournalError::Damaged {
                    path: shown.to_string(),
                    message: "sled reports a corrupted database".into(),
                })
            }
            Err(other) => return Err(JournalError::Storage(format!("{shown}: {other}"))),
        }
    }
}

fn read_sequence(tree: &sled::Tree) -> Result<u64> {
    Ok(tree
        .get([SEQUENCE])
        .map_err(storage)?
        .and_then(|v| version_of(&v))
        .unwrap_or(0))
}

/// The single writer: checks, batches, flushes, answers.
struct Writer {
    db: sled::Db,
    tree: sled::Tree,
    commit: File,
    sequence: u64,
    /// Set when a flush failed: sled's memory may now hold writes that are not durable, so
    /// nothing more is acknowledged; a restart recovers what is.
    failed: Arc<OnceLock<String>>,
}

/// What this group has written so far, read before the tree so that two writes of one group
/// see each other.
#[derive(Default)]
struct Overlay {
    versions: HashMap<String, u64>,
    dedup: HashMap<Vec<u8>, String>,
    open: HashMap<String, bool>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(r) => group.push(r),
                    Err(_) => break,
                }
            }
            self.commit_group(group);
        }
        let _ = self.db.flush();
    }

    fn commit_group(&mut self, group: Vec<Request>) {
        if let Some(why) = self.failed.get() {
            for r in group {
                let _ = r.reply.send(Err(JournalError::Storage(why.clone())));
            }
            return;
        }
        let mut batch = sled::Batch::default();
        let mut overlay = Overlay::default();
        let mut answers = Vec::with_capacity(group.len());
        for r in group {
            let result = self.apply(r.write, &mut batch, &mut overlay);
            answers.push((r.reply, result));
        }
        let next = self.sequence + 1;
        batch.insert(&[SEQUENCE][..], &next.to_be_bytes()[..]);
        let began = std::time::Instant::now();
        let durable = self
            .tree
            .apply_batch(batch)
            .and_then(|()| self.db.flush().map(|_| ()))
            .map_err(|e| e.to_string());
        tracing::trace!(
            writes = answers.len(),
            micros = began.elapsed().as_micros() as u64,
            "Journal group committed"
        );
        match durable {
            Ok(()) => {
                self.sequence = next;
                if let Err(e) = self.commit.write_all_at(&next.to_be_bytes(), 0) {
                    tracing::warn!(error = %e, "Could not record the journal's commit sequence");
                }
                for (reply, result) in answers {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "Journal flush failed; refusing further writes");
                let _ = self.failed.set(format!("flush failed: {e}"));
                for (reply, _) in answers {
                    let _ = reply.send(Err(JournalError::Storage(format!("flush failed: {e}"))));
                }
            }
        }
    }

    fn apply(&self, write: Write, batch: &mut sled::Batch, o: &mut Overlay) -> Result<Written> {
        match write {
            Write::Insert {
                id,
                dedup,
                fixed,
                state,
                entry,
                open,
                admission,
            } => {
                if let Some(existing) = self.dedup_owner(&dedup, o)? {
                    let replace = admission == Admission::Rerun && !self.is_open(&existing, o)?;
                    if !replace {
                        return Ok(Written::Inserted(Inserted::Duplicate(existing)));
                    }
                }
                batch.insert(dedup.clone(), id.as_bytes());
                batch.insert(key(RUN, &id), fixed);
                batch.insert(key(MUTABLE, &id), versioned(1, &state));
                batch.insert(timeline_key(&id, 1), entry);
                if open {
                    batch.insert(key(OPEN, &id), &[][..]);
                }
                o.dedup.insert(dedup, id.clone());
                o.versions.insert(id.clone(), 1);
                o.open.insert(id, open);
                Ok(Written::Inserted(Inserted::Created))
            }
            Write::Update {
                id,
                expected,
                state,
                entry,
                open,
            } => {
                let found = self.version(&id, o)?;
                if found != expected || found == 0 {
                    return Err(JournalError::Conflict {
                        run: id,
                        expected,
                        found,
                    });
                }
                let next = expected + 1;
                batch.insert(key(MUTABLE, &id), versioned(next, &state));
                batch.insert(timeline_key(&id, next), entry);
                if open {
                    batch.insert(key(OPEN, &id), &[][..]);
                } else {
                    batch.remove(key(OPEN, &id));
                }
                o.versions.insert(id.clone(), next);
                o.open.insert(id, open);
                Ok(Written::Updated(next))
            }
        }
    }

    fn dedup_owner(&self, dk: &[u8], o: &Overlay) -> Result<Option<String>> {
        if let Some(id) = o.dedup.get(dk) {
            return Ok(Some(id.clone()));
        }
        let stored = self.tree.get(dk).map_err(storage)?;
        Ok(stored.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    fn is_open(&self, id: &str, o: &Overlay) -> Result<bool> {
        if let Some(open) = o.open.get(id) {
            return Ok(*open);
        }
        self.tree.contains_key(key(OPEN, id)).map_err(storage)
    }

    fn version(&self, id: &str, o: &Overlay) -> Result<u64> {
        if let Some(v) = o.versions.get(id) {
            return Ok(*v);
        }
        let stored = self.tree.get(key(MUTABLE, id)).map_err(storage)?;
        Ok(stored.as_deref().and_then(version_of).unwrap_or(0))
    }
}

fn get_run(tree: &sled::Tree, id: &str) -> Result<Option<Run>> {
    let corrupt = |message: String| JournalError::Corrupt {
        key: format!("run {id}"),
        message,
    };
    let Some(fixed) = tree.get(key(RUN, id)).map_err(storage)? else {
        return Ok(None);
    };
    let changing = tree
        .get(key(MUTABLE, id))
        .map_err(storage)?
        .ok_or_else(|| corrupt("its state record is missing".into()))?;
    let version = version_of(&changing).ok_or_else(|| corrupt("its version is missing".into()))?;
    let fixed: Fixed = serde_json::from_slice(&fixed).map_err(|e| corrupt(e.to_string()))?;
    let state: Mutable =
        serde_json::from_slice(&changing[8..]).map_err(|e| corrupt(e.to_string()))?;
    Ok(Some(assemble(fixed, state, version)))
}

fn ids_with(tree: &sled::Tree, kind: u8) -> Result<Vec<String>> {
    tree.scan_prefix([kind])
        .keys()
        .map(|k| {
            k.map(|k| String::from_utf8_lossy(&k[1..]).into_owned())
                .map_err(storage)
        })
        .collect()
}

#[async_trait]
impl Journal for SledJournal {
    fn health(&self) -> Result<()> {
        match self.failed.get() {
            Some(why) => Err(JournalError::Storage(why.clone())),
            None if self.queue.is_none() => Err(JournalError::Closed),
            None => Ok(()),
        }
    }

    async fn insert(&self, run: &Run, entry: &Entry, admission: Admission) -> Result<Inserted> {
        let write = Write::Insert {
            id: run.id.clone(),
            dedup: key(DEDUP, &run.dedup_key),
            fixed: encode_immutable(run)?,
            state: encode_mutable(run)?,
            entry: encode(entry)?,
            open: is_open(run.state),
            admission,
        };
        match self.write(write).await? {
            Written::Inserted(i) => Ok(i),
            Written::Updated(_) => Err(storage("writer answered an insert with an update")),
        }
    }

    async fn update(&self, run: &Run, entry: &Entry) -> Result<u64> {
        let write = Write::Update {
            id: run.id.clone(),
            expected: run.version,
            state: encode_mutable(run)?,
            entry: encode(entry)?,
            open: is_open(run.state),
        };
        match self.write(write).await? {
            Written::Updated(v) => Ok(v),
            Written::Inserted(_) => Err(storage("writer answered an update with an insert")),
        }
    }

    async fn get(&self, id: &str) -> Result<Option<Run>> {
        let id = id.to_string();
        self.read(move |t| get_run(t, &id)).await
    }

    async fn ids(&self) -> Result<Vec<String>> {
        self.read(|t| ids_with(t, RUN)).await
    }

    async fn open_ids(&self) -> Result<Vec<String>> {
        self.read(|t| ids_with(t, OPEN)).await
    }

    async fn timeline(&self, id: &str) -> Result<Vec<Entry>> {
        let id = id.to_string();
        self.read(move |t| {
            let mut prefix = key(TIMELINE, &id);
            prefix.push(0);
            t.scan_prefix(prefix)
                .map(|kv| {
                    let (_, v) = kv.map_err(storage)?;
                    serde_json::from_slice(&v).map_err(|e| JournalError::Corrupt {
                        key: format!("timeline of {id}"),
                        message: e.to_string(),
                    })
                })
                .collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::contract;

    #[tokio::test]
    async fn keeps_the_journal_contract() {
        let dir = tempfile::tempdir().unwrap();
        let j = SledJournal::open(dir.path()).unwrap();
        contract::check(&j).await;
    }

    #[tokio::test]
    async fn every_field_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let j = SledJournal::open(dir.path()).unwrap();
        contract::every_field_round_trips(&j).await;
    }

    #[tokio::test]
    async fn runs_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let j = SledJournal::open(dir.path()).unwrap();
            contract::check(&j).await;
        }
        let j = SledJournal::open(dir.path()).unwrap();
        contract::check_after_reopen(&j).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_share_flushes_and_each_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let j = std::sync::Arc::new(SledJournal::open(dir.path()).unwrap());
        let mut tasks = Vec::new();
        for i in 0..64 {
            let j = j.clone();
            tasks.push(tokio::spawn(async move {
                let run = contract::run(&format!("r{i:02}"), &format!("k{i}"));
                j.insert(&run, &contract::entry("created"), Admission::Deliver)
                    .await
                    .unwrap()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Inserted::Created);
        }
        let commits = read_sequence(&j.tree).unwrap();
        assert!(commits <= 64, "{commits} commits for 64 writes");
        drop(j);
        let j = SledJournal::open(dir.path()).unwrap();
        assert_eq!(j.ids().await.unwrap().len(), 64);
    }

    #[tokio::test]
    async fn a_journal_that_lost_acknowledged_writes_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let j = SledJournal::open(dir.path()).unwrap();
            for i in 0..3 {
                let run = contract::run(&format!("r{i}"), &format!("k{i}"));
                j.insert(&run, &contract::entry("created"), Admission::Deliver)
                    .await
                    .unwrap();
            }
        }
        // As if sled had recovered only up to an earlier commit: the file remembers more.
        let commit = dir.path().join(COMMIT_FILE);
        std::fs::write(&commit, 1_000u64.to_be_bytes()).unwrap();
        match SledJournal::open(dir.path()) {
            Err(JournalError::Damaged { message, .. }) => {
                assert!(message.contains("lost acknowledged writes"), "{message}");
                assert!(message.contains("1000 commits"), "{message}");
            }
            other => panic!("expected Damaged, got {:?}", other.map(|_| ())),
        }
    }

    /// Cases row 18: one flipped byte in sled's file made the newest runs vanish silently.
    #[tokio::test]
    async fn a_flipped_byte_in_the_database_is_reported_not_forgotten() {
        for offset in [0, 100, 1000] {
            let dir = tempfile::tempdir().unwrap();
            {
                let j = SledJournal::open(dir.path()).unwrap();
                for i in 0..3 {
                    let run = contract::run(&format!("r{i}"), &format!("k{i}"));
                    j.insert(&run, &contract::entry("created"), Admission::Deliver)
                        .await
                        .unwrap();
                }
            }
            let db = dir.path().join("db");
            let mut bytes = std::fs::read(&db).unwrap();
            bytes[offset] ^= 0x01;
            std::fs::write(&db, &bytes).unwrap();
            match SledJournal::open(dir.path()) {
                Err(e @ JournalError::Damaged { .. }) => {
                    let shown = e.to_string();
                    assert!(shown.contains("is damaged"), "{shown}");
                    assert!(shown.contains(&dir.path().display().to_string()), "{shown}");
                }
                Ok(j) => panic!(
                    "byte {offset}: opened with {} of 3 runs",
                    j.ids().await.unwrap().len()
                ),
                Err(other) => panic!("byte {offset}: {other}"),
            }
        }
    }
}
