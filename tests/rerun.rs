//! End-to-end: running a finding again (shared/cases row 7), through the real binary on the
//! simulated organization. A repeat starts nothing and says why, with exit code 5; `--rerun`
//! starts a new run on purpose once the finding's earlier run has finished, and is refused,
//! naming that run, while it is still open.

mod common;

use common::Cordon;
use serde_json::Value;

const DEMO_INSTANCE: &str = "i-0961e0b3af8b3ec39";
const DEMO_ACCOUNT: &str = "352283894008";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn calls(c: &Cordon) -> usize {
    c.world()["calls"].as_array().unwrap().len()
}

/// The demo instance's groups on its (one) interface.
fn groups(c: &Cordon) -> Value {
    let w = c.world();
    let i = &w["accounts"][DEMO_ACCOUNT]["regions"]["us-east-1"]["instances"][DEMO_INSTANCE];
    i["interfaces"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .clone()
}

/// Ids of the runs of `playbook`, oldest first.
fn runs_of(c: &Cordon, playbook: &str) -> Vec<String> {
    c.json(&["runs", "list"], 0)
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["playbook"] == playbook)
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

fn finding_id(c: &Cordon, run: &str) -> String {
    c.json(&["runs", "show", run], 0)["finding"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_repeat_starts_nothing_and_says_why_and_rerun_contains_again_after_release() {
    let c = Cordon::new();
    c.ok(&["run", "--cloud", "sim"], 0);
    let first = runs_of(&c, "isolate-ec2-instance");
    assert_eq!(first.len(), 1);
    let first = &first[0];
    let finding = finding_id(&c, first);
    let isolated = groups(&c);

    // A repeat: nothing is called, the output names the run and its state, exit 5.
    let before = calls(&c);
    let again = c.ok(&["run", "--cloud", "sim"], 5);
    assert!(
        again.contains(&format!(
            "isolate-ec2-instance: nothing started for finding {finding}: duplicate of run {first} (succeeded); use --rerun to run it again"
        )),
        "{again}"
    );
    assert_eq!(calls(&c), before, "a repeat calls nothing");
    let j = c.json(&["run", "--cloud", "sim"], 5);
    let entry = j
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["playbook"] == "isolate-ec2-instance")
        .unwrap();
    assert_eq!(entry["status"], "duplicate");
    assert_eq!(entry["run_id"], first.as_str());
    assert_eq!(entry["existing_state"], "succeeded");

    c.ok(&["release", first], 0);
    assert_ne!(groups(&c), isolated, "released");
    // Still a no-op after release, without the flag.
    let released = c.ok(&["run", "--cloud", "sim"], 5);
    assert!(
        released.contains(&format!("duplicate of run {first} (released)")),
        "{released}"
    );
    assert_ne!(groups(&c), isolated);

    // On purpose: a new run, and the instance is contained again.
    let out = c.ok(&["run", "--cloud", "sim", "--rerun"], 0);
    let runs = runs_of(&c, "isolate-ec2-instance");
    assert_eq!(runs.len(), 2, "{out}");
    let second = &runs[1];
    assert!(
        out.contains(&format!("run {second} (isolate-ec2-instance)")),
        "{out}"
    );
    assert_eq!(groups(&c), isolated, "contained again");
    let show = c.json(&["runs", "show", second], 0);
    assert_eq!(show["state"], "succeeded");
    assert_eq!(
        show["timeline"][0]["what"],
        format!("run created for finding {finding}, re-run on purpose")
    );
    assert_eq!(c.json(&["runs", "show", first], 0)["state"], "released");

    // The re-run is now the finding's run: a repeat names it.
    let named = c.ok(&["run", "--cloud", "sim"], 5);
    assert!(
        named.contains(&format!("duplicate of run {second} (succeeded)")),
        "{named}"
    );
}

/// A manual playbook that waits for approval, then isolates an instance that does not exist
/// (so, once approved, it fails).
const ASK_THEN_FAIL: &str = "id: ask-then-fail\ntitle: t\nversion: 1\nmode: manual\nsteps:\n  - id: ask\n    action: approval\n    with: {message: go?}\n  - id: isolate\n    action: ec2.isolate_instance\n    with: {instance: i-00000000000000000}\n";

#[test]
fn rerun_is_refused_while_the_earlier_run_is_open_and_allowed_once_it_ended() {
    let c = Cordon::new();
    let pb = c.playbook_dir("ask-then-fail", ASK_THEN_FAIL);
    let run = |extra: &[&str]| {
        let mut a = vec![
            "--playbooks",
            &pb,
            "run",
            "--cloud",
            "sim",
            "--playbook",
            "ask-then-fail",
        ];
        a.extend_from_slice(extra);
        c.run(&a)
    };
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let ids = runs_of(&c, "ask-then-fail");
    let first = &ids[0];

    // Open (waiting for approval): refused with or without the flag, the run named.
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(5));
    assert!(
        text(&o.stdout).contains(&format!(
            "duplicate of run {first}, which is still waiting_approval; once it has finished, --rerun runs it again"
        )),
        "{}",
        text(&o.stdout)
    );
    let o = run(&["--rerun"]);
    assert_eq!(o.status.code(), Some(5));
    assert!(
        text(&o.stdout).contains(&format!(
            "run {first} of this finding is still waiting_approval; --rerun starts a new run only once it has finished"
        )),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(runs_of(&c, "ask-then-fail").len(), 1);

    // Approved, it fails; a repeat names the failed run; --rerun starts a new one.
    c.ok(&["approve", first, "ask", "--by", "bob"], 3);
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(5));
    assert!(
        text(&o.stdout).contains(&format!(
            "duplicate of run {first} (failed); use --rerun to run it again"
        )),
        "{}",
        text(&o.stdout)
    );
    let o = run(&["--rerun"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let ids = runs_of(&c, "ask-then-fail");
    assert_eq!(ids.len(), 2);
    let second = c.json(&["runs", "show", &ids[1]], 0);
    assert_eq!(second["state"], "waiting_approval");
    assert_eq!(second["trigger"]["kind"], "manual");

    // A denied run may be re-run too.
    c.ok(&["approve", &ids[1], "ask", "--deny", "--by", "bob"], 3);
    let o = run(&["--rerun"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(runs_of(&c, "ask-then-fail").len(), 3);
}
