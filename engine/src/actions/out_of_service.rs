//! Taking an instance out of service for `ec2.isolate_instance`: out of its Auto Scaling group
//! and out of its load balancers' target groups, and back on release.
//!
//! Why: once isolation makes an instance fail its health checks, its Auto Scaling group
//! terminates and replaces it (termination protection does not stop Auto Scaling), destroying
//! the evidence, and a load balancer keeps routing requests to it until it is deregistered.
//!
//! Detach, not standby. The Auto Scaling User Guide recommends standby for an instance that
//! will come back ("Temporarily remove instances from your Auto Scaling group"), but an instance
//! in standby is still the group's: deleting the group (`ForceDelete`) or
//! `TerminateInstanceInAutoScalingGroup` still terminates it, termination protection or not.
//! A detached instance is independent ("you can manage them independent of the Auto Scaling
//! group", DetachInstances API reference), so termination protection then guards the evidence.
//!
//! `ShouldDecrementDesiredCapacity=true` whenever the group's minimum allows it: the group then
//! launches no replacement during the incident (a replacement comes from the same launch
//! template, AMI and user data that may be how the attacker got in, and it changes the
//! environment under investigation), and release is an exact inverse: `AttachInstances` raises
//! desired capacity by one (AttachInstances API reference). A group already at its minimum
//! cannot be decremented ("you must decrement the minimum capacity", User Guide, "Detach or
//! attach instances"); cordon does not lower the owner's minimum, so there it detaches without
//! decrementing and the group launches a replacement, which the output says.
//!
//! An instance found in `Standby` is detached without decrementing (the User Guide warns that
//! decrementing while detaching a standby instance can terminate other instances); release
//! attaches it and puts it back in standby with a decrement, which restores desired capacity.
//! Other lifecycle states (pending, terminating, warm pool) cannot be detached: the instance is
//! still isolated and the output says it was not detached.
//!
//! Target groups: every registration of the instance in the instance-type target groups of its
//! VPC, with its port (an instance can be registered on several), is deregistered and, on
//! release, registered again with the same port. `draining` registrations are already on their
//! way out and are neither recorded nor restored. Detaching from the group deregisters it from
//! the group's own target groups as well; deregistering explicitly also covers groups the
//! instance was registered in by hand.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{ActionError, Context};
use crate::cloud::{missing_as_done, ScalingMembership, TargetRegistration};

/// The lifecycle state AWS lets an instance be detached from, besides `Standby`.
const IN_SERVICE: &str = "InService";
const STANDBY: &str = "Standby";
/// Target state of a registration on its way out.
const DRAINING: &str = "draining";

/// The instance's service before isolation, journaled in the isolation's pre-state.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct ServiceBefore {
    /// The Auto Scaling group the instance was in, and what cordon does about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<ScalingPlan>,
    /// Its registrations in target groups (`draining` ones left out).
    #[serde(default)]
    pub registrations: Vec<TargetRegistration>,
}

/// The group membership read before the change, and the detach decided from it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ScalingPlan {
    /// As read before the change.
    pub membership: ScalingMembership,
    /// Whether the lifecycle state allows a detach.
    pub detach: bool,
    /// `ShouldDecrementDesiredCapacity`: false only where the minimum forbids it (a
    /// replacement is launched) or the instance is in standby.
    pub decrement: bool,
}

fn plan(m: ScalingMembership) -> ScalingPlan {
    let in_service = m.lifecycle_state == IN_SERVICE;
    let detach = in_service || m.lifecycle_state == STANDBY;
    let decrement = in_service && m.group.desired_capacity > m.group.min_size;
    ScalingPlan {
        membership: m,
        detach,
        decrement,
    }
}

/// Reads the instance's group and target registrations. Changes nothing.
pub(crate) async fn prepare(
    ctx: &Context<'_>,
    instance: &str,
    vpc_id: &str,
) -> Result<ServiceBefore, ActionError> {
    let t = &ctx.target;
    let scaling = ctx
        .cloud
        .autoscaling
        .membership(t, instance)
        .await?
        .map(plan);
    let registrations = ctx
        .cloud
        .elb
        .registrations(t, vpc_id, instance)
        .await?
        .into_iter()
        .filter(|r| r.state != DRAINING)
        .collect();
    Ok(ServiceBefore {
        scaling,
        registrations,
    })
}

/// Detaches the instance from its group (if it is still there: a re-run after a crash finds it
/// gone) and deregisters every recorded registration. Runs before the security-group swap, so
/// the group never sees the isolated instance fail a health check.
pub(crate) async fn take_out(
    ctx: &Context<'_>,
    instance: &str,
    before: &ServiceBefore,
) -> Result<(), ActionError> {
    let t = &ctx.target;
    if let Some(p) = before.scaling.as_ref().filter(|p| p.detach) {
        let group = &p.membership.group.name;
        let now = ctx.cloud.autoscaling.membership(t, instance).await?;
        if now.is_some_and(|m| &m.group.name == group) {
            ctx.cloud
                .autoscaling
                .detach_instance(t, group, instance, p.decrement)
                .await?;
        }
    }
    for r in &before.registrations {
        missing_as_done(ctx.cloud.elb.deregister(t, instance, r).await)?;
    }
    Ok(())
}

/// Reads the group and the target groups back after `take_out`; returns the proof and the
/// output, or a verification error naming what is still in service.
pub(crate) async fn verify_out(
    ctx: &Context<'_>,
    instance: &str,
    vpc_id: &str,
    before: &ServiceBefore,
) -> Result<(Value, Value), ActionError> {
    let t = &ctx.target;
    let now = ctx.cloud.autoscaling.membership(t, instance).await?;
    let mut scaling_out = Value::Null;
    if let Some(p) = &before.scaling {
        let group = &p.membership.group.name;
        // `Detaching` is the way out; AWS drops the instance from the group once it is done.
        let still_in = now
            .as_ref()
            .filter(|m| &m.group.name == group && m.lifecycle_state != "Detaching");
        if let (true, Some(m)) = (p.detach, still_in) {
            return Err(ActionError::Verify(format!(
                "{instance} is still in Auto Scaling group {group} ({})",
                m.lifecycle_state
            )));
        }
        scaling_out = json!({
            "group": group,
            "detached": p.detach,
            "replacement_launched": p.detach && !p.decrement && p.membership.lifecycle_state == IN_SERVICE,
            "note": scaling_note(p),
        });
    }
    let left = in_service(ctx, instance, vpc_id).await?;
    if !left.is_empty() {
        return Err(ActionError::Verify(format!(
            "{instance} is still registered in target groups: {}",
            describe(&left)
        )));
    }
    let deregistered: Vec<Value> = before
        .registrations
        .iter()
        .map(|r| json!({"target_group": r.target_group_arn, "port": r.port}))
        .collect();
    let proof = json!({
        "auto_scaling_group": now.map(|m| json!({"group": m.group.name, "lifecycle_state": m.lifecycle_state})),
        "target_registrations": left.len(),
    });
    let output = json!({"auto_scaling": scaling_out, "deregistered": deregistered});
    Ok((proof, output))
}

fn scaling_note(p: &ScalingPlan) -> String {
    let (g, state) = (&p.membership.group, &p.membership.lifecycle_state);
    match (p.detach, p.decrement) {
        (false, _) => format!(
            "not detached from {}: AWS detaches only InService or Standby instances, and it is {state}",
            g.name
        ),
        (true, true) => format!(
            "detached from {}; desired capacity lowered from {} so that no replacement is launched",
            g.name, g.desired_capacity
        ),
        (true, false) if state == STANDBY => {
            format!("detached from {} (it was in Standby)", g.name)
        }
        (true, false) => format!(
            "detached from {}; the group is at its minimum ({}), so it launches a replacement",
            g.name, g.min_size
        ),
    }
}

/// The instance's registrations that still take traffic.
async fn in_service(
    ctx: &Context<'_>,
    instance: &str,
    vpc_id: &str,
) -> Result<Vec<TargetRegistration>, ActionError> {
    Ok(ctx
        .cloud
        .elb
        .registrations(&ctx.target, vpc_id, instance)
        .await?
        .into_iter()
        .filter(|r| r.state != DRAINING)
        .collect())
}

fn describe(regs: &[TargetRegistration]) -> String {
    regs.iter()
        .map(|r| match r.port {
            Some(p) => format!("{} port {p} ({})", r.target_group_arn, r.state),
            None => format!("{} ({})", r.target_group_arn, r.state),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Puts the instance back: registrations first, then the group (after the security groups are
/// restored, so that the group's health checks find it healthy). Returns what was restored and
/// any note on what could not be.
pub(crate) async fn put_back(
    ctx: &Context<'_>,
    instance: &str,
    vpc_id: &str,
    before: &ServiceBefore,
) -> Result<Value, ActionError> {
    let t = &ctx.target;
    for r in &before.registrations {
        ctx.cloud.elb.register(t, instance, r).await?;
    }
    let scaling = match before.scaling.as_ref().filter(|p| p.detach) {
        Some(p) => reattach(ctx, instance, p).await?,
        None => Value::Null,
    };
    let now = in_service(ctx, instance, vpc_id).await?;
    let missing: Vec<&TargetRegistration> = before
        .registrations
        .iter()
        .filter(|r| {
            !now.iter()
                .any(|n| n.target_group_arn == r.target_group_arn && n.port == r.port)
        })
        .collect();
    if !missing.is_empty() {
        let missing: Vec<TargetRegistration> = missing.into_iter().cloned().collect();
        return Err(ActionError::Verify(format!(
            "{instance} is not registered again in {}",
            describe(&missing)
        )));
    }
    Ok(json!({"auto_scaling": scaling, "registrations": now.len()}))
}

/// Attaches the instance to its group again (and back to standby if it was there), unless the
/// group is gone or full: then the instance stays detached and the answer says why, since the
/// rest of the release (network, tags) must not wait on the group's capacity.
async fn reattach(
    ctx: &Context<'_>,
    instance: &str,
    p: &ScalingPlan,
) -> Result<Value, ActionError> {
    let (t, asg) = (&ctx.target, &ctx.cloud.autoscaling);
    let name = &p.membership.group.name;
    if asg.membership(t, instance).await?.is_none() {
        let Some(g) = asg.scaling_group(t, name).await? else {
            return Ok(json!({"group": name, "attached": false,
                "note": format!("Auto Scaling group {name} no longer exists; {instance} stays detached")}));
        };
        if g.desired_capacity + 1 > g.max_size {
            return Ok(json!({"group": name, "attached": false,
                "note": format!("Auto Scaling group {name} is at its maximum ({}); {instance} stays detached: attach it by hand once there is room", g.max_size)}));
        }
        asg.attach_instance(t, name, instance).await?;
        if p.membership.lifecycle_state == STANDBY {
            asg.enter_standby(t, name, instance, true).await?;
        }
    }
    let now = asg.membership(t, instance).await?;
    match now.filter(|m| &m.group.name == name) {
        Some(m) => Ok(
            json!({"group": name, "attached": true, "lifecycle_state": m.lifecycle_state, "desired_capacity": m.group.desired_capacity}),
        ),
        None => Err(ActionError::Verify(format!(
            "{instance} is not in Auto Scaling group {name} after AttachInstances"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::ScalingGroup;

    fn member(state: &str, min: i32, desired: i32) -> ScalingMembership {
        ScalingMembership {
            group: ScalingGroup {
                name: "web".into(),
                min_size: min,
                max_size: 4,
                desired_capacity: desired,
            },
            lifecycle_state: state.into(),
        }
    }

    #[test]
    fn decrements_unless_the_minimum_or_standby_forbids_it() {
        let p = plan(member("InService", 1, 2));
        assert!(p.detach && p.decrement);
        let p = plan(member("InService", 2, 2));
        assert!(p.detach && !p.decrement, "at the minimum: a replacement");
        let p = plan(member("Standby", 0, 1));
        assert!(p.detach && !p.decrement);
        let p = plan(member("Terminating:Wait", 0, 1));
        assert!(!p.detach);
    }
}
