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
//!
//! - `options`: [`SqsOptions`], checked against SQS's limits, and the queue URL.
//! - `message`: one message from receipt to its verdict (visibility heartbeat, deletes).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use aws_sdk_sqs::{Client, Config};
use aws_types::region::Region;
use aws_types::SdkConfig;
use cordon_engine::cloud::CloudError;
use cordon_engine::ids::{IdSource, RandomIds};
use serde::Serialize;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::error::classify;

mod message;
mod options;

pub use options::{SqsError, SqsOptions};

use options::region_of;

/// Most messages one ReceiveMessage or DeleteMessageBatch call takes (SQS's limit).
const MAX_BATCH: usize = 10;
/// Longest long poll SQS allows, in seconds.
const MAX_WAIT_S: u64 = 20;
/// How much longer than its wait a long poll may take before the connection is taken as dead
/// (the SDK sets no read timeout by default, so a half-open connection would hang the loop).
const POLL_MARGIN: Duration = Duration::from_secs(5);
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

    /// An intake with the standard AWS configuration chain (environment, profiles,
    /// `AWS_ENDPOINT_URL`), as [`SqsIntake::from_config`].
    pub async fn from_env(
        queue_url: impl Into<String>,
        options: SqsOptions,
    ) -> Result<SqsIntake, SqsError> {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        SqsIntake::from_config(&config, queue_url, options)
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
            .customize()
            .config_override(
                Config::builder().timeout_config(
                    TimeoutConfig::builder()
                        .operation_attempt_timeout(o.wait_time + POLL_MARGIN)
                        .build(),
                ),
            )
            .send()
            .await
            .map(|out| out.messages.unwrap_or_default())
            .map_err(|e| classify("ReceiveMessage", &self.queue_url, e))
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
}
