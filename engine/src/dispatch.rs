//! The dispatcher: findings in, runs driven as tokio tasks. The CLI, `cordon serve` and drills
//! all go through it.
//!
//! - A submitted finding's runs are journaled (durable) before [`Dispatcher::submit`] returns,
//!   then each is driven by its own task, after the answer.
//! - At most [`Limits::runs`] runs are driven at once, and at most [`Limits::per_account`] in any
//!   one account, so one noisy account cannot starve the others or exhaust its API rate limits.
//!   Runs on one resource (the finding's first resource, in its account) are driven one at a
//!   time, so that two containments of one instance never interleave their calls.
//! - One task drives a given run at a time: asking to drive a run that is being driven makes its
//!   task go round once more instead. Releases take the same turn.
//! - A run that stops at an approval with a timeout gets a timer on the runner's clock; when it
//!   fires, the default decision applies and the run goes on.
//! - [`Dispatcher::start`] picks up every open run of the journal (after a crash or a restart).
//! - [`Dispatcher::shutdown`] stops taking work, lets each run finish the step under way within a
//!   grace period, and leaves the rest for the next start.
//! - Backpressure: when [`Limits::queue`] runs are already admitted and not settled, a submission
//!   is refused with [`DispatchError::Busy`] before anything is written.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, watch, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::event::FindingEvent;
use crate::journal::Admission;
use crate::playbook::{PlaybookRef, PlaybookSet};
use crate::run::{Run, RunState, Trigger};
use crate::runner::{Expired, Prepare, Runner, RunnerError, Submitted};

/// How many runs at once (the config's `server.limits`; every field optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Runs driven at once, in all.
    pub runs: usize,
    /// Runs driven at once in one account.
    pub per_account: usize,
    /// Runs admitted and not yet settled (driving, or waiting for a slot) before new findings
    /// are refused with [`DispatchError::Busy`].
    pub queue: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            runs: 64,
            per_account: 8,
            queue: 10_000,
        }
    }
}

/// Why the dispatcher did not take a request.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// Too many runs in flight; try again after `retry_after`.
    #[error("{queued} runs are in flight (limit {limit}); try again in {}s", retry_after.as_secs())]
    Busy {
        /// Runs admitted and not settled.
        queued: usize,
        /// The limit.
        limit: usize,
        /// A sensible wait before trying again.
        retry_after: Duration,
    },
    /// The dispatcher is shutting down.
    #[error("cordon is shutting down")]
    ShuttingDown,
    /// The runner (or the journal) failed.
    #[error(transparent)]
    Runner(#[from] RunnerError),
}

/// A run changed state (broadcast to [`Dispatcher::subscribe`]rs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunUpdate {
    /// Run id.
    pub run_id: String,
    /// Its state now.
    pub state: RunState,
    /// No task is driving it any more: it is finished, waiting for a person, or stopped for a
    /// shutdown.
    pub settled: bool,
}

/// What [`Dispatcher::start`] picked up.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Resumed {
    /// Runs being driven again.
    pub driven: Vec<String>,
    /// Runs waiting for a decision (their timers armed).
    pub waiting: Vec<String>,
    /// Approval timeouts that had passed, applied at start.
    pub expired: Vec<Expired>,
}

/// The dispatcher. Cheap to clone; all clones share one set of tasks.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    runner: Arc<Runner>,
    limits: Limits,
    slots: Arc<Semaphore>,
    /// Per-account limits (`account:ID`, [`Limits::per_account`] permits) and per-resource
    /// turns (`resource:ACCOUNT/ID`, one permit), while some task holds or waits for them.
    lanes: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Runs with a task: run id -> "go round once more".
    active: Mutex<HashMap<String, bool>>,
    tasks: Tasks,
    shutdown: CancellationToken,
    updates: broadcast::Sender<RunUpdate>,
}

/// Consecutive conflicts after which a task gives a run up (another writer keeps winning).
const MAX_CONFLICTS: usize = 16;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Dispatcher {
    /// A dispatcher driving `runner`'s runs within `limits` (zeros are taken as 1).
    pub fn new(runner: Runner, limits: Limits) -> Dispatcher {
        let limits = Limits {
            runs: limits.runs.max(1),
            per_account: limits.per_account.max(1),
            queue: limits.queue.max(1),
        };
        let (updates, _) = broadcast::channel(1024);
        Dispatcher {
            inner: Arc::new(Inner {
                runner: Arc::new(runner),
                limits,
                slots: Arc::new(Semaphore::new(limits.runs)),
                lanes: Mutex::new(HashMap::new()),
                active: Mutex::new(HashMap::new()),
                tasks: Tasks::default(),
                shutdown: CancellationToken::new(),
                updates,
            }),
        }
    }

    /// The runner.
    pub fn runner(&self) -> &Runner {
        &self.inner.runner
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// Runs admitted and not yet settled.
    pub fn queue_depth(&self) -> usize {
        lock(&self.inner.active).len()
    }

    /// Run updates from now on. A slow receiver may miss some ([`broadcast`] semantics); read
    /// the journal for the truth.
    pub fn subscribe(&self) -> broadcast::Receiver<RunUpdate> {
        self.inner.updates.subscribe()
    }

    /// Replaces the loaded playbooks; runs in flight keep theirs.
    pub fn reload(&self, set: PlaybookSet) {
        self.inner.runner.set_playbooks(Arc::new(set));
    }

    /// Picks up the journal's open runs: approval timeouts that passed are applied first, then
    /// unfinished runs are driven and waiting runs get their timers.
    pub async fn start(&self) -> Result<Resumed, DispatchError> {
        let runner = &self.inner.runner;
        let mut resumed = Resumed::default();
        for id in runner
            .journal()
            .open_ids()
            .await
            .map_err(RunnerError::from)?
        {
            if let Some(e) = runner.expire(&id).await? {
                resumed.expired.push(e);
            }
            let run = runner.load(&id).await?;
            if run.state == RunState::WaitingApproval {
                if let Some(deadline) = run.approval_deadline_ms() {
                    self.inner.arm_timer(&id, deadline);
                }
                resumed.waiting.push(id);
            } else if run.state.is_unfinished() {
                self.inner.schedule(&id);
                resumed.driven.push(id);
            }
        }
        Ok(resumed)
    }

    /// Journals the runs a finding starts (durable on return) and schedules them.
    /// `received` is when the finding arrived, for the time-to-first-action metric.
    ///
    /// Errors: [`DispatchError::Busy`] (nothing written) when the queue is full;
    /// [`DispatchError::Runner`] when the journal failed (runs already written stay, and a
    /// repeat of the delivery finds them as duplicates).
    pub async fn submit(
        &self,
        fe: &FindingEvent,
        received: Instant,
    ) -> Result<Vec<Submitted>, DispatchError> {
        self.submit_as(fe, received, Admission::Deliver).await
    }

    /// [`Dispatcher::submit`] for a person who asks on purpose: with [`Admission::Rerun`], a
    /// match whose earlier run for the finding has finished starts again (see
    /// [`Runner::submit_as`]).
    pub async fn submit_as(
        &self,
        fe: &FindingEvent,
        received: Instant,
        admission: Admission,
    ) -> Result<Vec<Submitted>, DispatchError> {
        self.submit_prepared(fe, received, admission, &|_| {}).await
    }

    /// [`Dispatcher::submit_as`], calling `prepare` once before the finding's first run is
    /// journaled (see [`Runner::submit_prepared`]).
    pub async fn submit_prepared(
        &self,
        fe: &FindingEvent,
        received: Instant,
        admission: Admission,
        prepare: &Prepare<'_>,
    ) -> Result<Vec<Submitted>, DispatchError> {
        self.admit()?;
        let mut submitted = self
            .inner
            .runner
            .submit_prepared(fe, admission, prepare)
            .await?;
        for s in &mut submitted {
            self.launch(s, received);
        }
        Ok(submitted)
    }

    /// Journals and schedules one run of `playbook` for the finding, started by a person or a
    /// custom action (`admission` says whether a finished run of the same key may be repeated).
    pub async fn start_run(
        &self,
        playbook: &PlaybookRef,
        fe: &FindingEvent,
        trigger: Trigger,
        admission: Admission,
    ) -> Result<Submitted, DispatchError> {
        self.admit()?;
        let mut s = self
            .inner
            .runner
            .create_run(playbook, fe, trigger, admission)
            .await?;
        self.launch(&mut s, Instant::now());
        Ok(s)
    }

    fn admit(&self) -> Result<(), DispatchError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(DispatchError::ShuttingDown);
        }
        let queued = self.queue_depth();
        if queued >= self.inner.limits.queue {
            return Err(DispatchError::Busy {
                queued,
                limit: self.inner.limits.queue,
                retry_after: Duration::from_secs(5),
            });
        }
        Ok(())
    }

    fn launch(&self, s: &mut Submitted, received: Instant) {
        let created = s.created_run.take();
        if let (true, Some(id)) = (s.created(), &s.run_id) {
            self.inner
                .runner
                .observer()
                .run_created(id, &s.playbook, received);
            self.inner.schedule_with(id, created);
        }
    }

    /// Records a decision on a waiting step (durable) and, after an approval, drives the run on.
    /// Returns the run's state right after the decision (`running` or `denied`).
    pub async fn decide(
        &self,
        id: &str,
        step: &str,
        approved: bool,
        by: &str,
    ) -> Result<RunState, DispatchError> {
        let state = self.inner.runner.decide(id, step, approved, by).await?;
        if state == RunState::Running {
            self.inner.schedule(id);
        }
        Ok(state)
    }

    /// Undoes a run's containment, in this task, taking the run's turn: a run being driven
    /// cannot be released until it stops.
    pub async fn release(&self, id: &str, by: &str) -> Result<RunState, DispatchError> {
        {
            let mut active = lock(&self.inner.active);
            if active.contains_key(id) {
                return Err(RunnerError::State(format!(
                    "run {id} is being driven; release it once it stops (see `cordon runs show {id}`)"
                ))
                .into());
            }
            active.insert(id.to_string(), false);
        }
        let result = self.inner.runner.release(id, by).await;
        lock(&self.inner.active).remove(id);
        let state = result?;
        self.inner.publish(id, state, true);
        Ok(state)
    }

    /// Waits until no task drives run `id`, and returns its state then.
    pub async fn wait(&self, id: &str) -> Result<RunState, DispatchError> {
        let mut updates = self.subscribe();
        loop {
            if !lock(&self.inner.active).contains_key(id) {
                return Ok(self.inner.runner.load(id).await?.state);
            }
            match updates.recv().await {
                Ok(u) if u.settled && u.run_id == id => return Ok(u.state),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    return Err(DispatchError::ShuttingDown)
                }
            }
        }
    }

    /// Waits until no run is being driven.
    pub async fn idle(&self) {
        let mut updates = self.subscribe();
        while self.queue_depth() > 0 {
            if let Err(broadcast::error::RecvError::Closed) = updates.recv().await {
                return;
            }
        }
    }

    /// Whether [`Dispatcher::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }

    /// Stops taking work, asks every run to stop before its next step, cancels timers, and
    /// waits up to `grace` for the steps under way. Returns whether everything stopped in time
    /// (if not, the steps still under way are cut off when the process exits; the journal holds
    /// their intent, so the next start resumes them).
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.inner.shutdown.cancel();
        self.inner.runner.stop();
        tokio::time::timeout(grace, self.inner.tasks.none_left())
            .await
            .is_ok()
    }
}

impl Inner {
    /// Makes sure a task drives run `id`: starts one, or tells the running one to go round
    /// again.
    fn schedule(self: &Arc<Self>, id: &str) {
        self.schedule_with(id, None);
    }

    /// [`Inner::schedule`], with the run as just journaled when the caller has it (a new task
    /// then starts from it instead of reading it back).
    fn schedule_with(self: &Arc<Self>, id: &str, run: Option<Box<Run>>) {
        {
            let mut active = lock(&self.active);
            if let Some(again) = active.get_mut(id) {
                *again = true;
                return;
            }
            active.insert(id.to_string(), false);
        }
        let inner = self.clone();
        let id = id.to_string();
        self.tasks
            .spawn(async move { inner.drive_task(id, run).await });
    }

    async fn drive_task(self: Arc<Self>, id: String, run: Option<Box<Run>>) {
        // Runs on one resource (two findings on one instance arrive together) take turns: two
        // isolations interleaving their calls would undo each other's steps. Waiting for the
        // resource comes first, holding nothing scarce; then the account's limit, then a slot.
        let journaled = match run {
            Some(run) => Ok(*run),
            None => self.runner.load(&id).await,
        };
        let mut loaded = match journaled {
            Ok(run) => Some(run),
            Err(e) => {
                tracing::error!(run_id = %id, error = %e, "Cannot load the run to drive it");
                None
            }
        };
        let (account, resource) = match &loaded {
            Some(run) => {
                let resource = run.finding["resources"][0]["id"]
                    .as_str()
                    .map(|r| format!("resource:{}/{r}", run.account));
                (format!("account:{}", run.account), resource)
            }
            None => ("account:".to_string(), None),
        };
        let per_account = self.lane(&account, self.limits.per_account);
        let per_resource = resource.as_ref().map(|r| self.lane(r, 1));
        let permits = tokio::select! {
            p = async {
                let turn = match &per_resource {
                    Some(s) => Some(s.clone().acquire_owned().await),
                    None => None,
                };
                (turn, per_account.clone().acquire_owned().await, self.slots.clone().acquire_owned().await)
            } => Some(p),
            () = self.shutdown.cancelled() => None,
        };
        let mut state = RunState::Pending;
        let mut conflicts = 0;
        if permits.is_some() {
            loop {
                // The run as loaded above, unless the wait let someone change it (the version
                // check would refuse the first write; reloading now saves that round trip).
                let run = match loaded
                    .take()
                    .filter(|_| !lock(&self.active).get(&id).copied().unwrap_or(false))
                {
                    Some(run) => Ok(run),
                    None => self.runner.load(&id).await,
                };
                let driven = match run {
                    Ok(run) => self.runner.drive_loaded(run).await,
                    Err(e) => Err(e),
                };
                match driven {
                    Ok(d) => {
                        state = d.state;
                        conflicts = 0;
                        if let Some(deadline) = d.deadline_ms {
                            self.arm_timer(&id, deadline);
                        }
                        self.publish(&id, d.state, false);
                    }
                    Err(e) if e.is_conflict() && conflicts < MAX_CONFLICTS => {
                        conflicts += 1;
                        tracing::debug!(run_id = %id, error = %e, "Run changed meanwhile; driving it again from the journal");
                        lock(&self.active).insert(id.clone(), true);
                    }
                    Err(e) => {
                        tracing::error!(run_id = %id, error = %e, "Driving the run failed; it stays open for the next start");
                    }
                }
                let mut active = lock(&self.active);
                if active.get(&id) == Some(&true) && !self.runner.stopping() {
                    active.insert(id.clone(), false);
                    continue;
                }
                active.remove(&id);
                break;
            }
        } else {
            lock(&self.active).remove(&id);
        }
        drop(permits);
        drop(per_account);
        drop(per_resource);
        self.forget_lane(&account);
        if let Some(r) = &resource {
            self.forget_lane(r);
        }
        self.publish(&id, state, true);
    }

    fn lane(&self, key: &str, permits: usize) -> Arc<Semaphore> {
        lock(&self.lanes)
            .entry(key.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(permits)))
            .clone()
    }

    /// Drops a lane's semaphore once no task holds it, so the map stays as small as the set of
    /// accounts and resources with runs in flight.
    fn forget_lane(&self, key: &str) {
        let mut lanes = lock(&self.lanes);
        if lanes.get(key).is_some_and(|s| Arc::strong_count(s) == 1) {
            lanes.remove(key);
        }
    }

    fn publish(&self, id: &str, state: RunState, settled: bool) {
        let _ = self.updates.send(RunUpdate {
            run_id: id.to_string(),
            state,
            settled,
        });
    }

    /// Waits on the runner's clock until `deadline` (epoch ms), the run's approval deadline,
    /// then applies the default decision (unless someone decided first) and drives the run on
    /// after an approval.
    fn arm_timer(self: &Arc<Self>, id: &str, deadline: u64) {
        let inner = self.clone();
        let id = id.to_string();
        self.tasks.spawn(async move {
            tokio::select! {
                () = inner.runner.clock().sleep_until(deadline) => {}
                () = inner.shutdown.cancelled() => return,
            }
            match inner.runner.expire(&id).await {
                Ok(Some(e)) => {
                    tracing::info!(run_id = %id, step = %e.step, approved = e.approved, "Approval timed out; default applied");
                    if e.approved {
                        inner.schedule(&id);
                    } else {
                        inner.publish(&id, RunState::Denied, true);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(run_id = %id, error = %e, "Applying the approval timeout failed")
                }
            }
        });
    }
}

/// The dispatcher's spawned tasks (drivers and timers), counted so a shutdown can wait for them.
struct Tasks {
    live: watch::Sender<usize>,
}

impl Default for Tasks {
    fn default() -> Tasks {
        Tasks {
            live: watch::Sender::new(0),
        }
    }
}

/// Counts one task out when dropped, however the task ends.
struct TaskGuard(watch::Sender<usize>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl Tasks {
    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.live.send_modify(|n| *n += 1);
        let guard = TaskGuard(self.live.clone());
        tokio::spawn(async move {
            let _guard = guard;
            task.await;
        });
    }

    async fn none_left(&self) {
        let mut live = self.live.subscribe();
        let _ = live.wait_for(|n| *n == 0).await;
    }
}
