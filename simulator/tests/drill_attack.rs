//! Drills where the attacker acts: what containment left in place decides the attacker's next
//! move (API calls through the simulator's policy evaluation, traffic through EC2 connection
//! tracking), and faults injected into cordon's own calls.

use std::path::{Path, PathBuf};

use cordon_simulator::drill;

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../playbooks/drills")
        .join(name)
}

/// A shipped drill rewritten by `edit`, run from a temporary directory against the shipped
/// playbooks and fixtures.
fn edited(name: &str, edit: impl Fn(String) -> String) -> drill::Report {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(shipped(name)).unwrap().replace(
        "../../tests/",
        &format!("{}/../tests/", env!("CARGO_MANIFEST_DIR")),
    );
    let path = dir.path().join(name);
    std::fs::write(&path, edit(text)).unwrap();
    let mut loaded = drill::load(&path).unwrap_or_else(|e| panic!("{e}"));
    loaded.playbooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../playbooks");
    drill::run(&loaded, 7).unwrap_or_else(|e| panic!("{e}"))
}

fn expectation<'a>(r: &'a drill::Report, starts: &str) -> &'a drill::report::ExpectationLine {
    r.expectations
        .iter()
        .find(|e| e.expectation.contains(starts))
        .unwrap_or_else(|| panic!("no {starts} in {}", r.markdown()))
}

#[test]
fn isolation_cuts_the_c2_connection_that_was_open_before_it() {
    let r = edited("c2-instance.yaml", |t| t);
    assert!(r.passed, "{}", r.markdown());
    let after = expectation(&r, "attacker_denied c2-after");
    assert!(
        after
            .evidence
            .contains("the connection opened at T+1m00s was cut at T+2m01"),
        "{after:?}"
    );
}

#[test]
fn without_containment_the_attackers_connection_stays_open_and_the_drill_fails() {
    // The finding injected is one no playbook takes (a port probe): nothing isolates the
    // instance.
    let r = edited("c2-instance.yaml", |t| {
        t.replace(
            "  - at: 2m\n    inject:",
            "  - at: 2m\n    inject:\n      set: {detail.type: \"Recon:EC2/PortProbeUnprotectedPort\"}",
        )
    });
    assert!(!r.passed);
    let after = expectation(&r, "attacker_denied c2-after");
    assert!(!after.met, "{after:?}");
    assert!(after.evidence.contains("still open (tracked"), "{after:?}");
}

#[test]
fn a_fenced_account_denies_the_stolen_session_but_not_break_glass() {
    let r = edited("fence-member-account.yaml", |t| t);
    assert!(r.passed, "{}", r.markdown());
    let denied = expectation(&r, "attacker_denied deploy-after-fence");
    assert!(
        denied
            .evidence
            .contains("explicit deny in SCP cordon-quarantine"),
        "{denied:?}"
    );
    // The guardrail on the OU above the account denies leaving the organization; the one on the
    // Sandbox OU denies creating a user there, and not in prod, on the sibling OU.
    let guard = expectation(&r, "attacker_denied leave-org");
    let workloads = cordon_simulator::org::ou_id("r-sim0", "Workloads", 0);
    let policy = cordon_simulator::org::policy_id("deny-leave-organization", 0);
    assert!(
        guard.met && guard.evidence.ends_with(&format!("denied: explicit deny in SCP deny-leave-organization ({policy}) on OU Workloads ({workloads}), above account 352283894008")),
        "{guard:?}"
    );
    let sandbox = expectation(&r, "attacker_denied sandbox-create-user");
    assert!(
        sandbox.met
            && sandbox
                .evidence
                .contains("explicit deny in SCP sandbox-no-iam-users")
            && sandbox
                .evidence
                .contains("on OU Workloads/Sandbox (ou-sim0-"),
        "{sandbox:?}"
    );
    let prod = expectation(&r, "attacker_allowed prod-create-user");
    assert!(
        prod.met
            && prod
                .evidence
                .contains("allowed: no policy denies iam:CreateUser"),
        "{prod:?}"
    );
    // Denied by the responder instead: the SCP never goes up and the session still works.
    let r = edited("fence-member-account.yaml", |t| {
        t.replace(
            "    approve: {playbook: quarantine-account",
            "    deny: {playbook: quarantine-account",
        )
    });
    assert!(!expectation(&r, "attacker_denied deploy-after-fence").met);
}

#[test]
fn a_guardrail_follows_the_account_when_it_moves_to_another_ou() {
    // The prod account placed in Workloads/Sandbox: the Sandbox guardrail now applies to it.
    let r = edited("fence-member-account.yaml", |t| {
        t.replace(
            "ou: Workloads/Prod, tags: {env: prod}",
            "ou: Workloads/Sandbox, tags: {env: prod}",
        )
    });
    assert!(!r.passed);
    let prod = expectation(&r, "attacker_allowed prod-create-user");
    assert!(
        !prod.met
            && prod
                .evidence
                .contains("explicit deny in SCP sandbox-no-iam-users")
            && prod.evidence.contains("on OU Workloads/Sandbox (ou-sim0-")
            && prod.evidence.ends_with("above account 111111111111"),
        "{prod:?}"
    );
    // Everything else in the drill holds, the release check included.
    let missed: Vec<_> = r.missed().iter().map(|e| e.expectation.clone()).collect();
    assert_eq!(missed, ["expect[7] attacker_allowed prod-create-user"]);
}

#[test]
fn a_guardrail_attached_to_the_root_or_to_the_account_applies_too() {
    for (target, on) in [
        (
            "root",
            "on the root r-sim0, above account 352283894008".to_string(),
        ),
        ("\"352283894008\"", "on account 352283894008".to_string()),
    ] {
        let r = edited("fence-member-account.yaml", |t| {
            t.replace("attach: [Workloads]\n", &format!("attach: [{target}]\n"))
                // Checked before the approval: a guardrail on the account is not a fence.
                .replace(
                    "expect:\n",
                    "expect:\n  - by: 5m\n    account_fenced: \"352283894008\"\n",
                )
        });
        let guard = expectation(&r, "attacker_denied leave-org");
        assert!(
            guard.met && guard.evidence.ends_with(&on),
            "{target}: {guard:?}"
        );
        let early = expectation(&r, "expect[0] account_fenced");
        assert!(!early.met, "{target}: {early:?}");
        let missed: Vec<_> = r.missed().iter().map(|e| e.expectation.clone()).collect();
        assert_eq!(
            missed,
            ["expect[0] account_fenced 352283894008"],
            "{target}"
        );
    }
}

#[test]
fn a_deactivated_key_signs_nothing_but_the_users_other_key_does_until_approval() {
    let r = edited("access-key-outside-aws.yaml", |t| t);
    assert!(r.passed, "{}", r.markdown());
    assert!(expectation(&r, "attacker_allowed read-with-second-key").met);
    let after = expectation(&r, "attacker_denied second-key-after-approval");
    assert!(after.evidence.contains("is Inactive"), "{after:?}");
}

#[test]
fn an_attacker_move_without_an_operation_is_a_scenario_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "name: x\ntimeline:\n  - at: 1m\n    attacker:\n      key: AKIAEXAMPLE\n",
    )
    .unwrap();
    let e = drill::load(&path).unwrap_err();
    assert_eq!(
        (e.line, e.field.as_str()),
        (4, "timeline[0].attacker"),
        "{e}"
    );
    assert!(e.problem.contains("calls: service:Operation"), "{e}");
    std::fs::write(&path, "name: x\nexpect:\n  - attacker_denied: nope\n").unwrap();
    let e = drill::load(&path).unwrap_err();
    assert_eq!(e.field, "expect[0].attacker_denied", "{e}");
}

#[test]
fn every_shipped_drill_passes_with_another_seed_and_twice_the_same_bytes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../playbooks/drills");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let loaded = drill::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let (a, b) = (
            drill::run(&loaded, 99).unwrap(),
            drill::run(&loaded, 99).unwrap(),
        );
        assert!(a.passed, "{}", a.markdown());
        assert_eq!(a.json(), b.json(), "{}", path.display());
        n += 1;
    }
    assert!(n >= 6, "{n} drills shipped");
}

#[test]
fn under_faults_the_report_says_plainly_that_containment_is_partial() {
    let r = edited("stolen-role-sessions-under-faults.yaml", |t| t);
    assert!(r.passed, "{}", r.markdown());
    let md = r.markdown();
    assert!(
        md.contains("**Containment: NOT COMPLETE** for 1 of 1"),
        "{md}"
    );
    let f = &r.findings[0];
    assert!(
        f.containment
            .starts_with("partial: changed: account 222222222222, account 333333333333"),
        "{f:?}"
    );
    assert_eq!(
        f.time_to_containment, None,
        "a partial containment has no MTTC"
    );
    // The throttled first attempt is in the timeline, and so is the refused AssumeRole.
    let faults: Vec<_> = r
        .timeline
        .iter()
        .filter(|l| l.line.event == "fault hit")
        .collect();
    assert!(faults
        .iter()
        .any(|l| l.line.outcome == "api-throttle-error"));
    assert!(faults
        .iter()
        .any(|l| l.line.outcome == "no-response-role" && l.line.account == "444444444444"));
}

#[test]
fn throttling_that_persists_fails_the_step_and_nothing_is_called_contained() {
    let r = edited("stolen-role-sessions-under-faults.yaml", |t| {
        t.replace("    until: 60100ms\n", "")
    });
    let f = &r.findings[0];
    assert!(!f.containment.starts_with("contained"), "{f:?}");
    assert!(f.containment.contains("ThrottlingException"), "{f:?}");
    let throttled = r
        .timeline
        .iter()
        .filter(|l| l.line.outcome == "api-throttle-error")
        .count();
    // The runner tried three times (the default retry) before failing the step.
    assert!(throttled >= 3, "{}", r.markdown());
    assert!(r.markdown().contains("**Containment: NOT COMPLETE**"));
}

#[test]
fn faults_at_a_percentage_hit_the_same_calls_for_one_seed_and_others_for_another() {
    let edit = |t: String| {
        t.replace("    until: 60100ms\n", "    percentage: 40\n")
            .replace(
                "  - kind: no-response-role\n    account: \"444444444444\"\n",
                "",
            )
    };
    let hits = |seed: u64| {
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(shipped("stolen-role-sessions-under-faults.yaml"))
            .unwrap()
            .replace(
                "../../tests/",
                &format!("{}/../tests/", env!("CARGO_MANIFEST_DIR")),
            );
        let path = dir.path().join("f.yaml");
        std::fs::write(&path, edit(text)).unwrap();
        let mut loaded = drill::load(&path).unwrap();
        loaded.playbooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../playbooks");
        let r = drill::run(&loaded, seed).unwrap();
        r.timeline
            .iter()
            .filter(|l| l.line.event == "fault hit")
            .map(|l| format!("{} {}", l.at, l.line.account))
            .collect::<Vec<_>>()
    };
    assert_eq!(hits(1), hits(1));
    let seeds: std::collections::BTreeSet<Vec<String>> = (1..6).map(hits).collect();
    assert!(seeds.len() > 1, "every seed hit the same calls: {seeds:?}");
}

#[test]
fn a_service_linked_role_is_refused_and_left_untouched() {
    let r = edited("stolen-role-sessions.yaml", |t| {
        t.replace(
            "  \"444444444444\":\n    roles: [app-server-role]",
            "  \"444444444444\":\n    roles:\n      - {name: app-server-role, path: /aws-service-role/app.example.amazonaws.com/}",
        ) + "  - protected_untouched: app-server-role\n"
    });
    let f = &r.findings[0];
    assert!(f.containment.starts_with("not_contained"), "{f:?}");
    assert!(f.containment.contains("service-linked role"), "{f:?}");
    // cordon refuses before changing anything, in any account: the role is untouched
    // everywhere, and the attacker's stolen sessions still work.
    assert!(expectation(&r, "protected_untouched app-server-role").met);
    assert!(!expectation(&r, "attacker_denied app-after").met);
}
