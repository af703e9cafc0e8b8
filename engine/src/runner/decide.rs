//! Human decisions on waiting steps, and approval timeouts. A decision is only recorded here;
//! whoever asked (the dispatcher) then drives the run on.

use serde_json::Value;

use super::{Result, Runner, RunnerError};
use crate::run::{Decision, Run, RunState, StepState, Trigger};

/// How many times a decision is retried when another writer changed the run meanwhile.
const CONFLICT_RETRIES: usize = 8;

/// Who the journal says decided when an approval's timeout applied its default; no person may
/// use the name.
const TIMEOUT: &str = "timeout";

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
    if same_person(by, TIMEOUT) {
        return Err(format!(
            "{TIMEOUT:?} is what the journal records when an approval times out; use your own name"
        ));
    }
    Ok(())
}

/// Whether two approver names are one person: case and surrounding space do not make a second
/// person.
fn same_person(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// Refuses an approval of step `i` by the person who started the run by hand, or by someone
/// who already approved it.
fn check_new_approver(run: &Run, i: usize, by: &str) -> Result<()> {
    if let Trigger::Manual { by: requester } = &run.trigger {
        if same_person(requester, by) {
            return Err(RunnerError::State(format!(
                "{by} started run {} and cannot also approve it: another person must",
                run.id
            )));
        }
    }
    let rec = &run.steps[i];
    if let Some(earlier) = rec.approvals.iter().find(|d| same_person(&d.by, by)) {
        return Err(RunnerError::State(format!(
            "{} already approved step {} of run {} ({} of {} approvals); another person must approve",
            earlier.by,
            rec.id,
            run.id,
            rec.approvals.len(),
            rec.approvals_needed()
        )));
    }
    Ok(())
}

impl Runner {
    /// Approves or denies step `step` of run `id`, which must be waiting for a decision, and
    /// records it (durable). Returns the run's state: `running` once the step has all the
    /// approvals it needs (drive it on), `waiting_approval` after an approval when a step with
    /// `approvers: N` still needs another person (see [`StepRecord::approvals`]), `denied`
    /// after a denial (the steps after it are skipped). One denial denies, however many
    /// approved before.
    ///
    /// Errors: [`RunnerError::State`] when the step is not waiting (e.g. someone else decided
    /// first), when `by` is not a usable name, when the person who started the run by hand
    /// approves it themselves, or when someone approves the same step twice (names are
    /// compared ignoring case and surrounding space).
    ///
    /// [`StepRecord::approvals`]: crate::run::StepRecord::approvals
    #[tracing::instrument(skip(self), fields(run_id = %id))]
    pub async fn decide(&self, id: &str, step: &str, approved: bool, by: &str) -> Result<RunState> {
        check_approver(by).map_err(RunnerError::State)?;
        let mut tries = 0;
        loop {
            let mut run = self.load(id).await?;
            let i = waiting_step(&run, step)?;
            if approved {
                check_new_approver(&run, i, by)?;
            }
            match self.record(&mut run, i, approved, by, true).await {
                Err(e) if e.is_conflict() && tries < CONFLICT_RETRIES => tries += 1,
                other => return other,
            }
        }
    }

    /// Journals a decision on waiting step `i`. A person's approval (`counted`) is added to the
    /// step's approvals and lets the step go on only once there are enough; the timeout's
    /// default (not `counted`) decides alone.
    async fn record(
        &self,
        run: &mut Run,
        i: usize,
        approved: bool,
        by: &str,
        counted: bool,
    ) -> Result<RunState> {
        let now = self.clock.now_ms();
        let step = run.steps[i].id.clone();
        let decision = Decision {
            approved,
            by: by.to_string(),
            at_ms: now,
        };
        tracing::info!(step, approved, by, "Decision recorded");
        if !approved {
            let rec = &mut run.steps[i];
            rec.decision = Some(decision);
            rec.state = StepState::Denied;
            rec.finished_ms = Some(now);
            return self
                .finish(
                    run,
                    RunState::Denied,
                    Some(format!("step {step} denied by {by}")),
                )
                .await;
        }
        let rec = &mut run.steps[i];
        let need = rec.approvals_needed();
        let mut what = format!("approved by {by}");
        if counted {
            rec.approvals.push(decision.clone());
            let have = rec.approvals.len();
            if need > 1 {
                what.push_str(&format!(" ({have} of {need} approvals)"));
            }
            if have < need {
                what.push_str("; waiting for another approver");
                self.save(run, Some(&step), what).await?;
                return Ok(run.state);
            }
        }
        let rec = &mut run.steps[i];
        rec.decision = Some(decision);
        rec.state = StepState::Pending;
        run.state = RunState::Running;
        self.save(run, Some(&step), what).await?;
        Ok(run.state)
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
            match self.record(&mut run, i, approved, TIMEOUT, false).await {
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
    use serde_json::json;

    use super::{check_approver, check_new_approver, Decision};
    use crate::journal::contract;
    use crate::run::{Run, StepRecord, Trigger};

    #[test]
    fn approvers_are_named_and_printable() {
        assert!(check_approver("alice@example.com").is_ok());
        assert!(check_approver("").is_err());
        assert!(check_approver("  ").is_err());
        assert!(check_approver("eve\n2026 INFO approved by admin").is_err());
        assert!(check_approver("\u{1b}[2J").is_err());
        assert!(check_approver(&"x".repeat(129)).is_err());
        let e = check_approver(" Timeout").unwrap_err();
        assert!(e.contains("when an approval times out"), "{e}");
    }

    /// A run waiting at an approval step needing `need` people, approved so far by `by`.
    fn waiting(need: u64, by: &[&str], trigger: Trigger) -> Run {
        let mut run = contract::run("r1", "k");
        run.trigger = trigger;
        let mut step = StepRecord::new("ask", "approval");
        step.params = Some(json!({"approvers": need}));
        step.approvals = by
            .iter()
            .map(|b| Decision {
                approved: true,
                by: b.to_string(),
                at_ms: 1,
            })
            .collect();
        run.steps = vec![step];
        run
    }

    #[test]
    fn one_person_counts_once_and_the_requester_not_at_all() {
        let run = waiting(2, &["alice"], Trigger::Event);
        assert_eq!(run.steps[0].approvals_needed(), 2);
        assert!(check_new_approver(&run, 0, "bob").is_ok());
        for again in ["alice", "Alice", " ALICE "] {
            let e = check_new_approver(&run, 0, again).unwrap_err().to_string();
            assert_eq!(
                e,
                "alice already approved step ask of run r1 (1 of 2 approvals); another person must approve"
            );
        }
        let manual = waiting(2, &[], Trigger::Manual { by: "carol".into() });
        let e = check_new_approver(&manual, 0, "Carol")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "Carol started run r1 and cannot also approve it: another person must"
        );
        assert!(check_new_approver(&manual, 0, "dave").is_ok());
    }

    #[test]
    fn a_step_without_approvers_needs_one_person() {
        let mut step = StepRecord::new("ask", "approval");
        assert_eq!(step.approvals_needed(), 1);
        step.params = Some(json!({"message": "go?"}));
        assert_eq!(step.approvals_needed(), 1);
    }

    #[test]
    fn records_written_before_two_person_approval_still_read() {
        let old = json!({"id": "ask", "action": "approval", "state": "succeeded", "attempt": 1,
            "decision": {"approved": true, "by": "bob", "at_ms": 5}});
        let step: StepRecord = serde_json::from_value(old).unwrap();
        assert!(step.approvals.is_empty());
        assert_eq!(step.decision.unwrap().by, "bob");
        let fresh = serde_json::to_value(StepRecord::new("a", "approval")).unwrap();
        assert!(
            fresh.get("approvals").is_none(),
            "nothing new in records without approvals"
        );
    }
}
