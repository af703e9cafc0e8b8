//! Evaluation threads with a deep stack, started once per sandbox.
//!
//! Rhai clones, drops, compares and prints nested arrays and maps recursively with no depth
//! limit of its own: the size limits bound nesting only to `max_array_size + max_map_size`
//! levels, and a script builds a few thousand levels well within its budgets. Measured on rhai
//! 1.27, `a == a` on nested arrays takes about 2 KiB of stack per level in a release build and
//! 8 KiB in a debug build, so a tokio worker's 2 MiB stack overflows, aborting the process, at
//! under 2,000 levels. Evaluations therefore run on these threads, whose stack is sized for the
//! deepest value the limits allow (reserved address space, touched only as deep as a script
//! goes). Starting a thread per call cost 0.3-0.6 ms; a hand-off to a waiting thread costs
//! microseconds.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex, OnceLock};

use super::{Core, ScriptError};

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of evaluation threads fed from one queue. The threads end when the pool (and so
/// its sending half) is dropped.
pub(super) struct EvalPool {
    stack_size: usize,
    jobs: OnceLock<mpsc::Sender<Job>>,
}

impl EvalPool {
    /// A pool whose threads (started on first use) have `stack_size` bytes of stack.
    pub(super) fn new(stack_size: usize) -> EvalPool {
        EvalPool {
            stack_size,
            jobs: OnceLock::new(),
        }
    }

    fn sender(&self) -> &mpsc::Sender<Job> {
        self.jobs.get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            let rx = Arc::new(Mutex::new(rx));
            let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
            for i in 0..threads {
                let rx = rx.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("cordon-script-{i}"))
                    .stack_size(self.stack_size)
                    .spawn(move || loop {
                        // The lock is held only while taking a job, not while running it.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    });
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "Could not start a script thread");
                }
            }
            tx
        })
    }

    /// Runs `f` on a pool thread and waits for its result. A panic inside `f` is a bug in the
    /// engine, not a script error: it is caught there (the thread lives on) and resumed here.
    pub(super) fn run<R: Send + 'static>(
        &self,
        core: &Arc<Core>,
        f: impl FnOnce(&Core) -> Result<R, ScriptError> + Send + 'static,
    ) -> Result<R, ScriptError> {
        let core = core.clone();
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(|| f(&core))));
        });
        let gone = || ScriptError::Runtime("the script threads are not running".into());
        self.sender().send(job).map_err(|_| gone())?;
        match rx.recv() {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => resume_unwind(panic),
            Err(_) => Err(gone()),
        }
    }
}
