//! `org.attach_deny_scp`: fence a member account with the quarantine SCP.
//!
//! AWS's quarantine pattern: one statement denying everything except to the break-glass roles
//! (`ArnNotLike aws:PrincipalARN`). SCPs do not apply to the management account, so fencing it
//! is refused rather than reported as done.
//!
//! Before any call the document is built and checked ([`quarantine_document`]): compact JSON
//! (AWS counts whitespace against the SCP size quota), no larger than `settings.scp_size_quota`,
//! and with at least one break-glass exception unless the settings acknowledge its absence.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::cloud::{missing_as_done, Target};
use crate::config::Settings;

use super::{
    args, hold_key, param, record, to_value, Action, ActionError, ActionMeta, Context, Outcome,
    Param, Params,
};

/// The action.
pub struct AttachDenyScp;

static META: ActionMeta = ActionMeta {
    id: "org.attach_deny_scp",
    description: "Attach a deny-all SCP (break-glass roles excepted) to the finding's account",
    params: &[Param {
        name: "policy_name",
        required: false,
        description: "SCP name (default: settings.deny_scp_name)",
    }],
    iam_actions: &[
        "organizations:DescribeOrganization",
        "organizations:ListRoots",
        "organizations:EnablePolicyType",
        "organizations:ListPolicies",
        "organizations:DescribePolicy",
        "organizations:CreatePolicy",
        "organizations:AttachPolicy",
        "organizations:DetachPolicy",
        "organizations:ListPoliciesForTarget",
    ],
    example:
        "- id: fence\n  action: org.attach_deny_scp\n  with:\n    account: ${finding.account}\n",
    idempotent: true,
    undo: Some("detach the SCP (only if this run attached it)"),
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    policy_name: Option<String>,
}

/// The pre-state, which is also the undo record: release detaches only what this run attached.
#[derive(Serialize, Deserialize)]
struct Before {
    account: String,
    policy_name: String,
    attached: bool,
}

/// The quarantine document for these settings, checked: refused when it excepts nobody (unless
/// acknowledged) or is over the SCP size quota. Built from a `serde_json::Value`, so it is
/// compact: no whitespace between tokens.
pub(crate) fn quarantine_document(
    settings: &Settings,
    account: &str,
) -> Result<String, ActionError> {
    if settings.break_glass_roles.is_empty() && !settings.quarantine_without_break_glass {
        return Err(ActionError::Refused(format!(
            "settings.break_glass_roles is empty: the quarantine SCP would deny every principal in account {account}, break-glass roles and responders included, and no one in the account could act to release it; list your break-glass role ARNs in settings.break_glass_roles, or set settings.quarantine_without_break_glass: true to accept that"
        )));
    }
    let doc = deny_document(&settings.break_glass_roles);
    if doc.len() > settings.scp_size_quota {
        return Err(ActionError::Refused(format!(
            "the quarantine SCP is {} bytes, over the SCP size quota of {} bytes (settings.scp_size_quota); list fewer break-glass roles in settings.break_glass_roles or cover them with wildcards",
            doc.len(),
            settings.scp_size_quota
        )));
    }
    Ok(doc)
}

/// The quarantine document: deny everything to everyone but the break-glass principals.
pub(crate) fn deny_document(break_glass: &[String]) -> String {
    let mut statement =
        json!({"Sid": "CordonQuarantine", "Effect": "Deny", "Action": "*", "Resource": "*"});
    if !break_glass.is_empty() {
        statement["Condition"] = json!({"ArnNotLike": {"aws:PrincipalARN": break_glass}});
    }
    json!({"Version": "2012-10-17", "Statement": [statement]}).to_string()
}

impl AttachDenyScp {
    async fn refuse_management(
        &self,
        ctx: &Context<'_>,
    ) -> Result<crate::cloud::OrgInfo, ActionError> {
        let org = ctx.cloud.org.describe().await?;
        if org.management_account == ctx.target.account {
            return Err(ActionError::Refused(format!(
                "account {} is the organization's management account; SCPs do not apply to it",
                ctx.target.account
            )));
        }
        Ok(org)
    }
}

#[async_trait]
impl Action for AttachDenyScp {
    fn meta(&self) -> &'static ActionMeta {
        &META
    }

    fn holds(&self, settings: &Settings, t: &Target, params: &Params) -> Option<String> {
        let name = param(params, "policy_name").unwrap_or(&settings.deny_scp_name);
        hold_key(META.id, &[Some(&t.account), Some(name)])
    }

    async fn prepare(&self, ctx: &Context<'_>, params: &Params) -> Result<Value, ActionError> {
        let a: Args = args(params)?;
        quarantine_document(ctx.settings, &ctx.target.account)?;
        self.refuse_management(ctx).await?;
        let policy_name = a
            .policy_name
            .unwrap_or_else(|| ctx.settings.deny_scp_name.clone());
        let account = ctx.target.account.clone();
        let attached = ctx
            .cloud
            .org
            .policies_for_account(&account)
            .await?
            .iter()
            .any(|p| p.name == policy_name);
        Ok(to_value(&Before {
            account,
            policy_name,
            attached,
        }))
    }

    async fn execute(
        &self,
        ctx: &Context<'_>,
        _params: &Params,
        prepared: &Value,
    ) -> Result<Outcome, ActionError> {
        let before: Before = record(prepared)?;
        let doc = quarantine_document(ctx.settings, &before.account)?;
        let org = self.refuse_management(ctx).await?;
        let name = before.policy_name.clone();
        if !org.scp_enabled {
            ctx.cloud.org.enable_scp(&org.root_id).await?;
        }
        let policy = match ctx.cloud.org.find_policy(&name).await? {
            Some(p) => p,
            None => {
                ctx.cloud
                    .org
                    .create_policy(&name, "cordon quarantine: deny all but break-glass", &doc)
                    .await?
            }
        };
        let account = &before.account;
        ctx.cloud.org.attach_policy(&policy.id, account).await?;
        let now: Vec<String> = ctx
            .cloud
            .org
            .policies_for_account(account)
            .await?
            .into_iter()
            .map(|p| p.id)
            .collect();
        if !now.contains(&policy.id) {
            return Err(ActionError::Verify(format!(
                "{} is not attached to account {account}",
                policy.id
            )));
        }
        // A quarantine that was already in place before this run is not ours to lift.
        let undoable = !before.attached;
        Ok(Outcome {
            output: json!({"policy_id": policy.id, "policy_name": name, "account": account, "already_attached": before.attached}),
            undoable,
            proof: json!({"account": account, "attached_policies": now}),
        })
    }

    async fn undo(&self, ctx: &Context<'_>, prepared: &Value) -> Result<Value, ActionError> {
        let b: Before = record(prepared)?;
        if b.attached {
            return Ok(
                json!({"account": b.account, "note": "the SCP was attached before this run; left in place"}),
            );
        }
        if let Some(policy) = ctx.cloud.org.find_policy(&b.policy_name).await? {
            missing_as_done(ctx.cloud.org.detach_policy(&policy.id, &b.account).await)?;
        }
        let now = ctx.cloud.org.policies_for_account(&b.account).await?;
        if now.iter().any(|p| p.name == b.policy_name) {
            return Err(ActionError::Verify(format!(
                "{} is still attached to {}",
                b.policy_name, b.account
            )));
        }
        Ok(
            json!({"account": b.account, "attached_policies": now.into_iter().map(|p| p.id).collect::<Vec<_>>()}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_compact_and_within_the_quota() {
        let settings = Settings::default();
        let doc = quarantine_document(&settings, "111122223333").unwrap();
        let value: Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(doc, value.to_string(), "no insignificant whitespace");
        assert!(!doc.contains(' ') && !doc.contains('\n'), "{doc}");
        assert_eq!(
            value["Statement"][0]["Condition"]["ArnNotLike"]["aws:PrincipalARN"],
            json!(settings.break_glass_roles)
        );
    }

    #[test]
    fn a_document_over_the_quota_is_refused_naming_size_and_quota() {
        let settings = Settings {
            break_glass_roles: (0..100)
                .map(|i| format!("arn:aws:iam::*:role/break-glass-responder-number-{i}"))
                .collect(),
            ..Settings::default()
        };
        let size = deny_document(&settings.break_glass_roles).len();
        assert!(size > 5120, "{size}");
        let err = quarantine_document(&settings, "111122223333").unwrap_err();
        assert_eq!(err.kind(), "refused");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("{size} bytes")) && msg.contains("5120 bytes"),
            "{msg}"
        );
        let raised = Settings {
            scp_size_quota: size,
            ..settings
        };
        assert!(quarantine_document(&raised, "111122223333").is_ok());
    }

    #[test]
    fn no_break_glass_role_is_refused_unless_acknowledged() {
        let none = Settings {
            break_glass_roles: vec![],
            ..Settings::default()
        };
        let err = quarantine_document(&none, "111122223333").unwrap_err();
        assert!(
            err.to_string()
                .contains("settings.break_glass_roles is empty")
                && err.to_string().contains("quarantine_without_break_glass"),
            "{err}"
        );
        let acknowledged = Settings {
            quarantine_without_break_glass: true,
            ..none
        };
        let doc = quarantine_document(&acknowledged, "111122223333").unwrap();
        assert!(!doc.contains("Condition"), "{doc}");
    }
}
