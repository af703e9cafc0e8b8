//! EC2 in member accounts. Security groups are read per network interface: they belong to
//! interfaces, not instances (and emulators may not keep the instance view in step).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, InstanceAttributeName, IpPermission, IpRange, Ipv6Range,
    ResourceType, SecurityGroup, Tag, TagSpecification,
};
use cordon_engine::cloud::{
    CloudError, CloudResult, Ec2, InstanceInfo, InterfaceInfo, InterfaceRef, SecurityGroupInfo,
    Target,
};

use super::error::{classify, none_if_missing};
use super::AwsCloud;

impl AwsCloud {
    async fn ec2(&self, t: &Target, action: &'static str) -> CloudResult<aws_sdk_ec2::Client> {
        self.client(t, action, aws_sdk_ec2::Client::new).await
    }

    /// Authorizes a rule, taking "already there" as done: the group converges either way.
    async fn authorize(
        &self,
        t: &Target,
        group: &str,
        egress: bool,
        perm: IpPermission,
    ) -> CloudResult<()> {
        let (action, result) = if egress {
            let c = self.ec2(t, "ec2:AuthorizeSecurityGroupEgress").await?;
            (
                "ec2:AuthorizeSecurityGroupEgress",
                c.authorize_security_group_egress()
                    .group_id(group)
                    .ip_permissions(perm)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| classify("ec2:AuthorizeSecurityGroupEgress", &t.account, e)),
            )
        } else {
            let c = self.ec2(t, "ec2:AuthorizeSecurityGroupIngress").await?;
            (
                "ec2:AuthorizeSecurityGroupIngress",
                c.authorize_security_group_ingress()
                    .group_id(group)
                    .ip_permissions(perm)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| classify("ec2:AuthorizeSecurityGroupIngress", &t.account, e)),
            )
        };
        match result {
            Err(e) if e.message.contains("InvalidPermission.Duplicate") => Ok(()),
            Err(e) => Err(CloudError::new(
                e.kind,
                format!("{action} on {group}: {}", e.message),
            )),
            Ok(()) => Ok(()),
        }
    }
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn tags(map: &BTreeMap<String, String>) -> Vec<Tag> {
    map.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Rules in a permission list: each range, prefix list and group pair is one rule.
fn rule_count(perms: &[IpPermission]) -> usize {
    perms
        .iter()
        .map(|p| {
            (p.ip_ranges().len()
                + p.ipv6_ranges().len()
                + p.prefix_list_ids().len()
                + p.user_id_group_pairs().len())
            .max(1)
        })
        .sum()
}

fn group_info(g: &SecurityGroup) -> SecurityGroupInfo {
    SecurityGroupInfo {
        id: g.group_id().unwrap_or_default().into(),
        name: g.group_name().unwrap_or_default().into(),
        vpc_id: g.vpc_id().unwrap_or_default().into(),
        ingress_rules: rule_count(g.ip_permissions()),
        egress_rules: rule_count(g.ip_permissions_egress()),
    }
}

fn all_traffic(v4: bool, v6: bool) -> IpPermission {
    let mut p = IpPermission::builder().ip_protocol("-1");
    if v4 {
        p = p.ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build());
    }
    if v6 {
        p = p.ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build());
    }
    p.build()
}

#[async_trait]
impl Ec2 for AwsCloud {
    async fn describe_instance(&self, t: &Target, id: &str) -> CloudResult<Option<InstanceInfo>> {
        let c = self.ec2(t, "ec2:DescribeInstances").await?;
        let out = match c.describe_instances().instance_ids(id).send().await {
            Ok(out) => out,
            Err(e) => return none_if_missing(classify("ec2:DescribeInstances", &t.account, e)),
        };
        let Some(i) = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.instance_id() == Some(id))
        else {
            return Ok(None);
        };
        let c = self.ec2(t, "ec2:DescribeNetworkInterfaces").await?;
        let enis = c
            .describe_network_interfaces()
            .filters(filter("attachment.instance-id", id))
            .send()
            .await
            .map_err(|e| classify("ec2:DescribeNetworkInterfaces", &t.account, e))?;
        let mut interfaces: Vec<(i32, InterfaceInfo)> = enis
            .network_interfaces()
            .iter()
            .map(|n| {
                let index = n.attachment().and_then(|a| a.device_index()).unwrap_or(0);
                let groups = n
                    .groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(String::from))
                    .collect();
                (
                    index,
                    InterfaceInfo {
                        id: n.network_interface_id().unwrap_or_default().into(),
                        groups,
                        primary: index == 0,
                    },
                )
            })
            .collect();
        interfaces.sort_by_key(|(index, _)| *index);
        let c = self.ec2(t, "ec2:DescribeInstanceAttribute").await?;
        let attr = c
            .describe_instance_attribute()
            .instance_id(id)
            .attribute(InstanceAttributeName::DisableApiTermination)
            .send()
            .await
            .map_err(|e| classify("ec2:DescribeInstanceAttribute", &t.account, e))?;
        Ok(Some(InstanceInfo {
            id: id.into(),
            vpc_id: i.vpc_id().unwrap_or_default().into(),
            state: i
                .state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_string())
                .unwrap_or_default(),
            interfaces: interfaces.into_iter().map(|(_, i)| i).collect(),
            volumes: i
                .block_device_mappings()
                .iter()
                .filter_map(|b| b.ebs().and_then(|e| e.volume_id()).map(String::from))
                .collect(),
            termination_protection: attr
                .disable_api_termination()
                .and_then(|v| v.value())
                .unwrap_or(false),
            tags: i
                .tags()
                .iter()
                .filter_map(|tag| {
                    Some((
                        tag.key()?.to_string(),
                        tag.value().unwrap_or_default().to_string(),
                    ))
                })
                .collect(),
        }))
    }

    async fn find_security_group(
        &self,
        t: &Target,
        vpc_id: &str,
        name: &str,
    ) -> CloudResult<Option<SecurityGroupInfo>> {
        let c = self.ec2(t, "ec2:DescribeSecurityGroups").await?;
        let out = c
            .describe_security_groups()
            .filters(filter("vpc-id", vpc_id))
            .filters(filter("group-name", name))
            .send()
            .await
            .map_err(|e| classify("ec2:DescribeSecurityGroups", &t.account, e))?;
        Ok(out.security_groups().first().map(group_info))
    }

    async fn describe_security_group(
        &self,
        t: &Target,
        id: &str,
    ) -> CloudResult<Option<SecurityGroupInfo>> {
        let c = self.ec2(t, "ec2:DescribeSecurityGroups").await?;
        match c.describe_security_groups().group_ids(id).send().await {
            Ok(out) => Ok(out.security_groups().first().map(group_info)),
            Err(e) => none_if_missing(classify("ec2:DescribeSecurityGroups", &t.account, e)),
        }
    }

    async fn create_security_group(
        &self,
        t: &Target,
        vpc_id: &str,
        name: &str,
        description: &str,
    ) -> CloudResult<String> {
        let c = self.ec2(t, "ec2:CreateSecurityGroup").await?;
        let out = c
            .create_security_group()
            .vpc_id(vpc_id)
            .group_name(name)
            .description(description)
            .send()
            .await
            .map_err(|e| classify("ec2:CreateSecurityGroup", &t.account, e))?;
        out.group_id()
            .map(String::from)
            .ok_or_else(|| CloudError::fatal("CreateSecurityGroup returned no id"))
    }

    async fn revoke_all_egress(&self, t: &Target, group_id: &str) -> CloudResult<()> {
        let c = self.ec2(t, "ec2:DescribeSecurityGroups").await?;
        let out = c
            .describe_security_groups()
            .group_ids(group_id)
            .send()
            .await
            .map_err(|e| classify("ec2:DescribeSecurityGroups", &t.account, e))?;
        let perms: Vec<IpPermission> = out
            .security_groups()
            .first()
            .map(|g| g.ip_permissions_egress().to_vec())
            .unwrap_or_default();
        if perms.is_empty() {
            return Ok(());
        }
        let c = self.ec2(t, "ec2:RevokeSecurityGroupEgress").await?;
        c.revoke_security_group_egress()
            .group_id(group_id)
            .set_ip_permissions(Some(perms))
            .send()
            .await
            .map_err(|e| classify("ec2:RevokeSecurityGroupEgress", &t.account, e))?;
        Ok(())
    }

    async fn allow_all_traffic(&self, t: &Target, group_id: &str) -> CloudResult<()> {
        self.authorize(t, group_id, false, all_traffic(true, true))
            .await?;
        // New groups already allow all IPv4 egress; each direction is added on its own so that
        // one duplicate does not hide the other.
        self.authorize(t, group_id, true, all_traffic(true, false))
            .await?;
        self.authorize(t, group_id, true, all_traffic(false, true))
            .await
    }

    async fn set_interface_groups(
        &self,
        t: &Target,
        instance: &str,
        iface: &InterfaceRef<'_>,
        groups: &[String],
    ) -> CloudResult<()> {
        // EC2 sets the primary interface's groups through the instance attribute too; setting
        // both keeps every view in step (moto, for one, reports an attached interface's groups
        // as its own plus the instance's).
        if iface.primary {
            let c = self.ec2(t, "ec2:ModifyInstanceAttribute").await?;
            c.modify_instance_attribute()
                .instance_id(instance)
                .set_groups(Some(groups.to_vec()))
                .send()
                .await
                .map_err(|e| classify("ec2:ModifyInstanceAttribute", &t.account, e))?;
        }
        let c = self.ec2(t, "ec2:ModifyNetworkInterfaceAttribute").await?;
        c.modify_network_interface_attribute()
            .network_interface_id(iface.id)
            .set_groups(Some(groups.to_vec()))
            .send()
            .await
            .map_err(|e| classify("ec2:ModifyNetworkInterfaceAttribute", &t.account, e))?;
        Ok(())
    }

    async fn set_termination_protection(&self, t: &Target, id: &str, on: bool) -> CloudResult<()> {
        let c = self.ec2(t, "ec2:ModifyInstanceAttribute").await?;
        c.modify_instance_attribute()
            .instance_id(id)
            .disable_api_termination(AttributeBooleanValue::builder().value(on).build())
            .send()
            .await
            .map_err(|e| classify("ec2:ModifyInstanceAttribute", &t.account, e))?;
        Ok(())
    }

    async fn create_snapshot(
        &self,
        t: &Target,
        volume_id: &str,
        description: &str,
        tags_: &BTreeMap<String, String>,
    ) -> CloudResult<String> {
        let c = self.ec2(t, "ec2:CreateSnapshot").await?;
        let spec = TagSpecification::builder()
            .resource_type(ResourceType::Snapshot)
            .set_tags(Some(tags(tags_)))
            .build();
        let out = c
            .create_snapshot()
            .volume_id(volume_id)
            .description(description)
            .tag_specifications(spec)
            .send()
            .await
            .map_err(|e| classify("ec2:CreateSnapshot", &t.account, e))?;
        out.snapshot_id()
            .map(String::from)
            .ok_or_else(|| CloudError::fatal("CreateSnapshot returned no id"))
    }

    async fn find_snapshots(
        &self,
        t: &Target,
        volume_id: &str,
        tag: (&str, &str),
    ) -> CloudResult<Vec<String>> {
        let c = self.ec2(t, "ec2:DescribeSnapshots").await?;
        let out = c
            .describe_snapshots()
            .owner_ids("self")
            .filters(filter("volume-id", volume_id))
            .filters(filter(&format!("tag:{}", tag.0), tag.1))
            .send()
            .await
            .map_err(|e| classify("ec2:DescribeSnapshots", &t.account, e))?;
        Ok(out
            .snapshots()
            .iter()
            .filter_map(|s| s.snapshot_id().map(String::from))
            .collect())
    }

    async fn create_tags(
        &self,
        t: &Target,
        resource: &str,
        tags_: &BTreeMap<String, String>,
    ) -> CloudResult<()> {
        let c = self.ec2(t, "ec2:CreateTags").await?;
        c.create_tags()
            .resources(resource)
            .set_tags(Some(tags(tags_)))
            .send()
            .await
            .map_err(|e| classify("ec2:CreateTags", &t.account, e))?;
        Ok(())
    }

    async fn delete_tags(&self, t: &Target, resource: &str, keys: &[String]) -> CloudResult<()> {
        let c = self.ec2(t, "ec2:DeleteTags").await?;
        let tags: Vec<Tag> = keys.iter().map(|k| Tag::builder().key(k).build()).collect();
        c.delete_tags()
            .resources(resource)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| classify("ec2:DeleteTags", &t.account, e))?;
        Ok(())
    }
}
