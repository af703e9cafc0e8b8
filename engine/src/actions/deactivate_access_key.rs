//! `iam.deactivate_access_key`: set one access key Inactive (GuardDuty's first step for a
//! compromised long-term key). Deactivation is reversible; deletion is not, so cordon never
//! deletes.

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
pub struct DeactivateAccessKey;

static META: ActionMeta = ActionMeta {
    id: "iam.deactivate_access_key",
    description: "Set one IAM user access key Inactive",
    params: &[
        Param { name: "user", required: true, description: "IAM user name" },
        Param { name: "key_id", required: true, description: "access key id (AKIA...)" },
    ],
    iam_actions: &["iam:ListAccessKeys", "iam:UpdateAccessKey"],
    example: "- id: deactivate\n  action: iam.deactivate_access_key\n  with:\n    user: ${finding.user_name}\n    key_id: ${finding.resources[0].id}\n",
    idempotent: true,
    undo: Some("set the key Active again, if it was active before"),
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

async fn status(ctx: &Context<'_>, user: &str, key: &str) -> Result<KeyStatus, ActionError> {
    let keys = ctx.cloud.iam.list_access_keys(&ctx.target, user).await?;
    keys.iter()
        .find(|k| k.id == key)
        .map(|k| k.status)
        .ok_or_else(|| {
            ActionError::Refused(format!(
                "user {user} in {} has no access key {key}",
                ctx.target.account
            ))
        })
}

#[async_trait]
impl Action for DeactivateAccessKey {
    fn meta(&self) -> &'static ActionMeta {
        &META
    }

    fn holds(&self, _settings: &Settings, t: &Target, params: &Params) -> Option<String> {
        hold_key(META.id, &[Some(&t.account), param(params, "key_id")])
    }

    async fn prepare(&self, ctx: &Context<'_>, params: &Params) -> Result<Value, ActionError> {
        let a: Args = args(params)?;
        let was_active = status(ctx, &a.user, &a.key_id).await? == KeyStatus::Active;
        Ok(to_value(&Before {
            user: a.user,
            key_id: a.key_id,
            was_active,
        }))
    }

    async fn execute(
        &self,
        ctx: &Context<'_>,
        _params: &Params,
        prepared: &Value,
    ) -> Result<Outcome, ActionError> {
        let b: Before = record(prepared)?;
        ctx.cloud
            .iam
            .set_access_key_status(&ctx.target, &b.user, &b.key_id, KeyStatus::Inactive)
            .await?;
        let now = status(ctx, &b.user, &b.key_id).await?;
        if now != KeyStatus::Inactive {
            return Err(ActionError::Verify(format!(
                "key {} of {} is {now:?} after deactivation",
                b.key_id, b.user
            )));
        }
        Ok(Outcome {
            output: json!({"user": b.user, "key_id": b.key_id, "was_active": b.was_active}),
            undoable: b.was_active,
            proof: json!({"key_id": b.key_id, "status": now}),
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
        let now = status(ctx, &b.user, &b.key_id).await?;
        if (now == KeyStatus::Active) != b.was_active {
            return Err(ActionError::Verify(format!(
                "key {} of {} is {now:?}, expected it restored",
                b.key_id, b.user
            )));
        }
        Ok(json!({"key_id": b.key_id, "status": now}))
    }
}
