//! One message from receipt to its verdict: the handler in its own task, the visibility timeout
//! renewed while it runs, then a delete, a visibility change or nothing, as the verdict says.

use std::future::Future;
use std::sync::Arc;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::task::{JoinError, JoinHandle};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{error, info, warn};

use super::{bump, Shared, Verdict, MAX_BATCH, MAX_VISIBILITY_S};
use crate::aws::error::classify;

/// A Done message waiting for DeleteMessageBatch.
pub(super) struct Pending {
    message_id: String,
    receipt: String,
}

impl Shared {
    /// Handles one message: the handler in its own task (so a panic is caught), the visibility
    /// extended meanwhile, then the verdict applied. `_slot` is held until then.
    pub(super) async fn handle_one<F, Fut>(
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
    pub(super) async fn delete_loop(
        self: Arc<Self>,
        mut pending: mpsc::UnboundedReceiver<Pending>,
    ) {
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
