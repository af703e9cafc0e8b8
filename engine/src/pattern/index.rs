//! The match-time index of a [`PatternSet`](super::PatternSet): a trie over each entry's
//! necessary conditions, so that the work per event follows how many entries nearly match it,
//! not how many there are.
//!
//! An *atom* is one distinct (event path, leaf) of the set, read as the necessary condition
//! "some scalar at this path satisfies the leaf" (arrays flattened at every step, as
//! evaluation does). Every leaf is one, except leaves with `exists: false`, which can hold on a
//! missing field. Each entry (one `$or`-free alternative) is filed in a trie under all of its
//! atoms in one global order: exact/prefix atoms first, rarest first; then other selective
//! operators (numeric, cidr, suffix, wildcard...); last `anything-but` and `exists: true`,
//! which nearly every event satisfies.
//!
//! Per event, one walk along the indexed paths looks each scalar up in its path's dictionary
//! (exact values and prefixes), which yields every exact/prefix atom the event satisfies;
//! other atoms are evaluated when the trie walk first needs them. The trie walk follows only
//! edges whose atom holds, and the entries at the nodes it reaches are the candidates, which
//! `PatternSet` verifies with full semantics (array consistency, `exists: false`). So the index
//! can never add a match, and it cannot lose one because every atom is necessary.
//!
//! Why rarest first: an entry is reached only through its rarest exact condition (an account
//! list, a finding type), and a condition that fails stops the walk for every entry that shares
//! the conditions before it. A common value such as `resourceType: Instance` or a region costs
//! one trie edge, not a scan of the thousands of entries that mention it.

use serde_json::Value;

use super::compile::{Kind, Node};
use super::leaf::{Leaf, Matcher};
use super::paths::{bit, set, Found, Paths};
use super::trie::{Builder, Trie};

/// How an atom is decided for an event; also the order atoms are filed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    /// Only exact values, case-sensitive prefixes and CIDR blocks: found by dictionary
    /// lookups.
    Lookup,
    /// Other operators most values fail (numeric, suffix, wildcard...): evaluated.
    Selective,
    /// Only `anything-but` and `exists: true`, which most events satisfy: evaluated, last.
    Weak,
}

/// What the index knows of one atom.
#[derive(Debug, Clone, Copy)]
struct Atom {
    class: Class,
    /// Id of the atom's event path.
    path: u32,
    /// Position of the leaf in [`Index::tests`], for evaluated atoms.
    test: u32,
}

/// The built index; see the module comment.
#[derive(Debug, Default)]
pub(super) struct Index {
    paths: Paths,
    /// By leaf id (the set's memo id); `None` for leaves that are not atoms.
    atoms: Vec<Option<Atom>>,
    /// Bit per atom id: looked up (so it holds exactly when the walk found it).
    looked_up: Vec<u64>,
    /// Leaves of the atoms that are evaluated rather than looked up.
    tests: Vec<Leaf>,
    trie: Trie,
    /// Entries without atoms: candidates for every event.
    always: Vec<u32>,
}

/// What one event satisfies, filled in as the trie walk asks.
struct Scan<'e> {
    found: Found<'e>,
    /// Bit per atom: evaluated already (its result is then in `found.bits`).
    known: Vec<u64>,
}

impl Index {
    /// Builds the index of `entries` (in entry order), whose leaves carry memo ids into
    /// `leaves` (event path and leaf by id).
    pub(super) fn build<'a>(
        entries: impl Iterator<Item = &'a Node>,
        leaves: &[(Vec<String>, Leaf)],
    ) -> Index {
        let mut index = Index::default();
        for (id, (path, leaf)) in leaves.iter().enumerate() {
            let atom = class_of(leaf).map(|class| match class {
                Class::Lookup => Atom {
                    class,
                    path: index.paths.file_lookup(path, leaf, id as u32),
                    test: 0,
                },
                _ => {
                    index.tests.push(leaf.clone());
                    Atom {
                        class,
                        path: index.paths.file_evaluated(path),
                        test: index.tests.len() as u32 - 1,
                    }
                }
            });
            index.atoms.push(atom);
        }
        index.looked_up = vec![0; leaves.len().div_ceil(64)];
        for (id, atom) in index.atoms.iter().enumerate() {
            if atom.is_some_and(|a| a.class == Class::Lookup) {
                set(&mut index.looked_up, id as u32);
            }
        }
        // Filing order: class, then the share of its path's values a looked-up atom accepts
        // (the least likely to hold first), then how many entries use it (rarest first).
        let mut rank: Vec<(Class, u32, u32)> = leaves
            .iter()
            .zip(&index.atoms)
            .map(|((path, leaf), atom)| match atom {
                Some(a) if a.class == Class::Lookup => (a.class, index.paths.share(path, leaf), 0),
                Some(a) => (a.class, 0, 0),
                None => (Class::Weak, 0, 0),
            })
            .collect();
        let per_entry: Vec<Vec<u32>> = entries
            .map(|node| {
                let mut atoms = Vec::new();
                collect_atoms(node, &index.atoms, &mut atoms);
                atoms.sort_unstable();
                atoms.dedup();
                atoms
            })
            .collect();
        for &a in per_entry.iter().flatten() {
            rank[a as usize].2 += 1;
        }
        let mut trie = Builder::default();
        for (entry, mut atoms) in per_entry.into_iter().enumerate() {
            if atoms.is_empty() {
                index.always.push(entry as u32);
            } else {
                atoms.sort_unstable_by_key(|&a| (rank[a as usize], a));
                trie.insert(&atoms, entry as u32);
            }
        }
        let looked_up = &index.looked_up;
        index.trie = trie.finish(index.atoms.len(), |a| bit(looked_up, a));
        index
    }

    /// Appends to `out` the entries that may match `event`: every entry that does, and the few
    /// whose conditions all hold one by one but not together.
    pub(super) fn candidates(&self, event: &Value, out: &mut Vec<u32>) {
        let words = self.atoms.len().div_ceil(64);
        let mut scan = Scan {
            found: Found {
                atoms: Vec::with_capacity(64),
                bits: vec![0; words],
                scalars: Vec::with_capacity(32),
            },
            known: vec![0; words],
        };
        self.paths.walk(event, &mut scan.found);
        out.extend_from_slice(&self.always);
        let found = std::mem::take(&mut scan.found.atoms);
        self.trie
            .walk(&found, &mut |a| self.holds(&mut scan, a), out);
    }

    /// Whether `atom` holds for the scanned event, evaluating it on first use.
    fn holds(&self, scan: &mut Scan, atom: u32) -> bool {
        if bit(&scan.found.bits, atom) {
            return true;
        }
        if bit(&self.looked_up, atom) || bit(&scan.known, atom) {
            return false;
        }
        let Some(Some(info)) = self.atoms.get(atom as usize) else {
            return false;
        };
        set(&mut scan.known, atom);
        let Some(leaf) = self.tests.get(info.test as usize) else {
            return false;
        };
        let scalars = &scan.found.scalars;
        let start = scalars.partition_point(|(p, _)| *p < info.path);
        let hit = scalars[start..]
            .iter()
            .take_while(|(p, _)| *p == info.path)
            .any(|(_, v)| holds_on(leaf, v));
        if hit {
            set(&mut scan.found.bits, atom);
        }
        hit
    }
}

/// The class of `leaf` as an atom, or `None` when it is not a necessary condition.
fn class_of(leaf: &Leaf) -> Option<Class> {
    let ms = &leaf.matchers;
    if ms.iter().any(|m| matches!(m, Matcher::Exists(false))) {
        None
    } else if ms
        .iter()
        .all(|m| matches!(m, Matcher::Exact(_) | Matcher::Prefix(_) | Matcher::Cidr(_)))
    {
        Some(Class::Lookup)
    } else if ms
        .iter()
        .all(|m| matches!(m, Matcher::AnythingBut(_) | Matcher::Exists(true)))
    {
        Some(Class::Weak)
    } else {
        Some(Class::Selective)
    }
}

/// Whether one scalar satisfies `leaf` as an atom: some matcher accepts it, or the leaf only
/// asks that the field exist.
fn holds_on(leaf: &Leaf, v: &Value) -> bool {
    leaf.matchers
        .iter()
        .any(|m| matches!(m, Matcher::Exists(true)) || m.matches_scalar(v))
}

/// The atoms among the leaves of `node` (memo ids already assigned).
fn collect_atoms(node: &Node, atoms: &[Option<Atom>], out: &mut Vec<u32>) {
    for f in &node.fields {
        match &f.kind {
            Kind::Leaf(leaf) => {
                if let Some(id) = leaf.memo_id {
                    if atoms.get(id as usize).is_some_and(Option::is_some) {
                        out.push(id);
                    }
                }
            }
            Kind::Object(child) => collect_atoms(child, atoms, out),
        }
    }
}
