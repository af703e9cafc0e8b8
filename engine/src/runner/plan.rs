//! `--dry-run`: what a run would do, rendered from the finding, with nothing called.

use serde::Serialize;
use serde_json::{json, Value};

use super::drive::render;
use crate::event::FindingEvent;
use crate::playbook::{ParamTemplate, PlaybookRef};
use crate::script::{Context, Sandbox};

/// A planned run.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Playbook id.
    pub playbook: String,
    /// Mode.
    pub mode: crate::playbook::Mode,
    /// Account the steps act in by default (the finding's).
    pub account: String,
    /// Region.
    pub region: String,
    /// Steps.
    pub steps: Vec<PlannedStep>,
}

/// A planned step.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedStep {
    /// Step id.
    pub id: String,
    /// Action id.
    pub action: String,
    /// Whether it waits for a human.
    pub approve: bool,
    /// Its `when`, if any (evaluated at run time, after earlier steps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Parameters rendered from the finding. A parameter that reads an earlier step's output
    /// is `{"at_run_time": TEMPLATE, "after_steps": [STEP ID...]}`; one that fails to render is
    /// `{"not_rendered": "parameter `NAME`: ERROR"}` (the run would fail that step).
    pub params: Value,
}

/// One parameter as planned: rendered, or the template when it reads an earlier step's output
/// (known only once that step ran), or why it does not render.
fn planned(sandbox: &Sandbox, name: &str, t: &ParamTemplate, ctx: &Context) -> Value {
    if let ParamTemplate::Text(t) = t {
        let after = t.step_refs();
        if !after.is_empty() {
            return json!({"at_run_time": t.source(), "after_steps": after});
        }
    }
    render(sandbox, t, ctx)
        .unwrap_or_else(|e| json!({"not_rendered": format!("parameter `{name}`: {e}")}))
}

/// The plan of `playbook` for this finding: nothing is called, nothing is journaled.
pub fn plan(sandbox: &Sandbox, playbook: &PlaybookRef, fe: &FindingEvent) -> Plan {
    let finding = serde_json::to_value(&fe.finding).unwrap_or(Value::Null);
    let run = json!({"id": "(dry run)", "playbook": playbook.id, "account": fe.finding.account, "region": fe.finding.region});
    let ctx = Context::new(&fe.event, &finding, &playbook.vars, &json!({}), &run);
    let steps = playbook
        .steps
        .iter()
        .map(|s| PlannedStep {
            id: s.id.clone(),
            action: s.action.meta().id.to_string(),
            approve: s.approve,
            when: s.when.as_ref().map(|w| w.source().to_string()),
            params: Value::Object(
                s.with
                    .iter()
                    .map(|(k, t)| (k.clone(), planned(sandbox, k, t, &ctx)))
                    .collect(),
            ),
        })
        .collect();
    Plan {
        playbook: playbook.id.clone(),
        mode: playbook.mode,
        account: fe.finding.account.clone(),
        region: fe.finding.region.clone(),
        steps,
    }
}
