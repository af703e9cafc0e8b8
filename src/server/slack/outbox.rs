//! The chat outbox: every message cordon sends to Slack is first recorded durably, then sent by
//! one background task that retries with backoff. Containment never waits for Slack: a run's
//! step, a decision or a release only records a message (a local write and flush, no network)
//! and goes on; an outage delays messages, never runs.
//!
//! Storage: a sled database of its own, `chat-outbox` in the journal directory, so chat writes
//! never race the journal's conditional run updates. Trees:
//! - `runs`: per run, its one Slack message: the latest text and blocks, the `ts` and channel
//!   Slack gave the first post (later progress is a `chat.update` of that message), and which
//!   revision was last delivered. A record is removed once its last revision (the run is
//!   released) is delivered.
//! - `notes`: one-off messages (notify.chat posts, answers to a person), removed once sent.
//! - `due`: what still has to be sent, with the earliest time to try (epoch ms).
//!
//! Retries: HTTP 5xx, transport errors and Slack's transient errors back off from 0.5 s,
//! doubling, up to 30 s; HTTP 429 waits at least Slack's `Retry-After` ("Rate limits",
//! api.slack.com/apis/rate-limits) and pauses every send meanwhile (Slack's limits are per
//! method and workspace). A message Slack refuses as malformed is dropped with an error in the
//! log; every other message is retried until it is sent or is a day old.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use cordon_connectors::slack::{SlackChat, SlackError};
use cordon_engine::cloud::ErrorKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;

/// First retry delay; doubles per failed attempt.
const BACKOFF_FIRST_MS: u64 = 500;
/// Longest retry delay.
const BACKOFF_MAX_MS: u64 = 30_000;
/// A message not sent after this long is dropped (its news is stale).
const GIVE_UP_MS: u64 = 24 * 3600 * 1000;
/// The longest the sender sleeps without looking (in case a wake-up was missed).
const IDLE_MS: u64 = 60_000;

/// A run's message.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct RunMessage {
    /// Where it goes (before the first post) or is (the channel id Slack answered with).
    channel: String,
    text: String,
    blocks: Option<Value>,
    /// Slack's id of the posted message; `None` until the first post succeeds.
    ts: Option<String>,
    /// Revision of `text`/`blocks`, one more at each change.
    rev: u64,
    /// The revision Slack has.
    sent: u64,
    attempts: u32,
    /// When the first unsent revision was recorded (epoch ms).
    since_ms: u64,
    /// The latest revision is the last one: forget the record once it is delivered.
    #[serde(default)]
    last: bool,
}

/// A one-off message.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Note {
    channel: String,
    /// Shown only to this user (`chat.postEphemeral`) when set.
    user: Option<String>,
    text: String,
    attempts: u32,
    created_ms: u64,
}

/// The outbox. One per server; cheap to share behind an `Arc`.
pub struct Outbox {
    db: sled::Db,
    runs: sled::Tree,
    notes: sled::Tree,
    due: sled::Tree,
    chat: Arc<SlackChat>,
    wake: Notify,
    /// Serialises read-modify-write of records and their `due` entries (one process writes).
    write: Mutex<()>,
    /// No send before this (epoch ms): Slack said 429.
    paused_until: Mutex<u64>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn run_key(id: &str) -> Vec<u8> {
    [b"r".as_slice(), id.as_bytes()].concat()
}

fn backoff_ms(attempts: u32) -> u64 {
    BACKOFF_FIRST_MS
        .saturating_mul(1u64 << attempts.min(16))
        .min(BACKOFF_MAX_MS)
}

impl Outbox {
    /// Opens (creates) the outbox in `journal_dir/chat-outbox`; what an earlier process left
    /// unsent is sent by [`Outbox::run`].
    ///
    /// Errors: the store cannot be opened (another process holds it, a damaged file).
    pub fn open(journal_dir: &Path, chat: Arc<SlackChat>) -> Result<Arc<Outbox>> {
        let path = journal_dir.join("chat-outbox");
        let db = sled::open(&path)
            .with_context(|| format!("opening the chat outbox {}", path.display()))?;
        let tree = |name: &str| {
            db.open_tree(name)
                .with_context(|| format!("chat outbox {}: tree {name}", path.display()))
        };
        Ok(Arc::new(Outbox {
            runs: tree("runs")?,
            notes: tree("notes")?,
            due: tree("due")?,
            db,
            chat,
            wake: Notify::new(),
            write: Mutex::new(()),
            paused_until: Mutex::new(0),
        }))
    }

    /// The Slack client behind the outbox.
    pub fn chat(&self) -> &Arc<SlackChat> {
        &self.chat
    }

    /// Records the new content of run `id`'s message (posted the first time, updated in place
    /// after); durable on return. Unchanged content records nothing. `last`: no later change
    /// will come (the record is removed once this one is delivered).
    pub async fn run_message(
        &self,
        id: &str,
        text: &str,
        blocks: Option<Value>,
        last: bool,
    ) -> Result<()> {
        let key = run_key(id);
        {
            let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
            let mut m: RunMessage = match self.runs.get(&key)? {
                Some(b) => serde_json::from_slice(&b)?,
                None => RunMessage {
                    channel: self.chat.channel().to_string(),
                    ..RunMessage::default()
                },
            };
            if m.rev > 0 && m.text == text && m.blocks == blocks {
                return Ok(());
            }
            if m.sent == m.rev {
                m.since_ms = now_ms();
                m.attempts = 0;
            }
            m.text = text.to_string();
            m.blocks = blocks;
            m.last = last;
            m.rev += 1;
            self.runs.insert(&key, serde_json::to_vec(&m)?)?;
            // An entry already due (backing off) keeps its time: no hammering during an outage.
            if self.due.get(&key)?.is_none() {
                self.due.insert(&key, &now_ms().to_be_bytes())?;
            }
        }
        self.db.flush_async().await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Records a one-off message to `channel` (the configured one when `None`), shown only to
    /// `user` when set; durable on return.
    pub async fn note(&self, channel: Option<&str>, user: Option<&str>, text: &str) -> Result<()> {
        let note = Note {
            channel: channel.unwrap_or(self.chat.channel()).to_string(),
            user: user.map(str::to_string),
            text: text.to_string(),
            attempts: 0,
            created_ms: now_ms(),
        };
        let id = self.db.generate_id()?.to_be_bytes();
        let key = [b"n".as_slice(), &id].concat();
        {
            let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
            self.notes.insert(&key, serde_json::to_vec(&note)?)?;
            self.due.insert(&key, &now_ms().to_be_bytes())?;
        }
        self.db.flush_async().await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Sends what is due, forever. Spawn it once.
    pub async fn run(self: Arc<Self>) {
        loop {
            let wait = match self.send_due().await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::error!(error = %e, "Chat outbox: cannot read the outbox");
                    BACKOFF_MAX_MS
                }
            };
            if wait > 0 {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                }
            }
        }
    }

    /// Sends every due message once; returns how long to wait before looking again (ms).
    async fn send_due(&self) -> Result<u64> {
        let mut next = IDLE_MS;
        for item in self.due.iter() {
            let (key, at) = item?;
            let now = now_ms();
            let paused = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
            if paused > now {
                return Ok(paused - now);
            }
            let at = at
                .as_ref()
                .try_into()
                .map(u64::from_be_bytes)
                .unwrap_or_default();
            if at > now {
                next = next.min(at - now);
                continue;
            }
            match key.first() {
                Some(b'r') => self.send_run(&key).await?,
                Some(b'n') => self.send_note(&key).await?,
                _ => {
                    self.due.remove(&key)?;
                }
            }
            // Whatever was sent changed `due`: look again at once.
            next = 0;
        }
        Ok(next)
    }

    async fn send_run(&self, key: &[u8]) -> Result<()> {
        let Some(b) = self.runs.get(key)? else {
            self.due.remove(key)?;
            return Ok(());
        };
        let m: RunMessage = serde_json::from_slice(&b)?;
        if m.sent >= m.rev {
            self.settle_run(key, |_| {})?;
            return Ok(());
        }
        let rev = m.rev;
        let result = match &m.ts {
            None => self
                .chat
                .post_message(Some(&m.channel), &m.text, m.blocks.clone())
                .await
                .map(Some),
            Some(ts) => self
                .chat
                .update_message(&m.channel, ts, &m.text, m.blocks.clone())
                .await
                .map(|()| None),
        };
        let run_id = String::from_utf8_lossy(&key[1..]).into_owned();
        match result {
            Ok(posted) => {
                tracing::debug!(run_id, rev, "Chat outbox: run message sent");
                self.settle_run(key, |m| {
                    if let Some((channel, ts)) = posted {
                        m.channel = channel;
                        m.ts = Some(ts);
                    }
                    m.sent = m.sent.max(rev);
                    m.attempts = 0;
                    m.since_ms = now_ms();
                })?;
            }
            // The message was deleted in Slack: post it again.
            Err(e) if e.code.as_deref() == Some("message_not_found") => {
                tracing::warn!(
                    run_id,
                    "Chat outbox: the run's message is gone; posting anew"
                );
                self.settle_run(key, |m| m.ts = None)?;
            }
            Err(e) => {
                let gone = now_ms().saturating_sub(m.since_ms) > GIVE_UP_MS;
                if drop_it(&e, gone) {
                    tracing::error!(run_id, error = %e, "Chat outbox: run message dropped");
                    self.settle_run(key, |m| m.sent = rev)?;
                } else {
                    let delay = self.delay(&e, m.attempts);
                    tracing::warn!(run_id, error = %e, retry_in_ms = delay, "Chat outbox: run message not sent; retrying");
                    self.settle_run(key, |m| m.attempts += 1)?;
                    self.due.insert(key, &(now_ms() + delay).to_be_bytes())?;
                }
            }
        }
        self.db.flush_async().await?;
        Ok(())
    }

    /// Applies `change` to a run's record; keeps it due while a newer revision is unsent.
    fn settle_run(&self, key: &[u8], change: impl FnOnce(&mut RunMessage)) -> Result<()> {
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let Some(b) = self.runs.get(key)? else {
            self.due.remove(key)?;
            return Ok(());
        };
        let mut m: RunMessage = serde_json::from_slice(&b)?;
        change(&mut m);
        if m.sent >= m.rev {
            self.due.remove(key)?;
            if m.last {
                self.runs.remove(key)?;
                return Ok(());
            }
        }
        self.runs.insert(key, serde_json::to_vec(&m)?)?;
        Ok(())
    }

    async fn send_note(&self, key: &[u8]) -> Result<()> {
        let Some(b) = self.notes.get(key)? else {
            self.due.remove(key)?;
            return Ok(());
        };
        let mut n: Note = serde_json::from_slice(&b)?;
        let result = match &n.user {
            Some(user) => self.chat.post_ephemeral(&n.channel, user, &n.text).await,
            None => self
                .chat
                .post_message(Some(&n.channel), &n.text, None)
                .await
                .map(|_| ()),
        };
        let done = match result {
            Ok(()) => true,
            Err(e) => {
                let gone = now_ms().saturating_sub(n.created_ms) > GIVE_UP_MS;
                if drop_it(&e, gone) {
                    tracing::error!(error = %e, "Chat outbox: message dropped");
                    true
                } else {
                    let delay = self.delay(&e, n.attempts);
                    tracing::warn!(error = %e, retry_in_ms = delay, "Chat outbox: message not sent; retrying");
                    n.attempts += 1;
                    let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
                    self.notes.insert(key, serde_json::to_vec(&n)?)?;
                    self.due.insert(key, &(now_ms() + delay).to_be_bytes())?;
                    false
                }
            }
        };
        if done {
            let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
            self.notes.remove(key)?;
            self.due.remove(key)?;
        }
        self.db.flush_async().await?;
        Ok(())
    }

    /// The wait before the next attempt (ms); a 429 pauses every send for its `Retry-After`.
    fn delay(&self, e: &SlackError, attempts: u32) -> u64 {
        let mut delay = backoff_ms(attempts);
        if let Some(after) = e.retry_after {
            let after = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
            delay = delay.max(after);
            let mut paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
            *paused = (*paused).max(now_ms().saturating_add(after));
        }
        delay
    }
}

/// Whether a failed message is given up: Slack refused the request itself (retrying cannot
/// help), or it is a day old.
fn drop_it(e: &SlackError, too_old: bool) -> bool {
    too_old || e.kind == ErrorKind::Fatal
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_engine::secret::Secret;

    #[tokio::test]
    async fn a_run_message_is_kept_until_its_last_revision_is_delivered() {
        let dir = tempfile::tempdir().unwrap();
        // Nothing is sent here: the client is never called.
        let chat = SlackChat::new("http://127.0.0.1:9/api", Secret::new("x"), "C0").unwrap();
        let outbox = Outbox::open(dir.path(), Arc::new(chat)).unwrap();
        let key = run_key("r1");
        outbox
            .run_message("r1", "running", None, false)
            .await
            .unwrap();
        outbox
            .run_message("r1", "running", None, false)
            .await
            .unwrap();
        let m: RunMessage =
            serde_json::from_slice(&outbox.runs.get(&key).unwrap().unwrap()).unwrap();
        assert_eq!(
            (m.rev, m.sent),
            (1, 0),
            "unchanged content is no new revision"
        );
        assert!(outbox.due.get(&key).unwrap().is_some());
        outbox.settle_run(&key, |m| m.sent = 1).unwrap();
        assert!(
            outbox.due.get(&key).unwrap().is_none(),
            "delivered: nothing due"
        );
        assert!(
            outbox.runs.get(&key).unwrap().is_some(),
            "kept for later updates"
        );

        outbox
            .run_message("r1", "released", None, true)
            .await
            .unwrap();
        assert!(outbox.due.get(&key).unwrap().is_some());
        outbox.settle_run(&key, |m| m.sent = 2).unwrap();
        assert!(
            outbox.runs.get(&key).unwrap().is_none(),
            "the last revision is forgotten"
        );
        assert!(outbox.due.get(&key).unwrap().is_none());
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff_ms(0), 500);
        assert_eq!(backoff_ms(1), 1000);
        assert_eq!(backoff_ms(5), 16_000);
        assert_eq!(backoff_ms(6), 30_000);
        assert_eq!(backoff_ms(200), 30_000);
    }
}
