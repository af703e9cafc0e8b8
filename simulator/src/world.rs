//! The simulated organization's state: accounts, IAM, EC2, SSM, SCPs, and a log of every
//! mutating call (so tests can count side effects, e.g. that a key was created once).

use std::collections::BTreeMap;

use cordon_engine::cloud::KeyStatus;
use cordon_engine::finding::kind;
use cordon_engine::Finding;
use serde::{Deserialize, Serialize};

pub use crate::org::{Member, Org, Ou};

/// The whole simulated world.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct World {
    /// Organizations.
    pub org: Org,
    /// Per account.
    pub accounts: BTreeMap<String, Account>,
    /// Chat messages posted.
    pub chat: Vec<String>,
    /// Audit events put.
    pub events: Vec<serde_json::Value>,
    /// Every mutating call, in order: `api account detail`.
    pub calls: Vec<String>,
    /// Counter for generated ids.
    pub next_id: u64,
}

/// One account.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Account {
    /// Roles by name.
    pub roles: BTreeMap<String, Role>,
    /// Users by name.
    pub users: BTreeMap<String, User>,
    /// Per region.
    pub regions: BTreeMap<String, Region>,
}

/// An IAM role.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Role {
    /// Path.
    pub path: String,
    /// Inline policies by name.
    pub inline: BTreeMap<String, String>,
}

/// An IAM user.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct User {
    /// Access keys (id, status).
    pub keys: Vec<(String, KeyStatus)>,
    /// Has a console password.
    pub login_profile: bool,
    /// Inline policies by name.
    pub inline: BTreeMap<String, String>,
}

/// One region of one account.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Region {
    /// Instances by id.
    pub instances: BTreeMap<String, Instance>,
    /// Security groups by id.
    pub groups: BTreeMap<String, Group>,
    /// Snapshots by id: (volume, tags).
    pub snapshots: BTreeMap<String, (String, BTreeMap<String, String>)>,
    /// SSM parameters by name: version. The value is not kept: the simulator holds no secret.
    pub parameters: BTreeMap<String, u64>,
    /// SSM commands by id: (document, instances).
    pub commands: BTreeMap<String, (String, Vec<String>)>,
    /// EC2 Auto Scaling groups by name.
    #[serde(default)]
    pub scaling_groups: BTreeMap<String, ScalingGroup>,
    /// Elastic Load Balancing (v2) target groups by ARN.
    #[serde(default)]
    pub target_groups: BTreeMap<String, TargetGroup>,
}

/// An Auto Scaling group. Like AWS, it keeps as many in-service instances as its desired
/// capacity: a detach or a move to standby without decrementing launches a replacement.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScalingGroup {
    /// Minimum size.
    pub min_size: i32,
    /// Maximum size.
    pub max_size: i32,
    /// Desired capacity.
    pub desired_capacity: i32,
    /// Member instances: id -> lifecycle state (`InService`, `Standby`).
    pub instances: BTreeMap<String, String>,
    /// ARNs of the target groups the group registers its in-service instances in.
    #[serde(default)]
    pub target_groups: Vec<String>,
}

/// An instance-type target group.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TargetGroup {
    /// Its VPC.
    pub vpc_id: String,
    /// Its port (the port of a target registered without one).
    pub port: i32,
    /// Registered targets: (instance id, port).
    pub targets: Vec<(String, i32)>,
}

/// An instance.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Instance {
    /// VPC.
    pub vpc_id: String,
    /// Network interfaces: id -> groups.
    pub interfaces: BTreeMap<String, Vec<String>>,
    /// Volumes.
    pub volumes: Vec<String>,
    /// Termination protection.
    pub termination_protection: bool,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// A security group.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Group {
    /// Name.
    pub name: String,
    /// VPC.
    pub vpc_id: String,
    /// Inbound rule count.
    pub ingress: usize,
    /// Outbound rule count.
    pub egress: usize,
}

impl World {
    /// A fresh id with a prefix (`sg-`, `snap-`...), deterministic for reproducible drills.
    pub fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:017x}", self.next_id)
    }

    /// The account, created on first use.
    pub fn account(&mut self, id: &str) -> &mut Account {
        self.accounts.entry(id.to_string()).or_default()
    }

    /// Creates what a finding names, the first time it is seen: the account in the
    /// organization, the instance (one interface in the default group, one volume), the user
    /// with an active key and a console password, the role.
    pub fn seed(&mut self, f: &Finding) {
        self.org.join(&f.account);
        for r in &f.resources {
            match r.kind.as_str() {
                kind::INSTANCE => {
                    self.seed_instance(&f.account, &f.region, &r.id, r.attributes.get("vpc_id"))
                }
                kind::ACCESS_KEY | kind::IAM_USER => {
                    let user = r
                        .attributes
                        .get("user_name")
                        .cloned()
                        .or_else(|| (r.kind == kind::IAM_USER).then(|| r.id.clone()));
                    let is_user = r.attributes.get("user_type").is_none_or(|t| t == "IAMUser");
                    if let (Some(user), true) = (user, is_user) {
                        let u = self
                            .account(&f.account)
                            .users
                            .entry(user)
                            .or_insert_with(|| User {
                                login_profile: true,
                                ..User::default()
                            });
                        if r.kind == kind::ACCESS_KEY && !u.keys.iter().any(|(k, _)| k == &r.id) {
                            u.keys.push((r.id.clone(), KeyStatus::Active));
                        }
                    }
                }
                kind::IAM_ROLE => {
                    self.account(&f.account)
                        .roles
                        .entry(r.id.clone())
                        .or_insert_with(|| Role {
                            path: "/".into(),
                            ..Role::default()
                        });
                }
                _ => {}
            }
        }
    }

    /// Seeds an instance with a generated id in `vpc` (an Auto Scaling group's launch).
    pub fn launch_instance(&mut self, account: &str, region: &str, vpc: &str) -> String {
        let id = self.id("i-");
        self.seed_instance(account, region, &id, Some(&vpc.to_string()));
        id
    }

    fn seed_instance(&mut self, account: &str, region: &str, id: &str, vpc: Option<&String>) {
        if self
            .account(account)
            .regions
            .get(region)
            .is_some_and(|r| r.instances.contains_key(id))
        {
            return;
        }
        let vpc = vpc
            .cloned()
            .unwrap_or_else(|| format!("vpc-sim{}", &account[account.len().saturating_sub(4)..]));
        let existing_default = self.account(account).regions.get(region).and_then(|r| {
            r.groups
                .iter()
                .find(|(_, g)| g.name == "default" && g.vpc_id == vpc)
                .map(|(id, _)| id.clone())
        });
        let sg = match existing_default {
            Some(sg) => sg,
            None => {
                let sg = self.id("sg-");
                let group = Group {
                    name: "default".into(),
                    vpc_id: vpc.clone(),
                    ingress: 1,
                    egress: 1,
                };
                self.account(account)
                    .regions
                    .entry(region.into())
                    .or_default()
                    .groups
                    .insert(sg.clone(), group);
                sg
            }
        };
        let (eni, vol) = (self.id("eni-"), self.id("vol-"));
        let instance = Instance {
            vpc_id: vpc,
            interfaces: BTreeMap::from([(eni, vec![sg])]),
            volumes: vec![vol],
            termination_protection: false,
            tags: BTreeMap::new(),
        };
        self.account(account)
            .regions
            .entry(region.into())
            .or_default()
            .instances
            .insert(id.into(), instance);
    }
}
