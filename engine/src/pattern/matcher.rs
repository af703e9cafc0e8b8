//! [`PatternSet`]: many patterns behind one index, so matching an event against 10,000
//! playbooks costs about what matching a few does.
//!
//! Every `$or`-free alternative of every pattern becomes an entry. Leaves are interned by
//! (event path, leaf) into ids shared by all entries: the index (`index`) files entries under
//! them, and verification caches each leaf's result per event under its id. The index is built
//! on the first match after the last `add` (filing needs the final frequencies of all leaves).
//! It is a pre-filter only: every candidate is verified with the exact semantics of
//! [`Pattern::matches`], so it can never add or lose a match.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use super::compile::{compile, Memo, Node, Pattern};
use super::index::Index;
use super::leaf::Leaf;
use super::{Condition, PatternError};

/// A set of compiled patterns, each filed under a caller-chosen id, matched all at once.
#[derive(Debug, Default)]
pub struct PatternSet {
    /// Every added pattern with its id, for `explain` and `len`.
    patterns: Vec<(usize, Pattern)>,
    /// One entry per `$or`-free alternative.
    entries: Vec<Entry>,
    /// Event path and leaf of each distinct (event path, leaf json) pair, by id.
    leaves: Vec<(Vec<String>, Leaf)>,
    /// Id of each distinct (event path, leaf json) pair.
    leaf_ids: HashMap<(Vec<String>, String), u32>,
    /// Built on first use after the last `add`.
    index: OnceLock<Index>,
}

#[derive(Debug)]
struct Entry {
    id: usize,
    node: Node,
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
        self.index = OnceLock::new();
        for node in &compiled.alternatives {
            let mut node = node.clone();
            let (leaf_ids, leaves) = (&mut self.leaf_ids, &mut self.leaves);
            node.assign_memo_ids(&mut Vec::new(), &mut |path, leaf| {
                let next = leaves.len() as u32;
                *leaf_ids
                    .entry((path.to_vec(), leaf.expected.clone()))
                    .or_insert_with(|| {
                        leaves.push((path.to_vec(), leaf.clone()));
                        next
                    })
            });
            self.entries.push(Entry { id, node });
        }
        self.patterns.push((id, compiled));
        Ok(())
    }

    /// The sorted, deduplicated ids whose patterns match `event`.
    pub fn matches(&self, event: &Value) -> Vec<usize> {
        let mut candidates: Vec<u32> = Vec::with_capacity(16);
        self.index().candidates(event, &mut candidates);
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

    /// How many entries the index hands to verification for `event` (for tests of the
    /// index's selectivity).
    #[cfg(test)]
    pub(crate) fn candidate_count(&self, event: &Value) -> usize {
        let mut candidates: Vec<u32> = Vec::new();
        self.index().candidates(event, &mut candidates);
        candidates.sort_unstable();
        candidates.dedup();
        candidates.len()
    }

    fn index(&self) -> &Index {
        self.index
            .get_or_init(|| Index::build(self.entries.iter().map(|e| &e.node), &self.leaves))
    }

    /// Each leaf condition of `id`'s pattern(s) and whether it held for `event`; empty when
    /// the id is unknown.
    pub fn explain(&self, id: usize, event: &Value) -> Vec<Condition> {
        let mut out: Vec<Condition> = Vec::new();
        // An id added twice: its patterns' alternatives are numbered on from the first's.
        let mut first = 0;
        for (_, p) in self.patterns.iter().filter(|(pid, _)| *pid == id) {
            out.extend(p.explain(event).into_iter().map(|c| Condition {
                branch: first + c.branch,
                ..c
            }));
            first += p.alternatives();
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
}

#[cfg(test)]
#[path = "matcher_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "index_tests.rs"]
mod index_tests;
