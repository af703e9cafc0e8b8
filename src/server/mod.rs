//! `cordon serve`: the always-on runner. EventBridge (an API destination, or an SQS queue)
//! delivers findings; the dispatcher journals and drives their runs; people approve and release
//! through the admin API (the CLI finds it in the journal directory).
//!
//! - `events`: `POST /v1/events`, the intake.
//! - `admin`: the admin API.
//! - `auth`: intake credentials and the admin token, compared in constant time.
//! - `metrics`: Prometheus metrics, also the runner's observer.
//! - `discovery`: the file in the journal directory that tells the CLI where the server is.
//! - `slack`: Slack slash commands, approval buttons and run messages (`chat.slack`), and a
//!   Mattermost-compatible command endpoint (`chat.mattermost`).
//! - `sqs`: the SQS intake (`--sqs-queue-url`), through the same `engine::intake` as HTTP.
//!
//! Shutdown (SIGTERM, SIGINT): stop accepting, answer 503 to what arrives meanwhile, let steps
//! under way finish within the grace period, leave the journal consistent; the next start
//! resumes every open run. SIGHUP reloads the playbooks.

mod admin;
mod auth;
pub mod discovery;
mod events;
mod metrics;
mod slack;
mod sqs;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cordon_engine::clock::parse_duration;
use cordon_engine::dispatch::Dispatcher;
use cordon_engine::secret::Secret;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::app::{Acting, App};
pub use admin::summary;
use auth::Credentials;
use metrics::Metrics;

/// What the handlers share.
pub struct Server {
    app: App,
    dispatcher: Dispatcher,
    credentials: Credentials,
    metrics: Arc<Metrics>,
    acting: Acting,
    /// The last cloud check and when it was made (AWS is asked at most every 30 s).
    cloud_check: Mutex<Option<(Instant, Result<(), String>)>>,
}

/// Options of `cordon serve` beyond the config file.
pub struct ServeOptions {
    /// `--listen`.
    pub listen: Option<String>,
    /// `--sqs-queue-url`.
    pub sqs_queue_url: Option<String>,
}

/// Runs the server until SIGTERM or SIGINT. Returns the exit code: 0 after a clean drain, 1 when
/// steps were still under way at the end of the grace period (they resume at the next start).
pub async fn serve(app: App, options: ServeOptions) -> Result<i32> {
    let credentials = credentials(&app)?;
    let listen = options
        .listen
        .or_else(|| app.config.server.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let grace = parse_duration(&app.config.server.grace).ok_or_else(|| {
        anyhow!(
            "server.grace {:?} is not a duration like 30s",
            app.config.server.grace
        )
    })?;
    let (mut cloud, acting) = app.cloud(false).await?;
    // With Slack configured, the runner's chat only queues into the durable outbox: a Slack
    // outage never holds a run up.
    let outbox = slack::outbox(&app)?;
    if let Some(o) = &outbox {
        cloud.chat = Arc::new(slack::OutboxChat(o.clone()));
    }
    let playbooks = app.playbooks()?;
    let metrics = Arc::new(Metrics::new());
    // Step starts also refresh the run's chat message (see slack::progress).
    let (progress, steps) = slack::Progress::new(metrics.clone());
    let runner = app.runner(cloud, playbooks)?.with_observer(progress);
    let dispatcher = Dispatcher::new(runner, app.config.server.limits);
    let resumed = dispatcher.start().await?;
    tracing::info!(
        driven = resumed.driven.len(),
        waiting = resumed.waiting.len(),
        expired = resumed.expired.len(),
        "Open runs picked up from the journal"
    );
    let listener = TcpListener::bind(&listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let local = listener.local_addr()?;
    let journal_dir = app.journal_dir();
    discovery::write(&journal_dir, local, credentials.admin_token.expose())?;
    tracing::info!(
        cloud = acting.name(),
        listen = %local,
        playbooks = dispatcher.runner().playbooks().len(),
        journal = %journal_dir.display(),
        "cordon serve: acting on --cloud {}",
        acting.name()
    );
    let server = Arc::new(Server {
        app,
        dispatcher: dispatcher.clone(),
        credentials,
        metrics,
        acting,
        cloud_check: Mutex::new(None),
    });
    let stop = CancellationToken::new();
    tokio::spawn(signals(server.clone(), stop.clone()));
    let sqs = match &options.sqs_queue_url {
        Some(url) => Some(sqs::start(server.clone(), url, stop.clone()).await?),
        None => None,
    };
    let chat = slack::start(server.clone(), outbox, steps)?
        .merge(slack::mattermost::start(server.clone())?);
    let http = axum::serve(listener, router(server.clone()).merge(chat))
        .with_graceful_shutdown(stop.clone().cancelled_owned());
    let drain = async {
        stop.cancelled().await;
        tracing::info!(grace = ?grace, "Stopping: no new work; steps under way may finish");
        dispatcher.shutdown(grace).await
    };
    let (served, drained) = tokio::join!(http, drain);
    if let Some(task) = sqs {
        // The SQS loop finishes the messages in hand (their answers are durable or refused by
        // the stopped dispatcher, and then left for redelivery) before it returns.
        if tokio::time::timeout(grace, task).await.is_err() {
            tracing::warn!("SQS intake still busy at the end of the grace period");
        }
    }
    discovery::remove(&journal_dir);
    served.context("serving HTTP")?;
    if drained {
        tracing::info!("Stopped cleanly");
        Ok(0)
    } else {
        tracing::warn!("Grace period over with steps under way; the next start resumes them");
        Ok(1)
    }
}

fn router(server: Arc<Server>) -> Router {
    Router::new()
        .route(
            "/v1/events",
            post(events::receive).layer(DefaultBodyLimit::disable()),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/v1/runs", get(admin::list))
        .route("/v1/runs/{id}", get(admin::show))
        .route("/v1/runs/{id}/approve", post(admin::approve))
        .route("/v1/runs/{id}/release", post(admin::release))
        .route("/v1/admin/resume", post(admin::resume))
        .route("/v1/admin/reload", post(admin::reload))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(server)
}

/// The intake credentials from the environment or the config, and a fresh admin token. No
/// intake credential at all is an error: every request must be authenticated.
fn credentials(app: &App) -> Result<Credentials> {
    let conf = &app.config.server;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let api_key = env("CORDON_API_KEY")
        .map(Secret::new)
        .or_else(|| conf.api_key.as_ref().map(|s| Secret::new(s.expose())));
    let basic = env("CORDON_BASIC_AUTH")
        .map(Secret::new)
        .or_else(|| conf.basic.as_ref().map(|s| Secret::new(s.expose())));
    if let Some(b) = &basic {
        if !b.expose().contains(':') {
            bail!(
                "the Basic credentials (CORDON_BASIC_AUTH or server.basic) must be user:password"
            );
        }
    }
    if api_key.is_none() && basic.is_none() {
        bail!("cordon serve needs intake credentials, as the EventBridge connection sends them: set CORDON_API_KEY (sent in the {} header; server.api_key_header renames it) or CORDON_BASIC_AUTH=user:password, or server.api_key / server.basic in cordon.yaml", conf.api_key_header);
    }
    let api_key_header = HeaderName::try_from(conf.api_key_header.as_str())
        .map_err(|e| anyhow!("server.api_key_header {:?}: {e}", conf.api_key_header))?;
    Ok(Credentials {
        api_key_header,
        api_key,
        basic,
        admin_token: Secret::new(discovery::new_token()?),
    })
}

impl Server {
    /// Reads the playbooks again; keeps the running set when they fail validation. Returns how
    /// many are loaded, or every error.
    pub fn reload(&self) -> Result<usize, Vec<String>> {
        match self.app.playbooks() {
            Ok(set) => {
                let n = set.len();
                self.dispatcher.reload(set);
                tracing::info!(playbooks = n, "Playbooks reloaded");
                Ok(n)
            }
            Err(e) => {
                let errors = match e.downcast_ref::<crate::app::PlaybookErrors>() {
                    Some(p) => p.0.iter().map(ToString::to_string).collect(),
                    None => vec![format!("{e:#}")],
                };
                tracing::error!(errors = ?errors, "Playbook reload failed; the running set is kept");
                Err(errors)
            }
        }
    }

    async fn cloud_reachable(&self) -> Result<(), String> {
        let mut last = self.cloud_check.lock().await;
        if let Some((at, result)) = &*last {
            if at.elapsed() < Duration::from_secs(30) {
                return result.clone();
            }
        }
        let result = self.acting.reachable().await;
        *last = Some((Instant::now(), result.clone()));
        result
    }

    /// On `--cloud sim`, creates the finding's resources in the simulated world (as `cordon
    /// run` does), so that the run has something to contain.
    fn seed(&self, fe: &cordon_engine::event::FindingEvent) {
        if let Some(sim) = self.acting.sim() {
            if let Err(e) = sim.seed(&fe.finding) {
                tracing::warn!(finding = %fe.finding.id, error = %e, "Cannot seed the simulated world");
            }
        }
    }

    fn may_probe(&self, headers: &HeaderMap) -> bool {
        self.credentials.caller(headers).is_some()
    }
}

/// `GET /healthz`: the process answers.
async fn healthz(State(s): State<Arc<Server>>, headers: HeaderMap) -> Response {
    if !s.may_probe(&headers) {
        return events::error(StatusCode::UNAUTHORIZED, "missing or wrong credentials");
    }
    (StatusCode::OK, "ok\n").into_response()
}

/// `GET /readyz`: the journal answers, playbooks are loaded, the cloud answers. 503 with the
/// reasons otherwise.
async fn readyz(State(s): State<Arc<Server>>, headers: HeaderMap) -> Response {
    if !s.may_probe(&headers) {
        return events::error(StatusCode::UNAUTHORIZED, "missing or wrong credentials");
    }
    let journal = s.dispatcher.runner().journal();
    let journal = match journal.health() {
        Ok(()) => journal.get("readyz").await.map(|_| ()),
        Err(e) => Err(e),
    }
    .map_err(|e| e.to_string());
    let playbooks = s.dispatcher.runner().playbooks().len();
    let cloud = s.cloud_reachable().await;
    let shutting_down = s.dispatcher.is_shutting_down();
    let ready = journal.is_ok() && playbooks > 0 && cloud.is_ok() && !shutting_down;
    let word = |r: &Result<(), String>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => e.clone(),
    };
    let body = json!({
        "ready": ready,
        "journal": word(&journal),
        "playbooks": playbooks,
        "cloud": s.acting.name(),
        "cloud_reachable": word(&cloud),
        "shutting_down": shutting_down,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `GET /metrics`.
async fn metrics_text(State(s): State<Arc<Server>>, headers: HeaderMap) -> Response {
    if !s.may_probe(&headers) {
        return events::error(StatusCode::UNAUTHORIZED, "missing or wrong credentials");
    }
    let text = s.metrics.encode(s.dispatcher.queue_depth());
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

/// Runs `work` to its end in its own task, even if the caller (a request handler whose client
/// hung up) is dropped: journaled state and its scheduling must not be cut in half. `None` if
/// the task panicked.
pub(crate) async fn detached<F>(work: F) -> Option<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(work).await.ok()
}

/// SIGHUP reloads the playbooks; SIGTERM and SIGINT stop.
async fn signals(server: Arc<Server>, stop: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("Cannot install signal handlers; stop with SIGKILL");
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => { let _ = server.reload(); }
            _ = term.recv() => { tracing::info!("SIGTERM"); break; }
            _ = int.recv() => { tracing::info!("SIGINT"); break; }
        }
    }
    stop.cancel();
}

/// Where the server listens, as an address the CLI can reach (an unspecified address becomes
/// loopback).
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], a.port()))
        }
        SocketAddr::V6(a) if a.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
        }
        other => other,
    }
}
