//! What the actions need from the cloud, as traits over the project's own types.
//!
//! `connectors` implements them with the AWS SDK (assuming the response role in each target
//! account), `simulator` with a simulated organization. No SDK type crosses this boundary, so the
//! action logic in `actions` is written once and runs against either.

mod error;
mod ids;
mod types;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::secret::Secret;

pub use error::{missing_as_done, missing_as_none, CloudError, ErrorKind};
pub use ids::{check_account_id, check_region};
pub use types::*;

/// Result of a cloud call.
pub type CloudResult<T> = Result<T, CloudError>;

/// Where a call acts: the finding's account and region, and the run it belongs to (connectors put
/// the run id in the AssumeRole session name so CloudTrail ties every call to a run).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// 12-digit account id.
    pub account: String,
    /// Region name.
    pub region: String,
    /// The run making the call.
    pub run_id: String,
}

/// AWS Organizations, called from the management (or delegated administrator) account.
#[async_trait]
pub trait Organizations: Send + Sync {
    /// The organization: management account, root, whether SCPs are enabled.
    async fn describe(&self) -> CloudResult<OrgInfo>;
    /// Every member account id (the management account included).
    async fn list_accounts(&self) -> CloudResult<Vec<String>>;
    /// Enables the SERVICE_CONTROL_POLICY type on the root.
    async fn enable_scp(&self, root_id: &str) -> CloudResult<()>;
    /// The SCP with this name, if any.
    async fn find_policy(&self, name: &str) -> CloudResult<Option<PolicyInfo>>;
    /// Creates an SCP.
    async fn create_policy(
        &self,
        name: &str,
        description: &str,
        content: &str,
    ) -> CloudResult<PolicyInfo>;
    /// Attaches an SCP to an account; attaching an attached policy is not an error.
    async fn attach_policy(&self, policy_id: &str, account: &str) -> CloudResult<()>;
    /// Detaches an SCP from an account; `NotFound` if it was not attached.
    async fn detach_policy(&self, policy_id: &str, account: &str) -> CloudResult<()>;
    /// The SCPs attached directly to an account.
    async fn policies_for_account(&self, account: &str) -> CloudResult<Vec<PolicyInfo>>;
}

/// IAM in a target account.
#[async_trait]
pub trait Iam: Send + Sync {
    /// A role by name, if it exists.
    async fn get_role(&self, t: &Target, role: &str) -> CloudResult<Option<RoleInfo>>;
    /// Creates or replaces an inline role policy.
    async fn put_role_policy(
        &self,
        t: &Target,
        role: &str,
        name: &str,
        doc: &str,
    ) -> CloudResult<()>;
    /// An inline role policy's document, if present.
    async fn get_role_policy(
        &self,
        t: &Target,
        role: &str,
        name: &str,
    ) -> CloudResult<Option<String>>;
    /// Deletes an inline role policy; `NotFound` if absent.
    async fn delete_role_policy(&self, t: &Target, role: &str, name: &str) -> CloudResult<()>;
    /// A user by name, if it exists.
    async fn get_user(&self, t: &Target, user: &str) -> CloudResult<Option<UserInfo>>;
    /// The user's access keys.
    async fn list_access_keys(&self, t: &Target, user: &str) -> CloudResult<Vec<AccessKeyInfo>>;
    /// Sets a key Active or Inactive.
    async fn set_access_key_status(
        &self,
        t: &Target,
        user: &str,
        key_id: &str,
        status: KeyStatus,
    ) -> CloudResult<()>;
    /// Creates a new access key; its secret is returned once and never stored by cordon.
    async fn create_access_key(&self, t: &Target, user: &str) -> CloudResult<NewAccessKey>;
    /// Whether the user has a console password.
    async fn has_login_profile(&self, t: &Target, user: &str) -> CloudResult<bool>;
    /// Deletes the console password; `NotFound` if there is none.
    async fn delete_login_profile(&self, t: &Target, user: &str) -> CloudResult<()>;
    /// Creates or replaces an inline user policy.
    async fn put_user_policy(
        &self,
        t: &Target,
        user: &str,
        name: &str,
        doc: &str,
    ) -> CloudResult<()>;
    /// An inline user policy's document, if present.
    async fn get_user_policy(
        &self,
        t: &Target,
        user: &str,
        name: &str,
    ) -> CloudResult<Option<String>>;
    /// Deletes an inline user policy; `NotFound` if absent.
    async fn delete_user_policy(&self, t: &Target, user: &str, name: &str) -> CloudResult<()>;
}

/// EC2 in a target account and region.
#[async_trait]
pub trait Ec2: Send + Sync {
    /// An instance with its network interfaces and volumes, if it exists.
    async fn describe_instance(&self, t: &Target, id: &str) -> CloudResult<Option<InstanceInfo>>;
    /// The security group with this name in the VPC, if any.
    async fn find_security_group(
        &self,
        t: &Target,
        vpc_id: &str,
        name: &str,
    ) -> CloudResult<Option<SecurityGroupInfo>>;
    /// A security group by id.
    async fn describe_security_group(
        &self,
        t: &Target,
        id: &str,
    ) -> CloudResult<Option<SecurityGroupInfo>>;
    /// Creates a security group (EC2 adds its default allow-all egress rule).
    async fn create_security_group(
        &self,
        t: &Target,
        vpc_id: &str,
        name: &str,
        description: &str,
    ) -> CloudResult<String>;
    /// Removes every egress rule of the group.
    async fn revoke_all_egress(&self, t: &Target, group_id: &str) -> CloudResult<()>;
    /// Allows all traffic in and out, IPv4 and IPv6 (the group that makes flows untracked).
    async fn allow_all_traffic(&self, t: &Target, group_id: &str) -> CloudResult<()>;
    /// Replaces the security groups of one network interface of `instance`.
    async fn set_interface_groups(
        &self,
        t: &Target,
        instance: &str,
        iface: &InterfaceRef<'_>,
        groups: &[String],
    ) -> CloudResult<()>;
    /// Turns API termination protection on or off.
    async fn set_termination_protection(&self, t: &Target, id: &str, on: bool) -> CloudResult<()>;
    /// Snapshots a volume; returns the snapshot id.
    async fn create_snapshot(
        &self,
        t: &Target,
        volume_id: &str,
        description: &str,
        tags: &BTreeMap<String, String>,
    ) -> CloudResult<String>;
    /// Snapshots of a volume carrying the tag `key=value` (finds the work of an earlier attempt).
    async fn find_snapshots(
        &self,
        t: &Target,
        volume_id: &str,
        tag: (&str, &str),
    ) -> CloudResult<Vec<String>>;
    /// Adds or overwrites tags.
    async fn create_tags(
        &self,
        t: &Target,
        resource: &str,
        tags: &BTreeMap<String, String>,
    ) -> CloudResult<()>;
    /// Removes tags by key.
    async fn delete_tags(&self, t: &Target, resource: &str, keys: &[String]) -> CloudResult<()>;
}

/// EC2 Auto Scaling in a target account and region.
#[async_trait]
pub trait AutoScaling: Send + Sync {
    /// The group the instance belongs to, with its capacity, or `None` when it is in no group.
    async fn membership(
        &self,
        t: &Target,
        instance: &str,
    ) -> CloudResult<Option<ScalingMembership>>;
    /// A group by name, or `None` when it no longer exists.
    async fn scaling_group(&self, t: &Target, name: &str) -> CloudResult<Option<ScalingGroup>>;
    /// Detaches the instance from its group (`DetachInstances`); with `decrement` the group's
    /// desired capacity drops by one, so the group launches no replacement.
    async fn detach_instance(
        &self,
        t: &Target,
        group: &str,
        instance: &str,
        decrement: bool,
    ) -> CloudResult<()>;
    /// Attaches the instance to the group (`AttachInstances`), which raises the group's desired
    /// capacity by one and registers the instance in the group's own target groups.
    async fn attach_instance(&self, t: &Target, group: &str, instance: &str) -> CloudResult<()>;
    /// Moves an in-service instance to `Standby` (`EnterStandby`), lowering desired capacity by
    /// one when `decrement`.
    async fn enter_standby(
        &self,
        t: &Target,
        group: &str,
        instance: &str,
        decrement: bool,
    ) -> CloudResult<()>;
}

/// Elastic Load Balancing (v2: Application, Network and Gateway Load Balancers) in a target
/// account and region.
#[async_trait]
pub trait LoadBalancing: Send + Sync {
    /// Every registration of the instance in the instance-type target groups of its VPC
    /// (ELB has no look-up by target, so each group of the VPC is read).
    async fn registrations(
        &self,
        t: &Target,
        vpc_id: &str,
        instance: &str,
    ) -> CloudResult<Vec<TargetRegistration>>;
    /// Deregisters one registration (its port and zone); `NotFound` if it was not registered.
    async fn deregister(
        &self,
        t: &Target,
        instance: &str,
        registration: &TargetRegistration,
    ) -> CloudResult<()>;
    /// Registers the instance again with the registration's port and zone.
    async fn register(
        &self,
        t: &Target,
        instance: &str,
        registration: &TargetRegistration,
    ) -> CloudResult<()>;
}

/// Systems Manager in a target account and region.
#[async_trait]
pub trait Ssm: Send + Sync {
    /// Stores a SecureString parameter; returns its version.
    async fn put_secure_parameter(
        &self,
        t: &Target,
        name: &str,
        value: &Secret,
        description: &str,
    ) -> CloudResult<u64>;
    /// Whether a parameter exists (its value is never read back).
    async fn parameter_exists(&self, t: &Target, name: &str) -> CloudResult<bool>;
    /// Runs a document on instances; parameters are document parameters, never a shell string.
    async fn send_command(
        &self,
        t: &Target,
        document: &str,
        instance_ids: &[String],
        parameters: &BTreeMap<String, Vec<String>>,
        comment: &str,
    ) -> CloudResult<String>;
    /// The status of a command on one instance.
    async fn command_status(
        &self,
        t: &Target,
        command_id: &str,
        instance_id: &str,
    ) -> CloudResult<String>;
}

/// EventBridge, for audit events (in cordon's own account).
#[async_trait]
pub trait Events: Send + Sync {
    /// Puts one event on a bus.
    async fn put_event(
        &self,
        bus: &str,
        source: &str,
        detail_type: &str,
        detail: &Value,
    ) -> CloudResult<()>;
}

/// Where a chat message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Posted to the chat channel.
    Posted,
    /// No chat is configured: written to cordon's log instead, which nobody may be reading.
    Logged,
    /// Recorded in a durable outbox (`cordon serve`'s chat outbox) and sent by a background
    /// task, retried until the chat takes it: a chat outage does not hold the run up.
    Queued,
}

/// A chat channel (Slack).
#[async_trait]
pub trait Chat: Send + Sync {
    /// Sends a message; `channel` None means the configured default. Says where it went, so
    /// that nobody reads "posted" for a message only logged.
    async fn post(&self, channel: Option<&str>, text: &str) -> CloudResult<Delivery>;
}

/// Everything an action can call, bundled.
#[derive(Clone)]
pub struct Cloud {
    /// Organizations (management account).
    pub org: Arc<dyn Organizations>,
    /// IAM.
    pub iam: Arc<dyn Iam>,
    /// EC2.
    pub ec2: Arc<dyn Ec2>,
    /// EC2 Auto Scaling.
    pub autoscaling: Arc<dyn AutoScaling>,
    /// Elastic Load Balancing (v2).
    pub elb: Arc<dyn LoadBalancing>,
    /// Systems Manager.
    pub ssm: Arc<dyn Ssm>,
    /// EventBridge.
    pub events: Arc<dyn Events>,
    /// Chat.
    pub chat: Arc<dyn Chat>,
}

impl Cloud {
    /// One implementation of every trait (the simulator, or a test double).
    pub fn from_one<T>(imp: Arc<T>) -> Cloud
    where
        T: Organizations + Iam + Ec2 + AutoScaling + LoadBalancing + Ssm + Events + Chat + 'static,
    {
        Cloud::with_chat(imp.clone(), imp)
    }

    /// One implementation of every cloud trait and a chat of its own (AWS with Slack, or with
    /// the log), so that adding a cloud trait changes no caller.
    pub fn with_chat<T>(imp: Arc<T>, chat: Arc<dyn Chat>) -> Cloud
    where
        T: Organizations + Iam + Ec2 + AutoScaling + LoadBalancing + Ssm + Events + 'static,
    {
        Cloud {
            org: imp.clone(),
            iam: imp.clone(),
            ec2: imp.clone(),
            autoscaling: imp.clone(),
            elb: imp.clone(),
            ssm: imp.clone(),
            events: imp,
            chat,
        }
    }
}
