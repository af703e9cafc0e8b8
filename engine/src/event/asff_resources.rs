//! ASFF `Resources[]` mapped to cordon resource kinds (see [`crate::finding::kind`]), and the
//! principal behind an `AwsIamAccessKey`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::json::{
    arn_tail, bounded, get, index, join, kind_of, obj_of, put, put_tags, scalar, str_of, Obj,
    MAX_RESOURCES, MAX_TEXT_CHARS,
};
use super::principal::Principal;
use super::EventError;
use crate::finding::{kind, Resource};

/// `Resources[]` mapped to cordon kinds, and the access key's principal.
#[derive(Default)]
pub(crate) struct Resources<'a> {
    /// The resources, at most [`MAX_RESOURCES`].
    pub list: Vec<Resource>,
    /// The first access key's principal name.
    pub user_name: Option<String>,
    /// The first access key's principal type.
    pub user_type: Option<String>,
    /// The first resource's `Region` and its JSON path, the finding's region when it names none.
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

    /// Reads `f.Resources` (at `path`); `account` is the finding's, for `AwsAccount`/`Root`.
    pub(crate) fn read(&mut self, f: &'a Obj, path: &str, account: &str) -> Result<(), EventError> {
        let list = match get(f, "Resources") {
            None => &[][..],
            Some(Value::Array(a)) => a.as_slice(),
            Some(other) => {
                return Err(EventError::WrongType {
                    path: join(path, "Resources"),
                    expected: "an array",
                    found: kind_of(other),
                })
            }
        };
        for (i, r) in list.iter().enumerate().take(MAX_RESOURCES) {
            let r = r.as_object().ok_or_else(|| EventError::WrongType {
                path: index(&join(path, "Resources"), i),
                expected: "an object",
                found: kind_of(r),
            })?;
            // Type and Id are required by ASFF; a resource without them names nothing to act on.
            let (Some(rtype), Some(rid)) = (str_of(r, "Type"), str_of(r, "Id")) else {
                continue;
            };
            if self.first_region.is_none() {
                self.first_region = str_of(r, "Region")
                    .map(|reg| (reg, join(&index(&join(path, "Resources"), i), "Region")));
            }
            self.resource(r, rtype, rid, account);
        }
        Ok(())
    }

    fn resource(&mut self, r: &Obj, rtype: &str, rid: &str, account: &str) {
        let details = obj_of(r, "Details").and_then(|d| obj_of(d, rtype));
        let detail = |key: &str| details.and_then(|d| str_of(d, key));
        let mut a = BTreeMap::new();
        if rid.starts_with("arn:") {
            put(&mut a, "arn", Some(rid));
        }
        put(&mut a, "region", str_of(r, "Region"));
        if let Some(tags) = obj_of(r, "Tags") {
            put_tags(&mut a, tags.iter().map(|(k, v)| (k.as_str(), scalar(v))));
        }
        match rtype {
            "AwsEc2Instance" => {
                let id = arn_tail(rid, ":instance/").unwrap_or(rid);
                put(&mut a, "vpc_id", detail("VpcId"));
                put(&mut a, "subnet_id", detail("SubnetId"));
                put(&mut a, "image_id", detail("ImageId"));
                put(&mut a, "instance_type", detail("Type"));
                put(
                    &mut a,
                    "instance_profile_arn",
                    detail("IamInstanceProfileArn"),
                );
                self.push(kind::INSTANCE, id, a);
            }
            "AwsIamAccessKey" => self.access_key(details, rid, a, account),
            "AwsIamRole" => {
                let name = detail("RoleName")
                    .or_else(|| arn_tail(rid, ":role/"))
                    .unwrap_or(rid);
                self.push(kind::IAM_ROLE, name, a);
            }
            "AwsIamUser" => {
                let name = detail("UserName")
                    .or_else(|| arn_tail(rid, ":user/"))
                    .unwrap_or(rid);
                self.push(kind::IAM_USER, name, a);
            }
            "AwsS3Bucket" => {
                let name = rid
                    .strip_prefix("arn:aws:s3:::")
                    .or_else(|| arn_tail(rid, ":::"));
                self.push(kind::S3_BUCKET, name.unwrap_or(rid), a);
            }
            "AwsAccount" => {
                // `AWS::::Account:111111111111`
                let id = rid
                    .rsplit(':')
                    .next()
                    .filter(|s| !s.is_empty())
                    .unwrap_or(account);
                self.push(kind::ACCOUNT, id, a);
            }
            "AwsEksCluster" => {
                let name = detail("Name")
                    .or_else(|| arn_tail(rid, ":cluster/"))
                    .unwrap_or(rid);
                self.push(kind::EKS_CLUSTER, name, a);
            }
            other => self.push(other, rid, a),
        }
    }

    /// `AwsIamAccessKey`: the key (`AccessKeyId`, else the `AWS::IAM::AccessKey:` Id), and its
    /// principal as IamUser / IamRole, mirroring the GuardDuty route. `PrincipalName` replaced the
    /// deprecated `UserName`; for a role session the session issuer's name is the role.
    fn access_key(
        &mut self,
        details: Option<&Obj>,
        rid: &str,
        mut a: BTreeMap<String, String>,
        account: &str,
    ) {
        let detail = |key: &str| details.and_then(|d| str_of(d, key));
        let issuer = details
            .and_then(|d| obj_of(d, "SessionContext"))
            .and_then(|s| obj_of(s, "SessionIssuer"));
        let user_type = detail("PrincipalType");
        let principal = Principal {
            user_type,
            user_name: detail("PrincipalName")
                .or_else(|| detail("UserName"))
                .or_else(|| {
                    (user_type == Some("AssumedRole"))
                        .then(|| issuer.and_then(|i| str_of(i, "UserName")))
                        .flatten()
                }),
            principal_id: detail("PrincipalId"),
        };
        let key_id = detail("AccessKeyId")
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
