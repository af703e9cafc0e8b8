//! What a script reads of its context variables, so that only that is converted and copied
//! into each evaluation's scope (Rhai copies every variable it is given, and its iterators copy
//! every item they pass to a closure).
//!
//! From the script's tokens (`lex`), each use of a variable is followed along `.key`, `?.key`,
//! `["key"]` and `?["key"]`, and into the closure of a `some` or `all` call, whose parameter is
//! followed the same way for the items of the array. Any other use of a value (an operator,
//! a method call, a computed index, an argument, an interpolation...) reads all of it. A read
//! of only some keys keeps those keys of a map and, of an array, those keys of every item: the
//! number of items and every value the script can reach are kept, so the script cannot tell
//! the difference.

use rhai::Dynamic;
use serde_json::Value;

use super::lex::{all_tokens, Tok};

/// What a script reads of a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reads {
    /// Nothing (a variable whose name is not in the code).
    Nothing,
    /// Only these keys, each read as described; of an array, these keys of each item.
    Keys(Vec<(String, Reads)>),
    /// Possibly all of it (or the script could not be scanned).
    All,
}

impl Reads {
    /// What two uses read together.
    pub(crate) fn union(self, other: &Reads) -> Reads {
        match (self, other) {
            (Reads::All, _) | (_, Reads::All) => Reads::All,
            (Reads::Nothing, r) => r.clone(),
            (r, Reads::Nothing) => r,
            (Reads::Keys(mut mine), Reads::Keys(theirs)) => {
                for (key, reads) in theirs {
                    match mine.iter_mut().find(|(k, _)| k == key) {
                        Some((_, r)) => *r = std::mem::replace(r, Reads::Nothing).union(reads),
                        None => mine.push((key.clone(), reads.clone())),
                    }
                }
                Reads::Keys(mine)
            }
        }
    }

    /// A copy of `value` with only what these reads reach; `null` for [`Reads::Nothing`].
    pub(crate) fn pick_json(&self, value: &Value) -> Value {
        match (self, value) {
            (Reads::All, value) => value.clone(),
            (Reads::Nothing, _) => Value::Null,
            (Reads::Keys(keys), Value::Object(map)) => Value::Object(
                keys.iter()
                    .filter_map(|(k, r)| {
                        map.get_key_value(k)
                            .map(|(k, v)| (k.clone(), r.pick_json(v)))
                    })
                    .collect(),
            ),
            (Reads::Keys(_), Value::Array(items)) => {
                Value::Array(items.iter().map(|v| self.pick_json(v)).collect())
            }
            (Reads::Keys(_), scalar) => scalar.clone(),
        }
    }

    /// A copy of `value` with only what these reads reach; `()` for [`Reads::Nothing`].
    pub(crate) fn pick(&self, value: &Dynamic) -> Dynamic {
        let Reads::Keys(keys) = self else {
            return match self {
                Reads::All => value.clone(),
                _ => Dynamic::UNIT,
            };
        };
        if let Some(map) = value.read_lock::<rhai::Map>() {
            let picked: rhai::Map = keys
                .iter()
                .filter_map(|(k, r)| {
                    map.get_key_value(k.as_str())
                        .map(|(k, v)| (k.clone(), r.pick(v)))
                })
                .collect();
            return Dynamic::from_map(picked);
        }
        if let Some(items) = value.read_lock::<rhai::Array>() {
            return Dynamic::from_array(items.iter().map(|v| self.pick(v)).collect());
        }
        value.clone()
    }
}

/// What `src` reads of variable `name`.
pub(crate) fn reads(src: &str, name: &str) -> Reads {
    match all_tokens(src) {
        Ok(toks) => reads_in(&toks, name),
        Err(_) => Reads::All,
    }
}

/// What the code `toks` reads of variable `name`.
fn reads_in(toks: &[Tok], name: &str) -> Reads {
    let mut all = Reads::Nothing;
    for i in 0..toks.len() {
        // `x.name` is a property of `x`, not the variable.
        if toks[i] != Tok::Ident(name) || (i > 0 && toks[i - 1] == Tok::Punct(b'.')) {
            continue;
        }
        all = all.union(&after(toks, i + 1));
        if all == Reads::All {
            break;
        }
    }
    all
}

/// What is read of the value that the tokens before `at` produced, from the tokens from `at`.
fn after(toks: &[Tok], at: usize) -> Reads {
    let mut j = at;
    if toks.get(j) == Some(&Tok::Punct(b'?')) {
        j += 1;
    }
    match (toks.get(j), toks.get(j + 1), toks.get(j + 2)) {
        (Some(Tok::Punct(b'.')), Some(Tok::Ident(iterator)), Some(Tok::Punct(b'(')))
            if matches!(*iterator, "some" | "all") =>
        {
            match closure(toks, j + 3) {
                // Each item is read as the closure reads its parameter; an item it ignores
                // must still be there to be counted.
                Some((param, body)) => match reads_in(body, param) {
                    Reads::Nothing => Reads::Keys(Vec::new()),
                    r => r,
                },
                None => Reads::All,
            }
        }
        (Some(Tok::Punct(b'.')), Some(Tok::Ident(key)), next)
            if next != Some(&Tok::Punct(b'(')) =>
        {
            Reads::Keys(vec![(key.to_string(), after(toks, j + 2))])
        }
        (Some(Tok::Punct(b'[')), Some(Tok::Str(key)), Some(Tok::Punct(b']'))) => {
            Reads::Keys(vec![(key.clone(), after(toks, j + 3))])
        }
        _ => Reads::All,
    }
}

/// The item parameter and the body of the closure literal at `start` (an iterator's only
/// argument), or `None` when the tokens there are not `|item| body)` or `|item, index| body)`.
fn closure<'t, 'a>(toks: &'t [Tok<'a>], start: usize) -> Option<(&'a str, &'t [Tok<'a>])> {
    let (param, body_start) = match toks.get(start..start + 5)? {
        [Tok::Punct(b'|'), Tok::Ident(p), Tok::Punct(b'|'), ..] => (*p, start + 3),
        [Tok::Punct(b'|'), Tok::Ident(p), Tok::Punct(b','), Tok::Ident(_), Tok::Punct(b'|')] => {
            (*p, start + 5)
        }
        _ => return None,
    };
    let mut depth = 0usize;
    for (i, tok) in toks.iter().enumerate().skip(body_start) {
        match tok {
            Tok::Punct(b'(' | b'[' | b'{') => depth += 1,
            Tok::Punct(b')') if depth == 0 => return Some((param, &toks[body_start..i])),
            Tok::Punct(b',') if depth == 0 => return None,
            Tok::Punct(b')' | b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn keys(list: &[(&str, Reads)]) -> Reads {
        Reads::Keys(
            list.iter()
                .map(|(k, r)| (k.to_string(), r.clone()))
                .collect(),
        )
    }

    #[test]
    fn keys_and_iterator_items() {
        let src = r#"finding.severity > 7 && finding?.resources.some(|r| r.type == "Instance")
            && finding["product-name"] == "GuardDuty" && "finding.title" != x.finding"#;
        let want = keys(&[
            ("severity", Reads::All),
            ("resources", keys(&[("type", Reads::All)])),
            ("product-name", Reads::All),
        ]);
        assert_eq!(reads(src, "finding"), want);
        assert_eq!(reads(src, "event"), Reads::Nothing);
        assert_eq!(
            reads("event.detail.type == `${finding.type}`", "event"),
            keys(&[("detail", keys(&[("type", Reads::All)]))])
        );
        assert_eq!(
            reads("finding.resources.all(|r, i| i > 0) || finding.resources.some(|r| r.tags.some(|t| t.k == 1))", "finding"),
            keys(&[("resources", keys(&[("tags", keys(&[("k", Reads::All)]))]))])
        );
    }

    #[test]
    fn any_other_use_reads_all() {
        for src in [
            "finding.keys().len() > 1",
            r#""id" in finding"#,
            "finding[k] == 1",
            "debug(finding)",
            "let f = finding; f.x",
            "`${finding}`",
            "[1].some(|finding| finding > 0)",
            "finding.x == \"unterminated",
        ] {
            assert_eq!(reads(src, "finding"), Reads::All, "{src}");
        }
        // All of one key only.
        for src in [
            "finding.resources.filter(|r| r.a)[0].b",
            "finding.resources.some(|r| r == 1)",
            "finding.resources.some(|r| f(r))",
            "finding.resources.len() > 0",
        ] {
            assert_eq!(
                reads(src, "finding"),
                keys(&[("resources", Reads::All)]),
                "{src}"
            );
        }
        assert_eq!(
            reads("finding.x.y + finding.x.z[0]", "finding"),
            keys(&[("x", keys(&[("y", Reads::All), ("z", Reads::All)]))])
        );
    }

    #[test]
    fn union_merges_keys() {
        let a = keys(&[("r", keys(&[("t", Reads::All)]))]);
        let b = keys(&[("r", keys(&[("id", Reads::All)])), ("s", Reads::All)]);
        assert_eq!(
            a.clone().union(&b).union(&Reads::Nothing),
            keys(&[
                ("r", keys(&[("t", Reads::All), ("id", Reads::All)])),
                ("s", Reads::All)
            ])
        );
        assert_eq!(a.union(&Reads::All), Reads::All);
    }

    #[test]
    fn picking_keeps_every_item_and_what_is_read() {
        let reads = keys(&[
            ("resources", keys(&[("type", Reads::All)])),
            ("severity", Reads::All),
        ]);
        let finding = json!({
            "severity": 5, "title": "t",
            "resources": [{"type": "Instance", "id": "i-1"}, {"id": "x"}, "s", [{"type": 1, "z": 2}]]
        });
        let want =
            json!({ "severity": 5, "resources": [{"type": "Instance"}, {}, "s", [{"type": 1}]] });
        assert_eq!(reads.pick_json(&finding), want);
        let (dynamic, _) = super::super::value::json_to_dynamic(&finding);
        let picked = super::super::value::dynamic_to_json(reads.pick(&dynamic));
        assert_eq!(picked, Ok(want));
    }
}
