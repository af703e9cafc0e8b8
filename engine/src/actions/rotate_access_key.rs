//! `iam.rotate_access_key`: a new key into SSM Parameter Store, the old key deactivated.
//!
//! The new secret goes straight from CreateAccessKey to a SecureString parameter; it is never
//! logged, journaled or returned. Not idempotent: a crash after CreateAccessKey leaves a key
//! whose secret is gone, so the runner stops the run for a human instead of creating another.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    args, hold_key, param, record, to_value, Action, ActionError, ActionMeta, Context, Outcome,
    Param, Params,
};
use crate::cloud::{KeyStatus, Target};
use crate::config::Settings;

/// The action.
pub struct RotateAccessKey;

static META: ActionMeta = ActionMeta {
    id: "iam.rotate_access_key",
    description: "Create a new access key stored as an SSM SecureString, deactivate the old one",
    params: &[
        Param { name: "user", required: true, description: "IAM user name" },
        Param { name: "key_id", required: true, description: "the access key to replace" },
    ],
    iam_actions: &[
        "iam:ListAccessKeys",
        "iam:CreateAccessKey",
        "iam:UpdateAccessKey",
        "ssm:PutParameter",
        // Existence is checked from the parameter's metadata; its value is never read back.
        "ssm:DescribeParameters",
    ],
    example: "- id: rotate\n  action: iam.rotate_access_key\n  with:\n    user: ${finding.user_name}\n    key_id: ${finding.resources[0].id}\n",
    idempotent: false,
    undo: Some("reactivate the old key (the new key stays)"),
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    user: String,
    key_id: String,
}

#[derive(Serialize, Deserialize)]
struct Before {
    user: String,
    key_id: String,
    was_active: bool,
}

#[async_trait]
impl Action for RotateAccessKey {
    fn meta(&self) -> &'static ActionMeta {
        &META
    }

    fn holds(&self, _settings: &Settings, t: &Target, params: &Params) -> Option<String> {
        hold_key(META.id, &[Some(&t.account), param(params, "key_id")])
    }

    async fn prepare(&self, ctx: &Context<'_>, params: &Params) -> Result<Value, ActionError> {
        let a: Args = args(params)?;
        let keys = ctx.cloud.iam.list_access_keys(&ctx.target, &a.user).await?;
        let old = keys.iter().find(|k| k.id == a.key_id).ok_or_else(|| {
            ActionError::Refused(format!("user {} has no access key {}", a.user, a.key_id))
        })?;
        // IAM allows two keys per user, inactive ones included.
        if keys.len() >= 2 {
            return Err(ActionError::Refused(format!(
                "user {} already has {} access keys (IAM allows 2); deactivate with iam.disable_user instead",
                a.user,
                keys.len()
            )));
        }
        Ok(to_value(&Before {
            was_active: old.status == KeyStatus::Active,
            user: a.user,
            key_id: a.key_id,
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
        let new = ctx.cloud.iam.create_access_key(t, &b.user).await?;
        let parameter = format!(
            "{}/{}/{}",
            ctx.settings.key_parameter_prefix.trim_end_matches('/'),
            b.user,
            new.id
        );
        ctx.cloud
            .ssm
            .put_secure_parameter(
                t,
                &parameter,
                &new.secret,
                &format!(
                    "access key {} of {} (cordon run {})",
                    new.id, b.user, t.run_id
                ),
            )
            .await?;
        drop(new.secret);
        ctx.cloud
            .iam
            .set_access_key_status(t, &b.user, &b.key_id, KeyStatus::Inactive)
            .await?;

        let keys = ctx.cloud.iam.list_access_keys(t, &b.user).await?;
        let status = |id: &str| keys.iter().find(|k| k.id == id).map(|k| k.status);
        let stored = ctx.cloud.ssm.parameter_exists(t, &parameter).await?;
        if status(&b.key_id) != Some(KeyStatus::Inactive)
            || status(&new.id) != Some(KeyStatus::Active)
            || !stored
        {
            return Err(ActionError::Verify(format!(
                "old key {:?}, new key {:?}, parameter stored {stored}",
                status(&b.key_id),
                status(&new.id)
            )));
        }
        Ok(Outcome {
            output: json!({"user": b.user, "old_key_id": b.key_id, "new_key_id": new.id, "parameter": parameter}),
            undoable: true,
            proof: json!({"keys": keys, "parameter": parameter, "parameter_exists": stored}),
        })
    }

    async fn undo(&self, ctx: &Context<'_>, prepared: &Value) -> Result<Value, ActionError> {
        let b: Before = record(prepared)?;
        if b.was_active {
            ctx.cloud
                .iam
                .set_access_key_status(&ctx.target, &b.user, &b.key_id, KeyStatus::Active)
                .await?;
        }
        let keys = ctx.cloud.iam.list_access_keys(&ctx.target, &b.user).await?;
        let ok = keys
            .iter()
            .any(|k| k.id == b.key_id && (k.status == KeyStatus::Active) == b.was_active);
        if !ok {
            return Err(ActionError::Verify(format!(
                "key {} of {} was not restored",
                b.key_id, b.user
            )));
        }
        Ok(json!({"user": b.user, "keys": keys}))
    }
}
