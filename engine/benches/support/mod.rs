//! What the pattern and ingest benches share: a deterministic generator, the interleaved
//! measurement that turns noisy timings on a shared machine into same-run ratios, and a
//! realistic EventBridge rule set (`rules`).

#![allow(dead_code)] // Each bench uses its own part of this module.

pub mod rules;

use std::hint::black_box;
use std::time::{Duration, Instant};

/// A tiny deterministic generator (no `rand` dependency; a bench's input must be the same
/// every run).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent`%.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// 1 to `max` distinct items.
    pub fn some<'a, T: PartialEq>(&mut self, items: &'a [T], max: usize) -> Vec<&'a T> {
        let want = 1 + self.below(max);
        let mut out: Vec<&T> = Vec::new();
        while out.len() < want.min(items.len()) {
            let x = self.pick(items);
            if !out.contains(&x) {
                out.push(x);
            }
        }
        out
    }
}

/// One measured variant: a name and the work.
pub type Variant<'a> = (&'static str, Box<dyn FnMut() + 'a>);

/// Wraps `f` so its result is not optimized away.
pub fn variant<'a, R>(name: &'static str, mut f: impl FnMut() -> R + 'a) -> Variant<'a> {
    (
        name,
        Box::new(move || {
            black_box(f());
        }),
    )
}

/// Nanoseconds per call of each variant (outer index) in each round (inner index), measured
/// in `rounds` rounds of ~`batch` batches, all variants once per round, so that a noisy
/// neighbour slows all of them alike.
pub struct Rounds(Vec<Vec<f64>>);

impl Rounds {
    pub fn measure(variants: &mut [Variant], rounds: usize, batch: Duration) -> Rounds {
        // One call first, so one-time work (a lazily built index) does not skew calibration.
        variants.iter_mut().for_each(|(_, f)| f());
        let counts: Vec<u32> = variants
            .iter_mut()
            .map(|(_, f)| calibrate(batch, f))
            .collect();
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
        for _ in 0..rounds {
            for ((_, f), (n, t)) in variants.iter_mut().zip(counts.iter().zip(times.iter_mut())) {
                t.push(per_call(*n, f));
            }
        }
        Rounds(times)
    }

    /// Median nanoseconds per call of variant `i`.
    pub fn median(&self, i: usize) -> f64 {
        median(self.0[i].clone())
    }

    /// The median over rounds of variant `a`'s time over variant `b`'s in the same round:
    /// steadier than a ratio of medians when the machine's load drifts.
    pub fn ratio(&self, a: usize, b: usize) -> f64 {
        median(
            self.0[a]
                .iter()
                .zip(&self.0[b])
                .map(|(x, y)| x / y)
                .collect(),
        )
    }

    /// Prints each variant's median in microseconds.
    pub fn print(&self, title: &str, variants: &[Variant]) {
        println!("{title}:");
        for (i, (name, _)) in variants.iter().enumerate() {
            println!("  {name:<44} {:>9.2} us", self.median(i) / 1e3);
        }
    }

    /// Prints the ratio of variant `a` over `b` against a ceiling.
    pub fn print_ratio(&self, label: &str, a: usize, b: usize, target: f64) {
        let ratio = self.ratio(a, b);
        let verdict = if ratio <= target { "MET" } else { "MISSED" };
        println!("  {label} = {ratio:.2}x (target <= {target}x) {verdict}");
    }
}

/// Whether the binary runs as `cargo bench` (which passes `--bench`) rather than as the quick
/// smoke run of `cargo test --benches`, and not under `--profile-time`.
pub fn full_run() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--profile-time")
}

/// Nanoseconds per call of `f`, over a batch of `n` calls.
fn per_call(n: u32, f: &mut dyn FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

/// How many calls of `f` take about `target`.
fn calibrate(target: Duration, f: &mut dyn FnMut()) -> u32 {
    let mut n = 1u32;
    loop {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        if start.elapsed() >= target / 4 || n >= 1 << 24 {
            let per = start.elapsed().as_secs_f64() / f64::from(n);
            return ((target.as_secs_f64() / per) as u32).max(1);
        }
        n *= 2;
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
