//! Request and response types of the cloud traits (the project's own, never SDK types).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// The organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgInfo {
    /// The management account, to which SCPs do not apply.
    pub management_account: String,
    /// The root id (`r-xxxx`).
    pub root_id: String,
    /// Whether the SERVICE_CONTROL_POLICY type is enabled on the root.
    pub scp_enabled: bool,
}

/// A service control policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyInfo {
    /// `p-xxxx`.
    pub id: String,
    /// Name.
    pub name: String,
    /// The JSON document (empty when a listing does not return it).
    pub content: String,
}

/// An IAM role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleInfo {
    /// Role name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// Path; service-linked roles live under `/aws-service-role/` and cannot be edited.
    pub path: String,
}

impl RoleInfo {
    /// Service-linked roles cannot carry an inline policy (IAM User Guide).
    pub fn is_service_linked(&self) -> bool {
        self.path.starts_with("/aws-service-role/")
    }
}

/// An IAM user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserInfo {
    /// User name.
    pub name: String,
    /// ARN.
    pub arn: String,
}

/// Status of an access key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyStatus {
    /// Usable.
    Active,
    /// Deactivated (reversible; deleting is not).
    Inactive,
}

/// An access key, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessKeyInfo {
    /// `AKIA...`.
    pub id: String,
    /// Active or Inactive.
    pub status: KeyStatus,
}

/// A newly created access key. Holds the secret, so it is neither `Serialize` nor `Clone`.
#[derive(Debug)]
pub struct NewAccessKey {
    /// The new key id.
    pub id: String,
    /// The new secret, sent once to SSM Parameter Store.
    pub secret: Secret,
}

/// A network interface and its security groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterfaceInfo {
    /// `eni-...`.
    pub id: String,
    /// Group ids, in order.
    pub groups: Vec<String>,
    /// The primary interface (device index 0), whose groups EC2 also exposes as the instance's.
    #[serde(default)]
    pub primary: bool,
}

/// Which interface to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceRef<'a> {
    /// `eni-...`.
    pub id: &'a str,
    /// Whether it is the instance's primary interface.
    pub primary: bool,
}

impl InterfaceInfo {
    /// A reference to this interface.
    pub fn as_ref(&self) -> InterfaceRef<'_> {
        InterfaceRef {
            id: &self.id,
            primary: self.primary,
        }
    }
}

/// An EC2 instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceInfo {
    /// `i-...`.
    pub id: String,
    /// VPC.
    pub vpc_id: String,
    /// `running`, `stopped`...
    pub state: String,
    /// Network interfaces: security groups belong to these, not to the instance.
    pub interfaces: Vec<InterfaceInfo>,
    /// Attached EBS volume ids.
    pub volumes: Vec<String>,
    /// Whether `DisableApiTermination` is set.
    pub termination_protection: bool,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// A security group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityGroupInfo {
    /// `sg-...`.
    pub id: String,
    /// Name.
    pub name: String,
    /// VPC.
    pub vpc_id: String,
    /// Number of inbound rules.
    pub ingress_rules: usize,
    /// Number of outbound rules.
    pub egress_rules: usize,
}
