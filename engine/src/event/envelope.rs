//! The EventBridge envelope: recognising it, routing on `source`/`detail-type`, and building a
//! synthetic one around a bare finding.

use serde_json::{json, Value};

use super::json::{bounded, get, require_obj, require_str, str_of, Obj};
use super::{guardduty, securityhub, EventError, Ignored, Parsed};
use crate::finding::Finding;

/// `source` of GuardDuty events.
pub(crate) const GUARDDUTY: &str = "aws.guardduty";
/// `source` of Security Hub events.
pub(crate) const SECURITYHUB: &str = "aws.securityhub";

/// True for an object shaped like an EventBridge event. `detail-type` is unique to envelopes;
/// `source` + `detail` also counts so that an envelope missing its `detail-type` gets a precise
/// "detail-type is missing" rather than "unknown shape".
pub(crate) fn is_envelope(top: &Obj) -> bool {
    top.contains_key("detail-type") || (top.contains_key("source") && top.contains_key("detail"))
}

/// The envelope fields the readers need.
pub(crate) struct Envelope<'a> {
    /// `detail-type`.
    pub detail_type: &'a str,
    /// `region`, the fallback when a finding names none.
    pub region: Option<&'a str>,
    /// `detail`.
    pub detail: &'a Obj,
}

/// Routes an EventBridge event on `source` and `detail-type`.
pub(crate) fn parse(value: Value) -> Result<Parsed, EventError> {
    let Value::Object(top) = &value else {
        return Err(EventError::UnknownShape {
            seen: "a non-object envelope".to_string(),
        });
    };
    let source = require_str(top, "source", "")?;
    let detail_type = require_str(top, "detail-type", "")?;
    let ignored = |reason: String| {
        Ok(Parsed::Ignored(Ignored {
            source: bounded(source, 128),
            detail_type: bounded(detail_type, 128),
            reason,
        }))
    };
    match source {
        GUARDDUTY if detail_type == guardduty::DETAIL_TYPE => {
            let env = read(top, detail_type)?;
            let finding = guardduty::normalize(env.detail, "detail", env.region)?;
            Ok(Parsed::one(super::FindingEvent {
                event: value.into(),
                finding,
                custom_action: None,
                synthetic_envelope: false,
            }))
        }
        GUARDDUTY if detail_type == "AWS API Call via CloudTrail" => ignored(
            "AWS API Call via CloudTrail is a CloudTrail record of a call to the GuardDuty API, \
             not a finding"
                .to_string(),
        ),
        GUARDDUTY => ignored(format!(
            "{:?} is a GuardDuty status event, not a finding; only \"{}\" events carry findings",
            bounded(detail_type, 128),
            guardduty::DETAIL_TYPE
        )),
        SECURITYHUB
            if detail_type == securityhub::IMPORTED
                || detail_type == securityhub::CUSTOM_ACTION
                || detail_type == securityhub::IMPORTED_V2 =>
        {
            let env = read(top, detail_type)?;
            securityhub::from_event(top, &env)
        }
        SECURITYHUB if detail_type == securityhub::INSIGHT_RESULTS => ignored(
            "Security Hub Insight Results carry an insight's aggregated counts, not findings"
                .to_string(),
        ),
        SECURITYHUB => ignored(format!(
            "{:?} is not a Security Hub findings event; only \"{}\", \"{}\" and \"{}\" carry \
             findings",
            bounded(detail_type, 128),
            securityhub::IMPORTED,
            securityhub::CUSTOM_ACTION,
            securityhub::IMPORTED_V2
        )),
        other => Err(EventError::UnknownShape {
            seen: format!(
                "an EventBridge event from source {:?} (detail-type {:?})",
                bounded(other, 64),
                bounded(detail_type, 64)
            ),
        }),
    }
}

fn read<'a>(top: &'a Obj, detail_type: &'a str) -> Result<Envelope<'a>, EventError> {
    Ok(Envelope {
        detail_type,
        region: str_of(top, "region"),
        detail: require_obj(top, "detail", "")?,
    })
}

/// The envelope's `resources` strings (non-strings skipped).
pub(crate) fn resources(top: &Obj) -> impl Iterator<Item = &str> {
    get(top, "resources")
        .and_then(Value::as_array)
        .map(|a| a.as_slice())
        .unwrap_or(&[])
        .iter()
        .filter_map(Value::as_str)
}

/// A synthetic EventBridge envelope around a bare finding, so that patterns written for real
/// events (`source`, `detail-type`, `account`, `region`, `detail.*`) match it. `account` is the
/// finding's account: with no real envelope there is no delegated administrator to name.
pub(crate) fn synthetic(
    source: &str,
    detail_type: &str,
    finding: &Finding,
    resources: Vec<Value>,
    detail: Value,
) -> Value {
    json!({
        "version": "0",
        "detail-type": detail_type,
        "source": source,
        "account": finding.account,
        "time": finding.updated_at,
        "region": finding.region,
        "resources": resources,
        "detail": detail,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{parse_value, EventError, Parsed};
    use serde_json::json;

    #[test]
    fn guardduty_status_events_are_ignored_with_reason() {
        let p = parse_value(json!({
            "source": "aws.guardduty", "detail-type": "GuardDuty Malware Protection Object Scan Result",
            "detail": {}
        }));
        let Ok(Parsed::Ignored(i)) = p else {
            panic!("expected Ignored, got {p:?}")
        };
        assert_eq!(i.source, "aws.guardduty");
        assert_eq!(
            i.reason,
            "\"GuardDuty Malware Protection Object Scan Result\" is a GuardDuty status event, not \
             a finding; only \"GuardDuty Finding\" events carry findings"
        );
    }

    #[test]
    fn insight_results_are_ignored() {
        let p = parse_value(json!({
            "source": "aws.securityhub", "detail-type": "Security Hub Insight Results",
            "detail": {"insightName": "x", "resultType": "ResourceAwsEc2InstanceId", "insightResults": []}
        }));
        let Ok(Parsed::Ignored(i)) = p else {
            panic!("expected Ignored, got {p:?}")
        };
        assert!(
            i.reason.starts_with("Security Hub Insight Results carry"),
            "{}",
            i.reason
        );
    }

    #[test]
    fn other_sources_are_unknown_shapes() {
        let p = parse_value(
            json!({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {}}),
        );
        assert_eq!(
            p.err(),
            Some(EventError::UnknownShape {
                seen: "an EventBridge event from source \"aws.ec2\" (detail-type \"EC2 Instance \
                       State-change Notification\")"
                    .to_string()
            })
        );
    }

    #[test]
    fn envelope_field_errors_name_the_field() {
        let p = parse_value(json!({"source": "aws.guardduty", "detail": {}}));
        assert_eq!(
            p.err().map(|e| e.to_string()).as_deref(),
            Some("detail-type is missing")
        );
        let p = parse_value(
            json!({"source": "aws.guardduty", "detail-type": "GuardDuty Finding", "detail": []}),
        );
        assert_eq!(
            p.err().map(|e| e.to_string()).as_deref(),
            Some("detail is an array; expected an object")
        );
        let p = parse_value(json!({"source": 7, "detail-type": "GuardDuty Finding"}));
        assert_eq!(
            p.err().map(|e| e.to_string()).as_deref(),
            Some("source is a number; expected a string")
        );
    }
}
