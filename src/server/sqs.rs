//! `--sqs-queue-url`: findings from an SQS queue an EventBridge rule targets, for accounts that
//! expose no inbound endpoint. Each message goes through the same intake as `POST /v1/events`;
//! the connector deletes it only once its runs are durable, extends its visibility while it is
//! worked on, and leaves a message that can never be valid for the queue's redrive policy.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Result};
use cordon_connectors::{SqsIntake, SqsOptions, Verdict as SqsVerdict};
use cordon_engine::intake::{self, Verdict};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Server;

/// Starts the long-poll loop; it runs until `stop` is cancelled and its messages in hand are
/// answered.
pub async fn start(
    server: Arc<Server>,
    queue_url: &str,
    stop: CancellationToken,
) -> Result<JoinHandle<()>> {
    let intake = SqsIntake::from_env(queue_url, SqsOptions::default())
        .await
        .map_err(|e| anyhow!("--sqs-queue-url: {e}"))?;
    tracing::info!(queue = %queue_url, "Taking findings from SQS");
    Ok(tokio::spawn(async move {
        let handler = move |body: Vec<u8>| {
            let server = server.clone();
            async move { handle(&server, &body).await }
        };
        let counts = intake.run(handler, stop).await;
        tracing::info!(counts = ?counts, "SQS intake stopped");
    }))
}

async fn handle(server: &Server, body: &[u8]) -> SqsVerdict {
    let delivery = intake::deliver(&server.dispatcher, body, Instant::now(), &|fe| {
        server.seed(fe)
    })
    .await;
    server
        .metrics
        .event(delivery.source, delivery.verdict.label());
    match delivery.verdict {
        Verdict::Accepted {
            submitted,
            rejected,
        } => {
            for s in submitted.iter().filter(|s| s.created()) {
                if let Some(id) = &s.run_id {
                    tracing::info!(run_id = %id, playbook = %s.playbook, "Run created from SQS");
                }
            }
            for r in &rejected {
                tracing::warn!(index = r.index, error = %r.error, "Finding of a batch refused");
            }
            SqsVerdict::Done
        }
        Verdict::Ignored(_) => SqsVerdict::Done,
        Verdict::Invalid(e) | Verdict::TooLarge(e) => SqsVerdict::Invalid(e.to_string()),
        Verdict::Retry {
            reason,
            retry_after,
            ..
        } => SqsVerdict::Retry {
            reason,
            retry_after,
        },
    }
}
