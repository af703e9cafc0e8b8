//! Release: undo what a run's containment steps changed, newest first, each undo journaled
//! before it is called and read back after. A resource another live run still holds stays
//! contained (see `hold`).

use std::time::Duration;

use serde_json::{json, Value};

use super::drive::split_target;
use super::hold::{hold_of, Holders};
use super::{Result, Runner, RunnerError};
use crate::actions::{self, Action, ActionError, Context as ActionContext};
use crate::run::{ReleaseState, Run, RunState, StepState};

/// Attempts per undo for retryable errors (undo restores a recorded state, so repeating is safe).
const UNDO_ATTEMPTS: u32 = 3;
/// How many times marking another run's held step as undone is retried on a conflict.
const CONFLICT_RETRIES: usize = 8;

/// One undo to make: a step's recorded pre-state, and where.
struct Undo {
    run: String,
    step: String,
    started_ms: u64,
    target: crate::cloud::Target,
    prepared: Value,
}

impl Runner {
    /// Undoes the run's containment. Steps that succeeded are undone, and so are containment
    /// steps interrupted mid-change (their pre-state was journaled first, and restoring it is
    /// safe whether or not the change happened). A step whose resource another live run still
    /// holds is not undone but marked held (`release_detail.held_by` names the runs); the last
    /// holder's release undoes every held change. A failed undo leaves the run
    /// `release_failed`; running release again retries only what is not yet undone.
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
            if !self.release_step(&mut run, i).await? {
                failed += 1;
            }
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

    /// Releases step `i`: nothing to do, held for another run, or undone (with what other runs
    /// left held for this one). Returns false when an undo failed.
    async fn release_step(&self, run: &mut Run, i: usize) -> Result<bool> {
        let rec = &run.steps[i];
        if actions::find(&rec.action).is_none()
            || matches!(rec.release, Some(ReleaseState::Done | ReleaseState::Held))
        {
            return Ok(true);
        }
        let wanted = match rec.state {
            StepState::Succeeded => rec.undoable,
            StepState::Started | StepState::Failed => rec.prepared.is_some(),
            _ => false,
        };
        let Some(key) = hold_of(&self.settings, run, i) else {
            return if wanted {
                self.undo_steps(run, i, Vec::new()).await
            } else {
                Ok(true)
            };
        };
        // A step that found the resource already contained changed nothing, but may be the
        // last holder of what others changed.
        if !wanted && rec.state != StepState::Succeeded {
            return Ok(true);
        }
        let _lock = self.holds.lock(&key).await;
        let Holders { live, deferred } = self.holders(&key, &run.id).await?;
        if !live.is_empty() {
            if wanted {
                self.keep(run, i, live).await?;
            }
            return Ok(true);
        }
        if !wanted && deferred.is_empty() {
            return Ok(true);
        }
        self.undo_steps(run, i, deferred).await
    }

    /// Marks step `i` held: another live run still keeps its resource contained.
    async fn keep(&self, run: &mut Run, i: usize, live: Vec<String>) -> Result<()> {
        let others = live.join(", ");
        let message = format!(
            "still held by run {others}: left contained until the last run holding it is released"
        );
        let rec = &mut run.steps[i];
        let step = rec.id.clone();
        tracing::info!(step, held_by = %others, "Resource still held by another run; not undone");
        rec.release = Some(ReleaseState::Held);
        rec.release_detail = Some(json!({"held_by": live, "message": message}));
        let what = format!("kept {}: {message}", rec.action);
        self.save(run, Some(&step), what).await
    }

    /// Undoes step `i` of `run` and the held steps `deferred` to it, newest containment first,
    /// which ends in the state before the first of them. The step is marked started before
    /// (so a crash repeats the whole sequence: each undo restores a recorded state) and done
    /// after; then each deferred step is marked undone in its own run.
    async fn undo_steps(
        &self,
        run: &mut Run,
        i: usize,
        deferred: Vec<(Run, usize)>,
    ) -> Result<bool> {
        let step = run.steps[i].id.clone();
        let Some(action) = actions::find(&run.steps[i].action) else {
            return Ok(true);
        };
        let mut undos: Vec<Undo> = deferred.iter().map(|(r, j)| undo_of(r, *j)).collect();
        if run.steps[i].prepared.is_some() {
            undos.push(undo_of(run, i));
        }
        // Newest containment first (start times of one resource's holds differ: see `drive`).
        undos.sort_by(|a, b| (b.started_ms, &b.run).cmp(&(a.started_ms, &a.run)));
        let others: Vec<String> = deferred.iter().map(|(r, _)| r.id.clone()).collect();
        run.steps[i].release = Some(ReleaseState::Started);
        let mut what = format!("undoing {}", action.meta().id);
        if !others.is_empty() {
            what.push_str(&format!(", with what run {} left held", others.join(", ")));
        }
        self.save(run, Some(&step), what).await?;

        let mut proof = Value::Null;
        let mut error = None;
        for u in &undos {
            match self.undo_one(action, u).await {
                Ok(p) => proof = p,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let rec = &mut run.steps[i];
        let what = match error {
            None => {
                rec.release = Some(ReleaseState::Done);
                if !others.is_empty() {
                    proof = json!({"state": proof, "also_undone_for": others});
                }
                rec.release_detail = Some(proof.clone());
                "undone; state read back".to_string()
            }
            Some(e) => {
                rec.release = Some(ReleaseState::Failed);
                rec.release_detail = Some(json!({"error": e.to_string()}));
                tracing::warn!(step, error = %e, "Undo failed");
                format!("undo failed: {e}")
            }
        };
        self.save(run, Some(&step), what).await?;
        if run.steps[i].release != Some(ReleaseState::Done) {
            return Ok(false);
        }
        for (r, j) in &deferred {
            self.mark_undone(&r.id, &r.steps[*j].id, &run.id, &proof)
                .await?;
        }
        Ok(true)
    }

    /// Calls one undo, retrying retryable errors.
    async fn undo_one(&self, action: &dyn Action, u: &Undo) -> Result<Value, ActionError> {
        let ctx = ActionContext {
            cloud: &self.cloud,
            settings: &self.settings,
            target: u.target.clone(),
            step_key: format!("{}/{}", u.run, u.step),
            now_ms: self.clock.now_ms(),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match action.undo(&ctx, &u.prepared).await {
                Err(e) if e.is_retryable() && attempt < UNDO_ATTEMPTS => {
                    self.clock
                        .sleep(Duration::from_millis(200 << attempt))
                        .await;
                }
                other => return other,
            }
        }
    }

    /// Records in run `id` that its held step `step` was undone by the release of run `by`.
    async fn mark_undone(&self, id: &str, step: &str, by: &str, proof: &Value) -> Result<()> {
        let mut tries = 0;
        loop {
            let mut run = self.load(id).await?;
            let Some(rec) = run.steps.iter_mut().find(|s| s.id == step) else {
                return Ok(());
            };
            if rec.release != Some(ReleaseState::Held) {
                return Ok(());
            }
            rec.release = Some(ReleaseState::Done);
            rec.release_detail = Some(json!({"undone_by": by, "state": proof}));
            let what = format!("held change undone by the release of run {by}");
            match self.save(&mut run, Some(step), what).await {
                Err(e) if e.is_conflict() && tries < CONFLICT_RETRIES => tries += 1,
                other => return other,
            }
        }
    }
}

/// The undo of step `i` of `run`: its target and recorded pre-state.
fn undo_of(run: &Run, i: usize) -> Undo {
    let rec = &run.steps[i];
    let (target, _) = split_target(run, rec.params.as_ref());
    Undo {
        run: run.id.clone(),
        step: rec.id.clone(),
        started_ms: rec.started_ms.unwrap_or(run.created_ms),
        target,
        prepared: rec.prepared.clone().unwrap_or(Value::Null),
    }
}
