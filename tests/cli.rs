//! End-to-end: `validate`, `explain` and `actions` through the binary, on the real fixture corpus
//! and on broken playbooks.

mod common;

use common::{fixture, root, Cordon};
use serde_json::json;
use serde_json::Value;

#[test]
fn shipped_playbooks_validate() {
    let c = Cordon::new();
    let out = c.ok(&["validate", root().join("playbooks").to_str().unwrap()], 0);
    assert!(out.contains("ok: 4 playbook(s) valid"), "{out}");
}

#[test]
fn broken_playbooks_fail_with_file_line_and_field() {
    let c = Cordon::new();
    let dir = c.path().join("pb");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("bad.yaml"),
        r#"id: bad-one
title: Broken on purpose
version: 1
mode: auto
trigger:
  match:
    source: [aws.guardduty]
    detail:
      severity: [{numeric: [">>", 7]}]
  when: finding.severity >=
steps:
  - id: first
    action: ec2.isolate_instance
    with:
      instanse: i-1
  - id: second
    action: ec2.nuke
  - id: third
    action: notify.chat
    timeout: soon
    with:
      text: "${steps.fourth.output.x}"
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("typo.yaml"),
        "id: typo\ntitle: t\nversion: 1\nmode: auto\ntrigger:\n  match: {source: [aws.guardduty]}\nsteps:\n  - id: a\n    action: notify.chat\n    retries: 3\n    with: {text: hi}\n",
    )
    .unwrap();
    let out = c.run(&["validate", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let bad = dir.join("bad.yaml").display().to_string();
    let typo = dir.join("typo.yaml").display().to_string();
    for expected in [
        format!("{bad}:9: trigger.match.detail.severity[0].numeric[0]:"),
        format!("{bad}:10: trigger.when: Rhai: syntax error"),
        format!("{bad}:14: steps[0].with: action ec2.isolate_instance needs parameter `instance`"),
        format!("{bad}:15: steps[0].with.instanse: action ec2.isolate_instance has no parameter `instanse`; accepted: instance,"),
        format!("{bad}:17: steps[1].action: unknown action \"ec2.nuke\"; known: org.attach_deny_scp,"),
        format!("{bad}:20: steps[2].timeout: \"soon\" is not a duration"),
        format!("{bad}:22: steps[2].with.text: refers to step \"fourth\", which is not a step of this playbook"),
        format!("{typo}:10: steps[0]: unknown field `retries`, expected one of"),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
}

/// Per finding: the account containment acts in, and the playbook that would start (if any).
type Expected = &'static [(&'static str, Option<&'static str>)];

/// What `explain --json` must say about each fixture: finding count and, per finding, the
/// account containment acts in, and the playbook that would start (if any).
#[test]
fn explain_handles_every_fixture() {
    let c = Cordon::new();
    let cases: &[(&str, i32, Expected)] = &[
        ("aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json", 0, &[("352283894008", Some("isolate-ec2-instance"))]),
        // The published Recon and Kubernetes events name placeholder accounts ("845345345",
        // "CHILD-EXAMPLE"), which are refused: see tests/findings.rs.
        ("aws.securityhub__SecurityHub-AFSBP-IAM.6_CustomAction__1.json", 0, &[("111111111111", None), ("111111111111", None)]),
        ("aws.securityhub__SecurityHub-AFSBP-EC2.8_Imported__1.json", 0, &[("123456789012", None)]),
        ("guardduty-finding__PrivilegeEscalation_IAMUser_AdministrativePermissions__1.json", 0, &[("123456789012", None)]),
        ("constructed/aws.guardduty__UnauthorizedAccess_IAMUser_InstanceCredentialExfiltration.OutsideAWS__constructed.json", 0, &[("222222222222", Some("revoke-role-sessions"))]),
        // Not findings: recognized and ignored, with a reason, and an empty array.
        ("aws.guardduty__Runtime-Protection-Healthy_EC2__1.json", 0, &[]),
        ("aws.guardduty__AWS-API-Call-via-CloudTrail_CreateSampleFindings__1.json", 0, &[]),
    ];
    for (file, code, expected) in cases {
        let v = c.json(
            &["explain", "--event", fixture(file).to_str().unwrap()],
            *code,
        );
        let arr = v
            .as_array()
            .unwrap_or_else(|| panic!("{file}: not an array"));
        assert_eq!(arr.len(), expected.len(), "{file}");
        for (f, (account, playbook)) in arr.iter().zip(expected.iter()) {
            for key in [
                "source",
                "id",
                "type",
                "title",
                "severity",
                "severity_label",
                "account",
                "region",
                "resources",
                "updated_at",
            ] {
                assert!(f.get(key).is_some(), "{file}: finding lacks {key}");
            }
            assert_eq!(f["account"], *account, "{file}");
            let starting: Vec<&str> = f["playbooks"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["outcome"]["outcome"] == "run")
                .map(|p| p["playbook"].as_str().unwrap())
                .collect();
            assert_eq!(
                starting,
                playbook.iter().copied().collect::<Vec<_>>(),
                "{file}"
            );
        }
    }
    // Every fixture file, whatever it is, gets an answer and never a crash.
    for entry in std::fs::read_dir(root().join("tests/fixtures/events")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let out = c.run(&["explain", "--json", "--event", path.to_str().unwrap()]);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{}: {:?}",
            path.display(),
            out.status
        );
    }
}

#[test]
fn not_an_event_is_a_clear_error() {
    let c = Cordon::new();
    let out = c.run(&[
        "explain",
        "--event",
        fixture("slack__signing-test-vector__1.json")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("slack__signing-test-vector__1.json") && err.contains("accepted"),
        "{err}"
    );

    let garbled = c.event("garbled.json", &Value::Null);
    std::fs::write(&garbled, "{\"source\": \"aws.guardduty\", ").unwrap();
    let out = c.run(&["explain", "--event", &garbled]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let healthy = c.run(&[
        "explain",
        "--event",
        fixture("aws.guardduty__Runtime-Protection-Healthy_EC2__1.json")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(healthy.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&healthy.stderr).contains("ignored"));
}

#[test]
fn every_action_example_is_a_valid_step() {
    let c = Cordon::new();
    let actions = c.json(&["actions"], 0);
    let list = actions.as_array().unwrap();
    assert!(list.len() >= 11);
    let dir = c.path().join("examples");
    std::fs::create_dir_all(&dir).unwrap();
    for a in list {
        let id = a["id"].as_str().unwrap();
        assert!(!a["description"].as_str().unwrap().is_empty(), "{id}");
        let example = a["example"].as_str().unwrap();
        let steps: String = example.lines().map(|l| format!("  {l}\n")).collect();
        // Manual mode, so examples that wait for approval are valid too.
        let yaml = format!(
            "id: example-{}\ntitle: t\nversion: 1\nmode: manual\nsteps:\n{steps}",
            id.replace(['.', '_'], "-")
        );
        std::fs::write(dir.join(format!("{id}.yaml")), yaml).unwrap();
    }
    c.ok(&["validate", dir.to_str().unwrap()], 0);
}

/// `explain` without `--event` explains the built-in finding `run` contains by default.
#[test]
fn explain_without_an_event_explains_the_built_in_finding() {
    let c = Cordon::new();
    let v = c.json(&["explain"], 0);
    let f = &v.as_array().expect("an array")[0];
    assert_eq!(f["id"], "3aaf83ddd9c31405246fa1c62e3e034d", "{v}");
    let isolate = f["playbooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["playbook"] == "isolate-ec2-instance")
        .expect("isolate-ec2-instance explained");
    assert_eq!(isolate["outcome"]["outcome"], "run", "{isolate}");
    // The trigger's `$or` alternatives are explained one by one: the finding (severity 5) fails
    // the high-severity alternative and matches the threat-list (`.Custom`) one.
    let condition = |path: &str, expected: &str| {
        isolate["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["path"] == path && c["expected"].as_str().unwrap().contains(expected))
            .unwrap_or_else(|| panic!("no {path} {expected} in {isolate}"))
            .clone()
    };
    let severity = condition("detail.severity", ">=");
    let custom = condition("detail.type", ".Custom");
    assert_eq!(
        (&severity["branch"], &severity["matched"]),
        (&json!(0), &json!(false))
    );
    assert_eq!(
        (&custom["branch"], &custom["matched"]),
        (&json!(1), &json!(true))
    );
    let human = c.ok(&["explain"], 0);
    let from = human.find("playbook  isolate-ec2-instance").unwrap();
    let shown = &human[from..];
    assert!(
        shown.contains("alternative 1 of 5: not all held\n"),
        "{shown}"
    );
    assert!(
        shown.contains("alternative 2 of 5: every condition held\n"),
        "{shown}"
    );
}

/// `runs show` without `--json` prints what each step read before its change and read back
/// after it: a responder checks the proof without reaching for jq. `run` prints the chat message.
#[test]
fn runs_show_prints_each_steps_pre_state_and_proof() {
    let c = Cordon::new();
    let contained = c.ok(&["run", "--cloud", "sim"], 0);
    // What the responders were told shows too (the simulated chat has no other window).
    assert!(
        contained.contains("      message: Isolated i-0961e0b3af8b3ec39 in 352283894008/us-east-1"),
        "{contained}"
    );
    let run = c.run_of("isolate-ec2-instance");
    let id = run["id"].as_str().unwrap();
    let isolate = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["action"] == "ec2.isolate_instance")
        .expect("an isolation step");
    let (before, after) = (
        isolate["prepared"].to_string(),
        isolate["proof"].to_string(),
    );
    assert!(before.contains("sg-"), "{before}");
    let shown = c.ok(&["runs", "show", id], 0);
    let step = isolate["id"].as_str().unwrap();
    assert!(
        shown.contains("evidence (read before each change, and read back after it):"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("  {step:<16} before  {before}")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("  {step:<16} after   {after}")),
        "{shown}"
    );
}
