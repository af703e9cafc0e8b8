//! Crash safety: the real `cordon` binary is killed with SIGKILL at every point between two
//! cloud calls of a run (and of a release), then `cordon resume` picks the journal up. After each
//! restart: no step is lost, no idempotent step leaves a duplicate behind, and no
//! non-idempotent step runs twice (the run stops in `needs_attention` instead).
//!
//! The simulator pauses before every mutating call (`CORDON_SIM_DELAY_MS`) and writes its call
//! log after each one, so the test kills "after N calls": while the process waits before call
//! N+1, or journals call N's result.

mod common;

use std::time::{Duration, Instant};

use common::{calls, Cordon};
use serde_json::{json, Value};

const ACCOUNT: &str = "352283894008";
const INSTANCE: &str = "i-0961e0b3af8b3ec39";
/// Mutating calls of the demo run: 1 snapshot, 8 for isolation, 1 chat post.
const RUN_CALLS: usize = 10;

/// The world as the running process left it so far: None before the finding is seeded.
fn seeded_world(c: &Cordon) -> Option<Value> {
    let w = common::world_at(&c.world_path());
    w["accounts"][ACCOUNT].is_object().then_some(w)
}

fn calls_so_far(c: &Cordon) -> usize {
    seeded_world(c)
        .and_then(|w| w["calls"].as_array().map(Vec::len))
        .unwrap_or(0)
}

/// Starts `cordon args` with a pause before every cloud call and SIGKILLs it once the world
/// shows `after` calls. Returns false if the process finished first.
fn kill_after(c: &Cordon, args: &[&str], after: usize) -> bool {
    let mut child = c
        .command(args)
        .env("CORDON_SIM_DELAY_MS", "150")
        .spawn()
        .expect("spawn cordon");
    let deadline = Instant::now() + Duration::from_secs(30);
    // The finding's resources are seeded just before the run is journaled; "after 0 calls" kills
    // inside the pause before the first call.
    while seeded_world(c).is_none() || calls_so_far(c) < after {
        if child.try_wait().expect("poll child").is_some() || Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    if after == 0 {
        std::thread::sleep(Duration::from_millis(75));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    true
}

fn region(c: &Cordon) -> Value {
    c.world()["accounts"][ACCOUNT]["regions"]["us-east-1"].clone()
}

fn group_id(region: &Value, name: &str) -> String {
    region["groups"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, g)| g["name"] == name)
        .map(|(id, _)| id.clone())
        .unwrap()
}

fn interface_groups(region: &Value) -> Value {
    region["instances"][INSTANCE]["interfaces"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .clone()
}

#[test]
fn kill_9_between_any_two_calls_of_a_run_loses_nothing_and_repeats_nothing() {
    for after in 0..RUN_CALLS {
        let c = Cordon::new();
        assert!(
            kill_after(&c, &["run", "--cloud", "sim"], after),
            "the run finished before call {after}"
        );
        let run = c.run_of("isolate-ec2-instance");
        assert!(
            matches!(run["state"].as_str(), Some("pending" | "running")),
            "killed after {after} calls, the journal shows an unfinished run: {}",
            run["state"]
        );

        let resumed = c.run(&["resume"]);
        let run = c.run_of("isolate-ec2-instance");
        let w = c.world();
        let r = region(&c);
        let ctx = format!(
            "killed after {after} calls; resume said {}",
            String::from_utf8_lossy(&resumed.stdout)
        );

        // No idempotent step left a duplicate behind.
        assert_eq!(calls(&w, "ec2:CreateSnapshot"), 1, "{ctx}");
        assert_eq!(calls(&w, "ec2:CreateSecurityGroup"), 2, "{ctx}");
        assert_eq!(
            interface_groups(&r),
            json!([group_id(&r, "cordon-isolation")]),
            "{ctx}"
        );
        // The chat post is not idempotent: it ran at most once, and only a run interrupted in
        // that very step stops for a human.
        let posts = calls(&w, "chat:post");
        match run["state"].as_str() {
            Some("succeeded") => assert_eq!(posts, 1, "{ctx}"),
            Some("needs_attention") => {
                assert_eq!(posts, 0, "{ctx}");
                assert_eq!(
                    after,
                    RUN_CALLS - 1,
                    "only the chat step may be interrupted mid-call: {ctx}"
                );
                assert_eq!(run["steps"][2]["state"], "started", "{ctx}");
                assert!(
                    run["error"]
                        .as_str()
                        .unwrap()
                        .contains("not safe to repeat"),
                    "{ctx}"
                );
            }
            other => panic!("unexpected state {other:?}: {ctx}"),
        }
        assert_eq!(run["steps"][0]["state"], "succeeded", "{ctx}");
        assert_eq!(run["steps"][1]["state"], "succeeded", "{ctx}");

        // The pre-state journaled before the change survived the crash: release restores it.
        let id = run["id"].as_str().unwrap();
        c.ok(&["release", id], 0);
        assert_eq!(
            interface_groups(&region(&c)),
            json!([group_id(&region(&c), "default")]),
            "{ctx}"
        );
    }
}

#[test]
fn kill_9_during_release_then_resume_finishes_the_release() {
    let c = Cordon::new();
    c.ok(&["run", "--cloud", "sim"], 0);
    let id = c.run_of("isolate-ec2-instance")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = calls_so_far(&c);
    // Undo of isolation: restore the interface's groups, termination protection, tags.
    assert!(
        kill_after(&c, &["release", &id], before + 1),
        "release finished too soon"
    );
    assert_eq!(c.run_of("isolate-ec2-instance")["state"], "releasing");
    c.ok(&["resume"], 0);
    let run = c.run_of("isolate-ec2-instance");
    assert_eq!(run["state"], "released");
    let r = region(&c);
    assert_eq!(interface_groups(&r), json!([group_id(&r, "default")]));
    assert_eq!(r["instances"][INSTANCE]["termination_protection"], false);
}
