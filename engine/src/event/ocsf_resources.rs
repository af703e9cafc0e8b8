//! OCSF `resources[]` mapped to cordon resource kinds (see [`crate::finding::kind`]), and the
//! principal behind an access key.
//!
//! The AWS extension for OCSF in Security Hub ("Basic attributes") defines `type` as the
//! CloudFormation resource type (`AWS::EC2::Instance`), `uid` as the resource's identifier
//! (`i-1234567890abcdef0`), `uid_alt` as its ARN, `owner.account.uid`, `region` and `tags`
//! (`[{name, value}]`). For an `AWS::IAM::AccessKey`, GuardDuty's access key details travel in
//! `data` (`access_key_id`, `user_name`, `user_type`, `principal_id`), as in the published V2
//! event in `tests/fixtures/events`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::json::{
    arn_tail, arr_of, bounded, get, index, join, kind_of, obj_of, put, put_tags, scalar, str_of,
    Obj, MAX_RESOURCES, MAX_TEXT_CHARS,
};
use super::principal::Principal;
use super::EventError;
use crate::finding::{kind, Resource};

/// `resources[]` mapped to cordon kinds, and the access key's principal.
#[derive(Default)]
pub(crate) struct Resources<'a> {
    /// The resources, at most [`MAX_RESOURCES`].
    pub list: Vec<Resource>,
    /// The first access key's principal name.
    pub user_name: Option<String>,
    /// The first access key's principal type.
    pub user_type: Option<String>,
    /// The first resource's `region` and its JSON path, the finding's region when `cloud` names
    /// none.
    pub first_region: Option<(&'a str, String)>,
}

impl<'a> Resources<'a> {
    fn push(&mut self, kind: &str, id: &str, attributes: BTreeMap<String, String>) {
        if self.list.len() < MAX_RESOURCES {
            self.list.push(Resource {
                kind: bounded(kind, 64),
                id: bounded(id, MAX_TEXT_CHARS),
                attributes,
            });
        }
    }

    /// Reads `f.resources` (at `path`); `account` is the finding's, for accounts and root keys.
    pub(crate) fn read(&mut self, f: &'a Obj, path: &str, account: &str) -> Result<(), EventError> {
        let list_path = join(path, "resources");
        let list = match get(f, "resources") {
            None => &[][..],
            Some(Value::Array(a)) => a.as_slice(),
            Some(other) => {
                return Err(EventError::WrongType {
                    path: list_path,
                    expected: "an array",
                    found: kind_of(other),
                })
            }
        };
        for (i, r) in list.iter().enumerate().take(MAX_RESOURCES) {
            let r = r.as_object().ok_or_else(|| EventError::WrongType {
                path: index(&list_path, i),
                expected: "an object",
                found: kind_of(r),
            })?;
            // A resource without a type or an identifier names nothing to act on.
            let rid = str_of(r, "uid")
                .or_else(|| str_of(r, "uid_alt"))
                .or_else(|| str_of(r, "name"));
            let (Some(rtype), Some(rid)) = (str_of(r, "type"), rid) else {
                continue;
            };
            if self.first_region.is_none() {
                self.first_region =
                    str_of(r, "region").map(|reg| (reg, join(&index(&list_path, i), "region")));
            }
            self.resource(r, rtype, rid, account);
        }
        Ok(())
    }

    fn resource(&mut self, r: &Obj, rtype: &str, rid: &str, account: &str) {
        let name = str_of(r, "name");
        let arn = [str_of(r, "uid_alt"), Some(rid)]
            .into_iter()
            .flatten()
            .find(|s| s.starts_with("arn:"));
        let mut a = BTreeMap::new();
        put(&mut a, "arn", arn);
        put(&mut a, "region", str_of(r, "region"));
        put(&mut a, "name", name);
        put(
            &mut a,
            "owner_account",
            obj_of(r, "owner")
                .and_then(|o| obj_of(o, "account"))
                .and_then(|o| str_of(o, "uid")),
        );
        put_tags(
            &mut a,
            arr_of(r, "tags")
                .unwrap_or(&[])
                .iter()
                .filter_map(Value::as_object)
                .filter_map(|t| Some((str_of(t, "name")?, get(t, "value").and_then(scalar)))),
        );
        let named = |marker: &str| arn_tail(rid, marker).or(name).unwrap_or(rid);
        match rtype {
            "AWS::EC2::Instance" => {
                let id = arn_tail(rid, ":instance/").unwrap_or(rid);
                self.push(kind::INSTANCE, id, a);
            }
            "AWS::IAM::AccessKey" => self.access_key(r, rid, a, account),
            "AWS::IAM::Role" => self.push(kind::IAM_ROLE, named(":role/"), a),
            "AWS::IAM::User" => self.push(kind::IAM_USER, named(":user/"), a),
            "AWS::EKS::Cluster" => self.push(kind::EKS_CLUSTER, named(":cluster/"), a),
            "AWS::S3::Bucket" => {
                let bucket = arn_tail(rid, ":::").unwrap_or(rid);
                self.push(kind::S3_BUCKET, bucket, a);
            }
            "AWS::::Account" | "AWS::Account" => {
                let id = if crate::cloud::check_account_id(rid).is_ok() {
                    rid
                } else {
                    account
                };
                self.push(kind::ACCOUNT, id, a);
            }
            other => self.push(other, rid, a),
        }
    }

    /// `AWS::IAM::AccessKey`: the key is `data.access_key_id` (GuardDuty's `accessKeyId`), else
    /// the `uid`; its principal comes from `data.user_name` / `user_type` / `principal_id`,
    /// mirroring the GuardDuty and ASFF routes.
    fn access_key(&mut self, r: &Obj, rid: &str, mut a: BTreeMap<String, String>, account: &str) {
        let data = obj_of(r, "data");
        let field = |key: &str| data.and_then(|d| str_of(d, key));
        let principal = Principal {
            user_type: field("user_type"),
            user_name: field("user_name"),
            principal_id: field("principal_id"),
        };
        let key_id = field("access_key_id")
            .or_else(|| rid.strip_prefix("AWS::IAM::AccessKey:"))
            .unwrap_or(rid);
        principal.put_attributes(&mut a);
        self.push(kind::ACCESS_KEY, key_id, a);
        if self.user_name.is_none() && self.user_type.is_none() {
            self.user_name = principal.user_name.map(|s| bounded(s, MAX_TEXT_CHARS));
            self.user_type = principal.user_type.map(|s| bounded(s, 64));
        }
        if let Some(p) = principal.resource(account) {
            self.push(&p.kind, &p.id, p.attributes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(resources: Value) -> Result<Resources<'static>, EventError> {
        let f: &'static Obj = Box::leak(Box::new(match json!({ "resources": resources }) {
            Value::Object(m) => m,
            _ => Obj::new(),
        }));
        let mut out = Resources::default();
        out.read(f, "detail.findings[0]", "123456789012")?;
        Ok(out)
    }

    #[test]
    fn cloudformation_types_map_to_cordon_kinds() {
        let r = read(json!([
            {"type": "AWS::EC2::Instance", "uid": "i-0abc", "region": "eu-west-1",
             "uid_alt": "arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc",
             "tags": [{"name": "env", "value": "prod"}]},
            {"type": "AWS::EC2::Instance", "uid": "arn:aws:ec2:eu-west-1:123456789012:instance/i-0def"},
            {"type": "AWS::IAM::Role", "uid": "arn:aws:iam::123456789012:role/path/app-role"},
            {"type": "AWS::IAM::User", "uid": "AIDAEXAMPLE", "name": "bob"},
            {"type": "AWS::S3::Bucket", "uid": "arn:aws:s3:::my-bucket"},
            {"type": "AWS::EKS::Cluster", "uid": "arn:aws:eks:eu-west-1:123456789012:cluster/c1"},
            {"type": "AWS::::Account", "uid": "123456789012"},
            {"type": "AWS::::Account", "uid": "not-an-account"},
            {"type": "AWS::Lambda::Function", "uid": "arn:aws:lambda:eu-west-1:123456789012:function:f"},
            {"type": "AWS::EC2::Instance"},
            {"uid": "i-typeless"}
        ]))
        .map(|r| {
            let ids: Vec<(String, String)> =
                r.list.iter().map(|x| (x.kind.clone(), x.id.clone())).collect();
            (ids, r.list[0].attributes.clone(), r.first_region)
        });
        let (ids, attrs, region) = r.expect("reads");
        let want = [
            ("Instance", "i-0abc"),
            ("Instance", "i-0def"),
            ("IamRole", "app-role"),
            ("IamUser", "bob"),
            ("S3Bucket", "my-bucket"),
            ("EKSCluster", "c1"),
            ("AwsAccount", "123456789012"),
            ("AwsAccount", "123456789012"),
            (
                "AWS::Lambda::Function",
                "arn:aws:lambda:eu-west-1:123456789012:function:f",
            ),
        ]
        .map(|(k, i)| (k.to_string(), i.to_string()));
        assert_eq!(ids, want);
        assert_eq!(attrs.get("tag:env").map(String::as_str), Some("prod"));
        assert_eq!(
            attrs.get("arn").map(String::as_str),
            Some("arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc")
        );
        assert_eq!(
            region,
            Some((
                "eu-west-1",
                "detail.findings[0].resources[0].region".to_string()
            ))
        );
    }

    #[test]
    fn access_keys_name_their_principal() {
        let r = read(json!([{"type": "AWS::IAM::AccessKey", "uid": "AKIAUID",
            "data": {"access_key_id": "AKIADATA", "user_name": "alice", "user_type": "IAMUser",
                     "principal_id": "AIDAALICE"}}]))
        .expect("reads");
        let ids: Vec<(&str, &str)> = r
            .list
            .iter()
            .map(|x| (x.kind.as_str(), x.id.as_str()))
            .collect();
        assert_eq!(ids, [("AccessKey", "AKIADATA"), ("IamUser", "alice")]);
        assert_eq!(
            (r.user_name.as_deref(), r.user_type.as_deref()),
            (Some("alice"), Some("IAMUser"))
        );
        let r = read(json!([{"type": "AWS::IAM::AccessKey", "uid": "ASIAKEY",
            "data": {"user_name": "app-role", "user_type": "AssumedRole",
                     "principal_id": "AROAROLE:session-7"}}]))
        .expect("reads");
        assert_eq!(r.list[0].id, "ASIAKEY");
        assert_eq!(r.list[1].kind, "IamRole");
        assert_eq!(
            r.list[1].attributes.get("session_name").map(String::as_str),
            Some("session-7")
        );
    }

    #[test]
    fn malformed_resources_name_their_path() {
        let err = |v: Value| read(v).err().map(|e| e.to_string());
        assert_eq!(
            err(json!("x")).as_deref(),
            Some("detail.findings[0].resources is a string; expected an array")
        );
        assert_eq!(
            err(json!([{"type": "AWS::EC2::Instance", "uid": "i-1"}, 7])).as_deref(),
            Some("detail.findings[0].resources[1] is a number; expected an object")
        );
    }
}
