//! Release: undo what a run's containment steps changed, newest first, each undo journaled
//! before it is called and read back after.

use std::time::Duration;

use serde_json::json;

use super::drive::split_target;
use super::{Result, Runner, RunnerError};
use crate::actions::{self, Context as ActionContext};
use crate::run::{ReleaseState, RunState, StepState};

/// Attempts per undo for retryable errors (undo restores a recorded state, so repeating is safe).
const UNDO_ATTEMPTS: u32 = 3;

impl Runner {
    /// Undoes the run's containment. Steps that succeeded are undone, and so are containment
    /// steps interrupted mid-change (their pre-state was journaled first, and restoring it is
    /// safe whether or not the change happened). A failed undo leaves the run `release_failed`;
    /// running release again retries only what is not yet undone.
    #[tracing::instrument(skip(self), fields(run_id = %id))]
    pub async fn release(&self, id: &str, by: &str) -> Result<RunState> {
        super::decide::check_approver(by).map_err(RunnerError::State)?;
        let mut run = self.load(id).await?;
        if !run.state.is_releasable() {
            return Err(RunnerError::State(format!(
                "run {id} is {}; only finished runs, or runs waiting for approval, can be released",
                run.state.as_str()
            )));
        }
        for s in run
            .steps
            .iter_mut()
            .filter(|s| s.state == StepState::WaitingApproval)
        {
            s.state = StepState::Skipped;
        }
        if run.state != RunState::Releasing {
            run.state = RunState::Releasing;
            self.save(&mut run, None, format!("release requested by {by}"))
                .await?;
        }
        let mut failed = 0;
        for i in (0..run.steps.len()).rev() {
            let rec = &run.steps[i];
            let Some(action) = actions::find(&rec.action) else {
                continue;
            };
            let wanted = match rec.state {
                StepState::Succeeded => rec.undoable,
                StepState::Started | StepState::Failed => {
                    action.meta().undo.is_some() && rec.prepared.is_some()
                }
                _ => false,
            };
            if !wanted || rec.release == Some(ReleaseState::Done) {
                continue;
            }
            let Some(prepared) = rec.prepared.clone() else {
                continue;
            };
            let (target, _) = split_target(&run, rec.params.as_ref());
            let step_id = rec.id.clone();
            run.steps[i].release = Some(ReleaseState::Started);
            self.save(
                &mut run,
                Some(&step_id),
                format!("undoing {}", action.meta().id),
            )
            .await?;

            let ctx = ActionContext {
                cloud: &self.cloud,
                settings: &self.settings,
                target,
                step_key: format!("{}/{}", run.id, step_id),
                now_ms: self.clock.now_ms(),
            };
            let mut attempt = 0;
            let result = loop {
                attempt += 1;
                match action.undo(&ctx, &prepared).await {
                    Err(e) if e.is_retryable() && attempt < UNDO_ATTEMPTS => {
                        self.clock
                            .sleep(Duration::from_millis(200 << attempt))
                            .await;
                    }
                    other => break other,
                }
            };
            let rec = &mut run.steps[i];
            let what = match result {
                Ok(proof) => {
                    rec.release = Some(ReleaseState::Done);
                    rec.release_detail = Some(proof);
                    "undone; state read back".to_string()
                }
                Err(e) => {
                    failed += 1;
                    rec.release = Some(ReleaseState::Failed);
                    rec.release_detail = Some(json!({"error": e.to_string()}));
                    tracing::warn!(step = %step_id, error = %e, "Undo failed");
                    format!("undo failed: {e}")
                }
            };
            self.save(&mut run, Some(&step_id), what).await?;
        }
        run.state = if failed == 0 {
            RunState::Released
        } else {
            RunState::ReleaseFailed
        };
        run.error = (failed > 0)
            .then(|| format!("{failed} undo(s) failed; run release again to retry them"));
        let what = run.error.clone().unwrap_or_else(|| "released".into());
        self.save(&mut run, None, what).await?;
        self.settled(&run)
    }
}
