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
    // The finding is never injected: nothing isolates the instance.
    let r = edited("c2-instance.yaml", |t| {
        t.replace(
            "  - at: 2m\n    inject:",
            "  - at: 2m\n    inject:\n      playbook: no-such-playbook",
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
