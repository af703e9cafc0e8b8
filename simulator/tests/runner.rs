//! The runner against the simulated cloud with injected faults: what is retried, what is not,
//! and a script over its budget failing its step without harming the process.

use std::sync::Arc;

use cordon_engine::clock::SystemClock;
use cordon_engine::cloud::{Cloud, ErrorKind};
use cordon_engine::config::Settings;
use cordon_engine::event::{self, FindingEvent};
use cordon_engine::journal::SledJournal;
use cordon_engine::playbook::PlaybookSet;
use cordon_engine::run::{RunState, StepState};
use cordon_engine::runner::Runner;
use cordon_engine::script::{Limits, Sandbox};
use cordon_simulator::SimCloud;

const EVENT: &[u8] = include_bytes!("../../tests/fixtures/events/aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json");

struct Fixture {
    runner: Runner,
    sim: Arc<SimCloud>,
    fe: FindingEvent,
    _dir: tempfile::TempDir,
}

fn fixture(playbook: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Arc::new(Sandbox::new(Limits::default()));
    let set = PlaybookSet::from_sources(&[("test.yaml", playbook)], &sandbox)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let sim = Arc::new(SimCloud::in_memory());
    let fe = event::parse(EVENT)
        .unwrap()
        .findings()
        .first()
        .cloned()
        .unwrap();
    sim.seed(&fe.finding).unwrap();
    let runner = Runner::new(
        Arc::new(SledJournal::open(dir.path()).unwrap()),
        Cloud::from_one(sim.clone()),
        Settings::default(),
        sandbox,
        Arc::new(set),
        Arc::new(SystemClock),
    );
    Fixture {
        runner,
        sim,
        fe,
        _dir: dir,
    }
}

fn one_step(action: &str, with: &str, extra: &str) -> String {
    format!(
        "id: t\ntitle: t\nversion: 1\nmode: auto\ntrigger:\n  match: {{source: [aws.guardduty]}}\nsteps:\n  - id: s\n    action: {action}\n    retry: {{attempts: 3, backoff: 10ms}}\n{extra}    with: {with}\n"
    )
}

async fn run_once(f: &Fixture) -> (RunState, cordon_engine::run::Run) {
    let submitted = f.runner.submit(&f.fe).await.unwrap();
    let id = submitted[0].run_id.clone().unwrap();
    let state = f.runner.drive(&id).await.unwrap();
    (state, f.runner.journal().get(&id).await.unwrap().unwrap())
}

#[tokio::test]
async fn throttling_is_retried_until_it_passes() {
    let f = fixture(&one_step(
        "ec2.snapshot_volumes",
        "{instance: i-0961e0b3af8b3ec39}",
        "",
    ));
    f.sim
        .fail_next("ec2:CreateSnapshot", ErrorKind::Throttled, 2);
    let (state, run) = run_once(&f).await;
    assert_eq!(state, RunState::Succeeded);
    assert_eq!(run.steps[0].attempt, 3);
    assert_eq!(
        f.sim
            .snapshot()
            .calls
            .iter()
            .filter(|c| c.starts_with("ec2:CreateSnapshot"))
            .count(),
        1
    );
}

/// A step's `when` and templates see the run as it is, each variable only as far as they read
/// it: the event, the finding, vars, an earlier step's output and the run's own fields.
#[tokio::test]
async fn a_step_sees_every_variable_it_reads() {
    let playbook = "id: t\ntitle: t\nversion: 1\nmode: auto\ntrigger:\n  match: {source: [aws.guardduty]}\nvars:\n  channel: \"#ir\"\n  unused: {deep: [1, 2]}\nsteps:\n  - id: snap\n    action: ec2.snapshot_volumes\n    with: {instance: i-0961e0b3af8b3ec39}\n  - id: tell\n    action: notify.chat\n    when: event.detail.severity > 1 && run.region == \"us-east-1\" && steps.snap.state == \"succeeded\"\n    with:\n      text: \"${vars.channel} ${run.account} ${finding.resources.filter(|r| r.type == \\\"Instance\\\")[0].id} ${event[\\\"detail-type\\\"]} ${steps.snap.output.instance} ${steps[\\\"snap\\\"].output.snapshots.len()}\"\n";
    let f = fixture(playbook);
    let (state, run) = run_once(&f).await;
    assert_eq!(state, RunState::Succeeded, "{:?}", run.steps);
    assert_eq!(
        run.steps[1].state,
        StepState::Succeeded,
        "{:?}",
        run.steps[1]
    );
    let snapshots = run.steps[0].output.as_ref().unwrap()["snapshots"]
        .as_object()
        .unwrap()
        .len();
    assert_eq!(
        run.steps[1].params.as_ref().unwrap()["text"],
        format!(
            "#ir {} i-0961e0b3af8b3ec39 GuardDuty Finding i-0961e0b3af8b3ec39 {snapshots}",
            run.account
        )
    );
}

/// An undoable step journals its start together with its pre-state (one flush before its first
/// change); a step with nothing to undo is journaled as started before its call, alone. The
/// last step's record also ends the run: the timeline is the run's creation, then the step's.
#[tokio::test]
async fn an_undoable_step_journals_its_start_with_its_pre_state() {
    for (action, expected) in [
        (
            "ec2.isolate_instance",
            vec![
                "started ec2.isolate_instance (attempt 1); pre-state recorded",
                "succeeded; state read back; run succeeded",
            ],
        ),
        (
            "ec2.snapshot_volumes",
            vec![
                "started ec2.snapshot_volumes (attempt 1)",
                "succeeded; state read back; run succeeded",
            ],
        ),
    ] {
        let f = fixture(&one_step(action, "{instance: i-0961e0b3af8b3ec39}", ""));
        let (state, run) = run_once(&f).await;
        assert_eq!(state, RunState::Succeeded, "{action}: {:?}", run.steps[0]);
        let timeline = f.runner.journal().timeline(&run.id).await.unwrap();
        let step: Vec<&str> = timeline
            .iter()
            .filter(|e| e.step.as_deref() == Some("s"))
            .map(|e| e.what.as_str())
            .collect();
        assert_eq!(step, expected, "{action}");
        assert_eq!(timeline.len(), 1 + expected.len(), "{timeline:?}");
        assert_eq!(timeline.last().unwrap().state, "succeeded", "{timeline:?}");
    }
}

/// A process killed after a step was journaled as started, but before its action recorded a
/// pre-state (so before any change), resumes the step as the same attempt: the crash spends no
/// retry, and the run shows the step ran once. One killed after the pre-state counts a new
/// attempt, since the change may have been made.
#[tokio::test]
async fn a_step_interrupted_before_it_changed_anything_resumes_as_the_same_attempt() {
    let playbook = one_step(
        "ec2.isolate_instance",
        "{instance: i-0961e0b3af8b3ec39}",
        "",
    );
    // The pre-state and parameters the step journals, from an uninterrupted run of the same
    // playbook on the same simulated world.
    let whole = run_once(&fixture(&playbook)).await.1.steps.remove(0);
    for (pre_state, attempt) in [(false, 1), (true, 2)] {
        let f = fixture(&playbook);
        let submitted = f.runner.submit(&f.fe).await.unwrap();
        let id = submitted[0].run_id.clone().unwrap();
        // What a kill -9 leaves: the step started (attempt 1), no call made.
        let mut run = f.runner.journal().get(&id).await.unwrap().unwrap();
        run.state = RunState::Running;
        run.steps[0].state = StepState::Started;
        run.steps[0].attempt = 1;
        run.steps[0].params = whole.params.clone();
        if pre_state {
            run.steps[0].prepared = whole.prepared.clone();
        }
        let entry = cordon_engine::journal::Entry {
            at_ms: 0,
            state: "running".into(),
            step: Some("s".into()),
            what: "started ec2.isolate_instance (attempt 1)".into(),
        };
        f.runner.journal().update(&run, &entry).await.unwrap();

        let state = f.runner.drive(&id).await.unwrap();
        let run = f.runner.journal().get(&id).await.unwrap().unwrap();
        assert_eq!(state, RunState::Succeeded, "{:?}", run.steps[0]);
        assert_eq!(
            run.steps[0].attempt, attempt,
            "pre-state journaled: {pre_state}"
        );
        if !pre_state {
            let calls = f.sim.snapshot().calls;
            let isolations = calls
                .iter()
                .filter(|c| c.starts_with("ec2:ModifyNetworkInterfaceAttribute"))
                .count();
            assert_eq!(isolations, 2, "allow-all, then isolation: {calls:?}");
        }
    }
}

#[tokio::test]
async fn access_denied_is_not_retried_and_fails_the_run_with_the_reason() {
    let f = fixture(&one_step(
        "ec2.snapshot_volumes",
        "{instance: i-0961e0b3af8b3ec39}",
        "",
    ));
    f.sim.fail_next("ec2:CreateSnapshot", ErrorKind::Denied, 5);
    let (state, run) = run_once(&f).await;
    assert_eq!(state, RunState::Failed);
    assert_eq!(run.steps[0].attempt, 1);
    assert!(
        run.steps[0].error.as_deref().unwrap().contains("(denied)"),
        "{:?}",
        run.steps[0].error
    );
}

#[tokio::test]
async fn a_non_idempotent_action_is_not_retried_after_a_5xx() {
    // A 5xx may come after the message went out: posting again could double it. Throttling is
    // different: the request was refused before doing anything.
    let f = fixture(&one_step("notify.chat", "{text: hi}", ""));
    f.sim.fail_next("chat:post", ErrorKind::Retryable, 1);
    let (state, run) = run_once(&f).await;
    assert_eq!(state, RunState::Failed);
    assert_eq!(run.steps[0].attempt, 1);

    let g = fixture(&one_step("notify.chat", "{text: hi}", ""));
    g.sim.fail_next("chat:post", ErrorKind::Throttled, 1);
    let (state, run) = run_once(&g).await;
    assert_eq!(state, RunState::Succeeded);
    assert_eq!(run.steps[0].attempt, 2);
    assert_eq!(g.sim.snapshot().chat.len(), 1);
}

#[tokio::test]
async fn a_script_over_budget_fails_its_step_not_the_process() {
    let hostile = r#"{text: "${ let s = 0; loop { s += 1; } }"}"#;
    let f = fixture(&one_step(
        "notify.chat",
        hostile,
        "    on_error: continue\n",
    ));
    let started = std::time::Instant::now();
    let (state, run) = run_once(&f).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the budget stops the script"
    );
    assert_eq!(state, RunState::Succeeded, "on_error: continue");
    assert_eq!(run.steps[0].state, StepState::Failed);
    let err = run.steps[0].error.as_deref().unwrap();
    assert!(
        err.contains("parameter `text`") && err.contains("operations"),
        "{err}"
    );
    assert!(f.sim.snapshot().chat.is_empty());
}

#[tokio::test]
async fn finding_fields_are_data_not_code() {
    // A finding field holding template and Rhai syntax is inserted as text.
    let f = fixture(&one_step(
        "notify.chat",
        r#"{text: "title: ${finding.title}"}"#,
        "",
    ));
    let mut fe = f.fe.clone();
    fe.finding.title = "${run.id} \" + eval(\"1\") + \"".into();
    fe.finding.dedup_id = "data-not-code".into();
    let submitted = f.runner.submit(&fe).await.unwrap();
    let id = submitted[0].run_id.clone().unwrap();
    assert_eq!(f.runner.drive(&id).await.unwrap(), RunState::Succeeded);
    assert_eq!(
        f.sim.snapshot().chat,
        vec!["title: ${run.id} \" + eval(\"1\") + \"".to_string()]
    );
}
