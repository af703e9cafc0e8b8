//! The engine's cloud traits over the AWS SDK.
//!
//! Credentials, region and endpoints come from the standard AWS chain (environment, profiles,
//! `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`), so pointing cordon at an
//! emulator needs no cordon-specific flag. Calls in member accounts use a role assumed there
//! (`session`); every call passes the rate limiter and is counted (`meter`).
//!
//! - `settings`: the `aws:` section of the config.
//! - `session`: AssumeRole per account and run, cached.
//! - `error`: SDK errors into the engine's error kinds.
//! - `meter`: per-account, per-service rate limit and call accounting.
//! - `org`, `iam`, `ec2`, `ssm`, `events`: one trait implementation each; `scaling`: Auto
//!   Scaling and Elastic Load Balancing (v2).
//! - `install`: `cordon eventbridge install`, the EventBridge delivery to `cordon serve`.
//! - `sqs`: the SQS intake of `cordon serve --sqs-queue-url`, for deliveries through a queue.
//!
//! Retries: every call an action makes is sent once, with the SDK's own retry turned off, and
//! its failure goes to the runner as a kind. The runner retries throttling always and other
//! transient errors only for idempotent actions (README, "Errors"); with the SDK retrying
//! underneath, a 5xx on a non-idempotent call (CreateAccessKey, SendCommand, CreateSnapshot),
//! which may have taken effect, would be sent again behind the runner's back, and attempts and
//! waits would multiply (3 SDK attempts for each of the runner's). One policy, the runner's.
//! `cordon eventbridge install` runs outside the runner and keeps the SDK's retry ([`AwsCloud::base`]).

mod ec2;
mod error;
mod events;
mod iam;
pub mod install;
mod meter;
mod org;
mod scaling;
mod session;
mod settings;
pub mod sqs;
mod ssm;

use std::sync::Arc;

use aws_credential_types::Credentials;
use aws_smithy_types::retry::RetryConfig;
use aws_types::region::Region;
use aws_types::SdkConfig;
use cordon_engine::cloud::{CloudResult, Target};

pub use meter::Meter;
pub use settings::{AccountOverride, AwsSettings};

use session::Sessions;

/// AWS, reached with cordon's own identity and, in member accounts, the response role.
pub struct AwsCloud {
    /// As loaded, SDK retry included: for calls made outside the runner.
    base: SdkConfig,
    /// `base` with the SDK's retry off: every call made for an action.
    calls: SdkConfig,
    sessions: Sessions,
    meter: Arc<Meter>,
}

impl AwsCloud {
    /// Loads the standard AWS configuration chain.
    pub async fn from_env(settings: AwsSettings) -> AwsCloud {
        let base = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        AwsCloud::new(base, settings)
    }

    /// Over an already loaded configuration.
    pub fn new(base: SdkConfig, settings: AwsSettings) -> AwsCloud {
        let meter = Arc::new(Meter::new(settings.calls_per_second, settings.burst));
        let calls = base
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .build();
        let sessions = Sessions::new(&calls, settings, meter.clone());
        AwsCloud {
            base,
            calls,
            sessions,
            meter,
        }
    }

    /// The meter (calls made so far).
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// The shared configuration with cordon's own identity, as loaded (with the SDK's retry):
    /// for calls made outside the runner, such as `cordon eventbridge install`.
    pub fn base(&self) -> &SdkConfig {
        &self.base
    }

    /// Whether AWS answers with cordon's own identity: STS GetCallerIdentity (which needs no
    /// permission). Returns the caller's ARN, or why not (no credentials, endpoint unreachable).
    pub async fn caller_identity(&self) -> Result<String, String> {
        aws_sdk_sts::Client::new(&self.base)
            .get_caller_identity()
            .send()
            .await
            .map(|o| o.arn.unwrap_or_default())
            .map_err(|e| aws_smithy_types::error::display::DisplayErrorContext(e).to_string())
    }

    /// A client for the target's account: its session, its region, the call metered.
    async fn client<C>(
        &self,
        t: &Target,
        action: &'static str,
        new: impl FnOnce(&SdkConfig) -> C,
    ) -> CloudResult<C> {
        let conf = self.config_for(t).await?;
        self.meter.call(&t.account, action).await;
        Ok(new(&conf))
    }

    /// The one place clients are configured: the base configuration (endpoints, timeouts; no
    /// SDK retry) with the target's region and the assumed role's credentials.
    async fn config_for(&self, t: &Target) -> CloudResult<SdkConfig> {
        let creds = self.sessions.credentials(&t.account, &t.run_id).await?;
        Ok(with_credentials(&self.calls, creds, Some(&t.region)))
    }
}

/// `base` with other credentials (and region).
pub(crate) fn with_credentials(
    base: &SdkConfig,
    creds: Credentials,
    region: Option<&str>,
) -> SdkConfig {
    let mut b = base.to_builder().credentials_provider(
        aws_credential_types::provider::SharedCredentialsProvider::new(creds),
    );
    if let Some(r) = region {
        b = b.region(Region::new(r.to_string()));
    }
    b.build()
}

/// IAM returns policy documents URL-encoded; other paths (and emulators) return them plain.
pub(crate) fn decode_policy(doc: &str) -> String {
    if !doc.contains('%') {
        return doc.to_string();
    }
    let bytes = doc.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_url_encoded_policies() {
        assert_eq!(
            decode_policy("%7B%22Version%22%3A%222012-10-17%22%7D"),
            r#"{"Version":"2012-10-17"}"#
        );
        assert_eq!(decode_policy(r#"{"a":1}"#), r#"{"a":1}"#);
    }
}
