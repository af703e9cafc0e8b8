//! `iam.revoke_role_sessions`: the IAM console's "Revoke active sessions".
//!
//! An inline policy named `AWSRevokeOlderSessions` denies everything to sessions whose
//! `aws:TokenIssueTime` is older than now. It takes effect within minutes, not at once;
//! long-term keys are unaffected. AWS lets no one edit a service-linked role or an IAM Identity
//! Center role: for those the step is refused before any change, saying where to revoke
//! instead ([`refusal`]). Running it again moves the time forward. With `accounts: all` it runs in every account of the
//! organization where the role exists (stolen credentials of a role deployed everywhere).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    args, hold_key, param, record, to_value, Action, ActionError, ActionMeta, Context, Outcome,
    Param, Params,
};
use futures_util::future::join_all;
use tokio::sync::Semaphore;

use crate::clock::rfc3339;
use crate::cloud::{
    missing_as_done, missing_as_none, CloudError, ErrorKind, ProtectedRole, RoleInfo, Target,
};
use crate::config::Settings;

/// The action.
pub struct RevokeRoleSessions;

static META: ActionMeta = ActionMeta {
    id: "iam.revoke_role_sessions",
    description: "Deny every session of a role issued before now (inline AWSRevokeOlderSessions policy)",
    params: &[
        Param { name: "role", required: true, description: "role name" },
        Param {
            name: "accounts",
            required: false,
            description: "account ids, or \"all\" for every account where the role exists (default: the target account)",
        },
    ],
    iam_actions: &["iam:GetRole", "iam:GetRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy", "organizations:ListAccounts"],
    example: "- id: revoke\n  action: iam.revoke_role_sessions\n  with:\n    role: ${finding.resources[0].id}\n",
    idempotent: true,
    undo: Some("restore the role's previous revoke policy, or delete it"),
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    role: String,
    accounts: Option<Accounts>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Accounts {
    Named(String),
    List(Vec<String>),
}

/// Per account: the revoke policy the role already had, or why the account could not be read.
#[derive(Serialize, Deserialize)]
struct Before {
    role: String,
    accounts: Vec<AccountBefore>,
}

#[derive(Serialize, Deserialize)]
struct AccountBefore {
    account: String,
    previous: Option<String>,
    /// Why the account could not be read (no response role there, access denied...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unreachable: Option<String>,
}

/// The deny policy for sessions issued before `now_ms`.
pub(crate) fn revoke_document(now_ms: u64) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Deny",
            "Action": ["*"],
            "Resource": ["*"],
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": rfc3339(now_ms)}}
        }]
    })
    .to_string()
}

/// Why the role's sessions cannot be revoked here, and where to revoke them instead.
fn refusal(account: &str, role: &RoleInfo, why: ProtectedRole) -> ActionError {
    let (name, path) = (&role.name, &role.path);
    ActionError::Refused(match why {
        // IAM Identity Center User Guide, "Revoke active IAM role sessions created by
        // permission sets" and "View and end active sessions for workforce users".
        ProtectedRole::IdentityCenter => format!(
            "role {name} in {account} (path {path}) is made by an IAM Identity Center permission set, and AWS lets no one edit it; revoke its sessions in IAM Identity Center: add a deny policy with an identitystore:userId condition to the permission set and re-provision it, end the user's active sessions and disable the user (console or the sso-admin and identitystore APIs)"
        ),
        // IAM User Guide: "You cannot revoke the session for a service-linked role."
        ProtectedRole::ServiceLinked => {
            let service = path.trim_start_matches("/aws-service-role/").trim_end_matches('/');
            format!(
                "role {name} in {account} (path {path}) is a service-linked role: only its service ({service}) may change it and AWS cannot revoke its sessions; contain it through that service (turn off or reconfigure the feature that uses the role)"
            )
        }
    })
}

/// Accounts worked on at once: the connectors' per-account rate limits do the rest.
const FAN_OUT: usize = 16;

fn in_account(ctx: &Context<'_>, account: &str) -> Target {
    Target {
        account: account.to_string(),
        ..ctx.target.clone()
    }
}

#[async_trait]
impl Action for RevokeRoleSessions {
    fn meta(&self) -> &'static ActionMeta {
        &META
    }

    /// One key per role and set of accounts as written (`all`, a list, or the target's).
    fn holds(&self, _settings: &Settings, t: &Target, params: &Params) -> Option<String> {
        let accounts = match params.get("accounts") {
            None => t.account.clone(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(list)) => {
                let mut ids: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
                ids.sort_unstable();
                ids.dedup();
                ids.join(",")
            }
            Some(other) => other.to_string(),
        };
        hold_key(META.id, &[param(params, "role"), Some(&accounts)])
    }

    async fn prepare(&self, ctx: &Context<'_>, params: &Params) -> Result<Value, ActionError> {
        let a: Args = args(params)?;
        let accounts = match a.accounts {
            None => vec![ctx.target.account.clone()],
            Some(Accounts::Named(s)) if s == "all" => ctx.cloud.org.list_accounts().await?,
            Some(Accounts::Named(s)) => vec![s],
            Some(Accounts::List(l)) => l,
        };
        let name = &ctx.settings.revoke_policy_name;
        let gate = Semaphore::new(FAN_OUT);
        let reads = accounts.into_iter().map(|account| {
            let (gate, role) = (&gate, &a.role);
            async move {
                let _turn = gate.acquire().await;
                let t = in_account(ctx, &account);
                // Ok(Err(_)): the role is one AWS lets no one edit.
                let read = async {
                    let found: Option<RoleInfo> = ctx.cloud.iam.get_role(&t, role).await?;
                    match found {
                        Some(r) => match r.protection() {
                            Some(why) => Ok(Err(refusal(&account, &r, why))),
                            None => Ok(Ok(ctx.cloud.iam.get_role_policy(&t, role, name).await?)),
                        },
                        // No such role here: nothing to revoke, and the write will say so.
                        None => Ok(Ok(None)),
                    }
                }
                .await;
                let read: Result<Result<Option<String>, ActionError>, CloudError> = read;
                match read {
                    Ok(Ok(previous)) => Ok(AccountBefore {
                        account,
                        previous,
                        unreachable: None,
                    }),
                    Ok(Err(refused)) => Err(refused),
                    // Throttling and 5xx: let the runner retry the step.
                    Err(e) if e.kind.is_retryable() => Err(ActionError::Cloud(e)),
                    // One account out of reach must not stop the others from being contained.
                    Err(e) => Ok(AccountBefore {
                        account,
                        previous: None,
                        unreachable: Some(e.message),
                    }),
                }
            }
        });
        let accounts = join_all(reads)
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        Ok(to_value(&Before {
            role: a.role,
            accounts,
        }))
    }

    async fn execute(
        &self,
        ctx: &Context<'_>,
        _params: &Params,
        prepared: &Value,
    ) -> Result<Outcome, ActionError> {
        let before: Before = record(prepared)?;
        let name = &ctx.settings.revoke_policy_name;
        let doc = revoke_document(ctx.now_ms);
        let gate = Semaphore::new(FAN_OUT);
        let writes = before
            .accounts
            .iter()
            .filter(|a| a.unreachable.is_none())
            .map(|acct| {
                let (gate, role, doc) = (&gate, &before.role, &doc);
                async move {
                    let _turn = gate.acquire().await;
                    let t = in_account(ctx, &acct.account);
                    // No such role in this account: nothing to revoke there.
                    let put = ctx.cloud.iam.put_role_policy(&t, role, name, doc).await;
                    if missing_as_none(put)?.is_none() {
                        return Ok(None);
                    }
                    let read = ctx.cloud.iam.get_role_policy(&t, role, name).await?;
                    if read.as_deref().map(same_json) != Some(same_json(doc)) {
                        return Err(ActionError::Verify(format!(
                        "role {role} in {} does not carry the revoke policy after PutRolePolicy",
                        acct.account
                    )));
                    }
                    Ok(Some(acct.account.clone()))
                }
            });
        let revoked: Vec<String> = join_all(writes)
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        let unreachable: Vec<String> = before
            .accounts
            .iter()
            .filter_map(|a| {
                a.unreachable
                    .as_ref()
                    .map(|e| format!("{}: {e}", a.account))
            })
            .collect();
        if !unreachable.is_empty() {
            // The reachable accounts are contained (and release will undo them); the step still
            // fails so that nobody mistakes a partial containment for a whole one.
            return Err(ActionError::Cloud(crate::cloud::CloudError::new(
                ErrorKind::Denied,
                format!(
                    "role {} revoked in {revoked:?}, but {} account(s) could not be reached: {}",
                    before.role,
                    unreachable.len(),
                    unreachable.join("; ")
                ),
            )));
        }
        if revoked.is_empty() {
            return Err(ActionError::Cloud(crate::cloud::CloudError::new(
                ErrorKind::NotFound,
                format!(
                    "role {} exists in none of the accounts asked for",
                    before.role
                ),
            )));
        }
        Ok(Outcome {
            output: json!({"role": before.role, "accounts": revoked, "issued_before": rfc3339(ctx.now_ms)}),
            undoable: true,
            proof: json!({"policy": name, "accounts": revoked, "document": serde_json::from_str::<Value>(&doc).unwrap_or_default()}),
        })
    }

    async fn undo(&self, ctx: &Context<'_>, prepared: &Value) -> Result<Value, ActionError> {
        let before: Before = record(prepared)?;
        let name = &ctx.settings.revoke_policy_name;
        let gate = Semaphore::new(FAN_OUT);
        let restores = before
            .accounts
            .iter()
            .filter(|a| a.unreachable.is_none())
            .map(|acct| {
                let (gate, role) = (&gate, &before.role);
                async move {
                    let _turn = gate.acquire().await;
                    let t = in_account(ctx, &acct.account);
                    let undone = match &acct.previous {
                        Some(doc) => ctx.cloud.iam.put_role_policy(&t, role, name, doc).await,
                        None => ctx.cloud.iam.delete_role_policy(&t, role, name).await,
                    };
                    // Already gone, or no such role here: nothing to restore.
                    missing_as_done(undone)?;
                    let now = ctx.cloud.iam.get_role_policy(&t, role, name).await?;
                    if now.as_deref().map(same_json) != acct.previous.as_deref().map(same_json) {
                        return Err(ActionError::Verify(format!(
                            "role {role} in {} was not restored",
                            acct.account
                        )));
                    }
                    Ok(json!({"account": acct.account, "policy_present": now.is_some()}))
                }
            });
        let restored = join_all(restores)
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        Ok(json!({"role": before.role, "accounts": restored}))
    }
}

/// Policy documents compare as JSON: IAM may reformat them.
fn same_json(doc: &str) -> Value {
    serde_json::from_str(doc).unwrap_or_else(|_| Value::String(doc.to_string()))
}
