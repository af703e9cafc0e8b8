//! The event paths the index's atoms test, and for each path a dictionary of the exact values,
//! prefixes and CIDR blocks its leaves accept, each a *value atom* with its own id. One walk of
//! an event along these paths finds every value atom it satisfies, and keeps the scalars that
//! evaluated atoms test.

use std::net::IpAddr;

use serde_json::Value;

use super::cidr::Cidr;
use super::fxhash::FxMap;
use super::leaf::{Exact, Leaf, Matcher};

/// The indexed event paths, as a trie of keys.
#[derive(Debug, Default)]
pub(super) struct Paths {
    root: PathNode,
    count: u32,
}

#[derive(Debug, Default)]
struct PathNode {
    children: Vec<(String, PathNode)>,
    /// Set when atoms test this path.
    id: Option<u32>,
    /// The value atoms of this path.
    dictionary: Option<Box<Dictionary>>,
    /// Whether evaluated atoms test this path: its scalars are then kept for them.
    keep: bool,
}

/// The value atoms of one path: exact values, prefixes and CIDR blocks, each with its id.
#[derive(Debug, Default)]
struct Dictionary {
    strings: FxMap<String, u32>,
    numbers: FxMap<u64, u32>,
    /// `true`, `false`, `null`.
    flags: [Option<u32>; 3],
    prefixes: FxMap<String, u32>,
    /// Distinct prefix lengths in `prefixes`, ascending, so a lookup tries each length once.
    prefix_lens: Vec<usize>,
    /// CIDR blocks by (IPv6?, mask, network): an address is looked up once per distinct mask.
    blocks: FxMap<(bool, u128, u128), u32>,
    /// Distinct (IPv6?, mask) pairs in `blocks`.
    masks: Vec<(bool, u128)>,
}

/// What one walk found in an event.
#[derive(Debug, Default)]
pub(super) struct Found<'e> {
    /// Value atoms satisfied, in the order found.
    pub(super) atoms: Vec<u32>,
    /// Bit per atom id, set for the atoms in `atoms` (and by the caller for others).
    pub(super) bits: Vec<u64>,
    /// (path id, scalar) for the paths evaluated atoms test, sorted by path id.
    pub(super) scalars: Vec<(u32, &'e Value)>,
}

impl Paths {
    /// The value atoms of `leaf` (exact values, prefixes and CIDR blocks only) at `path`,
    /// new ones numbered from `*next` on.
    pub(super) fn value_atoms(&mut self, path: &[String], leaf: &Leaf, next: &mut u32) -> Vec<u32> {
        self.id(path);
        let dictionary = self
            .root
            .node_mut(path)
            .dictionary
            .get_or_insert_with(Box::default);
        let mut ids: Vec<u32> = leaf
            .matchers
            .iter()
            .filter_map(|m| dictionary.atom(m, next))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Notes that an evaluated atom tests `path`; returns the path's id.
    pub(super) fn file_evaluated(&mut self, path: &[String]) -> u32 {
        let id = self.id(path);
        self.root.node_mut(path).keep = true;
        id
    }

    fn id(&mut self, path: &[String]) -> u32 {
        let count = &mut self.count;
        *self.root.node_mut(path).id.get_or_insert_with(|| {
            *count += 1;
            *count - 1
        })
    }

    /// For each leaf that `looked_up` marks, the share, in millionths, of the distinct values
    /// filed at its path that it accepts: how likely an event is to satisfy it, as far as the
    /// rule set can tell (a prefix counts the exact values it covers). 0 for other leaves.
    pub(super) fn shares(
        &self,
        leaves: &[(Vec<String>, Leaf)],
        looked_up: impl Fn(usize) -> bool,
    ) -> Vec<u32> {
        // Each path's exact strings, sorted once, so a prefix's count is two binary searches.
        let mut sorted: FxMap<u32, Vec<&str>> = FxMap::default();
        leaves
            .iter()
            .enumerate()
            .map(|(i, (path, leaf))| {
                let Some(node) = self.root.node(path).filter(|_| looked_up(i)) else {
                    return 0;
                };
                let (Some(id), Some(d)) = (node.id, node.dictionary.as_deref()) else {
                    return 0;
                };
                let strings = sorted.entry(id).or_insert_with(|| {
                    let mut v: Vec<&str> = d.strings.keys().map(String::as_str).collect();
                    v.sort_unstable();
                    v
                });
                d.share(leaf, strings)
            })
            .collect()
    }

    /// Walks `event` along the indexed paths: sets `found.atoms`/`found.bits` for the value
    /// atoms it satisfies and collects `found.scalars`, sorted. `found.bits` must
    /// hold a bit per atom id.
    pub(super) fn walk<'e>(&self, event: &'e Value, found: &mut Found<'e>) {
        self.root.walk(event, found);
        found.scalars.sort_unstable_by_key(|(path, _)| *path);
    }
}

impl PathNode {
    fn node(&self, path: &[String]) -> Option<&PathNode> {
        let mut node = self;
        for step in path {
            node = &node.children.iter().find(|(k, _)| k == step)?.1;
        }
        Some(node)
    }

    fn node_mut(&mut self, path: &[String]) -> &mut PathNode {
        let mut node = self;
        for step in path {
            let pos = match node.children.iter().position(|(k, _)| k == step) {
                Some(pos) => pos,
                None => {
                    node.children.push((step.clone(), PathNode::default()));
                    node.children.len() - 1
                }
            };
            node = &mut node.children[pos].1;
        }
        node
    }

    /// `event` is the value at this node's path. Arrays are flattened at every step, as
    /// evaluation does.
    fn walk<'e>(&self, event: &'e Value, found: &mut Found<'e>) {
        if let Some(id) = self.id {
            for_each_scalar(event, &mut |v| {
                if let Some(d) = &self.dictionary {
                    d.lookup(v, found);
                }
                if self.keep {
                    found.scalars.push((id, v));
                }
            });
        }
        if !self.children.is_empty() {
            self.walk_children(event, found);
        }
    }

    fn walk_children<'e>(&self, event: &'e Value, found: &mut Found<'e>) {
        match event {
            Value::Object(map) => {
                for (key, child) in &self.children {
                    if let Some(v) = map.get(key) {
                        child.walk(v, found);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| self.walk_children(i, found)),
            _ => {}
        }
    }
}

impl Dictionary {
    /// See [`Paths::shares`]; `sorted` holds the keys of `strings`, sorted.
    fn share(&self, leaf: &Leaf, sorted: &[&str]) -> u32 {
        let distinct = self.strings.len()
            + self.numbers.len()
            + self.prefixes.len()
            + self.blocks.len()
            + self.flags.iter().flatten().count();
        let covered: usize = leaf
            .matchers
            .iter()
            .map(|m| match m {
                Matcher::Prefix(p) => {
                    let from = sorted.partition_point(|s| *s < p.as_str());
                    let to = from + sorted[from..].partition_point(|s| s.starts_with(p.as_str()));
                    (to - from).max(1)
                }
                _ => 1,
            })
            .sum();
        (covered.min(distinct) as u64 * 1_000_000 / distinct.max(1) as u64) as u32
    }

    /// The id of the value atom of matcher `m`, new ones numbered from `*next` on; `None` for
    /// matchers that are not value atoms.
    fn atom(&mut self, m: &Matcher, next: &mut u32) -> Option<u32> {
        let new = || {
            *next += 1;
            *next - 1
        };
        Some(match m {
            Matcher::Exact(Exact::Str(s)) => *self.strings.entry(s.clone()).or_insert_with(new),
            Matcher::Exact(Exact::Num(x)) => *self.numbers.entry(num_key(*x)).or_insert_with(new),
            Matcher::Exact(Exact::Bool(true)) => *self.flags[0].get_or_insert_with(new),
            Matcher::Exact(Exact::Bool(false)) => *self.flags[1].get_or_insert_with(new),
            Matcher::Exact(Exact::Null) => *self.flags[2].get_or_insert_with(new),
            Matcher::Prefix(p) => {
                if let Err(at) = self.prefix_lens.binary_search(&p.len()) {
                    self.prefix_lens.insert(at, p.len());
                }
                *self.prefixes.entry(p.clone()).or_insert_with(new)
            }
            Matcher::Cidr(block) => {
                let (v6, mask, net) = match *block {
                    Cidr::V4 { net, mask } => (false, u128::from(mask), u128::from(net)),
                    Cidr::V6 { net, mask } => (true, mask, net),
                };
                if !self.masks.contains(&(v6, mask)) {
                    self.masks.push((v6, mask));
                }
                *self.blocks.entry((v6, mask, net)).or_insert_with(new)
            }
            _ => return None,
        })
    }

    /// Marks the value atoms that accept the scalar `v`, with the semantics of
    /// `Matcher::matches_scalar`.
    fn lookup(&self, v: &Value, found: &mut Found) {
        let mut mark = |atom: Option<&u32>| {
            if let Some(&a) = atom {
                if !bit(&found.bits, a) {
                    set(&mut found.bits, a);
                    found.atoms.push(a);
                }
            }
        };
        match v {
            Value::String(s) => {
                for &len in &self.prefix_lens {
                    if len > s.len() {
                        break;
                    }
                    mark(s.get(..len).and_then(|p| self.prefixes.get(p)));
                }
                mark(self.strings.get(s.as_str()));
                if !self.masks.is_empty() {
                    // As `Cidr::contains`: the string must be an address of the block's family.
                    let (v6, ip) = match s.parse::<IpAddr>() {
                        Ok(IpAddr::V4(ip)) => (false, u128::from(u32::from(ip))),
                        Ok(IpAddr::V6(ip)) => (true, u128::from(ip)),
                        Err(_) => return,
                    };
                    for &(family, mask) in &self.masks {
                        if family == v6 {
                            mark(self.blocks.get(&(v6, mask, ip & mask)));
                        }
                    }
                }
            }
            Value::Number(n) => mark(n.as_f64().and_then(|x| self.numbers.get(&num_key(x)))),
            Value::Bool(true) => mark(self.flags[0].as_ref()),
            Value::Bool(false) => mark(self.flags[1].as_ref()),
            Value::Null => mark(self.flags[2].as_ref()),
            _ => {}
        }
    }
}

/// Whether bit `i` is set.
#[inline]
pub(super) fn bit(bits: &[u64], i: u32) -> bool {
    bits.get(i as usize / 64)
        .is_some_and(|w| w & (1 << (i % 64)) != 0)
}

/// Sets bit `i`.
#[inline]
pub(super) fn set(bits: &mut [u64], i: u32) {
    if let Some(w) = bits.get_mut(i as usize / 64) {
        *w |= 1 << (i % 64);
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

/// Calls `f` on each scalar under `v`, arrays flattened and objects skipped (as a leaf sees
/// an event value).
fn for_each_scalar<'e>(v: &'e Value, f: &mut impl FnMut(&'e Value)) {
    match v {
        Value::Array(items) => items.iter().for_each(|item| for_each_scalar(item, f)),
        Value::Object(_) => {}
        scalar => f(scalar),
    }
}
