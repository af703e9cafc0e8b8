//! `ssm.run_command`: run an SSM document on instances, e.g. to collect forensic artefacts.
//!
//! Parameters are passed as document parameters, each a string or a list of strings; nothing is
//! ever spliced into a shell command line, so finding fields stay data. Not idempotent: a
//! command may already have run when the process died.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{args, Action, ActionError, ActionMeta, Context, Outcome, Param, Params};

/// The action.
pub struct RunCommand;

static META: ActionMeta = ActionMeta {
    id: "ssm.run_command",
    description: "Run an SSM document on instances with document parameters (never a shell string built from finding fields)",
    params: &[
        Param { name: "document", required: true, description: "SSM document name, e.g. AWS-RunShellScript or your own" },
        Param { name: "instances", required: true, description: "instance id or list of ids" },
        Param { name: "parameters", required: false, description: "document parameters: name -> string or list of strings" },
        Param { name: "comment", required: false, description: "shown in the SSM console" },
    ],
    iam_actions: &["ssm:SendCommand", "ssm:GetCommandInvocation"],
    example: "- id: collect\n  action: ssm.run_command\n  with:\n    document: Forensics-CollectMemory\n    instances: ${finding.resources[0].id}\n    parameters:\n      bucket: evidence-bucket\n",
    idempotent: false,
    undo: None,
};

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    document: String,
    instances: OneOrMany,
    #[serde(default)]
    parameters: BTreeMap<String, OneOrMany>,
    comment: Option<String>,
}

/// SSM document names: letters, digits, `_ - .` and, for shared documents, an ARN.
fn valid_document(name: &str) -> bool {
    (3..=256).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:/".contains(c))
}

#[async_trait]
impl Action for RunCommand {
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
        if !valid_document(&a.document) {
            return Err(ActionError::Params(format!(
                "document: {:?} is not an SSM document name",
                a.document
            )));
        }
        let instances = a.instances.into_vec();
        if instances.is_empty()
            || instances
                .iter()
                .any(|i| !i.starts_with("i-") && !i.starts_with("mi-"))
        {
            return Err(ActionError::Params(format!(
                "instances: expected instance ids, got {instances:?}"
            )));
        }
        let parameters: BTreeMap<String, Vec<String>> = a
            .parameters
            .into_iter()
            .map(|(k, v)| (k, v.into_vec()))
            .collect();
        let comment = a
            .comment
            .unwrap_or_else(|| format!("cordon {}", ctx.step_key));
        let t = &ctx.target;
        let command = ctx
            .cloud
            .ssm
            .send_command(t, &a.document, &instances, &parameters, &comment)
            .await?;
        let mut status = BTreeMap::new();
        for i in &instances {
            status.insert(
                i.clone(),
                ctx.cloud.ssm.command_status(t, &command, i).await?,
            );
        }
        Ok(Outcome {
            output: json!({"command_id": command, "document": a.document, "instances": instances}),
            undoable: false,
            proof: json!({"command_id": command, "status": status}),
        })
    }
}
