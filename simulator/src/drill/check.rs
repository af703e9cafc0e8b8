//! Expectations checked against the simulated world and the journal, each with its evidence.

use cordon_engine::cloud::KeyStatus;
use cordon_engine::journal::{Journal, JournalError};
use cordon_engine::run::{Run, RunState, StepState};
use serde::Serialize;

use super::attacker::Attempt;
use super::scenario::{Expect, SessionsRevoked};
use crate::authz::{authorize, Principal, Request};
use crate::world::{Account, World};

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

impl Injected {
    /// Finding `f`, injected at `at_ms`, that started `runs`.
    pub fn new(f: &cordon_engine::Finding, at_ms: u64, runs: Vec<String>) -> Injected {
        Injected {
            finding: f.id.clone(),
            kind: f.kind.clone(),
            account: f.account.clone(),
            at_ms,
            runs,
        }
    }
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
    /// The attacker's moves so far.
    pub attempts: &'a [Attempt],
    /// T+0 (epoch ms).
    pub start_ms: u64,
    /// Now (epoch ms, virtual).
    pub now_ms: u64,
}

/// Every run in the journal, oldest first (ties by id: ids are seeded), without what the
/// drill's checks and report never read: the event, the finding, the vars, the playbook text,
/// and of each step its pre-state, output, proof, approvals and release detail, its parameters
/// cut to the ones naming the resource. A drill of 10,000 findings holds these
/// runs while it releases and reports, so each is a fraction of the run the journal keeps.
pub async fn runs(journal: &dyn Journal) -> Result<Vec<Run>, JournalError> {
    let mut runs = Vec::new();
    for id in journal.ids().await? {
        if let Some(r) = journal.get(&id).await? {
            runs.push(slim(r));
        }
    }
    runs.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
    Ok(runs)
}

/// The latest run of `playbook` (oldest-first order as in [`runs`]), read one run at a time.
pub async fn latest_run(
    journal: &dyn Journal,
    playbook: &str,
) -> Result<Option<Run>, JournalError> {
    let mut latest: Option<Run> = None;
    for id in journal.ids().await? {
        let Some(r) = journal.get(&id).await? else {
            continue;
        };
        let later = latest
            .as_ref()
            .is_none_or(|l| (l.created_ms, &l.id) <= (r.created_ms, &r.id));
        if r.playbook == playbook && later {
            latest = Some(slim(r));
        }
    }
    Ok(latest)
}

/// Every run's state, by run id, read one run at a time (after the release, the report shows
/// each run's state then; only the state is kept).
pub async fn states(
    journal: &dyn Journal,
) -> Result<std::collections::HashMap<String, RunState>, JournalError> {
    let mut states = std::collections::HashMap::new();
    for id in journal.ids().await? {
        if let Some(r) = journal.get(&id).await? {
            states.insert(r.id, r.state);
        }
    }
    Ok(states)
}

/// The run without what a drill never reads (see [`runs`]).
fn slim(mut r: Run) -> Run {
    r.event = Default::default();
    r.finding = serde_json::Value::Null;
    r.vars = serde_json::Value::Null;
    r.playbook_source = String::new();
    for s in &mut r.steps {
        s.prepared = None;
        s.output = None;
        s.proof = None;
        s.release_detail = None;
        s.approvals = Vec::new();
        s.params = s.params.take().map(|p| {
            super::report::RESOURCE_PARAMS
                .iter()
                .filter_map(|k| Some((k.to_string(), p.get(k)?.clone())))
                .collect::<serde_json::Map<_, _>>()
                .into()
        });
    }
    r
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

/// A run's containment state: `contained` (every step that ran succeeded and one contained),
/// `partial` (a step failed, yet something was contained: by another step, or by the failed step
/// itself before it failed, such as a revocation that reached some accounts, seen as accounts
/// whose state differs from the pre-drill snapshot), or `not_contained`; with why.
/// `changed`: the accounts (and `organization`) that differ from the pre-drill snapshot.
pub fn containment_state(run: &Run, changed: &[String]) -> (&'static str, String) {
    let failed: Vec<String> = run
        .steps
        .iter()
        .filter(|s| s.state == StepState::Failed)
        .map(|s| {
            format!(
                "{} failed: {}",
                s.id,
                s.error.as_deref().unwrap_or("no error")
            )
        })
        .collect();
    let contained: Vec<&str> = run
        .steps
        .iter()
        .filter(|s| s.undoable)
        .map(|s| s.id.as_str())
        .collect();
    match (failed.is_empty(), contained.is_empty(), changed.is_empty()) {
        (true, false, _) => ("contained", format!("by {}", contained.join(", "))),
        (true, true, _) => ("not_contained", "no containment step ran".into()),
        (false, true, true) => ("not_contained", failed.join("; ")),
        (false, _, _) => (
            "partial",
            format!(
                "changed: {}; {}",
                if changed.is_empty() {
                    contained.join(", ")
                } else {
                    changed.join(", ")
                },
                failed.join("; ")
            ),
        ),
    }
}

/// The accounts (and `organization`) whose state differs between two worlds, leaving out what
/// release keeps on purpose (see [`restored`]). Compared one account at a time, so no copy of
/// a whole world is made.
pub fn changed(before: &World, now: &World) -> Vec<String> {
    let mut out = Vec::new();
    if before.org.attachments != now.org.attachments {
        out.push("organization".to_string());
    }
    let ids: std::collections::BTreeSet<_> =
        before.accounts.keys().chain(now.accounts.keys()).collect();
    for id in ids {
        let a = before.accounts.get(id).and_then(comparable);
        let b = now.accounts.get(id).and_then(comparable);
        if a != b {
            out.push(format!("account {id}"));
        }
    }
    out
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
            fenced(c.world, c.before, account),
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
    } else if let Some(id) = &x.attacker_denied {
        (format!("attacker_denied {id}"), attacker(c, id, false))
    } else if let Some(id) = &x.attacker_allowed {
        (format!("attacker_allowed {id}"), attacker(c, id, true))
    } else if let Some(r) = &x.sessions_revoked {
        (
            format!("sessions_revoked {}", r.role),
            sessions_revoked(c, r),
        )
    } else if let Some(id) = &x.protected_untouched {
        (
            format!("protected_untouched {id}"),
            untouched(c.before, c.world, id),
        )
    } else if let Some(id) = &x.detached_without_replacement {
        (
            format!("detached_without_replacement {id}"),
            detached(c.before, c.world, id),
        )
    } else if let Some(state) = &x.containment {
        (format!("containment {state}"), containment(c, state))
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

/// Fenced: an SCP attached to the account during the drill (a guardrail the scenario attached
/// to it beforehand does not count).
fn fenced(w: &World, before: &World, account: &str) -> (bool, String) {
    let attached: Vec<String> = w
        .org
        .attachments
        .get(account)
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default();
    let had = before.org.attachments.get(account);
    let met = attached
        .iter()
        .any(|p| p != "p-FullAWSAccess" && !had.is_some_and(|h| h.contains(p)));
    (met, format!("SCPs attached: {}", attached.join(" ")))
}

fn within(c: &Context<'_>, bound_ms: u64) -> (bool, String) {
    let by_id = runs_by_id(c.runs);
    let mut met = true;
    let mut parts = Vec::new();
    for f in c.injected {
        let at = f
            .runs
            .iter()
            .filter_map(|id| by_id.get(id.as_str()).copied())
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
    let diffs = changed(before, after);
    let kept = kept(after).saturating_sub(kept(before));
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

/// The account without what release keeps on purpose (forensic snapshots, `cordon-` groups),
/// as JSON to compare.
fn comparable(a: &Account) -> Option<serde_json::Value> {
    let mut a = a.clone();
    for r in a.regions.values_mut() {
        r.snapshots.clear();
        r.groups.retain(|_, g| !g.name.starts_with("cordon-"));
    }
    serde_json::to_value(&a).ok()
}

/// How many things release keeps on purpose the world holds: policies, forensic snapshots and
/// `cordon-` groups.
fn kept(w: &World) -> usize {
    let mut kept = w.org.policies.len();
    for a in w.accounts.values() {
        for r in a.regions.values() {
            kept += r.snapshots.len();
            kept += r
                .groups
                .values()
                .filter(|g| g.name.starts_with("cordon-"))
                .count();
        }
    }
    kept
}

fn attacker(c: &Context<'_>, id: &str, want_allowed: bool) -> (bool, String) {
    let Some(a) = c
        .attempts
        .iter()
        .rev()
        .find(|a| a.id.as_deref() == Some(id))
    else {
        return (false, format!("the attacker has not tried `{id}` yet"));
    };
    let seen = match a.allowed {
        Some(true) => "allowed",
        Some(false) => "denied",
        None => "undecided",
    };
    let met = a.allowed == Some(want_allowed);
    let at = super::report::at(a.at_ms);
    (met, format!("{} at {at}: {seen}: {}", a.what, a.reason))
}

fn sessions_revoked(c: &Context<'_>, r: &SessionsRevoked) -> (bool, String) {
    let issued = r
        .issued
        .as_deref()
        .and_then(cordon_engine::clock::parse_duration)
        .map_or(0, |d| d.as_millis() as u64);
    let accounts: Vec<String> = if r.accounts.is_empty() {
        c.world
            .accounts
            .iter()
            .filter(|(_, a)| a.roles.contains_key(&r.role))
            .map(|(id, _)| id.clone())
            .collect()
    } else {
        r.accounts.clone()
    };
    if accounts.is_empty() {
        return (false, format!("role {} exists in no account", r.role));
    }
    let mut met = true;
    let mut parts = Vec::new();
    for account in accounts {
        let request = Request {
            principal: Principal::Session {
                account: account.clone(),
                role: r.role.clone(),
                issued_ms: c.start_ms + issued,
            },
            // Any operation: the revocation denies every action.
            action: "ec2:DescribeInstances".into(),
            now_ms: c.now_ms,
        };
        // Revoked means the role's own policies deny the old session, not an SCP fence.
        match authorize(c.world, &request) {
            Ok(d) if !d.allowed && d.reason.starts_with("explicit deny in inline policy") => {
                parts.push(format!("{account}: revoked ({})", d.reason));
            }
            Ok(d) => {
                met = false;
                parts.push(format!("{account}: NOT revoked ({})", d.reason));
            }
            Err(e) => {
                met = false;
                parts.push(format!("{account}: {e}"));
            }
        }
    }
    (met, parts.join("; "))
}

/// The resource named `id` (an account id, an instance id, a user or role name) serialized,
/// in every account where it is.
fn resource_state(w: &World, id: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(a) = w.org.attachments.get(id) {
        found.push(format!("{id} SCPs {a:?}"));
    }
    for (acc, a) in &w.accounts {
        let json = |v: serde_json::Result<String>| v.unwrap_or_default();
        if let Some(r) = a.roles.get(id) {
            found.push(format!("{acc} role {}", json(serde_json::to_string(r))));
        }
        if let Some(u) = a.users.get(id) {
            found.push(format!("{acc} user {}", json(serde_json::to_string(u))));
        }
        for r in a.regions.values() {
            if let Some(i) = r.instances.get(id) {
                found.push(format!("{acc} instance {}", json(serde_json::to_string(i))));
            }
        }
    }
    found
}

fn untouched(before: &World, now: &World, id: &str) -> (bool, String) {
    let (b, n) = (resource_state(before, id), resource_state(now, id));
    if b.is_empty() {
        return (false, format!("{id} is not in the organization"));
    }
    if b == n {
        (true, format!("{id} unchanged ({} place(s))", b.len()))
    } else {
        (
            false,
            format!("{id} changed: was {}; now {}", b.join(" | "), n.join(" | ")),
        )
    }
}

fn containment(c: &Context<'_>, want: &str) -> (bool, String) {
    if c.injected.is_empty() {
        return (false, "no finding injected".into());
    }
    let mut met = true;
    let mut parts = Vec::new();
    let changed = changed(c.before, c.world);
    let by_id = runs_by_id(c.runs);
    for f in c.injected {
        for run in f
            .runs
            .iter()
            .filter_map(|id| by_id.get(id.as_str()).copied())
        {
            let (state, why) = containment_state(run, &changed);
            met &= state == want;
            parts.push(format!("{} ({}): {state}: {why}", f.finding, run.playbook));
        }
        if f.runs.is_empty() {
            parts.push(format!("{}: no run (not counted)", f.finding));
        }
    }
    if c.injected.iter().all(|f| f.runs.is_empty()) {
        return (
            false,
            format!("no injected finding started a run: {}", parts.join("; ")),
        );
    }
    (met, parts.join("; "))
}

/// The instance's group before the drill, and now: it is no longer a member and the group has
/// no member it did not have before.
fn detached(before: &World, now: &World, id: &str) -> (bool, String) {
    for (acc, a) in &before.accounts {
        for (region, r) in &a.regions {
            let Some((name, g)) = r
                .scaling_groups
                .iter()
                .find(|(_, g)| g.instances.contains_key(id))
            else {
                continue;
            };
            let Some(g_now) = now
                .accounts
                .get(acc)
                .and_then(|a| a.regions.get(region))
                .and_then(|r| r.scaling_groups.get(name))
            else {
                return (false, format!("group {name} is gone"));
            };
            let member = g_now.instances.contains_key(id);
            let launched: Vec<&String> = g_now
                .instances
                .keys()
                .filter(|i| !g.instances.contains_key(*i))
                .collect();
            let evidence = format!(
                "{name}: desired {} (was {}), members {:?}, {} replacement(s) launched",
                g_now.desired_capacity,
                g.desired_capacity,
                g_now.instances.keys().collect::<Vec<_>>(),
                launched.len()
            );
            return (!member && launched.is_empty(), evidence);
        }
    }
    (
        false,
        format!("{id} was in no Auto Scaling group before the drill"),
    )
}

fn runs_by_id(runs: &[Run]) -> std::collections::HashMap<&str, &Run> {
    runs.iter().map(|r| (r.id.as_str(), r)).collect()
}
