//! A drill scenario: the YAML a user writes (`org`, `resources`, `playbooks`, `timeline`,
//! `expect`), read with serde_yaml and checked with file, line and field on every error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cordon_engine::clock::parse_duration;
use cordon_engine::playbook::locate::{locate, parse_path};
use serde::Deserialize;
use serde_json::Value;

pub use super::org::{AccountSpec, Org, OuSpec, PolicySpec};

/// A scenario file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the drill rehearses (shown in the report).
    pub name: String,
    /// The organization: OUs, accounts, guardrail SCPs.
    #[serde(default)]
    pub org: Org,
    /// Resources per account id.
    #[serde(default)]
    pub resources: BTreeMap<String, Resources>,
    /// The playbook directory, relative to the scenario file (default: the `playbooks/`
    /// directory above `playbooks/drills/`, i.e. the scenario's parent's parent).
    #[serde(default)]
    pub playbooks: Option<String>,
    /// Settings (as in `cordon.yaml`'s `settings`), e.g. `break_glass_roles`.
    #[serde(default)]
    pub config: Option<cordon_engine::config::Settings>,
    /// Faults injected into cordon's cloud calls during the timeline.
    #[serde(default)]
    pub faults: Vec<super::faults::FaultSpec>,
    /// What happens, and when.
    #[serde(default)]
    pub timeline: Vec<Event>,
    /// What must be true, and by when.
    #[serde(default)]
    pub expect: Vec<Expect>,
}

/// The resources of one account.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// EC2 instances.
    #[serde(default)]
    pub instances: Vec<InstanceSpec>,
    /// Security groups by id, per region: `{region: {sg-id: name}}`.
    #[serde(default)]
    pub security_groups: BTreeMap<String, BTreeMap<String, String>>,
    /// IAM users.
    #[serde(default)]
    pub users: Vec<UserSpec>,
    /// IAM roles: a name, or `{name, path}` (`/aws-service-role/...` for a service-linked
    /// role, `/aws-reserved/sso.amazonaws.com/` for an IAM Identity Center one: AWS lets no
    /// one change those).
    #[serde(default)]
    pub roles: Vec<RoleSpec>,
    /// Auto Scaling groups per region: `{region: {name: {min, max, desired}}}`; members are
    /// the instances naming the group in `scaling_group`.
    #[serde(default)]
    pub scaling_groups: BTreeMap<String, BTreeMap<String, ScalingSpec>>,
}

/// A role: its name, or its name and path.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RoleSpec {
    /// A role at path `/`.
    Name(String),
    /// A role at a path.
    WithPath {
        /// Name.
        name: String,
        /// Path (`/`, `/aws-service-role/elasticloadbalancing.amazonaws.com/`).
        path: String,
    },
}

impl RoleSpec {
    /// (name, path).
    pub fn parts(&self) -> (&str, &str) {
        match self {
            RoleSpec::Name(n) => (n, "/"),
            RoleSpec::WithPath { name, path } => (name, path),
        }
    }
}

/// An Auto Scaling group's capacity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalingSpec {
    /// Minimum size.
    pub min: i32,
    /// Maximum size.
    pub max: i32,
    /// Desired capacity.
    pub desired: i32,
}

/// One instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceSpec {
    /// Instance id.
    pub id: String,
    /// Region.
    pub region: String,
    /// VPC id.
    pub vpc: String,
    /// Network interfaces: ENI id -> security group ids (declared in `security_groups`).
    pub interfaces: BTreeMap<String, Vec<String>>,
    /// EBS volume ids.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The Auto Scaling group it is in service in (declared in `scaling_groups`).
    #[serde(default)]
    pub scaling_group: Option<String>,
}

/// One IAM user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// User name.
    pub name: String,
    /// Active access key ids.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Has a console password (default true).
    #[serde(default = "yes")]
    pub login_profile: bool,
}

fn yes() -> bool {
    true
}

/// One timeline entry: at `at` (a duration from the drill's start: `90s`, `5m`, `2h`), exactly
/// one of `inject`, `approve`, `deny`, `attacker`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// When, from the start (`30s`, `5m`, `2h`, `1d`).
    pub at: String,
    /// Deliver a finding.
    #[serde(default)]
    pub inject: Option<Inject>,
    /// A responder approves a waiting step.
    #[serde(default)]
    pub approve: Option<Decide>,
    /// A responder denies a waiting step.
    #[serde(default)]
    pub deny: Option<Decide>,
    /// The attacker acts.
    #[serde(default)]
    pub attacker: Option<super::attacker::Attack>,
}

/// A finding to deliver: an event from `fixture` (a file, relative to the scenario) or inline
/// `event`, with `set` overrides (dotted JSON paths, `[n]` for array items).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inject {
    /// Event file, relative to the scenario file.
    #[serde(default)]
    pub fixture: Option<String>,
    /// Inline event.
    #[serde(default)]
    pub event: Option<Value>,
    /// Field overrides: `detail.resource.instanceDetails.instanceId: i-0abc`.
    #[serde(default)]
    pub set: BTreeMap<String, Value>,
    /// Start this playbook for the finding as a person would (manual playbooks), instead of
    /// the playbooks whose trigger matches.
    #[serde(default)]
    pub playbook: Option<String>,
    /// Who starts it (with `playbook`; default `responder`).
    #[serde(default)]
    pub by: Option<String>,
}

/// A responder's decision on the waiting step `step` of the latest run of `playbook`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decide {
    /// Playbook id.
    pub playbook: String,
    /// Step id.
    pub step: String,
    /// Who decides.
    pub by: String,
}

/// One expectation: by `by` (default: once every run has stopped after the last timeline
/// entry), exactly one check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// When it is checked, from the start.
    #[serde(default)]
    pub by: Option<String>,
    /// Every interface of this instance is only in groups with no rules.
    #[serde(default)]
    pub instance_isolated: Option<String>,
    /// This access key is inactive.
    #[serde(default)]
    pub key_inactive: Option<String>,
    /// This IAM user has no active key, no console password and an inline policy.
    #[serde(default)]
    pub user_disabled: Option<String>,
    /// This account has an SCP attached besides FullAWSAccess.
    #[serde(default)]
    pub account_fenced: Option<String>,
    /// The latest run of a playbook is in a state.
    #[serde(default)]
    pub run: Option<RunExpect>,
    /// Every finding injected so far was contained within this long of its injection.
    #[serde(default)]
    pub containment_within: Option<String>,
    /// At most this many mutating cloud calls so far.
    #[serde(default)]
    pub cloud_calls_at_most: Option<usize>,
    /// The attacker's action with this `id` was denied (its latest attempt so far).
    #[serde(default)]
    pub attacker_denied: Option<String>,
    /// The attacker's action with this `id` was allowed (a gap the drill documents).
    #[serde(default)]
    pub attacker_allowed: Option<String>,
    /// Sessions of a role issued before a time are denied in every account named.
    #[serde(default)]
    pub sessions_revoked: Option<SessionsRevoked>,
    /// A resource (instance id, user or role name, account id) is as it was before the drill.
    #[serde(default)]
    pub protected_untouched: Option<String>,
    /// The instance is out of its Auto Scaling group, and the group launched no replacement.
    #[serde(default)]
    pub detached_without_replacement: Option<String>,
    /// Every finding injected so far that started a run ended in this containment state:
    /// `contained`, `partial` or `not_contained` (a finding no playbook took is named in the
    /// evidence but not counted; assert it with `run`).
    #[serde(default)]
    pub containment: Option<String>,
}

/// A `sessions_revoked` expectation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsRevoked {
    /// Role name.
    pub role: String,
    /// Accounts (default: every account where the role exists).
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Sessions issued at this time from the start (default `0s`).
    #[serde(default)]
    pub issued: Option<String>,
}

/// A run expectation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunExpect {
    /// Playbook id.
    pub playbook: String,
    /// Run state (`succeeded`, `waiting_approval`, `denied`...).
    pub state: String,
}

/// A scenario that loaded and checked, with where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The scenario.
    pub scenario: Scenario,
    /// Its file.
    pub path: PathBuf,
    /// The playbook directory.
    pub playbooks: PathBuf,
    /// The injected events, in timeline order (for `inject` entries), as compact JSON before
    /// the entry's `set` overrides (checked at load; [`Loaded::event`] applies them). Entries
    /// injecting one fixture share its text: a drill of 10,000 findings holds it once.
    pub events: Vec<Option<Arc<str>>>,
}

impl Loaded {
    /// The event timeline entry `i` injects, overrides applied; `None` when it injects none.
    pub fn event(&self, i: usize) -> Option<Value> {
        let text = self.events.get(i)?.as_deref()?;
        // Checked at load: it parses, and every override applies.
        let mut value: Value = serde_json::from_str(text).unwrap_or_default();
        if let Some(inject) = &self.scenario.timeline[i].inject {
            for (path, v) in &inject.set {
                // Through JSON text, as if the override had been written in the fixture.
                let v = serde_json::from_str(&v.to_string()).unwrap_or_default();
                let _ = set(&mut value, path, v);
            }
        }
        Some(value)
    }
}

/// A scenario error: `file:line: field: problem`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {field}: {problem}")]
pub struct ScenarioError {
    /// The scenario file.
    pub file: String,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// Field path (`timeline[2].at`).
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

/// Reads and checks the scenario at `path`. Errors name file, line and field.
pub fn load(path: &Path) -> Result<Loaded, ScenarioError> {
    let file = path.display().to_string();
    let err = |line: usize, field: &str, problem: String| ScenarioError {
        file: file.clone(),
        line,
        field: field.to_string(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(0, "", e.to_string()))?;
    let scenario: Scenario = serde_yaml::from_str(&text).map_err(|e| {
        let line = e.location().map_or(0, |l| l.line());
        let message = e.to_string();
        // serde_yaml says `field: problem at line L column C`; keep the field and the problem.
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_string();
        match message.split_once(": ") {
            Some((field, problem)) if !field.contains(' ') => err(line, field, problem.into()),
            _ => err(line, "", message),
        }
    })?;
    let at = |field: &str, problem: String| {
        err(
            locate(&text, &parse_path(field)).unwrap_or(0),
            field,
            problem,
        )
    };
    check(&scenario, &at)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let playbooks = match &scenario.playbooks {
        Some(p) => dir.join(p),
        None => dir.join(".."),
    };
    let mut events = Vec::new();
    let mut fixtures = BTreeMap::new();
    for (i, e) in scenario.timeline.iter().enumerate() {
        events.push(match &e.inject {
            Some(inject) => Some(event(inject, dir, i, &mut fixtures, &at)?),
            None => None,
        });
    }
    Ok(Loaded {
        scenario,
        path: path.to_path_buf(),
        playbooks,
        events,
    })
}

/// Builds an error at a field path.
pub type At<'a> = dyn Fn(&str, String) -> ScenarioError + 'a;

impl Loaded {
    /// Checks that the playbooks the timeline names (`inject.playbook`, and the playbook and
    /// step of each `approve`/`deny`) are in `set`, once the playbooks are loaded: a typo is a
    /// scenario error with file, line and field, not a timeline note and a missed expectation.
    pub fn check_playbooks(
        &self,
        set: &cordon_engine::playbook::PlaybookSet,
    ) -> Result<(), ScenarioError> {
        // The file is read again only to locate an error's line.
        let at = |field: &str, problem: String| {
            let text = std::fs::read_to_string(&self.path).unwrap_or_default();
            ScenarioError {
                file: self.path.display().to_string(),
                line: locate(&text, &parse_path(field)).unwrap_or(0),
                field: field.to_string(),
                problem,
            }
        };
        let ids = || {
            set.iter()
                .map(|p| p.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (i, e) in self.scenario.timeline.iter().enumerate() {
            let named = e.inject.as_ref().and_then(|x| x.playbook.as_deref());
            if let Some(p) = named.filter(|p| set.get(p).is_none()) {
                return Err(at(
                    &format!("timeline[{i}].inject.playbook"),
                    format!(
                        "no playbook `{p}` in {} (loaded: {})",
                        self.playbooks.display(),
                        ids()
                    ),
                ));
            }
            for (verb, d) in [("approve", &e.approve), ("deny", &e.deny)] {
                let Some(d) = d else { continue };
                let field = format!("timeline[{i}].{verb}");
                let Some(p) = set.get(&d.playbook) else {
                    return Err(at(
                        &format!("{field}.playbook"),
                        format!(
                            "no playbook `{}` in {} (loaded: {})",
                            d.playbook,
                            self.playbooks.display(),
                            ids()
                        ),
                    ));
                };
                if !p.steps.iter().any(|s| s.id == d.step) {
                    let steps: Vec<&str> = p.steps.iter().map(|s| s.id.as_str()).collect();
                    return Err(at(
                        &format!("{field}.step"),
                        format!(
                            "playbook {} has no step `{}` (its steps: {})",
                            p.id,
                            d.step,
                            steps.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A duration field (`30s`, `5m`, `2h`, `1d`).
pub fn duration(text: &str, field: &str, at: &At<'_>) -> Result<Duration, ScenarioError> {
    parse_duration(text).ok_or_else(|| {
        at(
            field,
            format!("`{text}` is not a duration (write 30s, 5m, 2h or 1d)"),
        )
    })
}

fn check(s: &Scenario, at: &At<'_>) -> Result<(), ScenarioError> {
    super::org::check(&s.org, at)?;
    for account in s.resources.keys() {
        if !s.org.accounts.iter().any(|a| &a.id == account) {
            return Err(at(
                &format!("resources.{account}"),
                "is not an account under org.accounts".into(),
            ));
        }
    }
    for (i, e) in s.timeline.iter().enumerate() {
        let field = format!("timeline[{i}]");
        duration(&e.at, &format!("{field}.at"), at)?;
        let n = [
            e.inject.is_some(),
            e.approve.is_some(),
            e.deny.is_some(),
            e.attacker.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if n != 1 {
            return Err(at(
                &field,
                "needs exactly one of inject, approve, deny, attacker".into(),
            ));
        }
        if let Some(a) = &e.attacker {
            a.check(&format!("{field}.attacker"), at)?;
            check_attack_refs(s, a, &format!("{field}.attacker"), at)?;
        }
    }
    for (i, x) in s.expect.iter().enumerate() {
        let field = format!("expect[{i}]");
        if let Some(by) = &x.by {
            duration(by, &format!("{field}.by"), at)?;
        }
        if let Some(d) = &x.containment_within {
            duration(d, &format!("{field}.containment_within"), at)?;
        }
        let n = [
            x.instance_isolated.is_some(),
            x.key_inactive.is_some(),
            x.user_disabled.is_some(),
            x.account_fenced.is_some(),
            x.run.is_some(),
            x.containment_within.is_some(),
            x.cloud_calls_at_most.is_some(),
            x.attacker_denied.is_some(),
            x.attacker_allowed.is_some(),
            x.sessions_revoked.is_some(),
            x.protected_untouched.is_some(),
            x.containment.is_some(),
            x.detached_without_replacement.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if n != 1 {
            return Err(at(&field, "needs exactly one check (instance_isolated, key_inactive, user_disabled, account_fenced, run, containment_within, cloud_calls_at_most, attacker_denied, attacker_allowed, sessions_revoked, protected_untouched, containment, detached_without_replacement)".into()));
        }
        check_expect_refs(s, x, &field, at)?;
    }
    for (i, f) in s.faults.iter().enumerate() {
        super::faults::check(f, &format!("faults[{i}]"), at)?;
    }
    Ok(())
}

/// The attacker's move names what the scenario declares: a session of a role, a key, a user and
/// an instance that exist in an account under `org.accounts`. A typo must not become a move
/// "denied" because its target does not exist, which would meet `attacker_denied` for nothing.
fn check_attack_refs(
    s: &Scenario,
    a: &super::attacker::Attack,
    field: &str,
    at: &At<'_>,
) -> Result<(), ScenarioError> {
    let resources = |account: &str, what: &str| {
        if !s.org.accounts.iter().any(|a| a.id == account) {
            return Err(at(
                &format!("{field}.{what}.account"),
                format!("{account} is not an account under org.accounts"),
            ));
        }
        Ok(s.resources.get(account))
    };
    if let Some(session) = &a.session {
        let declared = resources(&session.account, "session")?;
        let roles: Vec<&str> = declared
            .into_iter()
            .flat_map(|r| r.roles.iter().map(|r| r.parts().0))
            .collect();
        if !roles.contains(&session.role.as_str()) {
            return Err(at(
                &format!("{field}.session.role"),
                format!(
                    "`{}` is not a role of account {} under resources (its roles: {})",
                    session.role,
                    session.account,
                    if roles.is_empty() {
                        "none".into()
                    } else {
                        roles.join(", ")
                    }
                ),
            ));
        }
    }
    if let Some(login) = &a.console_login {
        let declared = resources(&login.account, "console_login")?;
        if !declared.is_some_and(|r| r.users.iter().any(|u| u.name == login.user)) {
            return Err(at(
                &format!("{field}.console_login.user"),
                format!(
                    "`{}` is not a user of account {} under resources",
                    login.user, login.account
                ),
            ));
        }
    }
    if let Some(key) = &a.key {
        let known = s
            .resources
            .values()
            .flat_map(|r| &r.users)
            .any(|u| u.keys.contains(key));
        if !known {
            return Err(at(
                &format!("{field}.key"),
                format!("`{key}` is not an access key of a user under resources"),
            ));
        }
    }
    if let Some(c) = &a.connect {
        let known = s
            .resources
            .values()
            .flat_map(|r| &r.instances)
            .any(|i| i.id == c.instance);
        if !known {
            return Err(at(
                &format!("{field}.connect.instance"),
                format!("`{}` is not an instance under resources", c.instance),
            ));
        }
    }
    Ok(())
}

/// An expectation naming an attacker action names one the timeline has; a containment state
/// is one of the three.
fn check_expect_refs(
    s: &Scenario,
    x: &Expect,
    field: &str,
    at: &At<'_>,
) -> Result<(), ScenarioError> {
    for (name, id) in [
        ("attacker_denied", &x.attacker_denied),
        ("attacker_allowed", &x.attacker_allowed),
    ] {
        if let Some(id) = id {
            let known = s.timeline.iter().any(|e| {
                e.attacker
                    .as_ref()
                    .is_some_and(|a| a.id.as_deref() == Some(id))
            });
            if !known {
                return Err(at(
                    &format!("{field}.{name}"),
                    format!("no attacker entry in the timeline has id `{id}`"),
                ));
            }
        }
    }
    if let Some(c) = &x.containment {
        if !["contained", "partial", "not_contained"].contains(&c.as_str()) {
            return Err(at(
                &format!("{field}.containment"),
                format!("`{c}` is not contained, partial or not_contained"),
            ));
        }
    }
    if let Some(r) = &x.sessions_revoked {
        if let Some(issued) = &r.issued {
            duration(issued, &format!("{field}.sessions_revoked.issued"), at)?;
        }
    }
    Ok(())
}

/// Fixtures read so far: path -> (compact JSON, parsed).
type Fixtures = BTreeMap<PathBuf, (Arc<str>, Value)>;

/// The event of timeline entry `i` before its overrides, as compact JSON; checks that every
/// override applies.
fn event(
    inject: &Inject,
    dir: &Path,
    i: usize,
    fixtures: &mut Fixtures,
    at: &At<'_>,
) -> Result<Arc<str>, ScenarioError> {
    let field = format!("timeline[{i}].inject");
    let (text, mut value) = match (&inject.fixture, &inject.event) {
        (Some(f), None) => {
            let path = dir.join(f);
            if !fixtures.contains_key(&path) {
                let bytes = std::fs::read(&path).map_err(|e| {
                    at(
                        &format!("{field}.fixture"),
                        format!("{}: {e}", path.display()),
                    )
                })?;
                let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
                    at(
                        &format!("{field}.fixture"),
                        format!("{}: not JSON: {e}", path.display()),
                    )
                })?;
                fixtures.insert(path.clone(), (value.to_string().into(), value));
            }
            let (text, value) = &fixtures[&path];
            (text.clone(), value.clone())
        }
        (None, Some(v)) => (v.to_string().into(), v.clone()),
        _ => {
            return Err(at(&field, "needs exactly one of fixture, event".into()));
        }
    };
    for (path, v) in &inject.set {
        set(&mut value, path, v.clone()).map_err(|p| at(&format!("{field}.set.{path}"), p))?;
    }
    Ok(text)
}

/// Sets the field at a dotted path (`a.b[0].c`), creating missing object keys.
fn set(root: &mut Value, path: &str, v: Value) -> Result<(), String> {
    let mut cur = root;
    for part in path.split('.') {
        let (key, index) = match part.split_once('[') {
            Some((k, rest)) => {
                let n = rest
                    .strip_suffix(']')
                    .and_then(|n| n.parse::<usize>().ok())
                    .ok_or_else(|| format!("`{part}` is not `name[n]`"))?;
                (k, Some(n))
            }
            None => (part, None),
        };
        let obj = cur
            .as_object_mut()
            .ok_or_else(|| format!("`{key}`: its parent is not an object"))?;
        cur = obj.entry(key).or_insert(Value::Null);
        if let Some(n) = index {
            let len = cur.as_array().map_or(0, Vec::len);
            cur = cur
                .get_mut(n)
                .ok_or_else(|| format!("`{part}`: no item {n} (the array has {len})"))?;
        }
    }
    *cur = v;
    Ok(())
}
