//! Expectations checked against the simulated world and the journal, each with its evidence.

use cordon_engine::cloud::KeyStatus;
use cordon_engine::journal::{Journal, JournalError};
use cordon_engine::run::{Run, StepState};
use serde::Serialize;

use super::scenario::Expect;
use crate::world::World;

/// A finding the drill injected.
#[derive(Debug, Clone, Serialize)]
pub struct Injected {
    /// Finding id.
    pub finding: String,
    /// Finding type.
    pub kind: String,
    /// Account.
    pub account: String,
    /// When (epoch ms, virtual).
    pub at_ms: u64,
    /// The runs it started.
    pub runs: Vec<String>,
}

/// One expectation's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// What was expected (`expect[2] key_inactive AKIA...`).
    pub expectation: String,
    /// When it was checked (epoch ms, virtual).
    pub at_ms: u64,
    /// Met or missed.
    pub met: bool,
    /// What was seen.
    pub evidence: String,
}

/// What an expectation is checked against.
pub struct Context<'a> {
    /// The world now.
    pub world: &'a World,
    /// The world before the drill.
    pub before: &'a World,
    /// Every run, oldest first.
    pub runs: &'a [Run],
    /// The findings injected so far.
    pub injected: &'a [Injected],
    /// Now (epoch ms, virtual).
    pub now_ms: u64,
}

/// Every run in the journal, oldest first (ties by id: ids are seeded).
pub async fn runs(journal: &dyn Journal) -> Result<Vec<Run>, JournalError> {
    let mut runs = Vec::new();
    for id in journal.ids().await? {
        if let Some(r) = journal.get(&id).await? {
            runs.push(r);
        }
    }
    runs.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
    Ok(runs)
}

/// When a run reached containment (epoch ms): the end of its last containment step (one release
/// can undo), provided at least one succeeded and none failed. `None`: not contained.
pub fn contained_at(run: &Run) -> Option<u64> {
    let containing: Vec<_> = run.steps.iter().filter(|s| s.undoable).collect();
    if run.steps.iter().any(|s| s.state == StepState::Failed) {
        return None;
    }
    containing.iter().filter_map(|s| s.finished_ms).max()
}

/// When a run's first action started (epoch ms): its first step that is not an approval.
pub fn first_action_at(run: &Run) -> Option<u64> {
    run.steps
        .iter()
        .filter(|s| s.action != "approval")
        .filter_map(|s| s.started_ms)
        .min()
}

/// Checks expectation `i`.
pub fn expectation(x: &Expect, i: usize, c: &Context<'_>) -> Outcome {
    let (what, (met, evidence)) = if let Some(id) = &x.instance_isolated {
        (format!("instance_isolated {id}"), isolated(c.world, id))
    } else if let Some(id) = &x.key_inactive {
        (format!("key_inactive {id}"), key_inactive(c.world, id))
    } else if let Some(name) = &x.user_disabled {
        (
            format!("user_disabled {name}"),
            user_disabled(c.world, name),
        )
    } else if let Some(account) = &x.account_fenced {
        (
            format!("account_fenced {account}"),
            fenced(c.world, account),
        )
    } else if let Some(r) = &x.run {
        let latest = c.runs.iter().rev().find(|run| run.playbook == r.playbook);
        let seen = latest.map_or("no run", |run| run.state.as_str());
        (
            format!("run {} {}", r.playbook, r.state),
            (
                seen == r.state,
                format!("latest run of {}: {seen}", r.playbook),
            ),
        )
    } else if let Some(d) = &x.containment_within {
        let bound = cordon_engine::clock::parse_duration(d).unwrap_or_default();
        (
            format!("containment_within {d}"),
            within(c, bound.as_millis() as u64),
        )
    } else if let Some(n) = x.cloud_calls_at_most {
        let made = c.world.calls.len().saturating_sub(c.before.calls.len());
        (
            format!("cloud_calls_at_most {n}"),
            (made <= n, format!("{made} mutating cloud calls")),
        )
    } else {
        ("nothing".into(), (false, "no check".into()))
    };
    Outcome {
        expectation: format!("expect[{i}] {what}"),
        at_ms: c.now_ms,
        met,
        evidence,
    }
}

fn isolated(w: &World, id: &str) -> (bool, String) {
    for a in w.accounts.values() {
        for r in a.regions.values() {
            let Some(i) = r.instances.get(id) else {
                continue;
            };
            let mut open = Vec::new();
            let mut seen = Vec::new();
            for (eni, groups) in &i.interfaces {
                for g in groups {
                    let rules = r.groups.get(g).map_or(0, |g| g.ingress + g.egress);
                    seen.push(format!("{eni} in {g} ({rules} rules)"));
                    if rules > 0 {
                        open.push(g.clone());
                    }
                }
            }
            return (open.is_empty(), seen.join(", "));
        }
    }
    (false, "no such instance".into())
}

fn key_inactive(w: &World, id: &str) -> (bool, String) {
    for a in w.accounts.values() {
        for (name, u) in &a.users {
            if let Some((_, status)) = u.keys.iter().find(|(k, _)| k == id) {
                let inactive = *status == KeyStatus::Inactive;
                return (inactive, format!("key of {name}: {status:?}"));
            }
        }
    }
    (false, "no such key".into())
}

fn user_disabled(w: &World, name: &str) -> (bool, String) {
    for a in w.accounts.values() {
        if let Some(u) = a.users.get(name) {
            let active = u
                .keys
                .iter()
                .filter(|(_, s)| *s == KeyStatus::Active)
                .count();
            let met = active == 0 && !u.login_profile && !u.inline.is_empty();
            let evidence = format!(
                "{active} active keys, console password: {}, inline policies: {}",
                u.login_profile,
                u.inline.keys().cloned().collect::<Vec<_>>().join(" ")
            );
            return (met, evidence);
        }
    }
    (false, "no such user".into())
}

fn fenced(w: &World, account: &str) -> (bool, String) {
    let attached: Vec<String> = w
        .org
        .attachments
        .get(account)
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default();
    let met = attached.iter().any(|p| p != "p-FullAWSAccess");
    (met, format!("SCPs attached: {}", attached.join(" ")))
}

fn within(c: &Context<'_>, bound_ms: u64) -> (bool, String) {
    let mut met = true;
    let mut parts = Vec::new();
    for f in c.injected {
        let at = f
            .runs
            .iter()
            .filter_map(|id| c.runs.iter().find(|r| &r.id == id))
            .filter_map(contained_at)
            .max();
        match at {
            Some(t) if t.saturating_sub(f.at_ms) <= bound_ms => {
                parts.push(format!(
                    "{}: {}",
                    f.finding,
                    super::report::span(t - f.at_ms)
                ));
            }
            Some(t) => {
                met = false;
                parts.push(format!(
                    "{}: {} (over)",
                    f.finding,
                    super::report::span(t - f.at_ms)
                ));
            }
            None => {
                met = false;
                parts.push(format!("{}: not contained", f.finding));
            }
        }
    }
    if parts.is_empty() {
        return (false, "no finding injected".into());
    }
    (met, parts.join("; "))
}

/// The world after release against the world before the drill: organization attachments and
/// accounts equal. Left out on purpose, and named in the evidence: forensic snapshots (kept as
/// evidence), the `cordon-` isolation groups and the quarantine SCP (created once, reused, hold
/// no resource), and the call log, chat and audit events (history, not state).
pub fn restored(before: &World, after: &World) -> Outcome {
    let (before, kept_before) = comparable(before);
    let (after, kept_after) = comparable(after);
    let mut diffs = Vec::new();
    if before.org.attachments != after.org.attachments
        || before.org.scp_enabled != after.org.scp_enabled
    {
        diffs.push("organization (SCP attachments)".to_string());
    }
    let ids: std::collections::BTreeSet<_> = before
        .accounts
        .keys()
        .chain(after.accounts.keys())
        .collect();
    for id in ids {
        let a = before
            .accounts
            .get(id)
            .and_then(|a| serde_json::to_value(a).ok());
        let b = after
            .accounts
            .get(id)
            .and_then(|a| serde_json::to_value(a).ok());
        if a != b {
            diffs.push(format!("account {id}"));
        }
    }
    let kept = kept_after.saturating_sub(kept_before);
    Outcome {
        expectation: "released: world equals its pre-drill snapshot".into(),
        at_ms: 0,
        met: diffs.is_empty(),
        evidence: if diffs.is_empty() {
            format!("equal after release ({kept} forensic snapshots, isolation groups and policies kept)")
        } else {
            format!("differs after release: {}", diffs.join(", "))
        },
    }
}

/// The world without what release keeps on purpose, and how many such things it held.
fn comparable(w: &World) -> (World, usize) {
    let mut w = w.clone();
    let mut kept = w.org.policies.len();
    for a in w.accounts.values_mut() {
        for r in a.regions.values_mut() {
            kept += r.snapshots.len();
            r.snapshots.clear();
            let n = r.groups.len();
            r.groups.retain(|_, g| !g.name.starts_with("cordon-"));
            kept += n - r.groups.len();
        }
    }
    (w, kept)
}
