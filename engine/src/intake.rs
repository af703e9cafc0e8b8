//! One delivery of one event, whatever carried it (an EventBridge API destination's HTTP
//! request, an SQS message): parse it, journal the runs its findings start, schedule them, and
//! say what the transport should answer.
//!
//! The verdict follows what the senders do with an answer. EventBridge API destinations retry
//! only on 401, 407, 409, 429 and 5xx and drop any other 4xx for good (EventBridge User Guide,
//! "API destinations": retries and error handling); an SQS message not deleted comes back after
//! its visibility timeout and, after `maxReceiveCount` receives, goes to the queue's dead-letter
//! queue. So: [`Verdict::Accepted`] only once every run the event starts (or its dedup decision)
//! is durable; [`Verdict::Invalid`] only for input that no retry can make valid; anything
//! transient is [`Verdict::Retry`].

use std::time::{Duration, Instant};

use crate::dispatch::{DispatchError, Dispatcher};
use crate::event::{self, EventError, FindingEvent, Parsed, Rejected};
use crate::journal::Admission;
use crate::runner::{Prepare, Submitted};

/// The top-level event field that marks a finding a drill injected (`cordon drill`). A drill's
/// findings are rehearsals: a server acting on one would contain a real resource for a pretend
/// incident, so intake refuses them as [`Verdict::Invalid`].
pub const DRILL_MARKER: &str = "cordon-drill";

/// How long a sender should wait before delivering again after the journal failed.
pub const RETRY_AFTER_UNAVAILABLE: Duration = Duration::from_secs(5);

/// What one delivery came to.
#[derive(Debug)]
pub struct Delivery {
    /// The event's `source` as a bounded label for metrics: `guardduty`, `securityhub` or
    /// `other` (never the attacker-controlled text itself).
    pub source: &'static str,
    /// The verdict.
    pub verdict: Verdict,
}

/// The verdict on one delivery.
#[derive(Debug)]
pub enum Verdict {
    /// Every finding that normalized has its runs (or its dedup decision) durable in the
    /// journal; the runs are scheduled. `rejected` lists the findings of a batch that did not
    /// normalize: they can never be valid, and the others were not held back by them.
    Accepted {
        /// One entry per playbook match, per finding.
        submitted: Vec<Submitted>,
        /// Findings of the batch refused, each with its own error.
        rejected: Vec<Rejected>,
    },
    /// A well-formed event from a finding source that carries no finding (a GuardDuty
    /// CreateSampleFindings API call, a coverage status change): nothing to do, ever.
    Ignored(String),
    /// Input that no retry can make valid: not JSON, not a finding, a field out of range, or
    /// every finding of a batch refused. Says what and where.
    Invalid(EventError),
    /// The input is over the size limit.
    TooLarge(EventError),
    /// Not now: too many runs in flight, shutting down, or the journal failed. Nothing the
    /// delivery asked for is lost: runs already journaled are found as duplicates on the retry.
    Retry {
        /// Why, for the log and the answer.
        reason: String,
        /// When to try again.
        retry_after: Duration,
        /// True for backpressure (too many runs; HTTP 429), false for a failure (HTTP 503).
        busy: bool,
    },
}

impl Verdict {
    /// Bounded label for metrics: `accepted`, `duplicate` (accepted, nothing new started),
    /// `ignored`, `invalid`, `too_large`, `busy`, `unavailable`.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Accepted { submitted, .. } if submitted.iter().any(Submitted::created) => {
                "accepted"
            }
            Verdict::Accepted { submitted, .. }
                if submitted.iter().any(|s| s.status == "duplicate") =>
            {
                "duplicate"
            }
            Verdict::Accepted { .. } => "accepted",
            Verdict::Ignored(_) => "ignored",
            Verdict::Invalid(_) => "invalid",
            Verdict::TooLarge(_) => "too_large",
            Verdict::Retry { busy: true, .. } => "busy",
            Verdict::Retry { busy: false, .. } => "unavailable",
        }
    }
}

/// Called with each finding that starts a run, just before its runs are journaled (the
/// simulator creates the finding's resources in its world here); never for a finding that
/// starts nothing.
pub type OnFinding<'a> = Prepare<'a>;

/// Takes one delivered event (`bytes`, received at `received`) through the dispatcher.
/// Never panics on input; returns once the verdict is durable (see [`Verdict`]).
pub async fn deliver(
    dispatcher: &Dispatcher,
    bytes: &[u8],
    received: Instant,
    on_finding: &OnFinding<'_>,
) -> Delivery {
    let parsed = event::parse(bytes);
    let source = source_label(&parsed);
    let parsed = parsed.and_then(|p| match &p {
        Parsed::Findings(b) => drill_marked(&b.findings).map_or(Ok(p), Err),
        Parsed::Ignored(_) => Ok(p),
    });
    let verdict = match parsed {
        Err(e @ EventError::TooLarge { .. }) => Verdict::TooLarge(e),
        Err(e) => Verdict::Invalid(e),
        Ok(Parsed::Ignored(i)) => Verdict::Ignored(i.reason),
        Ok(Parsed::Findings(batch)) if batch.findings.is_empty() => {
            Verdict::Invalid(all_rejected(batch.rejected))
        }
        Ok(Parsed::Findings(batch)) => {
            let mut submitted = Vec::new();
            let mut failed = None;
            for fe in &batch.findings {
                match dispatcher
                    .submit_prepared(fe, received, Admission::Deliver, on_finding)
                    .await
                {
                    Ok(s) => submitted.extend(s),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            match failed {
                None => Verdict::Accepted {
                    submitted,
                    rejected: batch.rejected,
                },
                Some(e) => retry(e),
            }
        }
    };
    Delivery { source, verdict }
}

/// The error for a batch holding a finding a drill injected (see [`DRILL_MARKER`]).
fn drill_marked(findings: &[FindingEvent]) -> Option<EventError> {
    findings
        .iter()
        .any(|fe| fe.event.get(DRILL_MARKER).is_some())
        .then(|| EventError::Invalid {
            path: DRILL_MARKER.into(),
            problem: "marks a finding a drill injected; `cordon serve` never acts on drills".into(),
        })
}

fn retry(e: DispatchError) -> Verdict {
    match e {
        DispatchError::Busy { retry_after, .. } => Verdict::Retry {
            reason: e.to_string(),
            retry_after,
            busy: true,
        },
        DispatchError::ShuttingDown => Verdict::Retry {
            reason: e.to_string(),
            retry_after: RETRY_AFTER_UNAVAILABLE,
            busy: false,
        },
        DispatchError::Runner(e) => Verdict::Retry {
            reason: format!("journal: {e}"),
            retry_after: RETRY_AFTER_UNAVAILABLE,
            busy: false,
        },
    }
}

/// A batch whose every finding was refused is one invalid input; the first error says where.
fn all_rejected(rejected: Vec<Rejected>) -> EventError {
    let n = rejected.len();
    match rejected.into_iter().next() {
        Some(first) if n == 1 => first.error,
        Some(first) => EventError::Invalid {
            path: "findings".into(),
            problem: format!("were all {n} refused; the first: {first}"),
        },
        None => EventError::Invalid {
            path: "findings".into(),
            problem: "is empty".into(),
        },
    }
}

fn source_label(parsed: &Result<Parsed, EventError>) -> &'static str {
    let source = match parsed {
        Ok(Parsed::Ignored(i)) => i.source.as_str(),
        Ok(Parsed::Findings(b)) => match b.findings.first() {
            Some(fe) => fe.event["source"].as_str().unwrap_or_default(),
            None => "",
        },
        Err(_) => "",
    };
    match source {
        "aws.guardduty" => "guardduty",
        "aws.securityhub" => "securityhub",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = include_str!(
        "../../tests/fixtures/events/aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json"
    );

    fn findings(text: &str) -> Vec<FindingEvent> {
        match event::parse(text.as_bytes()) {
            Ok(Parsed::Findings(b)) => b.findings,
            other => panic!("not findings: {other:?}"),
        }
    }

    #[test]
    fn a_finding_a_drill_injected_is_refused_and_a_real_one_is_not() {
        assert!(drill_marked(&findings(EVENT)).is_none());
        let mut event: serde_json::Value = serde_json::from_str(EVENT).unwrap();
        event[DRILL_MARKER] = "c2-instance".into();
        let error = drill_marked(&findings(&event.to_string())).expect("refused");
        assert_eq!(
            error.to_string(),
            "cordon-drill marks a finding a drill injected; `cordon serve` never acts on drills"
        );
    }
}
