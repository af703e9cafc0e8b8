//! Time, handed to the code that needs it, so the simulator's virtual clock and tests drive the
//! same code as production.
//!
//! A [`Clock`] tells the time and also sleeps: step timeouts, retry backoff and approval
//! deadlines all wait on the clock they were handed, never on `tokio::time` or the system clock
//! directly. [`SystemClock`] is wall-clock time; [`VirtualClock`] moves with tokio's clock, which
//! a paused runtime (`tokio::time::pause()`, or a runtime built with `start_paused`) advances
//! straight to the next timer whenever every task is idle: hours of drill or test time pass in
//! milliseconds, in the same order every time.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A future that completes when a clock reaches a deadline.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of time that can also wait.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// Completes once [`Clock::now_ms`] is at or past `deadline_ms` (at once if it already is).
    fn sleep_until(&self, deadline_ms: u64) -> Sleep;

    /// Completes after `duration` of this clock's time.
    fn sleep(&self, duration: Duration) -> Sleep {
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        self.sleep_until(self.now_ms().saturating_add(ms))
    }
}

/// The system clock; waits on tokio's timer.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

/// The longest single timer a [`SystemClock`] sleep arms before it reads the wall clock again,
/// so that a deadline hours away follows wall-clock corrections (NTP steps, a suspended VM).
const WALL_RECHECK: Duration = Duration::from_secs(60);

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis() as u64
    }

    fn sleep_until(&self, deadline_ms: u64) -> Sleep {
        let clock = *self;
        Box::pin(async move {
            loop {
                let now = clock.now_ms();
                if now >= deadline_ms {
                    return;
                }
                let left = Duration::from_millis(deadline_ms - now);
                tokio::time::sleep(left.min(WALL_RECHECK)).await;
            }
        })
    }
}

/// Epoch time that moves with tokio's clock: `start_ms` at creation, then whatever tokio's
/// monotonic clock says has passed. Under a paused tokio runtime this is a virtual clock: it
/// stands still while tasks work and jumps to the next timer when all of them wait.
#[derive(Debug, Clone, Copy)]
pub struct VirtualClock {
    start_ms: u64,
    start: tokio::time::Instant,
}

impl VirtualClock {
    /// A clock reading `start_ms` now. Create it inside the runtime whose time it follows.
    pub fn starting_at(start_ms: u64) -> VirtualClock {
        VirtualClock {
            start_ms,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> u64 {
        let passed = tokio::time::Instant::now().saturating_duration_since(self.start);
        self.start_ms
            .saturating_add(u64::try_from(passed.as_millis()).unwrap_or(u64::MAX))
    }

    fn sleep_until(&self, deadline_ms: u64) -> Sleep {
        let offset = Duration::from_millis(deadline_ms.saturating_sub(self.start_ms));
        let at = self.start.checked_add(offset);
        Box::pin(async move {
            match at {
                Some(at) => tokio::time::sleep_until(at).await,
                // Beyond what the monotonic clock can represent: never.
                None => std::future::pending().await,
            }
        })
    }
}

/// Formats epoch milliseconds as RFC 3339 UTC (`2026-11-23T16:21:25.123Z`), the form AWS policy
/// conditions and EventBridge use. Civil-from-days after Howard Hinnant's algorithm, so the engine
/// needs no date crate.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{:03}Z",
        ms % 1000
    )
}

/// Parses a duration written as `30s`, `15m`, `2h`, `1d` or `500ms`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().ok()?;
    let ms = match unit {
        "ms" => n,
        "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        "d" => n.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_450_885_123), "2026-11-23T16:21:25.123Z");
    }

    #[tokio::test(start_paused = true)]
    async fn virtual_clock_jumps_to_deadlines_in_order() {
        let clock = VirtualClock::starting_at(1_000);
        let late = tokio::spawn(clock.sleep(Duration::from_secs(7200)));
        clock.sleep_until(61_000).await;
        assert_eq!(clock.now_ms(), 61_000);
        assert!(!late.is_finished());
        late.await.unwrap();
        assert_eq!(clock.now_ms(), 7_201_000);
        // A deadline in the past completes at once.
        clock.sleep_until(5).await;
        assert_eq!(clock.now_ms(), 7_201_000);
    }

    #[tokio::test]
    async fn system_clock_sleeps_past_its_deadline() {
        let clock = SystemClock;
        let deadline = clock.now_ms() + 30;
        clock.sleep_until(deadline).await;
        assert!(clock.now_ms() >= deadline);
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("5y"), None);
    }
}
