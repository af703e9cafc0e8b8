//! Button clicks (`POST /v1/chat/slack/interactions`): Slack sends a `block_actions` payload as
//! the `payload` form field ("Handling user interaction", api.slack.com/interactivity/handling).
//! Slack wants a 200 within 3 s: the click is acknowledged at once and decided in a task; the
//! outcome goes to the channel, a refusal only to the person who clicked.
//!
//! The button's `value` (`RUN STEP`) and `action_id` are cordon's own, but the payload is still
//! only trusted as far as its signature: the run and step are looked up and the clicker's
//! rights checked as for a slash command. A retried or repeated click finds the step decided.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::blocks::{APPROVE_ACTION, DENY_ACTION};
use super::commands::decide;
use super::{data, Identity, Role, Slack};

#[derive(Deserialize)]
struct Form {
    payload: String,
}

/// `POST /v1/chat/slack/interactions`.
pub async fn receive(State(s): State<Arc<Slack>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = s.refuse(&headers, &body) {
        return refused;
    }
    let retry = headers
        .get("x-slack-retry-num")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let payload: Value = match serde_urlencoded::from_bytes::<Form>(&body)
        .ok()
        .and_then(|f| serde_json::from_str(&f.payload).ok())
    {
        Some(p) => p,
        None => return bad("the body is not a `payload` form field holding JSON"),
    };
    if payload["type"] != "block_actions" {
        // Other interactions (shortcuts, view submissions) are not cordon's.
        return StatusCode::OK.into_response();
    }
    let team = payload["team"]["id"]
        .as_str()
        .or_else(|| payload["user"]["team_id"].as_str())
        .unwrap_or_default();
    let user = payload["user"]["id"].as_str().unwrap_or_default();
    let Some(who) = Identity::new(team, user) else {
        return bad("no team and user id in the payload");
    };
    let channel = payload["channel"]["id"].as_str().map(str::to_string);
    let Some(action) = payload["actions"].as_array().and_then(|a| a.first()) else {
        return bad("no action in the payload");
    };
    let approve = match action["action_id"].as_str() {
        Some(APPROVE_ACTION) => true,
        Some(DENY_ACTION) => false,
        _ => return StatusCode::OK.into_response(),
    };
    let value = action["value"].as_str().unwrap_or_default();
    let Some((run, step)) = value.split_once(' ') else {
        return bad("the button's value is not `RUN STEP`");
    };
    let (run, step) = (run.to_string(), step.to_string());
    tracing::info!(who = %who.by(), run_id = %run, step, approve, retry = ?retry, "Slack: button clicked");
    tokio::spawn(async move {
        let to_clicker = if !s.may(&who, Role::Approve) {
            tracing::warn!(who = %who.by(), run_id = %run, "Slack: click refused, not an approver");
            Some(Slack::refusal(&who, Role::Approve))
        } else {
            match decide(&s, &who, &run, Some(&step), approve).await {
                Ok(text) => {
                    s.say(&text).await;
                    None
                }
                Err(text) => Some(text),
            }
        };
        if let Some(text) = to_clicker {
            tell(&s, channel.as_deref(), &who, &text).await;
        }
    });
    StatusCode::OK.into_response()
}

/// Shows `text` to the clicker only (in the channel of the click, else the configured one).
async fn tell(s: &Slack, channel: Option<&str>, who: &Identity, text: &str) {
    let channel = channel.unwrap_or(s.chat.channel());
    if let Err(e) = s.chat.post_ephemeral(channel, &who.user, text).await {
        tracing::warn!(error = %e, "Slack: cannot answer the clicker");
    }
}

fn bad(why: &str) -> Response {
    tracing::warn!(why, "Slack: interaction not understood");
    (StatusCode::BAD_REQUEST, format!("cordon: {}", data(why))).into_response()
}
