//! Button clicks (`POST /v1/chat/slack/interactions`): Slack sends a `block_actions` payload as
//! the `payload` form field ("Handling user interaction", api.slack.com/interactivity/handling).
//!
//! Approve / Deny: the button's value is `RUN STEP PLAN_HASH`. The decision is journaled
//! before the 200 goes back (a journal write, well inside Slack's 3 s), so a server killed
//! right after the click still has it and drives the run on at its next start. A click whose
//! plan hash is not the hash of the run's plan now is void: nothing is decided, the clicker is
//! told, and the run's message is brought up to date with the plan as it is.
//!
//! Undo: the value is the run id; only releasers may, and the release runs in a task (it calls
//! the cloud), its outcome posted to the channel.
//!
//! Values and action ids are cordon's own, but the payload is only trusted as far as its
//! signature: the run and step are looked up and the clicker's rights checked as for a slash
//! command. A retried or repeated click finds the step decided and decides nothing.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::blocks::{APPROVE_ACTION, DENY_ACTION, UNDO_ACTION};
use super::commands::{decide, start_release};
use super::plan::ApprovalPlan;
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
    let value = action["value"].as_str().unwrap_or_default().to_string();
    tracing::info!(who = %who.by(), action = ?action["action_id"], value, retry = ?retry, "Slack: button clicked");
    let action = action["action_id"].as_str().unwrap_or_default().to_string();
    // In a task of its own: Slack hanging up must not cut a decision in half.
    let work = async move {
        match action.as_str() {
            APPROVE_ACTION => decide_click(&s, &who, channel, &value, true).await,
            DENY_ACTION => decide_click(&s, &who, channel, &value, false).await,
            UNDO_ACTION => undo_click(&s, &who, channel, &value).await,
            _ => StatusCode::OK.into_response(),
        }
    };
    crate::server::detached(work)
        .await
        .unwrap_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Approve or Deny: checks the clicker and the plan, journals the decision, then answers.
async fn decide_click(
    s: &Arc<Slack>,
    who: &Identity,
    channel: Option<String>,
    value: &str,
    approve: bool,
) -> Response {
    let parts: Vec<&str> = value.split(' ').collect();
    let [run, step, shown] = parts[..] else {
        return bad("the button's value is not `RUN STEP PLAN`");
    };
    let to_clicker = if !s.may(who, Role::Approve) {
        tracing::warn!(who = %who.by(), run_id = run, "Slack: click refused, not an approver");
        Some(Slack::refusal(who, Role::Approve))
    } else if let Some(void) = changed_plan(s, run, step, shown).await {
        tracing::warn!(who = %who.by(), run_id = run, step, "Slack: click void, the plan changed");
        s.refresh(run).await;
        s.say(&format!(
            "The plan of run `{}` changed after its message was shown; a click by {} on the old plan decided nothing. The run's message now shows the current plan.",
            data(run),
            who.mention()
        ))
        .await;
        Some(void)
    } else {
        match decide(s, who, run, Some(step), approve).await {
            Ok(text) => {
                s.say(&text).await;
                None
            }
            Err(text) => Some(text),
        }
    };
    if let Some(text) = to_clicker {
        s.tell(channel.as_deref(), who, &text).await;
    }
    StatusCode::OK.into_response()
}

/// `Some(what to tell the clicker)` when step `step` of run `id` waits and its plan's hash is
/// not `shown`. A step that no longer waits is left to `decide`, which says who decided it.
async fn changed_plan(s: &Arc<Slack>, id: &str, step: &str, shown: &str) -> Option<String> {
    let run = s
        .server
        .dispatcher
        .runner()
        .journal()
        .get(id)
        .await
        .ok()??;
    let now = ApprovalPlan::of(s, &run)?;
    if run.steps[now.step].id != step || now.hash == shown {
        return None;
    }
    Some(format!(
        "Not decided: the plan of run `{}` changed since the message you clicked (plan {} shown, {} now). Review the run's updated message and click again.",
        data(id),
        data(shown),
        now.hash
    ))
}

/// Undo: releasers only; the release runs in a task.
async fn undo_click(s: &Arc<Slack>, who: &Identity, channel: Option<String>, id: &str) -> Response {
    if !s.may(who, Role::Release) {
        tracing::warn!(who = %who.by(), run_id = id, "Slack: undo refused, not a releaser");
        s.tell(channel.as_deref(), who, &Slack::refusal(who, Role::Release))
            .await;
        return StatusCode::OK.into_response();
    }
    if let Err(text) = start_release(s, who, id).await {
        s.tell(channel.as_deref(), who, &text).await;
    }
    StatusCode::OK.into_response()
}

fn bad(why: &str) -> Response {
    tracing::warn!(why, "Slack: interaction not understood");
    (StatusCode::BAD_REQUEST, format!("cordon: {}", data(why))).into_response()
}
