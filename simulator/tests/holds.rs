//! Several runs containing one resource (shared/cases row 5), through the runner against the
//! simulated organization: releasing one run never undoes a containment another live run still
//! holds, and the last holder's release restores the state before the first containment.

use std::sync::Arc;

use cordon_engine::clock::SystemClock;
use cordon_engine::cloud::{Cloud, ErrorKind, Target};
use cordon_engine::config::Settings;
use cordon_engine::event::{self, FindingEvent};
use cordon_engine::journal::{Admission, MemoryJournal};
use cordon_engine::playbook::PlaybookSet;
use cordon_engine::run::{ReleaseState, Run, RunState, Trigger};
use cordon_engine::runner::Runner;
use cordon_engine::script::{Limits, Sandbox};
use cordon_simulator::world::Instance;
use cordon_simulator::SimCloud;

const EVENT: &[u8] = include_bytes!("../../tests/fixtures/events/aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json");

const ISOLATE: &str = "id: isolate\ntitle: t\nversion: 1\nmode: auto\ntrigger:\n  match: {source: [aws.guardduty]}\nsteps:\n  - id: isolate\n    action: ec2.isolate_instance\n    with:\n      instance: ${finding.resources[0].id}\n  - id: tell\n    action: notify.chat\n    with: {text: done}\n";

const FENCE: &str = "id: fence\ntitle: t\nversion: 1\nmode: manual\nsteps:\n  - id: fence\n    action: org.attach_deny_scp\n";

struct Fixture {
    runner: Runner,
    sim: Arc<SimCloud>,
    base: FindingEvent,
}

fn fixture(playbook: &str) -> Fixture {
    let sandbox = Arc::new(Sandbox::new(Limits::default()));
    let set = PlaybookSet::from_sources(&[("p.yaml", playbook)], &sandbox)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let sim = Arc::new(SimCloud::in_memory());
    let base = event::parse(EVENT).unwrap().findings()[0].clone();
    sim.seed(&base.finding).unwrap();
    let runner = Runner::new(
        Arc::new(MemoryJournal::new()),
        Cloud::from_one(sim.clone()),
        Settings::default(),
        sandbox,
        Arc::new(set),
        Arc::new(SystemClock),
    );
    Fixture { runner, sim, base }
}

impl Fixture {
    /// Another finding on the same instance (GuardDuty raises one per finding type).
    fn finding(&self, n: usize) -> FindingEvent {
        let mut fe = self.base.clone();
        fe.finding.id = format!("finding-{n}");
        fe.finding.dedup_id = fe.finding.id.clone();
        fe
    }

    /// Submits finding `n` and drives its run to the end.
    async fn contain(&self, n: usize) -> String {
        let s = self.runner.submit(&self.finding(n)).await.unwrap();
        let id = s[0].run_id.clone().unwrap();
        assert_eq!(self.runner.drive(&id).await.unwrap(), RunState::Succeeded);
        id
    }

    async fn run(&self, id: &str) -> Run {
        self.runner.journal().get(id).await.unwrap().unwrap()
    }

    fn instance(&self) -> Instance {
        let f = &self.base.finding;
        let w = self.sim.snapshot();
        w.accounts[&f.account].regions[&f.region].instances[&f.resources[0].id].clone()
    }

    fn isolation_group(&self) -> String {
        let f = &self.base.finding;
        let w = self.sim.snapshot();
        let groups = &w.accounts[&f.account].regions[&f.region].groups;
        let (id, _) = groups
            .iter()
            .find(|(_, g)| g.name == "cordon-isolation")
            .unwrap();
        id.clone()
    }
}

/// The instance holds only the isolation group on every interface.
fn isolated(f: &Fixture) -> bool {
    let sg = f.isolation_group();
    f.instance()
        .interfaces
        .values()
        .all(|g| g == std::slice::from_ref(&sg))
}

#[tokio::test]
async fn releasing_one_of_two_runs_keeps_the_instance_isolated_until_the_last() {
    let f = fixture(ISOLATE);
    let before = f.instance();
    let a = f.contain(1).await;
    let b = f.contain(2).await;
    assert!(isolated(&f));

    assert_eq!(
        f.runner.release(&a, "alice").await.unwrap(),
        RunState::Released
    );
    assert!(isolated(&f), "run {b} still holds the instance");
    let run_a = f.run(&a).await;
    let step = run_a.step("isolate").unwrap();
    assert_eq!(step.release, Some(ReleaseState::Held));
    let detail = step.release_detail.as_ref().unwrap();
    assert_eq!(detail["held_by"], serde_json::json!([b]));
    assert_eq!(
        detail["message"],
        format!("still held by run {b}: left contained until the last run holding it is released")
    );
    assert!(f.instance().termination_protection);

    assert_eq!(
        f.runner.release(&b, "alice").await.unwrap(),
        RunState::Released
    );
    let after = f.instance();
    assert_eq!(
        after.interfaces, before.interfaces,
        "the groups before the first isolation"
    );
    assert_eq!(after.tags, before.tags, "no tag of either run is left");
    assert_eq!(after.termination_protection, before.termination_protection);
    let step_a = f.run(&a).await.step("isolate").unwrap().clone();
    assert_eq!(step_a.release, Some(ReleaseState::Done));
    assert_eq!(step_a.release_detail.unwrap()["undone_by"], b.as_str());
    let step_b = f.run(&b).await.step("isolate").unwrap().clone();
    assert_eq!(step_b.release, Some(ReleaseState::Done));
    assert_eq!(
        step_b.release_detail.unwrap()["also_undone_for"],
        serde_json::json!([a])
    );
}

#[tokio::test]
async fn the_newest_run_released_first_restores_nothing_and_the_oldest_restores_all() {
    let f = fixture(ISOLATE);
    let before = f.instance();
    let a = f.contain(1).await;
    let b = f.contain(2).await;
    let c = f.contain(3).await;
    f.runner.release(&b, "bob").await.unwrap();
    assert!(isolated(&f));
    f.runner.release(&c, "bob").await.unwrap();
    assert!(isolated(&f), "run {a} still holds it");
    assert_eq!(
        f.run(&c)
            .await
            .step("isolate")
            .unwrap()
            .release_detail
            .as_ref()
            .unwrap()["held_by"],
        serde_json::json!([a])
    );
    f.runner.release(&a, "bob").await.unwrap();
    let after = f.instance();
    assert_eq!(after.interfaces, before.interfaces);
    assert_eq!(after.tags, before.tags);
    assert_eq!(after.termination_protection, before.termination_protection);
    for id in [&a, &b, &c] {
        let run = f.run(id).await;
        assert_eq!(run.state, RunState::Released);
        assert_eq!(
            run.step("isolate").unwrap().release,
            Some(ReleaseState::Done)
        );
    }
}

#[tokio::test]
async fn a_run_released_after_the_others_are_gone_restores_its_own_pre_state() {
    let f = fixture(ISOLATE);
    let a = f.contain(1).await;
    f.runner.release(&a, "carol").await.unwrap();
    // The owner then moves the instance to a group of its own: a later containment must
    // restore that, not what the earlier, fully released run recorded.
    let fnd = &f.base.finding;
    let t = Target {
        account: fnd.account.clone(),
        region: fnd.region.clone(),
        run_id: "owner".into(),
    };
    let ec2 = Cloud::from_one(f.sim.clone()).ec2;
    let instance = &fnd.resources[0].id;
    let info = ec2.describe_instance(&t, instance).await.unwrap().unwrap();
    let web = ec2
        .create_security_group(&t, &info.vpc_id, "web", "the owner's")
        .await
        .unwrap();
    for eni in &info.interfaces {
        ec2.set_interface_groups(&t, instance, &eni.as_ref(), std::slice::from_ref(&web))
            .await
            .unwrap();
    }
    let owners = f.instance();
    assert!(owners
        .interfaces
        .values()
        .all(|g| g == std::slice::from_ref(&web)));

    let b = f.contain(2).await;
    assert!(isolated(&f));
    f.runner.release(&b, "carol").await.unwrap();
    assert_eq!(
        f.instance().interfaces,
        owners.interfaces,
        "the owner's groups, not the first run's"
    );
    let step = f.run(&a).await.step("isolate").unwrap().clone();
    assert_eq!(
        step.release,
        Some(ReleaseState::Done),
        "run {a} was undone on its own"
    );
}

#[tokio::test]
async fn a_run_that_never_reached_containment_holds_nothing() {
    let f = fixture(&ISOLATE.replace(
        "steps:\n",
        "steps:\n  - id: skip\n    action: notify.chat\n    when: finding.id == \"finding-2\"\n    with: {text: x}\n",
    ));
    let before = f.instance();
    let a = f.contain(1).await;
    // A manual run of the same playbook on another finding, released before it started.
    let pb = f.runner.playbooks().get("isolate").cloned().unwrap();
    let s = f
        .runner
        .create_run(
            &pb,
            &f.finding(3),
            Trigger::Manual { by: "dave".into() },
            Admission::Deliver,
        )
        .await
        .unwrap();
    let pending = s.run_id.unwrap();
    assert_eq!(f.run(&pending).await.state, RunState::Pending);
    f.runner.release(&a, "dave").await.unwrap();
    assert_eq!(
        f.instance().interfaces,
        before.interfaces,
        "a pending run holds nothing"
    );
}

#[tokio::test]
async fn a_second_fence_on_one_account_keeps_the_scp_until_both_are_released() {
    let f = fixture(FENCE);
    let account = f.base.finding.account.clone();
    let attached = |f: &Fixture| {
        let w = f.sim.snapshot();
        w.org.attachments[&account]
            .iter()
            .any(|p| w.org.policies[p].0 == "cordon-quarantine")
    };
    let pb = f.runner.playbooks().get("fence").cloned().unwrap();
    let mut ids = Vec::new();
    for n in 1..=2 {
        let s = f
            .runner
            .create_run(
                &pb,
                &f.finding(n),
                Trigger::Manual { by: "erin".into() },
                Admission::Deliver,
            )
            .await
            .unwrap();
        let id = s.run_id.unwrap();
        assert_eq!(f.runner.drive(&id).await.unwrap(), RunState::Succeeded);
        ids.push(id);
    }
    assert!(attached(&f));
    let second = f.run(&ids[1]).await;
    assert!(
        !second.step("fence").unwrap().undoable,
        "already attached by the first"
    );

    f.runner.release(&ids[0], "frank").await.unwrap();
    assert!(attached(&f), "the second fence still holds the account");
    f.runner.release(&ids[1], "frank").await.unwrap();
    assert!(!attached(&f), "the last release lifts the quarantine");
}

#[tokio::test]
async fn two_runs_containing_one_instance_at_once_take_turns_and_release_cleanly() {
    let f = fixture(ISOLATE);
    let before = f.instance();
    let mut ids = Vec::new();
    for n in 1..=2 {
        let s = f.runner.submit(&f.finding(n)).await.unwrap();
        ids.push(s[0].run_id.clone().unwrap());
    }
    let (x, y) = tokio::join!(f.runner.drive(&ids[0]), f.runner.drive(&ids[1]));
    assert_eq!(
        (x.unwrap(), y.unwrap()),
        (RunState::Succeeded, RunState::Succeeded)
    );
    let started = |run: Run| run.step("isolate").unwrap().started_ms.unwrap();
    assert_ne!(
        started(f.run(&ids[0]).await),
        started(f.run(&ids[1]).await),
        "one containment of a resource at a time"
    );
    f.runner.release(&ids[1], "gina").await.unwrap();
    assert!(isolated(&f));
    f.runner.release(&ids[0], "gina").await.unwrap();
    let after = f.instance();
    assert_eq!(after.interfaces, before.interfaces);
    assert_eq!(after.tags, before.tags);
}

#[tokio::test]
async fn a_failed_undo_of_the_last_holder_is_retried_by_releasing_again() {
    let f = fixture(ISOLATE);
    let before = f.instance();
    let a = f.contain(1).await;
    let b = f.contain(2).await;
    f.runner.release(&a, "hal").await.unwrap();
    f.sim
        .fail_next("ec2:ModifyNetworkInterfaceAttribute", ErrorKind::Denied, 1);
    assert_eq!(
        f.runner.release(&b, "hal").await.unwrap(),
        RunState::ReleaseFailed
    );
    assert!(isolated(&f), "nothing undone yet");
    assert_eq!(
        f.run(&a).await.step("isolate").unwrap().release,
        Some(ReleaseState::Held),
        "still waiting for run {b}"
    );
    assert_eq!(
        f.runner.release(&b, "hal").await.unwrap(),
        RunState::Released
    );
    let after = f.instance();
    assert_eq!(after.interfaces, before.interfaces);
    assert_eq!(after.tags, before.tags);
    assert_eq!(
        f.run(&a).await.step("isolate").unwrap().release,
        Some(ReleaseState::Done)
    );
}

/// The holders of a resource come from an index built at the first release; a run that
/// contains the resource after that must be found as well.
#[tokio::test]
async fn a_holder_that_came_after_the_first_release_still_keeps_the_instance_isolated() {
    let f = fixture(ISOLATE);
    let before = f.instance();
    let a = f.contain(1).await;
    let b = f.contain(2).await;
    f.runner.release(&a, "alice").await.unwrap();
    let c = f.contain(3).await;
    assert_eq!(
        f.runner.release(&b, "alice").await.unwrap(),
        RunState::Released
    );
    assert!(
        isolated(&f),
        "run {c}, contained after the first release, holds the instance"
    );
    let step_b = f.run(&b).await.step("isolate").unwrap().clone();
    assert_eq!(
        step_b.release_detail.unwrap()["held_by"],
        serde_json::json!([c])
    );
    f.runner.release(&c, "alice").await.unwrap();
    assert_eq!(f.instance().interfaces, before.interfaces);
}
