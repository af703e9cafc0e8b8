//! Pattern matching cost as rule sets grow, against the cost of parsing the event matched.
//!
//! One ~4 KB GuardDuty event (a real fixture), compared against: (a) parsing its bytes with
//! `serde_json::from_slice::<Value>`; (b) matching it against a `PatternSet` of 1 pattern;
//! (c) 1,000 and (d) 10,000 realistic patterns (`support/rules.rs`: finding types and
//! families, accounts, regions, severities, tags, network details, Security Hub fields, `$or`,
//! prefix/suffix/numeric/anything-but/cidr/wildcard...), of which the same 3 match at both
//! sizes while thousands share some of the event's values.
//!
//! Targets (issue 11): matching stays flat as playbooks grow: (d) <= 1x (a), (d) <= 1.5x (c).
//! Criterion reports the times; then, in bench mode only, the variants are measured again
//! interleaved round by round (a noisy neighbour slows all alike) and the ratios printed.
//!
//! Run: `cargo bench -p cordon-engine --bench pattern -- --warm-up-time 1 --measurement-time 3`

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use cordon_engine::pattern::{compile, PatternSet};
use criterion::Criterion;
use serde_json::{json, Value};
use support::rules::{rule_set, PLANTED};

const FIXTURE: &str = "aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json";

struct Fixture {
    bytes: Vec<u8>,
    event: Value,
    one: PatternSet,
    thousand: PatternSet,
    ten_thousand: PatternSet,
}

fn set_of(n: usize, event: &Value) -> PatternSet {
    let patterns = rule_set(n, event, |p| {
        compile(p).expect("pattern compiles").matches(event)
    });
    let started = Instant::now();
    let mut set = PatternSet::new();
    for (id, p) in patterns.iter().enumerate() {
        set.add(id, p).expect("pattern compiles");
    }
    let added = started.elapsed();
    // Only the planted patterns match, at any size (the first match builds the index).
    let planted: Vec<usize> = (0..PLANTED).collect();
    assert_eq!(set.matches(event), planted);
    println!(
        "pattern: {n} patterns compiled in {added:.1?}, indexed in {:.1?}",
        started.elapsed() - added
    );
    assert_eq!(set.len(), n);
    set
}

impl Fixture {
    fn new() -> Fixture {
        let path = format!(
            "{}/../tests/fixtures/events/{FIXTURE}",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        let event: Value = serde_json::from_slice(&bytes).expect("fixture parses");
        let mut one = PatternSet::new();
        one.add(0, &json!({
            "source": ["aws.guardduty"],
            "detail-type": ["GuardDuty Finding"],
            "detail": { "type": ["UnauthorizedAccess:EC2/MaliciousIPCaller.Custom"], "severity": [{ "numeric": [">=", 4] }] }
        }))
        .expect("pattern compiles");
        assert_eq!(one.matches(&event), vec![0]);
        let thousand = set_of(1_000, &event);
        let ten_thousand = set_of(10_000, &event);
        Fixture {
            bytes,
            event,
            one,
            thousand,
            ten_thousand,
        }
    }
}

fn criterion_groups(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("pattern");
    g.bench_function("parse_event_from_slice", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&fx.bytes)).expect("parses"))
    });
    g.bench_function("match_1_pattern", |b| {
        b.iter(|| fx.one.matches(black_box(&fx.event)))
    });
    g.bench_function("match_1000_realistic", |b| {
        b.iter(|| fx.thousand.matches(black_box(&fx.event)))
    });
    g.bench_function("match_10000_realistic", |b| {
        b.iter(|| fx.ten_thousand.matches(black_box(&fx.event)))
    });
    g.finish();
}

fn ratios(fx: &Fixture) {
    const ROUNDS: usize = 41;
    let batch = Duration::from_millis(10);
    let mut variants = vec![
        support::variant("parse_event_from_slice", || {
            serde_json::from_slice::<Value>(black_box(&fx.bytes)).expect("parses")
        }),
        support::variant("match_1_pattern", || fx.one.matches(black_box(&fx.event))),
        support::variant("match_1000_realistic", || {
            fx.thousand.matches(black_box(&fx.event))
        }),
        support::variant("match_10000_realistic", || {
            fx.ten_thousand.matches(black_box(&fx.event))
        }),
    ];
    let r = support::Rounds::measure(&mut variants, ROUNDS, batch);
    r.print(
        &format!("pattern ratios (medians of {ROUNDS} interleaved {batch:?} batches; ratios are medians of per-round ratios)"),
        &variants,
    );
    r.print_ratio("10,000 patterns / JSON parse", 3, 0, 1.0);
    r.print_ratio("10,000 patterns / 1,000 patterns", 3, 2, 1.5);
    println!(
        "  (1,000 patterns / JSON parse = {:.3}x; 1 pattern / JSON parse = {:.3}x)",
        r.ratio(2, 0),
        r.ratio(1, 0)
    );
}

fn main() {
    let fx = Fixture::new();
    let mut c = Criterion::default().configure_from_args();
    criterion_groups(&mut c, &fx);
    c.final_summary();
    if support::full_run() {
        ratios(&fx);
    }
}
