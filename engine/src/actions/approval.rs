//! `approval`: wait for a human decision, with a timeout and a default.
//!
//! The runner suspends the run at this step (journaled, so the wait survives restarts) until
//! `cordon approve` or chat decides, or the timeout applies the default. With `approvers: N`
//! the step goes on only once N different people approved (each approval is journaled, who and
//! when); a single denial denies.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{Action, ActionError, ActionMeta, Context, Outcome, Param, Params};

/// The action.
pub struct Approval;

static META: ActionMeta = ActionMeta {
    id: super::APPROVAL,
    description: "Wait for a human to approve or deny; after `timeout` the `default` decision applies",
    params: &[
        Param { name: "message", required: false, description: "what the approver is asked" },
        Param { name: "timeout", required: false, description: "e.g. 30m, 4h (default: wait forever)" },
        Param { name: "default", required: false, description: "approve | deny, applied at timeout (default deny)" },
        Param { name: "approvers", required: false, description: "how many different people must approve, 1 to 5 (default 1); one denial denies" },
    ],
    iam_actions: &[],
    example: "- id: ok-to-fence\n  action: approval\n  with:\n    message: Fence account ${finding.account}?\n    timeout: 1h\n    default: deny\n    approvers: 2\n",
    idempotent: true,
    undo: None,
};

#[async_trait]
impl Action for Approval {
    fn meta(&self) -> &'static ActionMeta {
        &META
    }

    async fn execute(
        &self,
        _ctx: &Context<'_>,
        params: &Params,
        _prepared: &Value,
    ) -> Result<Outcome, ActionError> {
        Ok(Outcome {
            output: json!({"message": params.get("message")}),
            undoable: false,
            proof: Value::Null,
        })
    }
}
