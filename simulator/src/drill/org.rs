//! A scenario's `org`: the management account, OUs as a tree under the root, member accounts
//! placed in them (`ou: Workloads/Prod`, default: directly under the root) with tags, and
//! guardrail SCPs already attached to the root, OUs or accounts. Checked with file, line and
//! field like the rest of the scenario.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;

use super::scenario::{At, ScenarioError};

/// AWS Organizations nests OUs at most five levels below the root.
const MAX_OU_DEPTH: usize = 5;

/// The organization.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Org {
    /// Management account id (default `000000000001`); SCPs do not apply to it.
    #[serde(default)]
    pub management_account: Option<String>,
    /// OUs directly under the root, each with its own `ous`.
    #[serde(default)]
    pub ous: Vec<OuSpec>,
    /// Member accounts.
    #[serde(default)]
    pub accounts: Vec<AccountSpec>,
    /// SCPs in place before the drill (guardrails), beside AWS's `FullAWSAccess`, which is
    /// attached to the root, every OU and every account.
    #[serde(default)]
    pub policies: Vec<PolicySpec>,
}

/// An organizational unit and the OUs under it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OuSpec {
    /// Name, unique among its siblings; no `/`.
    pub name: String,
    /// Child OUs.
    #[serde(default)]
    pub ous: Vec<OuSpec>,
}

/// One member account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    /// 12-digit id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Regions in use.
    #[serde(default)]
    pub regions: Vec<String>,
    /// The OU it is in, as a path of names from the root (`Workloads/Prod`); default: the root.
    #[serde(default)]
    pub ou: Option<String>,
    /// Tags on the account.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A service control policy in place before the drill.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Policy name, unique.
    pub name: String,
    /// The policy document: a YAML mapping, or JSON text.
    pub content: Value,
    /// Where it is attached: `root`, an OU path (`Workloads/Prod`) or a member account id.
    pub attach: Vec<String>,
}

impl PolicySpec {
    /// The document as a value: the mapping as written, or the JSON text parsed.
    pub fn document(&self) -> Result<Value, String> {
        match &self.content {
            Value::String(text) => serde_json::from_str(text)
                .map_err(|e| format!("is not a JSON policy document: {e}")),
            v => Ok(v.clone()),
        }
    }
}

impl Org {
    /// Every OU as (path of names from the root, field path in the scenario, name), parents
    /// first: `("Workloads/Prod", "org.ous[0].ous[1]", "Prod")`.
    pub fn ou_paths(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        let mut todo: Vec<(&OuSpec, String, String)> = self
            .ous
            .iter()
            .enumerate()
            .map(|(i, ou)| (ou, ou.name.clone(), format!("org.ous[{i}]")))
            .collect();
        while !todo.is_empty() {
            let mut next = Vec::new();
            for (ou, path, field) in todo {
                for (i, child) in ou.ous.iter().enumerate() {
                    next.push((
                        child,
                        format!("{path}/{}", child.name),
                        format!("{field}.ous[{i}]"),
                    ));
                }
                out.push((path, field, ou.name.clone()));
            }
            todo = next;
        }
        out
    }
}

/// Checks `org`: ids, OU names, each account's OU, each policy's document and targets.
pub(super) fn check(org: &Org, at: &At<'_>) -> Result<(), ScenarioError> {
    if let Some(m) = &org.management_account {
        account_id(m, "org.management_account", at)?;
    }
    let ous = check_ous(org, at)?;
    let mut ids = BTreeSet::new();
    for (i, a) in org.accounts.iter().enumerate() {
        let field = format!("org.accounts[{i}]");
        account_id(&a.id, &format!("{field}.id"), at)?;
        if !ids.insert(a.id.as_str()) {
            return Err(at(
                &format!("{field}.id"),
                format!("account {} is listed twice", a.id),
            ));
        }
        if let Some(ou) = &a.ou {
            if !ous.contains(ou.as_str()) {
                return Err(at(&format!("{field}.ou"), unknown_ou(ou, &ous)));
            }
        }
    }
    let mut names = BTreeSet::new();
    for (i, p) in org.policies.iter().enumerate() {
        let field = format!("org.policies[{i}]");
        if p.name.trim().is_empty() || p.name == "FullAWSAccess" {
            return Err(at(
                &format!("{field}.name"),
                format!(
                    "`{}` cannot name a guardrail (empty, or AWS's own FullAWSAccess)",
                    p.name
                ),
            ));
        }
        if !names.insert(p.name.as_str()) {
            return Err(at(
                &format!("{field}.name"),
                format!("a policy named `{}` is listed twice", p.name),
            ));
        }
        let doc = p
            .document()
            .map_err(|e| at(&format!("{field}.content"), e))?;
        crate::scp::check(&doc).map_err(|e| {
            let inside = if e.path.is_empty() {
                String::new()
            } else {
                format!(".{}", e.path)
            };
            at(&format!("{field}.content{inside}"), e.problem)
        })?;
        if p.attach.is_empty() {
            return Err(at(
                &format!("{field}.attach"),
                "names no target (write root, an OU path or an account id)".into(),
            ));
        }
        for (j, t) in p.attach.iter().enumerate() {
            if t != "root" && !ous.contains(t.as_str()) && !ids.contains(t.as_str()) {
                return Err(at(
                    &format!("{field}.attach[{j}]"),
                    format!("`{t}` is not root, an OU path under org.ous or an account id under org.accounts"),
                ));
            }
        }
    }
    Ok(())
}

/// OU names and depth; returns every OU path.
fn check_ous(org: &Org, at: &At<'_>) -> Result<BTreeSet<String>, ScenarioError> {
    let mut paths = BTreeSet::new();
    for (path, field, name) in org.ou_paths() {
        if name.trim().is_empty() || name == "root" || name.contains('/') {
            return Err(at(
                &format!("{field}.name"),
                format!("`{name}` cannot name an OU (empty, `root`, which names the root, or with a `/`, which separates OUs in a path)"),
            ));
        }
        if path.matches('/').count() >= MAX_OU_DEPTH {
            return Err(at(
                &field,
                format!("{path} is nested deeper than AWS allows ({MAX_OU_DEPTH} levels below the root)"),
            ));
        }
        if !paths.insert(path.clone()) {
            return Err(at(
                &format!("{field}.name"),
                format!("there is already an OU {path}"),
            ));
        }
    }
    Ok(paths)
}

fn account_id(id: &str, field: &str, at: &At<'_>) -> Result<(), ScenarioError> {
    if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(at(field, format!("`{id}` is not a 12-digit account id")));
    }
    Ok(())
}

fn unknown_ou(ou: &str, known: &BTreeSet<String>) -> String {
    if known.is_empty() {
        return format!("`{ou}` is not an OU: org.ous declares none");
    }
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    format!(
        "`{ou}` is not an OU under org.ous (known: {})",
        known.join(", ")
    )
}
