//! Auto Scaling groups and load balancer target groups of the simulated organization, with the
//! behaviour AWS documents and isolation depends on: a group refuses to go below its minimum or
//! above its maximum, replaces an instance detached (or put in standby) without decrementing,
//! and registers its in-service instances in its target groups (and deregisters them when they
//! leave).

use async_trait::async_trait;
use cordon_engine::cloud::{
    AutoScaling, CloudError, CloudResult, LoadBalancing, ScalingGroup, ScalingMembership, Target,
    TargetRegistration,
};

use serde_json::json;

use crate::cloud::{account, missing, region, region_mut, SimCloud};
use crate::oplog::target;
use crate::world::{self, Region, World};

fn group_info(name: &str, g: &world::ScalingGroup) -> ScalingGroup {
    ScalingGroup {
        name: name.into(),
        min_size: g.min_size,
        max_size: g.max_size,
        desired_capacity: g.desired_capacity,
    }
}

fn validation(message: String) -> CloudError {
    CloudError::fatal(format!("ValidationError: {message}"))
}

/// Registers (`on`) or deregisters the instance in the group's target groups, on their ports.
fn in_group_targets(r: &mut Region, group: &str, instance: &str, on: bool) {
    let arns = r
        .scaling_groups
        .get(group)
        .map(|g| g.target_groups.clone())
        .unwrap_or_default();
    for arn in arns {
        if let Some(tg) = r.target_groups.get_mut(&arn) {
            let port = tg.port;
            tg.targets.retain(|(i, _)| i != instance);
            if on {
                tg.targets.push((instance.to_string(), port));
            }
        }
    }
}

/// The instance leaves service in `group`: out of its target groups; desired capacity drops
/// with `decrement` (not below the minimum), or a replacement is launched into the group.
fn leave(
    w: &mut World,
    t: &Target,
    group: &str,
    instance: &str,
    decrement: bool,
) -> CloudResult<()> {
    let r = region_mut(w, t);
    let g = r
        .scaling_groups
        .get(group)
        .ok_or_else(|| missing(&format!("Auto Scaling group {group}"), t))?;
    if !g.instances.contains_key(instance) {
        return Err(validation(format!(
            "the instance {instance} is not part of Auto Scaling group {group}"
        )));
    }
    let vpc = r
        .instances
        .get(instance)
        .map(|i| i.vpc_id.clone())
        .unwrap_or_default();
    if decrement && g.desired_capacity - 1 < g.min_size {
        return Err(validation(format!(
            "decrementing {group}'s desired capacity below its minimum ({}) is not allowed",
            g.min_size
        )));
    }
    in_group_targets(r, group, instance, false);
    if decrement {
        if let Some(g) = r.scaling_groups.get_mut(group) {
            g.desired_capacity -= 1;
        }
        return Ok(());
    }
    let new = w.launch_instance(&t.account, &t.region, &vpc);
    let r = region_mut(w, t);
    if let Some(g) = r.scaling_groups.get_mut(group) {
        g.instances.insert(new.clone(), "InService".into());
    }
    in_group_targets(r, group, &new, true);
    Ok(())
}

#[async_trait]
impl AutoScaling for SimCloud {
    async fn membership(
        &self,
        t: &Target,
        instance: &str,
    ) -> CloudResult<Option<ScalingMembership>> {
        self.read("autoscaling:DescribeAutoScalingInstances", |w| {
            account(w, t)?;
            Ok(region(w, t).and_then(|r| {
                r.scaling_groups.iter().find_map(|(name, g)| {
                    g.instances.get(instance).map(|state| ScalingMembership {
                        group: group_info(name, g),
                        lifecycle_state: state.clone(),
                    })
                })
            }))
        })
    }

    async fn scaling_group(&self, t: &Target, name: &str) -> CloudResult<Option<ScalingGroup>> {
        self.read("autoscaling:DescribeAutoScalingGroups", |w| {
            Ok(region(w, t)
                .and_then(|r| r.scaling_groups.get(name))
                .map(|g| group_info(name, g)))
        })
    }

    async fn detach_instance(
        &self,
        t: &Target,
        group: &str,
        instance: &str,
        decrement: bool,
    ) -> CloudResult<()> {
        self.write("autoscaling:DetachInstances", &t.account, || json!({"target": target(t), "group": group, "instance": instance, "decrement": decrement}), |w| {
            leave(w, t, group, instance, decrement)?;
            if let Some(g) = region_mut(w, t).scaling_groups.get_mut(group) {
                g.instances.remove(instance);
            }
            Ok(())
        })
        .await
    }

    async fn attach_instance(&self, t: &Target, group: &str, instance: &str) -> CloudResult<()> {
        self.write(
            "autoscaling:AttachInstances",
            &t.account,
            || json!({"target": target(t), "group": group, "instance": instance}),
            |w| {
                let r = region_mut(w, t);
                if !r.instances.contains_key(instance) {
                    return Err(missing(&format!("instance {instance}"), t));
                }
                let g = r
                    .scaling_groups
                    .get_mut(group)
                    .ok_or_else(|| missing(&format!("Auto Scaling group {group}"), t))?;
                if g.desired_capacity + 1 > g.max_size {
                    return Err(validation(format!(
                        "attaching would take {group} above its maximum size ({})",
                        g.max_size
                    )));
                }
                g.desired_capacity += 1;
                g.instances.insert(instance.into(), "InService".into());
                in_group_targets(r, group, instance, true);
                Ok(())
            },
        )
        .await
    }

    async fn enter_standby(
        &self,
        t: &Target,
        group: &str,
        instance: &str,
        decrement: bool,
    ) -> CloudResult<()> {
        self.write("autoscaling:EnterStandby", &t.account, || json!({"target": target(t), "group": group, "instance": instance, "decrement": decrement}), |w| {
            leave(w, t, group, instance, decrement)?;
            if let Some(g) = region_mut(w, t).scaling_groups.get_mut(group) {
                g.instances.insert(instance.into(), "Standby".into());
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl LoadBalancing for SimCloud {
    async fn registrations(
        &self,
        t: &Target,
        vpc_id: &str,
        instance: &str,
    ) -> CloudResult<Vec<TargetRegistration>> {
        self.read("elasticloadbalancing:DescribeTargetHealth", |w| {
            account(w, t)?;
            let Some(r) = region(w, t) else {
                return Ok(Vec::new());
            };
            Ok(r.target_groups
                .iter()
                .filter(|(_, tg)| tg.vpc_id == vpc_id)
                .flat_map(|(arn, tg)| {
                    tg.targets
                        .iter()
                        .filter(|(i, _)| i == instance)
                        .map(|(_, port)| TargetRegistration {
                            target_group_arn: arn.clone(),
                            port: Some(*port),
                            availability_zone: None,
                            state: "healthy".into(),
                        })
                })
                .collect())
        })
    }

    async fn deregister(
        &self,
        t: &Target,
        instance: &str,
        reg: &TargetRegistration,
    ) -> CloudResult<()> {
        self.write(
            "elasticloadbalancing:DeregisterTargets",
            &t.account,
            || json!({"target": target(t), "instance": instance, "registration": reg}),
            |w| {
                let tg = region_mut(w, t)
                    .target_groups
                    .get_mut(&reg.target_group_arn)
                    .ok_or_else(|| missing(&reg.target_group_arn, t))?;
                let port = reg.port.unwrap_or(tg.port);
                let before = tg.targets.len();
                tg.targets.retain(|(i, p)| !(i == instance && *p == port));
                if tg.targets.len() == before {
                    return Err(missing(&format!("target {instance}:{port}"), t));
                }
                Ok(())
            },
        )
        .await
    }

    async fn register(
        &self,
        t: &Target,
        instance: &str,
        reg: &TargetRegistration,
    ) -> CloudResult<()> {
        self.write(
            "elasticloadbalancing:RegisterTargets",
            &t.account,
            || json!({"target": target(t), "instance": instance, "registration": reg}),
            |w| {
                let tg = region_mut(w, t)
                    .target_groups
                    .get_mut(&reg.target_group_arn)
                    .ok_or_else(|| missing(&reg.target_group_arn, t))?;
                let port = reg.port.unwrap_or(tg.port);
                if !tg.targets.iter().any(|(i, p)| i == instance && *p == port) {
                    tg.targets.push((instance.to_string(), port));
                }
                Ok(())
            },
        )
        .await
    }
}
