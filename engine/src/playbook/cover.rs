//! The EventBridge rule pattern that delivers every event the loaded playbooks could match.
//!
//! The rule only has to never miss: cordon filters precisely itself. So the pattern is a safe
//! superset, built from the exact top-level `source` and `detail-type` values of the playbooks'
//! patterns, widened whenever a pattern restricts them in a way the rule cannot copy exactly.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::PlaybookSet;

/// Sources delivered when a pattern names no exact source: the ones cordon reads findings from.
const FALLBACK_SOURCES: [&str; 2] = ["aws.guardduty", "aws.securityhub"];

/// A Security Hub custom action may start any playbook by id (manual ones included), so its
/// events are always delivered.
const CUSTOM_ACTION: (&str, &str) = ("aws.securityhub", "Security Hub Findings - Custom Action");

/// What one pattern alternative restricts: `None` when it does not restrict the field to exact
/// values (so the rule must not restrict it either).
struct Cover {
    sources: Option<BTreeSet<String>>,
    detail_types: Option<BTreeSet<String>>,
}

/// The exact string values of a top-level field: `None` when absent or when any value is an
/// operator (`prefix`, `anything-but`, ...) the rule would have to reproduce.
fn exact(pattern: &Map<String, Value>, field: &str) -> Option<BTreeSet<String>> {
    let values = pattern.get(field)?.as_array()?;
    values
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect::<Option<BTreeSet<String>>>()
        .filter(|s| !s.is_empty())
}

/// The alternatives of a pattern: a top-level `$or` splits it; fields beside the `$or` apply to
/// every branch, so a branch inherits them when it does not restrict the field itself.
fn alternatives(pattern: &Value, out: &mut Vec<Cover>) {
    let Some(obj) = pattern.as_object() else {
        out.push(Cover {
            sources: None,
            detail_types: None,
        });
        return;
    };
    let own = Cover {
        sources: exact(obj, "source"),
        detail_types: exact(obj, "detail-type"),
    };
    let Some(branches) = obj.get("$or").and_then(Value::as_array) else {
        out.push(own);
        return;
    };
    for b in branches {
        let mut inner = Vec::new();
        alternatives(b, &mut inner);
        for c in inner {
            out.push(Cover {
                sources: own.sources.clone().or(c.sources),
                detail_types: own.detail_types.clone().or(c.detail_types),
            });
        }
    }
}

impl PlaybookSet {
    /// An EventBridge event pattern matching every event any loaded playbook could match (and
    /// every Security Hub custom action): `{"source": [...], "detail-type": [...]}`, values
    /// sorted. `detail-type` is left out when some pattern does not restrict it to exact values.
    pub fn eventbridge_cover(&self) -> Value {
        let mut covers = Vec::new();
        for p in self.iter() {
            if let Some(pattern) = &p.pattern_json {
                alternatives(pattern, &mut covers);
            }
        }
        let mut sources = BTreeSet::from([CUSTOM_ACTION.0.to_string()]);
        let mut detail_types = Some(BTreeSet::from([CUSTOM_ACTION.1.to_string()]));
        for c in covers {
            match c.sources {
                Some(s) => sources.extend(s),
                None => sources.extend(FALLBACK_SOURCES.iter().map(|s| s.to_string())),
            }
            match (c.detail_types, detail_types.as_mut()) {
                (Some(d), Some(all)) => all.extend(d),
                _ => detail_types = None,
            }
        }
        let mut out = json!({ "source": sources });
        if let Some(d) = detail_types {
            out["detail-type"] = json!(d);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::playbook::PlaybookSet;
    use crate::script::Sandbox;
    use serde_json::json;

    fn set(triggers: &[&str]) -> PlaybookSet {
        let texts: Vec<(String, String)> = triggers
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let (mode, trigger) = if t.is_empty() {
                    ("manual", String::new())
                } else {
                    ("auto", format!("trigger:\n  match: {t}\n"))
                };
                (
                    format!("p{i}.yaml"),
                    format!("id: p{i}\ntitle: t\nversion: 1\nmode: {mode}\n{trigger}steps:\n  - id: a\n    action: iam.deactivate_access_key\n    with: {{user: u, key_id: k}}\n"),
                )
            })
            .collect();
        PlaybookSet::from_sources(&texts, &Sandbox::default()).unwrap()
    }

    #[test]
    fn exact_sources_and_detail_types_are_unioned_with_custom_actions() {
        let s = set(&[
            r#"{"source": ["aws.guardduty"], "detail-type": ["GuardDuty Finding"], "detail": {"severity": [{"numeric": [">=", 7]}]}}"#,
            r#"{"$or": [{"source": ["aws.securityhub"], "detail-type": ["Security Hub Findings - Imported"]}, {"source": ["aws.guardduty"], "detail-type": ["GuardDuty Finding"]}]}"#,
        ]);
        assert_eq!(
            s.eventbridge_cover(),
            json!({
                "source": ["aws.guardduty", "aws.securityhub"],
                "detail-type": ["GuardDuty Finding", "Security Hub Findings - Custom Action", "Security Hub Findings - Imported"],
            })
        );
    }

    #[test]
    fn a_pattern_without_exact_source_falls_back_and_drops_detail_type() {
        let s = set(&[
            r#"{"source": [{"prefix": "aws.guard"}], "detail-type": ["GuardDuty Finding"]}"#,
            r#"{"source": ["aws.securityhub"]}"#,
        ]);
        assert_eq!(
            s.eventbridge_cover(),
            json!({"source": ["aws.guardduty", "aws.securityhub"]}),
            "no exact source: the fallback; a pattern without detail-type: no detail-type filter"
        );
    }

    #[test]
    fn or_branches_inherit_fields_beside_them() {
        let s = set(&[
            r#"{"source": ["aws.guardduty"], "$or": [{"detail-type": ["GuardDuty Finding"]}, {"detail": {"severity": [8]}}]}"#,
        ]);
        assert_eq!(
            s.eventbridge_cover(),
            json!({"source": ["aws.guardduty", "aws.securityhub"]}),
            "the second branch leaves detail-type open"
        );
    }

    #[test]
    fn manual_playbooks_are_reached_by_custom_actions() {
        let s = set(&[""]);
        assert_eq!(
            s.eventbridge_cover(),
            json!({"source": ["aws.securityhub"], "detail-type": ["Security Hub Findings - Custom Action"]})
        );
    }

    #[test]
    fn the_shipped_playbooks_are_covered() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../playbooks");
        let s = PlaybookSet::load_dir(&dir, &Sandbox::default()).unwrap();
        assert_eq!(
            s.eventbridge_cover(),
            json!({
                "source": ["aws.guardduty", "aws.securityhub"],
                "detail-type": ["Findings Imported V2", "GuardDuty Finding", "Security Hub Findings - Custom Action", "Security Hub Findings - Imported"],
            })
        );
    }
}
