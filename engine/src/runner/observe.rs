//! Hooks the runner and the dispatcher call as runs advance, for metrics. They are called on the
//! driving task and must not block.

use std::time::{Duration, Instant};

use crate::run::{RunState, StepState};

/// What metrics see of runs. Every method has a no-op default.
pub trait Observer: Send + Sync {
    /// A run was created for a finding received at `received` (a monotonic instant).
    fn run_created(&self, _run_id: &str, _playbook: &str, _received: Instant) {}

    /// A step's action is about to make its first call (attempt 1 of the step).
    fn action_started(&self, _run_id: &str, _playbook: &str, _action: &str) {}

    /// A step ended (`Succeeded` or `Failed`) after `elapsed` (all attempts).
    fn step_finished(&self, _playbook: &str, _action: &str, _state: StepState, _elapsed: Duration) {
    }

    /// A run reached a state where it stops: finished, waiting for a person, or released.
    fn run_settled(&self, _run_id: &str, _playbook: &str, _state: RunState) {}
}

/// The observer that observes nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl Observer for NoObserver {}
