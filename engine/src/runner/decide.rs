//! Human decisions on waiting steps, and approval timeouts. A decision is only recorded here;
//! whoever asked (the dispatcher) then drives the run on.

use serde_json::Value;

use super::{Result, Runner, RunnerError};
use crate::run::{Decision, Run, RunState, StepState, Trigger};

/// How many times a decision is retried when another writer changed the run meanwhile.
const CONFLICT_RETRIES: usize = 8;

/// The most characters of an approver's name.
const MAX_APPROVER_CHARS: usize = 128;

/// A decision applied by the approval timeout.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Expired {
    /// Run id.
    pub run_id: String,
    /// The step whose timeout passed.
    pub step: String,
    /// Whether the default approved it.
    pub approved: bool,
}

/// Checks who decides: a non-empty, printable name of reasonable length. Names reach the
/// journal, terminals and chat, so control characters are refused, not escaped.
pub fn check_approver(by: &str) -> Result<(), String> {
    if by.trim().is_empty() {
        return Err("say who decides (an approver name is required)".into());
    }
    if by.chars().count() > MAX_APPROVER_CHARS {
        return Err(format!(
            "an approver name has at most {MAX_APPROVER_CHARS} characters"
        ));
    }
    if by.chars().any(char::is_control) {
        return Err(format!(
            "approver name {:?} holds control characters",
            by.escape_debug().to_string()
        ));
    }
    Ok(())
}

impl Runner {
    /// Approves or denies step `step` of run `id`, which must be waiting for a decision, and
    /// records it (durable). Returns the run's state: `running` after an approval (drive it
    /// on), `denied` after a denial (the steps after it are skipped).
    ///
    /// Errors: [`RunnerError::State`] when the step is not waiting (e.g. someone else decided
    /// first), when `by` is not a usable name, or when the person who started the run by hand
    /// approves it themselves.
    #[tracing::instrument(skip(self), fields(run_id = %id))]
    pub async fn decide(&self, id: &str, step: &str, approved: bool, by: &str) -> Result<RunState> {
        check_approver(by).map_err(RunnerError::State)?;
        let mut tries = 0;
        loop {
            let mut run = self.load(id).await?;
            let i = waiting_step(&run, step)?;
            if let Trigger::Manual { by: requester } = &run.trigger {
                if approved && requester == by {
                    return Err(RunnerError::State(format!(
                        "{by} started run {id} and cannot also approve it: another person must"
                    )));
                }
            }
            match self.record(&mut run, i, approved, by).await {
                Err(e) if e.is_conflict() && tries < CONFLICT_RETRIES => tries += 1,
                other => return other,
            }
        }
    }

    async fn record(&self, run: &mut Run, i: usize, approved: bool, by: &str) -> Result<RunState> {
        let now = self.clock.now_ms();
        let step = run.steps[i].id.clone();
        run.steps[i].decision = Some(Decision {
            approved,
            by: by.to_string(),
            at_ms: now,
        });
        tracing::info!(step, approved, by, "Decision recorded");
        if approved {
            run.steps[i].state = StepState::Pending;
            run.state = RunState::Running;
            self.save(run, Some(&step), format!("approved by {by}"))
                .await?;
            Ok(run.state)
        } else {
            run.steps[i].state = StepState::Denied;
            run.steps[i].finished_ms = Some(now);
            self.finish(
                run,
                RunState::Denied,
                Some(format!("step {step} denied by {by}")),
            )
            .await
        }
    }

    /// Applies the default decision of run `id`'s waiting `approval` step if its timeout has
    /// passed on the runner's clock. Returns what was decided, or `None` when nothing was due
    /// (or someone decided first).
    pub async fn expire(&self, id: &str) -> Result<Option<Expired>> {
        let mut tries = 0;
        loop {
            let mut run = self.load(id).await?;
            let now = self.clock.now_ms();
            if run.state != RunState::WaitingApproval {
                return Ok(None);
            }
            let Some(i) = run.steps.iter().position(|s| {
                s.state == StepState::WaitingApproval && s.deadline_ms.is_some_and(|d| d <= now)
            }) else {
                return Ok(None);
            };
            let approved = run.steps[i]
                .params
                .as_ref()
                .and_then(|p| p.get("default"))
                .and_then(Value::as_str)
                == Some("approve");
            let step = run.steps[i].id.clone();
            match self.record(&mut run, i, approved, "timeout").await {
                Ok(_) => {
                    return Ok(Some(Expired {
                        run_id: id.to_string(),
                        step,
                        approved,
                    }))
                }
                Err(e) if e.is_conflict() && tries < CONFLICT_RETRIES => tries += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// The deadline (epoch ms) of run `id`'s waiting step, if it has one.
    pub async fn deadline(&self, id: &str) -> Result<Option<u64>> {
        let run = self.load(id).await?;
        Ok((run.state == RunState::WaitingApproval)
            .then(|| {
                run.steps
                    .iter()
                    .filter(|s| s.state == StepState::WaitingApproval)
                    .find_map(|s| s.deadline_ms)
            })
            .flatten())
    }
}

/// The index of `step` in `run`, which must be waiting for a decision.
fn waiting_step(run: &Run, step: &str) -> Result<usize> {
    let Some(i) = run.steps.iter().position(|s| s.id == step) else {
        let ids: Vec<&str> = run.steps.iter().map(|s| s.id.as_str()).collect();
        return Err(RunnerError::State(format!(
            "run {} has no step {step:?}; its steps: {}",
            run.id,
            ids.join(", ")
        )));
    };
    let rec = &run.steps[i];
    if run.state != RunState::WaitingApproval || rec.state != StepState::WaitingApproval {
        let by = rec
            .decision
            .as_ref()
            .map(|d| {
                format!(
                    " ({} by {})",
                    if d.approved { "approved" } else { "denied" },
                    d.by
                )
            })
            .unwrap_or_default();
        return Err(RunnerError::State(format!(
            "step {step} of run {} is not waiting for approval (run {}, step {:?}{by})",
            run.id,
            run.state.as_str(),
            rec.state
        )));
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::check_approver;

    #[test]
    fn approvers_are_named_and_printable() {
        assert!(check_approver("alice@example.com").is_ok());
        assert!(check_approver("").is_err());
        assert!(check_approver("  ").is_err());
        assert!(check_approver("eve\n2026 INFO approved by admin").is_err());
        assert!(check_approver("\u{1b}[2J").is_err());
        assert!(check_approver(&"x".repeat(129)).is_err());
    }
}
