//! Every AWS call goes through [`Meter::call`]: it waits for the account's rate limit, counts the
//! call, and, when `CORDON_AWS_CALL_LOG` names a file, appends the IAM action it needed, so
//! tests can check `cordon policy` covers every call and benchmarks can count calls.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Rate limiting and call accounting shared by every client.
pub struct Meter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<(String, &'static str), Bucket>>,
    calls: AtomicU64,
    log: Option<Mutex<std::fs::File>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Meter {
    /// A meter allowing `rate` calls per second (burst `burst`) per account and service.
    pub fn new(rate: f64, burst: u32) -> Meter {
        let log = std::env::var_os("CORDON_AWS_CALL_LOG").and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
                .map(Mutex::new)
        });
        Meter {
            rate: rate.max(0.1),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
            calls: AtomicU64::new(0),
            log,
        }
    }

    /// Calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Waits for a token for `account`'s `service`, then records `action` (e.g.
    /// `iam:PutRolePolicy`).
    pub async fn call(&self, account: &str, action: &'static str) {
        let service = action.split(':').next().unwrap_or(action);
        loop {
            let wait = self.take(account, service);
            if wait.is_zero() {
                break;
            }
            tokio::time::sleep(wait).await;
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        if let Some(log) = &self.log {
            if let Ok(mut f) = log.lock() {
                let _ = writeln!(f, "{action} {account}");
            }
        }
    }

    /// Takes a token, or says how long until one is there.
    fn take(&self, account: &str, service: &'static str) -> Duration {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let b = buckets
            .entry((account.to_string(), service))
            .or_insert(Bucket {
                tokens: self.burst,
                at: now,
            });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - b.tokens) / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rate_is_per_account_and_service() {
        let m = Meter::new(2.0, 2);
        let start = tokio::time::Instant::now();
        for _ in 0..6 {
            m.call("111111111111", "iam:GetRole").await;
        }
        // 2 from the burst, then 4 at 2/s.
        assert!(
            start.elapsed() >= Duration::from_millis(1900),
            "{:?}",
            start.elapsed()
        );
        let other = tokio::time::Instant::now();
        m.call("222222222222", "iam:GetRole").await;
        m.call("111111111111", "ec2:DescribeInstances").await;
        assert!(
            other.elapsed() < Duration::from_millis(10),
            "other accounts and services are not held up"
        );
        assert_eq!(m.calls(), 8);
    }
}
