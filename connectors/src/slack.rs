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
    /// Errors: a base URL that is not `http://...` (`https://` needs a TLS client this build
    /// lacks), or an HTTP client that cannot be built.
    pub fn new(base_url: &str, token: Secret, channel: &str) -> Result<SlackChat, String> {
        let base = base_url.trim_end_matches('/').to_string();
        if base.starts_with("https://") {
            // reqwest is built without a TLS stack in this workspace (see Cargo.toml): say so
            // now rather than fail every post later.
            return Err(format!(
                "chat.slack.api_base_url {base_url:?}: this build of cordon has no TLS client for Slack yet; point api_base_url at an http:// egress proxy that forwards to https://slack.com/api"
            ));
        }
        if !base.starts_with("http://") {
            return Err(format!(
                "chat.slack.api_base_url {base_url:?} is not an http:// URL"
            ));
        }
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
    /// also the notification fallback) and optional Block Kit `blocks`. Returns the message's
    /// `ts`.
    ///
    /// Errors: `Throttled` on HTTP 429, `Retryable` on 5xx and transport failures, `Denied`
    /// for token and scope errors, `Fatal` for other `ok: false` answers.
    pub async fn post_message(
        &self,
        channel: Option<&str>,
        text: &str,
        blocks: Option<Value>,
    ) -> CloudResult<String> {
        let mut body = json!({
            "channel": channel.unwrap_or(&self.channel),
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
        Ok(v["ts"].as_str().unwrap_or_default().to_string())
    }

    /// `chat.postEphemeral`: `text` (mrkdwn, escaped by the caller where it holds data) shown
    /// only to `user` in `channel`. Errors as [`SlackChat::post_message`].
    pub async fn post_ephemeral(&self, channel: &str, user: &str, text: &str) -> CloudResult<()> {
        let body = json!({"channel": channel, "user": user, "text": text, "link_names": false});
        self.call("chat.postEphemeral", &body).await.map(|_| ())
    }

    /// Calls a Web API method with a JSON body; the answer when `ok` is true.
    async fn call(&self, method: &str, body: &Value) -> CloudResult<Value> {
        let url = format!("{}/{method}", self.base);
        let answer = self
            .http
            .post(&url)
            .bearer_auth(self.token.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| CloudError::new(ErrorKind::Retryable, format!("Slack {method}: {e}")))?;
        let status = answer.status();
        if status.as_u16() == 429 {
            return Err(CloudError::new(
                ErrorKind::Throttled,
                format!("Slack {method}: rate limited (429)"),
            ));
        }
        if status.is_server_error() {
            return Err(CloudError::new(
                ErrorKind::Retryable,
                format!("Slack {method}: HTTP {status}"),
            ));
        }
        let v: Value = answer
            .json()
            .await
            .map_err(|e| CloudError::fatal(format!("Slack {method}: answer is not JSON: {e}")))?;
        if v["ok"] == true {
            return Ok(v);
        }
        let code = v["error"].as_str().unwrap_or("unknown_error");
        let kind = match code {
            "not_authed" | "invalid_auth" | "account_inactive" | "token_revoked"
            | "missing_scope" | "not_in_channel" | "channel_not_found" => ErrorKind::Denied,
            "ratelimited" => ErrorKind::Throttled,
            "internal_error" | "service_unavailable" | "fatal_error" => ErrorKind::Retryable,
            _ => ErrorKind::Fatal,
        };
        Err(CloudError::new(
            kind,
            format!("Slack {method} refused: {code}"),
        ))
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
    fn a_base_url_must_be_http() {
        assert!(SlackChat::new("slack.com/api", Secret::new("x"), "#c").is_err());
        let https = SlackChat::new(SLACK_API, Secret::new("x"), "#c")
            .err()
            .unwrap();
        assert!(https.contains("no TLS client"), "{https}");
        assert!(SlackChat::new("http://127.0.0.1:1/api/", Secret::new("x"), "#c").is_ok());
    }
}
