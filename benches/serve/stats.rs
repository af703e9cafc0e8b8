//! Figures of the serve bench: a Prometheus histogram read from `/metrics`, quantiles of
//! samples.

use std::collections::BTreeMap;

/// A Prometheus histogram: cumulative counts per upper bound (`+Inf` left out: it is `count`).
#[derive(Default, Clone)]
pub struct Hist {
    /// Upper bound (as `f64::to_bits`, which orders positive floats) -> cumulative count.
    buckets: BTreeMap<u64, u64>,
    /// Observations.
    pub count: u64,
    /// Their sum, in seconds.
    pub sum: f64,
}

impl Hist {
    /// Reads `name` from OpenMetrics text, adding up its label sets.
    pub fn parse(text: &str, name: &str) -> Hist {
        let mut h = Hist::default();
        let last = |l: &str| l.split_whitespace().last().unwrap_or("").to_string();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(name) else {
                continue;
            };
            if rest.starts_with("_bucket{") {
                let le = rest
                    .split("le=\"")
                    .nth(1)
                    .and_then(|s| s.split('"').next())
                    .expect("le label");
                if le == "+Inf" {
                    continue;
                }
                let bound: f64 = le.parse().expect("bound");
                let n: u64 = last(rest).parse().expect("bucket count");
                *h.buckets.entry(bound.to_bits()).or_insert(0) += n;
            } else if rest.starts_with("_count") {
                h.count += last(rest).parse::<u64>().expect("count");
            } else if rest.starts_with("_sum") {
                h.sum += last(rest).parse::<f64>().expect("sum");
            }
        }
        h
    }

    /// `self - earlier`: what was observed in between.
    pub fn minus(&self, earlier: &Hist) -> Hist {
        let mut h = self.clone();
        for (b, n) in &earlier.buckets {
            *h.buckets.entry(*b).or_insert(0) -= n;
        }
        h.count -= earlier.count;
        h.sum -= earlier.sum;
        h
    }

    /// Adds `other`'s observations.
    pub fn add(&mut self, other: &Hist) {
        for (b, n) in &other.buckets {
            *self.buckets.entry(*b).or_insert(0) += n;
        }
        self.count += other.count;
        self.sum += other.sum;
    }

    /// The `q` quantile, interpolated linearly inside its bucket as Prometheus'
    /// `histogram_quantile` does; infinity when it falls above the last bound.
    pub fn quantile(&self, q: f64) -> f64 {
        let rank = q * self.count as f64;
        let (mut lower, mut below) = (0.0, 0u64);
        for (bits, cumulative) in &self.buckets {
            let bound = f64::from_bits(*bits);
            if *cumulative as f64 >= rank && *cumulative > below {
                let inside = (rank - below as f64) / (*cumulative - below) as f64;
                return lower + (bound - lower) * inside;
            }
            (lower, below) = (bound, *cumulative);
        }
        f64::INFINITY
    }

    /// The share of observations at or below `bound`, which must be one of the bounds.
    pub fn share_at_or_below(&self, bound: f64) -> f64 {
        let n = self
            .buckets
            .get(&bound.to_bits())
            .unwrap_or_else(|| panic!("no bucket bound at {bound} s in the histogram"));
        *n as f64 / self.count.max(1) as f64
    }
}

/// The `q` quantile of `v` (nearest rank).
pub fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(((v.len().saturating_sub(1)) as f64 * q).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

/// The median of `v`.
pub fn median(v: Vec<f64>) -> f64 {
    quantile(&v, 0.5)
}
