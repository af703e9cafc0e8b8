//! The match-time index of a [`PatternSet`](super::PatternSet): a trie over each entry's
//! necessary conditions, so that the work per event follows how many entries nearly match it,
//! not how many there are.
//!
//! Each leaf of the set (one distinct event path and leaf) is read as the necessary condition
//! "some scalar at this path satisfies the leaf" (arrays flattened at every step, as
//! evaluation does). Every leaf is one, except leaves with `exists: false`, which can hold on a
//! missing field. A leaf made only of exact values, prefixes and CIDR blocks is the OR of its
//! *value atoms*, one per value, each with an id shared by every leaf that names it. Each entry
//! (one `$or`-free alternative) is filed in a trie under its conditions in one global order:
//! looked-up leaves first, those accepting the smallest share of their path's values first;
//! then other selective operators (numeric, suffix, wildcard...); last `anything-but` and
//! `exists: true`, which nearly every event satisfies. The first looked-up leaves are expanded
//! into their values (an entry is filed once per combination, a few at most), later ones are
//! tested as the OR of their values.
//!
//! Per event, one walk along the indexed paths looks each scalar up in its path's dictionary,
//! which yields every value atom the event satisfies: as many as the event has scalars at
//! indexed paths (a few more for prefixes and CIDR blocks), however large the set. The trie walk
//! follows only edges whose conditions hold; at a node with many value edges it looks up the
//! satisfied values instead of testing each edge, so an entry that fails on an exact value or
//! prefix costs at most one bit test, wherever that condition sits. The entries at the
//! nodes reached are the candidates, which `PatternSet` verifies with full semantics (array
//! consistency, `exists: false`). So the index can never add a match, and it cannot lose one
//! because every condition it files is necessary.

use serde_json::Value;

use super::compile::{Kind, Node};
use super::leaf::{Leaf, Matcher};
use super::paths::{bit, set, Found, Paths};
use super::trie::{Builder, Trie};

/// Most trie paths one entry is filed under when its leaves are expanded into their values.
const MAX_EXPANSION: usize = 16;

/// How a leaf is decided for an event; also the order conditions are filed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    /// Only exact values, case-sensitive prefixes and CIDR blocks: the OR of value atoms.
    Lookup,
    /// Other operators most values fail (numeric, suffix, wildcard...): evaluated.
    Selective,
    /// Only `anything-but` and `exists: true`, which most events satisfy: evaluated, last.
    Weak,
}

/// How the index decides one atom id. Ids below the number of leaves are leaves (by memo id),
/// the rest value atoms.
#[derive(Debug, Clone, Copy)]
enum Atom {
    /// Not a necessary condition (`exists: false`), or a value atom.
    Unfiled,
    /// A looked-up leaf: the OR of `values[first..first + len]`.
    Values { first: u32, len: u32 },
    /// An evaluated leaf: `tests[test]` on the scalars at path `path`.
    Evaluated { path: u32, test: u32 },
}

/// The built index; see the module comment.
#[derive(Debug, Default)]
pub(super) struct Index {
    paths: Paths,
    /// By leaf id (the set's memo id).
    atoms: Vec<Atom>,
    /// The value atoms of looked-up leaves, contiguous.
    values: Vec<u32>,
    /// Leaves of the atoms that are evaluated.
    tests: Vec<Leaf>,
    trie: Trie,
    /// Entries without conditions: candidates for every event.
    always: Vec<u32>,
    /// Number of atom ids (leaves and value atoms).
    ids: u32,
}

/// What one event satisfies, filled in as the trie walk asks.
struct Scan<'e> {
    found: Found<'e>,
    /// Bit per atom id: decided already (leaves only; the result is then in `found.bits`).
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
        let mut rank = index.file_leaves(leaves);
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
                continue;
            }
            atoms.sort_unstable_by_key(|&a| (rank[a as usize], a));
            for path in index.expand(&atoms) {
                trie.insert(&path, entry as u32);
            }
        }
        let first_value = leaves.len() as u32;
        index.trie = trie.finish(index.ids as usize, |a| a >= first_value);
        index
    }

    /// Files every leaf under its path (looked-up leaves as their value atoms, numbered after
    /// the leaves) and returns each leaf's filing rank: its class, then the share of its path's
    /// values it accepts (the least likely to hold first); the caller adds how many entries
    /// use it (rarest first).
    fn file_leaves(&mut self, leaves: &[(Vec<String>, Leaf)]) -> Vec<(Class, u32, u32)> {
        let mut next = leaves.len() as u32;
        let mut rank: Vec<(Class, u32, u32)> = Vec::with_capacity(leaves.len());
        for (path, leaf) in leaves {
            let class = class_of(leaf);
            let atom = match class {
                None => Atom::Unfiled,
                Some(Class::Lookup) => {
                    let values = self.paths.value_atoms(path, leaf, &mut next);
                    let first = self.values.len() as u32;
                    self.values.extend(&values);
                    Atom::Values {
                        first,
                        len: values.len() as u32,
                    }
                }
                Some(_) => {
                    self.tests.push(leaf.clone());
                    Atom::Evaluated {
                        path: self.paths.file_evaluated(path),
                        test: self.tests.len() as u32 - 1,
                    }
                }
            };
            self.atoms.push(atom);
            rank.push((class.unwrap_or(Class::Weak), 0, 0));
        }
        self.ids = next;
        let shares = self.paths.shares(leaves, |i| {
            rank.get(i).is_some_and(|r| r.0 == Class::Lookup)
        });
        for (r, share) in rank.iter_mut().zip(shares) {
            r.1 = share;
        }
        rank
    }

    /// The trie paths of an entry with conditions `atoms` (in filing order): looked-up leaves
    /// replaced by each of their values while the number of paths stays within
    /// [`MAX_EXPANSION`].
    fn expand(&self, atoms: &[u32]) -> Vec<Vec<u32>> {
        let mut paths: Vec<Vec<u32>> = vec![Vec::with_capacity(atoms.len())];
        for &a in atoms {
            let values = match self.atoms.get(a as usize) {
                Some(&Atom::Values { first, len }) => {
                    &self.values[first as usize..(first + len) as usize]
                }
                _ => &[][..],
            };
            if !values.is_empty() && paths.len() * values.len() <= MAX_EXPANSION {
                paths = paths
                    .iter()
                    .flat_map(|p| {
                        values.iter().map(move |&v| {
                            let mut p = p.clone();
                            p.push(v);
                            p
                        })
                    })
                    .collect();
            } else {
                paths.iter_mut().for_each(|p| p.push(a));
            }
        }
        paths
    }

    /// Appends to `out` the entries that may match `event`: every entry that does, and the few
    /// whose conditions all hold one by one but not together. An entry may appear more than
    /// once.
    pub(super) fn candidates(&self, event: &Value, out: &mut Vec<u32>) {
        let words = (self.ids as usize).div_ceil(64);
        let mut scan = Scan {
            found: Found {
                atoms: Vec::with_capacity(32),
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

    /// Whether atom `atom` holds for the scanned event, deciding a leaf on first use.
    #[inline]
    fn holds(&self, scan: &mut Scan, atom: u32) -> bool {
        if bit(&scan.found.bits, atom) {
            return true;
        }
        // Value atoms (ids past the leaves) were all found by the walk.
        if atom as usize >= self.atoms.len() || bit(&scan.known, atom) {
            return false;
        }
        self.decide(scan, atom)
    }

    /// Decides leaf `atom` (not decided yet) and remembers the result.
    #[inline(never)]
    fn decide(&self, scan: &mut Scan, atom: u32) -> bool {
        let hit = match self.atoms.get(atom as usize) {
            None | Some(Atom::Unfiled) => return false,
            Some(&Atom::Values { first, len }) => self.values
                [first as usize..(first + len) as usize]
                .iter()
                .any(|&v| bit(&scan.found.bits, v)),
            Some(&Atom::Evaluated { path, test }) => {
                let Some(leaf) = self.tests.get(test as usize) else {
                    return false;
                };
                let scalars = &scan.found.scalars;
                let start = scalars.partition_point(|(p, _)| *p < path);
                scalars[start..]
                    .iter()
                    .take_while(|(p, _)| *p == path)
                    .any(|(_, v)| holds_on(leaf, v))
            }
        };
        set(&mut scan.known, atom);
        if hit {
            set(&mut scan.found.bits, atom);
        }
        hit
    }
}

/// The class of `leaf` as a condition, or `None` when it is not a necessary one.
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

/// Whether one scalar satisfies `leaf` as a condition: some matcher accepts it, or the leaf
/// only asks that the field exist.
fn holds_on(leaf: &Leaf, v: &Value) -> bool {
    leaf.matchers
        .iter()
        .any(|m| matches!(m, Matcher::Exists(true)) || m.matches_scalar(v))
}

/// The filed leaves of `node` (memo ids already assigned).
fn collect_atoms(node: &Node, atoms: &[Atom], out: &mut Vec<u32>) {
    for f in &node.fields {
        match &f.kind {
            Kind::Leaf(leaf) => {
                if let Some(id) = leaf.memo_id {
                    if !matches!(atoms.get(id as usize), None | Some(Atom::Unfiled)) {
                        out.push(id);
                    }
                }
            }
            Kind::Object(child) => collect_atoms(child, atoms, out),
        }
    }
}
