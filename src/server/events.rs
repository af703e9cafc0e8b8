//! `POST /v1/events`: one EventBridge event per request, as an API destination sends it.
//!
//! What each answer makes EventBridge do (EventBridge User Guide, "API destinations",
//! retry behavior): it retries 401, 407, 409, 429 and 5xx, drops every other 4xx for good, and
//! gives up on a request after 5 seconds and sends it again. So the answer is 202 only once the
//! finding's runs are durable, 2xx for a repeat or an event with nothing to do, 400 only for a
//! body no retry can fix, 413 over 1 MiB, and 429 or 503 with `Retry-After` for anything
//! transient. Containment runs after the answer.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cordon_engine::intake::{self, Verdict};
use serde_json::{json, Value};

use super::Server;

/// The largest body accepted, in bytes (an API destination sends one event; a Security Hub
/// batch of 100 ASFF findings stays well under it).
pub const MAX_BODY: usize = 1024 * 1024;

/// Takes one event. See the module docs for the answers.
pub async fn receive(State(server): State<Arc<Server>>, request: Request<Body>) -> Response {
    let received = Instant::now();
    if !server.credentials.intake(request.headers()) {
        server.metrics.event("other", "unauthorized");
        tracing::warn!("Event refused: no valid credentials (API-key header or Basic)");
        return error(StatusCode::UNAUTHORIZED, "missing or wrong credentials");
    }
    if declared_length(request.headers()).is_some_and(|n| n > MAX_BODY) {
        return too_large(&server);
    }
    let Ok(body) = to_bytes(request.into_body(), MAX_BODY).await else {
        // The only error `to_bytes` gives a complete request is the length limit; a broken
        // connection has no one left to answer.
        return too_large(&server);
    };
    // A sender that hangs up (EventBridge after 5 s) drops this handler; the delivery goes on
    // to the end in its own task, so a run journaled is always scheduled.
    let delivery = super::detached({
        let server = server.clone();
        async move {
            let d =
                intake::deliver(&server.dispatcher, &body, received, &|fe| server.seed(fe)).await;
            server.metrics.event(d.source, d.verdict.label());
            d
        }
    })
    .await;
    match delivery {
        Some(d) => answer(d.verdict),
        None => retry_later(
            StatusCode::SERVICE_UNAVAILABLE,
            "the delivery failed; send it again",
            1,
        ),
    }
}

fn answer(verdict: Verdict) -> Response {
    match verdict {
        Verdict::Accepted {
            submitted,
            rejected,
        } => {
            for s in &submitted {
                if let (true, Some(id)) = (s.created(), &s.run_id) {
                    tracing::info!(run_id = %id, playbook = %s.playbook, account = %s.account, "Run created");
                }
            }
            for r in &rejected {
                tracing::warn!(index = r.index, error = %r.error, "Finding of a batch refused");
            }
            let status = if submitted.iter().any(|s| s.created()) {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            let rejected: Vec<Value> = rejected
                .iter()
                .map(|r| json!({"index": r.index, "id": r.id, "error": r.error.to_string()}))
                .collect();
            (
                status,
                Json(json!({"runs": submitted, "rejected": rejected})),
            )
                .into_response()
        }
        Verdict::Ignored(reason) => {
            tracing::info!(reason = %reason, "Event carries no finding; ignored");
            (StatusCode::OK, Json(json!({"ignored": reason}))).into_response()
        }
        Verdict::Invalid(e) => {
            tracing::warn!(error = %e, "Event refused: it can never be valid");
            error(StatusCode::BAD_REQUEST, &e.to_string())
        }
        Verdict::TooLarge(e) => error(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string()),
        Verdict::Retry {
            reason,
            retry_after,
            busy,
        } => {
            tracing::warn!(reason = %reason, "Event not taken now; the sender will retry");
            let status = if busy {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            retry_later(status, &reason, retry_after.as_secs().max(1))
        }
    }
}

fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn too_large(server: &Server) -> Response {
    server.metrics.event("other", "too_large");
    tracing::warn!(limit = MAX_BODY, "Event refused: body too large");
    let mut r = error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the body is over {MAX_BODY} bytes"),
    );
    // The rest of the body is not read, so the connection cannot carry another request: say so,
    // or the client's next request on it fails.
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// A JSON `{"error": message}` answer.
pub fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// An error answer with `Retry-After` (seconds).
pub fn retry_later(status: StatusCode, message: &str, seconds: u64) -> Response {
    let mut r = error(status, message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    r
}
