//! Drills at library level: the shipped drills pass against the shipped playbooks, the report is
//! byte-identical for one scenario and seed, a missed expectation is named, scenario errors name
//! file, line and field, and intake refuses a finding a drill injected.

use std::path::{Path, PathBuf};

use cordon_simulator::drill;

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../playbooks/drills")
        .join(name)
}

fn run(path: &Path) -> drill::Report {
    let loaded = drill::load(path).unwrap_or_else(|e| panic!("{e}"));
    drill::run(&loaded, 7).unwrap_or_else(|e| panic!("{e}"))
}

fn assert_passes(name: &str) -> drill::Report {
    let report = run(&shipped(name));
    assert!(report.passed, "{}", report.markdown());
    report
}

#[test]
fn the_c2_instance_drill_isolates_the_instance_and_restores_the_world() {
    let report = assert_passes("c2-instance.yaml");
    let f = &report.findings[0];
    assert_eq!(f.time_to_containment.as_deref(), Some("1.800s"), "{f:?}");
    assert_eq!(f.time_to_first_action.as_deref(), Some("0s"), "{f:?}");
    let released = report.expectations.last().unwrap();
    assert!(released.expectation.starts_with("released"));
    assert!(released.met, "{released:?}");
    assert!(report
        .timeline
        .iter()
        .any(|l| l.line.event == "ec2.isolate_instance" && l.line.outcome == "succeeded"));
}

#[test]
fn the_access_key_drill_deactivates_the_key_then_disables_the_user_on_approval() {
    let report = assert_passes("access-key-outside-aws.yaml");
    let approve = report
        .timeline
        .iter()
        .find(|l| l.line.event == "approve")
        .unwrap();
    assert_eq!(
        (approve.at.as_str(), approve.line.actor.as_str()),
        ("T+11m00s", "alice")
    );
}

#[test]
fn the_fence_drill_attaches_the_deny_scp_after_a_second_person_approves() {
    let report = assert_passes("fence-member-account.yaml");
    // The responder who started the run by hand is named.
    let started = report
        .timeline
        .iter()
        .find(|l| l.line.event == "finding injected")
        .unwrap();
    assert_eq!(started.line.actor, "bob");
    let f = &report.findings[0];
    assert_eq!(f.time_to_containment.as_deref(), Some("7m00.400s"), "{f:?}");
    // The guardrails the scenario put on its OUs are in the organization before and after.
    let guard = report
        .expectations
        .iter()
        .find(|e| e.expectation.contains("attacker_denied leave-org"))
        .unwrap();
    assert!(
        guard.met && guard.evidence.contains("on OU Workloads ("),
        "{guard:?}"
    );
}

#[test]
fn one_scenario_and_seed_give_byte_identical_reports() {
    let path = shipped("access-key-outside-aws.yaml");
    let (a, b) = (run(&path), run(&path));
    assert_eq!(a.markdown(), b.markdown());
    assert_eq!(a.json(), b.json());
    assert_eq!(a.junit(), b.junit());
}

fn scenario(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_missed_expectation_is_named_with_its_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(shipped("access-key-outside-aws.yaml"))
        .unwrap()
        .replace(
            "../../tests/",
            &format!("{}/../tests/", env!("CARGO_MANIFEST_DIR")),
        )
        .replace("at: 11m", "at: 20m");
    let path = scenario(dir.path(), "late.yaml", &text);
    let loaded = drill::load(&path).unwrap();
    let mut loaded = loaded;
    loaded.playbooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../playbooks");
    let report = drill::run(&loaded, 7).unwrap();
    assert!(!report.passed);
    let missed: Vec<_> = report
        .missed()
        .iter()
        .map(|e| e.expectation.clone())
        .collect();
    assert!(
        missed.contains(&"expect[6] user_disabled ci-deployer".to_string()),
        "{missed:?}"
    );
    assert!(report
        .markdown()
        .contains("| MISSED | expect\\[6\\] user\\_disabled ci-deployer"));
}

#[test]
fn scenario_errors_name_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(
        dir.path(),
        "bad.yaml",
        "name: x\ntimeline:\n  - at: soon\n    approve: {playbook: p, step: s, by: a}\n",
    );
    let e = drill::load(&path).unwrap_err();
    assert_eq!(e.line, 3, "{e}");
    assert_eq!(e.field, "timeline[0].at", "{e}");
    assert!(e.to_string().contains("`soon` is not a duration"), "{e}");

    let path = scenario(
        dir.path(),
        "unknown.yaml",
        "name: x\nexpect:\n  - bye: 5m\n",
    );
    let e = drill::load(&path).unwrap_err();
    assert_eq!(e.line, 3, "{e}");
    assert!(e.to_string().contains("unknown field `bye`"), "{e}");
}

/// An attacker's move naming a role, account, user, key or instance the scenario does not
/// declare is a scenario error: a typo would otherwise be "denied" and meet `attacker_denied`.
#[test]
fn an_attacker_move_naming_what_does_not_exist_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let head = "name: x\norg:\n  accounts:\n    - {id: \"111111111111\", name: a}\nresources:\n  \"111111111111\":\n    roles: [deploy]\n    users: [{name: dev, keys: [AKIAEXAMPLE0000001]}]\ntimeline:\n  - at: 1m\n    attacker:\n";
    let cases = [
        (
            "      session: {account: \"111111111111\", role: deplyo, issued: 0s}\n      calls: ec2:RunInstances\n",
            "timeline[0].attacker.session.role",
            "`deplyo` is not a role of account 111111111111 under resources (its roles: deploy)",
        ),
        (
            "      session: {account: \"999999999999\", role: deploy, issued: 0s}\n      calls: ec2:RunInstances\n",
            "timeline[0].attacker.session.account",
            "999999999999 is not an account under org.accounts",
        ),
        (
            "      key: AKIAEXAMPLE0000002\n      calls: s3:ListBuckets\n",
            "timeline[0].attacker.key",
            "`AKIAEXAMPLE0000002` is not an access key of a user under resources",
        ),
        (
            "      console_login: {account: \"111111111111\", user: admin}\n",
            "timeline[0].attacker.console_login.user",
            "`admin` is not a user of account 111111111111 under resources",
        ),
        (
            "      connect: {instance: i-0123456789abcdef0, to: \"198.51.100.7:443\"}\n",
            "timeline[0].attacker.connect.instance",
            "`i-0123456789abcdef0` is not an instance under resources",
        ),
    ];
    for (n, (attack, field, problem)) in cases.into_iter().enumerate() {
        let path = scenario(
            dir.path(),
            &format!("a{n}.yaml"),
            &format!("{head}{attack}"),
        );
        let e = drill::load(&path).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.problem.as_str()),
            (field, problem),
            "{e}"
        );
        assert!(e.line >= 12, "{e}");
    }
}

/// A playbook or step the timeline names that the loaded playbooks lack is a scenario error,
/// found before the drill runs.
#[test]
fn a_timeline_naming_a_missing_playbook_or_step_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let playbooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../playbooks");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../tests/fixtures/events/aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json",
    );
    let head = format!(
        "name: x\nplaybooks: {}\norg:\n  accounts:\n    - {{id: \"352283894008\", name: a}}\ntimeline:\n  - at: 0s\n    inject:\n      fixture: {}\n",
        playbooks.display(),
        fixture.display()
    );
    let cases = [
        (
            "      playbook: quarantine-acount\n".to_string(),
            "timeline[0].inject.playbook",
            "no playbook `quarantine-acount`",
        ),
        (
            "      playbook: quarantine-account\n  - at: 1m\n    approve: {playbook: quarantine-account, step: confrim, by: carol}\n".to_string(),
            "timeline[1].approve.step",
            "playbook quarantine-account has no step `confrim` (its steps: confirm, fence, tell)",
        ),
    ];
    for (n, (rest, field, problem)) in cases.into_iter().enumerate() {
        let path = scenario(dir.path(), &format!("p{n}.yaml"), &format!("{head}{rest}"));
        let loaded = drill::load(&path).unwrap();
        let Err(drill::DrillError::Scenario(e)) = drill::run(&loaded, 1) else {
            panic!("{field}: not a scenario error");
        };
        assert_eq!(e.field, field, "{e}");
        assert!(e.problem.starts_with(problem), "{e}");
        assert!(e.line >= 9, "{e}");
    }
}

#[test]
fn org_errors_name_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let guard = "      content: {Statement: {Effect: Deny, Action: \"*\"}}\n";
    let cases = [
        (
            "name: x\norg:\n  ous:\n    - name: Workloads\n  accounts:\n    - id: \"111111111111\"\n      name: a\n      ou: Workloads/Prd\n".to_string(),
            8,
            "org.accounts[0].ou",
            "`Workloads/Prd` is not an OU under org.ous (known: Workloads)",
        ),
        (
            "name: x\norg:\n  accounts:\n    - {id: \"1234\", name: a}\n".to_string(),
            4,
            "org.accounts[0].id",
            "`1234` is not a 12-digit account id",
        ),
        (
            format!("name: x\norg:\n  accounts:\n    - {{id: \"111111111111\", name: a}}\n  policies:\n    - name: g\n{guard}      attach:\n        - root\n        - \"222222222222\"\n"),
            10,
            "org.policies[0].attach[1]",
            "`222222222222` is not root, an OU path under org.ous or an account id under org.accounts",
        ),
        (
            "name: x\norg:\n  policies:\n    - name: g\n      attach: [root]\n      content:\n        Statement:\n          - Effect: Deny\n            Action: \"*\"\n            Principal: \"*\"\n".to_string(),
            10,
            "org.policies[0].content.Statement[0].Principal",
            "SCPs take no principal",
        ),
        (
            "name: x\norg:\n  policies:\n    - name: g\n      attach: [root]\n      content: '{\"Statement\": '\n".to_string(),
            6,
            "org.policies[0].content",
            "is not a JSON policy document",
        ),
        (
            "name: x\norg:\n  ous:\n    - name: Workloads\n      ous:\n        - name: Prod\n        - name: Prod\n".to_string(),
            7,
            "org.ous[0].ous[1].name",
            "there is already an OU Workloads/Prod",
        ),
    ];
    for (i, (text, line, field, problem)) in cases.iter().enumerate() {
        let path = scenario(dir.path(), &format!("org{i}.yaml"), text);
        let e = drill::load(&path).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (*line, *field), "{e}");
        assert!(e.problem.contains(problem), "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("{}:{line}: {field}: ", path.display())),
            "{e}"
        );
    }
}

/// `cordon serve`'s intake refuses a finding a drill injected, and takes the same event unmarked.
#[tokio::test(start_paused = true)]
async fn serve_intake_refuses_a_drill_marked_finding() {
    use std::sync::Arc;
    use std::time::Instant;

    use cordon_engine::clock::VirtualClock;
    use cordon_engine::cloud::Cloud;
    use cordon_engine::config::Settings;
    use cordon_engine::dispatch::{Dispatcher, Limits};
    use cordon_engine::intake::{deliver, Verdict, DRILL_MARKER};
    use cordon_engine::journal::{Journal, MemoryJournal};
    use cordon_engine::playbook::PlaybookSet;
    use cordon_engine::runner::Runner;
    use cordon_engine::script::{Limits as ScriptLimits, Sandbox};
    use cordon_simulator::SimCloud;

    let sandbox = Arc::new(Sandbox::new(ScriptLimits::default()));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../playbooks");
    let set = PlaybookSet::load_dir(&dir, &sandbox).unwrap_or_else(|e| panic!("{e:?}"));
    let journal = Arc::new(MemoryJournal::new());
    let runner = Runner::new(
        journal.clone(),
        Cloud::from_one(Arc::new(SimCloud::in_memory())),
        Settings::default(),
        sandbox,
        Arc::new(set),
        Arc::new(VirtualClock::starting_at(0)),
    );
    let dispatcher = Dispatcher::new(runner, Limits::default());
    let event = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../tests/fixtures/events/aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json",
    ))
    .unwrap();
    let mut marked: serde_json::Value = serde_json::from_slice(&event).unwrap();
    marked[DRILL_MARKER] = "c2 drill".into();
    let d = deliver(
        &dispatcher,
        marked.to_string().as_bytes(),
        Instant::now(),
        &|_| {},
    )
    .await;
    match d.verdict {
        Verdict::Invalid(e) => assert!(e.to_string().starts_with("cordon-drill marks"), "{e}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(journal.ids().await.unwrap().is_empty(), "no run journaled");
    let d = deliver(&dispatcher, &event, Instant::now(), &|_| {}).await;
    assert_eq!(d.verdict.label(), "accepted");
}

#[test]
fn an_interactive_room_decides_at_the_moment_a_step_waits_and_the_report_names_it() {
    let loaded = drill::load(&shipped("access-key-outside-aws.yaml")).unwrap();
    let mut room = drill::room::Scripted::new(room_answers());
    let report = drill::run_interactive(&loaded, 7, &mut room).unwrap();
    assert_eq!(
        room.asked,
        [
            "finding UnauthorizedAccess:IAMUser/MaliciousIPCaller",
            "approval contain-iam-user-key/ask"
        ],
        "{}",
        report.markdown()
    );
    let line = |event: &str| {
        report
            .timeline
            .iter()
            .find(|l| l.line.event == event)
            .unwrap_or_else(|| panic!("no {event} in {}", report.markdown()))
    };
    let decided = line("room decision");
    assert_eq!(
        (decided.at.as_str(), decided.line.actor.as_str()),
        ("T+1m00s", "dana")
    );
    // The room approved when the step started waiting, not at the script's T+11m, whose
    // approval is skipped and said so.
    let approve = line("approve");
    assert_eq!(approve.line.actor, "erin");
    assert_ne!(approve.at, "T+11m00s");
    assert!(report.timeline.iter().any(|l| l.line.outcome
        == "scripted approval of contain-iam-user-key/ask by alice skipped: the room decides"));
    // Same room, same answers: the same report.
    let mut again = drill::room::Scripted::new(room_answers());
    let second = drill::run_interactive(&loaded, 7, &mut again).unwrap();
    assert_eq!(report.json(), second.json());
}

/// The room lets cordon act (dana), then approves (erin).
fn room_answers() -> [drill::Verdict; 2] {
    [
        drill::Verdict {
            go: true,
            by: "dana".into(),
        },
        drill::Verdict {
            go: true,
            by: "erin".into(),
        },
    ]
}

#[test]
fn a_room_that_leaves_stops_the_drill_naming_the_moment() {
    let loaded = drill::load(&shipped("c2-instance.yaml")).unwrap();
    let mut room = drill::room::Scripted::new([]);
    let err = drill::run_interactive(&loaded, 7, &mut room).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the drill stopped at T+2m00s: the room gave no answer (end of input)"
    );
}

/// Each finding of a batch (one event, two findings) is summed up with its own run: the second
/// finding's summary does not carry the first one's run.
#[test]
fn each_finding_of_a_batch_has_its_own_runs() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/events");
    let mut event: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixtures.join("aws.securityhub__FindingsImportedV2_GuardDuty-Stealth-IAMUser-CloudTrailLoggingDisabled_IAMAccessKey__1.json"))
            .unwrap(),
    )
    .unwrap();
    let first = &mut event["detail"]["findings"][0];
    first["status"] = "New".into();
    first["status_id"] = 1.into();
    first["severity"] = "High".into();
    first["severity_id"] = 4.into();
    let mut second = first.clone();
    second["finding_info"]["uid"] = "arn:aws:guardduty:us-east-1:869728294630:detector/b4c71b47fb852d3fc0e99a82fa2841aa/finding/16c95f0cfdfd3b579b977e20e9da1aa4".into();
    second["resources"][0]["name"] = "ci_deployer".into();
    second["resources"][0]["data"]["user_name"] = "ci_deployer".into();
    event["detail"]["findings"]
        .as_array_mut()
        .unwrap()
        .push(second);
    std::fs::write(
        dir.path().join("batch.json"),
        serde_json::to_vec(&event).unwrap(),
    )
    .unwrap();
    let path = scenario(
        dir.path(),
        "batch.yaml",
        "name: two findings in one event\norg:\n  accounts:\n    - {id: \"869728294964\", name: observability, regions: [us-east-1]}\nresources:\n  \"869728294964\":\n    roles: [cis_automation, ci_deployer]\ntimeline:\n  - at: 1m\n    inject: {fixture: batch.json}\nexpect:\n  - containment: contained\n",
    );
    let mut loaded = drill::load(&path).unwrap();
    loaded.playbooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../playbooks");
    let report = drill::run(&loaded, 1).unwrap();
    let runs: Vec<&Vec<String>> = report.findings.iter().map(|f| &f.runs).collect();
    assert_eq!(runs.len(), 2, "{:?}", report.findings);
    assert!(runs.iter().all(|r| r.len() == 1), "one run each: {runs:?}");
    assert!(report.passed, "{}", report.markdown());
}
