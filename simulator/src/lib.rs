//! A simulated AWS organization implementing the engine's cloud traits, so that playbooks and
//! the real action logic run with no AWS account.
//!
//! - `authz`: AWS policy evaluation for what containment leaves behind (drills' attacker).
//! - `world`: the state (accounts, IAM, EC2, SSM, SCPs) and a log of every mutating call.
//! - `cloud`: [`SimCloud`], the traits over a world, persisted beside the journal for `--cloud sim`.
//! - `oplog`: how a kept world is stored: a snapshot and a log of the calls made since.
//! - `scaling`: Auto Scaling groups and load balancer target groups of a [`SimCloud`].

pub mod authz;
mod cloud;
pub mod drill;
mod oplog;
mod scaling;
pub mod world;

pub use cloud::{SimCloud, WorldFileError};
pub use world::World;
