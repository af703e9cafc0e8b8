//! Executing a run's steps. The order of writes is the whole point of this file:
//! an undoable step journals its start with its pre-state (read, not changed) before its change,
//! any other step is marked started (flushed) before its call, and a step is marked done only
//! after the change was read back.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::{Result, Runner, RunnerError};
use crate::actions::{self, ActionError, Context as ActionContext, Params};
use crate::clock::parse_duration;
use crate::cloud::{CloudError, ErrorKind, Target};
use crate::playbook::{OnError, ParamTemplate, Step};
use crate::run::{Run, RunState, StepState};
use crate::script::{Context, Script, ScriptError};

/// The timeline's words for a step's journaled pre-state: from this record on, the step's
/// change may be under way.
const PRE_STATE_RECORDED: &str = "pre-state recorded";

/// Where [`Runner::drive_loaded`] left a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Driven {
    /// The run's state.
    pub state: RunState,
    /// When the run waits for approval: the waiting step's deadline (epoch ms on the runner's
    /// clock), if its approval times out.
    pub deadline_ms: Option<u64>,
}

impl Runner {
    /// Drives a run as far as it can go: to the end, to a step waiting for a human, to a
    /// failure, or (after [`Runner::stop`]) to the end of the step under way. A step found
    /// `started` was interrupted by a crash: it runs again only if its action is idempotent;
    /// otherwise the run stops in `needs_attention`.
    ///
    /// Errors: a journal error, including [`JournalError::Conflict`](crate::journal::JournalError)
    /// when another writer changed the run meanwhile (drive again: it reloads).
    pub async fn drive(&self, id: &str) -> Result<RunState> {
        let run = self.load(id).await?;
        Ok(self.drive_loaded(run).await?.state)
    }

    /// [`Runner::drive`] for a run just loaded from the journal (at its current version). Also
    /// gives the approval deadline of a run left waiting, so a timer needs no second read.
    #[tracing::instrument(skip_all, fields(run_id = %run.id))]
    pub async fn drive_loaded(&self, mut run: Run) -> Result<Driven> {
        let state = self.advance(&mut run).await?;
        let deadline_ms = run.approval_deadline_ms();
        Ok(Driven { state, deadline_ms })
    }

    /// The body of [`Runner::drive_loaded`]: `run` is left as last journaled.
    async fn advance(&self, run: &mut Run) -> Result<RunState> {
        let id = run.id.clone();
        let id = id.as_str();
        match run.state {
            RunState::Pending => {
                // Written with the first step's own record (started, skipped or waiting): one
                // flush fewer before the first containment call. A crash before it leaves the
                // run pending, which a restart drives from the start: nothing was done yet.
                run.state = RunState::Running;
            }
            RunState::Running => {}
            RunState::Releasing => return self.release(id, "resume after restart").await,
            other => return Ok(other),
        }
        let playbook = self.playbook_for(run)?;
        for (i, step) in playbook.steps.iter().enumerate() {
            let rec = &run.steps[i];
            match rec.state {
                StepState::Succeeded | StepState::Skipped | StepState::Failed => continue,
                StepState::Denied => return self.finish(run, RunState::Denied, None).await,
                StepState::WaitingApproval => {
                    run.state = RunState::WaitingApproval;
                    self.save(run, Some(&step.id), "waiting for approval")
                        .await?;
                    return self.settled(run);
                }
                StepState::Started if !step.action.meta().idempotent => {
                    let why = format!(
                        "step {} ({}) was interrupted mid-call and is not safe to repeat; check its effect, then release or re-run by hand",
                        step.id,
                        step.action.meta().id
                    );
                    tracing::warn!(step = %step.id, "Interrupted non-idempotent step; run needs attention");
                    return self.finish(run, RunState::NeedsAttention, Some(why)).await;
                }
                // An undoable action journals its pre-state before it changes anything (see
                // `attempts`): without one (a journal of an earlier build, or an action that
                // read no pre-state), the interrupted attempt never reached a change, so the
                // resumed one carries the same number and spends no retry.
                StepState::Started
                    if rec.prepared.is_none() && step.action.meta().undo.is_some() =>
                {
                    tracing::info!(step = %step.id, attempt = rec.attempt, "Resuming interrupted step: it had changed nothing yet");
                    run.steps[i].attempt = run.steps[i].attempt.saturating_sub(1);
                }
                StepState::Started => {
                    tracing::info!(step = %step.id, attempt = rec.attempt, "Re-running interrupted idempotent step");
                }
                StepState::Pending => {
                    if self.stopping() {
                        tracing::info!(step = %step.id, "Stopping before the next step; the run resumes at the next start");
                        return Ok(run.state);
                    }
                    match self.begin(run, i, step).await? {
                        Begin::Go => {}
                        Begin::Skip => continue,
                        Begin::Wait => return self.settled(run),
                        Begin::Fail(msg) => {
                            if let Some(state) = self.step_failed(run, i, step, msg).await? {
                                return Ok(state);
                            }
                            continue;
                        }
                    }
                }
            }
            if let Some(state) = self.execute(run, i, step).await? {
                return Ok(state);
            }
        }
        self.finish(run, RunState::Succeeded, None).await
    }

    /// Tells the observer the run stopped where it is; returns its state.
    pub(super) fn settled(&self, run: &Run) -> Result<RunState> {
        self.observer.run_settled(&run.id, &run.playbook, run.state);
        Ok(run.state)
    }

    /// A pending step: `when`, approval, parameters, then marked started.
    async fn begin(&self, run: &mut Run, i: usize, step: &Step) -> Result<Begin> {
        // Converting the whole event and finding for Rhai costs more than the step's journal
        // write: the context holds only what the step's scripts and templates read.
        let mut scripts: Vec<&Script> = step.when.iter().collect();
        for (_, t) in &step.with {
            t.scripts(&mut scripts);
        }
        let ctx = if scripts.is_empty() {
            Context::default()
        } else {
            self.context(run, &scripts)
        };
        if let Some(w) = &step.when {
            match self.sandbox.eval_bool(w, &ctx) {
                Ok(true) => {}
                Ok(false) => {
                    run.steps[i].state = StepState::Skipped;
                    self.save(run, Some(&step.id), "skipped: `when` was false")
                        .await?;
                    return Ok(Begin::Skip);
                }
                Err(e) => return Ok(Begin::Fail(format!("`when` failed: {e}"))),
            }
        }
        let params = match render_params(&self.sandbox, &step.with, &ctx) {
            Ok(p) => p,
            Err(e) => return Ok(Begin::Fail(e)),
        };
        let now = self.clock.now_ms();
        let rec = &mut run.steps[i];
        if step.approve && rec.decision.is_none() {
            rec.state = StepState::WaitingApproval;
            rec.deadline_ms = params
                .get("timeout")
                .and_then(Value::as_str)
                .filter(|_| step.action.meta().id == actions::APPROVAL)
                .and_then(parse_duration)
                // Saturating: a deadline past the end of time means "never", not a panic.
                .map(|d| now.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)));
            rec.params = Some(Value::Object(params));
            run.state = RunState::WaitingApproval;
            self.save(run, Some(&step.id), "waiting for approval")
                .await?;
            return Ok(Begin::Wait);
        }
        rec.params = Some(Value::Object(params));
        Ok(Begin::Go)
    }

    /// Runs a step's action with its retry policy; returns the run's state if the run stops.
    /// A step that holds a resource ([`Action::holds`](crate::actions::Action::holds)) runs under
    /// that resource's lock: one containment of it at a time, and none while a release of it
    /// decides.
    async fn execute(&self, run: &mut Run, i: usize, step: &Step) -> Result<Option<RunState>> {
        let (target, params) = split_target(run, run.steps[i].params.as_ref());
        let Some(key) = step.action.holds(&self.settings, &target, &params) else {
            return self.attempts(run, i, step).await;
        };
        let _hold = self.holds.lock(&key).await;
        let result = self.attempts(run, i, step).await;
        // Start times order the holds of a resource (release undoes the newest first): the
        // next containment of it starts in a later millisecond.
        if let Some(started) = run.steps[i].started_ms {
            self.clock.sleep_until(started.saturating_add(1)).await;
        }
        result
    }

    /// The attempts of a step's action.
    async fn attempts(&self, run: &mut Run, i: usize, step: &Step) -> Result<Option<RunState>> {
        let action = step.action;
        let idempotent = action.meta().idempotent;
        let (target, params) = split_target(run, run.steps[i].params.as_ref());
        let ctx = ActionContext {
            cloud: &self.cloud,
            settings: &self.settings,
            target,
            step_key: format!("{}/{}", run.id, step.id),
            now_ms: self.clock.now_ms(),
        };
        let began = Instant::now();
        loop {
            let rec = &mut run.steps[i];
            rec.state = StepState::Started;
            rec.attempt += 1;
            rec.started_ms.get_or_insert(ctx.now_ms);
            let attempt = rec.attempt;
            let started = format!("started {} (attempt {attempt})", action.meta().id);
            // An undoable action reads its pre-state before it changes anything, and journals
            // the start with it: a crash before that record changed nothing, and the step runs
            // again as the same attempt (see `advance`). One flush fewer before the first call.
            let start_with_pre_state =
                run.steps[i].prepared.is_none() && action.meta().undo.is_some();
            if !start_with_pre_state {
                self.save(run, Some(&step.id), started.as_str()).await?;
            }
            if attempt == 1 {
                self.observer
                    .action_started(&run.id, &run.playbook, action.meta().id);
            }

            let result = match run.steps[i].prepared.clone() {
                Some(p) => self.call(step, action.execute(&ctx, &params, &p)).await,
                None => match self.call(step, action.prepare(&ctx, &params)).await {
                    // Actions that change nothing reversible read no pre-state: no extra flush.
                    Ok(Value::Null) => {
                        if start_with_pre_state {
                            self.save(run, Some(&step.id), started.as_str()).await?;
                        }
                        self.call(step, action.execute(&ctx, &params, &Value::Null))
                            .await
                    }
                    Ok(prepared) => {
                        run.steps[i].prepared = Some(prepared.clone());
                        let what = if start_with_pre_state {
                            format!("{started}; {PRE_STATE_RECORDED}")
                        } else {
                            PRE_STATE_RECORDED.to_string()
                        };
                        self.save(run, Some(&step.id), what).await?;
                        self.call(step, action.execute(&ctx, &params, &prepared))
                            .await
                    }
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(outcome) => {
                    let read_back = !outcome.proof.is_null();
                    let rec = &mut run.steps[i];
                    rec.state = StepState::Succeeded;
                    rec.output = Some(outcome.output);
                    rec.proof = (!outcome.proof.is_null()).then_some(outcome.proof);
                    rec.undoable = outcome.undoable;
                    rec.error = None;
                    rec.finished_ms = Some(self.clock.now_ms());
                    let mut what = if read_back {
                        "succeeded; state read back".to_string()
                    } else {
                        "succeeded".to_string()
                    };
                    // The last step's record also ends the run: one write, not two.
                    let last = i + 1 == run.steps.len();
                    if last {
                        run.state = RunState::Succeeded;
                        run.error = None;
                        what.push_str("; run succeeded");
                    }
                    self.save(run, Some(&step.id), what).await?;
                    self.observer.step_finished(
                        &run.playbook,
                        action.meta().id,
                        StepState::Succeeded,
                        began.elapsed(),
                    );
                    tracing::info!(step = %step.id, action = action.meta().id, "Step succeeded");
                    if last {
                        tracing::info!(state = run.state.as_str(), "Run finished");
                        return self.settled(run).map(Some);
                    }
                    return Ok(None);
                }
                // Only throttling is certain to have done nothing; other retryable errors are
                // retried only when repeating the action is safe.
                Err(e)
                    if attempt < step.retry.attempts
                        && (matches!(&e, ActionError::Cloud(c) if c.kind == ErrorKind::Throttled)
                            || (idempotent && e.is_retryable())) =>
                {
                    tracing::warn!(step = %step.id, attempt, error = %e, "Retryable failure");
                    run.steps[i].error = Some(e.to_string());
                    let wait = backoff(step.retry.backoff, attempt, self.ids.random());
                    tokio::select! {
                        () = self.clock.sleep(wait) => {}
                        () = self.stop.cancelled() => {
                            // The failed attempt did nothing (throttled) or may be repeated
                            // (idempotent), so the step can start over at the next start.
                            run.steps[i].state = StepState::Pending;
                            self.save(run, Some(&step.id), format!("retry after {e} interrupted by shutdown; it runs at the next start")).await?;
                            return Ok(Some(run.state));
                        }
                    }
                }
                Err(e) => {
                    self.observer.step_finished(
                        &run.playbook,
                        action.meta().id,
                        StepState::Failed,
                        began.elapsed(),
                    );
                    return self
                        .step_failed(run, i, step, format!("{} ({})", e, e.kind()))
                        .await;
                }
            }
        }
    }

    /// Runs one action call under the step's time limit, measured on the runner's clock.
    async fn call<T>(
        &self,
        step: &Step,
        fut: impl std::future::Future<Output = Result<T, ActionError>>,
    ) -> Result<T, ActionError> {
        tokio::select! {
            r = fut => r,
            () = self.clock.sleep(step.timeout) => Err(ActionError::Cloud(CloudError::new(
                ErrorKind::Retryable,
                format!("timed out after {}s", step.timeout.as_secs_f64()),
            ))),
        }
    }

    /// Records a failed step; returns the run's final state unless `on_error: continue`.
    async fn step_failed(
        &self,
        run: &mut Run,
        i: usize,
        step: &Step,
        msg: String,
    ) -> Result<Option<RunState>> {
        tracing::warn!(step = %step.id, error = %msg, "Step failed");
        let rec = &mut run.steps[i];
        rec.state = StepState::Failed;
        rec.error = Some(msg.clone());
        rec.finished_ms = Some(self.clock.now_ms());
        if step.on_error == OnError::Continue {
            self.save(run, Some(&step.id), format!("failed, continuing: {msg}"))
                .await?;
            return Ok(None);
        }
        let why = format!("step {} failed: {msg}", step.id);
        self.finish(run, RunState::Failed, Some(why))
            .await
            .map(Some)
    }

    /// Ends a run: remaining pending steps are skipped.
    pub(super) async fn finish(
        &self,
        run: &mut Run,
        state: RunState,
        error: Option<String>,
    ) -> Result<RunState> {
        if state != RunState::NeedsAttention {
            for s in run
                .steps
                .iter_mut()
                .filter(|s| s.state == StepState::Pending)
            {
                s.state = StepState::Skipped;
            }
        }
        run.state = state;
        run.error = error.clone();
        self.save(
            run,
            None,
            error.unwrap_or_else(|| format!("run {}", state.as_str())),
        )
        .await?;
        tracing::info!(state = state.as_str(), "Run finished");
        self.settled(run)
    }
}

/// What a pending step does next.
enum Begin {
    Go,
    Skip,
    Wait,
    Fail(String),
}

/// Renders a step's parameters. Finding values inserted here stay data: rendering evaluates
/// only the playbook's own expressions.
pub(super) fn render_params(
    sandbox: &crate::script::Sandbox,
    with: &[(String, ParamTemplate)],
    ctx: &Context,
) -> Result<Params, String> {
    let mut out = Map::new();
    for (k, t) in with {
        out.insert(
            k.clone(),
            render(sandbox, t, ctx).map_err(|e| format!("parameter `{k}`: {e}"))?,
        );
    }
    Ok(out)
}

pub(super) fn render(
    sandbox: &crate::script::Sandbox,
    t: &ParamTemplate,
    ctx: &Context,
) -> Result<Value, ScriptError> {
    Ok(match t {
        ParamTemplate::Const(v) => v.clone(),
        ParamTemplate::Text(t) => sandbox.render(t, ctx)?,
        ParamTemplate::List(items) => Value::Array(
            items
                .iter()
                .map(|i| render(sandbox, i, ctx))
                .collect::<Result<_, _>>()?,
        ),
        ParamTemplate::Map(m) => Value::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), render(sandbox, v, ctx)?)))
                .collect::<Result<_, ScriptError>>()?,
        ),
    })
}

/// The step's target (its `account`/`region` parameters, else the run's) and the parameters
/// the action itself takes.
pub(super) fn split_target(run: &Run, params: Option<&Value>) -> (Target, Params) {
    let mut params = params
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut take = |k: &str, default: &str| match params.remove(k) {
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(Value::Number(n)) => n.to_string(),
        _ => default.to_string(),
    };
    let account = take("account", &run.account);
    let region = take("region", &run.region);
    (
        Target {
            account,
            region,
            run_id: run.id.clone(),
        },
        params,
    )
}

/// Exponential backoff with full jitter: half the capped exponential step, plus a random part
/// of the other half. `random` comes from the runner's id source, so a seeded drill repeats.
fn backoff(base: Duration, attempt: u32, random: u64) -> Duration {
    let cap = base.saturating_mul(1 << attempt.min(6));
    let ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(ms / 2 + random % (ms / 2 + 1))
}

impl From<ScriptError> for RunnerError {
    fn from(e: ScriptError) -> Self {
        RunnerError::State(e.to_string())
    }
}
