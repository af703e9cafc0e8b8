//! `notify.chat`: post a message to the responders' channel. The output says whether it was
//! posted, queued for delivery (`cordon serve`'s outbox: `posted` is false, `delivery` is
//! `queued`) or, with no chat configured, only logged.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::cloud::Delivery;

use super::{args, Action, ActionError, ActionMeta, Context, Outcome, Param, Params};

/// The action.
pub struct NotifyChat;

static META: ActionMeta = ActionMeta {
    id: "notify.chat",
    description: "Post a message to the chat channel",
    params: &[
        Param { name: "text", required: true, description: "message text (finding fields are inserted as text)" },
        Param { name: "channel", required: false, description: "channel (default: the configured one)" },
    ],
    iam_actions: &[],
    example: "- id: tell\n  action: notify.chat\n  with:\n    text: \"Isolated ${finding.resources[0].id} in ${finding.account}\"\n",
    // A repeated post is noise, not harm, but a human should know a step was interrupted.
    idempotent: false,
    undo: None,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    text: String,
    channel: Option<String>,
}

#[async_trait]
impl Action for NotifyChat {
    fn meta(&self) -> &'static ActionMeta {
        &META
    }

    async fn execute(
        &self,
        ctx: &Context<'_>,
        params: &Params,
        _prepared: &Value,
    ) -> Result<Outcome, ActionError> {
        let a: Args = args(params)?;
        let delivery = ctx.cloud.chat.post(a.channel.as_deref(), &a.text).await?;
        Ok(Outcome {
            output: json!({
                "posted": delivery == Delivery::Posted,
                "delivery": delivery,
                "channel": a.channel,
            }),
            undoable: false,
            // A chat message cannot be read back: nothing is proven.
            proof: Value::Null,
        })
    }
}
