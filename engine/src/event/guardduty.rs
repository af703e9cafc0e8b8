//! GuardDuty findings (the `detail` of a `GuardDuty Finding` event, or bare finding JSON as
//! exported or returned by `GetFindings`) normalized into [`Finding`], and GuardDuty's sample
//! marker.
//!
//! Field names follow the GuardDuty finding format (camelCase: `accountId`, `resource.
//! resourceType`, `accessKeyDetails.userName`...). For an `AssumedRole` access key,
//! `accessKeyDetails.userName` is the role's name: GuardDuty's remediation guide says "if a role
//! was used the User name field will contain information about the name of the role used".

use std::collections::BTreeMap;

use serde_json::Value;

use super::envelope::{self, GUARDDUTY};
use super::json::{
    arn_region, arn_tail, arr_of, bounded, checked_account, checked_region, get, join, kind_of,
    number, obj_of, put, put_tags, require_str, scalar, str_of, Obj, MAX_RESOURCES, MAX_TEXT_CHARS,
};
use super::principal::Principal;
use super::{EventError, FindingEvent, Parsed};
use crate::finding::{kind, Finding, FindingSource, Resource, SeverityLabel};

/// `detail-type` of GuardDuty finding events.
pub(crate) const DETAIL_TYPE: &str = "GuardDuty Finding";

/// True for a bare GuardDuty finding: camelCase `schemaVersion`, or `accountId` with the
/// finding body (`resource`, `service` or `type`). Deliberately loose so that a finding missing
/// `type` is reported as such rather than as an unknown shape.
pub(crate) fn looks_like_finding(o: &Obj) -> bool {
    o.contains_key("schemaVersion")
        || (o.contains_key("accountId")
            && (o.contains_key("resource") || o.contains_key("service") || o.contains_key("type")))
}

/// A bare GuardDuty finding, wrapped in a synthetic `GuardDuty Finding` envelope.
pub(crate) fn from_bare(top: &Obj) -> Result<Parsed, EventError> {
    let finding = normalize(top, "", None)?;
    let event = envelope::synthetic(
        GUARDDUTY,
        DETAIL_TYPE,
        &finding,
        Vec::new(),
        Value::Object(top.clone()),
    );
    Ok(Parsed::one(FindingEvent {
        event: event.into(),
        finding,
        custom_action: None,
        synthetic_envelope: true,
    }))
}

/// Normalizes one GuardDuty finding found at `path` (`detail`, or `""` for a bare finding).
/// `envelope_region` is the EventBridge envelope's `region`, the fallback when the finding names
/// none.
pub(crate) fn normalize(
    d: &Obj,
    path: &str,
    envelope_region: Option<&str>,
) -> Result<Finding, EventError> {
    let id = require_str(d, "id", path)?;
    let finding_type = require_str(d, "type", path)?;
    // The member account the finding is about; with a delegated administrator the envelope's
    // `account` is the administrator's, which is not where containment acts.
    let account = checked_account(require_str(d, "accountId", path)?, join(path, "accountId"))?;
    let severity = severity(d, path)?;
    let (region, region_path) = match (str_of(d, "region"), envelope_region) {
        (Some(r), _) => (r, join(path, "region")),
        (None, Some(r)) => (r, "region".to_string()),
        (None, None) => match str_of(d, "arn").and_then(arn_region) {
            Some(r) => (r, join(path, "arn")),
            None => {
                return Err(EventError::Missing {
                    path: join(path, "region"),
                })
            }
        },
    };
    let region = checked_region(region, region_path)?;
    let mut resources = Resources::default();
    if let Some(r) = obj_of(d, "resource") {
        resources.read(r, account);
    }
    Ok(Finding {
        source: FindingSource::Guardduty,
        id: id.to_string(),
        kind: finding_type.to_string(),
        title: bounded(str_of(d, "title").unwrap_or(finding_type), MAX_TEXT_CHARS),
        severity,
        severity_label: SeverityLabel::from_score(severity),
        account: account.to_string(),
        region: region.to_string(),
        resources: resources.list,
        updated_at: str_of(d, "updatedAt")
            .or_else(|| str_of(d, "createdAt"))
            .map(|s| bounded(s, 64))
            .unwrap_or_default(),
        user_name: resources.user_name,
        user_type: resources.user_type,
        dedup_id: id.to_string(),
        status: None,
        sample: obj_of(d, "service")
            .and_then(|s| obj_of(s, "additionalInfo"))
            .is_some_and(additional_info_is_sample),
    })
}

/// True when GuardDuty's `service.additionalInfo` marks a generated sample finding: `"sample":
/// true` as a field, or inside the JSON string `additionalInfo.value` (how `CreateSampleFindings`
/// writes it: `{"value": "{\"sample\":true}", "type": "default"}`). `true` may be written as the
/// string `"true"`, as ASFF's `ProductFields` (strings only) carry it.
pub(crate) fn additional_info_is_sample(info: &Obj) -> bool {
    get(info, "sample").is_some_and(is_true) || str_of(info, "value").is_some_and(json_says_sample)
}

/// True when `text` is a JSON object whose `sample` is true. A bounded parse: the text is
/// already in memory, and anything malformed is simply not a sample marker.
pub(crate) fn json_says_sample(text: &str) -> bool {
    const MAX_MARKER_BYTES: usize = 64 * 1024;
    text.len() <= MAX_MARKER_BYTES
        && serde_json::from_str::<Value>(text)
            .ok()
            .as_ref()
            .and_then(Value::as_object)
            .and_then(|o| get(o, "sample"))
            .is_some_and(is_true)
}

fn is_true(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// `severity`: a number from 0 to 10 (GuardDuty uses 1.0-10.0).
fn severity(d: &Obj, path: &str) -> Result<f64, EventError> {
    let p = join(path, "severity");
    let v = get(d, "severity").ok_or_else(|| EventError::Missing { path: p.clone() })?;
    let n = number(v).ok_or_else(|| EventError::WrongType {
        path: p.clone(),
        expected: "a number",
        found: kind_of(v),
    })?;
    if (0.0..=10.0).contains(&n) {
        Ok(n)
    } else {
        Err(EventError::Invalid {
            path: p,
            problem: format!("is {n}, outside GuardDuty's 0-10 range"),
        })
    }
}

/// Resources named by `resource`, and the access key's principal.
#[derive(Default)]
struct Resources {
    list: Vec<Resource>,
    user_name: Option<String>,
    user_type: Option<String>,
}

impl Resources {
    fn push(&mut self, kind: &str, id: &str, attributes: BTreeMap<String, String>) {
        if self.list.len() < MAX_RESOURCES {
            self.list.push(Resource {
                kind: bounded(kind, 64),
                id: bounded(id, MAX_TEXT_CHARS),
                attributes,
            });
        }
    }

    fn read(&mut self, r: &Obj, account: &str) {
        let resource_type = str_of(r, "resourceType").unwrap_or("");
        match resource_type {
            t if t.eq_ignore_ascii_case("Instance") => self.instance(r),
            t if t.eq_ignore_ascii_case("AccessKey") => self.access_key(r, account),
            t if t.eq_ignore_ascii_case("S3Bucket") => {
                self.s3_buckets(r);
                // S3 findings name the caller's key too; playbooks may want to disable it.
                self.access_key(r, account);
            }
            t if t.eq_ignore_ascii_case("EKSCluster") => self.eks_cluster(r),
            "" => {}
            other => self.other(r, other),
        }
    }

    fn instance(&mut self, r: &Obj) {
        let Some(d) = obj_of(r, "instanceDetails") else {
            return;
        };
        let Some(id) = str_of(d, "instanceId") else {
            return;
        };
        let mut a = BTreeMap::new();
        put(&mut a, "instance_type", str_of(d, "instanceType"));
        put(&mut a, "image_id", str_of(d, "imageId"));
        put(&mut a, "availability_zone", str_of(d, "availabilityZone"));
        put(&mut a, "instance_state", str_of(d, "instanceState"));
        if let Some(profile) = obj_of(d, "iamInstanceProfile") {
            put(&mut a, "instance_profile_arn", str_of(profile, "arn"));
        }
        // The first interface carries the instance's primary VPC and subnet.
        if let Some(eni) = arr_of(d, "networkInterfaces")
            .and_then(|n| n.first())
            .and_then(Value::as_object)
        {
            put(&mut a, "vpc_id", str_of(eni, "vpcId"));
            put(&mut a, "subnet_id", str_of(eni, "subnetId"));
            put(&mut a, "private_ip", str_of(eni, "privateIpAddress"));
            put(&mut a, "public_ip", str_of(eni, "publicIp"));
        }
        tags(&mut a, d);
        self.push(kind::INSTANCE, id, a);
    }

    fn access_key(&mut self, r: &Obj, account: &str) {
        let Some(d) = obj_of(r, "accessKeyDetails") else {
            return;
        };
        let principal = Principal {
            user_type: str_of(d, "userType"),
            user_name: str_of(d, "userName"),
            principal_id: str_of(d, "principalId"),
        };
        self.user_name = principal.user_name.map(|s| bounded(s, MAX_TEXT_CHARS));
        self.user_type = principal.user_type.map(|s| bounded(s, 64));
        let mut a = BTreeMap::new();
        principal.put_attributes(&mut a);
        if let Some(key) = str_of(d, "accessKeyId") {
            self.push(kind::ACCESS_KEY, key, a);
        }
        if let Some(p) = principal.resource(account) {
            self.push(&p.kind, &p.id, p.attributes);
        }
    }

    fn s3_buckets(&mut self, r: &Obj) {
        for b in arr_of(r, "s3BucketDetails")
            .unwrap_or(&[])
            .iter()
            .filter_map(Value::as_object)
        {
            let arn = str_of(b, "arn");
            let Some(name) = str_of(b, "name").or_else(|| arn.and_then(|a| arn_tail(a, ":::")))
            else {
                continue;
            };
            let mut a = BTreeMap::new();
            put(&mut a, "arn", arn);
            put(&mut a, "bucket_type", str_of(b, "type"));
            tags(&mut a, b);
            self.push(kind::S3_BUCKET, name, a);
        }
    }

    fn eks_cluster(&mut self, r: &Obj) {
        let Some(d) = obj_of(r, "eksClusterDetails") else {
            return;
        };
        let arn = str_of(d, "arn");
        let Some(name) = str_of(d, "name").or_else(|| arn.and_then(|a| arn_tail(a, ":cluster/")))
        else {
            return;
        };
        let mut a = BTreeMap::new();
        put(&mut a, "arn", arn);
        put(&mut a, "vpc_id", str_of(d, "vpcId"));
        put(&mut a, "status", str_of(d, "status"));
        tags(&mut a, d);
        self.push(kind::EKS_CLUSTER, name, a);
    }

    /// Lambda, RDS, ECS, Container...: kind is GuardDuty's `resourceType`; the id is the best
    /// identifier in `<resourceType>Details` (e.g. `lambdaDetails.functionName`,
    /// `rdsDbInstanceDetails.dbInstanceIdentifier`), else in any other `*Details` object.
    fn other(&mut self, r: &Obj, resource_type: &str) {
        let own = format!("{resource_type}Details");
        let details = obj_of(r, &own).into_iter().chain(
            r.iter()
                .filter(|(k, _)| k.ends_with("Details") && !k.eq_ignore_ascii_case(&own))
                .filter_map(|(_, v)| v.as_object()),
        );
        for d in details {
            if let Some(id) = best_identifier(d) {
                let mut a = BTreeMap::new();
                put(
                    &mut a,
                    "arn",
                    d.iter()
                        .find(|(k, _)| k.to_ascii_lowercase().ends_with("arn"))
                        .and_then(|(_, v)| v.as_str()),
                );
                tags(&mut a, d);
                self.push(resource_type, &id, a);
                return;
            }
        }
    }
}

/// The first identifier-like field of a details object, by key suffix: `...Identifier`, then
/// `...name`, then `...id`, then `...arn`.
fn best_identifier(d: &Obj) -> Option<String> {
    ["identifier", "name", "id", "arn"]
        .iter()
        .find_map(|suffix| {
            d.iter()
                .filter(|(k, _)| k.to_ascii_lowercase().ends_with(suffix))
                .find_map(|(_, v)| v.as_str().map(str::trim).filter(|s| !s.is_empty()))
                .map(|s| bounded(s, MAX_TEXT_CHARS))
        })
}

/// GuardDuty tags: `[{"key": k, "value": v}]`.
fn tags(a: &mut BTreeMap<String, String>, d: &Obj) {
    let list = arr_of(d, "tags").unwrap_or(&[]);
    put_tags(
        a,
        list.iter().filter_map(Value::as_object).filter_map(|t| {
            let key = str_of(t, "key")?;
            Some((key, get(t, "value").and_then(scalar)))
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::super::{parse_value, EventError, Parsed};
    use super::*;
    use serde_json::json;

    fn one(v: Value) -> Finding {
        match parse_value(v) {
            Ok(Parsed::Findings(mut b)) if b.findings.len() == 1 => b.findings.remove(0).finding,
            other => panic!("expected one finding, got {other:?}"),
        }
    }

    fn access_key_event(user_type: &str) -> Value {
        json!({
            "source": "aws.guardduty", "detail-type": "GuardDuty Finding",
            "account": "111111111111", "region": "eu-west-1",
            "detail": {
                "schemaVersion": "2.0", "accountId": "222222222222", "region": "eu-west-1",
                "id": "abc", "type": "UnauthorizedAccess:IAMUser/TorIPCaller", "severity": 5,
                "updatedAt": "2024-01-01T00:00:00Z", "title": "t",
                "resource": {"resourceType": "AccessKey", "accessKeyDetails": {
                    "accessKeyId": "AKIAEXAMPLE", "principalId": "AIDAEXAMPLE:sess",
                    "userName": "alice", "userType": user_type}}
            }
        })
    }

    #[test]
    fn iam_user_access_key_gives_key_and_user() {
        let f = one(access_key_event("IAMUser"));
        assert_eq!(f.account, "222222222222");
        assert_eq!(f.user_name.as_deref(), Some("alice"));
        assert_eq!(f.user_type.as_deref(), Some("IAMUser"));
        let kinds: Vec<_> = f
            .resources
            .iter()
            .map(|r| (r.kind.as_str(), r.id.as_str()))
            .collect();
        assert_eq!(kinds, [("AccessKey", "AKIAEXAMPLE"), ("IamUser", "alice")]);
        let key = f.resource(kind::ACCESS_KEY).map(|r| &r.attributes);
        assert_eq!(
            key.and_then(|a| a.get("principal_id")).map(String::as_str),
            Some("AIDAEXAMPLE:sess")
        );
    }

    #[test]
    fn root_access_key_names_the_account() {
        let f = one(access_key_event("Root"));
        assert_eq!(
            f.resource(kind::ACCOUNT).map(|r| r.id.as_str()),
            Some("222222222222")
        );
    }

    #[test]
    fn other_resource_types_use_their_details() {
        let f = one(json!({
            "schemaVersion": "2.0", "accountId": "123456789012", "region": "us-east-1", "id": "x",
            "type": "Execution:Lambda/MaliciousIPCaller", "severity": 8,
            "resource": {"resourceType": "Lambda", "lambdaDetails": {
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f", "functionName": "f",
                "tags": [{"key": "team", "value": "x"}]}}
        }));
        assert_eq!(f.resources.len(), 1);
        let r = &f.resources[0];
        assert_eq!((r.kind.as_str(), r.id.as_str()), ("Lambda", "f"));
        assert_eq!(
            r.attributes.get("arn").map(String::as_str),
            Some("arn:aws:lambda:us-east-1:123456789012:function:f")
        );
        assert_eq!(r.attributes.get("tag:team").map(String::as_str), Some("x"));
        let f = one(json!({
            "schemaVersion": "2.0", "accountId": "123456789012", "region": "us-east-1", "id": "x",
            "type": "CredentialAccess:RDS/AnomalousBehavior.SuccessfulLogin", "severity": 8,
            "resource": {"resourceType": "RDSDBInstance", "rdsDbInstanceDetails": {
                "dbInstanceIdentifier": "db-1", "engine": "aurora"}}
        }));
        assert_eq!(
            f.resources
                .first()
                .map(|r| (r.kind.as_str(), r.id.as_str())),
            Some(("RDSDBInstance", "db-1"))
        );
    }

    #[test]
    fn s3_findings_list_every_bucket() {
        let f = one(json!({
            "schemaVersion": "2.0", "accountId": "123456789012", "region": "us-east-1", "id": "x",
            "type": "Policy:S3/BucketBlockPublicAccessDisabled", "severity": 2,
            "resource": {"resourceType": "S3Bucket", "s3BucketDetails": [
                {"name": "a", "arn": "arn:aws:s3:::a", "type": "Destination"},
                {"arn": "arn:aws:s3:::b"}]}
        }));
        let ids: Vec<_> = f
            .resources
            .iter()
            .map(|r| (r.kind.as_str(), r.id.as_str()))
            .collect();
        assert_eq!(ids, [("S3Bucket", "a"), ("S3Bucket", "b")]);
        assert_eq!(f.severity_label, SeverityLabel::Low);
    }

    #[test]
    fn required_fields_are_named_by_path() {
        let mut e = access_key_event("IAMUser");
        if let Some(d) = e.get_mut("detail").and_then(Value::as_object_mut) {
            d.remove("type");
        }
        assert_eq!(
            parse_value(e.clone()).err(),
            Some(EventError::Missing {
                path: "detail.type".into()
            })
        );
        if let Some(d) = e.get_mut("detail").and_then(Value::as_object_mut) {
            d.insert("type".into(), json!("T"));
            d.insert("severity".into(), json!(11));
        }
        assert_eq!(
            parse_value(e).err().map(|e| e.to_string()).as_deref(),
            Some("detail.severity is 11, outside GuardDuty's 0-10 range")
        );
        let bare = json!({"schemaVersion": "2.0", "id": "x", "type": "T", "severity": 1});
        assert_eq!(
            parse_value(bare).err(),
            Some(EventError::Missing {
                path: "accountId".into()
            })
        );
    }

    #[test]
    fn region_falls_back_to_envelope_then_arn() {
        let f = one(json!({
            "schemaVersion": "2.0", "accountId": "123456789012", "id": "x", "type": "T", "severity": 1,
            "arn": "arn:aws:guardduty:sa-east-1:123456789012:detector/d/finding/x"
        }));
        assert_eq!(f.region, "sa-east-1");
        assert_eq!(f.title, "T");
    }
}
