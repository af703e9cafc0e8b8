//! The CLI next to a running `cordon serve`. sled lets one process hold a journal; while a
//! server holds it, `runs`, `approve`, `release` and `resume` go through the server's admin API,
//! found in the journal directory (`serve.json`, written by the server with its admin token).

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use cordon_engine::journal::{Entry, JournalError};
use cordon_engine::run::{Run, RunState};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::app::App;
use crate::server::discovery;

/// A running server's admin API.
pub struct Remote {
    url: String,
    token: String,
    client: reqwest::Client,
}

/// Where runs are: this process may open the journal, or a server holds it.
pub enum Runs {
    /// No server holds the journal; act in this process.
    Local,
    /// A server holds it.
    Server(Remote),
}

/// Finds out whether a server holds the journal (it is locked and `serve.json` names the
/// server). A locked journal without the file is an error saying so.
pub fn runs(app: &App) -> Result<Runs> {
    let dir = app.journal_dir();
    if !dir.join("db").exists() {
        return Ok(Runs::Local);
    }
    match app.journal() {
        Ok(_) => Ok(Runs::Local),
        Err(e) if matches!(e.downcast_ref(), Some(JournalError::Locked(_))) => Remote::find(&dir)
            .map(Runs::Server)
            .map_err(|why| anyhow!("{e}; no cordon serve to ask instead ({why:#})")),
        Err(e) => Err(e),
    }
}

impl Remote {
    fn find(journal: &Path) -> Result<Remote> {
        let endpoint = discovery::read(journal)?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            // The admin API is local; never send the token through a proxy.
            .no_proxy()
            .build()?;
        tracing::info!(url = %endpoint.url, "The journal is held by cordon serve; asking it");
        Ok(Remote {
            url: endpoint.url,
            token: endpoint.token,
            client,
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T> {
        let url = format!("{}{path}", self.url);
        let mut request = self.client.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            request = request.json(&b);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("asking cordon serve at {}", self.url))?;
        let status = response.status();
        let value: Value = response
            .json()
            .await
            .with_context(|| format!("reading the answer of cordon serve at {url}"))?;
        if !status.is_success() {
            let message = value["error"].as_str().unwrap_or("no message");
            bail!("cordon serve answered {status}: {message}");
        }
        serde_json::from_value(value).with_context(|| format!("reading the answer of {url}"))
    }

    /// `GET /v1/runs`.
    pub async fn list(&self) -> Result<Vec<Value>> {
        self.call(reqwest::Method::GET, "/v1/runs", None).await
    }

    /// `GET /v1/runs/{id}`.
    pub async fn show(&self, id: &str) -> Result<(Run, Vec<Entry>)> {
        #[derive(serde::Deserialize)]
        struct Shown {
            run: Run,
            timeline: Vec<Entry>,
        }
        let s: Shown = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/runs/{}", segment(id)),
                None,
            )
            .await?;
        Ok((s.run, s.timeline))
    }

    /// `POST /v1/runs/{id}/approve`: the run's state after the decision.
    pub async fn approve(&self, id: &str, step: &str, approve: bool, by: &str) -> Result<RunState> {
        let v: Value = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/runs/{}/approve", segment(id)),
                Some(json!({"step": step, "approve": approve, "by": by})),
            )
            .await?;
        Ok(serde_json::from_value(v["state"].clone())?)
    }

    /// `POST /v1/runs/{id}/release`: the state and the run after the release.
    pub async fn release(&self, id: &str, by: &str) -> Result<(RunState, Run)> {
        let v: Value = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/runs/{}/release", segment(id)),
                Some(json!({ "by": by })),
            )
            .await?;
        Ok((
            serde_json::from_value(v["state"].clone())?,
            serde_json::from_value(v["run"].clone())?,
        ))
    }

    /// `POST /v1/admin/resume`: `{"expired", "driven", "waiting"}`.
    pub async fn resume(&self) -> Result<Value> {
        self.call(reqwest::Method::POST, "/v1/admin/resume", None)
            .await
    }
}

/// A run id as one URL path segment (ids are UUIDs; anything else is escaped, not trusted).
fn segment(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
