//! [`Gate`]: the cloud a drill hands the engine. It passes every call to the drill's
//! [`SimCloud`] after applying the scenario's faults, refuses what AWS refuses on roles it
//! protects, and watches security-group changes for the attacker's open connections.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use cordon_engine::clock::Clock;
use cordon_engine::cloud::{
    AccessKeyInfo, AutoScaling, Chat, CloudError, CloudResult, Delivery, Ec2, Events, Iam,
    InstanceInfo, InterfaceRef, KeyStatus, LoadBalancing, NewAccessKey, OrgInfo, Organizations,
    PolicyInfo, RoleInfo, ScalingGroup, ScalingMembership, SecurityGroupInfo, Ssm, Target,
    TargetRegistration, UserInfo,
};
use cordon_engine::secret::Secret;
use serde_json::Value;

use super::faults::{Fault, Hit, Rng};
use super::network::{Network, Rules};
use crate::SimCloud;

/// The drill's cloud: faults, protected roles and connection tracking over a [`SimCloud`].
pub struct Gate {
    sim: Arc<SimCloud>,
    clock: Arc<dyn Clock>,
    start_ms: u64,
    management: String,
    state: Mutex<State>,
}

struct State {
    faults: Vec<Fault>,
    rng: Rng,
    armed: bool,
    hits: Vec<Hit>,
    net: Network,
}

impl Gate {
    /// Over `sim`, with `faults` drawn from `seed`; `start_ms` is T+0 on `clock`.
    pub fn new(
        sim: Arc<SimCloud>,
        clock: Arc<dyn Clock>,
        start_ms: u64,
        faults: Vec<Fault>,
        seed: u64,
    ) -> Gate {
        let management = sim.snapshot().org.management_account;
        Gate {
            sim,
            clock,
            start_ms,
            management,
            state: Mutex::new(State {
                faults,
                rng: Rng::new(seed),
                armed: true,
                hits: Vec::new(),
                net: Network::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops injecting faults (the release at the drill's end).
    pub fn disarm(&self) {
        self.lock().armed = false;
    }

    /// The calls faults hit so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.lock().hits.clone()
    }

    /// The attacker's connections so far.
    pub fn network(&self) -> Network {
        self.lock().net.clone()
    }

    /// Applies the faults covering `api` in `account`: an error, or added latency.
    async fn gate(&self, api: &str, account: &str) -> CloudResult<()> {
        let now = self.clock.now_ms();
        let elapsed = now.saturating_sub(self.start_ms);
        let mut wait = std::time::Duration::ZERO;
        let failure = {
            let mut s = self.lock();
            if !s.armed {
                return Ok(());
            }
            let State {
                faults, rng, hits, ..
            } = &mut *s;
            let mut failure = None;
            for f in faults.iter() {
                if failure.is_some() || !f.covers(api, account, elapsed) {
                    continue;
                }
                if !rng.chance(f.spec.percentage.unwrap_or(100)) {
                    continue;
                }
                hits.push(Hit {
                    at_ms: now,
                    operation: api.into(),
                    account: account.into(),
                    fault: f.name().into(),
                });
                match f.error(api, account) {
                    Some(e) => failure = Some(e),
                    None => wait += f.latency,
                }
            }
            failure
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        failure.map_or(Ok(()), Err)
    }

    /// Opens (or finds) the attacker's connection from `instance` (its primary interface) to
    /// `to` at `now_ms`: `Ok(true)` traffic flows, `Ok(false)` it does not, with why.
    pub async fn connect(
        &self,
        t: &Target,
        instance: &str,
        to: &str,
        now_ms: u64,
    ) -> (bool, String) {
        if let Some(c) = self.lock().net.open_one(instance, to) {
            let how = if c.tracked { "tracked" } else { "untracked" };
            return (
                true,
                format!("connection to {to} still open ({how}, through {})", c.eni),
            );
        }
        let Ok(Some(i)) = self.sim.describe_instance(t, instance).await else {
            return (false, format!("no instance {instance} in {}", t.account));
        };
        let Some(eni) = i.interfaces.iter().find(|x| x.primary) else {
            return (false, format!("{instance} has no network interface"));
        };
        let rules = self.rules(t, &eni.groups).await;
        if !rules.egress {
            let cut = self
                .lock()
                .net
                .connections
                .iter()
                .rev()
                .find(|c| c.instance == instance && c.to == to)
                .and_then(|c| {
                    let at = super::report::at(c.cut_ms?);
                    Some(format!(
                        "the connection opened at {} was cut at {at}; ",
                        super::report::at(c.opened_ms)
                    ))
                })
                .unwrap_or_default();
            return (
                false,
                format!(
                    "{cut}new connection refused: no egress rule in {} of {}",
                    eni.groups.join(","),
                    eni.id
                ),
            );
        }
        let c = super::network::Connection {
            account: t.account.clone(),
            region: t.region.clone(),
            instance: instance.into(),
            eni: eni.id.clone(),
            to: to.into(),
            opened_ms: now_ms,
            tracked: !rules.allow_all,
            cut_ms: None,
        };
        self.lock().net.connections.push(c);
        (true, format!("new connection to {to} through {}", eni.id))
    }

    async fn rules(&self, t: &Target, groups: &[String]) -> Rules {
        let mut counts = Vec::new();
        for g in groups {
            if let Ok(Some(info)) = self.sim.describe_security_group(t, g).await {
                counts.push((info.ingress_rules, info.egress_rules));
            }
        }
        Rules::of(&counts)
    }

    /// After a security-group change in `t`: re-reads every watched interface there.
    async fn observe(&self, t: &Target) {
        let watched = self.lock().net.watched();
        for (account, region, eni) in watched {
            if account != t.account || region != t.region {
                continue;
            }
            let w = self.sim.snapshot();
            let groups = w
                .accounts
                .get(&account)
                .and_then(|a| a.regions.get(&region))
                .and_then(|r| r.instances.values().find_map(|i| i.interfaces.get(&eni)))
                .cloned()
                .unwrap_or_default();
            let rules = self.rules(t, &groups).await;
            let now = self.clock.now_ms();
            self.lock().net.update(&eni, rules, now);
        }
    }

    /// AWS refuses changes to a service-linked role (`UnmodifiableEntity`) and to the roles IAM
    /// Identity Center makes (IAM User Guide, "Service-linked roles"; IAM Identity Center User
    /// Guide, "Permission sets").
    async fn modifiable(&self, t: &Target, role: &str) -> CloudResult<()> {
        if let Ok(Some(r)) = self.sim.get_role(t, role).await {
            if r.protection().is_some() {
                return Err(CloudError::fatal(format!(
                    "UnmodifiableEntity: cannot perform the operation on the protected role {role} (path {})",
                    r.path
                )));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Organizations for Gate {
    async fn describe(&self) -> CloudResult<OrgInfo> {
        self.gate("organizations:DescribeOrganization", &self.management)
            .await?;
        self.sim.describe().await
    }
    async fn list_accounts(&self) -> CloudResult<Vec<String>> {
        self.gate("organizations:ListAccounts", &self.management)
            .await?;
        self.sim.list_accounts().await
    }
    async fn enable_scp(&self, root: &str) -> CloudResult<()> {
        self.gate("organizations:EnablePolicyType", &self.management)
            .await?;
        self.sim.enable_scp(root).await
    }
    async fn find_policy(&self, name: &str) -> CloudResult<Option<PolicyInfo>> {
        self.gate("organizations:ListPolicies", &self.management)
            .await?;
        self.sim.find_policy(name).await
    }
    async fn create_policy(&self, n: &str, d: &str, c: &str) -> CloudResult<PolicyInfo> {
        self.gate("organizations:CreatePolicy", &self.management)
            .await?;
        self.sim.create_policy(n, d, c).await
    }
    async fn attach_policy(&self, policy_id: &str, account: &str) -> CloudResult<()> {
        self.gate("organizations:AttachPolicy", &self.management)
            .await?;
        self.sim.attach_policy(policy_id, account).await
    }
    async fn detach_policy(&self, policy_id: &str, account: &str) -> CloudResult<()> {
        self.gate("organizations:DetachPolicy", &self.management)
            .await?;
        self.sim.detach_policy(policy_id, account).await
    }
    async fn policies_for_account(&self, account: &str) -> CloudResult<Vec<PolicyInfo>> {
        self.gate("organizations:ListPoliciesForTarget", &self.management)
            .await?;
        self.sim.policies_for_account(account).await
    }
}

#[async_trait]
impl Iam for Gate {
    async fn get_role(&self, t: &Target, role: &str) -> CloudResult<Option<RoleInfo>> {
        self.gate("iam:GetRole", &t.account).await?;
        self.sim.get_role(t, role).await
    }
    async fn put_role_policy(&self, t: &Target, role: &str, n: &str, d: &str) -> CloudResult<()> {
        self.gate("iam:PutRolePolicy", &t.account).await?;
        self.modifiable(t, role).await?;
        self.sim.put_role_policy(t, role, n, d).await
    }
    async fn get_role_policy(&self, t: &Target, r: &str, n: &str) -> CloudResult<Option<String>> {
        self.gate("iam:GetRolePolicy", &t.account).await?;
        self.sim.get_role_policy(t, r, n).await
    }
    async fn delete_role_policy(&self, t: &Target, role: &str, name: &str) -> CloudResult<()> {
        self.gate("iam:DeleteRolePolicy", &t.account).await?;
        self.modifiable(t, role).await?;
        self.sim.delete_role_policy(t, role, name).await
    }
    async fn get_user(&self, t: &Target, user: &str) -> CloudResult<Option<UserInfo>> {
        self.gate("iam:GetUser", &t.account).await?;
        self.sim.get_user(t, user).await
    }
    async fn list_access_keys(&self, t: &Target, user: &str) -> CloudResult<Vec<AccessKeyInfo>> {
        self.gate("iam:ListAccessKeys", &t.account).await?;
        self.sim.list_access_keys(t, user).await
    }
    async fn set_access_key_status(
        &self,
        t: &Target,
        user: &str,
        key_id: &str,
        status: KeyStatus,
    ) -> CloudResult<()> {
        self.gate("iam:UpdateAccessKey", &t.account).await?;
        self.sim
            .set_access_key_status(t, user, key_id, status)
            .await
    }
    async fn create_access_key(&self, t: &Target, user: &str) -> CloudResult<NewAccessKey> {
        self.gate("iam:CreateAccessKey", &t.account).await?;
        self.sim.create_access_key(t, user).await
    }
    async fn has_login_profile(&self, t: &Target, user: &str) -> CloudResult<bool> {
        self.gate("iam:GetLoginProfile", &t.account).await?;
        self.sim.has_login_profile(t, user).await
    }
    async fn delete_login_profile(&self, t: &Target, user: &str) -> CloudResult<()> {
        self.gate("iam:DeleteLoginProfile", &t.account).await?;
        self.sim.delete_login_profile(t, user).await
    }
    async fn put_user_policy(&self, t: &Target, u: &str, n: &str, d: &str) -> CloudResult<()> {
        self.gate("iam:PutUserPolicy", &t.account).await?;
        self.sim.put_user_policy(t, u, n, d).await
    }
    async fn get_user_policy(&self, t: &Target, u: &str, n: &str) -> CloudResult<Option<String>> {
        self.gate("iam:GetUserPolicy", &t.account).await?;
        self.sim.get_user_policy(t, u, n).await
    }
    async fn delete_user_policy(&self, t: &Target, user: &str, name: &str) -> CloudResult<()> {
        self.gate("iam:DeleteUserPolicy", &t.account).await?;
        self.sim.delete_user_policy(t, user, name).await
    }
}

#[async_trait]
impl Ec2 for Gate {
    async fn describe_instance(&self, t: &Target, id: &str) -> CloudResult<Option<InstanceInfo>> {
        self.gate("ec2:DescribeInstances", &t.account).await?;
        self.sim.describe_instance(t, id).await
    }
    async fn find_security_group(
        &self,
        t: &Target,
        vpc_id: &str,
        name: &str,
    ) -> CloudResult<Option<SecurityGroupInfo>> {
        self.gate("ec2:DescribeSecurityGroups", &t.account).await?;
        self.sim.find_security_group(t, vpc_id, name).await
    }
    async fn describe_security_group(
        &self,
        t: &Target,
        id: &str,
    ) -> CloudResult<Option<SecurityGroupInfo>> {
        self.gate("ec2:DescribeSecurityGroups", &t.account).await?;
        self.sim.describe_security_group(t, id).await
    }
    async fn create_security_group(
        &self,
        t: &Target,
        vpc_id: &str,
        name: &str,
        d: &str,
    ) -> CloudResult<String> {
        self.gate("ec2:CreateSecurityGroup", &t.account).await?;
        self.sim.create_security_group(t, vpc_id, name, d).await
    }
    async fn revoke_all_egress(&self, t: &Target, group_id: &str) -> CloudResult<()> {
        self.gate("ec2:RevokeSecurityGroupEgress", &t.account)
            .await?;
        self.sim.revoke_all_egress(t, group_id).await?;
        self.observe(t).await;
        Ok(())
    }
    async fn allow_all_traffic(&self, t: &Target, group_id: &str) -> CloudResult<()> {
        self.gate("ec2:AuthorizeSecurityGroupIngress", &t.account)
            .await?;
        self.sim.allow_all_traffic(t, group_id).await?;
        self.observe(t).await;
        Ok(())
    }
    async fn set_interface_groups(
        &self,
        t: &Target,
        instance: &str,
        iface: &InterfaceRef<'_>,
        groups: &[String],
    ) -> CloudResult<()> {
        self.gate("ec2:ModifyNetworkInterfaceAttribute", &t.account)
            .await?;
        self.sim
            .set_interface_groups(t, instance, iface, groups)
            .await?;
        self.observe(t).await;
        Ok(())
    }
    async fn set_termination_protection(&self, t: &Target, id: &str, on: bool) -> CloudResult<()> {
        self.gate("ec2:ModifyInstanceAttribute", &t.account).await?;
        self.sim.set_termination_protection(t, id, on).await
    }
    async fn create_snapshot(
        &self,
        t: &Target,
        volume_id: &str,
        d: &str,
        tags: &BTreeMap<String, String>,
    ) -> CloudResult<String> {
        self.gate("ec2:CreateSnapshot", &t.account).await?;
        self.sim.create_snapshot(t, volume_id, d, tags).await
    }
    async fn find_snapshots(
        &self,
        t: &Target,
        volume_id: &str,
        tag: (&str, &str),
    ) -> CloudResult<Vec<String>> {
        self.gate("ec2:DescribeSnapshots", &t.account).await?;
        self.sim.find_snapshots(t, volume_id, tag).await
    }
    async fn create_tags(
        &self,
        t: &Target,
        resource: &str,
        tags: &BTreeMap<String, String>,
    ) -> CloudResult<()> {
        self.gate("ec2:CreateTags", &t.account).await?;
        self.sim.create_tags(t, resource, tags).await
    }
    async fn delete_tags(&self, t: &Target, resource: &str, keys: &[String]) -> CloudResult<()> {
        self.gate("ec2:DeleteTags", &t.account).await?;
        self.sim.delete_tags(t, resource, keys).await
    }
}

#[async_trait]
impl AutoScaling for Gate {
    async fn membership(&self, t: &Target, i: &str) -> CloudResult<Option<ScalingMembership>> {
        self.gate("autoscaling:DescribeAutoScalingInstances", &t.account)
            .await?;
        self.sim.membership(t, i).await
    }
    async fn scaling_group(&self, t: &Target, name: &str) -> CloudResult<Option<ScalingGroup>> {
        self.gate("autoscaling:DescribeAutoScalingGroups", &t.account)
            .await?;
        self.sim.scaling_group(t, name).await
    }
    async fn detach_instance(&self, t: &Target, g: &str, i: &str, dec: bool) -> CloudResult<()> {
        self.gate("autoscaling:DetachInstances", &t.account).await?;
        self.sim.detach_instance(t, g, i, dec).await
    }
    async fn attach_instance(&self, t: &Target, g: &str, i: &str) -> CloudResult<()> {
        self.gate("autoscaling:AttachInstances", &t.account).await?;
        self.sim.attach_instance(t, g, i).await
    }
    async fn enter_standby(&self, t: &Target, g: &str, i: &str, dec: bool) -> CloudResult<()> {
        self.gate("autoscaling:EnterStandby", &t.account).await?;
        self.sim.enter_standby(t, g, i, dec).await
    }
}

#[async_trait]
impl LoadBalancing for Gate {
    async fn registrations(
        &self,
        t: &Target,
        vpc_id: &str,
        instance: &str,
    ) -> CloudResult<Vec<TargetRegistration>> {
        self.gate("elasticloadbalancing:DescribeTargetHealth", &t.account)
            .await?;
        self.sim.registrations(t, vpc_id, instance).await
    }
    async fn deregister(&self, t: &Target, i: &str, r: &TargetRegistration) -> CloudResult<()> {
        self.gate("elasticloadbalancing:DeregisterTargets", &t.account)
            .await?;
        self.sim.deregister(t, i, r).await
    }
    async fn register(&self, t: &Target, i: &str, r: &TargetRegistration) -> CloudResult<()> {
        self.gate("elasticloadbalancing:RegisterTargets", &t.account)
            .await?;
        self.sim.register(t, i, r).await
    }
}

#[async_trait]
impl Ssm for Gate {
    async fn put_secure_parameter(
        &self,
        t: &Target,
        name: &str,
        value: &Secret,
        d: &str,
    ) -> CloudResult<u64> {
        self.gate("ssm:PutParameter", &t.account).await?;
        self.sim.put_secure_parameter(t, name, value, d).await
    }
    async fn parameter_exists(&self, t: &Target, name: &str) -> CloudResult<bool> {
        self.gate("ssm:GetParameter", &t.account).await?;
        self.sim.parameter_exists(t, name).await
    }
    async fn send_command(
        &self,
        t: &Target,
        document: &str,
        ids: &[String],
        p: &BTreeMap<String, Vec<String>>,
        c: &str,
    ) -> CloudResult<String> {
        self.gate("ssm:SendCommand", &t.account).await?;
        self.sim.send_command(t, document, ids, p, c).await
    }
    async fn command_status(&self, t: &Target, id: &str, i: &str) -> CloudResult<String> {
        self.gate("ssm:GetCommandInvocation", &t.account).await?;
        self.sim.command_status(t, id, i).await
    }
}

#[async_trait]
impl Events for Gate {
    async fn put_event(&self, bus: &str, s: &str, dt: &str, detail: &Value) -> CloudResult<()> {
        self.gate("events:PutEvents", &self.management).await?;
        self.sim.put_event(bus, s, dt, detail).await
    }
}

#[async_trait]
impl Chat for Gate {
    async fn post(&self, channel: Option<&str>, text: &str) -> CloudResult<Delivery> {
        self.sim.post(channel, text).await
    }
}
