//! A chat for when none is configured: messages go to the log (stderr), said plainly, so that
//! a playbook's notifications are seen rather than lost. The Slack connector replaces it.

use async_trait::async_trait;
use cordon_engine::cloud::{Chat, CloudResult, Delivery};

/// Chat messages written to the log.
#[derive(Debug, Default)]
pub struct LogChat;

#[async_trait]
impl Chat for LogChat {
    async fn post(&self, channel: Option<&str>, text: &str) -> CloudResult<Delivery> {
        tracing::warn!(
            channel = channel.unwrap_or("(default)"),
            text,
            "No chat configured; message logged instead"
        );
        Ok(Delivery::Logged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_logged_message_says_logged_not_posted() {
        assert_eq!(
            LogChat.post(None, "isolated i-0abc").await.unwrap(),
            Delivery::Logged
        );
    }
}
