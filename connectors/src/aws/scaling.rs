//! EC2 Auto Scaling and Elastic Load Balancing (v2) in member accounts: what keeps an instance
//! in service, for `ec2.isolate_instance` to take it out and `release` to put it back.

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{TargetDescription, TargetTypeEnum};
use cordon_engine::cloud::{
    AutoScaling, CloudError, CloudResult, LoadBalancing, ScalingGroup, ScalingMembership, Target,
    TargetRegistration,
};

use super::error::{classify, none_if_missing};
use super::AwsCloud;

impl AwsCloud {
    async fn asg(
        &self,
        t: &Target,
        action: &'static str,
    ) -> CloudResult<aws_sdk_autoscaling::Client> {
        self.client(t, action, aws_sdk_autoscaling::Client::new)
            .await
    }

    async fn elbv2(
        &self,
        t: &Target,
        action: &'static str,
    ) -> CloudResult<aws_sdk_elasticloadbalancingv2::Client> {
        self.client(t, action, aws_sdk_elasticloadbalancingv2::Client::new)
            .await
    }

    /// The ARNs of the VPC's target groups whose targets are instances (IP and Lambda target
    /// groups name no instance).
    async fn instance_target_groups(&self, t: &Target, vpc_id: &str) -> CloudResult<Vec<String>> {
        let mut arns = Vec::new();
        let mut marker = None;
        loop {
            let c = self
                .elbv2(t, "elasticloadbalancing:DescribeTargetGroups")
                .await?;
            let page = c
                .describe_target_groups()
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| {
                    classify("elasticloadbalancing:DescribeTargetGroups", &t.account, e)
                })?;
            arns.extend(
                page.target_groups()
                    .iter()
                    .filter(|g| g.vpc_id() == Some(vpc_id))
                    .filter(|g| {
                        g.target_type()
                            .is_none_or(|k| *k == TargetTypeEnum::Instance)
                    })
                    .filter_map(|g| g.target_group_arn().map(String::from)),
            );
            marker = page.next_marker().map(String::from);
            if marker.is_none() {
                return Ok(arns);
            }
        }
    }
}

fn description(instance: &str, r: &TargetRegistration) -> TargetDescription {
    TargetDescription::builder()
        .id(instance)
        .set_port(r.port)
        .set_availability_zone(r.availability_zone.clone())
        .build()
}

#[async_trait]
impl AutoScaling for AwsCloud {
    async fn membership(
        &self,
        t: &Target,
        instance: &str,
    ) -> CloudResult<Option<ScalingMembership>> {
        let c = self
            .asg(t, "autoscaling:DescribeAutoScalingInstances")
            .await?;
        let out = c
            .describe_auto_scaling_instances()
            .instance_ids(instance)
            .send()
            .await
            .map_err(|e| classify("autoscaling:DescribeAutoScalingInstances", &t.account, e))?;
        let Some(found) = out
            .auto_scaling_instances()
            .iter()
            .find(|i| i.instance_id() == Some(instance))
        else {
            return Ok(None);
        };
        let name = found.auto_scaling_group_name().unwrap_or_default();
        let group = self.scaling_group(t, name).await?.ok_or_else(|| {
            CloudError::not_found(format!(
                "Auto Scaling group {name} of {instance} not found in {}",
                t.account
            ))
        })?;
        Ok(Some(ScalingMembership {
            group,
            lifecycle_state: found.lifecycle_state().unwrap_or_default().to_string(),
        }))
    }

    async fn scaling_group(&self, t: &Target, name: &str) -> CloudResult<Option<ScalingGroup>> {
        let c = self.asg(t, "autoscaling:DescribeAutoScalingGroups").await?;
        let out = match c
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                return none_if_missing(classify(
                    "autoscaling:DescribeAutoScalingGroups",
                    &t.account,
                    e,
                ))
            }
        };
        Ok(out
            .auto_scaling_groups()
            .iter()
            .find(|g| g.auto_scaling_group_name() == Some(name))
            .map(|g| ScalingGroup {
                name: name.to_string(),
                min_size: g.min_size().unwrap_or_default(),
                max_size: g.max_size().unwrap_or_default(),
                desired_capacity: g.desired_capacity().unwrap_or_default(),
            }))
    }

    async fn detach_instance(
        &self,
        t: &Target,
        group: &str,
        instance: &str,
        decrement: bool,
    ) -> CloudResult<()> {
        let c = self.asg(t, "autoscaling:DetachInstances").await?;
        c.detach_instances()
            .auto_scaling_group_name(group)
            .instance_ids(instance)
            .should_decrement_desired_capacity(decrement)
            .send()
            .await
            .map_err(|e| classify("autoscaling:DetachInstances", &t.account, e))?;
        Ok(())
    }

    async fn attach_instance(&self, t: &Target, group: &str, instance: &str) -> CloudResult<()> {
        let c = self.asg(t, "autoscaling:AttachInstances").await?;
        c.attach_instances()
            .auto_scaling_group_name(group)
            .instance_ids(instance)
            .send()
            .await
            .map_err(|e| classify("autoscaling:AttachInstances", &t.account, e))?;
        Ok(())
    }

    async fn enter_standby(
        &self,
        t: &Target,
        group: &str,
        instance: &str,
        decrement: bool,
    ) -> CloudResult<()> {
        let c = self.asg(t, "autoscaling:EnterStandby").await?;
        c.enter_standby()
            .auto_scaling_group_name(group)
            .instance_ids(instance)
            .should_decrement_desired_capacity(decrement)
            .send()
            .await
            .map_err(|e| classify("autoscaling:EnterStandby", &t.account, e))?;
        Ok(())
    }
}

#[async_trait]
impl LoadBalancing for AwsCloud {
    async fn registrations(
        &self,
        t: &Target,
        vpc_id: &str,
        instance: &str,
    ) -> CloudResult<Vec<TargetRegistration>> {
        let mut out = Vec::new();
        for arn in self.instance_target_groups(t, vpc_id).await? {
            let c = self
                .elbv2(t, "elasticloadbalancing:DescribeTargetHealth")
                .await?;
            // Without targets named, ELB lists every registered target with its port; naming
            // the instance would also answer for ports it is not registered on.
            let health = c
                .describe_target_health()
                .target_group_arn(&arn)
                .send()
                .await
                .map_err(|e| {
                    classify("elasticloadbalancing:DescribeTargetHealth", &t.account, e)
                })?;
            out.extend(health.target_health_descriptions().iter().filter_map(|d| {
                let target = d.target().filter(|x| x.id() == Some(instance))?;
                Some(TargetRegistration {
                    target_group_arn: arn.clone(),
                    port: target.port(),
                    availability_zone: target.availability_zone().map(String::from),
                    state: d
                        .target_health()
                        .and_then(|h| h.state())
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                })
            }));
        }
        Ok(out)
    }

    async fn deregister(
        &self,
        t: &Target,
        instance: &str,
        r: &TargetRegistration,
    ) -> CloudResult<()> {
        let c = self
            .elbv2(t, "elasticloadbalancing:DeregisterTargets")
            .await?;
        match c
            .deregister_targets()
            .target_group_arn(&r.target_group_arn)
            .targets(description(instance, r))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = classify("elasticloadbalancing:DeregisterTargets", &t.account, e);
                // Not registered (any more): the state deregistering wants.
                if e.message.contains("InvalidTarget") {
                    Err(CloudError::not_found(e.message))
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn register(
        &self,
        t: &Target,
        instance: &str,
        r: &TargetRegistration,
    ) -> CloudResult<()> {
        let c = self
            .elbv2(t, "elasticloadbalancing:RegisterTargets")
            .await?;
        c.register_targets()
            .target_group_arn(&r.target_group_arn)
            .targets(description(instance, r))
            .send()
            .await
            .map_err(|e| classify("elasticloadbalancing:RegisterTargets", &t.account, e))?;
        Ok(())
    }
}
