//! The simulated world kept on disk (a snapshot and a log of calls): what another process reads
//! back, after every kind of mutating call, after a kill mid-write, and after compaction.

use std::collections::BTreeMap;
use std::path::Path;

use cordon_engine::cloud::{
    AutoScaling, Chat, Ec2, Events, Iam, InterfaceRef, KeyStatus, LoadBalancing, Organizations,
    Ssm, Target, TargetRegistration,
};
use cordon_engine::secret::Secret;
use cordon_simulator::world::{
    Account, Group, Instance, Region, Role, ScalingGroup, TargetGroup, User,
};
use cordon_simulator::{SimCloud, World};
use serde_json::{json, Value};

const ACCOUNT: &str = "111122223333";
const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/web/1";

fn t() -> Target {
    Target {
        account: ACCOUNT.into(),
        region: "us-east-1".into(),
        run_id: "run-1".into(),
    }
}

/// One account with an instance in an Auto Scaling group behind a target group, a user with a
/// key and a console password, and a role.
fn world() -> World {
    let mut w = World::default();
    // A member of the organization under the root, with no SCP attached.
    w.org.join(ACCOUNT);
    w.org.attachments.get_mut(ACCOUNT).unwrap().clear();
    let mut region = Region::default();
    region.instances.insert(
        "i-1".into(),
        Instance {
            vpc_id: "vpc-1".into(),
            interfaces: BTreeMap::from([("eni-1".into(), vec!["sg-web".into()])]),
            volumes: vec!["vol-1".into()],
            ..Instance::default()
        },
    );
    region.groups.insert(
        "sg-web".into(),
        Group {
            name: "web".into(),
            vpc_id: "vpc-1".into(),
            ingress: 1,
            egress: 1,
        },
    );
    region.scaling_groups.insert(
        "asg-web".into(),
        ScalingGroup {
            min_size: 0,
            max_size: 3,
            desired_capacity: 1,
            instances: BTreeMap::from([("i-1".into(), "InService".into())]),
            target_groups: vec![TG.into()],
        },
    );
    region.target_groups.insert(
        TG.into(),
        TargetGroup {
            vpc_id: "vpc-1".into(),
            port: 80,
            targets: vec![("i-1".into(), 80)],
        },
    );
    let mut account = Account::default();
    account.regions.insert("us-east-1".into(), region);
    account.users.insert(
        "alice".into(),
        User {
            keys: vec![("AKIAALICE".into(), KeyStatus::Active)],
            login_profile: true,
            ..User::default()
        },
    );
    account.roles.insert("app".into(), Role::default());
    w.accounts.insert(ACCOUNT.into(), account);
    w
}

/// Every mutating call the simulator has, once, and two that fail after changing nothing.
async fn every_call(c: &SimCloud) {
    let t = t();
    let tags = BTreeMap::from([("cordon:run".to_string(), "run-1".to_string())]);
    c.enable_scp("r-sim0").await.unwrap();
    let p = c.create_policy("deny", "", "{}").await.unwrap();
    c.attach_policy(&p.id, ACCOUNT).await.unwrap();
    c.detach_policy(&p.id, ACCOUNT).await.unwrap();
    c.put_role_policy(&t, "app", "deny", "{}").await.unwrap();
    c.delete_role_policy(&t, "app", "deny").await.unwrap();
    assert!(c.delete_role_policy(&t, "app", "absent").await.is_err());
    c.set_access_key_status(&t, "alice", "AKIAALICE", KeyStatus::Inactive)
        .await
        .unwrap();
    c.create_access_key(&t, "alice").await.unwrap();
    assert!(c.create_access_key(&t, "alice").await.is_err(), "2 keys");
    c.delete_login_profile(&t, "alice").await.unwrap();
    c.put_user_policy(&t, "alice", "deny", "{}").await.unwrap();
    c.delete_user_policy(&t, "alice", "deny").await.unwrap();
    let sg = c
        .create_security_group(&t, "vpc-1", "quarantine", "")
        .await
        .unwrap();
    c.revoke_all_egress(&t, &sg).await.unwrap();
    c.allow_all_traffic(&t, "sg-web").await.unwrap();
    let eni = InterfaceRef {
        id: "eni-1",
        primary: true,
    };
    c.set_interface_groups(&t, "i-1", &eni, std::slice::from_ref(&sg))
        .await
        .unwrap();
    c.set_termination_protection(&t, "i-1", true).await.unwrap();
    c.create_snapshot(&t, "vol-1", "", &tags).await.unwrap();
    c.create_tags(&t, "i-1", &tags).await.unwrap();
    c.delete_tags(&t, "i-1", &["cordon:run".into()])
        .await
        .unwrap();
    let secret = Secret::new("not logged");
    c.put_secure_parameter(&t, "/cordon/key", &secret, "")
        .await
        .unwrap();
    c.send_command(
        &t,
        "AWS-RunShellScript",
        &["i-1".into()],
        &BTreeMap::new(),
        "",
    )
    .await
    .unwrap();
    c.put_event("default", "cordon", "Run", &json!({"run": "run-1"}))
        .await
        .unwrap();
    c.post(Some("#ir"), "isolated i-1").await.unwrap();
    let reg = TargetRegistration {
        target_group_arn: TG.into(),
        port: Some(80),
        availability_zone: None,
        state: "healthy".into(),
    };
    c.deregister(&t, "i-1", &reg).await.unwrap();
    c.register(&t, "i-1", &reg).await.unwrap();
    c.enter_standby(&t, "asg-web", "i-1", true).await.unwrap();
    c.detach_instance(&t, "asg-web", "i-1", false)
        .await
        .unwrap();
    c.attach_instance(&t, "asg-web", "i-1").await.unwrap();
}

fn json_of(w: &World) -> Value {
    serde_json::to_value(w).unwrap()
}

fn kept(dir: &Path) -> SimCloud {
    let path = dir.join("sim-world.json");
    std::fs::write(&path, serde_json::to_vec(&world()).unwrap()).unwrap();
    SimCloud::open(&path).unwrap()
}

#[tokio::test]
async fn another_process_reads_back_every_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim-world.json");
    let cloud = kept(dir.path());
    every_call(&cloud).await;
    let live = json_of(&cloud.snapshot());
    assert_eq!(live["calls"].as_array().unwrap().len(), 28, "{live:#}");
    assert_eq!(json_of(&SimCloud::load(&path).unwrap()), live);

    // The next process compacts: one snapshot, an empty log, the same world.
    drop(cloud);
    let reopened = SimCloud::open(&path).unwrap();
    assert_eq!(json_of(&reopened.snapshot()), live);
    let on_disk: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(on_disk, live, "the snapshot alone holds the world");
    let log = std::fs::read_to_string(path.with_extension("log")).unwrap();
    assert_eq!(log.lines().count(), 1, "only the header: {log}");
}

#[tokio::test]
async fn the_log_never_holds_a_secret_value() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = kept(dir.path());
    every_call(&cloud).await;
    let log = std::fs::read_to_string(dir.path().join("sim-world.log")).unwrap();
    assert!(log.contains("ssm:PutParameter"));
    assert!(!log.contains("not logged"), "{log}");
}

#[tokio::test]
async fn a_line_cut_short_by_a_kill_is_a_call_that_never_returned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim-world.json");
    let cloud = kept(dir.path());
    cloud
        .set_termination_protection(&t(), "i-1", true)
        .await
        .unwrap();
    let before = json_of(&cloud.snapshot());
    cloud
        .create_tags(&t(), "i-1", &BTreeMap::new())
        .await
        .unwrap();
    let log = path.with_extension("log");
    let full = std::fs::read(&log).unwrap();
    std::fs::write(&log, &full[..full.len() - 7]).unwrap();
    assert_eq!(json_of(&SimCloud::load(&path).unwrap()), before);
}

#[tokio::test]
async fn a_log_that_does_not_follow_the_snapshot_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim-world.json");
    let cloud = kept(dir.path());
    cloud
        .set_termination_protection(&t(), "i-1", true)
        .await
        .unwrap();
    // A person (or a test) puts another world in place; the old log must not be replayed on it.
    let mut other = world();
    other.next_id = 41;
    std::fs::write(&path, serde_json::to_vec_pretty(&other).unwrap()).unwrap();
    assert_eq!(json_of(&SimCloud::load(&path).unwrap()), json_of(&other));
}

#[tokio::test]
async fn a_world_that_is_no_json_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim-world.json");
    std::fs::write(&path, "{not json").unwrap();
    let err = SimCloud::open(&path).err().unwrap().to_string();
    assert!(err.contains("sim-world.json"), "{err}");
}

/// A world file written before OUs were modelled (attachments keyed by account, no `ous`, no
/// member list) loads with its accounts as members under the root, and cordon's calls on it
/// (attach, list, detach by account) work and replay; policies attach to OUs and the root too.
#[tokio::test]
async fn a_world_file_from_before_ous_loads_and_attaches_by_account_and_by_ou() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim-world.json");
    let mut old = json_of(&world());
    let org = old["org"].as_object_mut().unwrap();
    org.remove("ous");
    org.remove("accounts");
    org.insert("scp_enabled".into(), json!(true));
    std::fs::write(&path, serde_json::to_vec(&old).unwrap()).unwrap();

    let cloud = SimCloud::open(&path).unwrap();
    assert_eq!(cloud.list_accounts().await.unwrap(), [ACCOUNT]);
    let p = cloud
        .create_policy("cordon-quarantine", "", "{}")
        .await
        .unwrap();
    cloud.attach_policy(&p.id, ACCOUNT).await.unwrap();
    let attached = cloud.policies_for_account(ACCOUNT).await.unwrap();
    assert_eq!(
        attached.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["cordon-quarantine"]
    );
    cloud.attach_policy(&p.id, "r-sim0").await.unwrap();
    let err = cloud
        .attach_policy(&p.id, "ou-sim0-00000000")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("TargetNotFoundException"), "{err}");
    cloud.detach_policy(&p.id, ACCOUNT).await.unwrap();
    let live = json_of(&cloud.snapshot());
    // The root kept the FullAWSAccess it had, implicitly, before.
    assert_eq!(
        live["org"]["attachments"]["r-sim0"],
        json!([p.id, "p-FullAWSAccess"])
    );
    assert_eq!(live["org"]["accounts"][ACCOUNT]["parent"], "r-sim0");
    drop(cloud);
    assert_eq!(
        json_of(&SimCloud::load(&path).unwrap()),
        live,
        "the log replays"
    );

    // In a world with an OU, the OU is a target like any other.
    let mut w = world();
    w.org.scp_enabled = true;
    let ou = cordon_simulator::org::ou_id("r-sim0", "Workloads", 0);
    w.org.ous.insert(
        ou.clone(),
        cordon_simulator::world::Ou {
            name: "Workloads".into(),
            parent: "r-sim0".into(),
        },
    );
    let cloud = SimCloud::from_world(w);
    let p = cloud.create_policy("guard", "", "{}").await.unwrap();
    cloud.attach_policy(&p.id, &ou).await.unwrap();
    let names = |ps: Vec<cordon_engine::cloud::PolicyInfo>| {
        ps.into_iter().map(|p| p.name).collect::<Vec<_>>()
    };
    let on_ou = names(cloud.policies_for_account(&ou).await.unwrap());
    assert_eq!(on_ou, ["guard", "FullAWSAccess"]);
    cloud.detach_policy(&p.id, &ou).await.unwrap();
    let on_ou = names(cloud.policies_for_account(&ou).await.unwrap());
    assert_eq!(on_ou, ["FullAWSAccess"]);
}
