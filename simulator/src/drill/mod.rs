//! Tabletop drills: a scenario (an organization, its resources, a timeline of findings and
//! responders' decisions, expectations) run against the real playbooks and the engine's
//! dispatcher, on the simulator and a virtual clock, with a report.
//!
//! - `scenario`: the YAML, checked with file, line and field; `org`: its organization (OUs,
//!   accounts and tags, guardrail SCPs).
//! - `run`: the drill on a paused tokio runtime; ends by releasing everything it contained and
//!   comparing the world with its pre-drill snapshot.
//! - `attacker`: the attacker's moves, decided against what containment left in place.
//! - `faults`: AWS Fault Injection Service-style API faults, drawn from the seed.
//! - `gate`: the cloud the engine sees in a drill (faults, protected roles, connections).
//! - `network`: the attacker's connections, with EC2 connection tracking.
//! - `check`: expectations and their evidence.
//! - `report`: Markdown, JSON and JUnit XML; `html`: a self-contained page with an SVG timeline.
//!
//! Findings a drill injects carry [`cordon_engine::intake::DRILL_MARKER`]; `cordon serve`
//! refuses them.

pub mod attacker;
pub mod check;
pub mod faults;
pub mod gate;
pub mod html;
pub mod network;
pub mod org;
pub mod report;
pub mod room;
pub mod run;
pub mod scenario;
mod world;

pub use report::Report;
pub use room::{Room, Verdict};
pub use run::{run, run_interactive, run_timed, DrillError, Phases};
pub use scenario::{load, Loaded, ScenarioError};
