//! A run's one Slack message ("Block Kit", api.slack.com/block-kit), posted when the run first
//! has news and edited in place after (`chat.update`, see [`super::outbox`]): what the run acts
//! on (account, region, resources, finding), each step and who decided it, and
//! - while a step waits: what will change (the step, its parameters, the steps after it) with
//!   Approve / Deny buttons, each behind a `confirm` dialog; their value binds the click to the
//!   plan shown ([`super::plan`]);
//! - while something is contained: an Undo button whose `confirm` dialog shows the release plan.
//!
//! Every value from the run (finding fields, rendered parameters) is escaped; action ids and
//! button values are cordon's own.

use cordon_engine::run::{Run, RunState};
use serde_json::{json, Value};

use super::data;
use super::plan::{compact, release_plan, ApprovalPlan};

/// `action_id` of the Approve button.
pub const APPROVE_ACTION: &str = "cordon_approve";
/// `action_id` of the Deny button.
pub const DENY_ACTION: &str = "cordon_deny";
/// `action_id` of the Undo button.
pub const UNDO_ACTION: &str = "cordon_undo";

/// The most characters of parameters shown per step (Slack caps a text object at 3000).
const PARAMS_MAX: usize = 600;
/// Slack caps a `confirm` dialog's text at 300 characters.
const CONFIRM_MAX: usize = 300;

fn cut(text: String, max: usize) -> String {
    if text.chars().count() <= max {
        return text;
    }
    let mut t: String = text.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// `text` escaped and cut to at most `max` characters: cut before escaping (never inside an
/// entity), shorter until the entities fit.
fn escaped_within(text: &str, max: usize) -> String {
    let mut n = max;
    loop {
        let out = data(&cut(text.to_string(), n));
        if out.chars().count() <= max || n == 0 {
            return out;
        }
        n = n.saturating_sub(out.chars().count() - max).min(n - 1);
    }
}

/// The fallback text and the blocks of `run`'s message; `plan` is its waiting step's plan.
pub fn run_message(run: &Run, plan: Option<&ApprovalPlan>) -> (String, Value) {
    let text = format!(
        "Run {} ({}) in account {}: {}",
        data(&run.id),
        data(&run.playbook),
        data(&run.account),
        run.state.as_str()
    );
    let mut blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": format!(
            "*{}* run `{}` ({}): *{}*",
            headline(run.state), data(&run.id), data(&run.playbook), run.state.as_str())}}),
        facts(run),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": steps(run)}}),
    ];
    if let Some(p) = plan {
        blocks
            .push(json!({"type": "section", "text": {"type": "mrkdwn", "text": waiting(run, p)}}));
        let value = format!("{} {} {}", run.id, run.steps[p.step].id, p.hash);
        blocks.push(json!({"type": "actions", "block_id": "cordon_decision", "elements": [
            button("Approve", APPROVE_ACTION, "primary", &value,
                   "Approve this containment?", "The steps shown will run in the account shown."),
            button("Deny", DENY_ACTION, "danger", &value,
                   "Deny this containment?", "The run stops; the steps after this one are skipped."),
        ]}));
    }
    if let Some(undo) = undo_button(run) {
        blocks.push(json!({"type": "actions", "block_id": "cordon_undo", "elements": [undo]}));
    }
    (text, Value::Array(blocks))
}

fn headline(state: RunState) -> &'static str {
    match state {
        RunState::WaitingApproval => "Approval needed:",
        RunState::Pending | RunState::Running => "Containing:",
        RunState::Succeeded => "Contained:",
        RunState::Releasing => "Releasing:",
        RunState::Released => "Released:",
        _ => "Attention:",
    }
}

fn facts(run: &Run) -> Value {
    let resources: Vec<String> = run.finding["resources"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| format!("{} {}", compact(&r["type"]), compact(&r["id"])))
                .collect()
        })
        .unwrap_or_default();
    json!({"type": "section", "fields": [
        {"type": "mrkdwn", "text": format!("*Account*\n{}", data(&run.account))},
        {"type": "mrkdwn", "text": format!("*Region*\n{}", data(&run.region))},
        {"type": "mrkdwn", "text": format!("*Resources*\n{}", data(&cut(resources.join("\n"), PARAMS_MAX)))},
        {"type": "mrkdwn", "text": format!("*Finding*\n{}", data(&cut(compact(&run.finding["title"]), PARAMS_MAX)))},
    ]})
}

/// One line per step: its state, and who decided it.
fn steps(run: &Run) -> String {
    let lines: Vec<String> = run
        .steps
        .iter()
        .map(|st| {
            let mut line = format!(
                "• `{}` {} *{}*",
                data(&st.id),
                data(&st.action),
                st.state.as_str()
            );
            for a in &st.approvals {
                line.push_str(&format!(", approved by {}", data(&a.by)));
            }
            if let Some(d) = st.decision.as_ref().filter(|d| !d.approved) {
                line.push_str(&format!(", denied by {}", data(&d.by)));
            }
            if let Some(r) = st.release {
                line.push_str(&format!(", release {}", json!(r).as_str().unwrap_or("")));
            }
            line
        })
        .collect();
    let mut text = format!("*Steps*\n{}", lines.join("\n"));
    if let Some(e) = &run.error {
        text.push_str(&format!("\n*Error:* {}", data(&cut(e.clone(), PARAMS_MAX))));
    }
    text
}

/// What the waiting step will change.
fn waiting(run: &Run, p: &ApprovalPlan) -> String {
    let step = &run.steps[p.step];
    let params = step.params.as_ref().map(compact).unwrap_or_default();
    let ask = step
        .params
        .as_ref()
        .and_then(|p| p.get("message"))
        .and_then(Value::as_str)
        .map(|m| format!("\n>{}", data(m)))
        .unwrap_or_default();
    let mut text = format!(
        "*Waiting:* `{}` {}{ask}\n{}",
        data(&step.id),
        data(&step.action),
        data(&cut(params, PARAMS_MAX))
    );
    if !p.later.is_empty() {
        text.push_str("\n*Then, once approved:*");
        for l in &p.later {
            text.push_str(&format!(
                "\n• {} {}",
                data(&l.action),
                data(&cut(l.params.clone(), PARAMS_MAX))
            ));
        }
    }
    text
}

/// The Undo button, when the run holds something contained and may be released.
fn undo_button(run: &Run) -> Option<Value> {
    if !run.state.is_releasable() || run.state == RunState::WaitingApproval {
        return None;
    }
    let plan = release_plan(run);
    if plan.is_empty() {
        return None;
    }
    let lines: Vec<String> = plan
        .iter()
        .map(|(id, action, params)| format!("• undo `{id}` {action} {params}"))
        .collect();
    let body = escaped_within(
        &format!(
            "Release run {}, newest first:\n{}",
            run.id,
            lines.join("\n")
        ),
        CONFIRM_MAX,
    );
    Some(button(
        "Undo",
        UNDO_ACTION,
        "danger",
        &run.id,
        "Release this containment?",
        &body,
    ))
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
