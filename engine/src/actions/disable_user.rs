//! `iam.disable_user`: deactivate every access key, delete the console password, deny all.
//!
//! Keys are deactivated, never deleted (deactivation is reversible). A missing login profile is
//! not an error. The deny-all is an inline user policy, so it works in accounts where the
//! `AWSDenyAll` managed policy is unavailable and is removed cleanly on release.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    args, hold_key, param, record, to_value, Action, ActionError, ActionMeta, Context, Outcome,
    Param, Params,
};
use crate::cloud::{missing_as_done, KeyStatus, Target};
use crate::config::Settings;

/// The action.
pub struct DisableUser;

static META: ActionMeta = ActionMeta {
    id: "iam.disable_user",
    description: "Deactivate a user's access keys, delete its console password, attach an inline deny-all",
    params: &[Param { name: "user", required: true, description: "IAM user name" }],
    iam_actions: &[
        "iam:GetUser",
        "iam:ListAccessKeys",
        "iam:UpdateAccessKey",
        "iam:GetLoginProfile",
        "iam:DeleteLoginProfile",
        "iam:GetUserPolicy",
        "iam:PutUserPolicy",
        "iam:DeleteUserPolicy",
    ],
    example: "- id: disable\n  action: iam.disable_user\n  approve: true\n  with:\n    user: ${finding.user_name}\n",
    idempotent: true,
    undo: Some("reactivate the keys it deactivated and remove the deny-all; a deleted console password cannot be restored"),
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    user: String,
}

#[derive(Serialize, Deserialize)]
struct Before {
    user: String,
    active_keys: Vec<String>,
    had_login_profile: bool,
    had_deny_policy: bool,
}

/// An inline policy that denies every action.
pub(crate) const DENY_ALL: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"CordonDenyAll","Effect":"Deny","Action":"*","Resource":"*"}]}"#;

#[async_trait]
impl Action for DisableUser {
    fn meta(&self) -> &'static ActionMeta {
        &META
    }

    fn holds(&self, _settings: &Settings, t: &Target, params: &Params) -> Option<String> {
        hold_key(META.id, &[Some(&t.account), param(params, "user")])
    }

    async fn prepare(&self, ctx: &Context<'_>, params: &Params) -> Result<Value, ActionError> {
        let a: Args = args(params)?;
        let t = &ctx.target;
        if ctx.cloud.iam.get_user(t, &a.user).await?.is_none() {
            return Err(crate::cloud::CloudError::not_found(format!(
                "user {} not found in account {}",
                a.user, t.account
            ))
            .into());
        }
        let keys = ctx.cloud.iam.list_access_keys(t, &a.user).await?;
        Ok(to_value(&Before {
            active_keys: keys
                .into_iter()
                .filter(|k| k.status == KeyStatus::Active)
                .map(|k| k.id)
                .collect(),
            had_login_profile: ctx.cloud.iam.has_login_profile(t, &a.user).await?,
            had_deny_policy: ctx
                .cloud
                .iam
                .get_user_policy(t, &a.user, &ctx.settings.user_deny_policy_name)
                .await?
                .is_some(),
            user: a.user,
        }))
    }

    async fn execute(
        &self,
        ctx: &Context<'_>,
        _params: &Params,
        prepared: &Value,
    ) -> Result<Outcome, ActionError> {
        let b: Before = record(prepared)?;
        let t = &ctx.target;
        for key in &b.active_keys {
            ctx.cloud
                .iam
                .set_access_key_status(t, &b.user, key, KeyStatus::Inactive)
                .await?;
        }
        missing_as_done(ctx.cloud.iam.delete_login_profile(t, &b.user).await)?;
        ctx.cloud
            .iam
            .put_user_policy(t, &b.user, &ctx.settings.user_deny_policy_name, DENY_ALL)
            .await?;

        let keys = ctx.cloud.iam.list_access_keys(t, &b.user).await?;
        let still_active: Vec<&str> = keys
            .iter()
            .filter(|k| k.status == KeyStatus::Active)
            .map(|k| k.id.as_str())
            .collect();
        let login = ctx.cloud.iam.has_login_profile(t, &b.user).await?;
        let deny = ctx
            .cloud
            .iam
            .get_user_policy(t, &b.user, &ctx.settings.user_deny_policy_name)
            .await?
            .is_some();
        if !still_active.is_empty() || login || !deny {
            return Err(ActionError::Verify(format!(
                "user {}: active keys {still_active:?}, login profile {login}, deny policy {deny}",
                b.user
            )));
        }
        Ok(Outcome {
            output: json!({"user": b.user, "deactivated_keys": b.active_keys, "login_profile_deleted": b.had_login_profile}),
            undoable: true,
            proof: json!({"user": b.user, "keys": keys, "login_profile": login, "deny_policy": deny}),
        })
    }

    async fn undo(&self, ctx: &Context<'_>, prepared: &Value) -> Result<Value, ActionError> {
        let b: Before = record(prepared)?;
        let t = &ctx.target;
        for key in &b.active_keys {
            ctx.cloud
                .iam
                .set_access_key_status(t, &b.user, key, KeyStatus::Active)
                .await?;
        }
        if !b.had_deny_policy {
            missing_as_done(
                ctx.cloud
                    .iam
                    .delete_user_policy(t, &b.user, &ctx.settings.user_deny_policy_name)
                    .await,
            )?;
        }
        let keys = ctx.cloud.iam.list_access_keys(t, &b.user).await?;
        let inactive: Vec<&str> = keys
            .iter()
            .filter(|k| k.status == KeyStatus::Inactive && b.active_keys.contains(&k.id))
            .map(|k| k.id.as_str())
            .collect();
        if !inactive.is_empty() {
            return Err(ActionError::Verify(format!(
                "keys {inactive:?} of {} are still inactive",
                b.user
            )));
        }
        Ok(json!({
            "user": b.user,
            "keys": keys,
            "note": if b.had_login_profile { "the console password was deleted and cannot be restored: set a new one" } else { "" },
        }))
    }
}
