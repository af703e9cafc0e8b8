//! One ASFF (AWS Security Finding Format) finding normalized into [`Finding`], including
//! GuardDuty findings seen through Security Hub.
//!
//! GuardDuty findings in Security Hub: `ProductArn` ends in `product/aws/guardduty`, `Id` is the
//! GuardDuty finding ARN (`arn:aws:guardduty:REGION:ACCOUNT:detector/D/finding/ID`), and the
//! GuardDuty type travels in `Types` with ASFF's namespace and its first `/` turned into `-`
//! (GuardDuty guide, "Interpreting GuardDuty finding names in Security Hub":
//! `Recon:EC2/PortProbeUnprotectedPort` is `TTPs/Discovery/Recon:EC2-PortProbeUnprotectedPort`).
//! `ProductFields` holds `aws/guardduty/service/...` (action, counts, remote IP) but not the
//! type, and `Title` is prose, so `Types` is where the type is recovered from.

use serde_json::Value;

use super::asff_resources::Resources;
use super::json::{
    arn_region, arr_of, bounded, checked_account, checked_region, get, join, kind_of, number,
    obj_of, require_str, str_of, Obj, MAX_TEXT_CHARS,
};
use super::EventError;
use super::{guardduty, product};
use crate::finding::{Finding, FindingSource, SeverityLabel};

/// True for a bare ASFF finding: its PascalCase required keys (GuardDuty's are camelCase).
pub(crate) fn looks_like_finding(o: &Obj) -> bool {
    ["SchemaVersion", "ProductArn", "AwsAccountId", "GeneratorId"]
        .iter()
        .any(|k| o.contains_key(*k))
}

/// The parts of a GuardDuty finding ARN.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct GuardDutyArn<'a> {
    /// The detector id.
    pub detector: &'a str,
    /// The GuardDuty finding id (what GuardDuty events carry as `detail.id`).
    pub finding_id: &'a str,
}

/// Parses `arn:PARTITION:guardduty:REGION:ACCOUNT:detector/D/finding/ID`.
pub(crate) fn guardduty_finding_arn(id: &str) -> Option<GuardDutyArn<'_>> {
    let mut parts = id.splitn(6, ':');
    let (arn, partition, service) = (parts.next()?, parts.next()?, parts.next()?);
    let (_region, _account, resource) = (parts.next()?, parts.next()?, parts.next()?);
    if arn != "arn" || !partition.starts_with("aws") || service != "guardduty" {
        return None;
    }
    let mut segs = resource.split('/');
    match (
        segs.next(),
        segs.next(),
        segs.next(),
        segs.next(),
        segs.next(),
    ) {
        (Some("detector"), Some(detector), Some("finding"), Some(finding_id), None)
            if !detector.is_empty() && !finding_id.is_empty() =>
        {
            Some(GuardDutyArn {
                detector,
                finding_id,
            })
        }
        _ => None,
    }
}

/// The GuardDuty finding type inside an ASFF `Types` entry, e.g.
/// `TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce` gives
/// `UnauthorizedAccess:EC2/SSHBruteForce`. The GuardDuty type is the last path segment holding
/// a `:`; Security Hub wrote its first `/` as `-` (resource types such as `EC2` or `IAMUser`
/// contain no `-`), except for a few types documented with the `/` kept
/// (`TTPs/PenTest:IAMUser/KaliLinux`), which are returned as they are.
pub fn guardduty_type_from_asff(asff_type: &str) -> Option<String> {
    let colon = asff_type.find(':')?;
    let start = asff_type
        .get(..colon)?
        .rfind('/')
        .map_or(0, |slash| slash + 1);
    let candidate = asff_type.get(start..)?;
    let (purpose, rest) = candidate.split_once(':')?;
    if purpose.is_empty() || purpose.contains(' ') || rest.is_empty() {
        return None;
    }
    if rest.contains('/') {
        return Some(candidate.to_string());
    }
    let (resource, family) = rest.split_once('-')?;
    if resource.is_empty() || family.is_empty() {
        return None;
    }
    Some(format!("{purpose}:{resource}/{family}"))
}

/// True when the ASFF finding was produced by GuardDuty's Security Hub integration. Only
/// `ProductArn` counts (see `product`): `BatchImportFindings` lets a custom integration choose
/// `Id`, `ProductName`, `CompanyName` and `ProductFields` but not GuardDuty's product ARN, so a
/// forged finding can neither pass for GuardDuty's nor borrow a real GuardDuty finding's dedup id
/// (and suppress it) by copying its ARN into `Id`.
fn from_guardduty(f: &Obj) -> bool {
    str_of(f, "ProductArn").is_some_and(|p| product::is_aws_product(p, product::ASFF, "guardduty"))
}

/// Normalizes one ASFF finding found at `path` (`detail.findings[i]`, `Findings[i]` or `""`).
/// `envelope_region` is the EventBridge envelope's `region`, a fallback when neither the finding
/// nor its resources name one.
pub(crate) fn normalize(
    f: &Obj,
    path: &str,
    envelope_region: Option<&str>,
) -> Result<Finding, EventError> {
    let id = require_str(f, "Id", path)?;
    let account = checked_account(
        require_str(f, "AwsAccountId", path)?,
        join(path, "AwsAccountId"),
    )?;
    let guardduty = from_guardduty(f);
    let (severity, severity_label) = severity(f, path, guardduty)?;
    let finding_type = finding_type(f, guardduty).ok_or_else(|| EventError::Missing {
        path: join(path, "Types"),
    })?;
    let mut resources = Resources::default();
    resources.read(f, path, account)?;
    let (region, region_path) = region(f, path, resources.first_region.take(), envelope_region)?;
    let region = checked_region(region, region_path)?;
    // Both routes of one GuardDuty finding must dedupe to one: the GuardDuty event's `id` is
    // the trailing ID of the ARN that Security Hub uses as `Id`.
    // ASFF ids are unique per product only: scoping by ProductArn stops an imported finding
    // from borrowing another product's id to suppress it.
    let dedup_id = match (guardduty_finding_arn(id), str_of(f, "ProductArn")) {
        (Some(arn), _) if guardduty => arn.finding_id.to_string(),
        (_, Some(product)) => format!("{product}/{id}"),
        _ => id.to_string(),
    };
    let product_fields = obj_of(f, "ProductFields");
    Ok(Finding {
        source: FindingSource::Securityhub,
        id: id.to_string(),
        title: bounded(str_of(f, "Title").unwrap_or(&finding_type), MAX_TEXT_CHARS),
        kind: finding_type,
        severity,
        severity_label,
        account: account.to_string(),
        region: region.to_string(),
        resources: resources.list,
        updated_at: str_of(f, "UpdatedAt")
            .or_else(|| str_of(f, "CreatedAt"))
            .map(|s| bounded(s, 64))
            .unwrap_or_default(),
        user_name: resources.user_name,
        user_type: resources.user_type,
        dedup_id,
        status: obj_of(f, "Workflow")
            .and_then(|w| str_of(w, "Status"))
            .or_else(|| str_of(f, "WorkflowState"))
            .map(|s| bounded(s, 64)),
        sample: guardduty && product_fields.is_some_and(sample_marker),
    })
}

/// The finding's region and the path it was read at: `Region`, else its first resource's,
/// else the envelope's, else the `ProductArn`'s.
fn region<'a>(
    f: &'a Obj,
    path: &str,
    first_resource: Option<(&'a str, String)>,
    envelope_region: Option<&'a str>,
) -> Result<(&'a str, String), EventError> {
    if let Some(r) = str_of(f, "Region") {
        return Ok((r, join(path, "Region")));
    }
    if let Some(found) = first_resource {
        return Ok(found);
    }
    if let Some(r) = envelope_region {
        return Ok((r, "region".to_string()));
    }
    str_of(f, "ProductArn")
        .and_then(arn_region)
        .map(|r| (r, join(path, "ProductArn")))
        .ok_or_else(|| EventError::Missing {
            path: join(path, "Region"),
        })
}

/// GuardDuty's sample marker as its Security Hub integration flattens `service.additionalInfo`
/// into `ProductFields` (string values, `/`-separated keys):
/// `aws/guardduty/service/additionalInfo/sample` = `"true"`, or the JSON string form in
/// `aws/guardduty/service/additionalInfo/value`.
fn sample_marker(fields: &Obj) -> bool {
    const PREFIX: &str = "aws/guardduty/service/additionalInfo/";
    get(fields, &format!("{PREFIX}sample"))
        .and_then(Value::as_str)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || str_of(fields, &format!("{PREFIX}value")).is_some_and(guardduty::json_says_sample)
}

/// The GuardDuty type for GuardDuty findings, else the first `Types` entry, else `GeneratorId`.
/// `FindingProviderFields.Types` is the provider's original when `Types` was cleared.
fn finding_type(f: &Obj, guardduty: bool) -> Option<String> {
    let provider_types = obj_of(f, "FindingProviderFields").and_then(|p| arr_of(p, "Types"));
    let types = || {
        arr_of(f, "Types")
            .unwrap_or(&[])
            .iter()
            .chain(provider_types.unwrap_or(&[]))
            .filter_map(Value::as_str)
    };
    if guardduty {
        if let Some(t) = types().find_map(guardduty_type_from_asff) {
            return Some(bounded(&t, MAX_TEXT_CHARS));
        }
    }
    types()
        .map(str::trim)
        .find(|t| !t.is_empty())
        .or_else(|| str_of(f, "GeneratorId"))
        .map(|t| bounded(t, MAX_TEXT_CHARS))
}

/// Severity on the 0-10 scale and its label. For GuardDuty findings, GuardDuty's own score when
/// `Product` holds one (0-10); otherwise `Normalized`/10, else the lower bound of `Label`
/// (Security Hub's own Label-to-Normalized table: INFORMATIONAL 0, LOW 1, MEDIUM 40, HIGH 70,
/// CRITICAL 90). The label is `Label` when present (INFORMATIONAL folds into LOW), else derived
/// from the score.
fn severity(f: &Obj, path: &str, guardduty: bool) -> Result<(f64, SeverityLabel), EventError> {
    let (sev, sev_path) = match obj_of(f, "Severity") {
        Some(s) => (s, join(path, "Severity")),
        None => match obj_of(f, "FindingProviderFields").and_then(|p| obj_of(p, "Severity")) {
            Some(s) => (s, join(path, "FindingProviderFields.Severity")),
            None => {
                return Err(EventError::Missing {
                    path: join(path, "Severity"),
                })
            }
        },
    };
    let label = match get(sev, "Label") {
        None => None,
        Some(Value::String(s)) => Some(label_bound(s).ok_or_else(|| EventError::Invalid {
            path: join(&sev_path, "Label"),
            problem: format!(
                "is {:?}; expected INFORMATIONAL, LOW, MEDIUM, HIGH or CRITICAL",
                bounded(s, 32)
            ),
        })?),
        Some(other) => {
            return Err(EventError::WrongType {
                path: join(&sev_path, "Label"),
                expected: "a string",
                found: kind_of(other),
            })
        }
    };
    let ranged = |key: &str, max: f64| -> Result<Option<f64>, EventError> {
        let Some(v) = get(sev, key) else {
            return Ok(None);
        };
        match number(v) {
            Some(n) if (0.0..=max).contains(&n) => Ok(Some(n)),
            Some(n) => Err(EventError::Invalid {
                path: join(&sev_path, key),
                problem: format!("is {n}, outside 0-{max}"),
            }),
            None => Err(EventError::WrongType {
                path: join(&sev_path, key),
                expected: "a number",
                found: kind_of(v),
            }),
        }
    };
    // `Product` is the provider's own scale (Security Hub API Reference, `Severity.Product`: "the
    // native severity as defined by the AWS service or integrated partner product"), so it is
    // never checked against 0-10 and never decides on its own. GuardDuty's native scale is
    // cordon's: for a GuardDuty finding (by product ARN) a `Product` within 0-10 is GuardDuty's
    // own score, so that the GuardDuty event and its Security Hub copy get the same severity
    // (AWS's sample has Product 2 but Normalized 40); anything else there is ignored.
    if guardduty {
        if let Some(p) = get(sev, "Product")
            .and_then(number)
            .filter(|p| (0.0..=10.0).contains(p))
        {
            return Ok((p, SeverityLabel::from_score(p)));
        }
    }
    let score = match (ranged("Normalized", 100.0)?, label) {
        (Some(n), _) => n / 10.0,
        (None, Some((_, bound))) => bound,
        (None, None) => {
            return Err(EventError::Missing {
                path: join(&sev_path, "Label"),
            })
        }
    };
    let label = label.map_or_else(|| SeverityLabel::from_score(score), |(l, _)| l);
    Ok((score, label))
}

/// An ASFF label and its lower bound on the 0-10 scale.
fn label_bound(label: &str) -> Option<(SeverityLabel, f64)> {
    match label.trim().to_ascii_uppercase().as_str() {
        "INFORMATIONAL" => Some((SeverityLabel::Low, 0.0)),
        "LOW" => Some((SeverityLabel::Low, 1.0)),
        "MEDIUM" => Some((SeverityLabel::Medium, 4.0)),
        "HIGH" => Some((SeverityLabel::High, 7.0)),
        "CRITICAL" => Some((SeverityLabel::Critical, 9.0)),
        _ => None,
    }
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

    fn base() -> Value {
        json!({
            "SchemaVersion": "2018-10-08", "Id": "finding-1", "AwsAccountId": "123456789012",
            "ProductArn": "arn:aws:securityhub:eu-west-1::product/acme/scanner",
            "GeneratorId": "acme-rule-7", "Title": "t", "Types": [],
            "Severity": {"Label": "HIGH"}, "UpdatedAt": "2024-01-01T00:00:00Z"
        })
    }

    #[test]
    fn guardduty_types_are_recovered_from_asff_types() {
        for (asff, gd) in [
            ("TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce", "UnauthorizedAccess:EC2/SSHBruteForce"),
            ("TTPs/Discovery/Recon:EC2-PortProbeUnprotectedPort", "Recon:EC2/PortProbeUnprotectedPort"),
            ("TTPs/Command and Control/Backdoor:EC2-C&CActivity.B!DNS", "Backdoor:EC2/C&CActivity.B!DNS"),
            ("TTPs/PenTest:IAMUser/KaliLinux", "PenTest:IAMUser/KaliLinux"),
            ("Effects/Data Exfiltration/UnauthorizedAccess:IAMUser-InstanceCredentialExfiltration.OutsideAWS",
             "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"),
            ("TTPs/Discovery:S3-MaliciousIPCaller", "Discovery:S3/MaliciousIPCaller"),
        ] {
            assert_eq!(guardduty_type_from_asff(asff).as_deref(), Some(gd), "{asff}");
        }
        for not_gd in [
            "Software and Configuration Checks/Industry and Regulatory Standards/CIS",
            "TTPs/Initial Access:",
            ":",
            "",
        ] {
            assert_eq!(guardduty_type_from_asff(not_gd), None, "{not_gd}");
        }
    }

    #[test]
    fn guardduty_arn_parts() {
        let a = guardduty_finding_arn(
            "arn:aws-us-gov:guardduty:us-gov-west-1:1:detector/d1/finding/f1",
        );
        assert_eq!(
            a,
            Some(GuardDutyArn {
                detector: "d1",
                finding_id: "f1"
            })
        );
        assert_eq!(
            guardduty_finding_arn("arn:aws:guardduty:us-east-1:1:detector/d1"),
            None
        );
        assert_eq!(
            guardduty_finding_arn("arn:aws:securityhub:us-east-1:1:detector/d/finding/f"),
            None
        );
        assert_eq!(
            guardduty_finding_arn("arn:aws:guardduty:r:1:detector/d/finding/f/extra"),
            None
        );
    }

    #[test]
    fn severity_order_and_label_folding() {
        let cases = [
            (json!({"Label": "INFORMATIONAL"}), 0.0, SeverityLabel::Low),
            (json!({"Label": "medium"}), 4.0, SeverityLabel::Medium),
            (json!({"Label": "CRITICAL"}), 9.0, SeverityLabel::Critical),
            (
                json!({"Normalized": 39, "Label": "LOW"}),
                3.9,
                SeverityLabel::Low,
            ),
            (json!({"Normalized": 75}), 7.5, SeverityLabel::High),
            // Product is a vendor scale, used only for GuardDuty (see below).
            (
                json!({"Product": 9, "Label": "LOW"}),
                1.0,
                SeverityLabel::Low,
            ),
        ];
        for (sev, score, label) in cases {
            let mut f = base();
            f["Severity"] = sev.clone();
            assert_eq!(
                severity(&obj(f), "", false).ok(),
                Some((score, label)),
                "{sev}"
            );
        }
        let mut f = base();
        f["Severity"] = json!({"Product": 8});
        assert_eq!(
            severity(&obj(f), "", true).ok(),
            Some((8.0, SeverityLabel::High))
        );
        // `Product` is the provider's native scale: a value outside GuardDuty's 0-10 (or not a
        // number) is not an error, and Label/Normalized decide.
        for product in [json!(70), json!(-1), json!("high"), json!(null)] {
            for guardduty in [true, false] {
                let mut f = base();
                f["Severity"] = json!({"Product": product, "Label": "HIGH"});
                assert_eq!(
                    severity(&obj(f.clone()), "", guardduty).ok(),
                    Some((7.0, SeverityLabel::High)),
                    "{product} {guardduty}"
                );
                f["Severity"] = json!({"Product": product, "Label": "HIGH", "Normalized": 80});
                assert_eq!(
                    severity(&obj(f), "", guardduty).ok(),
                    Some((8.0, SeverityLabel::High)),
                    "{product} {guardduty}"
                );
            }
        }
    }

    #[test]
    fn severity_errors_name_the_path() {
        let mut f = base();
        f["Severity"] = json!({"Label": "SEVERE"});
        assert_eq!(
            severity(&obj(f), "detail.findings[0]", false).err().map(|e| e.to_string()).as_deref(),
            Some("detail.findings[0].Severity.Label is \"SEVERE\"; expected INFORMATIONAL, LOW, MEDIUM, HIGH or CRITICAL")
        );
        let mut f = base();
        f["Severity"] = json!({"Normalized": 900});
        assert_eq!(
            severity(&obj(f), "", false)
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("Severity.Normalized is 900, outside 0-100")
        );
        let mut f = base();
        f["Severity"] = json!({});
        assert_eq!(
            severity(&obj(f), "", false).err(),
            Some(EventError::Missing {
                path: "Severity.Label".into()
            })
        );
    }

    #[test]
    fn type_falls_back_to_generator_id() {
        let f = normalize(&obj(base()), "", None).ok();
        assert_eq!(f.as_ref().map(|f| f.kind.as_str()), Some("acme-rule-7"));
        // No Region anywhere: the ProductArn's region.
        assert_eq!(f.as_ref().map(|f| f.region.as_str()), Some("eu-west-1"));
        // ASFF ids are unique per product: the dedup id is scoped by ProductArn.
        assert_eq!(
            f.as_ref().map(|f| f.dedup_id.as_str()),
            Some("arn:aws:securityhub:eu-west-1::product/acme/scanner/finding-1")
        );
    }

    #[test]
    fn resources_map_to_cordon_kinds() {
        let mut f = base();
        f["Resources"] = json!([
            {"Type": "AwsIamRole", "Id": "arn:aws:iam::1:role/path/app-role", "Region": "us-west-2"},
            {"Type": "AwsIamUser", "Id": "arn:aws:iam::1:user/bob"},
            {"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::my-bucket", "Tags": {"env": "prod"}},
            {"Type": "AwsEksCluster", "Id": "arn:aws:eks:us-west-2:1:cluster/c1"},
            {"Type": "AwsEc2Instance", "Id": "i-0abc"},
            {"Type": "AwsIamAccessKey", "Id": "AWS::IAM::AccessKey:AKIAX",
             "Details": {"AwsIamAccessKey": {"UserName": "bob", "PrincipalType": "IAMUser"}}},
            {"Type": "AwsLambdaFunction", "Id": "arn:aws:lambda:us-west-2:1:function:f"},
            {"Type": "AwsAccount"},
            "not an object is an error"
        ]);
        let err = normalize(&obj(f.clone()), "Findings[3]", None).err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some("Findings[3].Resources[8] is a string; expected an object")
        );
        if let Some(list) = f["Resources"].as_array_mut() {
            list.pop();
        }
        let found = normalize(&obj(f), "", None).map(|f| {
            (
                f.region.clone(),
                f.user_name.clone(),
                f.resources
                    .iter()
                    .map(|r| (r.kind.clone(), r.id.clone()))
                    .collect::<Vec<_>>(),
                f.resources
                    .get(2)
                    .and_then(|r| r.attributes.get("tag:env").cloned()),
            )
        });
        let expected = [
            ("IamRole", "app-role"),
            ("IamUser", "bob"),
            ("S3Bucket", "my-bucket"),
            ("EKSCluster", "c1"),
            ("Instance", "i-0abc"),
            ("AccessKey", "AKIAX"),
            ("IamUser", "bob"),
            ("AwsLambdaFunction", "arn:aws:lambda:us-west-2:1:function:f"),
        ]
        .map(|(k, i)| (k.to_string(), i.to_string()));
        assert_eq!(
            found.ok(),
            Some((
                "us-west-2".to_string(),
                Some("bob".to_string()),
                expected.to_vec(),
                Some("prod".to_string())
            ))
        );
    }

    #[test]
    fn guardduty_arn_id_dedupes_only_for_the_guardduty_product() {
        let gd_arn = "arn:aws:guardduty:us-east-1:1:detector/d/finding/f1";
        let mut f = base();
        f["Id"] = json!(gd_arn);
        f["Types"] = json!(["TTPs/Discovery/Recon:EC2-Portscan"]);
        // An imported finding copying a GuardDuty ARN keeps its own product-scoped Id as dedup id.
        let forged = normalize(&obj(f.clone()), "", None).ok();
        let scoped = format!("arn:aws:securityhub:eu-west-1::product/acme/scanner/{gd_arn}");
        assert_eq!(
            forged.as_ref().map(|f| f.dedup_id.as_str()),
            Some(scoped.as_str())
        );
        assert_eq!(
            forged.as_ref().map(|f| f.kind.as_str()),
            Some("TTPs/Discovery/Recon:EC2-Portscan")
        );
        f["ProductArn"] = json!("arn:aws:securityhub:us-east-1::product/aws/guardduty");
        let real = normalize(&obj(f), "", None).ok();
        assert_eq!(real.as_ref().map(|f| f.dedup_id.as_str()), Some("f1"));
        assert_eq!(
            real.as_ref().map(|f| f.kind.as_str()),
            Some("Recon:EC2/Portscan")
        );
    }

    #[test]
    fn required_asff_fields_are_named() {
        let mut f = base();
        if let Some(o) = f.as_object_mut() {
            o.remove("AwsAccountId");
        }
        assert_eq!(
            normalize(&obj(f), "detail.findings[2]", None)
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("detail.findings[2].AwsAccountId is missing")
        );
    }
}
