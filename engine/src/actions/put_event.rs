//! `eventbridge.put_event`: tell other systems what cordon did (an audit trail on a bus).

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{args, Action, ActionError, ActionMeta, Context, Outcome, Param, Params};

/// The action.
pub struct PutEvent;

static META: ActionMeta = ActionMeta {
    id: "eventbridge.put_event",
    description: "Put an audit event on an EventBridge bus (source cordon)",
    params: &[
        Param { name: "bus", required: true, description: "event bus name or ARN" },
        Param { name: "detail_type", required: false, description: "default \"cordon step\"" },
        Param { name: "detail", required: false, description: "JSON detail (default: run and step ids)" },
    ],
    iam_actions: &["events:PutEvents"],
    example: "- id: audit\n  action: eventbridge.put_event\n  with:\n    bus: security-audit\n    detail:\n      finding: ${finding.id}\n",
    // Consumers get at-least-once delivery from EventBridge anyway; a repeat carries the same ids.
    idempotent: true,
    undo: None,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    bus: String,
    detail_type: Option<String>,
    detail: Option<Value>,
}

#[async_trait]
impl Action for PutEvent {
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
        let detail = json!({
            "run_id": ctx.target.run_id,
            "step": ctx.step_key,
            "account": ctx.target.account,
            "detail": a.detail.unwrap_or(Value::Null),
        });
        let detail_type = a.detail_type.unwrap_or_else(|| "cordon step".into());
        ctx.cloud
            .events
            .put_event(&a.bus, "cordon", &detail_type, &detail)
            .await?;
        Ok(Outcome {
            output: json!({"bus": a.bus, "detail_type": detail_type}),
            undoable: false,
            // PutEvents cannot be read back (an event on a bus is not kept): nothing is proven.
            proof: Value::Null,
        })
    }
}
