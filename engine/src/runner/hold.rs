//! Holds: several runs containing one resource (two findings on one instance, a re-run).
//!
//! A containment step holds the resource its action names ([`Action::holds`]): the key is
//! computed from the step's journaled parameters, so nothing new is stored to find it. Releasing
//! a run whose step's resource another live run still holds leaves the resource contained and
//! marks the step [`ReleaseState::Held`], naming those runs; the last holder's release then
//! undoes every held change, newest first, which ends in the state before the first containment
//! (each step's pre-state is the state the previous one left).
//!
//! Steps that act on one key are serialized in this process by a lock per key, so a release never
//! decides while a containment of the same resource is under way, and a second containment reads
//! its pre-state only after the first finished. One process owns a journal, so this is enough on
//! one host; several runners sharing a store would need the store's own leases.
//!
//! Finding a resource's holders reads the runs that ever had a step on its key: an index from
//! key to run ids, kept in memory by the process that owns the journal. It is built by one scan
//! of the journal at the first release, and kept up to date by every later write of a step of
//! this process (the one writer of its journal), so a release reads its resource's runs, not
//! every run (which made releasing N runs cost N x N reads).
//!
//! [`Action::holds`]: crate::actions::Action::holds

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::OwnedMutexGuard;

use super::drive::split_target;
use super::{Result, Runner};
use crate::actions;
use crate::config::Settings;
use crate::run::{ReleaseState, Run, RunState, StepRecord, StepState};

/// One async lock per hold key, dropped from the map once nobody holds or waits for it.
#[derive(Default)]
pub(super) struct HoldLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The lock of one hold key, held until dropped.
pub(super) struct HoldGuard<'a> {
    owner: &'a HoldLocks,
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl HoldLocks {
    /// Waits for the lock of `key`.
    pub(super) async fn lock(&self, key: &str) -> HoldGuard<'_> {
        let lock = self
            .locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.to_string())
            .or_default()
            .clone();
        HoldGuard {
            owner: self,
            key: key.to_string(),
            guard: Some(lock.lock_owned().await),
        }
    }
}

impl Drop for HoldGuard<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let mut locks = self.owner.locks.lock().unwrap_or_else(|p| p.into_inner());
        if locks
            .get(&self.key)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            locks.remove(&self.key);
        }
    }
}

/// The resource step `i` of `run` holds, if its action holds one.
pub(super) fn hold_of(settings: &Settings, run: &Run, i: usize) -> Option<String> {
    let rec = &run.steps[i];
    let action = actions::find(&rec.action)?;
    let (target, params) = split_target(run, rec.params.as_ref());
    action.holds(settings, &target, &params)
}

/// Whether the step keeps its resource contained now: it changed it (or may have, when
/// interrupted or failed after recording its pre-state), and its run has not let go of it.
fn holds_now(run: &Run, rec: &StepRecord) -> bool {
    let changed = match rec.state {
        StepState::Succeeded => true,
        StepState::Started | StepState::Failed => rec.prepared.is_some(),
        _ => false,
    };
    changed
        && run.state != RunState::Released
        && !matches!(rec.release, Some(ReleaseState::Done | ReleaseState::Held))
}

/// The runs a held step waits for (`release_detail.held_by`).
pub(super) fn held_by(rec: &StepRecord) -> Vec<String> {
    rec.release_detail
        .as_ref()
        .and_then(|d| d.get("held_by"))
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Hold key -> ids of the runs with a step on it (see the module's notes).
#[derive(Default)]
pub(super) struct HoldIndex {
    /// Set before the scan starts: from then on every step written is noted, so a step
    /// written while the scan runs is never missed.
    tracking: AtomicBool,
    scanned: tokio::sync::OnceCell<()>,
    runs: Mutex<HashMap<String, BTreeSet<String>>>,
}

impl HoldIndex {
    fn note(&self, key: String, run: &str) {
        self.runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default()
            .insert(run.to_string());
    }

    fn runs_on(&self, key: &str) -> Vec<String> {
        self.runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Who else holds a resource, seen from a run being released.
pub(super) struct Holders {
    /// Other runs whose steps keep the resource contained now.
    pub live: Vec<String>,
    /// Held steps whose undo was left to the run being released, directly or through other
    /// held steps (each with its run, as read).
    pub deferred: Vec<(Run, usize)>,
}

impl Runner {
    /// Notes, once the hold index is in use, the key step `step` of `run` holds (called after
    /// each write of a step).
    pub(super) fn note_hold(&self, run: &Run, step: &str) {
        if !self.hold_index.tracking.load(Ordering::Acquire) {
            return;
        }
        if let Some(i) = run.steps.iter().position(|s| s.id == step) {
            if let Some(key) = hold_of(&self.settings, run, i) {
                self.hold_index.note(key, &run.id);
            }
        }
    }

    /// The index of hold keys, built by one scan of the journal the first time.
    async fn hold_index(&self) -> Result<&HoldIndex> {
        let index = &self.hold_index;
        index
            .scanned
            .get_or_try_init(|| async {
                index.tracking.store(true, Ordering::Release);
                for id in self.journal.ids().await? {
                    let Some(run) = self.journal.get(&id).await? else {
                        continue;
                    };
                    for i in 0..run.steps.len() {
                        if let Some(key) = hold_of(&self.settings, &run, i) {
                            index.note(key, &run.id);
                        }
                    }
                }
                Ok::<(), super::RunnerError>(())
            })
            .await?;
        Ok(index)
    }

    /// Every step in the journal holding `key`, and which of them are live or deferred to
    /// `run_id`. Reads the runs the hold index names for `key`, as the journal has them now.
    pub(super) async fn holders(&self, key: &str, run_id: &str) -> Result<Holders> {
        let mut steps = Vec::new();
        for id in self.hold_index().await?.runs_on(key) {
            if id == run_id {
                continue;
            }
            let Some(run) = self.journal.get(&id).await? else {
                continue;
            };
            for i in 0..run.steps.len() {
                if hold_of(&self.settings, &run, i).as_deref() == Some(key) {
                    steps.push((run.clone(), i));
                }
            }
        }
        let mut live: Vec<String> = steps
            .iter()
            .filter(|(r, i)| holds_now(r, &r.steps[*i]))
            .map(|(r, _)| r.id.clone())
            .collect();
        live.dedup();
        // Held steps waiting for this run, or for a run whose own step is held for it.
        let mut waiting_for = BTreeSet::from([run_id.to_string()]);
        let mut deferred = Vec::new();
        let mut held: Vec<(Run, usize)> = steps
            .into_iter()
            .filter(|(r, i)| r.steps[*i].release == Some(ReleaseState::Held))
            .collect();
        loop {
            let (now, rest): (Vec<_>, Vec<_>) = held.into_iter().partition(|(r, i)| {
                held_by(&r.steps[*i])
                    .iter()
                    .any(|w| waiting_for.contains(w))
            });
            if now.is_empty() {
                break;
            }
            waiting_for.extend(now.iter().map(|(r, _)| r.id.clone()));
            deferred.extend(now);
            held = rest;
        }
        Ok(Holders { live, deferred })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::journal::contract;

    fn isolating(id: &str, state: StepState, release: Option<ReleaseState>) -> Run {
        let mut run = contract::run(id, id);
        run.state = RunState::Succeeded;
        let mut step = StepRecord::new("isolate", "ec2.isolate_instance");
        step.params = Some(json!({"instance": "i-1", "region": "eu-west-1"}));
        step.prepared = Some(json!({}));
        step.state = state;
        step.release = release;
        run.steps = vec![step];
        run
    }

    #[test]
    fn the_key_names_the_action_account_region_and_resource() {
        let run = isolating("a", StepState::Succeeded, None);
        assert_eq!(
            hold_of(&Settings::default(), &run, 0).as_deref(),
            Some("ec2.isolate_instance/111122223333/eu-west-1/i-1")
        );
        let mut chat = run.clone();
        chat.steps[0] = StepRecord::new("tell", "notify.chat");
        assert_eq!(hold_of(&Settings::default(), &chat, 0), None);
    }

    #[test]
    fn a_step_holds_while_its_change_may_be_in_force() {
        let held = |state, release, run_state| {
            let mut r = isolating("a", state, release);
            r.state = run_state;
            holds_now(&r, &r.steps[0])
        };
        assert!(held(StepState::Succeeded, None, RunState::Succeeded));
        assert!(held(StepState::Started, None, RunState::Running));
        assert!(held(StepState::Failed, None, RunState::Failed));
        assert!(held(
            StepState::Succeeded,
            Some(ReleaseState::Failed),
            RunState::ReleaseFailed
        ));
        assert!(!held(StepState::Skipped, None, RunState::Denied));
        assert!(!held(
            StepState::Succeeded,
            Some(ReleaseState::Done),
            RunState::Releasing
        ));
        assert!(!held(
            StepState::Succeeded,
            Some(ReleaseState::Held),
            RunState::Released
        ));
        assert!(!held(StepState::Succeeded, None, RunState::Released));
    }
}
