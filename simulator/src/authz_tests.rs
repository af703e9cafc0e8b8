//! One test per rule of [`super::authorize`], on the documents cordon's actions write.

use std::collections::{BTreeMap, BTreeSet};

use cordon_engine::clock::rfc3339;
use cordon_engine::cloud::KeyStatus;

use super::*;
use crate::world::{Role, User, World};

const T0: u64 = 1_767_225_600_000;
const MEMBER: &str = "111111111111";

/// The quarantine SCP as `org.attach_deny_scp` writes it.
const QUARANTINE: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"CordonQuarantine","Effect":"Deny","Action":"*","Resource":"*","Condition":{"ArnNotLike":{"aws:PrincipalARN":["arn:aws:iam::*:role/BreakGlass*"]}}}]}"#;

fn world() -> World {
    let mut w = World::default();
    w.org.attachments.insert(
        MEMBER.into(),
        BTreeSet::from(["p-FullAWSAccess".to_string()]),
    );
    let a = w.account(MEMBER);
    for role in ["deploy", "BreakGlassAdmin"] {
        a.roles.insert(
            role.into(),
            Role {
                path: "/".into(),
                inline: BTreeMap::new(),
            },
        );
    }
    a.users.insert(
        "ci".into(),
        User {
            keys: vec![("AKIAEXAMPLE".into(), KeyStatus::Active)],
            login_profile: true,
            inline: BTreeMap::new(),
        },
    );
    w
}

fn session(role: &str, issued_ms: u64) -> Request {
    Request {
        principal: Principal::Session {
            account: MEMBER.into(),
            role: role.into(),
            issued_ms,
        },
        action: "ec2:RunInstances".into(),
        now_ms: T0 + 600_000,
    }
}

fn fence(w: &mut World) {
    w.org.policies.insert(
        "p-q".into(),
        ("cordon-quarantine".into(), QUARANTINE.into()),
    );
    w.org
        .attachments
        .get_mut(MEMBER)
        .unwrap()
        .insert("p-q".into());
}

fn revoke(w: &mut World, role: &str, at_ms: u64) {
    let doc = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":["*"],"Resource":["*"],"Condition":{{"DateLessThan":{{"aws:TokenIssueTime":"{}"}}}}}}]}}"#,
        rfc3339(at_ms)
    );
    w.account(MEMBER)
        .roles
        .get_mut(role)
        .unwrap()
        .inline
        .insert("AWSRevokeOlderSessions".into(), doc);
}

#[test]
fn with_nothing_in_place_the_call_is_allowed() {
    let d = authorize(&world(), &session("deploy", T0)).unwrap();
    assert!(d.allowed, "{d:?}");
}

#[test]
fn a_deny_scp_denies_every_principal_but_the_break_glass_role() {
    let mut w = world();
    fence(&mut w);
    let d = authorize(&w, &session("deploy", T0)).unwrap();
    assert!(!d.allowed);
    assert!(
        d.reason.contains("explicit deny in SCP cordon-quarantine"),
        "{}",
        d.reason
    );
    // ArnNotLike on aws:PrincipalARN: the break-glass role is excepted.
    assert!(
        authorize(&w, &session("BreakGlassAdmin", T0))
            .unwrap()
            .allowed
    );
}

#[test]
fn arn_like_excepts_only_what_it_names() {
    let mut w = world();
    let doc = QUARANTINE.replace("ArnNotLike", "ArnLike");
    w.org.policies.insert("p-x".into(), ("only-bg".into(), doc));
    w.org
        .attachments
        .get_mut(MEMBER)
        .unwrap()
        .insert("p-x".into());
    assert!(authorize(&w, &session("deploy", T0)).unwrap().allowed);
    assert!(
        !authorize(&w, &session("BreakGlassAdmin", T0))
            .unwrap()
            .allowed
    );
}

#[test]
fn scps_do_not_apply_to_the_management_account() {
    let mut w = world();
    fence(&mut w);
    w.org.management_account = MEMBER.into();
    assert!(authorize(&w, &session("deploy", T0)).unwrap().allowed);
}

#[test]
fn without_an_allowing_scp_the_call_is_implicitly_denied() {
    let mut w = world();
    w.org.attachments.get_mut(MEMBER).unwrap().clear();
    let d = authorize(&w, &session("deploy", T0)).unwrap();
    assert!(
        !d.allowed && d.reason.contains("implicit deny"),
        "{}",
        d.reason
    );
}

#[test]
fn revoking_denies_sessions_issued_before_the_revocation_only() {
    let mut w = world();
    revoke(&mut w, "deploy", T0 + 300_000);
    let old = authorize(&w, &session("deploy", T0)).unwrap();
    assert!(!old.allowed);
    assert!(
        old.reason.contains("AWSRevokeOlderSessions"),
        "{}",
        old.reason
    );
    // A session issued after the revocation (the owner signing in again) is not denied.
    assert!(
        authorize(&w, &session("deploy", T0 + 400_000))
            .unwrap()
            .allowed
    );
}

#[test]
fn revoking_a_role_does_not_touch_long_term_keys() {
    // aws:TokenIssueTime is absent for a long-term key, so DateLessThan is false.
    let mut w = world();
    revoke(&mut w, "deploy", T0 + 300_000);
    let deny_doc = w.accounts[MEMBER].roles["deploy"].inline["AWSRevokeOlderSessions"].clone();
    w.account(MEMBER)
        .users
        .get_mut("ci")
        .unwrap()
        .inline
        .insert("AWSRevokeOlderSessions".into(), deny_doc);
    let r = Request {
        principal: Principal::Key("AKIAEXAMPLE".into()),
        action: "s3:GetObject".into(),
        now_ms: T0 + 600_000,
    };
    assert!(authorize(&w, &r).unwrap().allowed);
}

#[test]
fn an_inactive_key_signs_nothing() {
    let mut w = world();
    w.account(MEMBER).users.get_mut("ci").unwrap().keys[0].1 = KeyStatus::Inactive;
    let r = Request {
        principal: Principal::Key("AKIAEXAMPLE".into()),
        action: "s3:GetObject".into(),
        now_ms: T0,
    };
    let d = authorize(&w, &r).unwrap();
    assert!(!d.allowed && d.reason.contains("Inactive"), "{}", d.reason);
}

#[test]
fn a_user_deny_all_policy_denies_its_keys() {
    let mut w = world();
    w.account(MEMBER).users.get_mut("ci").unwrap().inline.insert(
        "cordon-deny-all".into(),
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"CordonDenyAll","Effect":"Deny","Action":"*","Resource":"*"}]}"#.into(),
    );
    let r = Request {
        principal: Principal::Key("AKIAEXAMPLE".into()),
        action: "s3:GetObject".into(),
        now_ms: T0,
    };
    assert!(!authorize(&w, &r).unwrap().allowed);
}

#[test]
fn a_user_without_login_profile_cannot_sign_in() {
    let mut w = world();
    let login = Request {
        principal: Principal::Console {
            account: MEMBER.into(),
            user: "ci".into(),
        },
        action: "signin:ConsoleLogin".into(),
        now_ms: T0,
    };
    assert!(authorize(&w, &login).unwrap().allowed);
    w.account(MEMBER).users.get_mut("ci").unwrap().login_profile = false;
    let d = authorize(&w, &login).unwrap();
    assert!(
        !d.allowed && d.reason.contains("login profile"),
        "{}",
        d.reason
    );
}

#[test]
fn actions_match_case_insensitively_with_wildcards() {
    let mut w = world();
    let doc = r#"{"Statement":{"Effect":"Deny","Action":["EC2:Run*"],"Resource":"*"}}"#;
    w.account(MEMBER)
        .roles
        .get_mut("deploy")
        .unwrap()
        .inline
        .insert("no-run".into(), doc.into());
    assert!(!authorize(&w, &session("deploy", T0)).unwrap().allowed);
    let mut other = session("deploy", T0);
    other.action = "s3:GetObject".into();
    assert!(authorize(&w, &other).unwrap().allowed);
}

#[test]
fn what_is_not_modelled_is_an_error_not_an_allow() {
    let mut w = world();
    let doc = r#"{"Statement":[{"Effect":"Deny","NotAction":"iam:*","Resource":"*"}]}"#;
    w.account(MEMBER)
        .roles
        .get_mut("deploy")
        .unwrap()
        .inline
        .insert("odd".into(), doc.into());
    let e = authorize(&w, &session("deploy", T0)).unwrap_err();
    assert!(e.to_string().contains("NotAction"), "{e}");
}

#[test]
fn dates_round_trip_with_the_engine_clock() {
    for ms in [T0, T0 + 1, T0 + 86_399_999, 951_782_400_000] {
        assert_eq!(parse_date(&rfc3339(ms)), Some(ms), "{}", rfc3339(ms));
    }
    assert_eq!(parse_date("2026-01-01T00:00:00Z"), Some(T0));
    assert_eq!(parse_date("2026-13-01T00:00:00Z"), None);
    assert_eq!(parse_date("yesterday"), None);
}

#[test]
fn arn_parts_match_one_by_one() {
    assert!(arn_like(
        "arn:aws:iam::*:role/BreakGlass*",
        "arn:aws:iam::111111111111:role/BreakGlassAdmin"
    ));
    assert!(!arn_like(
        "arn:aws:iam::*:role/BreakGlass*",
        "arn:aws:iam::111111111111:user/BreakGlassAdmin"
    ));
    assert!(!arn_like(
        "arn:aws:iam::*",
        "arn:aws:iam::111111111111:role/x"
    ));
}

/// Workloads/Prod holds MEMBER, Workloads/Sandbox holds SANDBOX; `FullAWSAccess` on every
/// target, as enabling SCPs leaves it. Returns the world and the ids of Workloads, Prod, Sandbox.
fn organization() -> (World, [String; 3]) {
    const SANDBOX: &str = "222222222222";
    let mut w = world();
    let root = w.org.root_id.clone();
    let ids = ["Workloads", "Workloads/Prod", "Workloads/Sandbox"]
        .map(|p| crate::org::ou_id(&root, p, 0));
    let full = || BTreeSet::from([crate::org::FULL_AWS_ACCESS.to_string()]);
    for (i, (name, parent)) in [
        ("Workloads", root.clone()),
        ("Prod", ids[0].clone()),
        ("Sandbox", ids[0].clone()),
    ]
    .into_iter()
    .enumerate()
    {
        let ou = crate::world::Ou {
            name: name.into(),
            parent,
        };
        w.org.ous.insert(ids[i].clone(), ou);
        w.org.attachments.insert(ids[i].clone(), full());
    }
    w.org.attachments.insert(root, full());
    for (account, ou) in [(MEMBER, &ids[1]), (SANDBOX, &ids[2])] {
        w.org.join(account);
        w.org.accounts.get_mut(account).unwrap().parent = ou.clone();
        w.account(account)
            .roles
            .insert("deploy".into(), Role::default());
    }
    (w, ids)
}

/// A guardrail denying `ec2:RunInstances` to all but break-glass roles, attached to `target`.
fn guardrail(w: &mut World, target: &str) {
    let doc = QUARANTINE.replace(r#""Action":"*""#, r#""Action":"ec2:RunInstances""#);
    w.org
        .policies
        .insert("p-guard".into(), ("no-new-instances".into(), doc));
    w.org
        .attachments
        .get_mut(target)
        .unwrap()
        .insert("p-guard".into());
}

fn in_account(account: &str, role: &str) -> Request {
    let mut r = session(role, T0);
    if let Principal::Session { account: a, .. } = &mut r.principal {
        *a = account.into();
    }
    r
}

#[test]
fn a_deny_on_a_parent_ou_applies_to_the_accounts_below_it() {
    let (mut w, [workloads, ..]) = organization();
    guardrail(&mut w, &workloads);
    let d = authorize(&w, &session("deploy", T0)).unwrap();
    assert!(!d.allowed);
    assert_eq!(
        d.reason,
        format!("explicit deny in SCP no-new-instances (p-guard) on OU Workloads ({workloads}), above account {MEMBER}")
    );
    // The guardrail's own exception still holds, and other actions are untouched.
    assert!(
        authorize(&w, &session("BreakGlassAdmin", T0))
            .unwrap()
            .allowed
    );
    let mut other = session("deploy", T0);
    other.action = "s3:GetObject".into();
    assert!(authorize(&w, &other).unwrap().allowed);
}

#[test]
fn a_deny_on_a_sibling_ou_does_not_apply() {
    let (mut w, [_, _, sandbox]) = organization();
    guardrail(&mut w, &sandbox);
    assert!(authorize(&w, &session("deploy", T0)).unwrap().allowed);
    let d = authorize(&w, &in_account("222222222222", "deploy")).unwrap();
    assert!(
        !d.allowed && d.reason.contains("OU Workloads/Sandbox"),
        "{}",
        d.reason
    );
}

#[test]
fn a_deny_on_the_root_applies_to_members_but_not_to_the_management_account() {
    let (mut w, _) = organization();
    let root = w.org.root_id.clone();
    guardrail(&mut w, &root);
    let d = authorize(&w, &session("deploy", T0)).unwrap();
    assert!(
        !d.allowed && d.reason.contains("on the root r-sim0"),
        "{}",
        d.reason
    );
    let management = w.org.management_account.clone();
    w.account(&management)
        .roles
        .insert("deploy".into(), Role::default());
    assert!(
        authorize(&w, &in_account(&management, "deploy"))
            .unwrap()
            .allowed
    );
}

#[test]
fn an_ou_without_an_allowing_scp_denies_implicitly_below_it() {
    let (mut w, [_, prod, _]) = organization();
    w.org.attachments.get_mut(&prod).unwrap().clear();
    let d = authorize(&w, &session("deploy", T0)).unwrap();
    assert!(!d.allowed);
    assert!(
        d.reason
            .contains(&format!("no SCP on OU Workloads/Prod ({prod})"))
            && d.reason.contains("implicit deny"),
        "{}",
        d.reason
    );
    assert!(
        authorize(&w, &in_account("222222222222", "deploy"))
            .unwrap()
            .allowed
    );
}
