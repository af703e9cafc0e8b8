//! The `aws:` section of `cordon.yaml`: which role to assume in each account, and how fast to
//! call AWS.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How cordon reaches member accounts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsSettings {
    /// The response role's ARN, with `{account}` replaced by the target account id.
    pub role_arn: String,
    /// ExternalId passed to AssumeRole (the response role's trust policy should require it).
    pub external_id: Option<String>,
    /// Per-account overrides of `role_arn` and `external_id`.
    pub accounts: BTreeMap<String, AccountOverride>,
    /// A role to assume for AWS Organizations calls (in the management account, or a delegated
    /// administrator). Without it, Organizations is called with cordon's own identity.
    pub organizations_role_arn: Option<String>,
    /// AssumeRole session length in seconds (900 to 43200).
    pub session_seconds: i32,
    /// Most sessions kept at once (one per account and run); expired ones are dropped first.
    pub session_cache: usize,
    /// Calls per second allowed to each account, per service (token bucket).
    pub calls_per_second: f64,
    /// Burst above the steady rate.
    pub burst: u32,
    /// EventBridge bus for audit events when a step names none.
    pub audit_bus: Option<String>,
}

/// Per-account override.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountOverride {
    /// Role ARN for this account.
    pub role_arn: Option<String>,
    /// ExternalId for this account.
    pub external_id: Option<String>,
}

impl Default for AwsSettings {
    fn default() -> AwsSettings {
        AwsSettings {
            role_arn: "arn:aws:iam::{account}:role/CordonResponse".into(),
            external_id: None,
            accounts: BTreeMap::new(),
            organizations_role_arn: None,
            session_seconds: 900,
            session_cache: 1024,
            // IAM's documented rate limits are in the low tens of calls per second per account;
            // staying under them keeps a fan-out from being throttled.
            calls_per_second: 10.0,
            burst: 10,
            audit_bus: None,
        }
    }
}

impl AwsSettings {
    /// The role ARN and ExternalId for an account.
    pub fn role_for(&self, account: &str) -> (String, Option<String>) {
        let o = self.accounts.get(account);
        let arn = o
            .and_then(|o| o.role_arn.clone())
            .unwrap_or_else(|| self.role_arn.replace("{account}", account));
        let ext = o
            .and_then(|o| o.external_id.clone())
            .or_else(|| self.external_id.clone());
        (arn, ext)
    }
}
