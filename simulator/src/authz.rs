//! AWS request authorization, for the parts of IAM and Organizations policy that containment
//! leaves behind: what a drill's attacker can still do once cordon has acted.
//!
//! Follows the IAM User Guide, "Policy evaluation logic" (an explicit deny in any policy wins;
//! a service control policy must allow the action for a member account's principals; SCPs do not
//! apply to the management account), "IAM JSON policy elements: Condition operators" and
//! "Revoking IAM role temporary security credentials". What the simulator does not model it says
//! so: identity-based *allows* are not modelled (a scenario's principals are taken to hold an
//! allow for what the attacker calls, since that is what makes them worth stealing), and a policy
//! element this module does not evaluate (`NotAction`, `NotResource`, an unknown condition
//! operator) is an [`Unsupported`] error, never a silent allow.

use cordon_engine::cloud::KeyStatus;
use serde_json::Value;

use crate::world::World;

/// Who makes a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Temporary credentials of a role (an `ASIA…` key), issued at `issued_ms` (epoch ms).
    Session {
        /// Account of the role.
        account: String,
        /// Role name.
        role: String,
        /// When the session's token was issued (`aws:TokenIssueTime`), epoch ms.
        issued_ms: u64,
    },
    /// A long-term access key (`AKIA…`) of an IAM user: no token issue time.
    Key(String),
    /// An IAM user signing in to the console with its password.
    Console {
        /// Account of the user.
        account: String,
        /// User name.
        user: String,
    },
}

/// A request: a principal calls `action` (`service:Operation`) at `now_ms` (epoch ms).
#[derive(Debug, Clone)]
pub struct Request {
    /// Who.
    pub principal: Principal,
    /// `ec2:RunInstances`, `s3:GetObject`...
    pub action: String,
    /// When (epoch ms): `aws:CurrentTime`.
    pub now_ms: u64,
}

/// The answer, with the reason AWS would give (or the policy that decided).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allowed or denied.
    pub allowed: bool,
    /// Why: `explicit deny in SCP cordon-quarantine (p-…)`, `access key … is Inactive`...
    pub reason: String,
}

/// A policy this module cannot evaluate faithfully.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot evaluate {policy}: {problem}")]
pub struct Unsupported {
    /// Which policy.
    pub policy: String,
    /// What in it.
    pub problem: String,
}

fn deny(reason: String) -> Result<Decision, Unsupported> {
    Ok(Decision {
        allowed: false,
        reason,
    })
}

/// The request context keys this module sets.
struct Context {
    principal_arn: String,
    token_issue_time: Option<u64>,
    now_ms: u64,
}

/// Decides `r` against `w`: the principal must exist and hold working credentials, no policy
/// may deny it explicitly, and an SCP must allow it when the account is a member account.
pub fn authorize(w: &World, r: &Request) -> Result<Decision, Unsupported> {
    let (account, arn, token, inline) = match &r.principal {
        Principal::Session {
            account,
            role,
            issued_ms,
        } => {
            let Some(found) = w.accounts.get(account).and_then(|a| a.roles.get(role)) else {
                return deny(format!("role {role} does not exist in {account}"));
            };
            let arn = format!("arn:aws:iam::{account}:role{}{role}", path(&found.path));
            (account.clone(), arn, Some(*issued_ms), &found.inline)
        }
        Principal::Key(id) => {
            let owner = w.accounts.iter().find_map(|(acc, a)| {
                a.users.iter().find_map(|(name, u)| {
                    let (_, status) = u.keys.iter().find(|(k, _)| k == id)?;
                    Some((acc, name, u, *status))
                })
            });
            let Some((acc, name, user, status)) = owner else {
                return deny(format!("InvalidClientTokenId: no access key {id}"));
            };
            // IAM User Guide, "Manage access keys": an inactive key cannot sign requests.
            if status == KeyStatus::Inactive {
                return deny(format!(
                    "InvalidClientTokenId: access key {id} of {name} is Inactive"
                ));
            }
            let arn = format!("arn:aws:iam::{acc}:user/{name}");
            (acc.clone(), arn, None, &user.inline)
        }
        Principal::Console { account, user } => {
            let Some(u) = w.accounts.get(account).and_then(|a| a.users.get(user)) else {
                return deny(format!("user {user} does not exist in {account}"));
            };
            // IAM User Guide, "Manage passwords for IAM users": no login profile, no sign-in.
            if !u.login_profile {
                return deny(format!(
                    "user {user} has no console password (login profile deleted)"
                ));
            }
            let arn = format!("arn:aws:iam::{account}:user/{user}");
            (account.clone(), arn, None, &u.inline)
        }
    };
    let cx = Context {
        principal_arn: arn,
        token_issue_time: token,
        now_ms: r.now_ms,
    };
    if account != w.org.management_account {
        if let Some(d) = scps(w, &account, &r.action, &cx)? {
            return Ok(d);
        }
    }
    for (name, doc) in inline {
        let policy = format!("inline policy {name}");
        if denies(doc, &policy, &r.action, &cx)? {
            return deny(format!("explicit deny in {policy} of {}", cx.principal_arn));
        }
    }
    Ok(Decision {
        allowed: true,
        reason: format!("no policy denies {} to {}", r.action, cx.principal_arn),
    })
}

fn path(p: &str) -> &str {
    if p.is_empty() {
        "/"
    } else {
        p
    }
}

/// The SCPs that apply to a member account's principals: a deny decision, or `None` when they
/// allow.
///
/// AWS Organizations User Guide, "SCP evaluation"
/// (<https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps_evaluation.html>),
/// "How SCPs work with Deny": an explicit `Deny` in any SCP attached to the root, to any OU on
/// the direct path to the account, or to the account itself denies the action. "How SCPs work
/// with Allow": every one of those levels must have an SCP that allows the action, otherwise it
/// is implicitly denied. Enabling SCPs attaches AWS's `FullAWSAccess` (allow everything) to
/// every root, OU and account, and the simulator keeps it there: a scenario's guardrails are
/// added beside it, so an allow-list guardrail restricts nothing (as in AWS while
/// `FullAWSAccess` stays attached) and what guardrails do is deny. A level with no attachment
/// recorded at all (the root of a world written before OUs were modelled) is taken to hold
/// `FullAWSAccess`; an empty set recorded for a level allows nothing.
fn scps(
    w: &World,
    account: &str,
    action: &str,
    cx: &Context,
) -> Result<Option<Decision>, Unsupported> {
    let path = w.org.path_to(account);
    let above = |target: &str| {
        if target == account {
            format!("account {account}")
        } else {
            format!("{}, above account {account}", w.org.describe_target(target))
        }
    };
    for target in &path {
        for (id, name, doc) in attached(w, target) {
            // The simulator stores AWS's managed FullAWSAccess by name, without its document
            // (Allow * on *).
            if name == "FullAWSAccess" {
                continue;
            }
            let policy = format!("SCP {name} ({id})");
            if denies(doc, &policy, action, cx)? {
                return Ok(Some(Decision {
                    allowed: false,
                    reason: format!("explicit deny in {policy} on {}", above(target)),
                }));
            }
        }
    }
    for target in &path {
        if !w.org.attachments.contains_key(target) {
            continue;
        }
        let mut allowed = false;
        for (id, name, doc) in attached(w, target) {
            allowed |=
                name == "FullAWSAccess" || allows(doc, &format!("SCP {name} ({id})"), action, cx)?;
        }
        if !allowed {
            return Ok(Some(Decision {
                allowed: false,
                reason: format!(
                    "no SCP on {} allows {action} (implicit deny)",
                    above(target)
                ),
            }));
        }
    }
    Ok(None)
}

/// The policies attached to `target` that exist: (id, name, document).
fn attached<'w>(w: &'w World, target: &str) -> Vec<(&'w str, &'w str, &'w str)> {
    let Some(ids) = w.org.attachments.get(target) else {
        return Vec::new();
    };
    ids.iter()
        .filter_map(|id| {
            let (id, (name, doc)) = w.org.policies.get_key_value(id)?;
            Some((id.as_str(), name.as_str(), doc.as_str()))
        })
        .collect()
}

fn statements(doc: &str, policy: &str) -> Result<Vec<Value>, Unsupported> {
    let bad = |problem: String| Unsupported {
        policy: policy.to_string(),
        problem,
    };
    let v: Value = serde_json::from_str(doc).map_err(|e| bad(format!("not JSON: {e}")))?;
    match v.get("Statement") {
        Some(Value::Array(a)) => Ok(a.clone()),
        Some(s @ Value::Object(_)) => Ok(vec![s.clone()]),
        _ => Err(bad("no Statement".into())),
    }
}

fn denies(doc: &str, policy: &str, action: &str, cx: &Context) -> Result<bool, Unsupported> {
    effect_applies(doc, policy, "Deny", action, cx)
}

fn allows(doc: &str, policy: &str, action: &str, cx: &Context) -> Result<bool, Unsupported> {
    effect_applies(doc, policy, "Allow", action, cx)
}

fn effect_applies(
    doc: &str,
    policy: &str,
    effect: &str,
    action: &str,
    cx: &Context,
) -> Result<bool, Unsupported> {
    for s in statements(doc, policy)? {
        if s.get("Effect").and_then(Value::as_str) != Some(effect) {
            continue;
        }
        if statement_applies(&s, policy, action, cx)? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn statement_applies(
    s: &Value,
    policy: &str,
    action: &str,
    cx: &Context,
) -> Result<bool, Unsupported> {
    let bad = |problem: &str| Unsupported {
        policy: policy.to_string(),
        problem: problem.to_string(),
    };
    for element in ["NotAction", "NotResource", "NotPrincipal"] {
        if s.get(element).is_some() {
            return Err(bad(&format!("{element} is not modelled")));
        }
    }
    // IAM JSON reference, "Action": service prefix and action name are case-insensitive and
    // may use * and ? wildcards.
    let actions = strings(s.get("Action"));
    if !actions
        .iter()
        .any(|a| glob(&a.to_lowercase(), &action.to_lowercase()))
    {
        return Ok(false);
    }
    // Requests here name no resource: only a statement on every resource applies.
    let resources = strings(s.get("Resource"));
    if !resources.is_empty() && !resources.iter().any(|r| r == "*") {
        return Ok(false);
    }
    match s.get("Condition") {
        None => Ok(true),
        Some(Value::Object(ops)) => {
            for (op, keys) in ops {
                let Value::Object(keys) = keys else {
                    return Err(bad(&format!("condition {op} is not an object")));
                };
                for (key, values) in keys {
                    if !condition(op, key, &strings(Some(values)), cx).map_err(|p| bad(&p))? {
                        return Ok(false);
                    }
                }
            }
            Ok(true)
        }
        Some(_) => Err(bad("Condition is not an object")),
    }
}

/// One condition operator on one key. IAM User Guide, "Condition operators": several values
/// for one key are ORed; a key absent from the request context makes the condition false,
/// except for negated operators (`ArnNotLike`, `StringNotLike`...), for which it is true.
fn condition(op: &str, key: &str, values: &[String], cx: &Context) -> Result<bool, String> {
    // Keep in step with CONDITION_KEYS and OPERATORS, which scenario checks read.
    let present: Option<String> = match key.to_ascii_lowercase().as_str() {
        "aws:principalarn" => Some(cx.principal_arn.clone()),
        "aws:tokenissuetime" => cx.token_issue_time.map(|t| t.to_string()),
        "aws:currenttime" => Some(cx.now_ms.to_string()),
        _ => return Err(format!("condition key {key} is not modelled")),
    };
    let negated = matches!(
        op,
        "ArnNotLike" | "ArnNotEquals" | "StringNotLike" | "StringNotEquals"
    );
    let Some(v) = present else {
        return Ok(negated);
    };
    let any = |f: &dyn Fn(&str) -> bool| values.iter().any(|p| f(p));
    Ok(match op {
        "ArnLike" | "ArnEquals" => any(&|p| arn_like(p, &v)),
        "ArnNotLike" | "ArnNotEquals" => !any(&|p| arn_like(p, &v)),
        "StringEquals" => any(&|p| p == v),
        "StringNotEquals" => !any(&|p| p == v),
        "StringLike" => any(&|p| glob(p, &v)),
        "StringNotLike" => !any(&|p| glob(p, &v)),
        "DateLessThan" | "DateGreaterThan" | "DateLessThanEquals" | "DateGreaterThanEquals" => {
            let at: u64 = v.parse().map_err(|_| format!("{key} is not a date"))?;
            let mut hit = false;
            for p in values {
                let bound = parse_date(p).ok_or_else(|| format!("{op}: `{p}` is not a date"))?;
                hit |= match op {
                    "DateLessThan" => at < bound,
                    "DateGreaterThan" => at > bound,
                    "DateLessThanEquals" => at <= bound,
                    _ => at >= bound,
                };
            }
            hit
        }
        other => return Err(format!("condition operator {other} is not modelled")),
    })
}

/// The condition keys [`authorize`] sets in a request's context (lower case: keys are
/// case-insensitive).
pub(crate) const CONDITION_KEYS: [&str; 3] =
    ["aws:principalarn", "aws:tokenissuetime", "aws:currenttime"];

/// The condition operators [`authorize`] evaluates.
pub(crate) const OPERATORS: [&str; 12] = [
    "ArnLike",
    "ArnEquals",
    "ArnNotLike",
    "ArnNotEquals",
    "StringEquals",
    "StringNotEquals",
    "StringLike",
    "StringNotLike",
    "DateLessThan",
    "DateGreaterThan",
    "DateLessThanEquals",
    "DateGreaterThanEquals",
];

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

/// `ArnLike`: each of the six colon-separated parts matched on its own, `*` and `?` within a
/// part (IAM User Guide, "Amazon Resource Name (ARN) condition operators").
fn arn_like(pattern: &str, arn: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    p.len() == 6 && a.len() == 6 && p.iter().zip(&a).all(|(p, a)| glob(p, a))
}

/// `*` any run of characters, `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// `2026-01-01T00:05:00Z` or with milliseconds (`.123Z`), UTC only, as epoch ms.
pub fn parse_date(text: &str) -> Option<u64> {
    let t = text.strip_suffix('Z')?;
    let (date, time) = t.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, mo, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut h = hms.splitn(3, ':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (h.next()??, h.next()??, h.next()??);
    let ms: i64 = format!("{frac:0<3}").get(..3)?.parse().ok()?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant), the inverse of `cordon_engine::clock::rfc3339`.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if mo > 2 { mo - 3 } else { mo + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + ms).ok()
}

#[cfg(test)]
#[path = "authz_tests.rs"]
mod tests;
