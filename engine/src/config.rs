//! Engine settings: names and policies the actions use, read from `cordon.yaml`.

use serde::{Deserialize, Serialize};

/// Settings the actions read. Every field has a default, so an empty config file is valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Principal ARN patterns exempt from the quarantine SCP (break-glass roles, the StackSet
    /// execution role). `*` wildcards as in `ArnNotLike`.
    pub break_glass_roles: Vec<String>,
    /// Name of the quarantine SCP, created once and reused.
    pub deny_scp_name: String,
    /// Largest quarantine SCP document, in bytes, checked before any call. AWS's quota on an
    /// SCP's size is 5,120 characters, whitespace included (Organizations User Guide, "Quotas
    /// and service limits"); raise it only if AWS raised yours.
    pub scp_size_quota: usize,
    /// With no `break_glass_roles`, the quarantine SCP denies every principal of the account,
    /// responders included, and `org.attach_deny_scp` refuses to attach it unless this is true
    /// (an explicit acknowledgement that only the management account can then act on it).
    pub quarantine_without_break_glass: bool,
    /// Name of the per-VPC isolation security group (no rules).
    pub isolation_group_name: String,
    /// Name of the per-VPC allow-all group used first, to turn tracked flows into untracked ones.
    pub untrack_group_name: String,
    /// SSM parameter path under which rotated keys are stored.
    pub key_parameter_prefix: String,
    /// Name of the inline policy that revokes a role's sessions (the console's name).
    pub revoke_policy_name: String,
    /// Name of the inline deny-all policy put on a disabled user.
    pub user_deny_policy_name: String,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            break_glass_roles: vec!["arn:aws:iam::*:role/BreakGlass*".into()],
            deny_scp_name: "cordon-quarantine".into(),
            scp_size_quota: 5120,
            quarantine_without_break_glass: false,
            isolation_group_name: "cordon-isolation".into(),
            untrack_group_name: "cordon-isolation-untrack".into(),
            key_parameter_prefix: "/cordon/rotated-keys".into(),
            revoke_policy_name: "AWSRevokeOlderSessions".into(),
            user_deny_policy_name: "CordonDenyAll".into(),
        }
    }
}
