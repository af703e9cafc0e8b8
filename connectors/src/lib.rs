//! cordon's connectors: the real implementations of the engine's cloud and chat traits.
//!
//! - `aws`: [`AwsCloud`], the cloud traits over the AWS SDK, with cross-account AssumeRole,
//!   error classification, rate limits and call accounting; `aws::sqs`, the SQS intake.
//! - `log_chat`: a chat that writes to the log, for when no chat is configured.
//! - `slack`: [`SlackChat`], Slack's Web API (`chat.postMessage`) as the engine's chat.
//! - `tls`: the rustls provider cordon's own HTTPS clients use.

pub mod aws;
mod log_chat;
pub mod slack;
pub mod tls;

pub use aws::sqs::{SqsCounts, SqsError, SqsIntake, SqsOptions, Verdict};
pub use aws::{AwsCloud, AwsSettings};
pub use log_chat::LogChat;
pub use slack::SlackChat;
