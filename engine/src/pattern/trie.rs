//! The trie the index files entries in: one edge per atom (compressed: a chain of single
//! children is one edge labelled with all its atoms), entries at the node their last atom
//! leads to. Built once, then flattened into arrays so that walking it touches few cache lines.

use super::fxhash::FxMap;

/// A node with more value edges than this is probed with the satisfied value atoms instead of
/// testing each edge.
const WIDE: usize = 16;

/// "No edge" in [`Trie::root`].
const NONE: u32 = u32::MAX;

/// The trie while entries are filed.
#[derive(Debug, Default)]
pub(super) struct Builder {
    nodes: Vec<BuildNode>,
    edges: FxMap<(u32, u32), u32>,
}

#[derive(Debug, Default)]
struct BuildNode {
    entries: Vec<u32>,
    children: Vec<(u32, u32)>,
}

/// The flattened trie.
#[derive(Debug, Default)]
pub(super) struct Trie {
    nodes: Vec<Node>,
    /// Each node's edges, contiguous: value edges (first atom a value atom) sorted by first
    /// atom, then the others.
    edges: Vec<Edge>,
    /// The atoms of each edge after its first, contiguous.
    labels: Vec<u32>,
    /// Each node's entries, contiguous.
    entries: Vec<u32>,
    /// Edge by (wide node, first atom).
    wide: FxMap<(u32, u32), u32>,
    /// The root's value edges by first atom: the root is the widest node (one edge per value of
    /// every entry's first condition), and every satisfied value atom is looked up in it.
    root: Vec<u32>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Node {
    first_edge: u32,
    /// How many of its edges are value edges (they come first).
    values: u32,
    /// How many start with a leaf (decided by its values or evaluated).
    others: u32,
    first_entry: u32,
    entry_count: u32,
}

#[derive(Debug, Clone, Copy)]
struct Edge {
    /// The first atom, tested before the rest of the label is read.
    atom: u32,
    /// The other atoms: `labels[rest..rest + rest_len]`.
    rest: u32,
    rest_len: u32,
    child: u32,
}

impl Builder {
    /// Files `entry` under `atoms` (in filing order).
    pub(super) fn insert(&mut self, atoms: &[u32], entry: u32) {
        if self.nodes.is_empty() {
            self.nodes.push(BuildNode::default());
        }
        let mut at = 0u32;
        for &a in atoms {
            let nodes = &mut self.nodes;
            at = *self.edges.entry((at, a)).or_insert_with(|| {
                let child = nodes.len() as u32;
                nodes.push(BuildNode::default());
                nodes[at as usize].children.push((a, child));
                child
            });
        }
        self.nodes[at as usize].entries.push(entry);
    }

    /// Flattens the trie. `is_value(atom)` says whether an atom is a value atom (found by the
    /// event walk, so its edges can be probed); `atoms` is the number of atom ids.
    pub(super) fn finish(mut self, atoms: usize, is_value: impl Fn(u32) -> bool) -> Trie {
        let mut trie = Trie {
            root: vec![NONE; atoms],
            ..Trie::default()
        };
        if self.nodes.is_empty() {
            self.nodes.push(BuildNode::default());
        }
        trie.nodes.push(Node::default());
        // (node here, node in `trie`): iterative, so no entry's length can exhaust the stack.
        let mut queue = vec![(0u32, 0u32)];
        while let Some((old, new)) = queue.pop() {
            let mut kids = std::mem::take(&mut self.nodes[old as usize].children);
            kids.sort_unstable_by_key(|&(a, _)| (!is_value(a), a));
            let first_edge = trie.edges.len() as u32;
            for &(a, mut child) in &kids {
                let rest = trie.labels.len() as u32;
                // Follow a chain of single children into one edge.
                while let [(next, grandchild)] = self.nodes[child as usize].children[..] {
                    if !self.nodes[child as usize].entries.is_empty() {
                        break;
                    }
                    trie.labels.push(next);
                    child = grandchild;
                }
                let flat = trie.nodes.len() as u32;
                trie.nodes.push(Node::default());
                queue.push((child, flat));
                trie.edges.push(Edge {
                    atom: a,
                    rest,
                    rest_len: trie.labels.len() as u32 - rest,
                    child: flat,
                });
            }
            let entries = std::mem::take(&mut self.nodes[old as usize].entries);
            let value_count = kids.iter().filter(|(a, _)| is_value(*a)).count();
            trie.nodes[new as usize] = Node {
                first_edge,
                values: value_count as u32,
                others: (kids.len() - value_count) as u32,
                first_entry: trie.entries.len() as u32,
                entry_count: entries.len() as u32,
            };
            trie.entries.extend(entries);
            for e in first_edge..first_edge + value_count as u32 {
                let a = trie.edges[e as usize].atom;
                if new == 0 {
                    trie.root[a as usize] = e;
                } else if value_count > WIDE {
                    trie.wide.insert((new, a), e);
                }
            }
        }
        trie
    }
}

impl Trie {
    /// Appends to `out` the entries at every node whose path of atoms all hold. `found` lists
    /// the value atoms that hold; `holds` decides any atom.
    pub(super) fn walk(
        &self,
        found: &[u32],
        holds: &mut impl FnMut(u32) -> bool,
        out: &mut Vec<u32>,
    ) {
        let mut stack: Vec<u32> = Vec::with_capacity(64);
        for &a in found {
            if let Some(&e) = self.root.get(a as usize).filter(|&&e| e != NONE) {
                self.follow_rest(e, holds, &mut stack);
            }
        }
        if let Some(root) = self.nodes.first() {
            let start = root.first_edge + root.values;
            self.follow_all(start..start + root.others, holds, &mut stack);
        }
        while let Some(at) = stack.pop() {
            let Some(node) = self.nodes.get(at as usize) else {
                continue;
            };
            let first = node.first_entry as usize;
            out.extend_from_slice(&self.entries[first..first + node.entry_count as usize]);
            let others = node.first_edge + node.values;
            if node.values as usize > WIDE && found.len() < node.values as usize {
                for &a in found {
                    if let Some(&e) = self.wide.get(&(at, a)) {
                        self.follow_rest(e, holds, &mut stack);
                    }
                }
            } else {
                self.follow_all(node.first_edge..others, holds, &mut stack);
            }
            self.follow_all(others..others + node.others, holds, &mut stack);
        }
    }

    /// Pushes the child of every edge in `edges` whose atoms all hold.
    fn follow_all(
        &self,
        edges: std::ops::Range<u32>,
        holds: &mut impl FnMut(u32) -> bool,
        stack: &mut Vec<u32>,
    ) {
        let edges = self
            .edges
            .get(edges.start as usize..edges.end as usize)
            .unwrap_or(&[]);
        for edge in edges {
            if holds(edge.atom) {
                self.push_if_rest_holds(edge, holds, stack);
            }
        }
    }

    /// Pushes the child of edge `e`, whose first atom holds, if the rest of its atoms hold.
    fn follow_rest(&self, e: u32, holds: &mut impl FnMut(u32) -> bool, stack: &mut Vec<u32>) {
        if let Some(edge) = self.edges.get(e as usize) {
            self.push_if_rest_holds(edge, holds, stack);
        }
    }

    fn push_if_rest_holds(
        &self,
        edge: &Edge,
        holds: &mut impl FnMut(u32) -> bool,
        stack: &mut Vec<u32>,
    ) {
        let start = edge.rest as usize;
        let rest = &self.labels[start..start + edge.rest_len as usize];
        if rest.iter().all(|&a| holds(a)) {
            stack.push(edge.child);
        }
    }
}
