//! Sessions in member accounts: one AssumeRole per account and run, cached until shortly before
//! the credentials expire. The session name carries the run id, so CloudTrail in the member
//! account ties every call to a cordon run.
//!
//! A server runs for months and every run has its own sessions, so the cache is bounded
//! (`aws.session_cache`) and drops credentials that are expired or about to expire whenever a
//! new session is added; when it is still full, the session that expires first goes.

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

/// Cache key: (account, run id).
type Key = (String, String);

/// Assumed-role credentials by (account, run).
pub struct Sessions {
    sts: aws_sdk_sts::Client,
    settings: AwsSettings,
    meter: Arc<Meter>,
    cache: Mutex<SessionCache>,
}

/// The bounded map of sessions. A slot being assumed (its lock held) is never evicted: its
/// callers are waiting on it.
pub(crate) struct SessionCache {
    slots: HashMap<Key, Slot>,
    capacity: usize,
}

impl SessionCache {
    pub(crate) fn new(capacity: usize) -> SessionCache {
        SessionCache {
            slots: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// The slot for `key`, made (after evicting, if need be) when absent.
    pub(crate) fn slot(&mut self, key: Key) -> Slot {
        if let Some(s) = self.slots.get(&key) {
            return s.clone();
        }
        self.evict();
        self.slots.entry(key).or_default().clone()
    }

    /// Drops every idle slot whose credentials are stale or absent; then, while full, the idle
    /// slot that expires first.
    fn evict(&mut self) {
        self.slots.retain(|_, slot| match slot.try_lock() {
            Ok(c) => c.as_ref().is_some_and(fresh),
            Err(_) => true,
        });
        while self.slots.len() >= self.capacity {
            let first = self
                .slots
                .iter()
                .filter_map(|(k, slot)| {
                    let c = slot.try_lock().ok()?;
                    Some((c.as_ref().and_then(|c| c.expiry()), k.clone()))
                })
                // `None` (no expiry) sorts first: such credentials are not AssumeRole's.
                .min_by(|a, b| a.0.cmp(&b.0));
            match first {
                Some((_, k)) => {
                    self.slots.remove(&k);
                }
                // Every slot is being assumed right now: exceed the bound rather than wait.
                None => break,
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }
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
            cache: Mutex::new(SessionCache::new(settings.session_cache)),
            settings,
            meter,
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
        let slot = self
            .cache
            .lock()
            .await
            .slot((account.to_string(), run_id.to_string()));
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

    fn creds(expires_in_s: i64) -> Credentials {
        let now = SystemTime::now();
        let expiry = if expires_in_s >= 0 {
            now + Duration::from_secs(expires_in_s as u64)
        } else {
            now - Duration::from_secs((-expires_in_s) as u64)
        };
        Credentials::new("ASIA", "secret", Some("token".into()), Some(expiry), "test")
    }

    fn key(run: usize) -> Key {
        ("111122223333".to_string(), format!("run-{run}"))
    }

    fn fill(cache: &mut SessionCache, run: usize, c: Credentials) {
        *cache.slot(key(run)).try_lock().unwrap() = Some(c);
    }

    #[test]
    fn expired_sessions_are_evicted_when_a_new_one_comes() {
        let mut cache = SessionCache::new(100);
        for run in 0..3 {
            fill(&mut cache, run, creds(3600));
        }
        assert_eq!(cache.len(), 3);
        // Time passes: run 0's session expired, run 1's is inside the refresh margin.
        fill(&mut cache, 0, creds(-60));
        fill(&mut cache, 1, creds(60));
        fill(&mut cache, 3, creds(3600));
        let mut kept: Vec<&str> = cache.slots.keys().map(|(_, r)| r.as_str()).collect();
        kept.sort();
        assert_eq!(kept, ["run-2", "run-3"]);
    }

    #[test]
    fn the_cache_never_grows_past_its_bound_and_drops_the_soonest_to_expire() {
        let mut cache = SessionCache::new(10);
        for run in 0..1000 {
            fill(&mut cache, run, creds(1000 + run as i64));
            assert!(cache.len() <= 10, "{} sessions at run {run}", cache.len());
        }
        let mut kept: Vec<usize> = cache
            .slots
            .keys()
            .map(|(_, r)| r.trim_start_matches("run-").parse().unwrap())
            .collect();
        kept.sort();
        assert_eq!(kept, (990..1000).collect::<Vec<_>>());
    }

    #[test]
    fn a_session_being_assumed_is_not_evicted() {
        let mut cache = SessionCache::new(1);
        let busy = cache.slot(key(0));
        let _held = busy.try_lock().unwrap();
        let other = cache.slot(key(1));
        assert!(!Arc::ptr_eq(&busy, &other));
        assert!(Arc::ptr_eq(&cache.slot(key(0)), &busy), "still cached");
    }

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
