//! Security Hub inputs: Security Hub CSPM's `Security Hub Findings - Imported` / `- Custom
//! Action` events (ASFF) and the new Security Hub's `Findings Imported V2` events (OCSF), each
//! split into one event per finding; bare ASFF and OCSF findings; and `{"Findings": [...]}`
//! batches. A finding of an array that does not normalize is rejected alone (see [`Rejected`]).

use serde_json::{json, Value};

use super::envelope::{self, Envelope, SECURITYHUB};
use super::json::{
    bounded, get, index, join, kind_of, obj_of, spelled, str_of, Obj, MAX_TEXT_CHARS,
};
use super::{asff, ocsf};
use super::{Batch, CustomAction, EventError, FindingEvent, Ignored, Parsed, Rejected};

/// `detail-type` of findings Security Hub CSPM imported (new or updated), in ASFF.
pub(crate) const IMPORTED: &str = "Security Hub Findings - Imported";
/// `detail-type` of findings a user sent to a custom action from the console.
pub(crate) const CUSTOM_ACTION: &str = "Security Hub Findings - Custom Action";
/// `detail-type` of insight results (aggregates, no findings).
pub(crate) const INSIGHT_RESULTS: &str = "Security Hub Insight Results";
/// `detail-type` of the new Security Hub's findings, in OCSF, one per event (Security Hub User
/// Guide, "EventBridge event formats", securityhub-v2-cwe-event-formats).
pub(crate) const IMPORTED_V2: &str = "Findings Imported V2";
/// Security Hub puts at most 100 findings in one event (and `BatchImportFindings` takes at
/// most 100); more means the input was not written by Security Hub.
pub(crate) const MAX_FINDINGS: usize = 100;
/// Longest finding id quoted in a [`Rejected`].
const MAX_REJECTED_ID_CHARS: usize = 256;

/// The finding format of one array entry.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Asff,
    Ocsf,
}

impl Format {
    /// The format of a `{"Findings": [...]}` entry, told by its keys.
    fn of(f: &Value) -> Format {
        match f.as_object() {
            Some(o) if ocsf::looks_like_finding(o) && !asff::looks_like_finding(o) => Format::Ocsf,
            _ => Format::Asff,
        }
    }

    /// The finding's id, for a rejection message, if it can be read.
    fn id_of(self, f: &Value) -> Option<String> {
        let o = f.as_object()?;
        let id = match self {
            Format::Asff => str_of(o, "Id"),
            Format::Ocsf => obj_of(o, "finding_info").and_then(|i| str_of(i, "uid")),
        }?;
        Some(bounded(id, MAX_REJECTED_ID_CHARS))
    }
}

/// True for the `BatchImportFindings` request shape, `{"Findings": [...]}`.
pub(crate) fn is_batch(top: &Obj) -> bool {
    top.contains_key("Findings")
}

/// Splits an Imported, Custom Action or Imported V2 event into one [`FindingEvent`] per finding.
/// A V2 finding's region is its own (`cloud.region`), never the envelope's.
pub(crate) fn from_event(top: &Obj, env: &Envelope<'_>) -> Result<Parsed, EventError> {
    let custom_action = if env.detail_type == CUSTOM_ACTION {
        Some(custom_action(top, env.detail)?)
    } else {
        None
    };
    let format = if env.detail_type == IMPORTED_V2 {
        Format::Ocsf
    } else {
        Format::Asff
    };
    let (key, findings) = findings_array(env.detail, "detail", "findings")?;
    if findings.is_empty() {
        return Ok(Parsed::Ignored(Ignored {
            source: SECURITYHUB.to_string(),
            detail_type: env.detail_type.to_string(),
            reason: "detail.findings is empty: the event carries no finding".to_string(),
        }));
    }
    // The copy each finding gets: the whole envelope with `detail.findings` emptied, so the
    // other findings are not cloned N times.
    let detail_key = spelled(top, "detail").unwrap_or_else(|| "detail".to_string());
    let mut base = top.clone();
    if let Some(detail) = base.get_mut(&detail_key).and_then(Value::as_object_mut) {
        detail.insert(key.clone(), json!([]));
    }
    let mut batch = Batch::default();
    for (i, f) in findings.iter().enumerate() {
        let path = index("detail.findings", i);
        let normalized = as_finding(f, &path).and_then(|obj| match format {
            Format::Asff => asff::normalize(obj, &path, env.region),
            Format::Ocsf => ocsf::normalize(obj, &path),
        });
        let finding = match normalized {
            Ok(finding) => finding,
            Err(error) => {
                batch.rejected.push(Rejected {
                    index: i,
                    id: format.id_of(f),
                    error,
                });
                continue;
            }
        };
        let mut event = base.clone();
        if let Some(detail) = event.get_mut(&detail_key).and_then(Value::as_object_mut) {
            detail.insert(key.clone(), json!([f]));
        }
        batch.findings.push(FindingEvent {
            event: Value::Object(event).into(),
            finding,
            custom_action: custom_action.clone(),
            synthetic_envelope: false,
        });
    }
    Ok(Parsed::Findings(batch))
}

/// A bare ASFF finding in a synthetic `Security Hub Findings - Imported` envelope.
pub(crate) fn from_bare(top: &Obj) -> Result<Parsed, EventError> {
    Ok(Parsed::one(synthetic(top, "", Format::Asff)?))
}

/// A bare OCSF finding in a synthetic `Findings Imported V2` envelope.
pub(crate) fn from_bare_ocsf(top: &Obj) -> Result<Parsed, EventError> {
    Ok(Parsed::one(synthetic(top, "", Format::Ocsf)?))
}

/// `{"Findings": [...]}`: each finding (ASFF or OCSF, told by its keys) in its own synthetic
/// envelope.
pub(crate) fn from_batch(top: &Obj) -> Result<Parsed, EventError> {
    let (_, findings) = findings_array(top, "", "Findings")?;
    if findings.is_empty() {
        return Ok(Parsed::Ignored(Ignored {
            source: SECURITYHUB.to_string(),
            detail_type: IMPORTED.to_string(),
            reason: "Findings is empty: the batch carries no finding".to_string(),
        }));
    }
    let mut batch = Batch::default();
    for (i, f) in findings.iter().enumerate() {
        let path = index("Findings", i);
        let format = Format::of(f);
        match as_finding(f, &path).and_then(|obj| synthetic(obj, &path, format)) {
            Ok(fe) => batch.findings.push(fe),
            Err(error) => batch.rejected.push(Rejected {
                index: i,
                id: format.id_of(f),
                error,
            }),
        }
    }
    Ok(Parsed::Findings(batch))
}

fn synthetic(f: &Obj, path: &str, format: Format) -> Result<FindingEvent, EventError> {
    let (finding, detail_type, resources) = match format {
        Format::Asff => {
            // Real Imported events list each finding's Security Hub ARN in `resources`.
            let resources = obj_of(f, "ProductFields")
                .and_then(|p| str_of(p, "aws/securityhub/FindingId"))
                .map(|id| vec![Value::String(bounded(id, MAX_TEXT_CHARS))])
                .unwrap_or_default();
            (asff::normalize(f, path, None)?, IMPORTED, resources)
        }
        Format::Ocsf => {
            // Real V2 events list the finding's `metadata.uid` in `resources`.
            let resources = obj_of(f, "metadata")
                .and_then(|m| str_of(m, "uid"))
                .map(|id| vec![Value::String(bounded(id, MAX_TEXT_CHARS))])
                .unwrap_or_default();
            (ocsf::normalize(f, path)?, IMPORTED_V2, resources)
        }
    };
    let event = envelope::synthetic(
        SECURITYHUB,
        detail_type,
        &finding,
        resources,
        json!({ "findings": [Value::Object(f.clone())] }),
    );
    Ok(FindingEvent {
        event: event.into(),
        finding,
        custom_action: None,
        synthetic_envelope: true,
    })
}

/// The findings array at `o[key]` with the key as actually spelled, bounded to [`MAX_FINDINGS`].
fn findings_array<'a>(
    o: &'a Obj,
    path: &str,
    key: &str,
) -> Result<(String, &'a [Value]), EventError> {
    let p = join(path, key);
    let spelled = spelled(o, key).unwrap_or_else(|| key.to_string());
    match get(o, key) {
        None => Err(EventError::Missing { path: p }),
        Some(Value::Array(a)) if a.len() > MAX_FINDINGS => Err(EventError::Invalid {
            path: p,
            problem: format!(
                "has {} findings; Security Hub sends at most {MAX_FINDINGS}",
                a.len()
            ),
        }),
        Some(Value::Array(a)) => Ok((spelled, a.as_slice())),
        Some(other) => Err(EventError::WrongType {
            path: p,
            expected: "an array",
            found: kind_of(other),
        }),
    }
}

fn as_finding<'a>(f: &'a Value, path: &str) -> Result<&'a Obj, EventError> {
    f.as_object().ok_or_else(|| EventError::WrongType {
        path: path.to_string(),
        expected: "an object",
        found: kind_of(f),
    })
}

/// The custom action: `detail.actionName` / `actionDescription`, and the action ARN, which
/// EventBridge puts in the envelope's `resources`.
fn custom_action(top: &Obj, detail: &Obj) -> Result<CustomAction, EventError> {
    let arn = envelope::resources(top)
        .find(|r| r.contains(":action/custom/"))
        .map(|r| bounded(r, MAX_TEXT_CHARS));
    // Fall back to the ARN's last segment (the action id) so a nameless action still routes.
    let name = str_of(detail, "actionName")
        .or_else(|| arn.as_deref().and_then(|a| a.rsplit('/').next()))
        .map(|n| bounded(n, MAX_TEXT_CHARS))
        .ok_or_else(|| EventError::Missing {
            path: "detail.actionName".to_string(),
        })?;
    Ok(CustomAction {
        name,
        description: str_of(detail, "actionDescription").map(|d| bounded(d, MAX_TEXT_CHARS)),
        arn,
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse_value;
    use super::*;

    fn asff(id: &str, account: &str) -> Value {
        json!({
            "SchemaVersion": "2018-10-08", "Id": id, "AwsAccountId": account,
            "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub",
            "GeneratorId": "g", "Types": ["Software and Configuration Checks/X"],
            "Title": format!("title {id}"), "Severity": {"Label": "LOW", "Normalized": 1},
            "UpdatedAt": "2024-01-01T00:00:00Z"
        })
    }

    fn event(findings: Vec<Value>) -> Value {
        json!({
            "version": "0", "id": "e1", "detail-type": IMPORTED, "source": "aws.securityhub",
            "account": "999999999999", "time": "2024-01-01T00:00:00Z", "region": "eu-west-2",
            "resources": ["r"], "detail": {"findings": findings}
        })
    }

    #[test]
    fn each_finding_gets_its_own_event() {
        let p = parse_value(event(vec![
            asff("a", "111111111111"),
            asff("b", "222222222222"),
        ]));
        let Ok(Parsed::Findings(Batch {
            findings: fs,
            rejected,
        })) = p
        else {
            panic!("{p:?}")
        };
        assert_eq!(rejected, []);
        assert_eq!(fs.len(), 2);
        for (fe, (id, account)) in fs
            .iter()
            .zip([("a", "111111111111"), ("b", "222222222222")])
        {
            assert_eq!(fe.finding.id, id);
            assert_eq!(fe.finding.account, account);
            // No Region in the finding or its resources: the envelope's.
            assert_eq!(fe.finding.region, "eu-west-2");
            assert_eq!(fe.event["account"], "999999999999");
            assert_eq!(
                fe.event["detail"]["findings"].as_array().map(Vec::len),
                Some(1)
            );
            assert_eq!(fe.event["detail"]["findings"][0]["Id"], id);
            assert!(!fe.synthetic_envelope);
        }
    }

    /// One bad finding in a batch never drops the others: each finding gets its own result,
    /// and the bad one's error names its JSON path from the top of the event.
    #[test]
    fn a_bad_finding_is_rejected_alone() {
        let mut missing = asff("c", "333333333333");
        if let Some(o) = missing.as_object_mut() {
            o.remove("AwsAccountId");
        }
        let p = parse_value(event(vec![
            asff("a", "111111111111"),
            asff("b", "84534534"),
            missing,
            json!(3),
            asff("e", "555555555555"),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<&str> = p.findings().iter().map(|f| f.finding.id.as_str()).collect();
        assert_eq!(ids, ["a", "e"]);
        let rejected: Vec<(usize, Option<&str>, String)> = p
            .rejected()
            .iter()
            .map(|r| (r.index, r.id.as_deref(), r.error.to_string()))
            .collect();
        assert_eq!(
            rejected,
            [
                (
                    1,
                    Some("b"),
                    "detail.findings[1].AwsAccountId is \"84534534\"; an AWS account id is 12 digits"
                        .to_string()
                ),
                (
                    2,
                    Some("c"),
                    "detail.findings[2].AwsAccountId is missing".to_string()
                ),
                (
                    3,
                    None,
                    "detail.findings[3] is a number; expected an object".to_string()
                ),
            ]
        );
        assert_eq!(
            p.rejected()[0].to_string(),
            "finding 1 (\"b\"): detail.findings[1].AwsAccountId is \"84534534\"; an AWS account id is 12 digits"
        );
        // The same in the BatchImportFindings shape.
        let p = parse_value(json!({"Findings": [asff("a", "111111111111"), {"Id": 5}]}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.findings().len(), 1);
        assert_eq!(
            p.rejected().first().map(|r| r.error.to_string()).as_deref(),
            Some("Findings[1].Id is a number; expected a string")
        );
    }

    #[test]
    fn empty_and_oversized_batches() {
        let p = parse_value(event(vec![]));
        assert_eq!(
            p.ok()
                .and_then(|p| p.ignored().map(|i| i.reason.clone()))
                .as_deref(),
            Some("detail.findings is empty: the event carries no finding")
        );
        let p = parse_value(event(vec![json!({}); 101]));
        assert_eq!(
            p.err().map(|e| e.to_string()).as_deref(),
            Some("detail.findings has 101 findings; Security Hub sends at most 100")
        );
        let mut missing = event(vec![]);
        if let Some(d) = missing["detail"].as_object_mut() {
            d.remove("findings");
        }
        assert_eq!(
            parse_value(missing).err(),
            Some(EventError::Missing {
                path: "detail.findings".into()
            })
        );
    }

    #[test]
    fn batch_import_shape_gets_synthetic_envelopes() {
        let p = parse_value(
            json!({"Findings": [asff("a", "111111111111"), asff("b", "222222222222")]}),
        );
        let Ok(Parsed::Findings(Batch {
            findings: fs,
            rejected,
        })) = p
        else {
            panic!("{p:?}")
        };
        assert_eq!(rejected, []);
        assert_eq!(fs.len(), 2);
        let e = &fs[0].event;
        assert!(fs[0].synthetic_envelope);
        assert_eq!(e["source"], "aws.securityhub");
        assert_eq!(e["detail-type"], IMPORTED);
        assert_eq!(e["account"], "111111111111");
        assert_eq!(e["region"], "us-east-1");
        assert_eq!(e["time"], "2024-01-01T00:00:00Z");
        assert_eq!(e["detail"]["findings"][0]["Id"], "a");
    }

    #[test]
    fn custom_action_needs_a_name_or_arn() {
        let mut e = event(vec![asff("a", "111111111111")]);
        e["detail-type"] = json!(CUSTOM_ACTION);
        assert_eq!(
            parse_value(e).err(),
            Some(EventError::Missing {
                path: "detail.actionName".into()
            })
        );
    }

    #[test]
    fn custom_action_without_name_uses_arn() {
        let mut e = event(vec![asff("a", "111111111111")]);
        e["detail-type"] = json!(CUSTOM_ACTION);
        e["resources"] = json!(["arn:aws:securityhub:us-east-1:1:action/custom/isolate"]);
        let p = parse_value(e);
        let ca = p
            .ok()
            .and_then(|p| p.findings().first().and_then(|f| f.custom_action.clone()));
        assert_eq!(
            ca,
            Some(CustomAction {
                name: "isolate".into(),
                description: None,
                arn: Some("arn:aws:securityhub:us-east-1:1:action/custom/isolate".into()),
            })
        );
    }
}
