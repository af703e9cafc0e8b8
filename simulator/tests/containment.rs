//! The containment actions' own logic against the simulated organization, called as the runner
//! calls them (prepare, execute, undo), checking what a responder would: the instance's Auto
//! Scaling group and target groups, the roles' policies, the SCPs, before and after release.

use std::collections::BTreeMap;

use cordon_engine::actions::{self, ActionError, Context, Outcome, Params};
use cordon_engine::cloud::{Cloud, ErrorKind, Target};
use cordon_engine::config::Settings;
use cordon_simulator::world::{Role, ScalingGroup, TargetGroup, World};
use cordon_simulator::SimCloud;
use serde_json::{json, Value};
use std::sync::Arc;

const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";
const VPC: &str = "vpc-0sim";
const WEB_TG: &str = "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/web/1";
const ADMIN_TG: &str = "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/admin/2";

struct Sim {
    sim: Arc<SimCloud>,
    cloud: Cloud,
    settings: Settings,
}

impl Sim {
    fn new(world: World) -> Sim {
        let sim = Arc::new(SimCloud::from_world(world));
        Sim {
            cloud: Cloud::from_one(sim.clone()),
            sim,
            settings: Settings::default(),
        }
    }

    fn ctx(&self) -> Context<'_> {
        Context {
            cloud: &self.cloud,
            settings: &self.settings,
            target: Target {
                account: ACCOUNT.into(),
                region: REGION.into(),
                run_id: "run-1".into(),
            },
            step_key: "run-1/step".into(),
            now_ms: 1_800_000_000_000,
        }
    }

    /// prepare then execute, as the runner does; returns the pre-state and the outcome.
    async fn act(&self, id: &str, params: Value) -> Result<(Value, Outcome), ActionError> {
        let action = actions::find(id).unwrap();
        let params: Params = params.as_object().unwrap().clone();
        let ctx = self.ctx();
        let before = action.prepare(&ctx, &params).await?;
        let outcome = action.execute(&ctx, &params, &before).await?;
        Ok((before, outcome))
    }

    async fn undo(&self, id: &str, before: &Value) -> Value {
        actions::find(id)
            .unwrap()
            .undo(&self.ctx(), before)
            .await
            .unwrap_or_else(|e| panic!("undo {id}: {e}"))
    }

    fn world(&self) -> World {
        self.sim.snapshot()
    }
}

/// An account with instance `i` in group `web` (min, desired, max), the group registering its
/// instances in WEB_TG on port 80, and `i` also registered by hand in ADMIN_TG on port 8080.
fn fleet(min: i32, desired: i32, max: i32) -> (World, String) {
    let mut w = World::default();
    let i = w.launch_instance(ACCOUNT, REGION, VPC);
    let mut members = BTreeMap::from([(i.clone(), "InService".to_string())]);
    for _ in 1..desired {
        members.insert(w.launch_instance(ACCOUNT, REGION, VPC), "InService".into());
    }
    let r = w.account(ACCOUNT).regions.get_mut(REGION).unwrap();
    r.target_groups.insert(
        WEB_TG.into(),
        TargetGroup {
            vpc_id: VPC.into(),
            port: 80,
            targets: members.keys().map(|m| (m.clone(), 80)).collect(),
        },
    );
    r.target_groups.insert(
        ADMIN_TG.into(),
        TargetGroup {
            vpc_id: VPC.into(),
            port: 443,
            targets: vec![(i.clone(), 8080)],
        },
    );
    r.scaling_groups.insert(
        "web".into(),
        ScalingGroup {
            min_size: min,
            max_size: max,
            desired_capacity: desired,
            instances: members,
            target_groups: vec![WEB_TG.into()],
        },
    );
    (w, i)
}

fn group(w: &World) -> &ScalingGroup {
    &w.accounts[ACCOUNT].regions[REGION].scaling_groups["web"]
}

fn targets(w: &World, tg: &str) -> Vec<(String, i32)> {
    w.accounts[ACCOUNT].regions[REGION].target_groups[tg]
        .targets
        .clone()
}

fn registered(w: &World, i: &str) -> Vec<(&'static str, i32)> {
    let mut out = Vec::new();
    for tg in [WEB_TG, ADMIN_TG] {
        for (id, port) in targets(w, tg) {
            if id == i {
                out.push((tg, port));
            }
        }
    }
    out
}

#[tokio::test]
async fn isolation_detaches_and_deregisters_and_release_puts_the_instance_back() {
    let (w, i) = fleet(0, 2, 3);
    let s = Sim::new(w);
    let instances_before = s.world().accounts[ACCOUNT].regions[REGION].instances.len();
    let (before, outcome) = s
        .act("ec2.isolate_instance", json!({"instance": i}))
        .await
        .unwrap();

    let w = s.world();
    let g = group(&w);
    assert!(!g.instances.contains_key(&i), "detached: {g:?}");
    assert_eq!(g.desired_capacity, 1, "desired capacity lowered");
    assert_eq!(g.instances.len(), 1, "no replacement launched");
    assert_eq!(
        w.accounts[ACCOUNT].regions[REGION].instances.len(),
        instances_before
    );
    assert!(registered(&w, &i).is_empty(), "{:?}", registered(&w, &i));
    assert_eq!(
        outcome.output["auto_scaling"]["replacement_launched"],
        false
    );
    assert_eq!(outcome.proof["service"]["target_registrations"], 0);
    // Out of service before the security groups changed: the group never saw it unhealthy.
    let calls = &w.calls;
    let detach = calls
        .iter()
        .position(|c| c.starts_with("autoscaling:DetachInstances"));
    let swap = calls
        .iter()
        .position(|c| c.starts_with("ec2:ModifyNetworkInterfaceAttribute"));
    assert!(detach.unwrap() < swap.unwrap(), "{calls:?}");

    let released = s.undo("ec2.isolate_instance", &before).await;
    let w = s.world();
    let g = group(&w);
    assert_eq!(g.instances.get(&i).map(String::as_str), Some("InService"));
    assert_eq!(g.desired_capacity, 2, "desired capacity as before");
    let mut back = registered(&w, &i);
    back.sort();
    let mut want = vec![(WEB_TG, 80), (ADMIN_TG, 8080)];
    want.sort();
    assert_eq!(back, want, "the same target groups on the same ports");
    assert_eq!(released["service"]["auto_scaling"]["attached"], true);
}

#[tokio::test]
async fn a_group_at_its_minimum_replaces_the_instance_and_release_attaches_it_beside() {
    let (w, i) = fleet(1, 1, 3);
    let s = Sim::new(w);
    let (before, outcome) = s
        .act("ec2.isolate_instance", json!({"instance": i}))
        .await
        .unwrap();
    let w = s.world();
    let g = group(&w);
    assert_eq!(g.desired_capacity, 1, "at its minimum: not decremented");
    assert_eq!(g.instances.len(), 1);
    assert!(!g.instances.contains_key(&i));
    let replacement = g.instances.keys().next().unwrap().clone();
    assert_eq!(targets(&w, WEB_TG), vec![(replacement.clone(), 80)]);
    assert_eq!(outcome.output["auto_scaling"]["replacement_launched"], true);
    let note = outcome.output["auto_scaling"]["note"].as_str().unwrap();
    assert!(note.contains("at its minimum (1)"), "{note}");

    s.undo("ec2.isolate_instance", &before).await;
    let w = s.world();
    let g = group(&w);
    assert!(g.instances.contains_key(&i) && g.instances.contains_key(&replacement));
    assert_eq!(g.desired_capacity, 2);
}

#[tokio::test]
async fn a_full_group_at_release_leaves_the_instance_detached_and_says_so() {
    let (w, i) = fleet(1, 1, 1);
    let s = Sim::new(w);
    let (before, _) = s
        .act("ec2.isolate_instance", json!({"instance": i}))
        .await
        .unwrap();
    let released = s.undo("ec2.isolate_instance", &before).await;
    let w = s.world();
    assert!(!group(&w).instances.contains_key(&i));
    let a = &released["service"]["auto_scaling"];
    assert_eq!(a["attached"], false, "{released}");
    assert!(
        a["note"].as_str().unwrap().contains("at its maximum (1)"),
        "{released}"
    );
    // The rest of the release happened: network and target groups.
    let interfaces = &w.accounts[ACCOUNT].regions[REGION].instances[&i].interfaces;
    assert!(interfaces
        .values()
        .all(|g| g.len() == 1 && !g[0].is_empty()));
    assert_eq!(registered(&w, &i).len(), 2);
}

#[tokio::test]
async fn a_standby_instance_goes_back_to_standby() {
    let (mut w, i) = fleet(0, 2, 3);
    let r = w.account(ACCOUNT).regions.get_mut(REGION).unwrap();
    let g = r.scaling_groups.get_mut("web").unwrap();
    g.instances.insert(i.clone(), "Standby".into());
    g.desired_capacity = 1;
    r.target_groups
        .get_mut(WEB_TG)
        .unwrap()
        .targets
        .retain(|(t, _)| t != &i);
    let s = Sim::new(w);
    let (before, _) = s
        .act("ec2.isolate_instance", json!({"instance": i}))
        .await
        .unwrap();
    let w = s.world();
    assert!(!group(&w).instances.contains_key(&i));
    assert_eq!(group(&w).desired_capacity, 1, "nothing else terminated");
    s.undo("ec2.isolate_instance", &before).await;
    let w = s.world();
    assert_eq!(group(&w).instances[&i], "Standby");
    assert_eq!(group(&w).desired_capacity, 1);
}

#[tokio::test]
async fn an_instance_in_no_group_and_no_target_group_isolates_as_before() {
    let mut w = World::default();
    let i = w.launch_instance(ACCOUNT, REGION, VPC);
    let s = Sim::new(w);
    let (before, outcome) = s
        .act("ec2.isolate_instance", json!({"instance": i}))
        .await
        .unwrap();
    assert_eq!(outcome.output["auto_scaling"], Value::Null);
    assert_eq!(outcome.output["deregistered"], json!([]));
    s.undo("ec2.isolate_instance", &before).await;
    // A record written before this change (no `service` field) still releases.
    let mut old = before.clone();
    old.as_object_mut().unwrap().remove("service");
    s.undo("ec2.isolate_instance", &old).await;
}

fn with_role(path: &str) -> World {
    let mut w = World::default();
    w.account(ACCOUNT).roles.insert(
        "target".into(),
        Role {
            path: path.into(),
            ..Role::default()
        },
    );
    w
}

#[tokio::test]
async fn roles_aws_will_not_let_anyone_edit_are_refused_with_where_to_revoke() {
    for (path, says) in [
        (
            "/aws-reserved/sso.amazonaws.com/eu-west-1/",
            "IAM Identity Center permission set",
        ),
        (
            "/aws-service-role/elasticloadbalancing.amazonaws.com/",
            "service-linked role: only its service (elasticloadbalancing.amazonaws.com)",
        ),
    ] {
        let s = Sim::new(with_role(path));
        let err = s
            .act("iam.revoke_role_sessions", json!({"role": "target"}))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "refused", "{err}");
        assert!(!err.is_retryable());
        assert!(err.to_string().contains(says), "{err}");
        let w = s.world();
        assert!(w.calls.is_empty(), "nothing changed: {:?}", w.calls);
        assert!(w.accounts[ACCOUNT].roles["target"].inline.is_empty());
    }
    // An ordinary role under a custom path is revoked as before.
    let s = Sim::new(with_role("/app/"));
    s.act("iam.revoke_role_sessions", json!({"role": "target"}))
        .await
        .unwrap();
    assert!(s.world().accounts[ACCOUNT].roles["target"]
        .inline
        .contains_key("AWSRevokeOlderSessions"));
}

#[tokio::test]
async fn a_quarantine_with_no_break_glass_role_is_refused_before_any_call() {
    let mut s = Sim::new(World::default());
    s.settings.break_glass_roles.clear();
    // Any call would fail with this instead of the refusal.
    s.sim
        .fail_next("organizations:DescribeOrganization", ErrorKind::Fatal, 1);
    s.sim
        .fail_next("organizations:ListPoliciesForTarget", ErrorKind::Fatal, 1);
    let err = s.act("org.attach_deny_scp", json!({})).await.unwrap_err();
    assert_eq!(err.kind(), "refused", "{err}");
    assert!(
        err.to_string()
            .contains("settings.break_glass_roles is empty"),
        "{err}"
    );
    assert!(s.world().calls.is_empty());
}

#[tokio::test]
async fn a_quarantine_scp_over_the_quota_is_refused_naming_size_and_quota() {
    let mut s = Sim::new(World::default());
    s.settings.scp_size_quota = 100;
    s.sim
        .fail_next("organizations:DescribeOrganization", ErrorKind::Fatal, 1);
    let err = s.act("org.attach_deny_scp", json!({})).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("over the SCP size quota of 100 bytes"),
        "{err}"
    );
    assert!(s.world().org.policies.len() == 1, "only FullAWSAccess");
}

#[tokio::test]
async fn notify_chat_says_posted_and_proves_nothing() {
    let s = Sim::new(World::default());
    let (_, outcome) = s
        .act("notify.chat", json!({"text": "hello"}))
        .await
        .unwrap();
    assert_eq!(outcome.output["delivery"], "posted");
    assert_eq!(outcome.proof, Value::Null);
}
