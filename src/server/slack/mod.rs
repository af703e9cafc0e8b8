//! Slack in `cordon serve`: responders approve, deny, release and look at runs from Slack.
//!
//! - `POST /v1/chat/slack/commands`: the `/cordon` slash command ([`commands`]).
//! - `POST /v1/chat/slack/interactions`: Approve / Deny / Undo button clicks
//!   ([`interactions`]).
//! - A watcher keeps one message per run up to date ([`blocks`]): posted at the run's first
//!   news, edited in place after, with the buttons its state calls for.
//! - Everything sent to Slack goes through a durable outbox ([`outbox`]): a Slack outage
//!   delays messages, never containment.
//!
//! Every request is verified ([`verify`]) on its raw bytes before anything reads it; failures
//! are 401 and counted (`cordon_events_received_total{source="slack",outcome="forged"|...}`).
//! Identity is the workspace id and the user id (`slack:T.../U...` in the journal), never a
//! display name; `chat.slack.approvers` and `releasers` say who may do what.

mod blocks;
mod commands;
mod interactions;
mod outbox;
mod plan;
mod verify;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use cordon_connectors::slack::escape;
use cordon_engine::cloud::{Chat, CloudError, CloudResult, Delivery, ErrorKind};
use cordon_engine::dispatch::RunUpdate;
use cordon_engine::secret::Secret;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

pub use outbox::Outbox;

use super::Server;
use crate::app::App;

/// The Slack side of the server.
pub struct Slack {
    server: Arc<Server>,
    secret: Secret,
    outbox: Arc<Outbox>,
    approvers: HashSet<String>,
    releasers: HashSet<String>,
}

/// The chat outbox when `chat.slack` is configured, its sender started. `cordon serve` gives
/// it to the runner as its chat (so `notify.chat` only queues) and to [`start`].
///
/// Errors: the Slack config is incomplete or wrong, or the outbox cannot be opened.
pub fn outbox(app: &App) -> Result<Option<Arc<Outbox>>> {
    let Some(chat) = app.slack_chat()? else {
        return Ok(None);
    };
    let outbox = Outbox::open(&app.journal_dir(), chat)?;
    tokio::spawn(outbox.clone().run());
    Ok(Some(outbox))
}

/// The engine's chat over the outbox: `notify.chat` records its message and goes on.
pub struct OutboxChat(pub Arc<Outbox>);

#[async_trait]
impl Chat for OutboxChat {
    /// Queues `text` escaped: a playbook's text carries finding fields, which are data.
    async fn post(&self, channel: Option<&str>, text: &str) -> CloudResult<Delivery> {
        self.0
            .note(channel, None, &escape(text))
            .await
            .map_err(|e| CloudError::new(ErrorKind::Retryable, format!("chat outbox: {e:#}")))?;
        Ok(Delivery::Queued)
    }
}

/// Who is asking: workspace and user ids as Slack sent them in a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    team: String,
    user: String,
}

impl Identity {
    /// Both ids must look like Slack ids (upper-case letters and digits), so that no id can
    /// carry a `/` and pass for another pair.
    fn new(team: &str, user: &str) -> Option<Identity> {
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 32
                && s.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        };
        (ok(team) && ok(user)).then(|| Identity {
            team: team.into(),
            user: user.into(),
        })
    }

    /// `T.../U...`, as in the access config.
    fn key(&self) -> String {
        format!("{}/{}", self.team, self.user)
    }

    /// Who decided, in the journal: `slack:T.../U...`.
    fn by(&self) -> String {
        format!("slack:{}", self.key())
    }

    /// A mention of the user (cordon's own markup, built from a checked id).
    fn mention(&self) -> String {
        format!("<@{}>", self.user)
    }
}

/// What someone may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Approve,
    Release,
    /// List and look at runs: anyone who may approve or release.
    Read,
}

/// The Slack routes when `chat.slack` is configured (an empty router otherwise); starts the
/// watcher that posts approval requests.
///
/// Errors: a missing signing secret or bot token, or an access entry that is not `TEAM/USER`.
pub fn start(server: Arc<Server>, outbox: Option<Arc<Outbox>>) -> Result<Router> {
    let (Some(conf), Some(outbox)) = (&server.app.config.chat.slack, outbox) else {
        return Ok(Router::new());
    };
    let secret = conf.signing_secret()?;
    let people = |list: &[String], field: &str| -> Result<HashSet<String>> {
        list.iter()
            .map(|entry| match entry.split_once('/') {
                Some((t, u)) if Identity::new(t, u).is_some() => Ok(entry.clone()),
                _ => bail!("chat.slack.{field}: {entry:?} is not TEAM_ID/USER_ID, e.g. T0123ABCD/U0456EFGH (ids, not names)"),
            })
            .collect()
    };
    let slack = Arc::new(Slack {
        secret,
        outbox,
        approvers: people(&conf.approvers, "approvers")?,
        releasers: people(&conf.releasers, "releasers")?,
        server,
    });
    tracing::info!(
        channel = slack.outbox.chat().channel(),
        approvers = slack.approvers.len(),
        releasers = slack.releasers.len(),
        "Slack: taking /cordon commands and approval clicks"
    );
    tokio::spawn(watch(slack.clone()));
    tokio::spawn(refresh_open(slack.clone()));
    Ok(Router::new()
        .route("/v1/chat/slack/commands", post(commands::receive))
        .route("/v1/chat/slack/interactions", post(interactions::receive))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(slack))
}

impl Slack {
    /// Verifies a request; `Some` is the answer to give instead of handling it: 401, or 200 for
    /// a bare `ssl_check=1` (nothing more to do).
    fn refuse(&self, headers: &HeaderMap, body: &Bytes) -> Option<Response> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        if verify::is_bare_ssl_check(body) {
            return Some(StatusCode::OK.into_response());
        }
        match verify::verify(&self.secret, headers, body, now) {
            Ok(()) => {
                self.server.metrics.event("slack", "verified");
                None
            }
            Err(why) => {
                self.server.metrics.event("slack", why.as_str());
                tracing::warn!(
                    refused = why.as_str(),
                    "Slack request refused: bad or missing signature"
                );
                Some((
                    StatusCode::UNAUTHORIZED,
                    Json(
                        json!({"error": format!("Slack signature check failed: {}", why.as_str())}),
                    ),
                )
                    .into_response())
            }
        }
    }

    /// Whether `who` may act as `role`.
    fn may(&self, who: &Identity, role: Role) -> bool {
        let key = who.key();
        match role {
            Role::Approve => self.approvers.contains(&key),
            Role::Release => self.releasers.contains(&key),
            Role::Read => self.approvers.contains(&key) || self.releasers.contains(&key),
        }
    }

    /// The refusal shown to someone not in the access config.
    fn refusal(who: &Identity, role: Role) -> String {
        let what = match role {
            Role::Approve => "approve or deny runs (chat.slack.approvers)",
            Role::Release => "release runs (chat.slack.releasers)",
            Role::Read => "use cordon here (chat.slack.approvers or releasers)",
        };
        format!(
            "Refused: {} ({}) may not {what}. Ask a cordon admin to add that id to cordon.yaml.",
            who.mention(),
            who.key()
        )
    }

    /// Posts to the channel through the outbox; a failure to record it is logged (chat never
    /// blocks containment).
    async fn say(&self, text: &str) {
        if let Err(e) = self.outbox.note(None, None, text).await {
            tracing::warn!(error = %format!("{e:#}"), "Slack: cannot queue a message");
        }
    }

    /// Shows `text` to `who` only, in `channel` (the configured one when `None`).
    async fn tell(&self, channel: Option<&str>, who: &Identity, text: &str) {
        if let Err(e) = self.outbox.note(channel, Some(&who.user), text).await {
            tracing::warn!(error = %format!("{e:#}"), "Slack: cannot queue an answer");
        }
    }

    /// Brings run `id`'s message up to date with the journal.
    async fn refresh(&self, id: &str) {
        let run = match self.server.dispatcher.runner().journal().get(id).await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(run_id = id, error = %e, "Slack: cannot read the run");
                return;
            }
        };
        let plan = plan::ApprovalPlan::of(self, &run);
        let (text, blocks) = blocks::run_message(&run, plan.as_ref());
        if let Err(e) = self.outbox.run_message(id, &text, Some(blocks)).await {
            tracing::warn!(run_id = id, error = %format!("{e:#}"), "Slack: cannot queue the run's message");
        }
    }
}

/// At start: brings the messages of open runs up to date (a crash may have come between a
/// change and its message).
async fn refresh_open(slack: Arc<Slack>) {
    match slack.server.dispatcher.runner().journal().open_ids().await {
        Ok(ids) => {
            for id in ids {
                slack.refresh(&id).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "Slack: cannot list open runs"),
    }
}

/// Keeps every run's message up to date as the dispatcher reports it.
async fn watch(slack: Arc<Slack>) {
    let mut updates = slack.server.dispatcher.subscribe();
    loop {
        let update: RunUpdate = match updates.recv().await {
            Ok(u) => u,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "Slack: run updates missed");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        slack.refresh(&update.run_id).await;
    }
}

/// An answer Slack shows only to the person who asked.
fn ephemeral(text: &str) -> Response {
    Json(json!({"response_type": "ephemeral", "text": text})).into_response()
}

/// An answer Slack shows in the channel.
fn in_channel(text: &str) -> Response {
    Json(json!({"response_type": "in_channel", "text": text})).into_response()
}

/// Data in a message: escaped for mrkdwn.
fn data(text: &str) -> String {
    escape(text)
}
