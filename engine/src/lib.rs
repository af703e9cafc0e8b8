//! cordon's engine: everything between an EventBridge event and a containment call, with no
//! AWS SDK in sight.
//!
//! - `finding`: the normalized [`Finding`] and its resources.
//! - `event`: EventBridge envelopes parsed, Security Hub batches split, findings normalized.
//! - `pattern`: EventBridge event patterns compiled into one matcher.
//! - `script`: the Rhai sandbox (limits, compiled expressions, `${...}` templates).

pub mod event;
pub mod finding;
pub mod pattern;
pub mod script;

pub use finding::{Finding, FindingSource, Resource, SeverityLabel};
