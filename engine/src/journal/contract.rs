//! The journal contract, as one test every backend runs.

use serde_json::json;

use super::{Admission, Entry, Inserted, Journal, JournalError};
use crate::run::{Run, RunState, StepRecord, Trigger};

pub(crate) fn run(id: &str, dedup: &str) -> Run {
    Run {
        id: id.into(),
        version: 0,
        playbook: "p".into(),
        playbook_version: "1".into(),
        playbook_source: String::new(),
        playbook_file: "p.yaml".into(),
        dedup_key: dedup.into(),
        state: RunState::Pending,
        trigger: Trigger::Event,
        event: json!({}).into(),
        finding: json!({}),
        vars: json!({}),
        account: "111122223333".into(),
        region: "us-east-1".into(),
        steps: vec![StepRecord::new("a", "notify.chat")],
        error: None,
        created_ms: 1,
        updated_ms: 1,
    }
}

pub(crate) fn entry(what: &str) -> Entry {
    Entry {
        at_ms: 1,
        state: "pending".into(),
        step: None,
        what: what.into(),
    }
}

async fn put(j: &dyn Journal, id: &str, key: &str, admission: Admission) -> Inserted {
    j.insert(&run(id, key), &entry("created"), admission)
        .await
        .unwrap()
}

/// Runs r1 (finished, key k), r3 (re-run of k, open) are left for [`check_after_reopen`].
pub(crate) async fn check(j: &dyn Journal) {
    let created = put(j, "r1", "k", Admission::Deliver);
    assert_eq!(created.await, Inserted::Created);
    let again = put(j, "r2", "k", Admission::Deliver);
    assert_eq!(again.await, Inserted::Duplicate("r1".into()));
    assert!(j.get("r2").await.unwrap().is_none());

    // Versions: each update is conditional on the version read.
    let mut r = j.get("r1").await.unwrap().unwrap();
    assert_eq!(r.version, 1);
    assert_eq!(j.open_ids().await.unwrap(), vec!["r1".to_string()]);
    let rerun_while_open = put(j, "r3", "k", Admission::Rerun);
    assert_eq!(
        rerun_while_open.await,
        Inserted::Duplicate("r1".into()),
        "a re-run waits for the open run of its key"
    );
    let stale = r.clone();
    r.state = RunState::Running;
    assert_eq!(j.update(&r, &entry("started")).await.unwrap(), 2);
    match j.update(&stale, &entry("lost")).await {
        Err(JournalError::Conflict {
            expected: 1,
            found: 2,
            ..
        }) => {}
        other => panic!("a stale write must conflict, got {other:?}"),
    }
    match j.update(&run("nope", "x"), &entry("x")).await {
        Err(JournalError::Conflict { found: 0, .. }) => {}
        other => panic!("updating a missing run must conflict, got {other:?}"),
    }
    r.version = 2;
    r.state = RunState::Failed;
    assert_eq!(j.update(&r, &entry("failed")).await.unwrap(), 3);
    assert!(
        j.open_ids().await.unwrap().is_empty(),
        "a failed run is not open"
    );
    let stored = j.get("r1").await.unwrap().unwrap();
    assert_eq!((stored.version, stored.state), (3, RunState::Failed));

    // A person may re-run a finished run's key on purpose; a delivery still may not.
    let rerun = put(j, "r3", "k", Admission::Rerun);
    assert_eq!(rerun.await, Inserted::Created);
    let delivered = put(j, "r4", "k", Admission::Deliver);
    assert_eq!(delivered.await, Inserted::Duplicate("r3".into()));
    check_after_reopen(j).await;
}

pub(crate) async fn check_after_reopen(j: &dyn Journal) {
    assert_eq!(j.ids().await.unwrap(), vec!["r1".to_string(), "r3".into()]);
    assert_eq!(j.open_ids().await.unwrap(), vec!["r3".to_string()]);
    let whats: Vec<String> = j
        .timeline("r1")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.what)
        .collect();
    assert_eq!(whats, vec!["created", "started", "failed"]);
    let r1 = j.get("r1").await.unwrap().unwrap();
    assert_eq!((r1.version, r1.state), (3, RunState::Failed));
}

/// A run with every field set reads back equal, before and after an update.
pub(crate) async fn every_field_round_trips(j: &dyn Journal) {
    let mut r = run("full", "full-key");
    r.playbook_source = "id: p\n".into();
    r.trigger = Trigger::CustomAction {
        name: "contain".into(),
    };
    r.event = json!({"detail": {"id": "f1", "tags": [{"key": "a", "value": "<!channel>"}]}}).into();
    r.finding = json!({"id": "f1", "severity": 8.5, "resources": [{"id": "i-1"}]});
    r.vars = json!({"channel": "#ir"});
    r.created_ms = 7;
    r.updated_ms = 8;
    j.insert(&r, &entry("created"), Admission::Deliver)
        .await
        .unwrap();
    r.version = 1;
    assert_eq!(j.get("full").await.unwrap().unwrap(), r);
    r.state = RunState::Failed;
    r.error = Some("step a failed".into());
    r.steps[0].output = Some(json!({"done": true}));
    r.updated_ms = 9;
    r.version = j.update(&r, &entry("failed")).await.unwrap();
    assert_eq!(j.get("full").await.unwrap().unwrap(), r);
}
