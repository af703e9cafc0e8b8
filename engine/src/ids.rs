//! Run ids and the randomness the runner uses (retry jitter), from a source the code is handed.
//!
//! Run ids are UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits, so ids sort
//! by creation time and the journal's keys stay in time order. The milliseconds come from the
//! runner's [`Clock`](crate::clock::Clock), never from the system clock, and the random bits from
//! an [`IdSource`]: [`RandomIds`] in production, [`SeededIds`] where the same inputs must give
//! the same ids (drills, tests).

use std::sync::atomic::{AtomicU64, Ordering};

/// Where run ids and jitter come from.
pub trait IdSource: Send + Sync {
    /// A new run id for a run created at `now_ms` (epoch ms): a lower-case hyphenated UUIDv7.
    fn run_id(&self, now_ms: u64) -> String {
        let mut random = [0u8; 10];
        random[..8].copy_from_slice(&self.random().to_le_bytes());
        random[8..].copy_from_slice(&self.random().to_le_bytes()[..2]);
        uuid::Builder::from_unix_timestamp_millis(now_ms, &random)
            .into_uuid()
            .to_string()
    }

    /// 64 random bits.
    fn random(&self) -> u64;
}

/// Operating-system randomness.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn random(&self) -> u64 {
        let mut bytes = [0u8; 8];
        if getrandom::fill(&mut bytes).is_err() {
            // No OS randomness (it does not fail on Linux): fall back to std's per-process
            // random hash keys, which still differ between processes.
            use std::hash::{BuildHasher, RandomState};
            return RandomState::new().hash_one(std::time::Instant::now());
        }
        u64::from_le_bytes(bytes)
    }
}

/// A deterministic sequence (SplitMix64) from a seed: the same seed gives the same ids and
/// jitter in the same order.
#[derive(Debug)]
pub struct SeededIds {
    state: AtomicU64,
}

impl SeededIds {
    /// A sequence starting from `seed`.
    pub fn new(seed: u64) -> SeededIds {
        SeededIds {
            state: AtomicU64::new(seed),
        }
    }
}

impl IdSource for SeededIds {
    fn random(&self) -> u64 {
        // SplitMix64 (Steele, Lea, Flood 2014), as used to seed xoshiro generators.
        let mut z = self
            .state
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_the_clock_not_the_system_time() {
        let ids = RandomIds;
        let early = ids.run_id(1_000);
        let late = ids.run_id(2_000_000_000_000);
        assert!(early < late, "{early} < {late}");
        let parsed = uuid::Uuid::parse_str(&early).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
        let (secs, _) = parsed.get_timestamp().unwrap().to_unix();
        assert_eq!(secs, 1);
    }

    #[test]
    fn seeded_ids_repeat_for_the_same_seed() {
        let (a, b, c) = (SeededIds::new(7), SeededIds::new(7), SeededIds::new(8));
        let first: Vec<String> = (0..3).map(|i| a.run_id(i)).collect();
        let again: Vec<String> = (0..3).map(|i| b.run_id(i)).collect();
        assert_eq!(first, again);
        assert_ne!(first[0], c.run_id(0));
        assert_ne!(first[1], first[2]);
    }
}
