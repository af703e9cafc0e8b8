//! A Mattermost-compatible slash-command endpoint (`POST /v1/chat/mattermost/commands`), for
//! Mattermost and the chat tools that speak its protocol ("Slash commands", developers.
//! mattermost.com/integrate/slash-commands): a form body with `team_id`, `user_id`, `text` and
//! the command's `token`, answered with `{"response_type": "ephemeral"|"in_channel", "text"}`.
//!
//! Authentication: the command's token, sent by Mattermost as `Authorization: Token ...` (and
//! as the `token` form field, read only when the header is absent), compared in constant time.
//! Failures are 401 and counted (`cordon_events_received_total{source="mattermost"}`).
//! Identity is the team id and user id (`mattermost:team/user` in the journal). The commands
//! are Slack's (`list`, `status`, `approve`, `deny`, `release`, `help`); data in answers is
//! escaped for Markdown. Nothing is posted later: outcomes are read with `status`.

use std::sync::Arc;

use anyhow::Result;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use cordon_engine::secret::Secret;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::commands::execute;
use super::{ephemeral, people, Auth, Identity, Realm, Server, Slack};

/// The routes when `chat.mattermost` is configured (an empty router otherwise).
///
/// Errors: no token, or an access entry that is not `TEAM_ID/USER_ID`.
pub fn start(server: Arc<Server>) -> Result<Router> {
    let Some(conf) = &server.app.config.chat.mattermost else {
        return Ok(Router::new());
    };
    let desk = Arc::new(Slack {
        realm: Realm::Mattermost,
        auth: Auth::Token(conf.token()?),
        outbox: None,
        approvers: people(Realm::Mattermost, &conf.approvers, "approvers")?,
        releasers: people(Realm::Mattermost, &conf.releasers, "releasers")?,
        runners: people(Realm::Mattermost, &conf.runners, "runners")?,
        server: server.clone(),
    });
    tracing::info!(
        approvers = desk.approvers.len(),
        releasers = desk.releasers.len(),
        "Mattermost: taking /cordon commands"
    );
    Ok(Router::new()
        .route("/v1/chat/mattermost/commands", post(receive))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(desk))
}

/// The fields of a Mattermost slash command cordon reads.
#[derive(Debug, Deserialize)]
struct Command {
    #[serde(default)]
    token: Option<String>,
    team_id: String,
    user_id: String,
    #[serde(default)]
    text: String,
}

/// `POST /v1/chat/mattermost/commands`.
async fn receive(State(s): State<Arc<Slack>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = s.refuse(&headers, &body) {
        return refused;
    }
    let Ok(cmd) = serde_urlencoded::from_bytes::<Command>(&body) else {
        return ephemeral("cordon could not read this command (team_id, user_id, text)");
    };
    let Some(who) = Identity::of(Realm::Mattermost, &cmd.team_id, &cmd.user_id) else {
        return ephemeral("cordon could not read who is asking (team_id, user_id)");
    };
    execute(&s, &who, &cmd.text).await
}

/// The token check of [`Slack::refuse`] for Mattermost: `Some(401)` unless the request
/// carries the command's token.
pub(super) fn refuse(
    s: &Slack,
    token: &Secret,
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<Response> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Token "))
        .map(|t| t.trim().to_string());
    let given = from_header.or_else(|| {
        serde_urlencoded::from_bytes::<Command>(body)
            .ok()
            .and_then(|c| c.token)
    });
    let outcome = match &given {
        None => "unsigned",
        Some(t) if bool::from(t.as_bytes().ct_eq(token.expose().as_bytes())) => {
            s.server.metrics.event("mattermost", "verified");
            return None;
        }
        Some(_) => "forged",
    };
    s.server.metrics.event("mattermost", outcome);
    tracing::warn!(
        refused = outcome,
        "Mattermost request refused: bad or missing token"
    );
    Some(
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": format!("Mattermost token check failed: {outcome}")})),
        )
            .into_response(),
    )
}
