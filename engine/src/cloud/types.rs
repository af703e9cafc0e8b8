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

/// An EC2 Auto Scaling group's name and capacity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingGroup {
    /// The group's name.
    pub name: String,
    /// Minimum size: AWS refuses a detach that would take desired capacity below it.
    pub min_size: i32,
    /// Maximum size: AWS refuses an attach that would take desired capacity above it.
    pub max_size: i32,
    /// Desired capacity.
    pub desired_capacity: i32,
}

/// Where an instance stands in an EC2 Auto Scaling group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingMembership {
    /// The group, as read with the membership.
    pub group: ScalingGroup,
    /// The instance's lifecycle state in the group (`InService`, `Standby`, `Pending`,
    /// `Detaching`...).
    pub lifecycle_state: String,
}

/// One registration of an instance in an Elastic Load Balancing (v2) target group. An instance
/// may be registered in one group on several ports; each is its own registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRegistration {
    /// The target group's ARN.
    pub target_group_arn: String,
    /// The port the instance receives traffic on (the group's port when registered without one).
    pub port: Option<i32>,
    /// Set only for targets registered with an explicit Availability Zone (`all` outside the VPC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// The target's state as ELB reports it (`healthy`, `unhealthy`, `initial`, `unused`,
    /// `draining`, `unavailable`).
    pub state: String,
}

/// Why AWS does not let anyone edit a role, from its path (IAM User Guide: service-linked roles
/// live under `/aws-service-role/`; IAM Identity Center's roles under
/// `/aws-reserved/sso.amazonaws.com/` and can be changed only through their permission set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtectedRole {
    /// A service-linked role: only its AWS service may change it.
    ServiceLinked,
    /// An IAM Identity Center (SSO) role, made from a permission set.
    IdentityCenter,
}

impl RoleInfo {
    /// Whether AWS forbids editing this role, and why.
    pub fn protection(&self) -> Option<ProtectedRole> {
        if self.is_service_linked() {
            Some(ProtectedRole::ServiceLinked)
        } else if self.path.starts_with("/aws-reserved/sso.amazonaws.com/") {
            Some(ProtectedRole::IdentityCenter)
        } else {
            None
        }
    }
}
