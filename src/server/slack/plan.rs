//! What a Slack message shows a person before they click, and the hash that binds a click to
//! it.
//!
//! The approval plan of a waiting step is: the run's account and region, the waiting step (id,
//! action, rendered parameters) and every later step of the playbook the run executes (its own
//! journaled copy, not whatever is loaded now) with its parameters as written. The Approve and
//! Deny buttons carry a hash of that plan; a click whose hash is not the plan's hash now was
//! given to something else, and decides nothing.
//!
//! The release plan is what an Undo would undo: the run's succeeded, undoable steps, newest
//! first (the order release undoes them in).

use cordon_engine::playbook::{self, ParamTemplate};
use cordon_engine::run::{ReleaseState, Run, StepState};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::Slack;

/// A later step: its action and its parameters as written in the playbook.
#[derive(Debug, Clone, PartialEq)]
pub struct Later {
    pub action: String,
    pub params: String,
}

/// The approval plan of step `i` of `run` (see the module docs).
#[derive(Debug, Clone)]
pub struct ApprovalPlan {
    pub step: usize,
    pub later: Vec<Later>,
    /// Hex SHA-256 (first 32 digits) of the plan's canonical JSON.
    pub hash: String,
}

impl ApprovalPlan {
    /// The plan of `run`'s waiting step, if a step waits.
    pub fn of(slack: &Slack, run: &Run) -> Option<ApprovalPlan> {
        let i = run
            .steps
            .iter()
            .position(|s| s.state == StepState::WaitingApproval)?;
        let later = later_steps(slack, run, i);
        let hash = hash(run, i, &later);
        Some(ApprovalPlan {
            step: i,
            later,
            hash,
        })
    }
}

/// The hash of the plan of step `i` of `run` with these later steps.
pub fn hash(run: &Run, i: usize, later: &[Later]) -> String {
    let step = &run.steps[i];
    let canonical = json!({
        "run": run.id,
        "account": run.account,
        "region": run.region,
        "step": {"id": step.id, "action": step.action, "params": step.params},
        "later": later.iter().map(|l| json!([l.action, l.params])).collect::<Vec<_>>(),
    });
    // serde_json writes object keys in sorted order (no `preserve_order`): canonical enough
    // for a hash compared only with another made by this same code.
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The steps after step `i`, from the playbook the run executes: the loaded one if its text is
/// the run's, else the run's own copy compiled (as the runner does).
fn later_steps(slack: &Slack, run: &Run, i: usize) -> Vec<Later> {
    let runner = slack.server.dispatcher.runner();
    let loaded = runner
        .playbooks()
        .get(&run.playbook)
        .filter(|p| p.source == run.playbook_source)
        .cloned();
    let pb = match loaded {
        Some(p) => p,
        None => match playbook::compile(&run.playbook_file, &run.playbook_source, runner.sandbox())
        {
            Ok(p) => std::sync::Arc::new(p),
            // The runner cannot run it either; show the steps the run recorded.
            Err(_) => {
                return run.steps[i + 1..]
                    .iter()
                    .map(|s| Later {
                        action: s.action.clone(),
                        params: String::new(),
                    })
                    .collect()
            }
        },
    };
    pb.steps
        .iter()
        .skip_while(|s| s.id != run.steps[i].id)
        .skip(1)
        .map(|s| Later {
            action: s.action.meta().id.to_string(),
            params: s
                .with
                .iter()
                .map(|(k, v)| format!("{k}={}", template(v)))
                .collect::<Vec<_>>()
                .join(" "),
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

/// A JSON value as text: strings bare, the rest as JSON.
pub fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What releasing `run` would undo, newest first: `(step id, action, parameters)`. Empty when
/// nothing is left to undo.
pub fn release_plan(run: &Run) -> Vec<(String, String, String)> {
    run.steps
        .iter()
        .rev()
        .filter(|s| {
            s.state == StepState::Succeeded && s.undoable && s.release != Some(ReleaseState::Done)
        })
        .map(|s| {
            (
                s.id.clone(),
                s.action.clone(),
                s.params.as_ref().map(compact).unwrap_or_default(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_engine::run::{RunState, StepRecord, Trigger};

    fn run() -> Run {
        let mut ask = StepRecord::new("ask", "approval");
        ask.state = StepState::WaitingApproval;
        ask.params = Some(json!({"message": "isolate?"}));
        Run {
            id: "r1".into(),
            version: 3,
            playbook: "p".into(),
            playbook_version: "1".into(),
            playbook_source: String::new(),
            playbook_file: "p.yaml".into(),
            dedup_key: "k".into(),
            state: RunState::WaitingApproval,
            trigger: Trigger::Event,
            event: Value::Null.into(),
            finding: Value::Null,
            vars: Value::Null,
            account: "111122223333".into(),
            region: "us-east-1".into(),
            steps: vec![ask],
            error: None,
            created_ms: 0,
            updated_ms: 0,
        }
    }

    #[test]
    fn the_hash_changes_with_account_parameters_and_later_steps_only() {
        let later = vec![Later {
            action: "ec2.isolate_instance".into(),
            params: "instance=i-1".into(),
        }];
        let r = run();
        let h = hash(&r, 0, &later);
        assert_eq!(h.len(), 32);
        let mut same = r.clone();
        same.version = 9;
        same.updated_ms = 5;
        assert_eq!(hash(&same, 0, &later), h, "bookkeeping is not the plan");
        let mut other = r.clone();
        other.account = "444455556666".into();
        assert_ne!(hash(&other, 0, &later), h);
        let mut other = r.clone();
        other.steps[0].params = Some(json!({"message": "isolate!"}));
        assert_ne!(hash(&other, 0, &later), h);
        let more = vec![Later {
            action: "ec2.isolate_instance".into(),
            params: "instance=i-2".into(),
        }];
        assert_ne!(hash(&r, 0, &more), h);
    }

    #[test]
    fn the_release_plan_lists_undoable_steps_newest_first() {
        let mut r = run();
        r.steps.clear();
        for (id, undoable) in [("a", true), ("b", false), ("c", true)] {
            let mut s = StepRecord::new(id, "ec2.isolate_instance");
            s.state = StepState::Succeeded;
            s.undoable = undoable;
            r.steps.push(s);
        }
        let ids: Vec<String> = release_plan(&r).into_iter().map(|(id, _, _)| id).collect();
        assert_eq!(ids, ["c", "a"]);
        r.steps[2].release = Some(ReleaseState::Done);
        assert_eq!(release_plan(&r).len(), 1);
    }
}
