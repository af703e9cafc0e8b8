//! End-to-end: the shipped playbooks through the real `cordon` binary against the simulated
//! organization, checking what a responder would check: the instance's groups, the key's status,
//! the role's policy, the account's SCPs, before and after `release`.

mod common;

use common::{calls, fixture, fixture_json, Cordon};
use serde_json::{json, Value};

const DEMO_INSTANCE: &str = "i-0961e0b3af8b3ec39";
const DEMO_ACCOUNT: &str = "352283894008";

fn region<'a>(world: &'a Value, account: &str, region: &str) -> &'a Value {
    &world["accounts"][account]["regions"][region]
}

fn group_named<'a>(region: &'a Value, name: &str) -> (&'a String, &'a Value) {
    region["groups"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, g)| g["name"] == name)
        .unwrap_or_else(|| panic!("no group {name}"))
}

#[test]
fn isolation_swaps_every_interface_and_release_restores_it() {
    let c = Cordon::new();
    // The built-in demo: a real GuardDuty finding on an instance.
    let out = c.ok(&["run", "--cloud", "sim"], 0);
    assert!(out.contains("isolate-ec2-instance"), "{out}");

    let w = c.world();
    let r = region(&w, DEMO_ACCOUNT, "us-east-1");
    let instance = &r["instances"][DEMO_INSTANCE];
    let (default_sg, _) = group_named(r, "default");
    let (isolation_sg, isolation) = group_named(r, "cordon-isolation");
    let enis = instance["interfaces"].as_object().unwrap();
    assert_eq!(enis.len(), 1);
    for groups in enis.values() {
        assert_eq!(
            groups,
            &json!([isolation_sg]),
            "every interface holds only the isolation group"
        );
    }
    assert_eq!(
        (isolation["ingress"].as_u64(), isolation["egress"].as_u64()),
        (Some(0), Some(0)),
        "isolation group has no rules"
    );
    // The allow-all step came first (AWS's guidance on tracked connections).
    let (_, untrack) = group_named(r, "cordon-isolation-untrack");
    assert!(untrack["ingress"].as_u64() > Some(0));
    let swaps = w["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c.as_str()
                .unwrap()
                .starts_with("ec2:ModifyNetworkInterfaceAttribute")
        })
        .count();
    assert_eq!(swaps, 2, "allow-all group, then the isolation group");
    assert_eq!(instance["termination_protection"], true);
    let run = c.run_of("isolate-ec2-instance");
    let run_id = run["id"].as_str().unwrap();
    assert_eq!(run["state"], "succeeded");
    assert_eq!(instance["tags"]["cordon:isolated-by"], run_id);
    // Forensic snapshot of the volume, tagged with the run.
    let snaps = r["snapshots"].as_object().unwrap();
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps.values().next().unwrap()[1]["cordon:run"], run_id);
    // The proof journaled is the state read back.
    let isolate = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "isolate")
        .unwrap();
    assert_eq!(
        isolate["proof"]["interfaces"][0]["groups"],
        json!([isolation_sg])
    );
    assert_eq!(
        isolate["prepared"]["interfaces"][0]["groups"],
        json!([default_sg])
    );
    let chat = w["chat"].as_array().unwrap();
    assert_eq!(chat.len(), 1);
    assert!(chat[0].as_str().unwrap().contains(DEMO_INSTANCE));

    // A repeat starts nothing, changes nothing, and says so (exit 5).
    let calls_before = w["calls"].as_array().unwrap().len();
    let again = c.ok(&["run", "--cloud", "sim"], 5);
    assert!(
        again.contains(&format!("duplicate of run {run_id}")),
        "{again}"
    );
    assert_eq!(c.world()["calls"].as_array().unwrap().len(), calls_before);

    c.ok(&["release", run_id], 0);
    let w = c.world();
    let instance = &region(&w, DEMO_ACCOUNT, "us-east-1")["instances"][DEMO_INSTANCE];
    for groups in instance["interfaces"].as_object().unwrap().values() {
        assert_eq!(
            groups,
            &json!([default_sg]),
            "release restores the old groups"
        );
    }
    assert_eq!(instance["termination_protection"], false);
    assert_eq!(
        instance["tags"],
        json!({}),
        "tags added by the run are removed"
    );
    assert_eq!(c.run_of("isolate-ec2-instance")["state"], "released");
    // Releasing twice is refused with a reason.
    let twice = c.run(&["release", run_id]);
    assert_eq!(twice.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("released"));
}

/// A GuardDuty AssumedRole finding forwarded by a delegated administrator (envelope account
/// 111111111111, finding account 222222222222).
fn exfiltration_event() -> Value {
    fixture_json("constructed/aws.guardduty__UnauthorizedAccess_IAMUser_InstanceCredentialExfiltration.OutsideAWS__constructed.json")
}

#[test]
fn role_sessions_are_revoked_in_every_account_holding_the_role_and_restored_on_release() {
    let c = Cordon::new();
    let old_doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["*"],"Resource":["*"],"Condition":{"DateLessThan":{"aws:TokenIssueTime":"2020-01-01T00:00:00Z"}}}]}"#;
    let role = |inline: Value| json!({"path": "/", "inline": inline});
    c.set_world(&json!({
        "org": {"management_account": "000000000001", "root_id": "r-sim0", "scp_enabled": false,
                "policies": {"p-FullAWSAccess": ["FullAWSAccess", "{}"]},
                "attachments": {"111111111111": [], "222222222222": [], "333333333333": [], "444444444444": []}},
        "accounts": {
            "222222222222": {"roles": {"app-server-role": role(json!({}))}, "users": {}, "regions": {}},
            "333333333333": {"roles": {"app-server-role": role(json!({"AWSRevokeOlderSessions": old_doc}))}, "users": {}, "regions": {}},
            "444444444444": {"roles": {}, "users": {}, "regions": {}}
        },
        "chat": [], "events": [], "calls": [], "next_id": 0
    }));
    let event = c.event("exfil.json", &exfiltration_event());
    // 111111111111 is in the organization but has no response role: the step fails naming it,
    // after containing the accounts it could reach; the run goes on to tell people.
    c.ok(&["run", "--cloud", "sim", "--event", &event], 3);

    let w = c.world();
    let policy = |acct: &str| {
        w["accounts"][acct]["roles"]["app-server-role"]["inline"]["AWSRevokeOlderSessions"]
            .as_str()
            .map(|s| serde_json::from_str::<Value>(s).unwrap())
    };
    for acct in ["222222222222", "333333333333"] {
        let p = policy(acct).unwrap_or_else(|| panic!("no revoke policy in {acct}"));
        let st = &p["Statement"][0];
        assert_eq!(st["Effect"], "Deny");
        let cutoff = st["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
            .as_str()
            .unwrap();
        assert!(
            cutoff > "2026-01-01",
            "cut-off is now, not the old one: {cutoff}"
        );
    }
    assert!(
        w["accounts"]["111111111111"]["roles"].is_null(),
        "nothing happens in the delegated admin's account"
    );
    let run = c.run_of("revoke-role-sessions");
    assert_eq!(
        run["account"], "222222222222",
        "containment acts in the finding's account"
    );
    let revoke = &run["steps"][0];
    assert_eq!(revoke["state"], "failed");
    let err = revoke["error"].as_str().unwrap();
    assert!(
        err.contains("111111111111") && err.contains(r#"["222222222222", "333333333333"]"#),
        "{err}"
    );
    let chat = w["chat"][0].as_str().unwrap();
    assert!(
        chat.contains("FAILED") && chat.contains("111111111111"),
        "{chat}"
    );

    c.ok(&["release", run["id"].as_str().unwrap()], 0);
    let w = c.world();
    let inline = |acct: &str| w["accounts"][acct]["roles"]["app-server-role"]["inline"].clone();
    assert_eq!(inline("222222222222"), json!({}), "our policy is deleted");
    assert_eq!(
        inline("333333333333"),
        json!({"AWSRevokeOlderSessions": old_doc}),
        "an older revoke policy is put back as it was"
    );
}

/// A long-term IAM user key used from a malicious IP.
fn user_key_event() -> Value {
    let mut e = exfiltration_event();
    let d = &mut e["detail"];
    d["type"] = json!("UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom");
    d["id"] = json!("user-key-finding-1");
    d["resource"]["accessKeyDetails"] = json!({
        "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "principalId": "AIDAEXAMPLEUSER", "userName": "alice", "userType": "IAMUser"
    });
    e
}

fn user(c: &Cordon) -> Value {
    c.world()["accounts"]["222222222222"]["users"]["alice"].clone()
}

#[test]
fn user_key_is_deactivated_then_user_disabled_after_approval_and_release_reactivates() {
    let c = Cordon::new();
    let event = c.event("key.json", &user_key_event());
    let out = c.ok(&["run", "--cloud", "sim", "--event", &event], 0);
    assert!(out.contains("waiting_approval"), "{out}");
    let u = user(&c);
    assert_eq!(
        u["keys"],
        json!([["AKIAIOSFODNN7EXAMPLE", "Inactive"]]),
        "the key is deactivated at once"
    );
    assert_eq!(
        u["login_profile"], true,
        "the user is not disabled before approval"
    );

    let run = c.run_of("contain-iam-user-key");
    let id = run["id"].as_str().unwrap().to_string();
    assert_eq!(run["state"], "waiting_approval");
    // Approving a step that is not waiting is refused, with the reason.
    let wrong = c.run(&["approve", &id, "disable-user", "--by", "bob"]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("not waiting for approval"));

    c.ok(&["approve", &id, "ask", "--by", "bob"], 0);
    let u = user(&c);
    assert_eq!(u["login_profile"], false);
    assert!(u["inline"]["CordonDenyAll"].is_string());
    let run = c.run_of("contain-iam-user-key");
    assert_eq!(run["state"], "succeeded");
    assert_eq!(run["steps"][1]["decision"]["by"], "bob");

    c.ok(&["release", &id], 0);
    let u = user(&c);
    assert_eq!(u["keys"], json!([["AKIAIOSFODNN7EXAMPLE", "Active"]]));
    assert_eq!(u["inline"], json!({}));
    let run = c.run_of("contain-iam-user-key");
    assert_eq!(run["state"], "released");
    let disable = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "disable-user")
        .unwrap();
    assert!(
        disable["release_detail"]["note"]
            .as_str()
            .unwrap()
            .contains("cannot be restored"),
        "the lost password is said, not hidden"
    );
}

#[test]
fn denied_approval_ends_the_run_and_leaves_the_user_enabled() {
    let c = Cordon::new();
    let event = c.event("key.json", &user_key_event());
    c.ok(&["run", "--cloud", "sim", "--event", &event], 0);
    let id = c.run_of("contain-iam-user-key")["id"]
        .as_str()
        .unwrap()
        .to_string();
    c.ok(&["approve", &id, "ask", "--deny", "--by", "carol"], 3);
    let run = c.run_of("contain-iam-user-key");
    assert_eq!(run["state"], "denied");
    let states: Vec<&str> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["succeeded", "denied", "skipped", "skipped"]);
    assert_eq!(user(&c)["login_profile"], true);
    assert_eq!(calls(&c.world(), "chat:post"), 0);
}

/// The Security Hub custom action event, renamed to the playbook it should start.
fn custom_action_event(action: &str, account: &str) -> Value {
    let mut e = fixture_json("aws.securityhub__SecurityHub-AFSBP-IAM.6_CustomAction__1.json");
    e["detail"]["actionName"] = json!(action);
    for f in e["detail"]["findings"].as_array_mut().unwrap() {
        f["AwsAccountId"] = json!(account);
    }
    e["detail"]["findings"].as_array_mut().unwrap().truncate(1);
    e
}

#[test]
fn custom_action_quarantines_the_account_after_approval_and_release_detaches() {
    let c = Cordon::new();
    let event = c.event(
        "ca.json",
        &custom_action_event("quarantine-account", "555555555555"),
    );
    c.ok(&["run", "--cloud", "sim", "--event", &event], 0);
    let run = c.run_of("quarantine-account");
    assert_eq!(
        run["trigger"],
        json!({"kind": "custom_action", "name": "quarantine-account"})
    );
    assert_eq!(run["state"], "waiting_approval");
    let id = run["id"].as_str().unwrap().to_string();
    assert!(
        c.world()["org"]["attachments"]["555555555555"]
            .as_array()
            .unwrap()
            .len()
            == 1,
        "nothing attached before approval"
    );

    c.ok(&["approve", &id, "confirm", "--by", "dave"], 0);
    let w = c.world();
    let attached: Vec<&str> = w["org"]["attachments"]["555555555555"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let scp = attached
        .iter()
        .find(|p| **p != "p-FullAWSAccess")
        .expect("quarantine SCP attached");
    let (name, content) = (&w["org"]["policies"][scp][0], &w["org"]["policies"][scp][1]);
    assert_eq!(name, "cordon-quarantine");
    let doc: Value = serde_json::from_str(content.as_str().unwrap()).unwrap();
    assert_eq!(doc["Statement"][0]["Effect"], "Deny");
    assert_eq!(doc["Statement"][0]["Action"], "*");
    assert!(
        doc["Statement"][0]["Condition"]["ArnNotLike"]["aws:PrincipalARN"][0]
            .as_str()
            .unwrap()
            .contains("BreakGlass")
    );
    assert_eq!(w["org"]["scp_enabled"], true);

    c.ok(&["release", &id], 0);
    assert_eq!(
        c.world()["org"]["attachments"]["555555555555"],
        json!(["p-FullAWSAccess"])
    );
}

#[test]
fn fencing_the_management_account_is_refused() {
    let c = Cordon::new();
    // 000000000001 is the simulated organization's management account.
    let event = c.event(
        "ca.json",
        &custom_action_event("quarantine-account", "000000000001"),
    );
    c.ok(&["run", "--cloud", "sim", "--event", &event], 0);
    let id = c.run_of("quarantine-account")["id"]
        .as_str()
        .unwrap()
        .to_string();
    c.ok(&["approve", &id, "confirm", "--by", "dave"], 3);
    let run = c.run_of("quarantine-account");
    assert_eq!(run["state"], "failed");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("management account"),
        "{}",
        run["error"]
    );
    assert_eq!(calls(&c.world(), "organizations:AttachPolicy"), 0);
}

#[test]
fn a_finding_arriving_by_guardduty_and_security_hub_runs_once() {
    let c = Cordon::new();
    // A playbook that accepts both routes.
    let pb = c.playbook_dir("both", "id: both-routes\ntitle: t\nversion: 1\nmode: auto\ntrigger:\n  match:\n    source: [aws.guardduty, aws.securityhub]\nsteps:\n  - id: tell\n    action: notify.chat\n    with:\n      text: ${finding.id}\n");
    let gd = fixture("constructed/aws.guardduty__UnauthorizedAccess_IAMUser_InstanceCredentialExfiltration.OutsideAWS__constructed.json");
    let sh = fixture("constructed/aws.securityhub__GuardDuty-InstanceCredentialExfiltration.OutsideAWS_Imported__constructed.json");
    c.ok(
        &[
            "--playbooks",
            &pb,
            "run",
            "--cloud",
            "sim",
            "--event",
            gd.to_str().unwrap(),
        ],
        0,
    );
    let second = c.ok(
        &[
            "--playbooks",
            &pb,
            "run",
            "--cloud",
            "sim",
            "--event",
            sh.to_str().unwrap(),
        ],
        5,
    );
    assert!(second.contains("nothing started for finding"), "{second}");
    assert!(second.contains("duplicate of run"), "{second}");
    assert_eq!(calls(&c.world(), "chat:post"), 1);
}

#[test]
fn an_approval_timeout_applies_its_default_on_resume() {
    let c = Cordon::new();
    let pb = c.playbook_dir("t", "id: timed\ntitle: t\nversion: 1\nmode: approval\ntrigger:\n  match:\n    source: [aws.guardduty]\nsteps:\n  - id: ask\n    action: approval\n    with: {timeout: 1s, default: approve}\n  - id: tell\n    action: notify.chat\n    with: {text: go}\n");
    c.ok(&["--playbooks", &pb, "run", "--cloud", "sim"], 0);
    assert_eq!(c.run_of("timed")["state"], "waiting_approval");
    std::thread::sleep(std::time::Duration::from_millis(1300));
    c.ok(&["--playbooks", &pb, "resume"], 0);
    let run = c.run_of("timed");
    assert_eq!(run["state"], "succeeded");
    assert_eq!(
        run["steps"][0]["decision"],
        json!({"approved": true, "by": "timeout", "at_ms": run["steps"][0]["decision"]["at_ms"]})
    );
    assert_eq!(calls(&c.world(), "chat:post"), 1);
}

#[test]
fn dry_run_plans_without_acting_or_journaling() {
    let c = Cordon::new();
    let plans = c.json(&["run", "--dry-run"], 0);
    assert_eq!(plans.as_array().unwrap().len(), 1);
    let plan = &plans[0];
    assert_eq!(plan["playbook"], "isolate-ec2-instance");
    assert_eq!(plan["steps"][1]["action"], "ec2.isolate_instance");
    assert_eq!(plan["steps"][1]["params"]["instance"], DEMO_INSTANCE);
    // A parameter made from an earlier step's output is shown as its template, not as an error.
    let text = &plan["steps"][2]["params"]["text"];
    assert_eq!(
        text["after_steps"],
        json!(["isolate", "snapshot"]),
        "{plan}"
    );
    assert!(
        text["at_run_time"]
            .as_str()
            .is_some_and(|t| t.contains("${steps.isolate.output.instance}")),
        "{plan}"
    );
    assert!(
        !c.path().join(".cordon").exists(),
        "a dry run writes nothing"
    );
}

#[test]
fn acting_needs_an_explicit_cloud() {
    let c = Cordon::new();
    let out = c.run(&["run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cloud sim"));
    // A journal used with one cloud refuses the other.
    c.ok(&["run", "--cloud", "sim"], 0);
    let event = fixture("aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json");
    let aws = c.run(&["run", "--cloud", "aws", "--event", event.to_str().unwrap()]);
    assert_eq!(aws.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&aws.stderr).contains("holds runs acting on --cloud sim"),
        "{}",
        String::from_utf8_lossy(&aws.stderr)
    );
}

#[test]
fn config_file_sets_journal_and_action_settings() {
    let c = Cordon::new();
    std::fs::write(
        c.path().join("cordon.yaml"),
        "journal: state/journal\nsettings:\n  isolation_group_name: ir-quarantine\n  untrack_group_name: ir-untrack\n",
    )
    .unwrap();
    c.ok(&["run", "--cloud", "sim"], 0);
    assert!(
        c.path().join("state/journal").is_dir(),
        "the configured journal is used"
    );
    let world = common::world_at(&c.path().join("state/journal/sim-world.json"));
    let r = region(&world, DEMO_ACCOUNT, "us-east-1");
    let (iso, _) = group_named(r, "ir-quarantine");
    for groups in r["instances"][DEMO_INSTANCE]["interfaces"]
        .as_object()
        .unwrap()
        .values()
    {
        assert_eq!(groups, &json!([iso]));
    }
    // A typo in the config is an error naming the field, not a silent default.
    std::fs::write(c.path().join("cordon.yaml"), "journl: x\n").unwrap();
    let out = c.run(&["runs", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `journl`"));
}
