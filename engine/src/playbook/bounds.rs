//! The limits on every duration and retry a playbook writes, checked at load so that no value
//! can hang a run, wait forever by mistake, or overflow a deadline.
//!
//! | field | accepted | why |
//! |---|---|---|
//! | step `timeout` (per attempt) | 1s to 1h | a containment call that takes an hour has failed |
//! | `retry.attempts` | 1 to 10 | the first attempt included |
//! | `retry.backoff` | 10ms to 1m | the first wait; the runner doubles it per retry, up to 64 times |
//! | all retry waits of a step | at most 15m | a throttled containment still failing after 15 minutes should fail and tell people |
//! | `approval` `timeout` | 1s to 7d | a decision nobody made in a week is better denied and re-run |
//! | `approval` `default` | `approve` or `deny`, only with a `timeout` | without a timeout it never applies |
//! | `approval` `approvers` | 1 to 5 | distinct people who must approve (two-person rule); more would stall containment |
//!
//! Durations are written as a whole number and a unit: `500ms`, `30s`, `5m`, `2h`, `1d`. The
//! approval's `timeout` and `default` are written out, never `${...}`: they are checked here,
//! and a finding (attacker-controlled data) must not choose how long containment waits.

use std::ops::RangeInclusive;
use std::time::Duration;

use serde_json::{Map, Value};

use super::compile::Ctx;
use super::raw::RawRetry;
use super::Retry;
use crate::clock::parse_duration;

/// Accepted per-attempt step timeouts.
pub const STEP_TIMEOUT: RangeInclusive<Duration> =
    RangeInclusive::new(Duration::from_secs(1), Duration::from_secs(3600));
/// Accepted `retry.attempts`, the first attempt included.
pub const RETRY_ATTEMPTS: RangeInclusive<u32> = RangeInclusive::new(1, 10);
/// Accepted `retry.backoff` (the first wait).
pub const RETRY_BACKOFF: RangeInclusive<Duration> =
    RangeInclusive::new(Duration::from_millis(10), Duration::from_secs(60));
/// The longest a step's retries may wait in all, at the runner's longest jittered waits.
pub const RETRY_TOTAL_WAIT: Duration = Duration::from_secs(15 * 60);
/// Accepted `approval` `approvers`: how many different people must approve.
pub const APPROVERS: RangeInclusive<u64> = RangeInclusive::new(1, 5);
/// Accepted `approval` timeouts.
pub const APPROVAL_TIMEOUT: RangeInclusive<Duration> =
    RangeInclusive::new(Duration::from_secs(1), Duration::from_secs(7 * 86_400));

/// Default per-attempt step timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Default retry: three attempts, starting at one second.
pub(super) const DEFAULT_RETRY: Retry = Retry {
    attempts: 3,
    backoff: Duration::from_secs(1),
};
/// The runner doubles the wait per retry up to this factor (`drive.rs`, `backoff`).
const MAX_DOUBLING: u32 = 6;

/// `1h`, `1m30s`, `1s500ms`: whole units, largest first.
pub(super) fn show(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// Parses `text` as a duration within `range`; on error records it against `field`.
fn duration(
    cx: &mut Ctx<'_>,
    field: &str,
    text: &str,
    range: &RangeInclusive<Duration>,
    what: &str,
) -> Option<Duration> {
    let bounds = format!("{} to {}", show(*range.start()), show(*range.end()));
    match parse_duration(text) {
        Some(d) if range.contains(&d) => Some(d),
        Some(_) => {
            cx.err(
                field,
                format!("{text:?} is out of bounds: {what} is {bounds}"),
            );
            None
        }
        None => {
            cx.err(
                field,
                format!("{text:?} is not a duration: write a whole number and a unit (ms, s, m, h, d), e.g. 30s, 5m; {what} is {bounds}"),
            );
            None
        }
    }
}

/// A step's `timeout`, or the default.
pub(super) fn step_timeout(cx: &mut Ctx<'_>, at: &str, raw: Option<&str>) -> Duration {
    raw.and_then(|t| {
        duration(
            cx,
            &format!("{at}.timeout"),
            t,
            &STEP_TIMEOUT,
            "a step timeout",
        )
    })
    .unwrap_or(DEFAULT_TIMEOUT)
}

/// The longest the runner can wait across all retries: the r-th retry waits at most
/// `backoff × 2^min(r, 6)`.
fn worst_total_wait(r: &Retry) -> Duration {
    (1..r.attempts).fold(Duration::ZERO, |sum, n| {
        sum.saturating_add(r.backoff.saturating_mul(1 << n.min(MAX_DOUBLING)))
    })
}

/// A step's `retry`, or the default.
pub(super) fn retry(cx: &mut Ctx<'_>, at: &str, raw: Option<RawRetry>) -> Retry {
    let Some(r) = raw else {
        return DEFAULT_RETRY;
    };
    let mut ok = true;
    if !RETRY_ATTEMPTS.contains(&r.attempts) {
        cx.err(
            format!("{at}.retry.attempts"),
            format!(
                "{} is out of bounds: attempts (the first included) are {} to {}",
                r.attempts,
                RETRY_ATTEMPTS.start(),
                RETRY_ATTEMPTS.end()
            ),
        );
        ok = false;
    }
    let backoff = match r.backoff.as_deref() {
        None => Some(DEFAULT_RETRY.backoff),
        Some(t) => duration(
            cx,
            &format!("{at}.retry.backoff"),
            t,
            &RETRY_BACKOFF,
            "a retry backoff",
        ),
    };
    let Some(backoff) = backoff.filter(|_| ok) else {
        return DEFAULT_RETRY;
    };
    let retry = Retry {
        attempts: r.attempts,
        backoff,
    };
    let total = worst_total_wait(&retry);
    if total > RETRY_TOTAL_WAIT {
        cx.err(
            format!("{at}.retry"),
            format!(
                "{} attempts with backoff {} can wait up to {} in all (the wait doubles per retry); keep it within {}: fewer attempts or a shorter backoff",
                retry.attempts,
                show(backoff),
                show(Duration::from_secs(total.as_secs())),
                show(RETRY_TOTAL_WAIT)
            ),
        );
        return DEFAULT_RETRY;
    }
    retry
}

/// Checks an `approval` step's `timeout`, `default` and `approvers` parameters.
pub(super) fn approval(cx: &mut Ctx<'_>, at: &str, with: &Map<String, Value>) {
    let field = |k: &str| format!("{at}.with.{k}");
    let fixed = |v: &Value| !matches!(v, Value::String(s) if s.contains("${"));
    approvers(cx, &field("approvers"), with.get("approvers"));
    let timeout = with.get("timeout");
    match timeout {
        None => {}
        Some(v) if !fixed(v) => cx.err(
            field("timeout"),
            "write the timeout out (e.g. 30m): it is checked at load, and finding data must not choose it",
        ),
        Some(Value::String(t)) => {
            duration(cx, &field("timeout"), t, &APPROVAL_TIMEOUT, "an approval timeout");
        }
        Some(other) => cx.err(
            field("timeout"),
            format!("{other} is not a duration: write a whole number and a unit, e.g. 30m, 4h"),
        ),
    }
    let Some(default) = with.get("default") else {
        return;
    };
    if !matches!(default, Value::String(d) if d == "approve" || d == "deny") {
        cx.err(
            field("default"),
            format!("{default} is not a decision: write approve or deny"),
        );
    } else if timeout.is_none() {
        cx.err(
            field("default"),
            "a default applies only when the approval times out: add a `timeout` (e.g. 1h), or remove `default`",
        );
    }
}

/// An `approval` step's `approvers`: a whole number written out, within [`APPROVERS`].
fn approvers(cx: &mut Ctx<'_>, field: &str, value: Option<&Value>) {
    let (lo, hi) = (APPROVERS.start(), APPROVERS.end());
    match value {
        None => {}
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| APPROVERS.contains(&n)) => {}
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => cx.err(
            field,
            format!("{n} is out of bounds: approvers (different people who must approve) are {lo} to {hi}"),
        ),
        Some(other) => cx.err(
            field,
            format!("{other} is not a number of people: write a whole number from {lo} to {hi}, e.g. 2 (it is checked at load, and finding data must not choose it)"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::compile;
    use crate::script::Sandbox;

    /// A manual playbook whose first step is `step` (indented as a list item's body).
    fn errors(step: &str) -> Vec<String> {
        let text = format!("id: p\ntitle: t\nversion: 1\nmode: manual\nsteps:\n  - id: s\n{step}");
        match compile("p.yaml", &text, &Sandbox::default()) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    fn approval(with: &str) -> Vec<String> {
        errors(&format!("    action: approval\n    with:\n{with}"))
    }

    fn isolate(extra: &str) -> Vec<String> {
        errors(&format!(
            "    action: ec2.isolate_instance\n    with:\n      instance: i-1\n{extra}"
        ))
    }

    #[test]
    fn approval_timeouts_are_durations_within_bounds() {
        assert_eq!(
            approval("      timeout: 4h\n      default: deny\n"),
            Vec::<String>::new()
        );
        assert_eq!(
            approval("      timeout: 18446744073709551615ms\n      default: approve\n"),
            ["p.yaml:9: steps[0].with.timeout: \"18446744073709551615ms\" is out of bounds: an approval timeout is 1s to 7d"]
        );
        let e = approval("      timeout: 1x\n      default: deny\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("p.yaml:9: steps[0].with.timeout: \"1x\" is not a duration"),
            "{e:?}"
        );
        let e = approval("      timeout: 99999999999999999999999d\n");
        assert!(e[0].contains("is not a duration"), "{e:?}");
        assert!(approval("      timeout: 8d\n")[0].contains("out of bounds"));
        assert!(approval("      timeout: 30\n")[0].contains("30 is not a duration"));
        assert!(
            approval("      timeout: \"${finding.title}\"\n")[0].contains("write the timeout out")
        );
    }

    #[test]
    fn approval_defaults_are_decisions_with_a_timeout() {
        assert_eq!(
            approval("      timeout: 1h\n      default: yes\n"),
            ["p.yaml:10: steps[0].with.default: \"yes\" is not a decision: write approve or deny"]
        );
        let e = approval("      default: approve\n");
        assert!(e[0].starts_with("p.yaml:9: steps[0].with.default: a default applies only when the approval times out"), "{e:?}");
    }

    #[test]
    fn approvers_are_a_small_whole_number_written_out() {
        assert_eq!(approval("      approvers: 2\n"), Vec::<String>::new());
        assert_eq!(approval("      approvers: 5\n"), Vec::<String>::new());
        assert_eq!(
            approval("      approvers: 6\n"),
            ["p.yaml:9: steps[0].with.approvers: 6 is out of bounds: approvers (different people who must approve) are 1 to 5"]
        );
        assert!(approval("      approvers: 0\n")[0].contains("0 is out of bounds"));
        for bad in [
            "-1",
            "1.5",
            "two",
            "\"${finding.severity}\"",
            "18446744073709551616",
        ] {
            let e = approval(&format!("      approvers: {bad}\n"));
            assert_eq!(e.len(), 1, "{bad}: {e:?}");
            assert!(
                e[0].starts_with("p.yaml:9: steps[0].with.approvers: "),
                "{bad}: {e:?}"
            );
        }
        assert!(approval("      approvers: two\n")[0].contains("\"two\" is not a number of people"));
    }

    #[test]
    fn step_timeouts_are_bounded() {
        assert_eq!(isolate("    timeout: 2m\n"), Vec::<String>::new());
        for (t, why) in [
            ("0s", "is out of bounds"),
            ("500ms", "is out of bounds"),
            ("2h", "is out of bounds"),
            ("soon", "is not a duration"),
        ] {
            let e = isolate(&format!("    timeout: {t}\n"));
            assert_eq!(e.len(), 1, "{t}: {e:?}");
            assert!(
                e[0].starts_with(&format!("p.yaml:10: steps[0].timeout: \"{t}\" {why}")),
                "{e:?}"
            );
            assert!(e[0].ends_with("a step timeout is 1s to 1h"), "{e:?}");
        }
    }

    #[test]
    fn retries_are_bounded_one_by_one_and_in_all() {
        assert_eq!(
            isolate("    retry: {attempts: 5, backoff: 2s}\n"),
            Vec::<String>::new()
        );
        let e = isolate("    retry: {attempts: 3, backoff: 18446744073709551615ms}\n");
        assert_eq!(
            e,
            ["p.yaml:10: steps[0].retry.backoff: \"18446744073709551615ms\" is out of bounds: a retry backoff is 10ms to 1m"]
        );
        assert!(
            isolate("    retry: {attempts: 0}\n")[0].contains("retry.attempts: 0 is out of bounds")
        );
        assert!(isolate("    retry: {attempts: 11}\n")[0]
            .contains("retry.attempts: 11 is out of bounds"));
        assert!(isolate("    retry: {attempts: 2, backoff: 0ms}\n")[0]
            .contains("retry.backoff: \"0ms\" is out of bounds"));
        assert_eq!(
            isolate("    retry:\n      attempts: 10\n      backoff: 1m\n"),
            ["p.yaml:10: steps[0].retry: 10 attempts with backoff 1m can wait up to 5h18m in all (the wait doubles per retry); keep it within 15m: fewer attempts or a shorter backoff"]
        );
    }

    #[test]
    fn shows_durations_in_their_largest_exact_unit() {
        assert_eq!(show(Duration::from_secs(3600)), "1h");
        assert_eq!(show(Duration::from_secs(90)), "1m30s");
        assert_eq!(show(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(show(Duration::ZERO), "0s");
        assert_eq!(show(Duration::from_secs(7 * 86_400)), "7d");
    }

    #[test]
    fn worst_total_wait_follows_the_doubling_and_its_cap() {
        let r = |attempts, secs| Retry {
            attempts,
            backoff: Duration::from_secs(secs),
        };
        assert_eq!(worst_total_wait(&r(1, 1)), Duration::ZERO);
        assert_eq!(worst_total_wait(&r(3, 1)), Duration::from_secs(2 + 4));
        // 2+4+8+16+32+64, then 64 per retry.
        assert_eq!(
            worst_total_wait(&r(10, 1)),
            Duration::from_secs(126 + 3 * 64)
        );
        assert!(worst_total_wait(&r(10, 60)) > RETRY_TOTAL_WAIT);
    }
}
