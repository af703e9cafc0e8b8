//! The SQS intake (`cordon serve --sqs-queue-url`): for teams that expose no inbound endpoint,
//! the EventBridge rule targets an SQS queue and cordon long-polls it.
//!
//! Delivery is at least once, as SQS's is: a message is deleted only when the handler says its
//! runs (or its dedup decision) are durable ([`Verdict::Done`]). Anything else leaves it in the
//! queue, and the journal's dedup makes a second delivery harmless. While a message is being
//! handled its visibility timeout is extended every third of that timeout, so no other reader
//! (another cordon, or this one) is handed it meanwhile.
//!
//! SQS behaviour followed (Amazon SQS Developer Guide): long polling waits at most 20 s and
//! returns at most 10 messages ("Amazon SQS short and long polling"); a visibility timeout is 0 s
//! to 12 h ("Amazon SQS visibility timeout"); a message received more than the redrive policy's
//! `maxReceiveCount` times moves to the dead-letter queue on its next receive ("Using dead-letter
//! queues in Amazon SQS"). Every receive counts, so a message retried many times (a long journal
//! outage) also ends in the dead-letter queue: give `maxReceiveCount` room for retries.
//!
//! IAM actions needed on the queue: `sqs:ReceiveMessage`, `sqs:DeleteMessage` (which also allows
//! DeleteMessageBatch) and `sqs:ChangeMessageVisibility`; `kms:Decrypt` on its key if the queue
//! uses SSE-KMS.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use aws_sdk_sqs::Client;
use aws_types::region::Region;
use aws_types::SdkConfig;
use cordon_engine::cloud::CloudError;
use cordon_engine::ids::{IdSource, RandomIds};
use serde::Serialize;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::error::classify;

/// Most messages one ReceiveMessage or DeleteMessageBatch call takes (SQS's limit).
const MAX_BATCH: usize = 10;
/// Longest long poll SQS allows, in seconds.
const MAX_WAIT_S: u64 = 20;
/// Longest visibility timeout SQS allows, in seconds (12 hours).
const MAX_VISIBILITY_S: u64 = 43_200;

/// What the handler decided about one message body (an EventBridge event, as JSON text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The finding's runs (or its dedup decision) are durable, or the event needs nothing: the
    /// message is deleted.
    Done,
    /// The body can never be valid. The message is left (not deleted) and comes back after its
    /// visibility timeout, so the queue's redrive policy moves it to the dead-letter queue after
    /// `maxReceiveCount` receives. The reason is logged; the body never is.
    Invalid(String),
    /// Busy, or the journal is unavailable: the message is left and made visible again after
    /// `retry_after` (ChangeMessageVisibility, rounded up to whole seconds, at most 12 h).
    Retry {
        /// Why, for the log.
        reason: String,
        /// When the message should be handed out again.
        retry_after: Duration,
    },
}

/// How the intake polls. [`SqsOptions::default`] is what `cordon serve` should use.
#[derive(Debug, Clone, PartialEq)]
pub struct SqsOptions {
    /// Long-poll wait of each ReceiveMessage (WaitTimeSeconds): whole seconds, 0 to 20.
    pub wait_time: Duration,
    /// Visibility timeout asked for on each receive (overriding the queue's) and renewed every
    /// third of it while a message is handled: whole seconds, 1 to 43200.
    pub visibility_timeout: Duration,
    /// Most messages handled at once (at least 1). Receiving stops while all are busy.
    pub concurrency: usize,
    /// First wait after a failed receive; doubled after each further failure, with jitter.
    pub backoff_min: Duration,
    /// Longest wait after failed receives.
    pub backoff_max: Duration,
}

impl Default for SqsOptions {
    fn default() -> SqsOptions {
        SqsOptions {
            wait_time: Duration::from_secs(MAX_WAIT_S),
            // SQS's own default for a queue.
            visibility_timeout: Duration::from_secs(30),
            concurrency: 20,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// A queue URL or option the intake cannot use.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SqsError {
    /// An option out of SQS's range.
    #[error("SQS intake option `{field}` must be {expected}, got {got}")]
    Option {
        /// The [`SqsOptions`] field.
        field: &'static str,
        /// What would be accepted.
        expected: &'static str,
        /// What was given.
        got: String,
    },
    /// The queue URL is not an http(s) URL.
    #[error("SQS queue URL `{0}` must be an http(s) URL, such as https://sqs.us-east-1.amazonaws.com/111122223333/cordon (as `aws sqs get-queue-url` prints it)")]
    QueueUrl(String),
}

/// Counts since the intake was built, for metrics (`cordon_sqs_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SqsCounts {
    /// Messages received (each receive of the same message counts).
    pub received: u64,
    /// Messages deleted after [`Verdict::Done`].
    pub deleted: u64,
    /// Messages left for the dead-letter queue ([`Verdict::Invalid`]).
    pub invalid: u64,
    /// Messages left to be retried ([`Verdict::Retry`]).
    pub retried: u64,
    /// Done messages whose delete failed: they come back, and dedup makes that harmless.
    pub delete_failures: u64,
    /// Failed ReceiveMessage calls.
    pub receive_errors: u64,
    /// Handlers that panicked: the message comes back after its visibility timeout.
    pub handler_panics: u64,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    deleted: AtomicU64,
    invalid: AtomicU64,
    retried: AtomicU64,
    delete_failures: AtomicU64,
    receive_errors: AtomicU64,
    handler_panics: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Long-polls one SQS queue and hands each message body to a handler.
pub struct SqsIntake {
    shared: Arc<Shared>,
}

/// What every message's task needs.
struct Shared {
    client: Client,
    queue_url: String,
    options: SqsOptions,
    counters: Counters,
}

/// A Done message waiting for DeleteMessageBatch.
struct Pending {
    message_id: String,
    receipt: String,
}

impl SqsIntake {
    /// An intake over `client` (its endpoint, credentials and retry are used as they are).
    ///
    /// Errors: [`SqsError`] if the URL is not http(s) or an option is out of SQS's range.
    pub fn new(
        client: Client,
        queue_url: impl Into<String>,
        options: SqsOptions,
    ) -> Result<SqsIntake, SqsError> {
        let queue_url = queue_url.into();
        if !(queue_url.starts_with("https://") || queue_url.starts_with("http://")) {
            return Err(SqsError::QueueUrl(queue_url));
        }
        options.validate()?;
        Ok(SqsIntake {
            shared: Arc::new(Shared {
                client,
                queue_url,
                options,
                counters: Counters::default(),
            }),
        })
    }

    /// An intake with a client from `config`, in the queue's own region when the URL is an AWS
    /// one (`https://sqs.<region>.amazonaws.com/<account>/<name>`), so `AWS_REGION` need not
    /// match the queue's. Errors as [`SqsIntake::new`].
    pub fn from_config(
        config: &SdkConfig,
        queue_url: impl Into<String>,
        options: SqsOptions,
    ) -> Result<SqsIntake, SqsError> {
        let queue_url = queue_url.into();
        let client = match region_of(&queue_url) {
            Some(r) => Client::new(&config.to_builder().region(Region::new(r)).build()),
            None => Client::new(config),
        };
        SqsIntake::new(client, queue_url, options)
    }

    /// The queue this intake reads.
    pub fn queue_url(&self) -> &str {
        &self.shared.queue_url
    }

    /// Counts so far (callable while [`SqsIntake::run`] is going).
    pub fn counts(&self) -> SqsCounts {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SqsCounts {
            received: get(&c.received),
            deleted: get(&c.deleted),
            invalid: get(&c.invalid),
            retried: get(&c.retried),
            delete_failures: get(&c.delete_failures),
            receive_errors: get(&c.receive_errors),
            handler_panics: get(&c.handler_panics),
        }
    }

    /// Long-polls the queue until `stop` is cancelled, handing each message body to `handle`.
    ///
    /// Up to [`SqsOptions::concurrency`] messages are handled at once, each in its own task, and
    /// receiving goes on while some are slow. A message is deleted (DeleteMessageBatch, as soon
    /// as its handler returns [`Verdict::Done`], with whatever other deletes are ready); see
    /// [`Verdict`] for the others. A body is handed over as it came, JSON or not: the handler
    /// decides. Receive errors are logged and retried after a bounded, jittered backoff; they
    /// never end the loop.
    ///
    /// On `stop`, an outstanding long poll is abandoned (a message it may have taken comes back
    /// after its visibility timeout), nothing more is received, and `run` returns once every
    /// message in flight is handled and its delete sent. Returns the counts at that point.
    pub async fn run<F, Fut>(&self, handle: F, stop: CancellationToken) -> SqsCounts
    where
        F: Fn(Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Verdict> + Send + 'static,
    {
        let handle = Arc::new(handle);
        let slots = Arc::new(Semaphore::new(self.shared.options.concurrency));
        let (deletes, pending) = mpsc::unbounded_channel();
        let deleter = tokio::spawn(self.shared.clone().delete_loop(pending));
        let mut in_flight = JoinSet::new();
        let mut failures = 0u32;
        loop {
            while in_flight.try_join_next().is_some() {}
            let permits = tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                p = take_slots(&slots) => p,
            };
            let received = tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                r = self.shared.receive(permits.len()) => r,
            };
            match received {
                Ok(messages) => {
                    failures = 0;
                    bump(&self.shared.counters.received, messages.len() as u64);
                    // Slots not filled by this receive are released by the zip.
                    for (m, permit) in messages.into_iter().zip(permits) {
                        let task = self.shared.clone().handle_one(
                            m,
                            permit,
                            handle.clone(),
                            deletes.clone(),
                        );
                        in_flight.spawn(task);
                    }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    bump(&self.shared.counters.receive_errors, 1);
                    let o = &self.shared.options;
                    let wait = backoff(o.backoff_min, o.backoff_max, failures, RandomIds.random());
                    warn!(error = %e.message, failures, wait_ms = wait.as_millis() as u64, "SQS receive failed; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
        while in_flight.join_next().await.is_some() {}
        drop(deletes);
        let _ = deleter.await;
        self.counts()
    }
}

impl SqsOptions {
    fn validate(&self) -> Result<(), SqsError> {
        let whole = |d: Duration| d.subsec_nanos() == 0;
        let bad = |field, expected, got: String| {
            Err(SqsError::Option {
                field,
                expected,
                got,
            })
        };
        if !whole(self.wait_time) || self.wait_time.as_secs() > MAX_WAIT_S {
            return bad(
                "wait_time",
                "whole seconds from 0 to 20",
                format!("{:?}", self.wait_time),
            );
        }
        let v = self.visibility_timeout;
        if !whole(v) || v.as_secs() == 0 || v.as_secs() > MAX_VISIBILITY_S {
            return bad(
                "visibility_timeout",
                "whole seconds from 1 to 43200",
                format!("{v:?}"),
            );
        }
        if self.concurrency == 0 || self.concurrency > Semaphore::MAX_PERMITS {
            return bad("concurrency", "at least 1", self.concurrency.to_string());
        }
        if self.backoff_min.is_zero() || self.backoff_max < self.backoff_min {
            let got = format!("{:?} to {:?}", self.backoff_min, self.backoff_max);
            return bad("backoff_min", "above zero and at most backoff_max", got);
        }
        Ok(())
    }
}

impl Shared {
    /// One ReceiveMessage: up to `max` messages, long-polled, with the receive count.
    async fn receive(&self, max: usize) -> Result<Vec<Message>, CloudError> {
        let o = &self.options;
        self.client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max as i32)
            .wait_time_seconds(o.wait_time.as_secs() as i32)
            .visibility_timeout(o.visibility_timeout.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map(|out| out.messages.unwrap_or_default())
            .map_err(|e| classify("ReceiveMessage", &self.queue_url, e))
    }

    /// Handles one message: the handler in its own task (so a panic is caught), the visibility
    /// extended meanwhile, then the verdict applied. `_slot` is held until then.
    async fn handle_one<F, Fut>(
        self: Arc<Self>,
        m: Message,
        _slot: OwnedSemaphorePermit,
        handle: Arc<F>,
        deletes: mpsc::UnboundedSender<Pending>,
    ) where
        F: Fn(Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Verdict> + Send + 'static,
    {
        let message_id = m.message_id.unwrap_or_default();
        let receive_count = m
            .attributes
            .as_ref()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        let Some(receipt) = m.receipt_handle else {
            warn!(message_id, "SQS message without a receipt handle; skipped");
            return;
        };
        let body = m.body.unwrap_or_default().into_bytes();
        let mut job = tokio::spawn(async move { handle(body).await });
        let verdict = self.wait_extending(&mut job, &receipt, &message_id).await;
        let c = &self.counters;
        match verdict {
            Ok(Verdict::Done) => {
                // The receiver outlives every message task (run drops it after joining them).
                let _ = deletes.send(Pending {
                    message_id,
                    receipt,
                });
            }
            Ok(Verdict::Invalid(reason)) => {
                bump(&c.invalid, 1);
                // Debug formatting escapes control characters: a reason may quote the event.
                warn!(message_id, receive_count, reason = ?reason, "SQS message can never be valid; left for the dead-letter queue");
            }
            Ok(Verdict::Retry {
                reason,
                retry_after,
            }) => {
                bump(&c.retried, 1);
                let secs = retry_after
                    .as_secs_f64()
                    .ceil()
                    .min(MAX_VISIBILITY_S as f64) as i32;
                info!(message_id, receive_count, reason = ?reason, retry_after_s = secs, "SQS message left to be retried");
                self.set_visibility(&receipt, &message_id, secs).await;
            }
            Err(e) => {
                bump(&c.handler_panics, 1);
                error!(message_id, receive_count, error = %e, "SQS message handler failed; the message comes back after its visibility timeout");
            }
        }
    }

    /// Waits for the handler, renewing the message's visibility every third of the timeout.
    async fn wait_extending(
        &self,
        job: &mut JoinHandle<Verdict>,
        receipt: &str,
        message_id: &str,
    ) -> Result<Verdict, JoinError> {
        let timeout = self.options.visibility_timeout;
        let period = timeout / 3;
        let mut tick = tokio::time::interval_at(Instant::now() + period, period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                r = &mut *job => return r,
                _ = tick.tick() => {
                    self.set_visibility(receipt, message_id, timeout.as_secs() as i32).await;
                }
            }
        }
    }

    /// ChangeMessageVisibility; a failure is logged (the message then comes back sooner).
    async fn set_visibility(&self, receipt: &str, message_id: &str, secs: i32) {
        let r = self
            .client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(secs)
            .send()
            .await;
        if let Err(e) = r {
            let e = classify("ChangeMessageVisibility", &self.queue_url, e);
            warn!(message_id, error = %e.message, "SQS visibility change failed");
        }
    }

    /// Deletes Done messages in batches of whatever is ready (up to 10), until every sender is
    /// gone and the channel is drained.
    async fn delete_loop(self: Arc<Self>, mut pending: mpsc::UnboundedReceiver<Pending>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while pending.recv_many(&mut batch, MAX_BATCH).await > 0 {
            self.delete_batch(&batch).await;
            batch.clear();
        }
    }

    async fn delete_batch(&self, batch: &[Pending]) {
        let mut req = self
            .client
            .delete_message_batch()
            .queue_url(&self.queue_url);
        for (i, p) in batch.iter().enumerate() {
            // build() fails only without an id or a receipt handle, and both are set.
            if let Ok(entry) = DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(&p.receipt)
                .build()
            {
                req = req.entries(entry);
            }
        }
        let c = &self.counters;
        match req.send().await {
            Ok(out) => {
                bump(&c.deleted, out.successful().len() as u64);
                for f in out.failed() {
                    bump(&c.delete_failures, 1);
                    let message_id = f
                        .id()
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| batch.get(i))
                        .map_or("", |p| p.message_id.as_str());
                    warn!(
                        message_id,
                        code = f.code(),
                        error = f.message().unwrap_or(""),
                        "SQS delete failed; the message will come back"
                    );
                }
            }
            Err(e) => {
                bump(&c.delete_failures, batch.len() as u64);
                let e = classify("DeleteMessageBatch", &self.queue_url, e);
                warn!(messages = batch.len(), error = %e.message, "SQS delete failed; the messages will come back");
            }
        }
    }
}

/// Waits for one free slot, then takes up to [`MAX_BATCH`] that are free at once.
async fn take_slots(slots: &Arc<Semaphore>) -> Vec<OwnedSemaphorePermit> {
    let Ok(first) = slots.clone().acquire_owned().await else {
        return Vec::new();
    };
    let mut taken = vec![first];
    while taken.len() < MAX_BATCH {
        match slots.clone().try_acquire_owned() {
            Ok(p) => taken.push(p),
            Err(_) => break,
        }
    }
    taken
}

/// The wait after `failures` failed receives in a row: `min` doubled per failure up to `max`,
/// then half of that plus a random part of the other half (jitter spreads several cordons).
fn backoff(min: Duration, max: Duration, failures: u32, random: u64) -> Duration {
    let step = min
        .saturating_mul(1 << failures.saturating_sub(1).min(20))
        .min(max);
    let ms = u64::try_from(step.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(ms / 2 + random % (ms / 2 + 1))
}

/// The region in an AWS queue URL: `https://sqs.<region>.amazonaws.com/...` or the legacy
/// `https://<region>.queue.amazonaws.com/...` (also under `.amazonaws.com.cn`).
fn region_of(queue_url: &str) -> Option<String> {
    let host = queue_url.strip_prefix("https://")?.split('/').next()?;
    let host = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let region = host
        .strip_prefix("sqs.")
        .or_else(|| host.strip_suffix(".queue"))?;
    let valid = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    valid.then(|| region.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(60));
        for (failures, step) in [
            (1, 1_000),
            (2, 2_000),
            (3, 4_000),
            (7, 60_000),
            (99, 60_000),
        ] {
            let low = backoff(min, max, failures, 0).as_millis() as u64;
            let high = backoff(min, max, failures, step / 2).as_millis() as u64;
            assert_eq!((low, high), (step / 2, step), "failures {failures}");
            let any = backoff(min, max, failures, 123_456_789).as_millis() as u64;
            assert!(
                (step / 2..=step).contains(&any),
                "failures {failures}: {any}"
            );
        }
    }

    #[test]
    fn the_region_comes_from_an_aws_queue_url_only() {
        let r = |u| region_of(u);
        assert_eq!(
            r("https://sqs.eu-west-3.amazonaws.com/111122223333/cordon").as_deref(),
            Some("eu-west-3")
        );
        assert_eq!(
            r("https://us-east-2.queue.amazonaws.com/111122223333/q").as_deref(),
            Some("us-east-2")
        );
        assert_eq!(
            r("https://sqs.cn-north-1.amazonaws.com.cn/111122223333/q").as_deref(),
            Some("cn-north-1")
        );
        assert_eq!(r("http://127.0.0.1:5000/123456789012/q"), None);
        assert_eq!(r("https://sqs.amazonaws.com.evil.example/q"), None);
        assert_eq!(r("https://sqs..amazonaws.com/q"), None);
    }

    #[test]
    fn options_outside_sqs_limits_are_refused_with_the_field_named() {
        let ok = SqsOptions::default();
        assert_eq!(ok.validate(), Ok(()));
        let cases = [
            (
                SqsOptions {
                    wait_time: Duration::from_secs(21),
                    ..ok.clone()
                },
                "wait_time",
            ),
            (
                SqsOptions {
                    wait_time: Duration::from_millis(1500),
                    ..ok.clone()
                },
                "wait_time",
            ),
            (
                SqsOptions {
                    visibility_timeout: Duration::ZERO,
                    ..ok.clone()
                },
                "visibility_timeout",
            ),
            (
                SqsOptions {
                    visibility_timeout: Duration::from_secs(43_201),
                    ..ok.clone()
                },
                "visibility_timeout",
            ),
            (
                SqsOptions {
                    concurrency: 0,
                    ..ok.clone()
                },
                "concurrency",
            ),
            (
                SqsOptions {
                    backoff_max: Duration::from_millis(1),
                    ..ok.clone()
                },
                "backoff_min",
            ),
        ];
        for (o, field) in cases {
            let e = o.validate().unwrap_err();
            assert!(
                matches!(e, SqsError::Option { field: f, .. } if f == field),
                "{e}"
            );
            assert!(e.to_string().contains(field), "{e}");
        }
    }
}
