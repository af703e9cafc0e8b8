//! Finds the line of a field in a block-style YAML document, for error messages.
//!
//! serde_yaml reports lines for errors it finds itself, but semantic checks (an unknown action,
//! a bad pattern, a Rhai syntax error) run on parsed values that carry no positions. This walks
//! the text by indentation, which is how playbooks are written; where a path cannot be followed
//! (flow style), it answers with the deepest line it found.

/// One step of a path: a map key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A map key.
    Key(String),
    /// A list index.
    Index(usize),
}

/// Indentation column and content of a line, with a list marker stripped: `- id: x` at column 2
/// has its content `id: x` at column 4.
fn content(line: &str) -> Option<(usize, bool, &str)> {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    let col = line.len() - trimmed.len();
    match trimmed
        .strip_prefix("- ")
        .or_else(|| (trimmed == "-").then_some(""))
    {
        Some(rest) => Some((col, true, rest)),
        None => Some((col, false, trimmed)),
    }
}

fn is_key(text: &str, key: &str) -> bool {
    let unquoted = text
        .strip_prefix('"')
        .and_then(|t| t.strip_prefix(key))
        .and_then(|t| t.strip_prefix('"'))
        .or_else(|| {
            text.strip_prefix('\'')
                .and_then(|t| t.strip_prefix(key))
                .and_then(|t| t.strip_prefix('\''))
        })
        .or_else(|| text.strip_prefix(key));
    unquoted.is_some_and(|rest| rest.starts_with(':'))
}

/// The 1-based line of `path` in `text`, or of its deepest ancestor found.
pub fn locate(text: &str, path: &[Seg]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let (mut start, mut end, mut found) = (0usize, lines.len(), None);
    for seg in path {
        // The first content line sets the block's columns: its dash for list items, its key
        // (after the dash, if any) for map keys.
        let Some((first_col, first_dash, _)) = (start..end).find_map(|i| content(lines[i])) else {
            break;
        };
        let hit = match seg {
            Seg::Key(k) => {
                let child_col = if first_dash { first_col + 2 } else { first_col };
                (start..end).find_map(|i| {
                    let (col, dash, text) = content(lines[i])?;
                    let key_col = if dash { col + 2 } else { col };
                    (key_col == child_col && is_key(text, k)).then_some((i, key_col))
                })
            }
            Seg::Index(n) => (start..end)
                .filter_map(|i| {
                    content(lines[i])
                        .and_then(|(col, dash, _)| (dash && col == first_col).then_some((i, col)))
                })
                .nth(*n),
        };
        let Some((line, col)) = hit else { break };
        found = Some(line + 1);
        // The value's block: following lines indented deeper than the key, and for a list item,
        // the item's own line (its first key sits on the dash line).
        start = if matches!(seg, Seg::Index(_)) {
            line
        } else {
            line + 1
        };
        end = (line + 1..end)
            .find(|&i| content(lines[i]).is_some_and(|(c, _, _)| c <= col))
            .unwrap_or(end);
    }
    found
}

/// Parses a dotted path with indices (`steps[2].with.instance`) into segments.
pub fn parse_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(Seg::Key(rest[..i].to_string()));
            }
            rest = &rest[i..];
            while let Some(close) = rest.find(']') {
                if let Ok(n) = rest[1..close].parse() {
                    out.push(Seg::Index(n));
                }
                rest = &rest[close + 1..];
                if !rest.starts_with('[') {
                    break;
                }
            }
        } else {
            out.push(Seg::Key(rest.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "id: x\ntrigger:\n  match:\n    source: [aws.guardduty]\n    detail:\n      severity:\n        - numeric: [\">=\", 7]\nsteps:\n  - id: one\n    action: notify.chat\n    with:\n      text: hi\n  # a comment\n  - id: two\n    action: ec2.isolate_instance\n    with:\n      instance: i-1\n";

    fn at(path: &str) -> Option<usize> {
        locate(DOC, &parse_path(path))
    }

    #[test]
    fn finds_keys_items_and_nested_fields() {
        assert_eq!(at("id"), Some(1));
        assert_eq!(at("trigger.match.detail.severity"), Some(6));
        assert_eq!(at("steps[0].id"), Some(9));
        assert_eq!(at("steps[1]"), Some(14));
        assert_eq!(at("steps[1].action"), Some(15));
        assert_eq!(at("steps[1].with.instance"), Some(17));
        assert_eq!(at("steps[0].with.text"), Some(12));
    }

    #[test]
    fn falls_back_to_the_deepest_ancestor() {
        assert_eq!(at("trigger.match.source[0]"), Some(4));
        assert_eq!(at("steps[1].with.nothing"), Some(16));
        assert_eq!(at("nope"), None);
    }
}
