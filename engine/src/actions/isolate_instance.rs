//! `ec2.isolate_instance`: cut an instance off the network with security groups, reversibly.
//!
//! Follows AWS's runbooks (`AWSSupport-ContainEC2Instance`, automated-forensic-orchestrator):
//! a security-group change does not cut an already open *tracked* connection, so every network
//! interface is first moved to an allow-all group (which makes open flows untracked) and then to
//! the isolation group, which has no rules at all (its default egress rule revoked). Groups
//! belong to network interfaces, so each interface's old list is kept for release. Traffic
//! through NLB, GWLB, NAT, Transit Gateway or Network Firewall stays tracked whatever the groups
//! say; the output says so, since only a network ACL cuts that.
//!
//! Before the swaps the instance is taken out of its Auto Scaling group and deregistered from
//! its target groups (`out_of_service`), so that the group does not terminate and replace it
//! when it fails its health checks and no load balancer sends it requests.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::out_of_service::{self, ServiceBefore};
use super::{
    args, hold_key, param, record, to_value, Action, ActionError, ActionMeta, Context, Outcome,
    Param, Params,
};
use crate::cloud::{CloudError, InterfaceInfo, SecurityGroupInfo, Target};
use crate::config::Settings;

/// The action.
pub struct IsolateInstance;

static META: ActionMeta = ActionMeta {
    id: "ec2.isolate_instance",
    description: "Detach an instance from its Auto Scaling group and target groups, move every network interface to a no-rule isolation group (via an allow-all group, so open flows are cut), turn on termination protection",
    params: &[
        Param { name: "instance", required: true, description: "instance id" },
        Param { name: "tags", required: false, description: "tags to add (map); default cordon:isolated-by=<run id>" },
        Param { name: "termination_protection", required: false, description: "turn on DisableApiTermination (default true)" },
    ],
    iam_actions: &[
        "ec2:DescribeInstances",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeInstanceAttribute",
        "ec2:DescribeSecurityGroups",
        "ec2:CreateSecurityGroup",
        "ec2:RevokeSecurityGroupEgress",
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:AuthorizeSecurityGroupEgress",
        "ec2:ModifyNetworkInterfaceAttribute",
        "ec2:ModifyInstanceAttribute",
        "ec2:CreateTags",
        "ec2:DeleteTags",
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DetachInstances",
        "autoscaling:AttachInstances",
        "autoscaling:EnterStandby",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:DeregisterTargets",
        "elasticloadbalancing:RegisterTargets",
    ],
    example: "- id: isolate\n  action: ec2.isolate_instance\n  with:\n    instance: ${finding.resources[0].id}\n",
    idempotent: true,
    undo: Some("restore each network interface's groups, termination protection and tags; register it again in its target groups (same ports) and attach it to its Auto Scaling group"),
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    instance: String,
    tags: Option<BTreeMap<String, String>>,
    termination_protection: Option<bool>,
}

#[derive(Serialize, Deserialize)]
struct Before {
    instance: String,
    vpc_id: String,
    interfaces: Vec<InterfaceInfo>,
    termination_protection: bool,
    /// Tag values this action will overwrite, `None` where the key was absent.
    tags: BTreeMap<String, Option<String>>,
    /// Auto Scaling group and target groups (absent from records of older versions).
    #[serde(default)]
    service: ServiceBefore,
}

fn wanted_tags(args: &Args, run_id: &str) -> BTreeMap<String, String> {
    args.tags
        .clone()
        .unwrap_or_else(|| BTreeMap::from([("cordon:isolated-by".to_string(), run_id.to_string())]))
}

/// Finds the named group in the VPC or creates it, then brings it to its shape: allow-all in
/// both directions, or no egress rule. Converging (rather than shaping only at creation) matters
/// after a crash between CreateSecurityGroup and the rule change: the group found on the re-run
/// is half made. An isolation group with inbound rules is not repaired but refused by the caller:
/// someone changed cordon's group, and a human should look.
async fn ensure_group(
    ctx: &Context<'_>,
    vpc: &str,
    name: &str,
    allow_all: bool,
) -> Result<SecurityGroupInfo, ActionError> {
    let t = &ctx.target;
    let ec2 = &ctx.cloud.ec2;
    let group = match ec2.find_security_group(t, vpc, name).await? {
        Some(g) => g,
        None => {
            let what = if allow_all {
                "allow-all step before isolation"
            } else {
                "isolation: no rules"
            };
            match ec2
                .create_security_group(t, vpc, name, &format!("cordon {what}"))
                .await
            {
                Ok(id) => describe_group(ctx, &id).await?,
                // Runs isolating two instances of one VPC at once both find no group and both
                // create it; the second gets InvalidGroup.Duplicate. Use the group the other
                // run made; any other failure stands.
                Err(e) => match ec2.find_security_group(t, vpc, name).await? {
                    Some(g) => g,
                    None => return Err(e.into()),
                },
            }
        }
    };
    let shaped = if allow_all {
        group.ingress_rules > 0 && group.egress_rules > 0
    } else {
        group.egress_rules == 0
    };
    if shaped {
        return Ok(group);
    }
    if allow_all {
        ec2.allow_all_traffic(t, &group.id).await?;
    } else {
        ec2.revoke_all_egress(t, &group.id).await?;
    }
    describe_group(ctx, &group.id).await
}

async fn describe_group(ctx: &Context<'_>, id: &str) -> Result<SecurityGroupInfo, ActionError> {
    ctx.cloud
        .ec2
        .describe_security_group(&ctx.target, id)
        .await?
        .ok_or_else(|| CloudError::not_found(format!("security group {id} not found")).into())
}

async fn describe(
    ctx: &Context<'_>,
    t: &Target,
    id: &str,
) -> Result<crate::cloud::InstanceInfo, ActionError> {
    ctx.cloud
        .ec2
        .describe_instance(t, id)
        .await?
        .ok_or_else(|| {
            CloudError::not_found(format!(
                "instance {id} not found in {} {}",
                t.account, t.region
            ))
            .into()
        })
}

#[async_trait]
impl Action for IsolateInstance {
    fn meta(&self) -> &'static ActionMeta {
        &META
    }

    fn holds(&self, _settings: &Settings, t: &Target, params: &Params) -> Option<String> {
        let instance = param(params, "instance");
        hold_key(META.id, &[Some(&t.account), Some(&t.region), instance])
    }

    async fn prepare(&self, ctx: &Context<'_>, params: &Params) -> Result<Value, ActionError> {
        let a: Args = args(params)?;
        let i = describe(ctx, &ctx.target, &a.instance).await?;
        let tags = wanted_tags(&a, &ctx.target.run_id).into_keys().map(|k| {
            let v = i.tags.get(&k).cloned();
            (k, v)
        });
        let service = out_of_service::prepare(ctx, &i.id, &i.vpc_id).await?;
        Ok(to_value(&Before {
            instance: i.id,
            vpc_id: i.vpc_id,
            interfaces: i.interfaces,
            termination_protection: i.termination_protection,
            tags: tags.collect(),
            service,
        }))
    }

    async fn execute(
        &self,
        ctx: &Context<'_>,
        params: &Params,
        prepared: &Value,
    ) -> Result<Outcome, ActionError> {
        let a: Args = args(params)?;
        let before: Before = record(prepared)?;
        let (t, ec2) = (&ctx.target, &ctx.cloud.ec2);
        out_of_service::take_out(ctx, &before.instance, &before.service).await?;
        let untrack =
            ensure_group(ctx, &before.vpc_id, &ctx.settings.untrack_group_name, true).await?;
        let isolation = ensure_group(
            ctx,
            &before.vpc_id,
            &ctx.settings.isolation_group_name,
            false,
        )
        .await?;
        if isolation.ingress_rules + isolation.egress_rules > 0 {
            return Err(ActionError::Verify(format!(
                "isolation group {} has {} inbound and {} outbound rules; it must have none",
                isolation.id, isolation.ingress_rules, isolation.egress_rules
            )));
        }
        // Two swaps, every interface each time: allow-all first so open flows become untracked,
        // then the empty group, which drops them.
        for group in [&untrack.id, &isolation.id] {
            for eni in &before.interfaces {
                ec2.set_interface_groups(
                    t,
                    &before.instance,
                    &eni.as_ref(),
                    std::slice::from_ref(group),
                )
                .await?;
            }
        }
        if a.termination_protection.unwrap_or(true) {
            ec2.set_termination_protection(t, &before.instance, true)
                .await?;
        }
        ec2.create_tags(t, &before.instance, &wanted_tags(&a, &t.run_id))
            .await?;

        let after = describe(ctx, t, &before.instance).await?;
        let wrong: Vec<&InterfaceInfo> = after
            .interfaces
            .iter()
            .filter(|e| e.groups != [isolation.id.clone()])
            .collect();
        if !wrong.is_empty() || after.interfaces.len() != before.interfaces.len() {
            return Err(ActionError::Verify(format!(
                "interfaces not isolated: {wrong:?}"
            )));
        }
        let (service_proof, service_output) =
            out_of_service::verify_out(ctx, &before.instance, &before.vpc_id, &before.service)
                .await?;
        Ok(Outcome {
            output: json!({
                "instance": before.instance,
                "isolation_group": isolation.id,
                "interfaces": after.interfaces.len(),
                "auto_scaling": service_output["auto_scaling"],
                "deregistered": service_output["deregistered"],
                "note": "flows through NLB, GWLB, NAT, Transit Gateway or Network Firewall stay tracked; use a network ACL deny for those",
            }),
            undoable: true,
            proof: json!({"interfaces": after.interfaces, "isolation_group_rules": {"ingress": isolation.ingress_rules, "egress": isolation.egress_rules}, "termination_protection": after.termination_protection, "service": service_proof}),
        })
    }

    async fn undo(&self, ctx: &Context<'_>, prepared: &Value) -> Result<Value, ActionError> {
        let b: Before = record(prepared)?;
        let (t, ec2, b) = (&ctx.target, &ctx.cloud.ec2, &b);
        for eni in &b.interfaces {
            ec2.set_interface_groups(t, &b.instance, &eni.as_ref(), &eni.groups)
                .await?;
        }
        ec2.set_termination_protection(t, &b.instance, b.termination_protection)
            .await?;
        let restore: BTreeMap<String, String> = b
            .tags
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect();
        let remove: Vec<String> = b
            .tags
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        if !remove.is_empty() {
            ec2.delete_tags(t, &b.instance, &remove).await?;
        }
        if !restore.is_empty() {
            ec2.create_tags(t, &b.instance, &restore).await?;
        }
        let after = describe(ctx, t, &b.instance).await?;
        verify_groups(b, &after.interfaces)?;
        // Back in the target groups and the Auto Scaling group only once its own security
        // groups are back, so that health checks find it healthy.
        let service = out_of_service::put_back(ctx, &b.instance, &b.vpc_id, &b.service).await?;
        Ok(
            json!({"interfaces": after.interfaces, "termination_protection": after.termination_protection, "service": service}),
        )
    }
}

/// Each interface holds its recorded groups again.
fn verify_groups(b: &Before, now: &[InterfaceInfo]) -> Result<(), ActionError> {
    for eni in &b.interfaces {
        let now = now.iter().find(|e| e.id == eni.id).map(|e| &e.groups);
        if now != Some(&eni.groups) {
            return Err(ActionError::Verify(format!(
                "{} has groups {now:?}, expected {:?}",
                eni.id, eni.groups
            )));
        }
    }
    Ok(())
}
