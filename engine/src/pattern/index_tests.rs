//! Differential tests of the index: random pattern sets and random events over one small
//! vocabulary, so that values, prefixes and blocks collide often; every answer of
//! [`PatternSet::matches`] must equal evaluating each pattern on its own with
//! [`Pattern::matches`](super::super::Pattern::matches).

use serde_json::{json, Map, Value};

use super::super::compile;
use super::PatternSet;

/// A deterministic generator (tests must fail the same way every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

const KEYS: &[&str] = &["a", "b", "c", "d"];
const WORDS: &[&str] = &[
    "alpha",
    "alp",
    "al",
    "beta",
    "Beta",
    "BETA",
    "gamma",
    "",
    "x.y",
    "10.0.0.1",
    "10.0.1.7",
    "192.168.4.2",
    "::1",
    "2001:db8::5",
    "prod-1",
    "prod-22",
    "test-1",
    "ünï",
];

/// A scalar an event or an exact pattern value may hold.
fn scalar(rng: &mut Lcg) -> Value {
    match rng.below(10) {
        0..=5 => json!(rng.pick(WORDS)),
        6 => json!(rng.below(6)),
        7 => json!(rng.pick(&[0.0, -0.0, 2.5, -3.0, 5e9, 4.0])),
        8 => json!(rng.chance(50)),
        _ => Value::Null,
    }
}

/// One match value of a leaf: every operator, with operands from the same vocabulary.
fn matcher(rng: &mut Lcg) -> Value {
    let word = rng.pick(WORDS);
    let cut = &word[..word.char_indices().nth(2).map_or(word.len(), |(i, _)| i)];
    match rng.below(16) {
        0..=4 => scalar(rng),
        5 => json!({ "prefix": cut }),
        6 => json!({ "prefix": { "equals-ignore-case": cut.to_uppercase() } }),
        7 => json!({ "suffix": word.chars().last().map(String::from).unwrap_or_default() }),
        8 => json!({ "equals-ignore-case": word.to_uppercase() }),
        9 => json!({ "wildcard": format!("{cut}*") }),
        10 => match rng.below(4) {
            0 => json!({ "anything-but": word }),
            1 => json!({ "anything-but": [rng.pick(WORDS), rng.pick(WORDS)] }),
            2 => json!({ "anything-but": rng.below(6) }),
            _ => json!({ "anything-but": { "prefix": rng.pick(&["al", "prod-", "t"]) } }),
        },
        11 => json!({ "numeric": [rng.pick(&[">", ">=", "<", "<=", "="]), rng.below(6)] }),
        12 => json!({ "numeric": [">", 0, "<=", 4] }),
        13 => json!({ "exists": rng.chance(60) }),
        14 => {
            json!({ "cidr": rng.pick(&["10.0.0.0/24", "10.0.0.0/8", "192.168.0.0/16", "2001:db8::/32", "10.0.1.7"]) })
        }
        _ => json!(rng.pick(WORDS)),
    }
}

/// A pattern object `depth` levels from the leaves, maybe with `$or`.
fn pattern_object(rng: &mut Lcg, depth: usize) -> Value {
    let mut map = Map::new();
    for _ in 0..1 + rng.below(3) {
        let key = rng.pick(KEYS);
        let value = if depth > 0 && rng.chance(35) {
            pattern_object(rng, depth - 1)
        } else {
            // Long lists exceed the expansion bound; one value per list is the common case.
            let n = if rng.chance(10) {
                17 + rng.below(5)
            } else {
                1 + rng.below(3)
            };
            Value::Array((0..n).map(|_| matcher(rng)).collect())
        };
        map.insert(key.to_string(), value);
    }
    if depth > 0 && rng.chance(15) {
        let branches = (0..2 + rng.below(2)).map(|_| pattern_object(rng, depth - 1));
        map.insert("$or".to_string(), Value::Array(branches.collect()));
    }
    Value::Object(map)
}

/// An event with scalars, arrays of scalars, nested arrays, arrays of objects, objects where a
/// leaf is expected and missing fields.
fn event(rng: &mut Lcg, depth: usize) -> Value {
    let mut map = Map::new();
    for key in KEYS {
        if rng.chance(25) {
            continue;
        }
        let value = match rng.below(10) {
            0..=3 => scalar(rng),
            4 => Value::Array((0..rng.below(4)).map(|_| scalar(rng)).collect()),
            5 => json!([[scalar(rng)], scalar(rng)]),
            6 | 7 if depth > 0 => event(rng, depth - 1),
            8 if depth > 0 => Value::Array(
                (0..1 + rng.below(3))
                    .map(|_| event(rng, depth - 1))
                    .collect(),
            ),
            _ => scalar(rng),
        };
        map.insert(key.to_string(), value);
    }
    Value::Object(map)
}

/// The set's answer for each event equals evaluating every pattern on its own.
fn assert_agrees(patterns: &[Value], events: &[Value]) -> usize {
    let mut set = PatternSet::new();
    let mut compiled = Vec::new();
    for (id, p) in patterns.iter().enumerate() {
        // Random patterns may be invalid (e.g. a numeric range that is empty): skip those.
        if let Ok(c) = compile(p) {
            set.add(id, p).expect("compiles as above");
            compiled.push((id, c));
        }
    }
    let mut matched = 0;
    for e in events {
        let want: Vec<usize> = compiled
            .iter()
            .filter(|(_, p)| p.matches(e))
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(set.matches(e), want, "event {e}");
        matched += want.len();
    }
    matched
}

#[test]
fn random_sets_agree_with_per_pattern_evaluation() {
    let mut matched = 0;
    for seed in 0..40u64 {
        let mut rng = Lcg(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) + 1);
        let patterns: Vec<Value> = (0..150).map(|_| pattern_object(&mut rng, 2)).collect();
        let events: Vec<Value> = (0..150).map(|_| event(&mut rng, 2)).collect();
        matched += assert_agrees(&patterns, &events);
    }
    // The vocabulary is small enough that the comparison is not vacuous.
    assert!(matched > 5_000, "only {matched} matches");
}

#[test]
fn wide_nodes_and_capped_expansion_agree() {
    // Hundreds of patterns under one value (a wide trie node), leaves with more values than
    // the expansion bound, and a value shared by every pattern.
    let mut rng = Lcg(7);
    let mut patterns = Vec::new();
    for i in 0..600 {
        let many: Vec<Value> = (0..20)
            .map(|k| json!(format!("v{}", (i + k) % 40)))
            .collect();
        patterns.push(json!({
            "a": ["alpha"],
            "b": [format!("v{}", i % 40)],
            "c": many,
            "d": [matcher(&mut rng)]
        }));
    }
    let events: Vec<Value> = (0..300)
        .map(|j| {
            json!({
                "a": "alpha",
                "b": [format!("v{}", j % 40), format!("v{}", (j * 7) % 40)],
                "c": format!("v{}", (j * 3) % 40),
                "d": scalar(&mut rng)
            })
        })
        .collect();
    assert!(assert_agrees(&patterns, &events) > 100);
}

#[test]
fn index_visits_few_entries_as_sets_grow() {
    // 10,000 patterns, each naming an account and a finding type; an event matching exactly
    // one of them must not make the index hand thousands of entries to verification.
    let mut set = PatternSet::new();
    for i in 0..10_000usize {
        set.add(
            i,
            &json!({
                "source": ["aws.guardduty"],
                "account": [format!("{:012}", i % 500), format!("{:012}", (i * 7) % 500)],
                "detail": {
                    "type": [format!("Type{}", i % 40)],
                    "severity": [{ "numeric": [">=", (i % 9) as f64] }],
                    "resource": { "resourceType": ["Instance"] }
                },
                "region": [{ "anything-but": "us-gov-west-1" }]
            }),
        )
        .expect("compiles");
    }
    let event = json!({
        "source": "aws.guardduty", "account": "000000000003", "region": "us-east-1",
        "detail": { "type": "Type3", "severity": 8, "resource": { "resourceType": "Instance" } }
    });
    let want: Vec<usize> = (0..10_000usize)
        .filter(|i| (i % 500 == 3 || (i * 7) % 500 == 3) && i % 40 == 3 && (i % 9) as f64 <= 8.0)
        .collect();
    assert_eq!(set.matches(&event), want);
    assert!(set.candidate_count(&event) <= want.len() + 5);
}
