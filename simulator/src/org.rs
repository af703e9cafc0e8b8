//! The simulated organization's structure: its root, organizational units (OUs), member
//! accounts and their tags, service control policies (SCPs) and where each is attached.
//!
//! Attachments are keyed by target, as AWS Organizations' `AttachPolicy` takes them: the root
//! id (`r-…`), an OU id (`ou-…`) or an account id. Worlds written before OUs were modelled
//! keyed attachments by account only and listed no members; they load unchanged, each account
//! that has attachments becoming a member directly under the root.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// AWS's managed policy that allows everything; attached to every target when SCPs are enabled.
pub const FULL_AWS_ACCESS: &str = "p-FullAWSAccess";

/// Organizations state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(from = "OrgFile")]
pub struct Org {
    /// Management account id.
    pub management_account: String,
    /// Root id.
    pub root_id: String,
    /// SCP policy type enabled on the root.
    pub scp_enabled: bool,
    /// Policies by id: (name, content).
    pub policies: BTreeMap<String, (String, String)>,
    /// Policy ids attached per target: the root id, an OU id or an account id.
    pub attachments: BTreeMap<String, BTreeSet<String>>,
    /// Organizational units by id.
    pub ous: BTreeMap<String, Ou>,
    /// Member accounts by id.
    pub accounts: BTreeMap<String, Member>,
}

/// An organizational unit.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ou {
    /// Name (unique among its siblings).
    pub name: String,
    /// Parent: the root id or an OU id.
    pub parent: String,
}

/// A member account's place in the organization.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Member {
    /// Account name.
    #[serde(default)]
    pub name: String,
    /// Parent: the root id or an OU id.
    pub parent: String,
    /// Tags on the account (Organizations `TagResource`).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// [`Org`] as stored: the fields added with OUs may be absent.
#[derive(Deserialize)]
struct OrgFile {
    management_account: String,
    root_id: String,
    scp_enabled: bool,
    policies: BTreeMap<String, (String, String)>,
    attachments: BTreeMap<String, BTreeSet<String>>,
    #[serde(default)]
    ous: BTreeMap<String, Ou>,
    #[serde(default)]
    accounts: Option<BTreeMap<String, Member>>,
}

impl From<OrgFile> for Org {
    fn from(f: OrgFile) -> Org {
        // Before OUs, the accounts with attachments were the organization's members.
        let accounts = f.accounts.unwrap_or_else(|| {
            f.attachments
                .keys()
                .filter(|t| **t != f.root_id && !f.ous.contains_key(*t))
                .map(|id| {
                    let member = Member {
                        parent: f.root_id.clone(),
                        ..Member::default()
                    };
                    (id.clone(), member)
                })
                .collect()
        });
        Org {
            management_account: f.management_account,
            root_id: f.root_id,
            scp_enabled: f.scp_enabled,
            policies: f.policies,
            attachments: f.attachments,
            ous: f.ous,
            accounts,
        }
    }
}

impl Default for Org {
    fn default() -> Org {
        Org {
            management_account: "000000000001".into(),
            root_id: "r-sim0".into(),
            scp_enabled: false,
            policies: BTreeMap::from([(
                FULL_AWS_ACCESS.into(),
                ("FullAWSAccess".into(), "{}".into()),
            )]),
            attachments: BTreeMap::new(),
            ous: BTreeMap::new(),
            accounts: BTreeMap::new(),
        }
    }
}

impl Org {
    /// Adds `account` directly under the root with `FullAWSAccess` attached, as AWS does for an
    /// account that joins, unless it is a member already.
    pub fn join(&mut self, account: &str) {
        if self.accounts.contains_key(account) {
            return;
        }
        let member = Member {
            parent: self.root_id.clone(),
            ..Member::default()
        };
        self.accounts.insert(account.to_string(), member);
        self.attachments
            .entry(account.to_string())
            .or_insert_with(|| BTreeSet::from([FULL_AWS_ACCESS.to_string()]));
    }

    /// Whether `target` is something a policy can be attached to: the root, an OU, a member.
    pub fn is_target(&self, target: &str) -> bool {
        target == self.root_id
            || self.ous.contains_key(target)
            || self.accounts.contains_key(target)
    }

    /// The targets whose SCPs apply to `account`, from the root down: the root, each OU on the
    /// way, the account itself. An account that is not a member is taken to sit under the root.
    pub fn path_to(&self, account: &str) -> Vec<String> {
        let mut up = vec![account.to_string()];
        let mut parent = self
            .accounts
            .get(account)
            .map_or(self.root_id.as_str(), |m| m.parent.as_str());
        // Bounded: a hand-edited world file with a cycle must not hang an evaluation.
        for _ in 0..=self.ous.len() {
            match self.ous.get(parent) {
                Some(ou) => {
                    up.push(parent.to_string());
                    parent = &ou.parent;
                }
                None => break,
            }
        }
        up.push(self.root_id.clone());
        up.reverse();
        up
    }

    /// An OU's path of names from the root (`Workloads/Prod`), or `None` for an unknown id.
    pub fn ou_path(&self, id: &str) -> Option<String> {
        let mut names = Vec::new();
        let mut cur = id;
        for _ in 0..=self.ous.len() {
            let Some(ou) = self.ous.get(cur) else { break };
            names.push(ou.name.as_str());
            cur = &ou.parent;
        }
        if names.is_empty() {
            return None;
        }
        names.reverse();
        Some(names.join("/"))
    }

    /// A target as people read it: `the root r-sim0`, `OU Workloads/Prod (ou-…)`, `account …`.
    pub fn describe_target(&self, target: &str) -> String {
        if target == self.root_id {
            return format!("the root {target}");
        }
        match self.ou_path(target) {
            Some(path) => format!("OU {path} ({target})"),
            None => format!("account {target}"),
        }
    }
}

/// An OU id for an OU at `path` (`Workloads/Prod`) under `root` (`r-sim0`), shaped as AWS's
/// (`ou-` the root's suffix, `-`, 8 lowercase letters or digits) and derived from the path
/// alone, so that it stays the same when other OUs are added. `salt` is raised on a clash.
pub fn ou_id(root: &str, path: &str, salt: u32) -> String {
    let suffix = root.strip_prefix("r-").unwrap_or(root);
    format!(
        "ou-{suffix}-{:08x}",
        fnv1a(&format!("{path}#{salt}")) as u32
    )
}

/// A policy id for a policy named `name`, shaped as AWS's (`p-` then lowercase letters or
/// digits) and distinct from the counter ids the simulator gives created policies (17 digits).
pub fn policy_id(name: &str, salt: u32) -> String {
    format!("p-{:016x}", fnv1a(&format!("{name}#{salt}")))
}

/// 64-bit FNV-1a.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_world_written_before_ous_loads_its_accounts_as_members_under_the_root() {
        let old = r#"{"management_account": "000000000001", "root_id": "r-sim0",
            "scp_enabled": true, "policies": {"p-FullAWSAccess": ["FullAWSAccess", "{}"]},
            "attachments": {"111111111111": ["p-FullAWSAccess"], "222222222222": []}}"#;
        let org: Org = serde_json::from_str(old).unwrap();
        assert_eq!(
            org.accounts.keys().collect::<Vec<_>>(),
            ["111111111111", "222222222222"]
        );
        assert_eq!(org.path_to("111111111111"), ["r-sim0", "111111111111"]);
        assert!(org.attachments["111111111111"].contains(FULL_AWS_ACCESS));
        // And what it writes now reads back the same.
        let again: Org = serde_json::from_str(&serde_json::to_string(&org).unwrap()).unwrap();
        assert_eq!(again, org);
    }

    #[test]
    fn an_account_path_runs_from_the_root_through_its_ous() {
        let mut org = Org::default();
        let (w, p) = (
            ou_id("r-sim0", "Workloads", 0),
            ou_id("r-sim0", "Workloads/Prod", 0),
        );
        org.ous.insert(
            w.clone(),
            Ou {
                name: "Workloads".into(),
                parent: "r-sim0".into(),
            },
        );
        org.ous.insert(
            p.clone(),
            Ou {
                name: "Prod".into(),
                parent: w.clone(),
            },
        );
        org.join("111111111111");
        org.accounts.get_mut("111111111111").unwrap().parent = p.clone();
        assert_eq!(
            org.path_to("111111111111"),
            ["r-sim0", w.as_str(), p.as_str(), "111111111111"]
        );
        assert_eq!(org.ou_path(&p).as_deref(), Some("Workloads/Prod"));
        assert!(
            p.starts_with("ou-sim0-") && p.len() == "ou-sim0-".len() + 8,
            "{p}"
        );
        assert_eq!(org.describe_target(&p), format!("OU Workloads/Prod ({p})"));
    }

    #[test]
    fn a_cycle_in_a_hand_edited_world_does_not_hang() {
        let mut org = Org::default();
        for (id, parent) in [
            ("ou-sim0-aaaaaaaa", "ou-sim0-bbbbbbbb"),
            ("ou-sim0-bbbbbbbb", "ou-sim0-aaaaaaaa"),
        ] {
            org.ous.insert(
                id.into(),
                Ou {
                    name: id.into(),
                    parent: parent.into(),
                },
            );
        }
        org.join("111111111111");
        org.accounts.get_mut("111111111111").unwrap().parent = "ou-sim0-aaaaaaaa".into();
        assert!(org.path_to("111111111111").len() <= 5);
        assert!(org.ou_path("ou-sim0-aaaaaaaa").is_some());
    }
}
