//! Whole patterns: parsing the pattern object, expanding `$or` into `$or`-free alternatives,
//! and evaluating one alternative against an event with event-ruler's array consistency.
//!
//! Array consistency. EventBridge matches with event-ruler's `rulesForJSONEvent`, whose README
//! ("JSON Array Matching") says it "will refuse to recognize any match in which any two fields
//! are within JSON objects that are in different elements of the same array". We get that by
//! evaluating a nested pattern object against an event array element by element: the whole
//! nested object must be satisfied by ONE element. So `{"employees": {"first": ["Anna"],
//! "last": ["Jones"]}}` does not match `[{"first":"Anna","last":"Smith"},{"first":"Peter",
//! "last":"Jones"}]`.
//!
//! `exists: false` under an array of objects follows event-ruler's `NameState`: a field counts
//! as present if it occurs in any element consistent with the rest of the match. When other
//! conditions pin the element, that element must lack the field; when the nested object has
//! only absence conditions, nothing pins an element and the field must be absent from every
//! element.

use serde_json::{Map, Value};

use super::leaf::Leaf;
use super::{child_path, index_path, type_name, Condition, PatternError};

/// Most `$or`-free alternatives one pattern may expand to. EventBridge also bounds the
/// combinations a rule may produce; this keeps a pasted pattern from exploding memory.
pub const MAX_ALTERNATIVES: usize = 1024;

/// A compiled event pattern: one or more `$or`-free alternatives, any of which may match.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    pub(crate) alternatives: Vec<Node>,
}

/// A pattern object with `$or` expanded away: all of its fields must match (AND).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) fields: Vec<Field>,
    /// Every condition below only asks for absence (see the module comment).
    absence_only: bool,
}

/// One field of a pattern object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    /// The event key.
    pub(crate) key: String,
    /// Dotted event path from the root, for `explain`.
    pub(crate) path: String,
    /// A leaf or a nested object.
    pub(crate) kind: Kind,
}

/// What a field holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// `"key": [ ...match values... ]`.
    Leaf(Leaf),
    /// `"key": { ...nested pattern... }`.
    Object(Node),
}

/// Compile one event pattern (a JSON object) into a [`Pattern`].
pub fn compile(pattern: &Value) -> Result<Pattern, PatternError> {
    let Value::Object(map) = pattern else {
        return Err(PatternError::new(
            "",
            format!(
                "an event pattern must be a JSON object such as {{\"source\": [\"aws.guardduty\"]}}, found {}",
                type_name(pattern)
            ),
        ));
    };
    let alternatives = expand(map, "", "")?.into_iter().map(Node::new).collect();
    Ok(Pattern { alternatives })
}

impl Pattern {
    /// Whether the event matches any alternative of the pattern.
    pub fn matches(&self, event: &Value) -> bool {
        self.alternatives.iter().any(|n| n.matches(Some(event)))
    }

    /// Number of `$or`-free alternatives the pattern expanded to.
    pub fn alternatives(&self) -> usize {
        self.alternatives.len()
    }

    /// Each leaf condition of every alternative, and whether it held on its own, numbered by
    /// alternative ([`Condition::branch`]): the pattern matched when every condition of one
    /// alternative held.
    pub fn explain(&self, event: &Value) -> Vec<Condition> {
        let mut out = Vec::new();
        for (branch, alt) in self.alternatives.iter().enumerate() {
            let mut conditions = Vec::new();
            explain_fields(&alt.fields, &[event], &mut conditions);
            out.extend(conditions.into_iter().map(|c| Condition { branch, ..c }));
        }
        out
    }
}

impl Node {
    fn new(fields: Vec<Field>) -> Self {
        let absence_only = fields.iter().all(|f| match &f.kind {
            Kind::Leaf(l) => l.absence_only(),
            Kind::Object(n) => n.absence_only,
        });
        Node {
            fields,
            absence_only,
        }
    }

    /// Whether this node holds for the event value at its position (None: missing).
    pub(crate) fn matches(&self, event: Option<&Value>) -> bool {
        self.eval(event, None)
    }

    /// [`Node::matches`] for a root node, caching leaf results by `Leaf::memo_id` in `memo`.
    /// The cache is only consulted while the event is walked through objects: there each
    /// event path has one value, so equal (path, leaf) pairs give equal results. Under an
    /// array the element decides, and the cache is not used.
    pub(crate) fn matches_memo(&self, event: &Value, memo: &mut Memo) -> bool {
        self.eval(Some(event), Some(memo))
    }

    fn eval(&self, event: Option<&Value>, memo: Option<&mut Memo>) -> bool {
        match event {
            Some(Value::Object(map)) => self.fields_match(Some(map), memo),
            Some(v @ Value::Array(_)) if self.absence_only => {
                !any_object(v, &mut |m| !self.fields_match(Some(m), None))
            }
            Some(v @ Value::Array(_)) => any_object(v, &mut |m| self.fields_match(Some(m), None)),
            _ => self.fields_match(None, memo),
        }
    }

    fn fields_match(&self, map: Option<&Map<String, Value>>, mut memo: Option<&mut Memo>) -> bool {
        self.fields.iter().all(|f| {
            let v = map.and_then(|m| m.get(&f.key));
            match &f.kind {
                Kind::Leaf(leaf) => match (leaf.memo_id, memo.as_deref_mut()) {
                    (Some(id), Some(memo)) => {
                        if let Some(&(_, hit)) = memo.iter().find(|(i, _)| *i == id) {
                            hit
                        } else {
                            let hit = leaf.matches(v);
                            memo.push((id, hit));
                            hit
                        }
                    }
                    _ => leaf.matches(v),
                },
                Kind::Object(node) => node.eval(v, memo.as_deref_mut()),
            }
        })
    }

    /// Give every leaf a memo id from `intern(event path, leaf)`; equal (path, leaf json)
    /// pairs must get equal ids.
    pub(crate) fn assign_memo_ids(
        &mut self,
        path: &mut Vec<String>,
        intern: &mut impl FnMut(&[String], &Leaf) -> u32,
    ) {
        for f in &mut self.fields {
            path.push(f.key.clone());
            match &mut f.kind {
                Kind::Leaf(leaf) => leaf.memo_id = Some(intern(path, leaf)),
                Kind::Object(node) => node.assign_memo_ids(path, intern),
            }
            path.pop();
        }
    }
}

/// Leaf results already computed for one event: (memo id, matched).
pub(crate) type Memo = Vec<(u32, bool)>;

/// Calls `f` on each object under `v` (arrays flattened) until it returns true.
fn any_object<'a>(v: &'a Value, f: &mut impl FnMut(&'a Map<String, Value>) -> bool) -> bool {
    match v {
        Value::Object(m) => f(m),
        Value::Array(items) => items.iter().any(|item| any_object(item, f)),
        _ => false,
    }
}

fn explain_fields(fields: &[Field], events: &[&Value], out: &mut Vec<Condition>) {
    for f in fields {
        let mut next = Vec::new();
        for ev in events {
            any_object(ev, &mut |m| {
                next.extend(m.get(&f.key));
                false
            });
        }
        match &f.kind {
            Kind::Leaf(leaf) => {
                let matched = if next.is_empty() {
                    leaf.matches(None)
                } else {
                    next.iter().any(|v| leaf.matches(Some(v)))
                };
                let c = Condition {
                    path: f.path.clone(),
                    expected: leaf.expected.clone(),
                    matched,
                    branch: 0,
                };
                if !out.contains(&c) {
                    out.push(c);
                }
            }
            Kind::Object(node) => explain_fields(&node.fields, &next, out),
        }
    }
}

/// Expand one pattern object into its `$or`-free alternatives (each a list of fields).
fn expand(
    map: &Map<String, Value>,
    json_path: &str,
    event_path: &str,
) -> Result<Vec<Vec<Field>>, PatternError> {
    if map.is_empty() {
        return Err(PatternError::new(
            json_path,
            "an empty object constrains nothing; give at least one field, e.g. {\"source\": [\"aws.guardduty\"]}",
        ));
    }
    let mut acc: Vec<Vec<Field>> = vec![Vec::new()];
    for (key, value) in map {
        let jp = child_path(json_path, key);
        if key == "$or" {
            let branches = match value {
                Value::Array(items) if items.len() >= 2 => items,
                _ => {
                    return Err(PatternError::new(
                        &jp,
                        "`$or` must be an array of at least two pattern objects, e.g. [{\"a\": [1]}, {\"b\": [2]}]",
                    ))
                }
            };
            let mut alts = Vec::new();
            for (i, branch) in branches.iter().enumerate() {
                let bp = index_path(&jp, i);
                match branch {
                    Value::Object(m) => alts.extend(expand(m, &bp, event_path)?),
                    other => {
                        return Err(PatternError::new(
                            &bp,
                            format!(
                                "each `$or` branch must be a pattern object, found {}",
                                type_name(other)
                            ),
                        ))
                    }
                }
            }
            acc = product(acc, alts, &jp, merge_fields)?;
            continue;
        }
        let ep = child_path(event_path, key);
        match value {
            Value::Array(items) => {
                let leaf = Leaf::parse(items, &jp)?;
                for fields in &mut acc {
                    fields.push(Field {
                        key: key.clone(),
                        path: ep.clone(),
                        kind: Kind::Leaf(leaf.clone()),
                    });
                }
            }
            Value::Object(m) => {
                let alts = expand(m, &jp, &ep)?;
                // Merged, not pushed: a `$or` branch seen earlier may already constrain `key`.
                acc = product(acc, alts, &jp, |fields, alt| {
                    let field = Field {
                        key: key.clone(),
                        path: ep.clone(),
                        kind: Kind::Object(Node::new(alt)),
                    };
                    merge_fields(fields, vec![field])
                })?;
            }
            other => {
                return Err(PatternError::new(
                    &jp,
                    format!(
                        "a field must hold an array of match values (e.g. [\"value\"]) or a nested object, found {}",
                        type_name(other)
                    ),
                ))
            }
        }
    }
    Ok(acc)
}

/// Every combination of one of `acc` with one of `alts`, bounded by [`MAX_ALTERNATIVES`].
fn product(
    acc: Vec<Vec<Field>>,
    alts: Vec<Vec<Field>>,
    path: &str,
    combine: impl Fn(Vec<Field>, Vec<Field>) -> Vec<Field>,
) -> Result<Vec<Vec<Field>>, PatternError> {
    if acc.len().saturating_mul(alts.len()) > MAX_ALTERNATIVES {
        return Err(PatternError::new(
            path,
            format!(
                "the pattern's `$or` combinations exceed {MAX_ALTERNATIVES}; split it into several playbooks or simplify the `$or`"
            ),
        ));
    }
    let mut out = Vec::with_capacity(acc.len() * alts.len());
    for a in &acc {
        for alt in &alts {
            out.push(combine(a.clone(), alt.clone()));
        }
    }
    Ok(out)
}

/// AND the fields of a `$or` branch into the enclosing object's fields. Nested objects under
/// the same key are merged so that array consistency still applies to all of them together.
fn merge_fields(mut base: Vec<Field>, branch: Vec<Field>) -> Vec<Field> {
    for field in branch {
        let existing = base
            .iter_mut()
            .find(|b| b.key == field.key && matches!(b.kind, Kind::Object(_)));
        match (existing, field.kind) {
            (Some(b), Kind::Object(node)) => {
                if let Kind::Object(bn) = &mut b.kind {
                    let merged = merge_fields(std::mem::take(&mut bn.fields), node.fields);
                    *bn = Node::new(merged);
                }
            }
            (_, kind) => base.push(Field {
                key: field.key,
                path: field.path,
                kind,
            }),
        }
    }
    base
}

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;
