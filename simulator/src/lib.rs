//! A simulated AWS organization implementing the engine's cloud traits, so that playbooks and
//! the real action logic run with no AWS account.
//!
//! - `authz`: AWS policy evaluation for what containment leaves behind (drills' attacker).
//! - `org`: the organization: root, OUs, member accounts, SCPs and their attachments.
//! - `world`: the state (accounts, IAM, EC2, SSM, SCPs) and a log of every mutating call.
//! - `cloud`: [`SimCloud`], the traits over a world, persisted beside the journal for `--cloud sim`.
//! - `oplog`: how a kept world is stored: a snapshot and a log of the calls made since.
//! - `scp`: the shape of an SCP document a scenario brings, as AWS accepts and `authz` evaluates.
//! - `scaling`: Auto Scaling groups and load balancer target groups of a [`SimCloud`].

pub mod authz;
mod cloud;
pub mod drill;
mod oplog;
pub mod org;
mod scaling;
pub mod scp;
pub mod world;

pub use cloud::{SimCloud, WorldFileError};
pub use world::World;
