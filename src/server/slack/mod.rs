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
mod manual;
pub mod mattermost;
mod outbox;
mod plan;
mod progress;
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
use cordon_engine::run::RunState;
use cordon_engine::secret::Secret;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

pub use outbox::Outbox;
pub use progress::Progress;

use super::Server;
use crate::app::App;

/// One chat's side of the server (Slack, or a Mattermost-compatible tool): its requests'
/// authentication, its access lists and, for Slack, the outbox its messages go through.
pub struct Slack {
    server: Arc<Server>,
    realm: Realm,
    auth: Auth,
    /// `None` for chats cordon only answers (Mattermost): nothing is posted later.
    outbox: Option<Arc<Outbox>>,
    approvers: HashSet<String>,
    releasers: HashSet<String>,
    runners: HashSet<String>,
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

/// Which chat a person came through: their ids are that chat's, and so is the markup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Realm {
    /// Slack: ids are upper-case letters and digits (`T0123ABCD`, `U0456EFGH`); mrkdwn.
    Slack,
    /// Mattermost (and chat tools speaking its slash-command protocol): ids are 26 lower-case
    /// letters and digits; Markdown.
    Mattermost,
}

impl Realm {
    /// `slack` / `mattermost`: the config section and the journal's prefix.
    pub fn name(self) -> &'static str {
        match self {
            Realm::Slack => "slack",
            Realm::Mattermost => "mattermost",
        }
    }

    /// Whether `id` looks like one of this chat's ids, so that no id can carry a `/` (or
    /// markup) and pass for another pair.
    fn is_id(self, id: &str) -> bool {
        let allowed = |b: u8| match self {
            Realm::Slack => b.is_ascii_uppercase() || b.is_ascii_digit(),
            Realm::Mattermost => b.is_ascii_lowercase() || b.is_ascii_digit(),
        };
        !id.is_empty() && id.len() <= 32 && id.bytes().all(allowed)
    }

    /// Text that is data, made inert: for Slack, its three mrkdwn entities; for Markdown, a
    /// code span (fenced with more backticks than the text holds, so the text cannot close
    /// it). Mattermost shows a code span as typed and finds no mention in it, so `@channel`,
    /// links and emphasis from data stay text. Cordon's own text may put a code span around
    /// it again: a longer fence is still one code span.
    pub fn data(self, text: &str) -> String {
        match self {
            Realm::Slack => escape(text),
            Realm::Mattermost => {
                if text.is_empty() {
                    return String::new();
                }
                let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
                let fence = "`".repeat(longest + 1);
                let pad = if text.starts_with('`') || text.ends_with('`') {
                    " "
                } else {
                    ""
                };
                format!("{fence}{pad}{text}{pad}{fence}")
            }
        }
    }
}

/// Who is asking: team (workspace) and user ids as the chat sent them in an authenticated
/// request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    realm: Realm,
    team: String,
    user: String,
}

impl Identity {
    /// A Slack identity; `None` unless both look like Slack ids.
    fn new(team: &str, user: &str) -> Option<Identity> {
        Identity::of(Realm::Slack, team, user)
    }

    /// An identity of `realm`; `None` unless both look like its ids.
    fn of(realm: Realm, team: &str, user: &str) -> Option<Identity> {
        (realm.is_id(team) && realm.is_id(user)).then(|| Identity {
            realm,
            team: team.into(),
            user: user.into(),
        })
    }

    /// `TEAM/USER`, as in the access config.
    fn key(&self) -> String {
        format!("{}/{}", self.team, self.user)
    }

    /// Who decided, in the journal: `slack:T.../U...` or `mattermost:team/user`.
    fn by(&self) -> String {
        format!("{}:{}", self.realm.name(), self.key())
    }

    /// A mention of the user in Slack (cordon's own markup, built from a checked id); in
    /// Markdown chats, the journal's name for them.
    fn mention(&self) -> String {
        match self.realm {
            Realm::Slack => format!("<@{}>", self.user),
            Realm::Mattermost => format!("`{}`", self.by()),
        }
    }
}

/// How requests prove they come from the chat.
enum Auth {
    /// Slack's v0 request signing.
    Signing(Secret),
    /// A shared token (Mattermost's slash-command token).
    Token(Secret),
}

/// What someone may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Approve,
    Release,
    /// Start a manual playbook (`/cordon run`).
    Run,
    /// List and look at runs: anyone who may approve or release.
    Read,
}

/// The Slack routes when `chat.slack` is configured (an empty router otherwise); starts the
/// tasks that keep run messages up to date: on the dispatcher's updates, on each step start
/// (`steps`, from [`Progress`]), and once at start for open runs.
///
/// Errors: a missing signing secret or bot token, or an access entry that is not `TEAM/USER`.
pub fn start(
    server: Arc<Server>,
    outbox: Option<Arc<Outbox>>,
    steps: progress::Steps,
) -> Result<Router> {
    let (Some(conf), Some(outbox)) = (&server.app.config.chat.slack, outbox) else {
        return Ok(Router::new());
    };
    let secret = conf.signing_secret()?;
    let channel = outbox.chat().channel().to_string();
    let slack = Arc::new(Slack {
        realm: Realm::Slack,
        auth: Auth::Signing(secret),
        outbox: Some(outbox),
        approvers: people(Realm::Slack, &conf.approvers, "approvers")?,
        releasers: people(Realm::Slack, &conf.releasers, "releasers")?,
        runners: people(Realm::Slack, &conf.runners, "runners")?,
        server,
    });
    tracing::info!(
        channel,
        approvers = slack.approvers.len(),
        releasers = slack.releasers.len(),
        "Slack: taking /cordon commands and approval clicks"
    );
    tokio::spawn(watch(slack.clone()));
    tokio::spawn(refresh_open(slack.clone()));
    tokio::spawn(follow_steps(slack.clone(), steps));
    Ok(Router::new()
        .route("/v1/chat/slack/commands", post(commands::receive))
        .route("/v1/chat/slack/interactions", post(interactions::receive))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(slack))
}

/// An access list of `TEAM/USER` entries, checked.
fn people(realm: Realm, list: &[String], field: &str) -> Result<HashSet<String>> {
    let example = match realm {
        Realm::Slack => "T0123ABCD/U0456EFGH",
        Realm::Mattermost => "4xp9fdt77pncbef59f4k1qe83o/9w7bzqbt9jdnbgcuoagxzyvg7c",
    };
    list.iter()
        .map(|entry| match entry.split_once('/') {
            Some((t, u)) if Identity::of(realm, t, u).is_some() => Ok(entry.clone()),
            _ => bail!(
                "chat.{}.{field}: {entry:?} is not TEAM_ID/USER_ID, e.g. {example} (ids, not names)",
                realm.name()
            ),
        })
        .collect()
}

impl Slack {
    /// Text that is data, made inert for this chat's markup.
    fn data(&self, text: &str) -> String {
        self.realm.data(text)
    }

    /// Authenticates a request; `Some` is the answer to give instead of handling it: 401, or
    /// 200 for a bare Slack `ssl_check=1` (nothing more to do).
    fn refuse(&self, headers: &HeaderMap, body: &Bytes) -> Option<Response> {
        let secret = match &self.auth {
            Auth::Signing(secret) => secret,
            Auth::Token(token) => return mattermost::refuse(self, token, headers, body),
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        if verify::is_bare_ssl_check(body) {
            return Some(StatusCode::OK.into_response());
        }
        match verify::verify(secret, headers, body, now) {
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
            Role::Run => self.runners.contains(&key),
            Role::Read => {
                self.approvers.contains(&key)
                    || self.releasers.contains(&key)
                    || self.runners.contains(&key)
            }
        }
    }

    /// The refusal shown to someone not in the access config.
    fn refusal(who: &Identity, role: Role) -> String {
        let chat = who.realm.name();
        let what = match role {
            Role::Approve => format!("approve or deny runs (chat.{chat}.approvers)"),
            Role::Release => format!("release runs (chat.{chat}.releasers)"),
            Role::Run => format!("start playbooks (chat.{chat}.runners)"),
            Role::Read => format!("use cordon here (chat.{chat}.approvers, releasers or runners)"),
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
        let Some(outbox) = &self.outbox else {
            tracing::info!(
                chat = self.realm.name(),
                text,
                "Not posted (this chat is only answered)"
            );
            return;
        };
        if let Err(e) = outbox.note(None, None, text).await {
            tracing::warn!(error = %format!("{e:#}"), "Slack: cannot queue a message");
        }
    }

    /// Shows `text` to `who` only, in `channel` (the configured one when `None`).
    async fn tell(&self, channel: Option<&str>, who: &Identity, text: &str) {
        let Some(outbox) = &self.outbox else {
            return;
        };
        if let Err(e) = outbox.note(channel, Some(&who.user), text).await {
            tracing::warn!(error = %format!("{e:#}"), "Slack: cannot queue an answer");
        }
    }

    /// Brings run `id`'s message up to date with the journal.
    async fn refresh(&self, id: &str) {
        let Some(outbox) = &self.outbox else {
            return;
        };
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
        // A released run's message changes no more: the outbox may forget it once sent.
        let last = run.state == RunState::Released;
        if let Err(e) = outbox.run_message(id, &text, Some(blocks), last).await {
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

/// Brings a run's message up to date each time one of its steps starts.
async fn follow_steps(slack: Arc<Slack>, mut steps: progress::Steps) {
    while let Some(id) = steps.recv().await {
        slack.refresh(&id).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_inert_in_each_chats_markup() {
        assert_eq!(
            Realm::Slack.data("<!channel> & co"),
            "&lt;!channel&gt; &amp; co"
        );
        assert_eq!(Realm::Mattermost.data("@channel"), "`@channel`");
        assert_eq!(Realm::Mattermost.data("a`b``c"), "```a`b``c```");
        assert_eq!(Realm::Mattermost.data("`x`"), "`` `x` ``");
        assert_eq!(Realm::Mattermost.data(""), "");
    }

    #[test]
    fn ids_are_checked_per_chat_and_name_the_chat_in_the_journal() {
        assert!(Identity::of(Realm::Slack, "T0TEAM", "U0ALICE").is_some());
        assert!(Identity::of(Realm::Slack, "t0team", "U0ALICE").is_none());
        assert!(Identity::of(Realm::Slack, "T0TEAM/U0X", "U0ALICE").is_none());
        let m = Identity::of(
            Realm::Mattermost,
            "4xp9fdt77pncbef59f4k1qe83o",
            "9w7bzqbt9j",
        )
        .unwrap();
        assert_eq!(m.by(), "mattermost:4xp9fdt77pncbef59f4k1qe83o/9w7bzqbt9j");
        assert!(Identity::of(Realm::Mattermost, "T0TEAM", "U0ALICE").is_none());
        assert!(Identity::of(Realm::Mattermost, "team", "").is_none());
    }
}
