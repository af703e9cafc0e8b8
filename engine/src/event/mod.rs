//! EventBridge envelopes in, single-finding events and normalized findings out.
//!
//! Accepted inputs:
//! - a GuardDuty EventBridge event (`source: aws.guardduty`, `detail-type: GuardDuty Finding`);
//! - a Security Hub CSPM EventBridge event (`Security Hub Findings - Imported` or
//!   `- Custom Action`), split into one [`FindingEvent`] per ASFF finding;
//! - a new Security Hub EventBridge event (`Findings Imported V2`), whose `detail.findings`
//!   holds OCSF findings (one per event, as Security Hub sends them);
//! - a bare GuardDuty finding, a bare ASFF finding, a bare OCSF finding, or `{"Findings": [...]}`
//!   (the `BatchImportFindings` / `GetFindings(V2)` shape, ASFF or OCSF), each given a synthetic
//!   envelope so that EventBridge patterns written for real events match it.
//!
//! A finding inside an array (`detail.findings[i]`, `Findings[i]`) that cannot be normalized is
//! a [`Rejected`] of its own: the others of the batch are still returned. Other events from the
//! same sources (CloudTrail records, Runtime Protection health, Insight Results) are
//! [`Parsed::Ignored`] with a reason; anything else is an [`EventError::UnknownShape`]. All input
//! is untrusted: nothing here panics on it, and every error names the JSON path it is about.

mod asff;
mod asff_resources;
#[cfg(test)]
mod corpus_tests;
mod envelope;
mod guardduty;
mod json;
mod ocsf;
mod ocsf_resources;
#[cfg(test)]
mod playbook_tests;
mod principal;
mod product;
#[cfg(test)]
mod robustness_tests;
mod securityhub;

use std::sync::Arc;

use serde_json::Value;

use crate::finding::Finding;

pub use asff::guardduty_type_from_asff;

/// Largest input [`parse`] reads. An EventBridge event is at most 256 KiB and a
/// `BatchImportFindings` request at most 6 MiB; anything bigger is not one of ours.
pub const MAX_INPUT_BYTES: usize = 8 * 1024 * 1024;

/// One finding, with the single-finding event that carried it.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingEvent {
    /// The single-finding EventBridge event: the event itself for GuardDuty; for a Security Hub
    /// event with N findings, a copy of the envelope whose `detail.findings` holds only this
    /// finding; for a bare finding, a synthetic envelope (`version`, `source`, `detail-type`,
    /// `account`, `region`, `time`, `resources`, `detail`). Shared (`Arc`) with the runs it
    /// starts, which journal it: a run is created without copying the tree.
    pub event: Arc<Value>,
    /// The normalized finding.
    pub finding: Finding,
    /// For `Security Hub Findings - Custom Action`: the action a user chose in the console.
    pub custom_action: Option<CustomAction>,
    /// True when `event` was built by cordon around a bare finding rather than received.
    pub synthetic_envelope: bool,
}

/// The Security Hub custom action that sent the finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomAction {
    /// `detail.actionName`.
    pub name: String,
    /// `detail.actionDescription`.
    pub description: Option<String>,
    /// The custom action ARN (`arn:aws:securityhub:REGION:ACCOUNT:action/custom/ID`) from the
    /// envelope's `resources`.
    pub arn: Option<String>,
}

/// The outcome of parsing one input.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// The input's findings (a Security Hub CSPM event carries up to 100): those normalized, and
    /// those refused, each with its own error.
    Findings(Batch),
    /// A well-formed event from a finding source that carries no finding.
    Ignored(Ignored),
}

/// The findings of one input, one result per finding.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    /// The findings that normalized, in input order.
    pub findings: Vec<FindingEvent>,
    /// The findings that did not, in input order. Never empty for a single-finding input that
    /// failed: that is an `Err` of [`parse`] instead.
    pub rejected: Vec<Rejected>,
}

/// A finding of a batch that could not be normalized; the rest of the batch is unaffected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("finding {index}{}: {error}", .id.as_ref().map(|i| format!(" ({i:?})")).unwrap_or_default())]
pub struct Rejected {
    /// Its 0-based index in the input's findings array (`detail.findings`, `Findings`).
    pub index: usize,
    /// Its id (ASFF `Id`, OCSF `finding_info.uid`) when one could be read, at most 256
    /// characters; attacker-controlled text, to be escaped before display.
    pub id: Option<String>,
    /// What is wrong, naming the JSON path from the top of the input
    /// (`detail.findings[3].AwsAccountId is ...`).
    pub error: EventError,
}

impl Parsed {
    /// The findings that normalized, or an empty slice when the input was ignored.
    pub fn findings(&self) -> &[FindingEvent] {
        match self {
            Parsed::Findings(b) => &b.findings,
            Parsed::Ignored(_) => &[],
        }
    }

    /// The findings that were refused, each with its error.
    pub fn rejected(&self) -> &[Rejected] {
        match self {
            Parsed::Findings(b) => &b.rejected,
            Parsed::Ignored(_) => &[],
        }
    }

    /// Why the input was ignored, if it was.
    pub fn ignored(&self) -> Option<&Ignored> {
        match self {
            Parsed::Findings(_) => None,
            Parsed::Ignored(i) => Some(i),
        }
    }

    /// One normalized finding, as a single-finding input (GuardDuty event, bare finding) gives.
    pub(crate) fn one(finding: FindingEvent) -> Parsed {
        Parsed::Findings(Batch {
            findings: vec![finding],
            rejected: Vec::new(),
        })
    }
}

/// An event that is understood but carries no finding to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// The envelope's `source`.
    pub source: String,
    /// The envelope's `detail-type`.
    pub detail_type: String,
    /// Why it carries no finding.
    pub reason: String,
}

/// What [`parse`] and [`parse_value`] accept, quoted in [`EventError::UnknownShape`].
pub const ACCEPTED: &str = "an EventBridge event from aws.guardduty (detail-type \"GuardDuty \
Finding\") or aws.securityhub (\"Security Hub Findings - Imported\", \"Security Hub Findings - \
Custom Action\" or \"Findings Imported V2\"), a bare GuardDuty finding (schemaVersion, \
accountId, id, type, ...), a bare ASFF finding (SchemaVersion, Id, AwsAccountId, ProductArn, \
...), a bare OCSF finding (class_uid, finding_info, cloud, metadata, ...), or {\"Findings\": \
[ASFF or OCSF findings]}";

/// Why an input could not be read. Messages say what was wrong and at which JSON path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The bytes are not JSON; `message` is serde's, with line and column.
    #[error("not JSON: {message}")]
    NotJson {
        /// serde_json's message, e.g. "expected value at line 1 column 5".
        message: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// The input is larger than [`MAX_INPUT_BYTES`].
    #[error("input is {size} bytes; at most {limit} are accepted")]
    TooLarge {
        /// Input size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A required field is absent (or null).
    #[error("{path} is missing")]
    Missing {
        /// JSON path, e.g. `detail.findings[2].AwsAccountId`.
        path: String,
    },
    /// A field has the wrong JSON type.
    #[error("{path} is {found}; expected {expected}")]
    WrongType {
        /// JSON path.
        path: String,
        /// What was expected ("a string").
        expected: &'static str,
        /// What was there ("a number").
        found: &'static str,
    },
    /// A field is present with the right type but an unusable value.
    #[error("{path} {problem}")]
    Invalid {
        /// JSON path.
        path: String,
        /// What is wrong, phrased to follow the path ("is empty").
        problem: String,
    },
    /// The input is JSON but not an event or finding cordon reads.
    #[error("not a GuardDuty or Security Hub event or finding: got {seen}; accepted: {accepted}", accepted = ACCEPTED)]
    UnknownShape {
        /// What was seen, e.g. `a JSON object with keys [description, headers, ...]`.
        seen: String,
    },
}

/// Parses raw bytes (an EventBridge event or a bare finding) into findings.
pub fn parse(bytes: &[u8]) -> Result<Parsed, EventError> {
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(EventError::TooLarge {
            size: bytes.len(),
            limit: MAX_INPUT_BYTES,
        });
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| EventError::NotJson {
        message: e.to_string(),
        line: e.line(),
        column: e.column(),
    })?;
    parse_value(value)
}

/// Parses an already-decoded JSON value (an EventBridge event or a bare finding).
pub fn parse_value(value: Value) -> Result<Parsed, EventError> {
    let Value::Object(top) = &value else {
        return Err(EventError::UnknownShape {
            seen: format!("{} at the top level", json::kind_of(&value)),
        });
    };
    // Order matters: an envelope's detail may itself look like a finding, and ASFF is told from
    // GuardDuty by its PascalCase keys.
    if envelope::is_envelope(top) {
        envelope::parse(value)
    } else if securityhub::is_batch(top) {
        securityhub::from_batch(top)
    } else if asff::looks_like_finding(top) {
        securityhub::from_bare(top)
    } else if ocsf::looks_like_finding(top) {
        securityhub::from_bare_ocsf(top)
    } else if guardduty::looks_like_finding(top) {
        guardduty::from_bare(top)
    } else {
        Err(EventError::UnknownShape {
            seen: describe_keys(top),
        })
    }
}

/// "a JSON object with keys [a, b, ...]", bounded: key names are attacker-controlled.
fn describe_keys(top: &json::Obj) -> String {
    const SHOWN: usize = 8;
    // Sorted so the message does not depend on serde_json's map ordering feature.
    let mut sorted: Vec<&String> = top.keys().collect();
    sorted.sort();
    let mut keys: Vec<String> = sorted
        .into_iter()
        .take(SHOWN)
        .map(|k| format!("{:?}", json::bounded(k, 40)))
        .collect();
    if top.len() > SHOWN {
        keys.push(format!("... {} more", top.len() - SHOWN));
    }
    if keys.is_empty() {
        "an empty JSON object".to_string()
    } else {
        format!("a JSON object with keys [{}]", keys.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn not_json_reports_line_and_column() {
        let err = parse(b"{\"a\": }").err();
        assert_eq!(
            err.as_ref().map(ToString::to_string).as_deref(),
            Some("not JSON: expected value at line 1 column 7")
        );
        assert!(matches!(
            err,
            Some(EventError::NotJson {
                line: 1,
                column: 7,
                ..
            })
        ));
    }

    #[test]
    fn non_objects_are_unknown_shapes() {
        for (input, seen) in [
            (json!([]), "an array at the top level"),
            (json!("x"), "a string at the top level"),
            (json!(null), "null at the top level"),
            (json!({}), "an empty JSON object"),
        ] {
            match parse_value(input) {
                Err(EventError::UnknownShape { seen: s }) => assert_eq!(s, seen),
                other => panic!("expected UnknownShape, got {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_shape_message_says_what_is_accepted() {
        let err = parse_value(json!({"token": "t", "team_id": "T1"})).err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.contains("got a JSON object with keys [\"team_id\", \"token\"]"),
            "{msg}"
        );
        assert!(msg.contains("GuardDuty Finding"), "{msg}");
        assert!(
            msg.contains("{\"Findings\": [ASFF or OCSF findings]}"),
            "{msg}"
        );
        assert!(msg.contains("Findings Imported V2"), "{msg}");
    }

    #[test]
    fn too_large_is_refused_before_parsing() {
        let big = vec![b' '; MAX_INPUT_BYTES + 1];
        assert!(matches!(parse(&big), Err(EventError::TooLarge { .. })));
    }

    #[test]
    fn many_keys_are_summarised() {
        let mut o = serde_json::Map::new();
        for i in 0..20 {
            o.insert(format!("k{i:02}"), json!(i));
        }
        let seen = describe_keys(&o);
        assert!(seen.ends_with("\"k07\", ... 12 more]"), "{seen}");
    }
}
