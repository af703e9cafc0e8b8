//! The simulated organization a scenario describes.

use std::collections::{BTreeMap, BTreeSet};

use cordon_engine::cloud::KeyStatus;

use super::scenario::{Org, Resources, Scenario};
use crate::org::{ou_id, policy_id, FULL_AWS_ACCESS};
use crate::world::{Group, Instance, Member, Ou, Role, ScalingGroup, User, World};

/// The world of `s`: its OUs and accounts in the organization (SCPs enabled, as in an
/// organization that uses them), its guardrail SCPs, the accounts' groups, instances, users and
/// roles.
pub fn build(s: &Scenario) -> World {
    let mut w = World::default();
    if let Some(m) = &s.org.management_account {
        w.org.management_account = m.clone();
    }
    organization(&mut w, &s.org);
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

/// The root, OUs and member accounts, each with AWS's `FullAWSAccess` attached (as enabling
/// SCPs does), and the scenario's guardrails attached where it says. A scenario that passed
/// its checks names only OUs and accounts it declares; anything else is skipped.
fn organization(w: &mut World, org: &Org) {
    w.org.scp_enabled = true;
    let root = w.org.root_id.clone();
    let full = || BTreeSet::from([FULL_AWS_ACCESS.to_string()]);
    w.org.attachments.insert(root.clone(), full());
    let mut ou_ids: BTreeMap<String, String> = BTreeMap::new();
    for (path, _, name) in org.ou_paths() {
        let parent = match path.rsplit_once('/') {
            Some((up, _)) => ou_ids.get(up).cloned().unwrap_or_else(|| root.clone()),
            None => root.clone(),
        };
        let id = (0..)
            .map(|salt| ou_id(&root, &path, salt))
            .find(|id| !w.org.ous.contains_key(id))
            .unwrap_or_default();
        w.org.ous.insert(id.clone(), Ou { name, parent });
        w.org.attachments.insert(id.clone(), full());
        ou_ids.insert(path, id);
    }
    for a in &org.accounts {
        let parent =
            a.ou.as_ref()
                .and_then(|p| ou_ids.get(p).cloned())
                .unwrap_or_else(|| root.clone());
        let member = Member {
            name: a.name.clone(),
            parent,
            tags: a.tags.clone(),
        };
        w.org.accounts.insert(a.id.clone(), member);
        w.org.attachments.insert(a.id.clone(), full());
        w.account(&a.id);
    }
    for p in &org.policies {
        let Ok(doc) = p.document() else { continue };
        let id = (0..)
            .map(|salt| policy_id(&p.name, salt))
            .find(|id| !w.org.policies.contains_key(id))
            .unwrap_or_default();
        w.org
            .policies
            .insert(id.clone(), (p.name.clone(), doc.to_string()));
        for t in &p.attach {
            let target = if t == "root" {
                Some(root.clone())
            } else {
                ou_ids
                    .get(t)
                    .cloned()
                    .or_else(|| w.org.accounts.contains_key(t).then(|| t.clone()))
            };
            if let Some(target) = target {
                w.org
                    .attachments
                    .entry(target)
                    .or_default()
                    .insert(id.clone());
            }
        }
    }
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
