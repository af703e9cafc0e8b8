//! Slack's Web API: `chat.postMessage` with a bot token (scope `chat:write`), as the engine's
//! [`Chat`] (what `notify.chat` posts) and for the server's approval messages.
//!
//! Slack's API answers HTTP 200 with `{"ok": false, "error": "..."}` for most failures
//! ("Web API basics", api.slack.com/web); `ratelimited` comes as HTTP 429 with `Retry-After`.
//! Both are read here, so that a message Slack refused is never reported as posted.
//!
//! Text is data: [`escape`] turns `&`, `<` and `>` into entities (Slack's "Formatting text for
//! app surfaces": these three are the only characters mrkdwn needs escaped), so a finding's
//! `<!channel>` or `<https://evil|bank.com>` reaches Slack as text, never as a mention or a link.

use std::time::Duration;

use async_trait::async_trait;
use cordon_engine::cloud::{Chat, CloudError, CloudResult, Delivery, ErrorKind};
use cordon_engine::secret::Secret;
use serde_json::{json, Value};

/// The Web API's base URL.
pub const SLACK_API: &str = "https://slack.com/api";

/// Escapes text for Slack mrkdwn: `&` -> `&amp;`, `<` -> `&lt;`, `>` -> `&gt;`. Apply it exactly
/// once, to text cordon did not write; already-escaped input is escaped again (its `&` is data).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// A Slack bot posting to one default channel.
pub struct SlackChat {
    http: reqwest::Client,
    /// `https://slack.com/api` (no trailing slash), or a fake in tests.
    base: String,
    token: Secret,
    channel: String,
}

impl SlackChat {
    /// A client for the Web API at `base_url` (e.g. [`SLACK_API`]), with the bot token
    /// (`xoxb-...`) and the channel (id or name) messages go to by default.
    ///
    /// Errors: a base URL that is not `https://`, except `http://` to a loopback address
    /// (127.0.0.0/8, `::1`, `localhost`: a local fake or an egress proxy on the same host; the
    /// bot token must never cross a network in clear), or an HTTP client that cannot be built.
    pub fn new(base_url: &str, token: Secret, channel: &str) -> Result<SlackChat, String> {
        let base = base_url.trim_end_matches('/').to_string();
        check_base_url(&base)
            .map_err(|why| format!("chat.slack.api_base_url {base_url:?}: {why}"))?;
        crate::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(SlackChat {
            http,
            base,
            token,
            channel: channel.to_string(),
        })
    }

    /// The default channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// `chat.postMessage`: `text` (mrkdwn, already escaped by the caller where it holds data;
    /// also the notification fallback) and optional Block Kit `blocks`. Returns the channel id
    /// and the message's `ts`, which together name it for `chat.update`.
    ///
    /// Errors: see [`SlackError`].
    pub async fn post_message(
        &self,
        channel: Option<&str>,
        text: &str,
        blocks: Option<Value>,
    ) -> Result<(String, String), SlackError> {
        let channel = channel.unwrap_or(&self.channel);
        let mut body = json!({
            "channel": channel,
            "text": text,
            // Mentions come only from `<@U...>` written by cordon, never from plain names.
            "link_names": false,
            "unfurl_links": false,
            "unfurl_media": false,
        });
        if let Some(b) = blocks {
            body["blocks"] = b;
        }
        let v = self.call("chat.postMessage", &body).await?;
        let ts = v["ts"].as_str().unwrap_or_default().to_string();
        // Slack answers with the channel's id, which `chat.update` needs (a name will not do).
        Ok((v["channel"].as_str().unwrap_or(channel).to_string(), ts))
    }

    /// `chat.update`: replaces the text and blocks of the message `ts` in `channel` (Slack's
    /// "chat.update": only messages the bot posted). Errors: see [`SlackError`];
    /// `message_not_found` when the message is gone.
    pub async fn update_message(
        &self,
        channel: &str,
        ts: &str,
        text: &str,
        blocks: Option<Value>,
    ) -> Result<(), SlackError> {
        let body = json!({
            "channel": channel,
            "ts": ts,
            "text": text,
            "link_names": false,
            // An update without `blocks` keeps the old ones; an empty list removes them.
            "blocks": blocks.unwrap_or_else(|| json!([])),
        });
        self.call("chat.update", &body).await.map(|_| ())
    }

    /// `chat.postEphemeral`: `text` (mrkdwn, escaped by the caller where it holds data) shown
    /// only to `user` in `channel`. Errors: see [`SlackError`].
    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        text: &str,
    ) -> Result<(), SlackError> {
        let body = json!({"channel": channel, "user": user, "text": text, "link_names": false});
        self.call("chat.postEphemeral", &body).await.map(|_| ())
    }

    /// Calls a Web API method with a JSON body; the answer when `ok` is true.
    async fn call(&self, method: &str, body: &Value) -> Result<Value, SlackError> {
        let url = format!("{}/{method}", self.base);
        let fail = |kind, code: Option<&str>, message: String| SlackError {
            kind,
            code: code.map(str::to_string),
            retry_after: None,
            message,
        };
        let answer = self
            .http
            .post(&url)
            .bearer_auth(self.token.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| fail(ErrorKind::Retryable, None, format!("Slack {method}: {e}")))?;
        let status = answer.status();
        if status.as_u16() == 429 {
            // "Rate limits" (api.slack.com/apis/rate-limits): wait `Retry-After` seconds.
            let retry_after = answer
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(SlackError {
                retry_after,
                ..fail(
                    ErrorKind::Throttled,
                    Some("ratelimited"),
                    format!("Slack {method}: rate limited (429)"),
                )
            });
        }
        if status.is_server_error() {
            return Err(fail(
                ErrorKind::Retryable,
                None,
                format!("Slack {method}: HTTP {status}"),
            ));
        }
        let v: Value = answer.json().await.map_err(|e| {
            fail(
                ErrorKind::Fatal,
                None,
                format!("Slack {method}: answer is not JSON: {e}"),
            )
        })?;
        if v["ok"] == true {
            return Ok(v);
        }
        let code = v["error"].as_str().unwrap_or("unknown_error");
        let kind = match code {
            "not_authed" | "invalid_auth" | "account_inactive" | "token_revoked"
            | "missing_scope" | "not_in_channel" | "channel_not_found" => ErrorKind::Denied,
            "ratelimited" => ErrorKind::Throttled,
            "internal_error" | "service_unavailable" | "fatal_error" | "request_timeout" => {
                ErrorKind::Retryable
            }
            _ => ErrorKind::Fatal,
        };
        Err(fail(
            kind,
            Some(code),
            format!("Slack {method} refused: {code}"),
        ))
    }
}

/// A Web API call that failed.
#[derive(Debug, Clone)]
pub struct SlackError {
    /// `Throttled` on HTTP 429 or `ratelimited`, `Retryable` on 5xx, transport failures and
    /// Slack's own transient errors, `Denied` for token, scope and channel errors, `Fatal`
    /// for other `ok: false` answers (the request itself is wrong).
    pub kind: ErrorKind,
    /// Slack's error code (`channel_not_found`, `message_not_found`, ...), when it gave one.
    pub code: Option<String>,
    /// How long Slack asked to wait (HTTP 429's `Retry-After`).
    pub retry_after: Option<Duration>,
    /// What failed, for the log (never the token).
    pub message: String,
}

impl std::fmt::Display for SlackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<SlackError> for CloudError {
    fn from(e: SlackError) -> CloudError {
        CloudError::new(e.kind, e.message)
    }
}

/// `https://` to any host, or `http://` to a loopback host only.
fn check_base_url(base: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(base).map_err(|e| format!("not a URL ({e})"))?;
    // The URL parser normalises hosts: IPv6 comes bracketed, domains lower-cased.
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(
            "plain http is allowed only to a loopback address (127.0.0.1, ::1, localhost); use https:// (the bot token must not travel in clear)".into(),
        ),
        other => Err(format!("scheme {other:?} is not https")),
    }
}

#[async_trait]
impl Chat for SlackChat {
    /// Posts `text` escaped: a playbook's text carries finding fields, which are data.
    async fn post(&self, channel: Option<&str>, text: &str) -> CloudResult<Delivery> {
        self.post_message(channel, &escape(text), None).await?;
        Ok(Delivery::Posted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_and_links_from_data_become_text() {
        assert_eq!(escape("<!channel> hi"), "&lt;!channel&gt; hi");
        assert_eq!(
            escape("<https://evil.example|bank.com>"),
            "&lt;https://evil.example|bank.com&gt;"
        );
        // `&amp;` in data is data: its `&` is escaped too, so Slack shows it as typed.
        assert_eq!(escape("a &amp; b"), "a &amp;amp; b");
        assert_eq!(escape("plain text, ünïcode"), "plain text, ünïcode");
    }

    #[test]
    fn a_base_url_is_https_or_loopback_http() {
        assert!(SlackChat::new(SLACK_API, Secret::new("x"), "#c").is_ok());
        assert!(SlackChat::new("http://127.0.0.1:1/api/", Secret::new("x"), "#c").is_ok());
        assert!(SlackChat::new("http://[::1]:1/api", Secret::new("x"), "#c").is_ok());
        assert!(SlackChat::new("http://localhost:1/api", Secret::new("x"), "#c").is_ok());
        for bad in [
            "http://slack.com/api",
            "http://10.0.0.1/api",
            "http://127.0.0.1.evil.example/api",
            "ftp://127.0.0.1/api",
            "slack.com/api",
        ] {
            let e = SlackChat::new(bad, Secret::new("x"), "#c").err().unwrap();
            assert!(e.contains("chat.slack.api_base_url"), "{bad}: {e}");
        }
        let e = SlackChat::new("http://slack.com/api", Secret::new("x"), "#c")
            .err()
            .unwrap();
        assert!(e.contains("loopback"), "{e}");
    }
}
