//! How the intake polls, checked against SQS's limits, and what a queue URL tells.

use std::time::Duration;

use tokio::sync::Semaphore;

use super::{MAX_VISIBILITY_S, MAX_WAIT_S};

/// How the intake polls. [`SqsOptions::default`] is what `cordon serve` should use.
#[derive(Debug, Clone, PartialEq)]
pub struct SqsOptions {
    /// Long-poll wait of each ReceiveMessage (WaitTimeSeconds): whole seconds, 1 to 20. Not 0:
    /// short polling an empty queue would call SQS in a tight loop.
    pub wait_time: Duration,
    /// Visibility timeout asked for on each receive (overriding the queue's) and renewed every
    /// third of it while a message is handled: whole seconds, 1 to 43200.
    pub visibility_timeout: Duration,
    /// Most messages handled at once (at least 1). Receiving stops while all are busy.
    pub concurrency: usize,
    /// First wait after a failed receive; doubled after each further failure, with jitter.
    pub backoff_min: Duration,
    /// Longest wait after failed receives.
    pub backoff_max: Duration,
}

impl Default for SqsOptions {
    fn default() -> SqsOptions {
        SqsOptions {
            wait_time: Duration::from_secs(MAX_WAIT_S),
            // SQS's own default for a queue.
            visibility_timeout: Duration::from_secs(30),
            concurrency: 20,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// A queue URL or option the intake cannot use.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SqsError {
    /// An option out of SQS's range.
    #[error("SQS intake option `{field}` must be {expected}, got {got}")]
    Option {
        /// The [`SqsOptions`] field.
        field: &'static str,
        /// What would be accepted.
        expected: &'static str,
        /// What was given.
        got: String,
    },
    /// The queue URL is not an http(s) URL.
    #[error("SQS queue URL `{0}` must be an http(s) URL, such as https://sqs.us-east-1.amazonaws.com/111122223333/cordon (as `aws sqs get-queue-url` prints it)")]
    QueueUrl(String),
}

impl SqsOptions {
    pub(super) fn validate(&self) -> Result<(), SqsError> {
        let whole = |d: Duration| d.subsec_nanos() == 0;
        let bad = |field, expected, got: String| {
            Err(SqsError::Option {
                field,
                expected,
                got,
            })
        };
        let w = self.wait_time;
        if !whole(w) || w.is_zero() || w.as_secs() > MAX_WAIT_S {
            return bad(
                "wait_time",
                "whole seconds from 1 to 20",
                format!("{:?}", self.wait_time),
            );
        }
        let v = self.visibility_timeout;
        if !whole(v) || v.as_secs() == 0 || v.as_secs() > MAX_VISIBILITY_S {
            return bad(
                "visibility_timeout",
                "whole seconds from 1 to 43200",
                format!("{v:?}"),
            );
        }
        if self.concurrency == 0 || self.concurrency > Semaphore::MAX_PERMITS {
            return bad("concurrency", "at least 1", self.concurrency.to_string());
        }
        if self.backoff_min.is_zero() || self.backoff_max < self.backoff_min {
            let got = format!("{:?} to {:?}", self.backoff_min, self.backoff_max);
            return bad("backoff_min", "above zero and at most backoff_max", got);
        }
        Ok(())
    }
}

/// The region in an AWS queue URL: `https://sqs.<region>.amazonaws.com/...` or the legacy
/// `https://<region>.queue.amazonaws.com/...` (also under `.amazonaws.com.cn`).
pub(super) fn region_of(queue_url: &str) -> Option<String> {
    let host = queue_url.strip_prefix("https://")?.split('/').next()?;
    let host = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let region = host
        .strip_prefix("sqs.")
        .or_else(|| host.strip_suffix(".queue"))?;
    let valid = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    valid.then(|| region.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_comes_from_an_aws_queue_url_only() {
        let r = |u| region_of(u);
        assert_eq!(
            r("https://sqs.eu-west-3.amazonaws.com/111122223333/cordon").as_deref(),
            Some("eu-west-3")
        );
        assert_eq!(
            r("https://us-east-2.queue.amazonaws.com/111122223333/q").as_deref(),
            Some("us-east-2")
        );
        assert_eq!(
            r("https://sqs.cn-north-1.amazonaws.com.cn/111122223333/q").as_deref(),
            Some("cn-north-1")
        );
        assert_eq!(r("http://127.0.0.1:5000/123456789012/q"), None);
        assert_eq!(r("https://sqs.amazonaws.com.evil.example/q"), None);
        assert_eq!(r("https://sqs..amazonaws.com/q"), None);
    }

    #[test]
    fn options_outside_sqs_limits_are_refused_with_the_field_named() {
        let ok = SqsOptions::default();
        assert_eq!(ok.validate(), Ok(()));
        let cases = [
            (
                SqsOptions {
                    wait_time: Duration::from_secs(21),
                    ..ok.clone()
                },
                "wait_time",
            ),
            (
                SqsOptions {
                    wait_time: Duration::ZERO,
                    ..ok.clone()
                },
                "wait_time",
            ),
            (
                SqsOptions {
                    wait_time: Duration::from_millis(1500),
                    ..ok.clone()
                },
                "wait_time",
            ),
            (
                SqsOptions {
                    visibility_timeout: Duration::ZERO,
                    ..ok.clone()
                },
                "visibility_timeout",
            ),
            (
                SqsOptions {
                    visibility_timeout: Duration::from_secs(43_201),
                    ..ok.clone()
                },
                "visibility_timeout",
            ),
            (
                SqsOptions {
                    concurrency: 0,
                    ..ok.clone()
                },
                "concurrency",
            ),
            (
                SqsOptions {
                    backoff_max: Duration::from_millis(1),
                    ..ok.clone()
                },
                "backoff_min",
            ),
        ];
        for (o, field) in cases {
            let e = o.validate().unwrap_err();
            assert!(
                matches!(e, SqsError::Option { field: f, .. } if f == field),
                "{e}"
            );
            assert!(e.to_string().contains(field), "{e}");
        }
    }
}
