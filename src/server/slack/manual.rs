//! `/cordon run PLAYBOOK key=value ...`: starts a manual playbook by hand with its typed
//! `inputs:` (see `cordon_engine::playbook::inputs`), checked before any run exists.
//!
//! With no finding to act on, the run gets one made from the inputs: its account is the
//! `account_id` input (required), its region the `region` input (else `us-east-1`, where IAM
//! and Organizations are called), and its resources the `instance_id`, `user_name`,
//! `role_name` and `access_key_id` inputs, in that order. Playbooks read the inputs as
//! `${event.detail.inputs.NAME}` and the resources as `${finding.resources[N].id}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::response::Response;
use cordon_engine::clock::{rfc3339, Clock, SystemClock};
use cordon_engine::event::FindingEvent;
use cordon_engine::finding::{kind, Finding, FindingSource, Resource, SeverityLabel};
use cordon_engine::ids::{IdSource, RandomIds};
use cordon_engine::journal::Admission;
use cordon_engine::playbook::{bind_inputs, InputType, Mode};
use cordon_engine::run::Trigger;
use serde_json::json;

use super::{ephemeral, in_channel, Identity, Slack};

/// Region of a manual run whose playbook takes no `region` input.
const DEFAULT_REGION: &str = "us-east-1";

/// `run PLAYBOOK key=value ...` for `who` (already allowed to run playbooks).
pub(super) async fn run(s: &Arc<Slack>, who: &Identity, id: &str, args: &[&str]) -> Response {
    let fe = match finding_for(s, who, id, args) {
        Ok(fe) => fe,
        Err(problems) => {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| format!("• {}", s.data(p)))
                .collect();
            return ephemeral(&format!("Not started:\n{}", lines.join("\n")));
        }
    };
    let Some(pb) = s.server.dispatcher.runner().playbooks().get(id).cloned() else {
        return ephemeral(&format!("No playbook {}.", s.data(id)));
    };
    s.server.seed(&fe);
    let trigger = Trigger::Manual { by: who.by() };
    match s
        .server
        .dispatcher
        .start_run(&pb, &fe, trigger, Admission::Rerun)
        .await
    {
        Ok(sub) => match (&sub.run_id, &sub.error) {
            (Some(run), None) => {
                tracing::info!(run_id = %run, playbook = id, by = %who.by(), "Manual run started from chat");
                in_channel(&format!(
                    "Run `{}` of {} started by {} ({}) in account {}.",
                    s.data(run),
                    s.data(id),
                    who.mention(),
                    who.key(),
                    s.data(&fe.finding.account)
                ))
            }
            (_, Some(e)) => ephemeral(&format!("Not started: {}", s.data(e))),
            (None, None) => ephemeral("Not started."),
        },
        Err(e) => ephemeral(&format!("Not started: {}", s.data(&e.to_string()))),
    }
}

/// The finding a manual run of playbook `id` acts on, made from `args`; `Err` lists every
/// problem (an unknown playbook, one that is not manual, bad or missing inputs).
fn finding_for(
    s: &Slack,
    who: &Identity,
    id: &str,
    args: &[&str],
) -> Result<FindingEvent, Vec<String>> {
    let set = s.server.dispatcher.runner().playbooks();
    let Some(pb) = set.get(id) else {
        let manual: Vec<&str> = set
            .iter()
            .filter(|p| p.mode == Mode::Manual)
            .map(|p| p.id.as_str())
            .collect();
        return Err(vec![format!(
            "no playbook {id:?}; manual playbooks: {}",
            if manual.is_empty() {
                "none".into()
            } else {
                manual.join(", ")
            }
        )]);
    };
    if pb.mode != Mode::Manual {
        return Err(vec![format!(
            "playbook {id} is not manual: findings start it, not people"
        )]);
    }
    let mut pairs = Vec::new();
    let mut problems = Vec::new();
    for a in args {
        match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => pairs.push((k.to_string(), v.to_string())),
            _ => problems.push(format!("{a:?} is not NAME=VALUE")),
        }
    }
    let values = match bind_inputs(id, &pb.inputs, &pairs) {
        Ok(v) if problems.is_empty() => v,
        Ok(_) => return Err(problems),
        Err(more) => {
            problems.extend(more);
            return Err(problems);
        }
    };
    let first = |t: InputType| {
        pb.inputs
            .iter()
            .find(|i| i.kind == t)
            .and_then(|i| values.get(&i.name).cloned())
    };
    let Some(account) = first(InputType::AccountId) else {
        return Err(vec![format!(
            "playbook {id} ({}) declares no account_id input: cordon cannot tell which account to act in",
            pb.file
        )]);
    };
    let region = first(InputType::Region).unwrap_or_else(|| DEFAULT_REGION.into());
    Ok(build(id, who, &account, &region, &values, pb))
}

fn build(
    id: &str,
    who: &Identity,
    account: &str,
    region: &str,
    values: &BTreeMap<String, String>,
    pb: &cordon_engine::playbook::Playbook,
) -> FindingEvent {
    let resource_kinds = [
        (InputType::InstanceId, kind::INSTANCE),
        (InputType::UserName, kind::IAM_USER),
        (InputType::RoleName, kind::IAM_ROLE),
        (InputType::AccessKeyId, kind::ACCESS_KEY),
    ];
    let mut resources = Vec::new();
    for (t, k) in resource_kinds {
        for i in pb.inputs.iter().filter(|i| i.kind == t) {
            if let Some(v) = values.get(&i.name) {
                resources.push(Resource {
                    kind: k.to_string(),
                    id: v.clone(),
                    attributes: BTreeMap::from([("input".to_string(), i.name.clone())]),
                });
            }
        }
    }
    let now_ms = SystemClock.now_ms();
    let uid = RandomIds.run_id(now_ms);
    let now = rfc3339(now_ms);
    let finding = Finding {
        source: FindingSource::Manual,
        id: format!("manual-{uid}"),
        kind: "Manual".into(),
        title: format!("Manual run of {id} by {}", who.by()),
        severity: 0.0,
        severity_label: SeverityLabel::Low,
        account: account.into(),
        region: region.into(),
        resources,
        updated_at: now.clone(),
        user_name: None,
        user_type: None,
        dedup_id: format!("manual/{uid}"),
        status: None,
        sample: false,
    };
    let event = json!({
        "version": "0",
        "id": uid,
        "source": "cordon.manual",
        "detail-type": "Manual run",
        "account": account,
        "region": region,
        "time": now,
        "resources": [],
        "detail": {"playbook": id, "inputs": values, "requested_by": who.by()},
    });
    FindingEvent {
        event: event.into(),
        finding,
        custom_action: None,
        synthetic_envelope: true,
    }
}
