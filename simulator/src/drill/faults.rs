//! Faults a scenario injects into cloud calls, named after AWS Fault Injection Service's API
//! fault actions (FIS User Guide, "AWS FIS actions reference": `aws:fis:inject-api-throttle-error`,
//! `aws:fis:inject-api-unavailable-error`, `aws:fis:inject-api-internal-error`, each with
//! `operations` and `percentage`), plus what FIS cannot inject but responders meet: an account
//! whose response role cannot be assumed, AccessDenied on one operation, added latency.
//!
//! Whether a call is hit is drawn from a generator seeded with the drill's seed, so the same
//! scenario and seed hit the same calls.

use std::time::Duration;

use cordon_engine::clock::parse_duration;
use cordon_engine::cloud::{CloudError, ErrorKind};
use serde::{Deserialize, Serialize};

use super::scenario::{duration, At, ScenarioError};

/// A fault kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum FaultKind {
    /// `ThrottlingException` (FIS `aws:fis:inject-api-throttle-error`); the runner retries it.
    #[serde(
        rename = "api-throttle-error",
        alias = "aws:fis:inject-api-throttle-error"
    )]
    Throttle,
    /// `ServiceUnavailable`, a 503 (FIS `aws:fis:inject-api-unavailable-error`).
    #[serde(
        rename = "api-unavailable-error",
        alias = "aws:fis:inject-api-unavailable-error"
    )]
    Unavailable,
    /// `InternalError`, a 500 (FIS `aws:fis:inject-api-internal-error`).
    #[serde(
        rename = "api-internal-error",
        alias = "aws:fis:inject-api-internal-error"
    )]
    Internal,
    /// `AccessDenied` on the operations named.
    #[serde(rename = "access-denied")]
    AccessDenied,
    /// `sts:AssumeRole` of the response role is refused in the account: every call there fails.
    #[serde(rename = "no-response-role")]
    NoResponseRole,
    /// Every call hit waits `latency` longer (virtual time).
    #[serde(rename = "latency")]
    Latency,
}

/// One fault, as a scenario writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// What fails.
    pub kind: FaultKind,
    /// Operations hit (`iam:PutRolePolicy`, `ec2:*`); none: every operation.
    #[serde(default)]
    pub operations: Vec<String>,
    /// The account whose calls are hit; none: every account. Organizations calls are made in
    /// the management account.
    #[serde(default)]
    pub account: Option<String>,
    /// Share of matching calls hit, 1 to 100 (default 100).
    #[serde(default)]
    pub percentage: Option<u8>,
    /// Added latency, for `latency` (`2s`, `500ms`).
    #[serde(default)]
    pub latency: Option<String>,
    /// From when (default the start).
    #[serde(default)]
    pub from: Option<String>,
    /// Until when (default: the end of the timeline; the release at the drill's end runs
    /// without faults, so that the undo check proves the undo).
    #[serde(default)]
    pub until: Option<String>,
}

/// A fault ready to apply: times in ms from the drill's start.
#[derive(Debug, Clone)]
pub struct Fault {
    /// As written.
    pub spec: FaultSpec,
    /// From (ms after start).
    pub from_ms: u64,
    /// Until (ms after start), or open.
    pub until_ms: Option<u64>,
    /// Added latency.
    pub latency: Duration,
}

/// A call a fault hit (the report's "fault hit").
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    /// When (epoch ms, virtual).
    #[serde(skip)]
    pub at_ms: u64,
    /// The operation.
    pub operation: String,
    /// The account.
    pub account: String,
    /// What was injected.
    pub fault: String,
}

/// splitmix64 (Steele, Lea, Flood 2014): one u64 of state, good enough to pick calls evenly.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x6a09_e667_f3bc_c909)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True in `percent` of draws out of 100.
    pub fn chance(&mut self, percent: u8) -> bool {
        percent >= 100 || self.next_u64() % 100 < u64::from(percent)
    }
}

impl Fault {
    /// Whether the fault covers `operation` in `account` at `elapsed_ms` (before the draw).
    pub fn covers(&self, operation: &str, account: &str, elapsed_ms: u64) -> bool {
        let in_time = elapsed_ms >= self.from_ms && self.until_ms.is_none_or(|u| elapsed_ms < u);
        let in_account = self.spec.account.as_deref().is_none_or(|a| a == account);
        let op = operation.to_ascii_lowercase();
        let in_ops = self.spec.operations.is_empty()
            || self.spec.operations.iter().any(|o| {
                let o = o.to_ascii_lowercase();
                o == op || o.strip_suffix('*').is_some_and(|p| op.starts_with(p))
            });
        in_time && in_account && in_ops
    }

    /// The error a hit call returns (`None` for latency).
    pub fn error(&self, operation: &str, account: &str) -> Option<CloudError> {
        let (kind, text) = match self.spec.kind {
            FaultKind::Throttle => (
                ErrorKind::Throttled,
                format!("ThrottlingException: Rate exceeded ({operation} in {account}, injected)"),
            ),
            FaultKind::Unavailable => (
                ErrorKind::Retryable,
                format!("ServiceUnavailable ({operation} in {account}, injected)"),
            ),
            FaultKind::Internal => (
                ErrorKind::Retryable,
                format!("InternalError ({operation} in {account}, injected)"),
            ),
            FaultKind::AccessDenied => (
                ErrorKind::Denied,
                format!("AccessDenied: the response role is not authorized to perform {operation} in {account} (injected)"),
            ),
            FaultKind::NoResponseRole => (
                ErrorKind::Denied,
                format!("cannot assume the response role in account {account}: AccessDenied on sts:AssumeRole (injected)"),
            ),
            FaultKind::Latency => return None,
        };
        Some(CloudError::new(kind, text))
    }

    /// The report's name for the fault.
    pub fn name(&self) -> &'static str {
        match self.spec.kind {
            FaultKind::Throttle => "api-throttle-error",
            FaultKind::Unavailable => "api-unavailable-error",
            FaultKind::Internal => "api-internal-error",
            FaultKind::AccessDenied => "access-denied",
            FaultKind::NoResponseRole => "no-response-role",
            FaultKind::Latency => "latency",
        }
    }
}

/// Checks a fault as written: percentage 1 to 100, a latency for `latency` only, durations.
pub fn check(f: &FaultSpec, field: &str, at: &At<'_>) -> Result<(), ScenarioError> {
    if let Some(p) = f.percentage {
        if !(1..=100).contains(&p) {
            return Err(at(
                &format!("{field}.percentage"),
                format!("{p} is not between 1 and 100"),
            ));
        }
    }
    match (f.kind, &f.latency) {
        (FaultKind::Latency, None) => {
            return Err(at(
                field,
                "a latency fault needs `latency` (2s, 500ms)".into(),
            ))
        }
        (FaultKind::Latency, _) | (_, None) => {}
        (_, Some(_)) => {
            return Err(at(
                &format!("{field}.latency"),
                "only a fault of kind latency takes a latency".into(),
            ))
        }
    }
    for (name, v) in [
        ("latency", &f.latency),
        ("from", &f.from),
        ("until", &f.until),
    ] {
        if let Some(v) = v {
            duration(v, &format!("{field}.{name}"), at)?;
        }
    }
    for (i, op) in f.operations.iter().enumerate() {
        if !op.contains(':') {
            return Err(at(
                &format!("{field}.operations[{i}]"),
                format!("`{op}` is not service:Operation (iam:PutRolePolicy, ec2:*)"),
            ));
        }
    }
    Ok(())
}

/// The faults of a checked scenario, ready to apply.
pub fn compile(specs: &[FaultSpec]) -> Vec<Fault> {
    let d = |v: &Option<String>| v.as_deref().and_then(parse_duration);
    specs
        .iter()
        .map(|f| Fault {
            spec: f.clone(),
            from_ms: d(&f.from).map_or(0, |x| x.as_millis() as u64),
            until_ms: d(&f.until).map(|x| x.as_millis() as u64),
            latency: d(&f.latency).unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(kind: FaultKind, ops: &[&str], account: Option<&str>) -> Fault {
        Fault {
            spec: FaultSpec {
                kind,
                operations: ops.iter().map(|s| s.to_string()).collect(),
                account: account.map(String::from),
                percentage: None,
                latency: None,
                from: None,
                until: None,
            },
            from_ms: 60_000,
            until_ms: Some(120_000),
            latency: Duration::ZERO,
        }
    }

    #[test]
    fn a_fault_covers_its_operations_account_and_window_only() {
        let f = fault(FaultKind::Throttle, &["iam:Put*"], Some("111111111111"));
        assert!(f.covers("iam:PutRolePolicy", "111111111111", 60_000));
        assert!(!f.covers("iam:GetRole", "111111111111", 60_000));
        assert!(!f.covers("iam:PutRolePolicy", "222222222222", 60_000));
        assert!(!f.covers("iam:PutRolePolicy", "111111111111", 59_999));
        assert!(!f.covers("iam:PutRolePolicy", "111111111111", 120_000));
    }

    #[test]
    fn throttling_is_retryable_and_a_missing_role_is_not() {
        let t = fault(FaultKind::Throttle, &[], None)
            .error("iam:GetRole", "1")
            .unwrap();
        assert_eq!(t.kind, ErrorKind::Throttled);
        let n = fault(FaultKind::NoResponseRole, &[], None)
            .error("iam:GetRole", "1")
            .unwrap();
        assert!(!n.kind.is_retryable() && n.message.contains("sts:AssumeRole"));
    }

    #[test]
    fn the_generator_is_deterministic_and_near_its_percentage() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let draws: Vec<bool> = (0..1000).map(|_| a.chance(30)).collect();
        assert_eq!(draws, (0..1000).map(|_| b.chance(30)).collect::<Vec<_>>());
        let hits = draws.iter().filter(|h| **h).count();
        assert!((250..350).contains(&hits), "{hits}");
    }
}
