//! Slack in `cordon serve`: responders approve, deny, release and look at runs from Slack.
//!
//! - `POST /v1/chat/slack/commands`: the `/cordon` slash command ([`commands`]).
//! - `POST /v1/chat/slack/interactions`: Approve / Deny button clicks ([`interactions`]).
//! - A watcher posts each step that waits for approval with its buttons ([`blocks`]).
//!
//! Every request is verified ([`verify`]) on its raw bytes before anything reads it; failures
//! are 401 and counted (`cordon_events_received_total{source="slack",outcome="forged"|...}`).
//! Identity is the workspace id and the user id (`slack:T.../U...` in the journal), never a
//! display name; `chat.slack.approvers` and `releasers` say who may do what.

mod blocks;
mod commands;
mod interactions;
mod verify;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use cordon_connectors::slack::escape;
use cordon_connectors::SlackChat;
use cordon_engine::dispatch::RunUpdate;
use cordon_engine::run::RunState;
use cordon_engine::secret::Secret;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::Server;

/// How long a posted result waits for the run to settle after a decision.
const RESULT_WAIT: Duration = Duration::from_secs(300);

/// The Slack side of the server.
pub struct Slack {
    server: Arc<Server>,
    secret: Secret,
    chat: Arc<SlackChat>,
    approvers: HashSet<String>,
    releasers: HashSet<String>,
    /// Approval requests posted (run id, step id), so a run settling twice at one step is
    /// posted once per process.
    posted: Mutex<HashSet<(String, String)>>,
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
pub fn start(server: Arc<Server>) -> Result<Router> {
    let Some(conf) = &server.app.config.chat.slack else {
        return Ok(Router::new());
    };
    let secret = conf.signing_secret()?;
    let Some(chat) = server.app.slack_chat()? else {
        return Ok(Router::new());
    };
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
        chat,
        approvers: people(&conf.approvers, "approvers")?,
        releasers: people(&conf.releasers, "releasers")?,
        posted: Mutex::new(HashSet::new()),
        server,
    });
    tracing::info!(
        channel = slack.chat.channel(),
        approvers = slack.approvers.len(),
        releasers = slack.releasers.len(),
        "Slack: taking /cordon commands and approval clicks"
    );
    tokio::spawn(watch(slack.clone()));
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

    /// Posts to the channel; a failure is logged (chat never blocks containment).
    async fn say(&self, text: &str) {
        if let Err(e) = self.chat.post_message(None, text, None).await {
            tracing::warn!(error = %e, "Slack: cannot post a message");
        }
    }

    /// After a decision or a release: waits for the run to settle and posts its state.
    fn report_when_settled(self: &Arc<Self>, run_id: String) {
        let me = self.clone();
        tokio::spawn(async move {
            let wait = me.server.dispatcher.wait(&run_id);
            let state = match tokio::time::timeout(RESULT_WAIT, wait).await {
                Ok(Ok(state)) => state,
                Ok(Err(e)) => {
                    tracing::warn!(run_id, error = %e, "Slack: cannot follow the run");
                    return;
                }
                Err(_) => RunState::Running,
            };
            if state == RunState::WaitingApproval {
                // The watcher posts the next approval request.
                return;
            }
            me.say(&format!("Run `{}` is now *{}*.", run_id, state.as_str()))
                .await;
        });
    }
}

/// Posts an approval request for every run that settles waiting for a decision.
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
        if update.settled && update.state == RunState::WaitingApproval {
            blocks::post_approval(&slack, &update.run_id).await;
        }
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
