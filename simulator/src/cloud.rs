//! [`SimCloud`]: the engine's cloud traits over a [`World`], optionally kept on disk (a base
//! snapshot and a log of every mutating call, see [`crate::oplog`]) so that `run`, `approve` and
//! `release` in separate processes act on one world, and a killed process loses no call that
//! returned.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use cordon_engine::cloud::{
    AccessKeyInfo, Chat, CloudError, CloudResult, Delivery, Ec2, ErrorKind, Events, Iam,
    InstanceInfo, InterfaceInfo, InterfaceRef, KeyStatus, NewAccessKey, OrgInfo, Organizations,
    PolicyInfo, RoleInfo, SecurityGroupInfo, Ssm, Target, UserInfo,
};
use cordon_engine::secret::Secret;
use cordon_engine::Finding;
use serde_json::{json, Value};

use crate::oplog::{self, target, OpLog};
use crate::org::FULL_AWS_ACCESS;
use crate::world::{Account, Group, Region, Role, User, World};

/// The simulated cloud.
pub struct SimCloud {
    world: Mutex<World>,
    /// Where every mutating call is appended, when the world is kept on disk. Locked only while
    /// the world is (world first), so the log's order is the order calls changed the world.
    log: Mutex<Option<OpLog>>,
    /// Pause before each mutating call (lets tests kill the process mid-step).
    delay: Duration,
    /// Injected failures: API name -> (kind, remaining count).
    faults: Mutex<BTreeMap<String, (ErrorKind, u32)>>,
}

/// Errors opening or saving the world file.
#[derive(Debug, thiserror::Error)]
#[error("simulated world {path}: {message}")]
pub struct WorldFileError {
    path: String,
    message: String,
}

impl WorldFileError {
    pub(crate) fn new(path: &Path, message: String) -> WorldFileError {
        WorldFileError {
            path: path.display().to_string(),
            message,
        }
    }
}

impl SimCloud {
    /// A world in memory only.
    pub fn in_memory() -> SimCloud {
        SimCloud::with(World::default(), None)
    }

    /// The world stored at `path` (created if absent): its snapshot and the calls logged beside
    /// it (`<path>.log`), replayed, then written back as one snapshot with an empty log.
    ///
    /// Errors: the file cannot be read or written, or holds no world.
    pub fn open(path: &Path) -> Result<SimCloud, WorldFileError> {
        let world = oplog::load(path)?;
        let log = oplog::compact(path, &world)?;
        Ok(SimCloud::with(world, Some(log)))
    }

    /// The world stored at `path` as the last call left it (snapshot plus log), read only: for
    /// tests and tools that look at a world another process is using.
    pub fn load(path: &Path) -> Result<World, WorldFileError> {
        oplog::load(path)
    }

    /// A world in memory only, starting from `world`.
    pub fn from_world(world: World) -> SimCloud {
        SimCloud::with(world, None)
    }

    fn with(world: World, log: Option<OpLog>) -> SimCloud {
        SimCloud {
            world: Mutex::new(world),
            log: Mutex::new(log),
            delay: Duration::ZERO,
            faults: Mutex::new(BTreeMap::new()),
        }
    }

    /// Sleeps this long before every mutating call.
    pub fn with_delay(mut self, delay: Duration) -> SimCloud {
        self.delay = delay;
        self
    }

    /// Makes the next `times` calls of `api` (e.g. `ec2:CreateSnapshot`) fail with `kind`.
    pub fn fail_next(&self, api: &str, kind: ErrorKind, times: u32) {
        self.faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(api.to_string(), (kind, times));
    }

    /// Creates what the finding names, if not there yet, and saves.
    pub fn seed(&self, finding: &Finding) -> Result<(), WorldFileError> {
        let mut w = self.lock();
        w.seed(finding);
        self.append("cordon:Seed", || json!({ "finding": finding }))
    }

    /// A copy of the world.
    pub fn snapshot(&self) -> World {
        self.lock().clone()
    }

    /// `f` of the world as it is now, without copying it (a drill of 1,000 accounts checks
    /// the world several times; each copy is its whole size). The world is locked while `f`
    /// runs, so `f` must not call the cloud.
    pub fn inspect<R>(&self, f: impl FnOnce(&World) -> R) -> R {
        f(&self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Logs a call that changed the world (called with the world locked).
    fn append(&self, api: &str, args: impl FnOnce() -> Value) -> Result<(), WorldFileError> {
        match self.log.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            Some(log) => log.append(api, args()),
            None => Ok(()),
        }
    }

    fn fault(&self, api: &str) -> CloudResult<()> {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((kind, left)) = faults.get_mut(api) {
            if *left > 0 {
                *left -= 1;
                return Err(CloudError::new(*kind, format!("{api}: injected {kind:?}")));
            }
        }
        Ok(())
    }

    /// A read: applies injected faults.
    pub(crate) fn read<R>(
        &self,
        api: &str,
        f: impl FnOnce(&World) -> CloudResult<R>,
    ) -> CloudResult<R> {
        self.fault(api)?;
        f(&self.lock())
    }

    /// A mutating call: fault, delay, change, log. `args` are the call's arguments as the log
    /// keeps them (see [`crate::oplog`]); the call is logged even when it fails, since replaying
    /// it then fails the same way and leaves the world as it did.
    pub(crate) async fn write<R>(
        &self,
        api: &str,
        account: &str,
        args: impl FnOnce() -> Value,
        f: impl FnOnce(&mut World) -> CloudResult<R>,
    ) -> CloudResult<R> {
        self.fault(api)?;
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let mut w = self.lock();
        let r = f(&mut w);
        if r.is_ok() {
            w.calls.push(format!("{api} {account}"));
        }
        self.append(api, args)
            .map_err(|e| CloudError::fatal(e.to_string()))?;
        r
    }
}

/// The IAM user `user` in `t`'s account, or NoSuchEntity.
fn user_mut<'w>(w: &'w mut World, t: &Target, user: &str) -> CloudResult<&'w mut User> {
    w.account(&t.account)
        .users
        .get_mut(user)
        .ok_or_else(|| missing(&format!("user {user}"), t))
}

/// The IAM role `role` in `t`'s account, or NoSuchEntity.
fn role_mut<'w>(w: &'w mut World, t: &Target, role: &str) -> CloudResult<&'w mut Role> {
    w.account(&t.account)
        .roles
        .get_mut(role)
        .ok_or_else(|| missing(&format!("role {role}"), t))
}

pub(crate) fn account<'w>(w: &'w World, t: &Target) -> CloudResult<&'w Account> {
    w.accounts.get(&t.account).ok_or_else(|| {
        CloudError::new(
            ErrorKind::Denied,
            format!(
                "cannot assume the response role in account {}: unknown account",
                t.account
            ),
        )
    })
}

pub(crate) fn region<'w>(w: &'w World, t: &Target) -> Option<&'w Region> {
    w.accounts.get(&t.account)?.regions.get(&t.region)
}

pub(crate) fn region_mut<'w>(w: &'w mut World, t: &Target) -> &'w mut Region {
    w.account(&t.account)
        .regions
        .entry(t.region.clone())
        .or_default()
}

pub(crate) fn missing(what: &str, t: &Target) -> CloudError {
    CloudError::not_found(format!(
        "{what} not found in account {} {}",
        t.account, t.region
    ))
}

#[async_trait]
impl Organizations for SimCloud {
    async fn describe(&self) -> CloudResult<OrgInfo> {
        self.read("organizations:DescribeOrganization", |w| {
            Ok(OrgInfo {
                management_account: w.org.management_account.clone(),
                root_id: w.org.root_id.clone(),
                scp_enabled: w.org.scp_enabled,
            })
        })
    }
    async fn list_accounts(&self) -> CloudResult<Vec<String>> {
        self.read("organizations:ListAccounts", |w| {
            Ok(w.org.accounts.keys().cloned().collect())
        })
    }
    async fn enable_scp(&self, _root: &str) -> CloudResult<()> {
        self.write(
            "organizations:EnablePolicyType",
            "org",
            || json!({}),
            |w| {
                w.org.scp_enabled = true;
                Ok(())
            },
        )
        .await
    }
    async fn find_policy(&self, name: &str) -> CloudResult<Option<PolicyInfo>> {
        self.read("organizations:ListPolicies", |w| {
            Ok(w.org
                .policies
                .iter()
                .find(|(_, (n, _))| n == name)
                .map(|(id, (n, c))| PolicyInfo {
                    id: id.clone(),
                    name: n.clone(),
                    content: c.clone(),
                }))
        })
    }
    async fn create_policy(
        &self,
        name: &str,
        _description: &str,
        content: &str,
    ) -> CloudResult<PolicyInfo> {
        self.write(
            "organizations:CreatePolicy",
            "org",
            || json!({"name": name, "content": content}),
            |w| {
                let id = w.id("p-");
                w.org
                    .policies
                    .insert(id.clone(), (name.into(), content.into()));
                Ok(PolicyInfo {
                    id,
                    name: name.into(),
                    content: content.into(),
                })
            },
        )
        .await
    }
    /// `AttachPolicy`: `target` is the root id, an OU id or a member account id, as AWS takes.
    async fn attach_policy(&self, policy_id: &str, target: &str) -> CloudResult<()> {
        self.write(
            "organizations:AttachPolicy",
            target,
            || json!({"policy": policy_id, "account": target}),
            |w| {
                if !w.org.scp_enabled {
                    return Err(CloudError::fatal("PolicyTypeNotEnabledException: SERVICE_CONTROL_POLICY is not enabled on the root"));
                }
                if !w.org.is_target(target) {
                    return Err(CloudError::not_found(format!(
                        "TargetNotFoundException: {target} is not the root, an OU or an account in the organization"
                    )));
                }
                // A target with no attachment recorded (the root or an OU of a world written
                // before OUs were modelled) holds FullAWSAccess, as every target does in AWS
                // once SCPs are enabled; keep it when something else is attached beside it.
                w.org
                    .attachments
                    .entry(target.into())
                    .or_insert_with(|| BTreeSet::from([FULL_AWS_ACCESS.to_string()]))
                    .insert(policy_id.into());
                Ok(())
            },
        )
        .await
    }
    /// `DetachPolicy` from the root, an OU or an account.
    async fn detach_policy(&self, policy_id: &str, target: &str) -> CloudResult<()> {
        self.write(
            "organizations:DetachPolicy",
            target,
            || json!({"policy": policy_id, "account": target}),
            |w| match w
                .org
                .attachments
                .get_mut(target)
                .map(|s| s.remove(policy_id))
            {
                Some(true) => Ok(()),
                _ => Err(CloudError::not_found(format!(
                    "{policy_id} is not attached to {target}"
                ))),
            },
        )
        .await
    }
    /// `ListPoliciesForTarget`: the policies attached directly to `target` (not inherited).
    async fn policies_for_account(&self, target: &str) -> CloudResult<Vec<PolicyInfo>> {
        self.read("organizations:ListPoliciesForTarget", |w| {
            let ids = w.org.attachments.get(target).cloned().unwrap_or_default();
            Ok(ids
                .into_iter()
                .filter_map(|id| {
                    w.org.policies.get(&id).map(|(n, c)| PolicyInfo {
                        id: id.clone(),
                        name: n.clone(),
                        content: c.clone(),
                    })
                })
                .collect())
        })
    }
}

#[async_trait]
impl Iam for SimCloud {
    async fn get_role(&self, t: &Target, role: &str) -> CloudResult<Option<RoleInfo>> {
        self.read("iam:GetRole", |w| {
            Ok(account(w, t)?.roles.get(role).map(|r| RoleInfo {
                name: role.into(),
                arn: format!("arn:aws:iam::{}:role{}{role}", t.account, r.path),
                path: r.path.clone(),
            }))
        })
    }
    async fn put_role_policy(
        &self,
        t: &Target,
        role: &str,
        name: &str,
        doc: &str,
    ) -> CloudResult<()> {
        self.write(
            "iam:PutRolePolicy",
            &t.account,
            || json!({"target": target(t), "role": role, "name": name, "doc": doc}),
            |w| {
                let r = role_mut(w, t, role)?;
                r.inline.insert(name.into(), doc.into());
                Ok(())
            },
        )
        .await
    }
    async fn get_role_policy(
        &self,
        t: &Target,
        role: &str,
        name: &str,
    ) -> CloudResult<Option<String>> {
        self.read("iam:GetRolePolicy", |w| {
            Ok(account(w, t)?
                .roles
                .get(role)
                .and_then(|r| r.inline.get(name).cloned()))
        })
    }
    async fn delete_role_policy(&self, t: &Target, role: &str, name: &str) -> CloudResult<()> {
        self.write(
            "iam:DeleteRolePolicy",
            &t.account,
            || json!({"target": target(t), "role": role, "name": name}),
            |w| {
                let r = role_mut(w, t, role)?;
                r.inline
                    .remove(name)
                    .map(|_| ())
                    .ok_or_else(|| missing(&format!("policy {name} of {role}"), t))
            },
        )
        .await
    }
    async fn get_user(&self, t: &Target, user: &str) -> CloudResult<Option<UserInfo>> {
        self.read("iam:GetUser", |w| {
            Ok(account(w, t)?.users.get(user).map(|_| UserInfo {
                name: user.into(),
                arn: format!("arn:aws:iam::{}:user/{user}", t.account),
            }))
        })
    }
    async fn list_access_keys(&self, t: &Target, user: &str) -> CloudResult<Vec<AccessKeyInfo>> {
        self.read("iam:ListAccessKeys", |w| {
            let u = account(w, t)?
                .users
                .get(user)
                .ok_or_else(|| missing(&format!("user {user}"), t))?;
            Ok(u.keys
                .iter()
                .map(|(id, s)| AccessKeyInfo {
                    id: id.clone(),
                    status: *s,
                })
                .collect())
        })
    }
    async fn set_access_key_status(
        &self,
        t: &Target,
        user: &str,
        key_id: &str,
        status: KeyStatus,
    ) -> CloudResult<()> {
        self.write(
            "iam:UpdateAccessKey",
            &t.account,
            || json!({"target": target(t), "user": user, "key": key_id, "status": status}),
            |w| {
                let u = user_mut(w, t, user)?;
                let k = u
                    .keys
                    .iter_mut()
                    .find(|(id, _)| id == key_id)
                    .ok_or_else(|| missing(&format!("access key {key_id}"), t))?;
                k.1 = status;
                Ok(())
            },
        )
        .await
    }
    async fn create_access_key(&self, t: &Target, user: &str) -> CloudResult<NewAccessKey> {
        self.write(
            "iam:CreateAccessKey",
            &t.account,
            || json!({"target": target(t), "user": user}),
            |w| {
                let id = format!("AKIASIM{:013}", w.next_id + 1);
                w.next_id += 1;
                let u = user_mut(w, t, user)?;
                if u.keys.len() >= 2 {
                    return Err(CloudError::fatal(format!(
                        "LimitExceeded: user {user} already has 2 access keys"
                    )));
                }
                u.keys.push((id.clone(), KeyStatus::Active));
                Ok(NewAccessKey {
                    id,
                    secret: Secret::new(format!("simsecret{}", w.next_id)),
                })
            },
        )
        .await
    }
    async fn has_login_profile(&self, t: &Target, user: &str) -> CloudResult<bool> {
        self.read("iam:GetLoginProfile", |w| {
            Ok(account(w, t)?
                .users
                .get(user)
                .is_some_and(|u| u.login_profile))
        })
    }
    async fn delete_login_profile(&self, t: &Target, user: &str) -> CloudResult<()> {
        self.write(
            "iam:DeleteLoginProfile",
            &t.account,
            || json!({"target": target(t), "user": user}),
            |w| {
                let u = user_mut(w, t, user)?;
                if !std::mem::take(&mut u.login_profile) {
                    return Err(missing(&format!("login profile of {user}"), t));
                }
                Ok(())
            },
        )
        .await
    }
    async fn put_user_policy(
        &self,
        t: &Target,
        user: &str,
        name: &str,
        doc: &str,
    ) -> CloudResult<()> {
        self.write(
            "iam:PutUserPolicy",
            &t.account,
            || json!({"target": target(t), "user": user, "name": name, "doc": doc}),
            |w| {
                let u = user_mut(w, t, user)?;
                u.inline.insert(name.into(), doc.into());
                Ok(())
            },
        )
        .await
    }
    async fn get_user_policy(
        &self,
        t: &Target,
        user: &str,
        name: &str,
    ) -> CloudResult<Option<String>> {
        self.read("iam:GetUserPolicy", |w| {
            Ok(account(w, t)?
                .users
                .get(user)
                .and_then(|u| u.inline.get(name).cloned()))
        })
    }
    async fn delete_user_policy(&self, t: &Target, user: &str, name: &str) -> CloudResult<()> {
        self.write(
            "iam:DeleteUserPolicy",
            &t.account,
            || json!({"target": target(t), "user": user, "name": name}),
            |w| {
                let u = user_mut(w, t, user)?;
                u.inline
                    .remove(name)
                    .map(|_| ())
                    .ok_or_else(|| missing(&format!("policy {name} of {user}"), t))
            },
        )
        .await
    }
}

fn group_info(id: &str, g: &Group) -> SecurityGroupInfo {
    SecurityGroupInfo {
        id: id.into(),
        name: g.name.clone(),
        vpc_id: g.vpc_id.clone(),
        ingress_rules: g.ingress,
        egress_rules: g.egress,
    }
}

#[async_trait]
impl Ec2 for SimCloud {
    async fn describe_instance(&self, t: &Target, id: &str) -> CloudResult<Option<InstanceInfo>> {
        self.read("ec2:DescribeInstances", |w| {
            account(w, t)?;
            Ok(region(w, t)
                .and_then(|r| r.instances.get(id))
                .map(|i| InstanceInfo {
                    id: id.into(),
                    vpc_id: i.vpc_id.clone(),
                    state: "running".into(),
                    interfaces: i
                        .interfaces
                        .iter()
                        .enumerate()
                        // Interface ids are handed out in order: the first is the primary.
                        .map(|(n, (eni, g))| InterfaceInfo {
                            id: eni.clone(),
                            groups: g.clone(),
                            primary: n == 0,
                        })
                        .collect(),
                    volumes: i.volumes.clone(),
                    termination_protection: i.termination_protection,
                    tags: i.tags.clone(),
                }))
        })
    }
    async fn find_security_group(
        &self,
        t: &Target,
        vpc_id: &str,
        name: &str,
    ) -> CloudResult<Option<SecurityGroupInfo>> {
        self.read("ec2:DescribeSecurityGroups", |w| {
            Ok(region(w, t)
                .and_then(|r| {
                    r.groups
                        .iter()
                        .find(|(_, g)| g.vpc_id == vpc_id && g.name == name)
                })
                .map(|(id, g)| group_info(id, g)))
        })
    }
    async fn describe_security_group(
        &self,
        t: &Target,
        id: &str,
    ) -> CloudResult<Option<SecurityGroupInfo>> {
        self.read("ec2:DescribeSecurityGroups", |w| {
            Ok(region(w, t)
                .and_then(|r| r.groups.get(id))
                .map(|g| group_info(id, g)))
        })
    }
    async fn create_security_group(
        &self,
        t: &Target,
        vpc_id: &str,
        name: &str,
        _d: &str,
    ) -> CloudResult<String> {
        self.write(
            "ec2:CreateSecurityGroup",
            &t.account,
            || json!({"target": target(t), "vpc": vpc_id, "name": name}),
            |w| {
                let id = w.id("sg-");
                let r = region_mut(w, t);
                if r.groups
                    .values()
                    .any(|g| g.vpc_id == vpc_id && g.name == name)
                {
                    return Err(CloudError::fatal(format!(
                        "InvalidGroup.Duplicate: {name} exists in {vpc_id}"
                    )));
                }
                // EC2 gives every new group an allow-all egress rule.
                r.groups.insert(
                    id.clone(),
                    Group {
                        name: name.into(),
                        vpc_id: vpc_id.into(),
                        ingress: 0,
                        egress: 1,
                    },
                );
                Ok(id)
            },
        )
        .await
    }
    async fn revoke_all_egress(&self, t: &Target, group_id: &str) -> CloudResult<()> {
        self.write(
            "ec2:RevokeSecurityGroupEgress",
            &t.account,
            || json!({"target": target(t), "group": group_id}),
            |w| {
                region_mut(w, t)
                    .groups
                    .get_mut(group_id)
                    .map(|g| g.egress = 0)
                    .ok_or_else(|| missing(group_id, t))
            },
        )
        .await
    }
    async fn allow_all_traffic(&self, t: &Target, group_id: &str) -> CloudResult<()> {
        self.write(
            "ec2:AuthorizeSecurityGroupIngress",
            &t.account,
            || json!({"target": target(t), "group": group_id}),
            |w| {
                region_mut(w, t)
                    .groups
                    .get_mut(group_id)
                    .map(|g| (g.ingress, g.egress) = (2, 2))
                    .ok_or_else(|| missing(group_id, t))
            },
        )
        .await
    }
    async fn set_interface_groups(
        &self,
        t: &Target,
        instance: &str,
        iface: &InterfaceRef<'_>,
        groups: &[String],
    ) -> CloudResult<()> {
        let eni = iface.id;
        self.write("ec2:ModifyNetworkInterfaceAttribute", &t.account, || json!({"target": target(t), "instance": instance, "interface": eni, "primary": iface.primary, "groups": groups}), |w| {
            let r = region_mut(w, t);
            if let Some(bad) = groups.iter().find(|g| !r.groups.contains_key(*g)) {
                return Err(missing(&format!("security group {bad}"), t));
            }
            // The instance named first: a scan of the region's instances grows with the world
            // (a long-running `serve --cloud sim` holds every instance it ever saw).
            let slot = match r.instances.get_mut(instance) {
                Some(i) if i.interfaces.contains_key(eni) => i.interfaces.get_mut(eni),
                _ => r
                    .instances
                    .values_mut()
                    .find_map(|i| i.interfaces.get_mut(eni)),
            }
            .ok_or_else(|| missing(eni, t))?;
            *slot = groups.to_vec();
            Ok(())
        })
        .await
    }
    async fn set_termination_protection(&self, t: &Target, id: &str, on: bool) -> CloudResult<()> {
        self.write(
            "ec2:ModifyInstanceAttribute",
            &t.account,
            || json!({"target": target(t), "instance": id, "on": on}),
            |w| {
                region_mut(w, t)
                    .instances
                    .get_mut(id)
                    .map(|i| i.termination_protection = on)
                    .ok_or_else(|| missing(id, t))
            },
        )
        .await
    }
    async fn create_snapshot(
        &self,
        t: &Target,
        volume_id: &str,
        _d: &str,
        tags: &BTreeMap<String, String>,
    ) -> CloudResult<String> {
        self.write(
            "ec2:CreateSnapshot",
            &t.account,
            || json!({"target": target(t), "volume": volume_id, "tags": tags}),
            |w| {
                let id = w.id("snap-");
                let r = region_mut(w, t);
                if !r
                    .instances
                    .values()
                    .any(|i| i.volumes.iter().any(|v| v == volume_id))
                {
                    return Err(missing(volume_id, t));
                }
                r.snapshots
                    .insert(id.clone(), (volume_id.into(), tags.clone()));
                Ok(id)
            },
        )
        .await
    }
    async fn find_snapshots(
        &self,
        t: &Target,
        volume_id: &str,
        tag: (&str, &str),
    ) -> CloudResult<Vec<String>> {
        self.read("ec2:DescribeSnapshots", |w| {
            Ok(region(w, t)
                .map(|r| {
                    r.snapshots
                        .iter()
                        .filter(|(_, (v, tags))| {
                            v == volume_id && tags.get(tag.0).map(String::as_str) == Some(tag.1)
                        })
                        .map(|(id, _)| id.clone())
                        .collect()
                })
                .unwrap_or_default())
        })
    }
    async fn create_tags(
        &self,
        t: &Target,
        resource: &str,
        tags: &BTreeMap<String, String>,
    ) -> CloudResult<()> {
        self.write(
            "ec2:CreateTags",
            &t.account,
            || json!({"target": target(t), "resource": resource, "tags": tags}),
            |w| {
                let i = region_mut(w, t)
                    .instances
                    .get_mut(resource)
                    .ok_or_else(|| missing(resource, t))?;
                i.tags.extend(tags.clone());
                Ok(())
            },
        )
        .await
    }
    async fn delete_tags(&self, t: &Target, resource: &str, keys: &[String]) -> CloudResult<()> {
        self.write(
            "ec2:DeleteTags",
            &t.account,
            || json!({"target": target(t), "resource": resource, "keys": keys}),
            |w| {
                let i = region_mut(w, t)
                    .instances
                    .get_mut(resource)
                    .ok_or_else(|| missing(resource, t))?;
                keys.iter().for_each(|k| {
                    i.tags.remove(k);
                });
                Ok(())
            },
        )
        .await
    }
}

#[async_trait]
impl Ssm for SimCloud {
    async fn put_secure_parameter(
        &self,
        t: &Target,
        name: &str,
        value: &Secret,
        _d: &str,
    ) -> CloudResult<u64> {
        let empty = value.expose().is_empty();
        self.write(
            "ssm:PutParameter",
            &t.account,
            || json!({"target": target(t), "name": name, "empty": empty}),
            |w| {
                if empty {
                    return Err(CloudError::fatal(
                        "ValidationException: empty parameter value",
                    ));
                }
                let v = region_mut(w, t).parameters.entry(name.into()).or_insert(0);
                *v += 1;
                Ok(*v)
            },
        )
        .await
    }
    async fn parameter_exists(&self, t: &Target, name: &str) -> CloudResult<bool> {
        self.read("ssm:GetParameter", |w| {
            Ok(region(w, t).is_some_and(|r| r.parameters.contains_key(name)))
        })
    }
    async fn send_command(
        &self,
        t: &Target,
        document: &str,
        instance_ids: &[String],
        _p: &BTreeMap<String, Vec<String>>,
        _c: &str,
    ) -> CloudResult<String> {
        self.write(
            "ssm:SendCommand",
            &t.account,
            || json!({"target": target(t), "document": document, "instances": instance_ids}),
            |w| {
                let id = w.id("cmd-");
                region_mut(w, t)
                    .commands
                    .insert(id.clone(), (document.into(), instance_ids.to_vec()));
                Ok(id)
            },
        )
        .await
    }
    async fn command_status(
        &self,
        t: &Target,
        command_id: &str,
        _instance: &str,
    ) -> CloudResult<String> {
        self.read("ssm:GetCommandInvocation", |w| {
            region(w, t)
                .and_then(|r| r.commands.get(command_id))
                .map(|_| "Success".to_string())
                .ok_or_else(|| missing(command_id, t))
        })
    }
}

#[async_trait]
impl Events for SimCloud {
    async fn put_event(
        &self,
        bus: &str,
        source: &str,
        detail_type: &str,
        detail: &Value,
    ) -> CloudResult<()> {
        self.write("events:PutEvents", bus, || json!({"bus": bus, "source": source, "detail_type": detail_type, "detail": detail}), |w| {
            w.events.push(serde_json::json!({"bus": bus, "source": source, "detail-type": detail_type, "detail": detail}));
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl Chat for SimCloud {
    async fn post(&self, channel: Option<&str>, text: &str) -> CloudResult<Delivery> {
        self.write(
            "chat:post",
            channel.unwrap_or("default"),
            || json!({"channel": channel, "text": text}),
            |w| {
                w.chat.push(text.to_string());
                Ok(Delivery::Posted)
            },
        )
        .await
    }
}
