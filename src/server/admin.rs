//! The admin API the CLI uses while `cordon serve` holds the journal (sled lets one process open
//! it): runs listed and shown, approved, released, resumed; playbooks reloaded. Every route
//! takes the admin token (`Authorization: Bearer`), which the server writes to the journal
//! directory for the CLI (see [`super::discovery`]).
//!
//! Answers are JSON. Errors are `{"error": message}` with 401 (no token), 404 (no such run),
//! 409 (the request does not fit the run's state), 422 (playbooks that fail validation) or 503
//! (journal or shutdown).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cordon_engine::dispatch::DispatchError;
use cordon_engine::journal::JournalError;
use cordon_engine::run::{Run, RunState};
use cordon_engine::runner::RunnerError;
use serde::Deserialize;
use serde_json::{json, Value};

use super::events::error;
use super::Server;

/// How long `approve` waits for the run to move on before answering with its state then.
const SETTLE_WAIT: Duration = Duration::from_secs(60);

/// One line of `GET /v1/runs` (and of `cordon runs`).
pub fn summary(r: &Run) -> Value {
    json!({
        "id": r.id, "playbook": r.playbook, "state": r.state, "account": r.account,
        "finding": r.finding.get("id"), "created_ms": r.created_ms, "updated_ms": r.updated_ms,
    })
}

fn unauthorized() -> Response {
    error(StatusCode::UNAUTHORIZED, "missing or wrong admin token")
}

fn failed(e: DispatchError) -> Response {
    let status = match &e {
        DispatchError::Runner(RunnerError::NoRun(_)) => StatusCode::NOT_FOUND,
        DispatchError::Runner(RunnerError::State(_)) => StatusCode::CONFLICT,
        DispatchError::Runner(RunnerError::Journal(JournalError::Conflict { .. })) => {
            StatusCode::CONFLICT
        }
        DispatchError::Runner(RunnerError::Playbook { .. }) => StatusCode::CONFLICT,
        DispatchError::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
        DispatchError::ShuttingDown | DispatchError::Runner(RunnerError::Journal(_)) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    error(status, &e.to_string())
}

fn journal_failed(e: JournalError) -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, &format!("journal: {e}"))
}

/// `GET /v1/runs`: every run, oldest first.
pub async fn list(State(s): State<Arc<Server>>, headers: HeaderMap) -> Response {
    if !s.credentials.admin(&headers) {
        return unauthorized();
    }
    let journal = s.dispatcher.runner().journal();
    let ids = match journal.ids().await {
        Ok(ids) => ids,
        Err(e) => return journal_failed(e),
    };
    let mut runs = Vec::with_capacity(ids.len());
    for id in ids {
        match journal.get(&id).await {
            Ok(Some(r)) => runs.push(summary(&r)),
            Ok(None) => {}
            Err(e) => return journal_failed(e),
        }
    }
    Json(Value::Array(runs)).into_response()
}

/// `GET /v1/runs/{id}`: `{"run": Run, "timeline": [Entry]}`.
pub async fn show(
    State(s): State<Arc<Server>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !s.credentials.admin(&headers) {
        return unauthorized();
    }
    let journal = s.dispatcher.runner().journal();
    let run = match journal.get(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => return error(StatusCode::NOT_FOUND, &format!("no run {id}")),
        Err(e) => return journal_failed(e),
    };
    match journal.timeline(&id).await {
        Ok(timeline) => Json(json!({"run": run, "timeline": timeline})).into_response(),
        Err(e) => journal_failed(e),
    }
}

/// The body of `POST /v1/runs/{id}/approve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// The approval step's id.
    pub step: String,
    /// Approve (true) or deny (false).
    pub approve: bool,
    /// Who decides.
    pub by: String,
}

/// `POST /v1/runs/{id}/approve`: records the decision; the run goes on. Answers `{"state"}`
/// once the run settled again (or after a minute, with the state then).
pub async fn approve(
    State(s): State<Arc<Server>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(d): Json<Decision>,
) -> Response {
    if !s.credentials.admin(&headers) {
        return unauthorized();
    }
    let decided = super::detached({
        let (s, id, d) = (s.clone(), id.clone(), d.clone());
        async move { s.dispatcher.decide(&id, &d.step, d.approve, &d.by).await }
    })
    .await;
    let Some(decided) = decided else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "the decision failed");
    };
    let state = match decided {
        Ok(RunState::Running) => {
            match tokio::time::timeout(SETTLE_WAIT, s.dispatcher.wait(&id)).await {
                Ok(Ok(state)) => state,
                Ok(Err(e)) => return failed(e),
                Err(_) => RunState::Running,
            }
        }
        Ok(other) => other,
        Err(e) => return failed(e),
    };
    tracing::info!(run_id = %id, step = %d.step, approve = d.approve, by = %d.by, "Decision recorded through the admin API");
    Json(json!({ "state": state })).into_response()
}

/// The body of `POST /v1/runs/{id}/release`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// Who releases.
    pub by: String,
}

/// `POST /v1/runs/{id}/release`: undoes the run's containment. Answers `{"state", "run"}`.
pub async fn release(
    State(s): State<Arc<Server>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(r): Json<Release>,
) -> Response {
    if !s.credentials.admin(&headers) {
        return unauthorized();
    }
    let released = super::detached({
        let (s, id, by) = (s.clone(), id.clone(), r.by.clone());
        async move { s.dispatcher.release(&id, &by).await }
    })
    .await;
    let state = match released {
        Some(Ok(state)) => state,
        Some(Err(e)) => return failed(e),
        None => return error(StatusCode::INTERNAL_SERVER_ERROR, "the release failed"),
    };
    tracing::info!(run_id = %id, by = %r.by, state = state.as_str(), "Release through the admin API");
    match s.dispatcher.runner().journal().get(&id).await {
        Ok(run) => Json(json!({ "state": state, "run": run })).into_response(),
        Err(e) => journal_failed(e),
    }
}

/// `POST /v1/admin/resume`: applies approval timeouts that passed and drives every unfinished
/// run (the server does this at start; this is for a journal changed under it). Answers the
/// dispatcher's `Resumed` as `{"expired", "driven", "waiting"}`.
pub async fn resume(State(s): State<Arc<Server>>, headers: HeaderMap) -> Response {
    if !s.credentials.admin(&headers) {
        return unauthorized();
    }
    match s.dispatcher.start().await {
        Ok(r) => Json(json!({"expired": r.expired, "driven": r.driven, "waiting": r.waiting}))
            .into_response(),
        Err(e) => failed(e),
    }
}

/// `POST /v1/admin/reload`: reads the playbooks again (as SIGHUP does). A set that fails
/// validation is refused with 422 and every error; the running set stays.
pub async fn reload(State(s): State<Arc<Server>>, headers: HeaderMap) -> Response {
    if !s.credentials.admin(&headers) {
        return unauthorized();
    }
    match s.reload() {
        Ok(n) => Json(json!({ "playbooks": n })).into_response(),
        Err(errors) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": "playbooks failed validation; the running set is kept", "errors": errors})),
        )
            .into_response(),
    }
}
