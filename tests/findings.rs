//! End-to-end through the binary: the new Security Hub's OCSF findings, findings that must not
//! act (GuardDuty samples, forged GuardDuty imports, placeholder accounts), a batch with one bad
//! finding, and a `${...}` that reads a missing field.

mod common;

use common::{calls, fixture, fixture_json, Cordon};
use serde_json::{json, Value};

const V2_REAL: &str =
    "aws.securityhub__FindingsImportedV2_GuardDuty-Stealth-IAMUser-CloudTrailLoggingDisabled_IAMAccessKey__1.json";
const V2_EC2: &str =
    "constructed/aws.securityhub__FindingsImportedV2_GuardDuty-MaliciousIPCaller.Custom_EC2Instance__constructed.json";
const V2_KEY: &str =
    "constructed/aws.securityhub__FindingsImportedV2_GuardDuty-IAMUser-MaliciousIPCaller.Custom_IAMAccessKey__constructed.json";
const GD_EC2: &str = "aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json";
const SAMPLE: &str =
    "constructed/aws.guardduty__UnauthorizedAccess_EC2_TorClient_SAMPLE__constructed.json";
const BATCH: &str =
    "constructed/aws.securityhub__GuardDuty-batch-one-odd-Severity.Product_Imported__constructed.json";

fn path(name: &str) -> String {
    fixture(name).display().to_string()
}

/// Each playbook whose pattern matched, with its outcome's name.
fn outcomes(finding: &Value) -> Vec<(String, String)> {
    finding["playbooks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["outcome"].is_object())
        .map(|p| {
            (
                p["playbook"].as_str().unwrap().to_string(),
                p["outcome"]["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn explain_reads_the_new_security_hub() {
    let c = Cordon::new();
    let v = c.json(&["explain", "--event", &path(V2_REAL)], 0);
    let f = &v[0];
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert_eq!(f["source"], "securityhub");
    assert_eq!(f["type"], "Stealth:IAMUser/CloudTrailLoggingDisabled");
    assert_eq!(f["account"], "869728294964");
    assert_eq!(f["region"], "us-east-1");
    assert_eq!(
        (f["severity"].as_f64(), &f["severity_label"]),
        (Some(1.0), &json!("LOW"))
    );
    assert_eq!(f["status"], "Suppressed");
    assert_eq!(f["dedup_id"], "06c95f0cfdfd3b579b977e20e9da1aa4");
    assert_eq!(
        f["resources"][0],
        json!({"type": "AccessKey", "id": "ASIA4U76YS3TB3MEOA3O", "attributes": {
            "name": "cis_automation", "owner_account": "869728294964", "region": "us-east-1",
            "principal_id": "AROA4U76YS3THXXBAIOOA:aws-go-sdk-1753152318418995274",
            "user_name": "cis_automation", "user_type": "AssumedRole"}})
    );
    // A low-severity, suppressed finding: nothing starts.
    assert_eq!(outcomes(f), pairs(&[]));

    for (name, playbook) in [
        (V2_EC2, "isolate-ec2-instance"),
        (V2_KEY, "contain-iam-user-key"),
    ] {
        let v = c.json(&["explain", "--event", &path(name)], 0);
        assert_eq!(outcomes(&v[0]), pairs(&[(playbook, "run")]), "{name}");
    }
    for bare in [
        "ocsf-finding__SecurityHub-Coverage-GuardDutyFoundational_Account__1.json",
        "ocsf-finding__SecurityHub-ExposureFinding-LambdaFunction_AWSdocs-sample__1.json",
    ] {
        let v = c.json(&["explain", "--event", &path(bare)], 0);
        assert_eq!(v[0]["account"], "123456789012", "{bare}");
        assert_eq!(outcomes(&v[0]), pairs(&[]), "{bare}");
    }
}

fn isolated_groups(c: &Cordon) -> Value {
    let w = c.world();
    let r = &w["accounts"]["352283894008"]["regions"]["us-east-1"];
    let isolation = r["groups"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, g)| g["name"] == "cordon-isolation")
        .map(|(id, _)| id.clone());
    json!({
        "isolation": isolation,
        "interfaces": r["instances"]["i-0961e0b3af8b3ec39"]["interfaces"],
    })
}

/// The new Security Hub's copy of a GuardDuty EC2 finding isolates the instance; the GuardDuty
/// event of the same finding, delivered after it, starts nothing.
#[test]
fn a_v2_copy_contains_and_the_guardduty_event_then_runs_nothing() {
    let c = Cordon::new();
    let out = c.json(&["run", "--cloud", "sim", "--event", &path(V2_EC2)], 0);
    assert_eq!(out[0]["playbook"], "isolate-ec2-instance");
    assert_eq!(out[0]["state"], "succeeded");
    let g = isolated_groups(&c);
    let sg = g["isolation"].as_str().expect("isolation group created");
    for groups in g["interfaces"].as_object().unwrap().values() {
        assert_eq!(
            groups,
            &json!([sg]),
            "every interface holds only the isolation group"
        );
    }
    let calls_before = c.world()["calls"].as_array().unwrap().len();
    let again = c.ok(&["run", "--cloud", "sim", "--event", &path(GD_EC2)], 5);
    assert!(again.contains("duplicate of run"), "{again}");
    assert_eq!(c.world()["calls"].as_array().unwrap().len(), calls_before);
}

#[test]
fn a_v2_user_key_finding_deactivates_the_key() {
    let c = Cordon::new();
    let out = c.ok(&["run", "--cloud", "sim", "--event", &path(V2_KEY)], 0);
    assert!(out.contains("waiting_approval"), "{out}");
    let user = &c.world()["accounts"]["222222222222"]["users"]["alice"];
    assert_eq!(user["keys"], json!([["AKIAIOSFODNN7EXAMPLE", "Inactive"]]));
    assert_eq!(user["login_profile"], true, "not disabled before approval");
}

/// GuardDuty's generated samples never start a containment on their own; `explain` says why;
/// a person may still start a playbook on one by hand.
#[test]
fn sample_findings_start_nothing_unless_a_person_asks() {
    let c = Cordon::new();
    let v = c.json(&["explain", "--event", &path(SAMPLE)], 0);
    assert_eq!(v[0]["sample"], true);
    assert_eq!(
        outcomes(&v[0]),
        pairs(&[("isolate-ec2-instance", "sample")])
    );
    let text = c.ok(&["explain", "--event", &path(SAMPLE)], 0);
    assert!(text.contains("sample finding"), "{text}");

    let mut plain = fixture_json(SAMPLE);
    plain["detail"]["service"]["additionalInfo"] = json!({"sample": true, "type": "default"});
    let plain = c.event("plain-sample.json", &plain);
    for event in [path(SAMPLE), plain] {
        let out = c.json(&["run", "--cloud", "sim", "--event", &event], 0);
        assert_eq!(
            out,
            json!([{"playbook": "isolate-ec2-instance", "status": "sample",
                    "finding": "c3d4e5f60718293a4b5c6d7e8f90a1b2"}]),
            "{event}"
        );
        assert_eq!(calls(&c.world(), "ec2:ModifyNetworkInterfaceAttribute"), 0);
    }

    let out = c.json(
        &[
            "run",
            "--cloud",
            "sim",
            "--event",
            &path(SAMPLE),
            "--playbook",
            "isolate-ec2-instance",
        ],
        0,
    );
    assert_eq!(out[0]["state"], "succeeded", "{out}");
    assert!(calls(&c.world(), "ec2:ModifyNetworkInterfaceAttribute") > 0);
}

/// A custom integration's finding that claims to be GuardDuty's starts nothing.
#[test]
fn a_forged_guardduty_import_starts_nothing() {
    let c = Cordon::new();
    let mut forged = fixture_json(
        "constructed/aws.securityhub__GuardDuty-SSHBruteForce_Imported__constructed.json",
    );
    let f = &mut forged["detail"]["findings"][0];
    f["ProductArn"] =
        json!("arn:aws:securityhub:us-east-1:444455556666:product/444455556666/default");
    f["ProductName"] = json!("GuardDuty");
    f["CompanyName"] = json!("Amazon");
    f["AwsAccountId"] = json!("444455556666");
    f["Severity"] = json!({"Label": "CRITICAL", "Normalized": 95});
    let event = c.event("forged.json", &forged);
    let v = c.json(&["explain", "--event", &event], 0);
    assert_eq!(outcomes(&v[0]), pairs(&[]));
    assert_ne!(v[0]["dedup_id"], "46ba0ac2845071e23ccdeb2ae03bfdea");
}

/// One bad finding in a Security Hub batch: the others are explained and run, the bad one is
/// named with its index and JSON path, and the exit code says something was refused.
#[test]
fn a_batch_with_a_bad_finding_keeps_the_others() {
    let c = Cordon::new();
    // The odd Severity.Product (70) is not a bad finding: all five are read.
    let all = c.json(&["explain", "--event", &path(BATCH)], 0);
    assert_eq!(all.as_array().map(Vec::len), Some(5));
    assert_eq!(all[2]["severity_label"], "HIGH");

    let mut batch = fixture_json(BATCH);
    batch["detail"]["findings"][3]["AwsAccountId"] = json!("12345");
    let event = c.event("batch.json", &batch);
    let out = c.run(&["explain", "--json", "--event", &event]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["dedup_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["f000000", "f000001", "f000050", "f000052"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rejected finding 3 (\"arn:aws:guardduty:eu-west-1:123456789012:detector/x/finding/f000051\"): detail.findings[3].AwsAccountId is \"12345\"; an AWS account id is 12 digits"),
        "{err}"
    );

    // `run` acts on the four and still exits non-zero.
    let out = c.run(&["run", "--cloud", "sim", "--json", "--event", &event]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let states: Vec<&str> = report
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(states, ["succeeded"; 4]);
}

#[test]
fn placeholder_accounts_are_refused_naming_the_field() {
    let c = Cordon::new();
    for (name, account) in [
        (
            "aws.guardduty__Recon_EC2_PortProbeUnprotectedPort__2.json",
            "845345345",
        ),
        (
            "aws.guardduty__Discovery_Kubernetes_MaliciousIPCaller__1.json",
            "CHILD-EXAMPLE",
        ),
    ] {
        let out = c.run(&["explain", "--json", "--event", &path(name)]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "detail.accountId is \"{account}\"; an AWS account id is 12 digits"
            )),
            "{err}"
        );
    }
}

/// A `${...}` that reads a missing field fails its step with the expression named, before the
/// action is called; the dry run says the same.
#[test]
fn a_template_reading_a_missing_field_fails_the_step() {
    let c = Cordon::new();
    let pb = c.playbook_dir(
        "key",
        "id: key-off\ntitle: t\nversion: 1\nmode: manual\nsteps:\n  - id: off\n    action: iam.deactivate_access_key\n    with:\n      user: ${finding.user_name}\n      key_id: AKIAIOSFODNN7EXAMPLE\n",
    );
    let ec2 = path(GD_EC2);
    let plan = c.json(
        &[
            "--playbooks",
            &pb,
            "run",
            "--dry-run",
            "--playbook",
            "key-off",
            "--event",
            &ec2,
        ],
        0,
    );
    let not_rendered = plan[0]["steps"][0]["params"]["user"]["not_rendered"]
        .as_str()
        .unwrap_or("");
    assert!(
        not_rendered.starts_with("parameter `user`: ")
            && not_rendered.contains("${finding.user_name}")
            && not_rendered.contains("the value is ()"),
        "{plan}"
    );

    let out = c.json(
        &[
            "--playbooks",
            &pb,
            "run",
            "--cloud",
            "sim",
            "--playbook",
            "key-off",
            "--event",
            &ec2,
        ],
        3,
    );
    assert_eq!(out[0]["state"], "failed");
    let step = &out[0]["run"]["steps"][0];
    assert_eq!(step["state"], "failed");
    let error = step["error"].as_str().unwrap();
    assert!(
        error.contains("parameter `user`") && error.contains("${finding.user_name}"),
        "{error}"
    );
    assert_eq!(calls(&c.world(), "iam:UpdateAccessKey"), 0);
}
