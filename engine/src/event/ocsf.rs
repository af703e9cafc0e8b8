//! One OCSF finding, as the new Security Hub emits it (`Findings Imported V2`, `GetFindingsV2`),
//! normalized into [`Finding`].
//!
//! Fields read (OCSF schema, `finding` base class and its Vulnerability (2002), Compliance (2003)
//! and Detection (2004) classes; Security Hub User Guide, "OCSF findings in Security Hub" and
//! "AWS extension for OCSF"):
//!
//! | Finding | OCSF |
//! |---|---|
//! | `id` | `finding_info.uid` |
//! | `account` | `cloud.account.uid` (the finding's, not the envelope's) |
//! | `region` | `cloud.region`, else the first resource's `region` |
//! | `type` | for GuardDuty the GuardDuty type among `finding_info.types`, else the first entry, else `class_name` |
//! | `severity`, `severity_label` | `severity_id`, see [`severity`] |
//! | `status` | `status`, else the caption of `status_id` |
//! | `resources` | `resources[].type` / `uid`, see `ocsf_resources` |
//! | `updated_at` | `finding_info.modified_time_dt`, else `time_dt`, else `finding_info.created_time_dt` |
//! | `dedup_id` | GuardDuty: the finding id in the `finding_info.uid` ARN; else `metadata.product.uid` + `/` + `finding_info.uid` |
//!
//! GuardDuty's findings are recognised by `metadata.product.uid` only (`::productv2/aws/
//! guardduty`, see `product`), never by `metadata.product.name`. No documented OCSF field carries
//! GuardDuty's sample marker, so `sample` is false here (the GuardDuty event and the ASFF copy
//! carry it).

use serde_json::Value;

use super::asff::{guardduty_finding_arn, guardduty_type_from_asff};
use super::json::{
    arr_of, bounded, checked_account, checked_region, get, join, kind_of, number, obj_of,
    require_obj, require_str, str_of, Obj, MAX_TEXT_CHARS,
};
use super::ocsf_resources::Resources;
use super::{product, EventError};
use crate::finding::{Finding, FindingSource, SeverityLabel};

/// The OCSF classes cordon reads, with their names.
const CLASSES: [(i64, &str); 3] = [
    (2002, "Vulnerability Finding"),
    (2003, "Compliance Finding"),
    (2004, "Detection Finding"),
];

/// True for a bare OCSF finding: its required `finding_info`, or a `class_uid` with `metadata`.
pub(crate) fn looks_like_finding(o: &Obj) -> bool {
    o.contains_key("finding_info") || (o.contains_key("class_uid") && o.contains_key("metadata"))
}

/// Normalizes one OCSF finding found at `path` (`detail.findings[i]`, `Findings[i]` or `""`).
pub(crate) fn normalize(f: &Obj, path: &str) -> Result<Finding, EventError> {
    class(f, path)?;
    let info_path = join(path, "finding_info");
    let info = require_obj(f, "finding_info", path)?;
    let id = require_str(info, "uid", &info_path)?;
    let cloud_path = join(path, "cloud");
    let cloud = require_obj(f, "cloud", path)?;
    let account_path = join(&cloud_path, "account");
    let account = checked_account(
        require_str(
            require_obj(cloud, "account", &cloud_path)?,
            "uid",
            &account_path,
        )?,
        join(&account_path, "uid"),
    )?;
    let product_uid = obj_of(f, "metadata")
        .and_then(|m| obj_of(m, "product"))
        .and_then(|p| str_of(p, "uid"));
    let guardduty =
        product_uid.is_some_and(|p| product::is_aws_product(p, product::OCSF, "guardduty"));
    let finding_type = finding_type(f, info, guardduty).ok_or_else(|| EventError::Missing {
        path: join(&info_path, "types"),
    })?;
    let (severity, severity_label) = severity(f, path)?;
    let mut resources = Resources::default();
    resources.read(f, path, account)?;
    let (region, region_path) = match (str_of(cloud, "region"), resources.first_region.take()) {
        (Some(r), _) => (r, join(&cloud_path, "region")),
        (None, Some(found)) => found,
        (None, None) => {
            return Err(EventError::Missing {
                path: join(&cloud_path, "region"),
            })
        }
    };
    let region = checked_region(region, region_path)?;
    // Both routes of one GuardDuty finding dedupe to one (see `asff`); other products' ids are
    // scoped by product, so an imported finding cannot borrow another product's id.
    let dedup_id = match (guardduty_finding_arn(id), product_uid) {
        (Some(arn), _) if guardduty => arn.finding_id.to_string(),
        (_, Some(product)) => format!("{product}/{id}"),
        _ => id.to_string(),
    };
    Ok(Finding {
        source: FindingSource::Securityhub,
        id: id.to_string(),
        title: bounded(
            str_of(info, "title").unwrap_or(&finding_type),
            MAX_TEXT_CHARS,
        ),
        kind: finding_type,
        severity,
        severity_label,
        account: account.to_string(),
        region: region.to_string(),
        resources: resources.list,
        updated_at: str_of(info, "modified_time_dt")
            .or_else(|| str_of(f, "time_dt"))
            .or_else(|| str_of(info, "created_time_dt"))
            .map(|s| bounded(s, 64))
            .unwrap_or_default(),
        user_name: resources.user_name,
        user_type: resources.user_type,
        dedup_id,
        status: status(f),
        sample: false,
    })
}

/// `class_uid` must be one of [`CLASSES`]; a finding with none is read as one of them.
fn class(f: &Obj, path: &str) -> Result<(), EventError> {
    let Some(v) = get(f, "class_uid") else {
        return Ok(());
    };
    let p = join(path, "class_uid");
    let n = number(v).ok_or_else(|| EventError::WrongType {
        path: p.clone(),
        expected: "a number",
        found: kind_of(v),
    })?;
    if CLASSES.iter().any(|(uid, _)| *uid as f64 == n) {
        return Ok(());
    }
    let names: Vec<String> = CLASSES
        .iter()
        .map(|(uid, name)| format!("{name} ({uid})"))
        .collect();
    Err(EventError::Invalid {
        path: p,
        problem: format!(
            "is {n}; cordon reads the OCSF finding classes {}",
            names.join(", ")
        ),
    })
}

/// For GuardDuty (by product ARN) its own type name among `finding_info.types` (entries such as
/// `Threats` may come first), written natively (`Recon:EC2/PortProbeUnprotectedPort`) or in
/// ASFF's naming; otherwise the first non-empty entry; else `class_name`.
fn finding_type(f: &Obj, info: &Obj, guardduty: bool) -> Option<String> {
    let types = || {
        arr_of(info, "types")
            .unwrap_or(&[])
            .iter()
            .filter_map(Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty())
    };
    if guardduty {
        let native = types().find(|t| is_guardduty_type(t)).map(str::to_string);
        if let Some(t) = native.or_else(|| types().find_map(guardduty_type_from_asff)) {
            return Some(bounded(&t, MAX_TEXT_CHARS));
        }
    }
    types()
        .next()
        .or_else(|| str_of(f, "class_name"))
        .map(|t| bounded(t, MAX_TEXT_CHARS))
}

/// A GuardDuty finding type name: `ThreatPurpose:ResourceTypeAffected/ThreatFamilyName...`
/// (GuardDuty User Guide, "GuardDuty finding format"): a purpose without spaces or `/`, a `:`,
/// then a resource type and a `/`.
fn is_guardduty_type(t: &str) -> bool {
    t.split_once(':').is_some_and(|(purpose, rest)| {
        !purpose.is_empty()
            && !purpose.contains([' ', '/'])
            && rest
                .split_once('/')
                .is_some_and(|(resource, family)| !resource.is_empty() && !family.is_empty())
    })
}

/// OCSF `severity_id` on cordon's 0-10 scale: the lower bound of the matching label, the same
/// bounds Security Hub uses to turn an ASFF `Label` into `Normalized` (Security Hub API
/// Reference, `Severity`: INFORMATIONAL 0, LOW 1, MEDIUM 40, HIGH 70, CRITICAL 90), so an OCSF
/// finding scores what its ASFF twin with the same label does:
///
/// | `severity_id` (OCSF caption) | score | label |
/// |---|---|---|
/// | 1 Informational | 0.0 | LOW |
/// | 2 Low | 1.0 | LOW |
/// | 3 Medium | 4.0 | MEDIUM |
/// | 4 High | 7.0 | HIGH |
/// | 5 Critical | 9.0 | CRITICAL |
/// | 6 Fatal | 10.0 | CRITICAL |
/// | 0 Unknown, 99 Other | from `severity` when it names one of the captions above, else 0.0 | LOW |
///
/// The OCSF captions and ids are the schema's `severity_id` enum. An unknown severity reads as
/// the lowest, so it never passes a severity threshold on its own.
fn severity(f: &Obj, path: &str) -> Result<(f64, SeverityLabel), EventError> {
    let by_caption = |c: &str| -> Option<(f64, SeverityLabel)> {
        Some(match c.trim().to_ascii_lowercase().as_str() {
            "informational" => (0.0, SeverityLabel::Low),
            "low" => (1.0, SeverityLabel::Low),
            "medium" => (4.0, SeverityLabel::Medium),
            "high" => (7.0, SeverityLabel::High),
            "critical" => (9.0, SeverityLabel::Critical),
            "fatal" => (10.0, SeverityLabel::Critical),
            _ => return None,
        })
    };
    let caption = str_of(f, "severity");
    let p = join(path, "severity_id");
    let Some(v) = get(f, "severity_id") else {
        return caption
            .and_then(by_caption)
            .ok_or(EventError::Missing { path: p });
    };
    let n = number(v).ok_or_else(|| EventError::WrongType {
        path: p.clone(),
        expected: "a number",
        found: kind_of(v),
    })?;
    let id = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0, 99.0]
        .iter()
        .position(|x| *x == n)
        .ok_or_else(|| EventError::Invalid {
            path: p,
            problem: format!("is {n}; OCSF severity_id is 0 to 6 or 99"),
        })?;
    const CAPTIONS: [&str; 6] = [
        "informational",
        "low",
        "medium",
        "high",
        "critical",
        "fatal",
    ];
    Ok(match CAPTIONS.get(id) {
        Some(c) => by_caption(c).unwrap_or((0.0, SeverityLabel::Low)),
        None => caption
            .and_then(by_caption)
            .unwrap_or((0.0, SeverityLabel::Low)),
    })
}

/// `status`, else the OCSF caption of `status_id` (`finding` class: 1 New, 2 In Progress,
/// 3 Suppressed, 4 Resolved, 5 Archived, 6 Deleted).
fn status(f: &Obj) -> Option<String> {
    if let Some(s) = str_of(f, "status") {
        return Some(bounded(s, 64));
    }
    let caption = match get(f, "status_id").and_then(number)? as i64 {
        1 => "New",
        2 => "In Progress",
        3 => "Suppressed",
        4 => "Resolved",
        5 => "Archived",
        6 => "Deleted",
        _ => return None,
    };
    Some(caption.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Obj {
        match v {
            Value::Object(m) => m,
            _ => Obj::new(),
        }
    }

    #[test]
    fn severity_ids_map_to_label_bounds() {
        for (input, want) in [
            (json!({"severity_id": 1}), (0.0, SeverityLabel::Low)),
            (json!({"severity_id": 2}), (1.0, SeverityLabel::Low)),
            (json!({"severity_id": 3}), (4.0, SeverityLabel::Medium)),
            (json!({"severity_id": 4}), (7.0, SeverityLabel::High)),
            (json!({"severity_id": 5}), (9.0, SeverityLabel::Critical)),
            (json!({"severity_id": 6}), (10.0, SeverityLabel::Critical)),
            (json!({"severity_id": 0}), (0.0, SeverityLabel::Low)),
            (
                json!({"severity_id": 99, "severity": "High"}),
                (7.0, SeverityLabel::High),
            ),
            (
                json!({"severity_id": 99, "severity": "Sev-A"}),
                (0.0, SeverityLabel::Low),
            ),
            (
                json!({"severity": "critical"}),
                (9.0, SeverityLabel::Critical),
            ),
        ] {
            assert_eq!(
                severity(&obj(input.clone()), "").ok(),
                Some(want),
                "{input}"
            );
        }
        let err = |v: Value| severity(&obj(v), "x").err().map(|e| e.to_string());
        assert_eq!(
            err(json!({"severity_id": 7})).as_deref(),
            Some("x.severity_id is 7; OCSF severity_id is 0 to 6 or 99")
        );
        assert_eq!(
            err(json!({"severity_id": "High"})).as_deref(),
            Some("x.severity_id is a string; expected a number")
        );
        assert_eq!(err(json!({})).as_deref(), Some("x.severity_id is missing"));
    }

    #[test]
    fn guardduty_type_is_found_among_types() {
        let info =
            obj(json!({"types": ["Threats", "AttackSequence:EC2/CompromisedInstanceGroup"]}));
        assert_eq!(
            finding_type(&Obj::new(), &info, true).as_deref(),
            Some("AttackSequence:EC2/CompromisedInstanceGroup")
        );
        // Not GuardDuty's: the first entry, whatever it looks like.
        assert_eq!(
            finding_type(&Obj::new(), &info, false).as_deref(),
            Some("Threats")
        );
        let info = obj(json!({"types": ["TTPs/Discovery/Recon:EC2-PortProbeUnprotectedPort"]}));
        assert_eq!(
            finding_type(&Obj::new(), &info, true).as_deref(),
            Some("Recon:EC2/PortProbeUnprotectedPort")
        );
        let none = obj(json!({"types": []}));
        let f = obj(json!({"class_name": "Detection Finding"}));
        assert_eq!(
            finding_type(&f, &none, true).as_deref(),
            Some("Detection Finding")
        );
        assert_eq!(finding_type(&Obj::new(), &none, true), None);
    }

    #[test]
    fn other_classes_are_named_and_refused() {
        let err = class(&obj(json!({"class_uid": 2006})), "detail.findings[0]").err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some("detail.findings[0].class_uid is 2006; cordon reads the OCSF finding classes Vulnerability Finding (2002), Compliance Finding (2003), Detection Finding (2004)")
        );
    }

    #[test]
    fn status_falls_back_to_the_id_caption() {
        assert_eq!(
            status(&obj(json!({"status_id": 3}))).as_deref(),
            Some("Suppressed")
        );
        assert_eq!(
            status(&obj(json!({"status": "New", "status_id": 3}))).as_deref(),
            Some("New")
        );
        assert_eq!(status(&obj(json!({"status_id": 42}))), None);
    }
}
