//! Evaluations run on a stack deep enough for any value the limits allow.
//!
//! Rhai clones, drops, compares and prints nested arrays and maps recursively with no depth
//! limit of its own: the size limits bound nesting only to `max_array_size + max_map_size`
//! levels, and a script builds a few thousand levels well within its budgets. Measured on rhai
//! 1.27, `a == a` on nested arrays takes about 2 KiB of stack per level in a release build and
//! 8 KiB in a debug build, so a tokio worker's 2 MiB stack overflows, aborting the process, at
//! under 2,000 levels.
//!
//! Each evaluation therefore runs on a stack segment of that size, mapped for the call on the
//! calling thread (`stacker`, the crate rustc uses for its own deep recursion): address space
//! reserved, pages touched only as deep as the script goes. Measured in the ingest benchmark,
//! one trigger evaluation cost 107 us through a pool of big-stack threads (a hand-off and a
//! wake-up each way, slow on a loaded machine) and 29 us this way; a thread per call cost
//! 300-600 us. Scripts whose nesting `inline` bounds skip the switch when the caller's stack
//! suffices.

/// Runs evaluations on a deep stack.
pub(super) struct DeepStack {
    size: usize,
}

impl DeepStack {
    /// Evaluations get `size` bytes of stack.
    pub(super) fn new(size: usize) -> DeepStack {
        DeepStack { size }
    }

    /// Runs `f` on this thread: on the caller's stack when `inline` is `Some(need)` and at
    /// least `need` bytes of it are left, otherwise on a stack of the configured size. A panic
    /// inside `f` unwinds to the caller as usual.
    pub(super) fn run<R>(&self, inline: Option<usize>, f: impl FnOnce() -> R) -> R {
        match inline {
            // `maybe_grow` runs `f` in place when the remaining stack is known and large enough.
            Some(need) => stacker::maybe_grow(need, self.size, f),
            None => stacker::grow(self.size, f),
        }
    }
}
