//! `cordon policy`: the committed CloudFormation template is what cordon generates for the
//! shipped playbooks, and the policies hold what the playbooks need and no more.

mod common;

use serde_json::Value;

use common::{root, Cordon};

fn policy(c: &Cordon, args: &[&str]) -> Value {
    let mut a = vec!["policy"];
    a.extend_from_slice(args);
    let out = c.ok(&a, 0);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("cordon {a:?}: not JSON ({e}):\n{out}"))
}

fn actions(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
        other => panic!("Action: {other}"),
    }
}

#[test]
fn the_committed_template_is_the_generated_one() {
    let c = Cordon::new();
    let generated = policy(&c, &["--format", "cloudformation", "--for", "member"]);
    let path = root().join("playbooks/deploy/response-role.json");
    let committed: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        committed, generated,
        "{} is stale: regenerate it with `cordon policy --format cloudformation --for member > playbooks/deploy/response-role.json`",
        path.display()
    );
    let role = &generated["Resources"]["ResponseRole"]["Properties"];
    let doc = &role["Policies"][0]["PolicyDocument"];
    assert_eq!(doc, &policy(&c, &["--for", "member"]));
}

#[test]
fn the_deploy_directory_is_not_loaded_as_playbooks() {
    let c = Cordon::new();
    let out = c.ok(&["validate"], 0);
    assert!(out.contains("4 playbook(s) valid"), "{out}");
}

#[test]
fn member_and_home_policies_split_by_who_calls() {
    let c = Cordon::new();
    let both = policy(&c, &[]);
    let member: Vec<String> = both["member_role"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(actions)
        .collect();
    assert!(member.contains(&"ec2:ModifyNetworkInterfaceAttribute".to_string()));
    assert!(member.contains(&"iam:UpdateAccessKey".to_string()));
    assert!(
        member.iter().all(|a| !a.starts_with("organizations:")),
        "Organizations is called from cordon's account: {member:?}"
    );
    let home = &both["cordon_identity"]["Statement"];
    let assume = home
        .as_array()
        .unwrap()
        .iter()
        .find(|s| actions(s) == ["sts:AssumeRole"])
        .expect("an AssumeRole statement");
    assert_eq!(assume["Resource"], "arn:aws:iam::*:role/CordonResponse");
    assert_eq!(&both["cordon_identity"], &policy(&c, &["--for", "home"]));
}

#[test]
fn the_role_arn_comes_from_the_config() {
    let c = Cordon::new();
    std::fs::write(
        c.path().join("cordon.yaml"),
        "aws:\n  role_arn: \"arn:aws:iam::{account}:role/IR\"\n",
    )
    .unwrap();
    let home = policy(&c, &["--for", "home"]);
    assert_eq!(home["Statement"][0]["Resource"], "arn:aws:iam::*:role/IR");
}

#[test]
fn cloudformation_is_only_for_the_member_role() {
    let c = Cordon::new();
    let out = c.run(&["policy", "--format", "cloudformation", "--for", "home"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--format json --for home"), "{err}");
}
