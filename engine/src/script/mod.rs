//! The Rhai sandbox: one constructor with every limit; scripts and `${...}` templates compiled
//! once and evaluated many times.
//!
//! Playbooks embed Rhai in two places: `trigger.when` (a boolean script) and `${...}`
//! expressions in step parameters. Both see five variables, all JSON turned into Rhai values:
//!
//! | variable  | what                                                          |
//! |-----------|---------------------------------------------------------------|
//! | `event`   | the single-finding EventBridge event                          |
//! | `finding` | the normalized [`Finding`](crate::Finding)                    |
//! | `vars`    | the playbook's `vars`                                         |
//! | `steps`   | step id -> `#{ output: ... }` for the steps that already ran |
//! | `run`     | the run's ids (run id, playbook id, ...)                      |
//!
//! Finding fields are attacker-influenced and the script text comes from playbook authors, so
//! the engine is built for hostile input on both sides:
//!
//! - every Rhai limit is set ([`Limits`]), plus a wall-clock budget per evaluation enforced from
//!   Rhai's progress callback, so no script can hang the runner or exhaust memory;
//! - `eval` is disabled and modules do not exist (`no_module`); `import` fails to compile;
//! - nothing that reaches the system is registered; Rhai's built-in `sleep`, which would block
//!   the thread outside every budget, is replaced by a function that fails; `print` and `debug`
//!   go to `tracing` at debug level, truncated;
//! - variables must be declared (`strict_variables`), so a typo such as `findng.x` is a compile
//!   error with a position rather than a silent `()`.
//! - each evaluation runs on a stack segment sized for the deepest value the size limits
//!   allow, because Rhai clones, compares and prints nested values recursively (see `stack`),
//!   unless the script's shape bounds the nesting of every value it can build (`inline`) and
//!   the calling thread has the stack that bound needs.
//!
//! # Notes for playbook authors
//!
//! - Keys that are not identifiers are reached by indexing: `event["detail-type"]`.
//! - A missing map key reads as `()`. Test presence with `"key" in finding` (or compare:
//!   `finding.x != ()`). Rhai compares values of different types as neither equal nor ordered:
//!   `finding.missing > 3` and `finding.missing < 3` are both `false`, and so is
//!   `"8" > 3`; arithmetic on `()` is an error.
//! - JSON integers are Rhai `INT`s and other numbers `FLOAT`s; comparisons mix them freely, so
//!   `finding.severity >= 7` works when severity is `8.0`.
//! - A template that is exactly `${expr}` yields the expression's value with its type; any other
//!   template yields a string, strings inserted verbatim, other values as JSON. `$${` writes a
//!   literal `${`.
//! - A `${...}` whose value is `()` (a missing field, JSON `null`, an `if` without `else` that
//!   did not run) is an error of the step that renders it (of the plan, in a dry run), naming
//!   the expression; it never renders as an empty string that could still name a resource. For
//!   a value that may be absent on purpose, give a default with Rhai's `??`:
//!   `${finding.user_name ?? "unknown"}`, `${finding.x ?? ""}`.

mod error;
mod inline;
mod lex;
mod reads;
mod stack;
mod template;
mod value;

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, OptimizationLevel, Scope, AST, FLOAT, INT};
use serde_json::Value;

pub use error::{BudgetLimit, ScriptError};
pub(crate) use reads::Reads;
pub use template::Template;

use template::Part;

/// The names of the variables every script sees, in [`Context`] order.
const VARIABLES: [&str; 5] = ["event", "finding", "vars", "steps", "run"];

/// The token the wall-clock check terminates a script with. Scripts cannot raise a
/// termination themselves (`throw` is a different error), so this cannot be forged.
const TIME_MARKER: &str = "cordon: wall-clock budget exhausted";

/// How often, in Rhai operations, the wall clock is read. Reading it costs tens of
/// nanoseconds; every 16th operation keeps that well under the cost of the operations.
const CLOCK_EVERY_OPS: u64 = 16;

/// Stack per level of value nesting for an evaluation: twice the ~2 KiB (release) and
/// ~8 KiB (debug) that Rhai 1.27's recursive `==` was measured to use; see `stack`.
const STACK_PER_NESTING_LEVEL: usize = if cfg!(debug_assertions) {
    16 * 1024
} else {
    4 * 1024
};

/// Stack for everything but nested values: Rhai's evaluator at the maximum call depth.
const STACK_BASE: usize = 8 * 1024 * 1024;

/// Stack for everything but nested values when a script runs inline (`inline`: no script
/// function, closures one call deep). Rhai 1.27 was measured to need under 16 KiB (release) and
/// 96 KiB (debug) for expressions at the deepest nesting the compile limits allow, closures
/// included; this is several times that. The test `inline_evaluations_fit_their_stack` runs the
/// worst cases in exactly the budget this and [`STACK_PER_NESTING_LEVEL`] give.
const INLINE_STACK_BASE: usize = if cfg!(debug_assertions) {
    512 * 1024
} else {
    256 * 1024
};

/// The most bytes of one `print`/`debug` line that reach the log.
const MAX_LOG_BYTES: usize = 512;

/// The sandbox's limits. Every field is enforced; [`Limits::default`] is the production setting.
///
/// A zero means "unlimited" to Rhai, which a sandbox never wants: [`Sandbox::new`] replaces
/// zeros with the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Rhai operations per evaluation (roughly: expressions and statements evaluated).
    pub max_operations: u64,
    /// Nested function calls (script functions calling each other or themselves).
    pub max_call_depth: usize,
    /// Nesting of expressions at compile time, outside functions.
    pub max_expr_depth: usize,
    /// Nesting of expressions at compile time, inside function bodies.
    pub max_function_expr_depth: usize,
    /// Length of any string, in bytes (also bounds a rendered template).
    pub max_string_size: usize,
    /// Items in any array or BLOB, nested arrays counted in.
    pub max_array_size: usize,
    /// Entries in any object map, nested maps counted in.
    pub max_map_size: usize,
    /// Variables alive at once.
    pub max_variables: usize,
    /// Functions a script may define.
    pub max_functions: usize,
    /// Wall-clock time per evaluation.
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_operations: 100_000,
            max_call_depth: 32,
            max_expr_depth: 64,
            max_function_expr_depth: 32,
            max_string_size: 64 * 1024,
            max_array_size: 10_000,
            max_map_size: 10_000,
            max_variables: 256,
            max_functions: 64,
            time: Duration::from_millis(250),
        }
    }
}

impl Limits {
    /// These limits with every zero replaced by its default.
    fn or_defaults(self) -> Limits {
        let d = Limits::default();
        let pick = |v: usize, dv: usize| if v == 0 { dv } else { v };
        Limits {
            max_operations: if self.max_operations == 0 {
                d.max_operations
            } else {
                self.max_operations
            },
            max_call_depth: pick(self.max_call_depth, d.max_call_depth),
            max_expr_depth: pick(self.max_expr_depth, d.max_expr_depth),
            max_function_expr_depth: pick(self.max_function_expr_depth, d.max_function_expr_depth),
            max_string_size: pick(self.max_string_size, d.max_string_size),
            max_array_size: pick(self.max_array_size, d.max_array_size),
            max_map_size: pick(self.max_map_size, d.max_map_size),
            max_variables: pick(self.max_variables, d.max_variables),
            max_functions: pick(self.max_functions, d.max_functions),
            time: if self.time.is_zero() {
                d.time
            } else {
                self.time
            },
        }
    }
}

thread_local! {
    /// When the evaluation running on this thread must stop. Rhai's progress callback is one
    /// closure per engine with no per-call state, and an evaluation never leaves its thread, so
    /// the deadline lives here, set and restored around each call by [`DeadlineGuard`].
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Sets this thread's deadline for one evaluation and restores the previous one on drop.
struct DeadlineGuard {
    previous: Option<Instant>,
}

impl DeadlineGuard {
    fn start(budget: Duration) -> DeadlineGuard {
        let deadline = Instant::now().checked_add(budget);
        DeadlineGuard {
            previous: DEADLINE.with(|d| d.replace(deadline)),
        }
    }
}

impl Drop for DeadlineGuard {
    fn drop(&mut self) {
        DEADLINE.with(|d| d.set(self.previous));
    }
}

/// The Rhai engine with every limit set. Build one ([`Sandbox::new`]) and share it behind an
/// [`Arc`]: it is `Send + Sync`, and compiling or evaluating takes `&self`.
///
/// Evaluation is synchronous and bounded by [`Limits::time`]; a tokio task may call it directly.
pub struct Sandbox {
    core: Core,
    /// A stack deep enough for any value the limits allow; see `stack`.
    stack: stack::DeepStack,
}

/// What an evaluation needs.
struct Core {
    engine: Engine,
    limits: Limits,
    /// The script variables, declared (as `()`) so strict-variables compilation accepts them.
    /// Not constants: Rhai would fold a constant's compile-time value into the script.
    compile_scope: Scope<'static>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("limits", &self.core.limits)
            .finish_non_exhaustive()
    }
}

impl Default for Sandbox {
    fn default() -> Sandbox {
        Sandbox::new(Limits::default())
    }
}

impl Sandbox {
    /// The one constructor: a Rhai engine with every limit in `limits` (zeros replaced by the
    /// defaults), `eval` disabled, `sleep` replaced, and `print`/`debug` sent to `tracing`.
    pub fn new(limits: Limits) -> Sandbox {
        let limits = limits.or_defaults();
        // `Engine::new` brings the standard library (strings, arrays, maps, maths) and, with
        // `no_module`, no module resolver; nothing in it touches files, network or processes
        // except `sleep` and `print`/`debug`, all overridden below.
        let mut engine = Engine::new();
        engine
            .set_max_operations(limits.max_operations)
            .set_max_call_levels(limits.max_call_depth)
            .set_max_expr_depths(limits.max_expr_depth, limits.max_function_expr_depth)
            .set_max_string_size(limits.max_string_size)
            .set_max_array_size(limits.max_array_size)
            .set_max_map_size(limits.max_map_size)
            .set_max_variables(limits.max_variables)
            .set_max_functions(limits.max_functions)
            .set_strict_variables(true)
            .set_optimization_level(OptimizationLevel::Simple)
            .disable_symbol("eval")
            // `f.curry(f)` copies `f` with everything already curried into it: a handful of
            // calls doubles it past any memory, inside one operation, unseen by the size limits
            // (which do not count curried values) and by the clock.
            .disable_symbol("curry");

        engine.on_progress(|ops| {
            if ops % CLOCK_EVERY_OPS != 0 {
                return None;
            }
            DEADLINE.with(|d| match d.get() {
                Some(deadline) if Instant::now() >= deadline => Some(Dynamic::from(TIME_MARKER)),
                _ => None,
            })
        });

        engine.on_print(|text| {
            tracing::debug!(target: "cordon::script", output = %value::truncate(text, MAX_LOG_BYTES), "script print");
        });
        engine.on_debug(|text, _source, pos| {
            tracing::debug!(target: "cordon::script", output = %value::truncate(text, MAX_LOG_BYTES), position = %pos, "script debug");
        });

        // Functions registered on the engine are found before the standard library's, so these
        // shadow Rhai's `sleep`, which blocks the thread where no operation count can stop it.
        engine.register_fn("sleep", |_: INT| -> Result<(), Box<EvalAltResult>> {
            Err("sleep is not available in playbook scripts".into())
        });
        engine.register_fn("sleep", |_: FLOAT| -> Result<(), Box<EvalAltResult>> {
            Err("sleep is not available in playbook scripts".into())
        });

        let mut compile_scope = Scope::new();
        for name in VARIABLES {
            compile_scope.push_dynamic(name, Dynamic::UNIT);
        }

        // Deepest nesting the size limits allow: every level is one item of an array or map.
        let max_nesting = limits.max_array_size.saturating_add(limits.max_map_size);
        let stack_size = STACK_PER_NESTING_LEVEL
            .saturating_mul(max_nesting)
            .saturating_add(STACK_BASE);

        Sandbox {
            core: Core {
                engine,
                limits,
                compile_scope,
            },
            stack: stack::DeepStack::new(stack_size),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.core.limits
    }

    /// Compiles a full Rhai script; its value is that of its last expression. Syntax errors
    /// (including unknown variables, `eval` and `import`) carry the line and column in `source`.
    pub fn compile(&self, source: &str) -> Result<Script, ScriptError> {
        let ast = self
            .core
            .engine
            .compile_with_scope(&self.core.compile_scope, source)
            .map_err(|e| {
                // A disabled keyword after a dot reads to Rhai as a missing property name.
                if matches!(e.err_type(), rhai::ParseErrorType::PropertyExpected)
                    && lex::word_at(source, e.position()) == Some("curry")
                {
                    return ScriptError::syntax_at(e.position(), error::unavailable("curry"));
                }
                ScriptError::from_parse(&e, &self.core.limits)
            })?;
        Ok(Script {
            source: source.into(),
            ast: Arc::new(ast),
            step_refs: lex::step_refs(source).into(),
            growth: inline::growth(source),
            reads: Arc::new(VARIABLES.map(|name| reads::reads(source, name))),
        })
    }

    /// Evaluates a compiled script against `ctx` and returns its value as JSON.
    ///
    /// Blocks the caller until the script ends, at most [`Limits::time`] later. The script runs
    /// on a stack large enough for any value it can hold (a deeply nested value would overflow
    /// a tokio worker's 2 MiB stack and abort the process): the caller's own when the script's
    /// shape bounds that nesting and enough of it is left, otherwise one sized for the deepest
    /// value the limits allow.
    pub fn eval(&self, script: &Script, ctx: &Context) -> Result<Value, ScriptError> {
        let inline = self.inline_stack(script.growth, ctx);
        self.stack.run(inline, || self.core.eval_json(script, ctx))
    }

    /// Evaluates a compiled script that must yield `true` or `false` (a trigger condition).
    /// Any other value, `()` included, is a [`ScriptError::Type`].
    pub fn eval_bool(&self, script: &Script, ctx: &Context) -> Result<bool, ScriptError> {
        let inline = self.inline_stack(script.growth, ctx);
        self.stack.run(inline, || {
            let result = self.core.eval_dynamic(script, ctx)?;
            result.as_bool().map_err(|_| {
                ScriptError::Type(format!(
                    "expected true or false, got {}",
                    value::describe(&result)
                ))
            })
        })
    }

    /// Compiles a `${...}` template. Text outside `${...}` is literal and `$${` is a literal
    /// `${`; an expression ends at the `}` that closes it, so braces and strings inside it are
    /// fine (`${ #{a: 1} }`, `${ "}" }`). Syntax errors carry the line and column in `text`.
    pub fn compile_template(&self, text: &str) -> Result<Template, ScriptError> {
        let parts = template::split(text)?
            .into_iter()
            .map(|raw| match raw {
                template::RawPart::Literal(s) => Ok(Part::Literal(s)),
                template::RawPart::Expr { source, offset } => self
                    .compile(source)
                    .map(Part::Expr)
                    .map_err(|e| template::shift_error(e, text, offset)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Template {
            source: text.into(),
            parts: parts.into(),
        })
    }

    /// Renders a template. Exactly one `${expr}` and nothing else yields the expression's typed
    /// value; anything else yields a string. A template without `${` runs no script.
    pub fn render(&self, template: &Template, ctx: &Context) -> Result<Value, ScriptError> {
        match &*template.parts {
            [] => Ok(Value::String(String::new())),
            [Part::Literal(text)] => Ok(Value::String(text.clone())),
            parts => {
                // Inline only if every expression of the template may be.
                let growth = parts.iter().try_fold(0, |most, part| match part {
                    Part::Literal(_) => Some(most),
                    Part::Expr(script) => script.growth.map(|g| g.max(most)),
                });
                let inline = self.inline_stack(growth, ctx);
                self.stack.run(inline, || self.core.render(template, ctx))
            }
        }
    }

    /// The stack an evaluation needs to run on the caller's stack: `None` when the script's
    /// nesting growth is unbounded (see `inline`); otherwise enough for Rhai's evaluator plus
    /// every level of the deepest value the script can hold.
    fn inline_stack(&self, growth: Option<usize>, ctx: &Context) -> Option<usize> {
        let levels = ctx.depth.checked_add(growth?)?.checked_add(1)?;
        STACK_PER_NESTING_LEVEL
            .checked_mul(levels)?
            .checked_add(INLINE_STACK_BASE)
    }
}

impl Core {
    /// Renders a template with at least one `${...}`, on the current thread.
    fn render(&self, template: &Template, ctx: &Context) -> Result<Value, ScriptError> {
        let parts = match &*template.parts {
            [Part::Expr(script)] => return self.eval_in_template(script, ctx),
            parts => parts,
        };
        let mut out = String::new();
        for part in parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Expr(script) => {
                    template::stringify(&self.eval_in_template(script, ctx)?, &mut out)
                }
            }
            if out.len() > self.limits.max_string_size {
                return Err(ScriptError::Budget {
                    limit: BudgetLimit::StringSize,
                    message: format!(
                        "template rendered to more than the limit of {} bytes",
                        self.limits.max_string_size
                    ),
                });
            }
        }
        Ok(Value::String(out))
    }

    /// [`Sandbox::eval`] with runtime errors naming the `${...}` they come from; `()` is an
    /// error (see `template`).
    fn eval_in_template(&self, script: &Script, ctx: &Context) -> Result<Value, ScriptError> {
        let value = self.eval_json(script, ctx).map_err(|e| match e {
            ScriptError::Runtime(message) => ScriptError::Runtime(format!(
                "in ${{{}}}: {message}",
                value::truncate(script.source(), 80)
            )),
            other => other,
        })?;
        template::require_value(value, script.source())
    }

    /// Evaluates and converts to JSON, on the current thread.
    fn eval_json(&self, script: &Script, ctx: &Context) -> Result<Value, ScriptError> {
        let result = self.eval_dynamic(script, ctx)?;
        value::dynamic_to_json(result).map_err(ScriptError::Type)
    }

    /// Evaluates on the current thread.
    fn eval_dynamic(&self, script: &Script, ctx: &Context) -> Result<Dynamic, ScriptError> {
        // The scope is rebuilt per evaluation from the already-converted values: a script may
        // modify its variables, and no evaluation may see another's changes. Only what the
        // script can read is copied.
        let mut scope = Scope::new();
        for ((name, value), reads) in VARIABLES
            .iter()
            .zip(ctx.values.iter())
            .zip(script.reads.iter())
        {
            scope.push_dynamic(*name, reads.pick(value));
        }
        let _deadline = DeadlineGuard::start(self.limits.time);
        self.engine
            .eval_ast_with_scope::<Dynamic>(&mut scope, &script.ast)
            .map_err(|e| ScriptError::from_eval(*e, &self.limits, TIME_MARKER))
    }
}

/// A compiled script; see [`Sandbox::compile`]. Cheap to clone (shared).
#[derive(Clone)]
pub struct Script {
    source: Arc<str>,
    ast: Arc<AST>,
    step_refs: Arc<[String]>,
    /// How many levels of nesting the script can add to its context's values, when its shape
    /// bounds that (`inline`); then it may run on the caller's stack.
    growth: Option<usize>,
    /// What it reads of each variable, in [`VARIABLES`] order.
    reads: Arc<[Reads; 5]>,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Script {
    /// The script text as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The step ids the script references as `steps.<id>` or `steps["<id>"]`, in order of first
    /// appearance, without duplicates. A computed index (`steps[name]`) is not seen.
    pub fn step_refs(&self) -> Vec<String> {
        self.step_refs.to_vec()
    }

    /// What the script reads of context variable `name` (`Reads::All` for a name that is
    /// not one of the five).
    pub(crate) fn reads(&self, name: &str) -> &Reads {
        VARIABLES
            .iter()
            .position(|v| *v == name)
            .and_then(|i| self.reads.get(i))
            .unwrap_or(&Reads::All)
    }

    /// Whether the script's text mentions `name` as a whole word. Callers use it to skip
    /// converting variables a script cannot read; a mention inside a string or comment only
    /// costs a conversion that was not needed.
    pub fn mentions(&self, name: &str) -> bool {
        let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        self.source.match_indices(name).any(|(i, _)| {
            let before = self.source[..i].chars().next_back();
            let after = self.source[i + name.len()..].chars().next();
            !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
        })
    }
}

/// The variables a script sees, converted from JSON once and reused for every script and
/// template evaluated at one site (a trigger, a step's parameters).
#[derive(Debug, Clone)]
pub struct Context {
    /// In [`VARIABLES`] order; shared, so cloning a context is cheap.
    values: Arc<[Dynamic; 5]>,
    /// How deeply each value nests (at most `value::MAX_DEPTH`).
    depths: [usize; 5],
    /// The largest of `depths`.
    depth: usize,
}

impl Default for Context {
    /// Every variable an empty map.
    fn default() -> Context {
        Context {
            values: Arc::new(std::array::from_fn(|_| Dynamic::from_map(rhai::Map::new()))),
            depths: [0; 5],
            depth: 0,
        }
    }
}

impl Context {
    /// A context from the five JSON values. `null` becomes `()`; integers that fit `i64` become
    /// `INT`, other numbers `FLOAT`.
    pub fn new(
        event: &Value,
        finding: &Value,
        vars: &Value,
        steps: &Value,
        run: &Value,
    ) -> Context {
        let converted = [event, finding, vars, steps, run].map(value::json_to_dynamic);
        let depths = converted.each_ref().map(|(_, depth)| *depth);
        Context {
            values: Arc::new(converted.map(|(value, _)| value)),
            depths,
            depth: depths.into_iter().max().unwrap_or(0),
        }
    }

    /// Replaces `event`.
    pub fn with_event(self, event: &Value) -> Context {
        self.with(0, event)
    }

    /// Replaces `finding`.
    pub fn with_finding(self, finding: &Value) -> Context {
        self.with(1, finding)
    }

    /// Replaces `vars`.
    pub fn with_vars(self, vars: &Value) -> Context {
        self.with(2, vars)
    }

    /// Replaces `steps` (step id -> `{ "output": ... }`).
    pub fn with_steps(self, steps: &Value) -> Context {
        self.with(3, steps)
    }

    /// Replaces `run`.
    pub fn with_run(self, run: &Value) -> Context {
        self.with(4, run)
    }

    fn with(mut self, index: usize, value: &Value) -> Context {
        let (converted, depth) = value::json_to_dynamic(value);
        Arc::make_mut(&mut self.values)[index] = converted;
        self.depths[index] = depth;
        self.depth = self.depths.into_iter().max().unwrap_or(0);
        self
    }
}

// The runner shares one sandbox across tokio tasks and moves compiled playbooks between them.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Sandbox>();
    send_sync::<Script>();
    send_sync::<Template>();
    send_sync::<Context>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A hang detector, not a performance target: debug builds are slow, but nothing here
    /// should take more than a fraction of this.
    const HANG: Duration = Duration::from_secs(2);

    fn sandbox() -> Sandbox {
        Sandbox::default()
    }

    fn ctx() -> Context {
        Context::new(
            &json!({
                "version": "0",
                "detail-type": "GuardDuty Finding",
                "source": "aws.guardduty",
                "detail": {"severity": 8.0, "type": "UnauthorizedAccess:EC2/SSHBruteForce"}
            }),
            &json!({
                "id": "f-1",
                "severity": 8.0,
                "count": 3,
                "title": "SSH brute force against ${vars.secret} `whoami`",
                "resources": [{"type": "AwsEc2Instance", "id": "i-0abc"}],
                "tags": {"team-name": "blue"}
            }),
            &json!({"secret": "s3cr3t", "threshold": 7}),
            &json!({"isolate": {"output": {"ok": true, "sg": "sg-1"}}}),
            &json!({"id": "run-1", "playbook": "pb-1"}),
        )
    }

    /// Compiles and evaluates `src`, asserting it finishes within [`HANG`].
    fn run(sb: &Sandbox, src: &str) -> Result<Value, ScriptError> {
        let started = Instant::now();
        let result = sb.compile(src).and_then(|s| sb.eval(&s, &ctx()));
        let took = started.elapsed();
        assert!(took < HANG, "{src:?} took {took:?}");
        result
    }

    fn budget(result: Result<Value, ScriptError>) -> (BudgetLimit, String) {
        match result {
            Err(ScriptError::Budget { limit, message }) => (limit, message),
            other => panic!("expected a budget error, got {other:?}"),
        }
    }

    // ---- hostile scripts -------------------------------------------------------------------

    #[test]
    fn endless_loops_hit_the_operation_budget() {
        // A generous clock, so that on a loaded machine the operation count, the limit under
        // test, is still what stops the loop (the time budget has its own test).
        let sb = Sandbox::new(Limits {
            time: Duration::from_secs(30),
            ..Limits::default()
        });
        for src in [
            "loop {}",
            "while true {}",
            "let x = 0; loop { x += 1; }",
            // (An empty `for` body is optimized away entirely, so give it work.)
            "let n = 0; for i in 0..1000000000 { n += i; } n",
            "fn f() { loop {} } f()",
        ] {
            let (limit, message) = budget(run(&sb, src));
            assert_eq!(limit, BudgetLimit::Operations, "{src}");
            assert!(
                message.contains("script exceeded its budget of 100000 operations"),
                "{message}"
            );
        }
    }

    #[test]
    fn runaway_recursion_hits_the_call_depth() {
        let sb = sandbox();
        let (limit, message) = budget(run(&sb, "fn f(x) { f(x + 1) } f(0)"));
        assert_eq!(limit, BudgetLimit::CallDepth);
        assert!(message.contains("call depth of 32"), "{message}");
        // Mutual recursion through a function pointer is the same budget.
        let (limit, _) = budget(run(
            &sb,
            "fn a(x) { call(Fn(\"b\"), x) } fn b(x) { a(x) } a(0)",
        ));
        assert_eq!(limit, BudgetLimit::CallDepth);
    }

    #[test]
    fn doubling_string_hits_the_string_size() {
        let sb = sandbox();
        let (limit, message) = budget(run(&sb, r#"let s = "x"; loop { s += s; }"#));
        assert_eq!(limit, BudgetLimit::StringSize);
        assert!(message.contains("65536 bytes"), "{message}");
        let (limit, _) = budget(run(&sb, r#""x".pad(100000000, "y")"#));
        assert_eq!(limit, BudgetLimit::StringSize);
    }

    #[test]
    fn growing_array_hits_the_array_size() {
        let sb = sandbox();
        for src in [
            "let a = [1]; loop { a += a; }",
            "let a = []; a.pad(1000000000, 0); a",
            "let a = []; loop { a = [a, a]; }",
        ] {
            let (limit, message) = budget(run(&sb, src));
            assert_eq!(limit, BudgetLimit::ArraySize, "{src}");
            assert!(message.contains("10000 items"), "{message}");
        }
        // Growing one item at a time, Rhai re-measures the whole array after every push, so
        // the loop is quadratic: in a debug build the wall clock runs out before the size limit
        // is reached. Either budget is a correct stop.
        let (limit, _) = budget(run(&sb, "let a = []; loop { a.push(1); }"));
        assert!(
            matches!(limit, BudgetLimit::ArraySize | BudgetLimit::Time),
            "{limit}"
        );
    }

    #[test]
    fn deep_nesting_built_at_run_time_is_bounded() {
        // Each level adds one item, so the array budget stops this at 10,000 levels: deep, but
        // it must neither overflow the stack (Rhai's size checks and drops recurse) nor be
        // returned as JSON.
        let sb = sandbox();
        let result = run(&sb, "let a = []; loop { a = [a]; }");
        assert!(result.is_err(), "{result:?}");
        let result = run(&sb, "let a = []; for i in 0..200 { a = [a]; } a");
        assert!(matches!(result, Err(ScriptError::Type(_))), "{result:?}");
    }

    #[test]
    fn recursive_operations_on_deep_values_do_not_overflow_the_stack() {
        // Rhai clones, compares and prints nested values recursively. On a 2 MiB stack each of
        // these aborted the whole test process (debug build: `==` at about 500 levels); the
        // evaluation stack is sized for the deepest nesting the limits allow.
        let sb = Sandbox::new(Limits {
            time: Duration::from_secs(10),
            ..Limits::default()
        });
        let c = ctx();
        for (build, op, want) in [
            ("a = [a]", "a == a", json!(true)),
            ("a = [a]", "`${a}`.len()", json!(2002)),
            ("a = [a]", "a.contains(a)", json!(false)),
            ("a = #{x: a}", "a == a", json!(true)),
            ("a = [#{x: a}]", "let b = a; b != a", json!(false)),
        ] {
            let src = format!("let a = []; for i in 0..1000 {{ {build}; }} {op}");
            let script = sb.compile(&src).expect("compiles");
            let started = Instant::now();
            assert_eq!(sb.eval(&script, &c), Ok(want), "{src}");
            assert!(started.elapsed() < Duration::from_secs(10), "{src}");
        }
        // Too deep to be JSON: a type error, after the value was dropped on the big stack.
        let script = sb
            .compile("let a = []; for i in 0..1000 { a = [a]; } a")
            .expect("compiles");
        assert!(matches!(sb.eval(&script, &c), Err(ScriptError::Type(_))));
    }

    #[test]
    fn growing_map_hits_the_map_size() {
        let sb = sandbox();
        // Nested maps count towards the limit, so doubling by nesting reaches it quickly.
        let (limit, message) = budget(run(&sb, "let m = #{a: 1}; loop { m = #{a: m, b: m}; }"));
        assert_eq!(limit, BudgetLimit::MapSize);
        assert!(message.contains("10000 entries"), "{message}");
        // One key at a time is quadratic like arrays (see above): whichever budget runs out
        // first (size, time, or operations on a fast machine) stops it.
        let (limit, _) = budget(run(
            &sb,
            "let m = #{}; let i = 0; loop { m[`k${i}`] = i; i += 1; }",
        ));
        assert!(
            matches!(
                limit,
                BudgetLimit::MapSize | BudgetLimit::Time | BudgetLimit::Operations
            ),
            "{limit}"
        );
    }

    #[test]
    fn deeply_nested_expression_is_a_syntax_error_not_a_stack_overflow() {
        let sb = sandbox();
        let depth = 10_000;
        let src = format!("{}1{}", "(".repeat(depth), ")".repeat(depth));
        match run(&sb, &src) {
            Err(ScriptError::Syntax { message, .. }) => {
                assert!(message.contains("nested too deeply"), "{message}")
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
        let src = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        assert!(matches!(run(&sb, &src), Err(ScriptError::Syntax { .. })));
        let src = format!(
            "fn f() {{ {}1{} }} f()",
            "(".repeat(depth),
            ")".repeat(depth)
        );
        assert!(matches!(run(&sb, &src), Err(ScriptError::Syntax { .. })));
    }

    #[test]
    fn wall_clock_budget_stops_slow_scripts() {
        // Few operations, each slow: the operation budget alone would let this run for long.
        let sb = Sandbox::new(Limits {
            max_operations: u64::MAX,
            time: Duration::from_millis(50),
            ..Limits::default()
        });
        let started = Instant::now();
        let script = sb.compile("loop { }").expect("compiles");
        let (limit, message) = budget(sb.eval(&script, &ctx()));
        assert_eq!(limit, BudgetLimit::Time);
        assert!(message.contains("time budget of 50 ms"), "{message}");
        assert!(started.elapsed() < HANG);
        // The deadline is per evaluation: the next one gets a fresh budget.
        let ok = sb.compile("1 + 1").expect("compiles");
        assert_eq!(sb.eval(&ok, &ctx()), Ok(json!(2)));
    }

    #[test]
    fn eval_is_unavailable() {
        let sb = sandbox();
        for src in [
            r#"eval("1")"#,
            r#"let x = eval("finding"); x"#,
            r#"call(Fn("eval"), "1")"#,
            r#"Fn("eval").call("1")"#,
        ] {
            let result = run(&sb, src);
            assert!(result.is_err(), "{src} gave {result:?}");
        }
        match run(&sb, r#"eval("1")"#) {
            Err(ScriptError::Syntax { message, .. }) => {
                assert!(message.contains("eval"), "{message}")
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn curry_is_unavailable() {
        // Each `f.curry(f)` doubled `f` (30 calls took minutes and gigabytes in one operation).
        let sb = sandbox();
        for src in [
            r#"curry(Fn("x"), 1)"#,
            r#"let f = Fn("x"); for i in 0..40 { f = f.curry(f); } 1"#,
        ] {
            match run(&sb, src) {
                Err(ScriptError::Syntax { message, .. }) => {
                    assert!(message.contains("curry"), "{message}")
                }
                other => panic!("{src}: expected a syntax error, got {other:?}"),
            }
        }
        // Closures still capture variables (Rhai curries captured values internally).
        assert_eq!(
            run(&sb, "let k = 2; [1, 2].map(|x| x * k)"),
            Ok(json!([2, 4]))
        );
    }

    #[test]
    fn import_does_not_compile() {
        let sb = sandbox();
        match run(&sb, r#"import "x" as y; y::f()"#) {
            Err(ScriptError::Syntax {
                line,
                column,
                message,
            }) => {
                assert_eq!((line, column), (1, 1));
                assert!(message.contains("modules are not available"), "{message}");
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn sleep_is_unavailable() {
        let sb = sandbox();
        for src in ["sleep(100)", "sleep(100.0)", r#"call(Fn("sleep"), 100)"#] {
            let result = run(&sb, src);
            assert!(
                matches!(&result, Err(ScriptError::Runtime(m)) if m.contains("sleep is not available")),
                "{src} gave {result:?}"
            );
        }
    }

    #[test]
    fn print_and_debug_go_nowhere_visible() {
        // They must not fail (authors debug with them) and must not reach stdout; tracing
        // carries them at debug level.
        let sb = sandbox();
        assert_eq!(run(&sb, r#"print("x"); debug(finding); 1"#), Ok(json!(1)));
    }

    // ---- reading the context ---------------------------------------------------------------

    #[test]
    fn finding_fields_and_hyphenated_keys() {
        let sb = sandbox();
        assert_eq!(run(&sb, "finding.id"), Ok(json!("f-1")));
        assert_eq!(run(&sb, "finding.resources[0].id"), Ok(json!("i-0abc")));
        assert_eq!(
            run(&sb, r#"event["detail-type"]"#),
            Ok(json!("GuardDuty Finding"))
        );
        assert_eq!(run(&sb, r#"finding.tags["team-name"]"#), Ok(json!("blue")));
        assert_eq!(run(&sb, "steps.isolate.output.sg"), Ok(json!("sg-1")));
        assert_eq!(
            run(&sb, "run.id + \"/\" + run.playbook"),
            Ok(json!("run-1/pb-1"))
        );
        assert_eq!(run(&sb, "vars.threshold"), Ok(json!(7)));
    }

    #[test]
    fn int_and_float_compare() {
        let sb = sandbox();
        let script = sb.compile("finding.severity >= 7").expect("compiles");
        assert_eq!(sb.eval_bool(&script, &ctx()), Ok(true));
        for (src, want) in [
            ("finding.severity >= vars.threshold", true),
            ("finding.severity == 8", true),
            ("8 == finding.severity", true),
            ("finding.severity < 8", false),
            ("finding.count > 2.5", true),
            ("finding.count + 0.5 == 3.5", true),
        ] {
            assert_eq!(run(&sb, src), Ok(json!(want)), "{src}");
        }
    }

    #[test]
    fn presence_tests_and_missing_keys() {
        let sb = sandbox();
        assert_eq!(run(&sb, r#""severity" in finding"#), Ok(json!(true)));
        assert_eq!(run(&sb, r#""nope" in finding"#), Ok(json!(false)));
        assert_eq!(run(&sb, r#"finding.contains("id")"#), Ok(json!(true)));
        // A missing key reads as (), which is JSON null.
        assert_eq!(run(&sb, "finding.nope"), Ok(Value::Null));
        assert_eq!(run(&sb, r#"event["no-such-key"]"#), Ok(Value::Null));
        assert_eq!(run(&sb, "finding.nope == ()"), Ok(json!(true)));
        assert_eq!(run(&sb, "finding.nope?.deeper"), Ok(Value::Null));
        // Rhai compares values of different types as unequal and unordered: `() > 3` and
        // `() < 3` are both false, never an error. Trigger authors must test presence.
        assert_eq!(run(&sb, "finding.nope > 3"), Ok(json!(false)));
        assert_eq!(run(&sb, "finding.nope < 3"), Ok(json!(false)));
        assert_eq!(run(&sb, r#"finding.id > 3"#), Ok(json!(false)));
        // Arithmetic on a missing field is an error that says what to do.
        match run(&sb, "finding.nope + 1") {
            Err(ScriptError::Runtime(m)) => assert!(m.contains("in finding"), "{m}"),
            other => panic!("expected a runtime error, got {other:?}"),
        }
    }

    #[test]
    fn eval_bool_rejects_non_bools_clearly() {
        let sb = sandbox();
        let c = ctx();
        let check = |src: &str, want: &str| {
            let script = sb.compile(src).expect("compiles");
            match sb.eval_bool(&script, &c) {
                Err(ScriptError::Type(m)) => assert_eq!(m, want),
                other => panic!("{src}: expected a type error, got {other:?}"),
            }
        };
        check(r#""x""#, r#"expected true or false, got string "x""#);
        check("1", "expected true or false, got integer 1");
        check(
            "finding.nope",
            "expected true or false, got () (nothing: a missing field?)",
        );
        let script = sb.compile("finding.id == \"f-1\"").expect("compiles");
        assert_eq!(sb.eval_bool(&script, &c), Ok(true));
    }

    #[test]
    fn scripts_cannot_change_the_context_for_later_evaluations() {
        let sb = sandbox();
        let c = ctx();
        let mutate = sb
            .compile(r#"finding.id = "evil"; vars.secret = "x"; finding.id"#)
            .expect("compiles");
        assert_eq!(sb.eval(&mutate, &c), Ok(json!("evil")));
        let read = sb.compile("finding.id + vars.secret").expect("compiles");
        assert_eq!(sb.eval(&read, &c), Ok(json!("f-1s3cr3t")));
    }

    #[test]
    fn unknown_variables_do_not_compile() {
        let sb = sandbox();
        match sb.compile("let a = 1;\nfindng.severity > a") {
            Err(ScriptError::Syntax {
                line,
                column,
                message,
            }) => {
                assert_eq!((line, column), (2, 1), "{message}");
                assert!(message.contains("findng"), "{message}");
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let sb = sandbox();
        match sb.compile("let x = 1;\nlet y = x +;\n") {
            Err(ScriptError::Syntax { line, column, .. }) => assert_eq!((line, column), (2, 12)),
            other => panic!("expected a syntax error, got {other:?}"),
        }
        let err = sb.compile("1 +").expect_err("incomplete");
        assert!(
            err.to_string()
                .starts_with("syntax error at line 1, column"),
            "{err}"
        );
    }

    #[test]
    fn runtime_errors_and_throw() {
        let sb = sandbox();
        match run(&sb, r#"throw "no""#) {
            Err(ScriptError::Runtime(m)) => assert!(m.contains("no"), "{m}"),
            other => panic!("expected a runtime error, got {other:?}"),
        }
        // A budget error cannot be caught by the script.
        let (limit, _) = budget(run(&sb, "try { loop {} } catch { 1 }"));
        assert_eq!(limit, BudgetLimit::Operations);
    }

    #[test]
    fn results_become_json() {
        let sb = sandbox();
        assert_eq!(
            run(&sb, r#"#{ a: [1, 2.5, "x", (), true], b: 'c' }"#),
            Ok(json!({"a": [1, 2.5, "x", null, true], "b": "c"}))
        );
        assert!(matches!(run(&sb, r#"Fn("f")"#), Err(ScriptError::Type(_))));
        assert!(matches!(run(&sb, "1.0 / 0.0"), Err(ScriptError::Type(_))));
    }

    // ---- templates -------------------------------------------------------------------------

    fn render(sb: &Sandbox, text: &str) -> Result<Value, ScriptError> {
        let started = Instant::now();
        let result = sb
            .compile_template(text)
            .and_then(|t| sb.render(&t, &ctx()));
        assert!(started.elapsed() < HANG, "{text:?}");
        result
    }

    #[test]
    fn single_expression_templates_keep_their_type() {
        let sb = sandbox();
        assert_eq!(render(&sb, "${finding.severity}"), Ok(json!(8.0)));
        assert_eq!(render(&sb, "${finding.count}"), Ok(json!(3)));
        assert_eq!(render(&sb, "${finding.severity > 7}"), Ok(json!(true)));
        assert_eq!(
            render(&sb, "${finding.resources}"),
            Ok(json!([{"type": "AwsEc2Instance", "id": "i-0abc"}]))
        );
        assert_eq!(render(&sb, "${ #{a: 1} }"), Ok(json!({"a": 1})));
        assert_eq!(
            render(&sb, "${ #{a: #{b: [1]}} }"),
            Ok(json!({"a": {"b": [1]}}))
        );
    }

    #[test]
    fn mixed_templates_render_strings() {
        let sb = sandbox();
        assert_eq!(
            render(
                &sb,
                "instance ${finding.resources[0].id} (sev ${finding.severity}, n=${finding.count})"
            ),
            Ok(json!("instance i-0abc (sev 8.0, n=3)"))
        );
        assert_eq!(render(&sb, " ${finding.count}"), Ok(json!(" 3")));
        assert_eq!(
            render(&sb, "${finding.id}${finding.count}"),
            Ok(json!("f-13"))
        );
        // A missing field is an error naming the expression, never an empty string; `??` gives
        // an optional value on purpose.
        for text in [
            "[${finding.nope}]",
            "${finding.nope}",
            "i-${ if false { 1 } }",
            "${finding.resources.filter(|r| r.type == \"AccessKey\")[0].id}",
            "${finding.resources[1].id}",
        ] {
            match render(&sb, text) {
                Err(ScriptError::Runtime(m)) => assert!(m.starts_with("in ${"), "{m}"),
                other => panic!("{text}: expected an error, got {other:?}"),
            }
        }
        assert_eq!(render(&sb, "[${finding.nope ?? \"\"}]"), Ok(json!("[]")));
        assert_eq!(render(&sb, "${finding.nope ?? 5}"), Ok(json!(5)));
        assert_eq!(render(&sb, "m=${ #{a: 1} }"), Ok(json!("m={\"a\":1}")));
        assert_eq!(
            render(&sb, r#"${ "a}b" } and ${ '}' }"#),
            Ok(json!("a}b and }"))
        );
        assert_eq!(render(&sb, r#"${ `x${ "}" }y` }"#), Ok(json!("x}y")));
    }

    #[test]
    fn constant_templates_and_escapes() {
        let sb = sandbox();
        let t = sb
            .compile_template("cost: $$5 and $${literal} {braces}")
            .expect("compiles");
        assert!(t.is_constant());
        assert_eq!(
            sb.render(&t, &ctx()),
            Ok(json!("cost: $$5 and ${literal} {braces}"))
        );
        assert_eq!(render(&sb, ""), Ok(json!("")));
        assert_eq!(
            render(&sb, "$${finding.id} is ${finding.id}"),
            Ok(json!("${finding.id} is f-1"))
        );
        assert!(!sb.compile_template("${x}").is_ok_and(|t| t.is_constant()));
        assert!(sb
            .compile_template("${finding.id}")
            .expect("compiles")
            .is_single_expression());
    }

    #[test]
    fn attacker_data_is_never_evaluated() {
        let sb = sandbox();
        // The finding title contains `${vars.secret}` and back-ticks: it is data, both as a
        // typed value and spliced into a string.
        assert_eq!(
            render(&sb, "${finding.title}"),
            Ok(json!("SSH brute force against ${vars.secret} `whoami`"))
        );
        assert_eq!(
            render(&sb, "title: ${finding.title}!"),
            Ok(json!(
                "title: SSH brute force against ${vars.secret} `whoami`!"
            ))
        );
        let hostile = Context::default().with_finding(&json!({"x": "\"}; loop {} ${"}));
        let t = sb.compile_template("<${finding.x}>").expect("compiles");
        assert_eq!(sb.render(&t, &hostile), Ok(json!("<\"}; loop {} ${>")));
    }

    #[test]
    fn template_errors_point_into_the_template() {
        let sb = sandbox();
        match sb.compile_template("line one\nid: ${finding.id +}") {
            Err(ScriptError::Syntax { line, column, .. }) => assert_eq!((line, column), (2, 19)),
            other => panic!("expected a syntax error, got {other:?}"),
        }
        assert!(matches!(
            sb.compile_template("${ finding.id"),
            Err(ScriptError::Syntax { line: 1, .. })
        ));
        match render(&sb, "x ${ throw \"boom\" } y") {
            Err(ScriptError::Runtime(m)) => assert!(m.contains("in ${ throw"), "{m}"),
            other => panic!("expected a runtime error, got {other:?}"),
        }
    }

    #[test]
    fn rendered_strings_are_bounded() {
        let sb = sandbox();
        let t = sb
            // (`"x".pad(..)` pads a temporary and yields (): pad a variable.)
            .compile_template(
                r#"${let s = ""; s.pad(60000, "x"); s}${let s = ""; s.pad(60000, "x"); s}"#,
            )
            .expect("compiles");
        let (limit, _) = budget(sb.render(&t, &ctx()));
        assert_eq!(limit, BudgetLimit::StringSize);
    }

    #[test]
    fn step_refs_are_collected() {
        let sb = sandbox();
        let t = sb
            .compile_template(r#"${steps.isolate.output.sg} ${steps["snap-shot"].output} ${steps.isolate.ok} ${"steps.fake"}"#)
            .expect("compiles");
        assert_eq!(t.step_refs(), vec!["isolate", "snap-shot"]);
        let s = sb
            .compile("steps.a.output.ok && steps?.b != () && run.steps.c == ()")
            .expect("compiles");
        assert_eq!(s.step_refs(), vec!["a", "b"]);
        assert!(sb
            .compile_template("no refs")
            .expect("compiles")
            .step_refs()
            .is_empty());
    }

    #[test]
    fn mentions_finds_whole_words_only() {
        let sb = sandbox();
        let s = sb
            .compile("finding.severity > 7 && vars.events_seen > 0")
            .unwrap();
        assert!(s.mentions("finding"));
        assert!(s.mentions("vars"));
        assert!(!s.mentions("event"), "`events_seen` is not `event`");
    }

    #[test]
    fn sandbox_is_shareable_across_threads() {
        let sb = Arc::new(sandbox());
        let script = sb.compile("finding.count * 2").expect("compiles");
        let c = Arc::new(ctx());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (sb, script, c) = (Arc::clone(&sb), script.clone(), Arc::clone(&c));
                std::thread::spawn(move || sb.eval(&script, &c))
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().expect("no panic"), Ok(json!(6)));
        }
    }
}
