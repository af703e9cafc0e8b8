//! Sessions in member accounts: one AssumeRole per account and run, cached until shortly before
//! the credentials expire. The session name carries the run id, so CloudTrail in the member
//! account ties every call to a cordon run.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_types::SdkConfig;
use cordon_engine::cloud::{CloudError, CloudResult, ErrorKind};
use tokio::sync::Mutex;

use super::error::classify;
use super::meter::Meter;
use super::settings::AwsSettings;

/// Credentials are refreshed this long before they expire.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// One cached session; its lock is held while it is being assumed, so callers wait for one
/// AssumeRole instead of making several.
type Slot = Arc<Mutex<Option<Credentials>>>;

/// Assumed-role credentials by (account, run).
pub struct Sessions {
    sts: aws_sdk_sts::Client,
    settings: AwsSettings,
    meter: Arc<Meter>,
    cache: Mutex<HashMap<(String, String), Slot>>,
}

/// A valid AssumeRole session name from a run id: `[\w+=,.@-]`, at most 64 characters.
pub(crate) fn session_name(run_id: &str) -> String {
    let clean: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut name = format!("cordon-{clean}");
    name.truncate(64);
    name
}

fn fresh(c: &Credentials) -> bool {
    c.expiry()
        .is_none_or(|e| e > SystemTime::now() + REFRESH_BEFORE)
}

impl Sessions {
    /// Sessions assumed with cordon's own identity (`base`).
    pub fn new(base: &SdkConfig, settings: AwsSettings, meter: Arc<Meter>) -> Sessions {
        Sessions {
            sts: aws_sdk_sts::Client::new(base),
            settings,
            meter,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Credentials for `account` on behalf of `run_id`: cached, or assumed now. Concurrent
    /// callers for the same account and run wait for one AssumeRole instead of making several.
    pub async fn credentials(&self, account: &str, run_id: &str) -> CloudResult<Credentials> {
        let (role_arn, external_id) = self.settings.role_for(account);
        self.assume(account, run_id, &role_arn, external_id.as_deref())
            .await
    }

    /// Credentials for Organizations calls, when a role is configured for them.
    pub async fn organizations(&self) -> CloudResult<Option<Credentials>> {
        let Some(arn) = self.settings.organizations_role_arn.clone() else {
            return Ok(None);
        };
        let account = arn.split(':').nth(4).unwrap_or("management").to_string();
        self.assume(&account, "organizations", &arn, None)
            .await
            .map(Some)
    }

    async fn assume(
        &self,
        account: &str,
        run_id: &str,
        role_arn: &str,
        external_id: Option<&str>,
    ) -> CloudResult<Credentials> {
        let slot = {
            let mut cache = self.cache.lock().await;
            cache
                .entry((account.to_string(), run_id.to_string()))
                .or_default()
                .clone()
        };
        let mut slot = slot.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| fresh(c)) {
            return Ok(c.clone());
        }
        self.meter.call(account, "sts:AssumeRole").await;
        let out = self
            .sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session_name(run_id))
            .set_external_id(external_id.map(String::from))
            .duration_seconds(self.settings.session_seconds)
            .send()
            .await
            .map_err(|e| {
                let mut err = classify("sts:AssumeRole", account, e);
                err.message = format!(
                    "cannot assume {role_arn} in account {account}: {}",
                    err.message
                );
                err
            })?;
        let c = out.credentials().ok_or_else(|| {
            CloudError::new(
                ErrorKind::Fatal,
                format!("AssumeRole of {role_arn} returned no credentials"),
            )
        })?;
        let expiry = SystemTime::try_from(*c.expiration()).ok();
        let creds = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            expiry,
            "cordon-assume-role",
        );
        *slot = Some(creds.clone());
        Ok(creds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_valid_and_carry_the_run() {
        assert_eq!(
            session_name("01a2094d-0a97-7745-9cf1-dca600ec5b57"),
            "cordon-01a2094d-0a97-7745-9cf1-dca600ec5b57"
        );
        assert_eq!(session_name("a/b c"), "cordon-a-b-c");
        assert_eq!(session_name(&"x".repeat(100)).len(), 64);
    }
}
