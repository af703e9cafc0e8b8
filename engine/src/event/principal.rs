//! The IAM principal behind an access key, as a resource of its own, the same for every source:
//! an `IAMUser` key's user is an `IamUser`, an `AssumedRole` key's role an `IamRole` (GuardDuty's
//! `userName` is then the role's name: "if a role was used the User name field will contain
//! information about the name of the role used", GuardDuty User Guide, "Remediating potentially
//! compromised AWS credentials"), a `Root` key's principal the account itself.

use std::collections::BTreeMap;

use super::json::{bounded, put, MAX_TEXT_CHARS};
use crate::finding::{kind, Resource};

/// Who holds an access key, as the finding names them.
#[derive(Clone, Copy, Default)]
pub(crate) struct Principal<'a> {
    /// `IAMUser`, `AssumedRole`, `Root`, `FederatedUser`...
    pub user_type: Option<&'a str>,
    /// The user's name, or the role's for `AssumedRole`.
    pub user_name: Option<&'a str>,
    /// `AIDA...` for a user, `AROA...:session-name` for a role session.
    pub principal_id: Option<&'a str>,
}

impl Principal<'_> {
    /// The principal as a resource in `account`, when the finding names enough to act on it.
    pub(crate) fn resource(&self, account: &str) -> Option<Resource> {
        let mut a = BTreeMap::new();
        put(&mut a, "principal_id", self.principal_id);
        let (kind, id) = match (self.user_type, self.user_name) {
            (Some("IAMUser"), Some(name)) => (kind::IAM_USER, name),
            (Some("AssumedRole"), Some(name)) => {
                // A role session's principal id is `ROLEID:session-name`.
                put(
                    &mut a,
                    "session_name",
                    self.principal_id
                        .and_then(|p| p.split_once(':'))
                        .map(|(_, s)| s),
                );
                (kind::IAM_ROLE, name)
            }
            (Some("Root"), _) => (kind::ACCOUNT, account),
            _ => return None,
        };
        Some(Resource {
            kind: kind.to_string(),
            id: bounded(id, MAX_TEXT_CHARS),
            attributes: a,
        })
    }

    /// The key's attributes: `user_name`, `user_type`, `principal_id`.
    pub(crate) fn put_attributes(&self, a: &mut BTreeMap<String, String>) {
        put(a, "user_name", self.user_name);
        put(a, "user_type", self.user_type);
        put(a, "principal_id", self.principal_id);
    }
}
