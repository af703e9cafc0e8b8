//! Human decisions on waiting steps, and approval timeouts.

use serde_json::Value;

use super::{Result, Runner, RunnerError};
use crate::run::{Decision, RunState, StepState};

impl Runner {
    /// Approves or denies the step `step` of run `id`, which must be waiting. An approval drives
    /// the run on; a denial ends it (`denied`), skipping the steps after.
    #[tracing::instrument(skip(self), fields(run_id = %id))]
    pub async fn decide(&self, id: &str, step: &str, approved: bool, by: &str) -> Result<RunState> {
        let mut run = self.load(id)?;
        let Some(i) = run.steps.iter().position(|s| s.id == step) else {
            let ids: Vec<&str> = run.steps.iter().map(|s| s.id.as_str()).collect();
            return Err(RunnerError::State(format!(
                "run {id} has no step {step:?}; its steps: {}",
                ids.join(", ")
            )));
        };
        if run.state != RunState::WaitingApproval
            || run.steps[i].state != StepState::WaitingApproval
        {
            return Err(RunnerError::State(format!(
                "step {step} of run {id} is not waiting for approval (run {}, step {:?})",
                run.state.as_str(),
                run.steps[i].state
            )));
        }
        let decision = Decision {
            approved,
            by: by.to_string(),
            at_ms: self.clock.now_ms(),
        };
        run.steps[i].decision = Some(decision);
        tracing::info!(step, approved, by, "Decision recorded");
        if approved {
            run.steps[i].state = StepState::Pending;
            run.state = RunState::Running;
            self.save(&mut run, Some(step), format!("approved by {by}"))?;
            self.drive(id).await
        } else {
            run.steps[i].state = StepState::Denied;
            run.steps[i].finished_ms = Some(self.clock.now_ms());
            self.finish(
                &mut run,
                RunState::Denied,
                Some(format!("step {step} denied by {by}")),
            )
        }
    }

    /// Applies the default decision of every `approval` step whose timeout has passed.
    pub async fn expire_approvals(&self) -> Result<Vec<String>> {
        let now = self.clock.now_ms();
        let mut decided = Vec::new();
        for id in self.journal.open_ids()? {
            let Some(run) = self.journal.get(&id)? else {
                continue;
            };
            if run.state != RunState::WaitingApproval {
                continue;
            }
            let due = run.steps.iter().find(|s| {
                s.state == StepState::WaitingApproval && s.deadline_ms.is_some_and(|d| d <= now)
            });
            if let Some(s) = due {
                let approve = s
                    .params
                    .as_ref()
                    .and_then(|p| p.get("default"))
                    .and_then(Value::as_str)
                    == Some("approve");
                let step = s.id.clone();
                self.decide(&id, &step, approve, "timeout").await?;
                decided.push(id);
            }
        }
        Ok(decided)
    }
}
