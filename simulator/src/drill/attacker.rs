//! The attacker's moves in a scenario's timeline: a stolen role session, a stolen access key or
//! a user's password calls an AWS operation, or a compromised instance talks to a host. Each
//! is decided against what containment left in place ([`crate::authz`] for API calls, EC2
//! connection tracking for traffic), so a drill asserts that the attacker's *next move* fails,
//! not only that a policy exists.

use serde::{Deserialize, Serialize};

use super::gate::Gate;
use super::scenario::{duration, At, ScenarioError};
use crate::authz::{authorize, Principal, Request};
use crate::world::World;
use cordon_engine::cloud::Target;

/// One attacker move: exactly one of `session`, `key`, `console_login` (with `calls` for the
/// first two), or `connect`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attack {
    /// A name expectations refer to (`attacker_denied: <id>`).
    #[serde(default)]
    pub id: Option<String>,
    /// Temporary credentials of a role, stolen.
    #[serde(default)]
    pub session: Option<SessionSpec>,
    /// A long-term access key id, stolen.
    #[serde(default)]
    pub key: Option<String>,
    /// A console sign-in with a user's password.
    #[serde(default)]
    pub console_login: Option<ConsoleSpec>,
    /// The operation called with `session` or `key` (`ec2:RunInstances`).
    #[serde(default)]
    pub calls: Option<String>,
    /// Traffic from a compromised instance.
    #[serde(default)]
    pub connect: Option<ConnectSpec>,
}

/// A role session.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSpec {
    /// Account of the role.
    pub account: String,
    /// Role name.
    pub role: String,
    /// When its token was issued, from the start (`0s`).
    pub issued: String,
}

/// A console sign-in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSpec {
    /// Account of the user.
    pub account: String,
    /// User name.
    pub user: String,
}

/// Traffic from an instance's primary interface.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectSpec {
    /// Instance id.
    pub instance: String,
    /// `address:port`.
    pub to: String,
}

/// What happened when the attacker moved.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    /// The move's id, if it has one.
    pub id: Option<String>,
    /// When (epoch ms, virtual).
    #[serde(skip)]
    pub at_ms: u64,
    /// What was tried.
    pub what: String,
    /// Account.
    pub account: String,
    /// Allowed (`None`: the simulator cannot decide; the reason says why).
    pub allowed: Option<bool>,
    /// Why.
    pub reason: String,
}

impl Attack {
    /// Checks the move as written.
    pub fn check(&self, field: &str, at: &At<'_>) -> Result<(), ScenarioError> {
        let n = [
            self.session.is_some(),
            self.key.is_some(),
            self.console_login.is_some(),
            self.connect.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if n != 1 {
            return Err(at(
                field,
                "needs exactly one of session, key, console_login, connect".into(),
            ));
        }
        let needs_call = self.session.is_some() || self.key.is_some();
        match (&self.calls, needs_call) {
            (None, true) => {
                return Err(at(
                    field,
                    "a session or key needs `calls: service:Operation`".into(),
                ))
            }
            (Some(_), false) => {
                return Err(at(
                    &format!("{field}.calls"),
                    "only a session or a key calls an operation".into(),
                ))
            }
            (Some(c), true) if !c.contains(':') || c.contains(char::is_whitespace) => {
                return Err(at(
                    &format!("{field}.calls"),
                    format!("`{c}` is not service:Operation (ec2:RunInstances)"),
                ))
            }
            _ => {}
        }
        if let Some(s) = &self.session {
            duration(&s.issued, &format!("{field}.session.issued"), at)?;
        }
        Ok(())
    }

    /// Tries the move at `now_ms` against `world` (API calls) or through `gate` (traffic).
    pub async fn attempt(&self, world: &World, gate: &Gate, start_ms: u64, now_ms: u64) -> Attempt {
        let call = self.calls.clone().unwrap_or_default();
        let (principal, what, account) = if let Some(s) = &self.session {
            let issued = cordon_engine::clock::parse_duration(&s.issued).unwrap_or_default();
            let p = Principal::Session {
                account: s.account.clone(),
                role: s.role.clone(),
                issued_ms: start_ms + issued.as_millis() as u64,
            };
            let what = format!(
                "session of role {} (issued {}) calls {call}",
                s.role,
                super::report::at(start_ms + issued.as_millis() as u64)
            );
            (p, what, s.account.clone())
        } else if let Some(k) = &self.key {
            let account = key_account(world, k).unwrap_or_default();
            (
                Principal::Key(k.clone()),
                format!("key {k} calls {call}"),
                account,
            )
        } else if let Some(c) = &self.console_login {
            let p = Principal::Console {
                account: c.account.clone(),
                user: c.user.clone(),
            };
            (
                p,
                format!("user {} signs in to the console", c.user),
                c.account.clone(),
            )
        } else if let Some(c) = &self.connect {
            return self.connect(c, world, gate, now_ms).await;
        } else {
            return self.attempt_of(now_ms, "nothing", "", None, "no move".into());
        };
        let action = if self.console_login.is_some() {
            "signin:ConsoleLogin".to_string()
        } else {
            call
        };
        let request = Request {
            principal,
            action,
            now_ms,
        };
        match authorize(world, &request) {
            Ok(d) => self.attempt_of(now_ms, &what, &account, Some(d.allowed), d.reason),
            Err(e) => self.attempt_of(now_ms, &what, &account, None, e.to_string()),
        }
    }

    async fn connect(&self, c: &ConnectSpec, world: &World, gate: &Gate, now_ms: u64) -> Attempt {
        let what = format!("{} connects to {}", c.instance, c.to);
        let place = world.accounts.iter().find_map(|(acc, a)| {
            a.regions
                .iter()
                .find(|(_, r)| r.instances.contains_key(&c.instance))
                .map(|(region, _)| (acc.clone(), region.clone()))
        });
        let Some((account, region)) = place else {
            return self.attempt_of(now_ms, &what, "", Some(false), "no such instance".into());
        };
        let t = Target {
            account: account.clone(),
            region,
            run_id: "drill-attacker".into(),
        };
        let (flows, why) = gate.connect(&t, &c.instance, &c.to, now_ms).await;
        self.attempt_of(now_ms, &what, &account, Some(flows), why)
    }

    fn attempt_of(
        &self,
        at_ms: u64,
        what: &str,
        account: &str,
        allowed: Option<bool>,
        reason: String,
    ) -> Attempt {
        Attempt {
            id: self.id.clone(),
            at_ms,
            what: what.into(),
            account: account.into(),
            allowed,
            reason,
        }
    }
}

fn key_account(w: &World, key: &str) -> Option<String> {
    w.accounts.iter().find_map(|(id, a)| {
        a.users
            .values()
            .any(|u| u.keys.iter().any(|(k, _)| k == key))
            .then(|| id.clone())
    })
}
