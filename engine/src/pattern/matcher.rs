//! [`PatternSet`]: many patterns behind one add-time index, so matching an event against
//! 1,000 playbooks costs about what matching one does.
//!
//! Every `$or`-free alternative of every pattern becomes an entry. For each entry we pick one
//! necessary condition: a leaf made only of exact values and/or case-sensitive prefixes, on the
//! most selective path available (envelope fields such as `source` last). The entry is filed
//! under each of that leaf's values in a trie of event paths. At match time we walk the event
//! once along the trie, look each value found at an indexed path up in its path's hash maps,
//! and fully verify only the entries found (plus the few entries with no indexable leaf).
//! The index is a pre-filter only: every candidate is verified with the exact semantics of
//! [`Pattern::matches`], so it can never add or lose a match.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde_json::Value;

use super::compile::{compile, Kind, Memo, Node, Pattern};
use super::leaf::{any_scalar, Exact, Matcher};
use super::{Condition, PatternError};

/// Top-level envelope fields that nearly every pattern repeats: poor index keys.
const GENERIC_PATHS: &[&str] = &["source", "detail-type", "version", "region"];

/// A set of compiled patterns, each filed under a caller-chosen id, matched all at once.
#[derive(Debug, Default)]
pub struct PatternSet {
    /// Every added pattern with its id, for `explain` and `len`.
    patterns: Vec<(usize, Pattern)>,
    /// One entry per `$or`-free alternative.
    entries: Vec<Entry>,
    /// Event paths with indexed values.
    root: TrieNode,
    /// Entries with no indexable leaf: verified on every event.
    always: Vec<u32>,
    /// Memo id of each distinct (event path, leaf json) pair.
    leaf_ids: HashMap<(Vec<String>, String), u32>,
}

#[derive(Debug)]
struct Entry {
    id: usize,
    node: Node,
}

/// One step of an indexed event path.
#[derive(Debug, Default)]
struct TrieNode {
    children: Vec<(String, TrieNode)>,
    values: Option<Box<ValueIndex>>,
}

/// The entries filed under the values of one event path.
#[derive(Debug, Default)]
struct ValueIndex {
    strings: FxMap<String, Vec<u32>>,
    numbers: FxMap<u64, Vec<u32>>,
    trues: Vec<u32>,
    falses: Vec<u32>,
    nulls: Vec<u32>,
    prefixes: FxMap<String, Vec<u32>>,
    /// Distinct prefix lengths in `prefixes`, so a lookup tries each length once.
    prefix_lens: Vec<usize>,
}

/// An index key of one entry.
enum Key<'a> {
    Exact(&'a Exact),
    Prefix(&'a str),
}

/// A leaf an entry could be filed under.
struct Candidate<'a> {
    path: Vec<&'a str>,
    keys: Vec<Key<'a>>,
}

impl PatternSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Compile `pattern` and add it under `id`. One id may be added several times; it then
    /// matches when any of its patterns does. On error nothing is added.
    pub fn add(&mut self, id: usize, pattern: &Value) -> Result<(), PatternError> {
        let compiled = compile(pattern)?;
        if self.entries.len() + compiled.alternatives.len() > u32::MAX as usize {
            return Err(PatternError::new(
                "",
                "too many patterns in one set (more than 4 billion alternatives)",
            ));
        }
        for node in &compiled.alternatives {
            let entry = self.entries.len() as u32;
            let mut node = node.clone();
            let leaf_ids = &mut self.leaf_ids;
            node.assign_memo_ids(&mut Vec::new(), &mut |path, expected| {
                let next = leaf_ids.len() as u32;
                *leaf_ids
                    .entry((path.to_vec(), expected.to_string()))
                    .or_insert(next)
            });
            self.index(entry, &node);
            self.entries.push(Entry { id, node });
        }
        self.patterns.push((id, compiled));
        Ok(())
    }

    /// The sorted, deduplicated ids whose patterns match `event`.
    pub fn matches(&self, event: &Value) -> Vec<usize> {
        let mut candidates: Vec<u32> = Vec::new();
        self.root.walk(event, &mut candidates);
        candidates.extend_from_slice(&self.always);
        candidates.sort_unstable();
        candidates.dedup();
        let mut ids: Vec<usize> = Vec::new();
        let mut memo: Memo = Vec::new();
        for c in candidates {
            let Some(entry) = self.entries.get(c as usize) else {
                continue;
            };
            if !ids.contains(&entry.id) && entry.node.matches_memo(event, &mut memo) {
                ids.push(entry.id);
            }
        }
        ids.sort_unstable();
        ids
    }

    /// Each leaf condition of `id`'s pattern(s) and whether it held for `event`; empty when
    /// the id is unknown.
    pub fn explain(&self, id: usize, event: &Value) -> Vec<Condition> {
        let mut out: Vec<Condition> = Vec::new();
        for (_, p) in self.patterns.iter().filter(|(pid, _)| *pid == id) {
            for c in p.explain(event) {
                if !out.contains(&c) {
                    out.push(c);
                }
            }
        }
        out
    }

    /// Number of patterns added (an id added twice counts twice).
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Whether no pattern was added.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// File entry `entry` under its best index key, or on the always-check list.
    fn index(&mut self, entry: u32, node: &Node) {
        let mut candidates = Vec::new();
        collect_candidates(node, &mut Vec::new(), &mut candidates);
        let best = candidates.into_iter().min_by_key(|c| {
            let generic = c.path.len() == 1 && GENERIC_PATHS.contains(&c.path[0]);
            let has_prefix = c.keys.iter().any(|k| matches!(k, Key::Prefix(_)));
            let load = self.root.load(&c.path, &c.keys);
            // Load before the key count: otherwise every pattern with a one-value leaf such as
            // `resourceType: [Instance]` is filed under that one busy key, and an EC2 event
            // verifies a quarter of all patterns (benches/ingest.rs: 258 of 1,002 entries).
            (
                generic,
                load,
                has_prefix,
                c.keys.len(),
                std::cmp::Reverse(c.path.len()),
            )
        });
        let Some(best) = best else {
            self.always.push(entry);
            return;
        };
        let values = self.root.values_mut(&best.path);
        for key in best.keys {
            let bucket = match key {
                Key::Exact(Exact::Str(s)) => values.strings.entry(s.clone()).or_default(),
                Key::Exact(Exact::Num(x)) => values.numbers.entry(num_key(*x)).or_default(),
                Key::Exact(Exact::Bool(true)) => &mut values.trues,
                Key::Exact(Exact::Bool(false)) => &mut values.falses,
                Key::Exact(Exact::Null) => &mut values.nulls,
                Key::Prefix(p) => {
                    if !values.prefix_lens.contains(&p.len()) {
                        values.prefix_lens.push(p.len());
                        values.prefix_lens.sort_unstable();
                    }
                    values.prefixes.entry(p.to_string()).or_default()
                }
            };
            if bucket.last() != Some(&entry) {
                bucket.push(entry);
            }
        }
    }
}

/// Leaves of `node` that are necessary conditions and indexable (only exact values and
/// case-sensitive prefixes). Leaves that can match a missing field never qualify.
fn collect_candidates<'a>(node: &'a Node, path: &mut Vec<&'a str>, out: &mut Vec<Candidate<'a>>) {
    for f in &node.fields {
        path.push(&f.key);
        match &f.kind {
            Kind::Leaf(leaf) => {
                let keys: Option<Vec<Key>> = leaf
                    .matchers
                    .iter()
                    .map(|m| match m {
                        Matcher::Exact(e) => Some(Key::Exact(e)),
                        Matcher::Prefix(p) => Some(Key::Prefix(p)),
                        _ => None,
                    })
                    .collect();
                if let Some(keys) = keys {
                    out.push(Candidate {
                        path: path.clone(),
                        keys,
                    });
                }
            }
            Kind::Object(child) => collect_candidates(child, path, out),
        }
        path.pop();
    }
}

/// Numbers are keyed by their f64 bits, with -0.0 folded into 0.0 so `[0]` finds `-0`.
fn num_key(x: f64) -> u64 {
    if x == 0.0 {
        0.0f64.to_bits()
    } else {
        x.to_bits()
    }
}

impl TrieNode {
    fn values_mut(&mut self, path: &[&str]) -> &mut ValueIndex {
        let mut node = self;
        for step in path {
            let pos = match node.children.iter().position(|(k, _)| k == step) {
                Some(pos) => pos,
                None => {
                    node.children.push((step.to_string(), TrieNode::default()));
                    node.children.len() - 1
                }
            };
            node = &mut node.children[pos].1;
        }
        node.values.get_or_insert_with(Box::default)
    }

    /// How many entries are already filed under these keys of `path` (0 if none).
    fn load(&self, path: &[&str], keys: &[Key]) -> usize {
        let mut node = self;
        for step in path {
            match node.children.iter().find(|(k, _)| k == step) {
                Some((_, child)) => node = child,
                None => return 0,
            }
        }
        let Some(values) = &node.values else {
            return 0;
        };
        keys.iter()
            .map(|k| match k {
                Key::Exact(Exact::Str(s)) => values.strings.get(s.as_str()).map_or(0, Vec::len),
                Key::Exact(Exact::Num(x)) => values.numbers.get(&num_key(*x)).map_or(0, Vec::len),
                Key::Exact(Exact::Bool(true)) => values.trues.len(),
                Key::Exact(Exact::Bool(false)) => values.falses.len(),
                Key::Exact(Exact::Null) => values.nulls.len(),
                Key::Prefix(p) => values.prefixes.get(*p).map_or(0, Vec::len),
            })
            .sum()
    }

    /// Collect the entries filed under the values found along this node's paths in `event`
    /// (the value at this node's own path). Arrays are flattened at every step.
    fn walk(&self, event: &Value, out: &mut Vec<u32>) {
        if let Some(values) = &self.values {
            any_scalar(event, &mut |v| {
                values.lookup(v, out);
                false
            });
        }
        if self.children.is_empty() {
            return;
        }
        match event {
            Value::Object(map) => {
                for (key, child) in &self.children {
                    if let Some(v) = map.get(key) {
                        child.walk(v, out);
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    if item.is_object() || item.is_array() {
                        self.walk_children(item, out);
                    }
                }
            }
            _ => {}
        }
    }

    /// Like `walk`, minus this node's own values (already looked up for the whole array).
    fn walk_children(&self, event: &Value, out: &mut Vec<u32>) {
        match event {
            Value::Object(map) => {
                for (key, child) in &self.children {
                    if let Some(v) = map.get(key) {
                        child.walk(v, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| self.walk_children(i, out)),
            _ => {}
        }
    }
}

impl ValueIndex {
    fn lookup(&self, v: &Value, out: &mut Vec<u32>) {
        let found = match v {
            Value::String(s) => {
                for &len in &self.prefix_lens {
                    if len > s.len() {
                        break;
                    }
                    if let Some(hit) = s.get(..len).and_then(|p| self.prefixes.get(p)) {
                        out.extend_from_slice(hit);
                    }
                }
                self.strings.get(s.as_str())
            }
            Value::Number(n) => n.as_f64().and_then(|x| self.numbers.get(&num_key(x))),
            Value::Bool(true) => Some(&self.trues),
            Value::Bool(false) => Some(&self.falses),
            Value::Null => Some(&self.nulls),
            _ => None,
        };
        if let Some(hit) = found {
            out.extend_from_slice(hit);
        }
    }
}

/// Maps keyed with [`FxHasher`]: keys are pattern values we chose, not attacker input, and
/// SipHash would dominate a lookup that is otherwise a few nanoseconds.
type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// The Fx hash (rustc's): a multiply-rotate per word. Not DoS-resistant; see [`FxMap`].
#[derive(Default)]
struct FxHasher {
    hash: u64,
}

impl FxHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
#[path = "matcher_tests.rs"]
mod tests;
