//! The approval request: a Block Kit message ("Block Kit", api.slack.com/block-kit) saying what
//! will change (account, resources, the action and its parameters) with Approve / Deny buttons,
//! each behind a `confirm` dialog. Every value from the run (finding fields, rendered
//! parameters) is escaped; action ids and button values are cordon's own.

use cordon_engine::playbook::ParamTemplate;
use cordon_engine::run::{Run, StepState};
use serde_json::{json, Value};

use super::{data, Slack};

/// `action_id` of the Approve button.
pub const APPROVE_ACTION: &str = "cordon_approve";
/// `action_id` of the Deny button.
pub const DENY_ACTION: &str = "cordon_deny";

/// The most characters of parameters shown per step (Slack caps a text object at 3000).
const PARAMS_MAX: usize = 600;

/// Posts the approval request of run `id`'s waiting step, once per (run, step) per process.
pub async fn post_approval(slack: &Slack, id: &str) {
    let run = match slack.server.dispatcher.runner().journal().get(id).await {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(run_id = id, error = %e, "Slack: cannot read the run to post");
            return;
        }
    };
    let Some(i) = run
        .steps
        .iter()
        .position(|s| s.state == StepState::WaitingApproval)
    else {
        return;
    };
    let key = (run.id.clone(), run.steps[i].id.clone());
    if !slack
        .posted
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key)
    {
        return;
    }
    let later = following_steps(slack, &run, i);
    let (text, blocks) = message(&run, i, &later);
    match slack.chat.post_message(None, &text, Some(blocks)).await {
        Ok(_) => {
            tracing::info!(run_id = id, step = %run.steps[i].id, "Slack: approval request posted")
        }
        Err(e) => {
            tracing::warn!(run_id = id, error = %e, "Slack: cannot post the approval request")
        }
    }
}

/// The steps after step `i` as `(action, parameters as written in the playbook)`.
fn following_steps(slack: &Slack, run: &Run, i: usize) -> Vec<(String, String)> {
    let set = slack.server.dispatcher.runner().playbooks();
    let Some(pb) = set.get(&run.playbook) else {
        return Vec::new();
    };
    pb.steps
        .iter()
        .skip_while(|s| s.id != run.steps[i].id)
        .skip(1)
        .map(|s| {
            let params: Vec<String> = s
                .with
                .iter()
                .map(|(k, v)| format!("{k}={}", template(v)))
                .collect();
            (s.action.meta().id.to_string(), params.join(" "))
        })
        .collect()
}

fn template(t: &ParamTemplate) -> String {
    match t {
        ParamTemplate::Const(v) => compact(v),
        ParamTemplate::Text(t) => t.source().to_string(),
        ParamTemplate::List(items) => {
            let inner: Vec<String> = items.iter().map(template).collect();
            format!("[{}]", inner.join(", "))
        }
        ParamTemplate::Map(pairs) => {
            let inner: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{k}: {}", template(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn cut(text: String) -> String {
    if text.chars().count() <= PARAMS_MAX {
        return text;
    }
    let mut t: String = text.chars().take(PARAMS_MAX).collect();
    t.push('…');
    t
}

/// The fallback text and the blocks of the approval request for step `i` of `run`.
pub fn message(run: &Run, i: usize, later: &[(String, String)]) -> (String, Value) {
    let step = &run.steps[i];
    let resources: Vec<String> = run.finding["resources"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| format!("{} {}", compact(&r["type"]), compact(&r["id"])))
                .collect()
        })
        .unwrap_or_default();
    let params = step.params.as_ref().map(compact).unwrap_or_default();
    let ask = step
        .params
        .as_ref()
        .and_then(|p| p.get("message"))
        .and_then(Value::as_str)
        .map(|m| format!("\n>{}", data(m)))
        .unwrap_or_default();
    let mut change = format!(
        "*Waiting:* `{}` {}\n{}",
        data(&step.id),
        data(&step.action),
        data(&cut(params))
    );
    if !later.is_empty() {
        change.push_str("\n*Then, once approved:*");
        for (action, params) in later {
            change.push_str(&format!(
                "\n• {} {}",
                data(action),
                data(&cut(params.clone()))
            ));
        }
    }
    let text = format!(
        "Approval needed: run {} ({}) in account {}",
        data(&run.id),
        data(&run.playbook),
        data(&run.account)
    );
    let value = format!("{} {}", run.id, step.id);
    let blocks = json!([
        {"type": "section", "text": {"type": "mrkdwn", "text": format!(
            "*Approval needed* for run `{}` ({}){ask}", data(&run.id), data(&run.playbook))}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": format!("*Account*\n{}", data(&run.account))},
            {"type": "mrkdwn", "text": format!("*Region*\n{}", data(&run.region))},
            {"type": "mrkdwn", "text": format!("*Resources*\n{}", data(&cut(resources.join("\n"))))},
            {"type": "mrkdwn", "text": format!("*Finding*\n{}", data(&cut(compact(&run.finding["title"]))))},
        ]},
        {"type": "section", "text": {"type": "mrkdwn", "text": change}},
        {"type": "actions", "block_id": "cordon_decision", "elements": [
            button("Approve", APPROVE_ACTION, "primary", &value,
                   "Approve this containment?", "The steps above will run in the account shown."),
            button("Deny", DENY_ACTION, "danger", &value,
                   "Deny this containment?", "The run stops; the steps after this one are skipped."),
        ]},
    ]);
    (text, blocks)
}

fn button(label: &str, action: &str, style: &str, value: &str, title: &str, body: &str) -> Value {
    json!({
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "style": style,
        "action_id": action,
        "value": value,
        "confirm": {
            "title": {"type": "plain_text", "text": title},
            "text": {"type": "mrkdwn", "text": body},
            "confirm": {"type": "plain_text", "text": label},
            "deny": {"type": "plain_text", "text": "Cancel"},
            "style": style,
        },
    })
}
