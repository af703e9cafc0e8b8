//! The simulated world on disk: a base snapshot (`sim-world.json`) and a log of the mutating
//! calls made since (`sim-world.log`, JSON lines), so that a call costs one appended line, not a
//! rewrite of the whole world.
//!
//! A call is appended (one `write(2)`, before the call returns) whether it succeeded or not:
//! replaying it runs the same code on the same state, so it fails or changes the world exactly as
//! it did, ids included (they come from the world's counter). The log's first line names the
//! base it follows by length and FNV-1a hash; a log that does not follow the base on disk (the
//! base was compacted, or replaced by hand) is ignored. Compaction writes the base atomically
//! (temporary file, rename) and then starts a new log, so a crash between the two leaves a log
//! that no longer matches and is ignored, never replayed twice.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use cordon_engine::cloud::{
    AutoScaling, Chat, Ec2, Events, Iam, InterfaceRef, KeyStatus, LoadBalancing, Organizations,
    Ssm, Target, TargetRegistration,
};
use cordon_engine::secret::Secret;
use cordon_engine::Finding;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::cloud::{SimCloud, WorldFileError};
use crate::world::World;

/// The log beside a world file: `sim-world.json` -> `sim-world.log`.
pub(crate) fn log_path(world: &Path) -> PathBuf {
    world.with_extension("log")
}

/// An open log, appended to after every mutating call.
pub(crate) struct OpLog {
    file: File,
    path: PathBuf,
}

impl OpLog {
    /// Appends one call as one line, in one write, so a kill leaves whole lines only.
    pub(crate) fn append(&mut self, api: &str, args: Value) -> Result<(), WorldFileError> {
        let mut line = serde_json::to_vec(&json!({"api": api, "args": args}))
            .map_err(|e| WorldFileError::new(&self.path, e.to_string()))?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(|e| WorldFileError::new(&self.path, e.to_string()))
    }
}

/// The world stored at `path`: its base snapshot and the calls logged since, replayed. Reads
/// only; a log line cut short by a kill (the last one) is ignored.
pub(crate) fn load(path: &Path) -> Result<World, WorldFileError> {
    let err = |p: &Path, m: String| WorldFileError::new(p, m);
    let base = match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(err(path, e.to_string())),
    };
    let world: World = match &base {
        Some(bytes) => serde_json::from_slice(bytes).map_err(|e| err(path, e.to_string()))?,
        None => World::default(),
    };
    let log = log_path(path);
    let bytes = match std::fs::read(&log) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(world),
        Err(e) => return Err(err(&log, e.to_string())),
    };
    let mut lines = bytes.split(|b| *b == b'\n');
    let follows = lines
        .next()
        .and_then(|h| serde_json::from_slice::<Value>(h).ok())
        .is_some_and(|h| h["base"] == base_id(base.as_deref()));
    if !follows {
        return Ok(world);
    }
    let cloud = SimCloud::from_world(world);
    for (n, line) in lines.enumerate().filter(|(_, l)| !l.is_empty()) {
        let Ok(call) = serde_json::from_slice::<Value>(line) else {
            // A torn last line: the process died inside the write; the call never returned.
            break;
        };
        replay(&cloud, &call).map_err(|m| err(&log, format!("line {}: {m}", n + 2)))?;
    }
    Ok(cloud.snapshot())
}

/// Writes `world` as the new base and starts an empty log after it; returns the open log.
pub(crate) fn compact(path: &Path, world: &World) -> Result<OpLog, WorldFileError> {
    let err = |p: &Path, m: String| WorldFileError::new(p, m);
    let bytes = serde_json::to_vec_pretty(world).map_err(|e| err(path, e.to_string()))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &bytes).map_err(|e| err(&tmp, e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| err(path, e.to_string()))?;
    let log = log_path(path);
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&log)
        .map_err(|e| err(&log, e.to_string()))?;
    let header = json!({"base": base_id(Some(&bytes))}).to_string() + "\n";
    file.write_all(header.as_bytes())
        .map_err(|e| err(&log, e.to_string()))?;
    Ok(OpLog { file, path: log })
}

/// Names a base file's exact bytes: length and 64-bit FNV-1a hash.
fn base_id(bytes: Option<&[u8]>) -> String {
    let Some(bytes) = bytes else {
        return "none".into();
    };
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}:{hash:016x}", bytes.len())
}

/// A [`Target`] as the log writes it (the run id is kept: it is part of what the call saw).
pub(crate) fn target(t: &Target) -> Value {
    json!([t.account, t.region, t.run_id])
}

/// Runs one logged call again on `cloud` (in memory, no delay, no faults). The call's own
/// outcome is ignored: it is whatever it was the first time.
fn replay(cloud: &SimCloud, call: &Value) -> Result<(), String> {
    let api = call["api"].as_str().ok_or("no api")?;
    let a = Args(&call["args"]);
    let t = || a.target();
    match api {
        "cordon:Seed" => cloud.seed(&a.get::<Finding>("finding")?).is_ok(),
        "organizations:EnablePolicyType" => now(cloud.enable_scp(""))?.is_ok(),
        "organizations:CreatePolicy" => {
            now(cloud.create_policy(&a.s("name")?, "", &a.s("content")?))?.is_ok()
        }
        "organizations:AttachPolicy" => {
            now(cloud.attach_policy(&a.s("policy")?, &a.s("account")?))?.is_ok()
        }
        "organizations:DetachPolicy" => {
            now(cloud.detach_policy(&a.s("policy")?, &a.s("account")?))?.is_ok()
        }
        "iam:PutRolePolicy" => {
            now(cloud.put_role_policy(&t()?, &a.s("role")?, &a.s("name")?, &a.s("doc")?))?.is_ok()
        }
        "iam:DeleteRolePolicy" => {
            now(cloud.delete_role_policy(&t()?, &a.s("role")?, &a.s("name")?))?.is_ok()
        }
        "iam:UpdateAccessKey" => now(cloud.set_access_key_status(
            &t()?,
            &a.s("user")?,
            &a.s("key")?,
            a.get::<KeyStatus>("status")?,
        ))?
        .is_ok(),
        "iam:CreateAccessKey" => now(cloud.create_access_key(&t()?, &a.s("user")?))?.is_ok(),
        "iam:DeleteLoginProfile" => now(cloud.delete_login_profile(&t()?, &a.s("user")?))?.is_ok(),
        "iam:PutUserPolicy" => {
            now(cloud.put_user_policy(&t()?, &a.s("user")?, &a.s("name")?, &a.s("doc")?))?.is_ok()
        }
        "iam:DeleteUserPolicy" => {
            now(cloud.delete_user_policy(&t()?, &a.s("user")?, &a.s("name")?))?.is_ok()
        }
        "ec2:CreateSecurityGroup" => {
            now(cloud.create_security_group(&t()?, &a.s("vpc")?, &a.s("name")?, ""))?.is_ok()
        }
        "ec2:RevokeSecurityGroupEgress" => {
            now(cloud.revoke_all_egress(&t()?, &a.s("group")?))?.is_ok()
        }
        "ec2:AuthorizeSecurityGroupIngress" => {
            now(cloud.allow_all_traffic(&t()?, &a.s("group")?))?.is_ok()
        }
        "ec2:ModifyNetworkInterfaceAttribute" => {
            let eni = a.s("interface")?;
            let iface = InterfaceRef {
                id: &eni,
                primary: a.get("primary")?,
            };
            let groups: Vec<String> = a.get("groups")?;
            now(cloud.set_interface_groups(&t()?, &a.s("instance")?, &iface, &groups))?.is_ok()
        }
        "ec2:ModifyInstanceAttribute" => {
            now(cloud.set_termination_protection(&t()?, &a.s("instance")?, a.get("on")?))?.is_ok()
        }
        "ec2:CreateSnapshot" => {
            let tags: BTreeMap<String, String> = a.get("tags")?;
            now(cloud.create_snapshot(&t()?, &a.s("volume")?, "", &tags))?.is_ok()
        }
        "ec2:CreateTags" => {
            let tags: BTreeMap<String, String> = a.get("tags")?;
            now(cloud.create_tags(&t()?, &a.s("resource")?, &tags))?.is_ok()
        }
        "ec2:DeleteTags" => {
            let keys: Vec<String> = a.get("keys")?;
            now(cloud.delete_tags(&t()?, &a.s("resource")?, &keys))?.is_ok()
        }
        "ssm:PutParameter" => {
            // The value is never logged: the simulator keeps no secret, only whether it was empty.
            let value = Secret::new(if a.get("empty")? { "" } else { "replayed" });
            now(cloud.put_secure_parameter(&t()?, &a.s("name")?, &value, ""))?.is_ok()
        }
        "ssm:SendCommand" => {
            let ids: Vec<String> = a.get("instances")?;
            now(cloud.send_command(&t()?, &a.s("document")?, &ids, &BTreeMap::new(), ""))?.is_ok()
        }
        "events:PutEvents" => now(cloud.put_event(
            &a.s("bus")?,
            &a.s("source")?,
            &a.s("detail_type")?,
            &a.0["detail"],
        ))?
        .is_ok(),
        "chat:post" => {
            let channel: Option<String> = a.get("channel")?;
            now(cloud.post(channel.as_deref(), &a.s("text")?))?.is_ok()
        }
        "autoscaling:DetachInstances" => now(cloud.detach_instance(
            &t()?,
            &a.s("group")?,
            &a.s("instance")?,
            a.get("decrement")?,
        ))?
        .is_ok(),
        "autoscaling:AttachInstances" => {
            now(cloud.attach_instance(&t()?, &a.s("group")?, &a.s("instance")?))?.is_ok()
        }
        "autoscaling:EnterStandby" => now(cloud.enter_standby(
            &t()?,
            &a.s("group")?,
            &a.s("instance")?,
            a.get("decrement")?,
        ))?
        .is_ok(),
        "elasticloadbalancing:DeregisterTargets" => {
            let reg: TargetRegistration = a.get("registration")?;
            now(cloud.deregister(&t()?, &a.s("instance")?, &reg))?.is_ok()
        }
        "elasticloadbalancing:RegisterTargets" => {
            let reg: TargetRegistration = a.get("registration")?;
            now(cloud.register(&t()?, &a.s("instance")?, &reg))?.is_ok()
        }
        other => return Err(format!("unknown call {other:?}")),
    };
    Ok(())
}

/// A logged call's arguments.
struct Args<'a>(&'a Value);

impl Args<'_> {
    fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T, String> {
        serde_json::from_value(self.0[name].clone()).map_err(|e| format!("{name}: {e}"))
    }
    fn s(&self, name: &str) -> Result<String, String> {
        self.get(name)
    }
    fn target(&self) -> Result<Target, String> {
        let [account, region, run_id]: [String; 3] = self.get("target")?;
        Ok(Target {
            account,
            region,
            run_id,
        })
    }
}

/// Runs a simulated call to completion. Without a delay a simulated call never waits, so one
/// poll finishes it; anything else is a bug in the replay, reported rather than blocked on.
fn now<F: Future>(f: F) -> Result<F::Output, String> {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => Ok(out),
        Poll::Pending => Err("a replayed call waited".into()),
    }
}
