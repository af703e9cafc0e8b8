//! End-to-end: two findings on one instance (shared/cases row 5), through the real binary on
//! the simulated organization. Releasing the first run leaves the instance isolated while the
//! second still holds it, and says so; releasing the second restores the instance as it was
//! before the first isolation.

mod common;

use common::{fixture_json, Cordon};
use serde_json::{json, Value};

const DEMO_EVENT: &str = "aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json";
const INSTANCE: &str = "i-0961e0b3af8b3ec39";
const ACCOUNT: &str = "352283894008";

/// The demo finding's instance under another finding id and type.
fn event(c: &Cordon, id: &str, kind: &str) -> String {
    let mut e = fixture_json(DEMO_EVENT);
    e["detail"]["id"] = json!(id);
    e["detail"]["type"] = json!(kind);
    e["detail"]["severity"] = json!(8);
    c.event(&format!("{id}.json"), &e)
}

fn instance(c: &Cordon) -> Value {
    c.world()["accounts"][ACCOUNT]["regions"]["us-east-1"]["instances"][INSTANCE].clone()
}

fn isolation_group(c: &Cordon) -> String {
    let w = c.world();
    let groups = w["accounts"][ACCOUNT]["regions"]["us-east-1"]["groups"]
        .as_object()
        .unwrap()
        .clone();
    groups
        .into_iter()
        .find(|(_, g)| g["name"] == "cordon-isolation")
        .map(|(id, _)| id)
        .unwrap()
}

/// The run the last `run --json` started.
fn started(out: &Value) -> String {
    let runs: Vec<&Value> = out
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "created")
        .collect();
    assert_eq!(runs.len(), 1, "{out}");
    assert_eq!(runs[0]["state"], "succeeded", "{out}");
    runs[0]["run_id"].as_str().unwrap().to_string()
}

#[test]
fn two_findings_on_one_instance_are_released_together() {
    let c = Cordon::new();
    let a_event = event(
        &c,
        "finding-f1",
        "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom",
    );
    let b_event = event(&c, "finding-f2", "Backdoor:EC2/C&CActivity.B!DNS");
    let a = started(&c.json(&["run", "--cloud", "sim", "--event", &a_event], 0));
    let b = started(&c.json(&["run", "--cloud", "sim", "--event", &b_event], 0));
    let sg = isolation_group(&c);
    let isolated = json!([sg]);

    let out = c.ok(&["release", &a], 0);
    assert!(out.contains(&format!("run {a}: released")), "{out}");
    assert!(
        out.contains(&format!(
            "held still held by run {b}: left contained until the last run holding it is released"
        )),
        "{out}"
    );
    let i = instance(&c);
    for groups in i["interfaces"].as_object().unwrap().values() {
        assert_eq!(groups, &isolated, "run {b} still holds the instance");
    }
    assert_eq!(i["termination_protection"], true);
    assert_eq!(i["tags"]["cordon:isolated-by"], b.as_str());
    let show = c.json(&["runs", "show", &a], 0);
    assert_eq!(show["state"], "released");
    let step = show["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "isolate")
        .unwrap();
    assert_eq!(step["release"], "held");
    assert_eq!(step["release_detail"]["held_by"], json!([b]));
    assert_eq!(c.json(&["runs", "show", &b], 0)["state"], "succeeded");

    let out = c.ok(&["release", &b], 0);
    assert!(out.contains(&format!("run {b}: released")), "{out}");
    let i = instance(&c);
    let default_sg = {
        let w = c.world();
        w["accounts"][ACCOUNT]["regions"]["us-east-1"]["groups"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(_, g)| g["name"] == "default")
            .map(|(id, _)| id.clone())
            .unwrap()
    };
    for groups in i["interfaces"].as_object().unwrap().values() {
        assert_eq!(
            groups,
            &json!([default_sg]),
            "the groups before the first isolation"
        );
    }
    assert_eq!(i["termination_protection"], false);
    assert_eq!(i["tags"], json!({}), "no tag of either run is left");
    let step = c.json(&["runs", "show", &a], 0)["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "isolate")
        .cloned()
        .unwrap();
    assert_eq!(step["release"], "done");
    assert_eq!(step["release_detail"]["undone_by"], b.as_str());
}
