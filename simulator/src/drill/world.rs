//! The simulated organization a scenario describes.

use std::collections::{BTreeMap, BTreeSet};

use cordon_engine::cloud::KeyStatus;

use super::scenario::Resources;
use super::scenario::Scenario;
use crate::world::{Group, Instance, Role, ScalingGroup, User, World};

/// The world of `s`: its accounts in the organization (SCPs enabled, as in an organization
/// that uses them), their groups, instances, users and roles.
pub fn build(s: &Scenario) -> World {
    let mut w = World::default();
    if let Some(m) = &s.org.management_account {
        w.org.management_account = m.clone();
    }
    w.org.scp_enabled = true;
    for a in &s.org.accounts {
        w.org.attachments.insert(
            a.id.clone(),
            BTreeSet::from(["p-FullAWSAccess".to_string()]),
        );
        w.account(&a.id);
    }
    for (account, r) in &s.resources {
        for (region, groups) in &r.security_groups {
            for (id, name) in groups {
                let vpc = r
                    .instances
                    .iter()
                    .find(|i| {
                        &i.region == region && i.interfaces.values().flatten().any(|g| g == id)
                    })
                    .map(|i| i.vpc.clone())
                    .unwrap_or_default();
                let group = Group {
                    name: name.clone(),
                    vpc_id: vpc,
                    ingress: 1,
                    egress: 1,
                };
                let acc = w.account(account);
                acc.regions
                    .entry(region.clone())
                    .or_default()
                    .groups
                    .insert(id.clone(), group);
            }
        }
        for i in &r.instances {
            let instance = Instance {
                vpc_id: i.vpc.clone(),
                interfaces: i.interfaces.clone(),
                volumes: i.volumes.clone(),
                termination_protection: false,
                tags: i.tags.clone(),
            };
            w.account(account)
                .regions
                .entry(i.region.clone())
                .or_default()
                .instances
                .insert(i.id.clone(), instance);
        }
        for u in &r.users {
            let user = User {
                keys: u
                    .keys
                    .iter()
                    .map(|k| (k.clone(), KeyStatus::Active))
                    .collect(),
                login_profile: u.login_profile,
                inline: BTreeMap::new(),
            };
            w.account(account).users.insert(u.name.clone(), user);
        }
        for spec in &r.roles {
            let (name, path) = spec.parts();
            let role = Role {
                path: path.into(),
                ..Role::default()
            };
            w.account(account).roles.insert(name.into(), role);
        }
        scaling(&mut w, account, r);
    }
    w
}

/// The account's Auto Scaling groups, each with the instances that name it in service.
fn scaling(w: &mut World, account: &str, r: &Resources) {
    for (region, groups) in &r.scaling_groups {
        for (name, spec) in groups {
            let instances = r
                .instances
                .iter()
                .filter(|i| &i.region == region && i.scaling_group.as_deref() == Some(name))
                .map(|i| (i.id.clone(), "InService".to_string()))
                .collect();
            let group = ScalingGroup {
                min_size: spec.min,
                max_size: spec.max,
                desired_capacity: spec.desired,
                instances,
                target_groups: Vec::new(),
            };
            w.account(account)
                .regions
                .entry(region.clone())
                .or_default()
                .scaling_groups
                .insert(name.clone(), group);
        }
    }
}
