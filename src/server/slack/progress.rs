//! Step-by-step progress for the run messages: an observer in front of the server's metrics
//! that, each time a step starts, asks the Slack side to bring that run's message up to date.
//!
//! The runner calls observers on the driving task and they must not block: the run id goes on
//! a bounded channel with `try_send`, and a full channel drops it (the message still catches up
//! when the run settles, which the dispatcher reports on its own).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cordon_engine::run::{RunState, StepState};
use cordon_engine::runner::Observer;
use tokio::sync::mpsc;

/// Run ids waiting to be refreshed, at most.
const QUEUE: usize = 1024;

/// The observer: forwards everything to `inner`, and step starts to the channel.
pub struct Progress {
    inner: Arc<dyn Observer>,
    tx: mpsc::Sender<String>,
}

/// The receiving end, for [`super::start`].
pub type Steps = mpsc::Receiver<String>;

impl Progress {
    /// An observer in front of `inner`, and the channel's receiving end.
    pub fn new(inner: Arc<dyn Observer>) -> (Arc<Progress>, Steps) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Arc::new(Progress { inner, tx }), rx)
    }
}

impl Observer for Progress {
    fn run_created(&self, run_id: &str, playbook: &str, received: Instant) {
        self.inner.run_created(run_id, playbook, received);
    }

    fn action_started(&self, run_id: &str, playbook: &str, action: &str) {
        self.inner.action_started(run_id, playbook, action);
        let _ = self.tx.try_send(run_id.to_string());
    }

    fn step_finished(&self, playbook: &str, action: &str, state: StepState, elapsed: Duration) {
        self.inner.step_finished(playbook, action, state, elapsed);
    }

    fn run_settled(&self, run_id: &str, playbook: &str, state: RunState) {
        self.inner.run_settled(run_id, playbook, state);
    }
}
