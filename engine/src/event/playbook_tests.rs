//! Events through `parse` and the shipped playbooks (`playbooks/*.yaml`): the new Security Hub's
//! copies of GuardDuty findings start what the GuardDuty events start and dedupe with them;
//! sample findings and forged GuardDuty findings start nothing.

use std::path::Path;

use serde_json::{json, Value};

use super::corpus_tests::read;
use super::{parse, parse_value, FindingEvent, Parsed};
use crate::playbook::{MatchOutcome, PlaybookSet};
use crate::script::Sandbox;

const V2_EC2: &str =
    "constructed/aws.securityhub__FindingsImportedV2_GuardDuty-MaliciousIPCaller.Custom_EC2Instance__constructed.json";
const V2_KEY: &str =
    "constructed/aws.securityhub__FindingsImportedV2_GuardDuty-IAMUser-MaliciousIPCaller.Custom_IAMAccessKey__constructed.json";
const GD_EC2: &str = "aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json";
const SAMPLE: &str =
    "constructed/aws.guardduty__UnauthorizedAccess_EC2_TorClient_SAMPLE__constructed.json";

fn shipped() -> (PlaybookSet, Sandbox) {
    let sandbox = Sandbox::default();
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../playbooks"));
    let set = PlaybookSet::load_dir(dir, &sandbox)
        .unwrap_or_else(|e| panic!("shipped playbooks load: {e:?}"));
    (set, sandbox)
}

fn json_of(name: &str) -> Value {
    serde_json::from_slice(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The one finding of an input that must parse cleanly.
fn one(v: Value) -> FindingEvent {
    match parse_value(v) {
        Ok(Parsed::Findings(mut b)) if b.findings.len() == 1 && b.rejected.is_empty() => {
            b.findings.remove(0)
        }
        other => panic!("expected one finding, got {other:?}"),
    }
}

/// Each matched playbook and its outcome's name (`run`, `sample`, `manual_only`...).
fn outcomes(set: &PlaybookSet, sandbox: &Sandbox, fe: &FindingEvent) -> Vec<(String, String)> {
    set.evaluate(fe, sandbox)
        .into_iter()
        .map(|m| {
            let name = serde_json::to_value(&m.outcome)
                .ok()
                .and_then(|v| v["outcome"].as_str().map(String::from))
                .unwrap_or_default();
            (m.playbook.id.clone(), name)
        })
        .collect()
}

fn starting(set: &PlaybookSet, sandbox: &Sandbox, fe: &FindingEvent) -> Vec<String> {
    set.evaluate(fe, sandbox)
        .into_iter()
        .filter(|m| m.outcome.starts_run())
        .map(|m| m.playbook.id.clone())
        .collect()
}

#[test]
fn shipped_playbooks_start_on_the_new_security_hub_copies() {
    let (set, sb) = shipped();
    let ec2 = one(json_of(V2_EC2));
    assert_eq!(starting(&set, &sb, &ec2), ["isolate-ec2-instance"]);
    let key = one(json_of(V2_KEY));
    assert_eq!(starting(&set, &sb, &key), ["contain-iam-user-key"]);

    // An instance role's credentials used outside AWS, through the new Security Hub.
    let mut role = json_of(V2_KEY);
    let f = &mut role["detail"]["findings"][0];
    f["finding_info"]["types"] =
        json!(["UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"]);
    f["severity_id"] = json!(4);
    f["severity"] = json!("High");
    f["resources"][0] = json!({"type": "AWS::IAM::AccessKey", "uid": "ASIAIOSFODNN7EXAMPLE",
        "data": {"access_key_id": "ASIAIOSFODNN7EXAMPLE", "user_name": "app-server-role",
                 "user_type": "AssumedRole", "principal_id": "AROAEXAMPLE:i-0abc"}});
    let role = one(role);
    assert_eq!(starting(&set, &sb, &role), ["revoke-role-sessions"]);
    assert_eq!(
        role.finding.resource("IamRole").map(|r| r.id.as_str()),
        Some("app-server-role")
    );

    // An EC2 finding below GuardDuty's 7 that is not from a custom threat list starts nothing,
    // as for the GuardDuty event.
    let mut low = json_of(V2_EC2);
    low["detail"]["findings"][0]["finding_info"]["types"] =
        json!(["UnauthorizedAccess:EC2/TorClient"]);
    assert_eq!(starting(&set, &sb, &one(low.clone())), Vec::<String>::new());
    low["detail"]["findings"][0]["severity_id"] = json!(4);
    assert_eq!(starting(&set, &sb, &one(low)), ["isolate-ec2-instance"]);

    // A finding someone suppressed in Security Hub starts nothing.
    let mut suppressed = json_of(V2_EC2);
    suppressed["detail"]["findings"][0]["status"] = json!("Suppressed");
    suppressed["detail"]["findings"][0]["status_id"] = json!(3);
    assert_eq!(starting(&set, &sb, &one(suppressed)), Vec::<String>::new());
}

#[test]
fn a_guardduty_finding_and_its_new_security_hub_copy_dedupe_to_one() {
    let gd = parse(&read(GD_EC2)).map(|p| p.findings()[0].finding.clone());
    let v2 = one(json_of(V2_EC2)).finding;
    let gd = gd.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(gd.dedup_id, "3aaf83ddd9c31405246fa1c62e3e034d");
    assert_eq!(v2.dedup_id, gd.dedup_id);
    // The finding's account and region, not the (delegated administrator's) envelope's.
    assert_eq!(
        (v2.account.as_str(), v2.region.as_str()),
        ("352283894008", "us-east-1")
    );
    assert_eq!(v2.kind, gd.kind);
    assert_eq!(v2.resources[0].id, gd.resources[0].id);
    assert_eq!(v2.status.as_deref(), Some("New"));
}

/// A custom integration can import an ASFF finding that claims to be GuardDuty's: it names
/// GuardDuty as product and company and copies a real GuardDuty finding's ARN into `Id`. Only
/// the product ARN decides: the forgery starts no shipped playbook and keeps a dedup id of its
/// own, so it cannot suppress the real finding.
#[test]
fn a_forged_guardduty_finding_starts_nothing_and_dedupes_with_nothing() {
    let (set, sb) = shipped();
    let real = one(json_of(
        "constructed/aws.securityhub__GuardDuty-SSHBruteForce_Imported__constructed.json",
    ));
    assert_eq!(real.finding.dedup_id, "46ba0ac2845071e23ccdeb2ae03bfdea");
    for product in [
        "arn:aws:securityhub:us-east-1:444455556666:product/444455556666/default",
        "arn:aws:securityhub:us-east-1:444455556666:product/aws/guardduty",
    ] {
        let mut forged = json_of(
            "constructed/aws.securityhub__GuardDuty-SSHBruteForce_Imported__constructed.json",
        );
        let f = &mut forged["detail"]["findings"][0];
        f["ProductArn"] = json!(product);
        f["ProductName"] = json!("GuardDuty");
        f["CompanyName"] = json!("Amazon");
        f["Severity"] = json!({"Label": "CRITICAL", "Normalized": 95});
        f["AwsAccountId"] = json!("444455556666");
        let forged = one(forged);
        assert_eq!(
            starting(&set, &sb, &forged),
            Vec::<String>::new(),
            "{product}"
        );
        assert_ne!(forged.finding.dedup_id, real.finding.dedup_id, "{product}");
        assert!(forged.finding.dedup_id.starts_with(product), "{product}");
        // Not read as GuardDuty's: the type stays the producer's own text.
        assert!(
            forged.finding.kind.starts_with("TTPs/"),
            "{}",
            forged.finding.kind
        );
    }
    // The same forgery through the new Security Hub: metadata.product.name is not proof.
    let mut forged = json_of(V2_EC2);
    forged["detail"]["findings"][0]["metadata"]["product"]["uid"] =
        json!("arn:aws:securityhub:us-east-1:444455556666:productv2/444455556666/default");
    let forged = one(forged);
    assert_eq!(starting(&set, &sb, &forged), Vec::<String>::new());
    assert_ne!(forged.finding.dedup_id, "3aaf83ddd9c31405246fa1c62e3e034d");
}

#[test]
fn sample_findings_start_nothing_in_either_form() {
    let (set, sb) = shipped();
    let string_form = one(json_of(SAMPLE));
    assert!(string_form.finding.sample);
    let sample_outcome = |fe: &FindingEvent| outcomes(&set, &sb, fe);
    assert_eq!(
        sample_outcome(&string_form),
        [("isolate-ec2-instance".to_string(), "sample".to_string())]
    );
    let detail = set
        .evaluate(&string_form, &sb)
        .into_iter()
        .find_map(|m| match m.outcome {
            MatchOutcome::Sample(d) => Some(d),
            _ => None,
        });
    assert!(
        detail.is_some_and(|d| d.starts_with("sample finding")),
        "explain says it is a sample"
    );

    // The same marker as a plain field.
    let mut field_form = json_of(SAMPLE);
    field_form["detail"]["service"]["additionalInfo"] = json!({"sample": true});
    let field_form = one(field_form);
    assert!(field_form.finding.sample);
    assert_eq!(starting(&set, &sb, &field_form), Vec::<String>::new());

    // Without the marker, the same finding starts the isolation: the marker is what stops it.
    let mut real = json_of(SAMPLE);
    real["detail"]["service"]["additionalInfo"] = json!({"value": "{\"sample\":false}"});
    let real = one(real);
    assert!(!real.finding.sample);
    assert_eq!(starting(&set, &sb, &real), ["isolate-ec2-instance"]);

    // The ASFF copy carries it in ProductFields; only GuardDuty's own marker counts.
    let mut asff =
        json_of("constructed/aws.securityhub__GuardDuty-SSHBruteForce_Imported__constructed.json");
    let f = &mut asff["detail"]["findings"][0];
    f["Severity"] = json!({"Product": 8, "Label": "HIGH", "Normalized": 80});
    assert_eq!(
        starting(&set, &sb, &one(asff.clone())),
        ["isolate-ec2-instance"]
    );
    asff["detail"]["findings"][0]["ProductFields"]["aws/guardduty/service/additionalInfo/sample"] =
        json!("true");
    let asff = one(asff);
    assert!(asff.finding.sample);
    assert_eq!(
        outcomes(&set, &sb, &asff),
        [("isolate-ec2-instance".to_string(), "sample".to_string())]
    );
}

#[test]
fn status_and_sample_are_read_from_each_source() {
    let status = |name: &str| {
        parse(&read(name)).ok().and_then(|p| {
            p.findings()
                .first()
                .map(|f| (f.finding.status.clone(), f.finding.sample))
        })
    };
    assert_eq!(
        status("aws.securityhub__FindingsImportedV2_GuardDuty-Stealth-IAMUser-CloudTrailLoggingDisabled_IAMAccessKey__1.json"),
        Some((Some("Suppressed".to_string()), false))
    );
    assert_eq!(
        status("aws.securityhub__SecurityHub-AFSBP-EC2.8_Imported__1.json"),
        Some((Some("NEW".to_string()), false))
    );
    assert_eq!(status(GD_EC2), Some((None, false)));
    assert_eq!(status(SAMPLE), Some((None, true)));
}

/// A batch with one bad finding: the others are all returned, and the bad one is named with its
/// index and JSON path (here: a region that is not a region name).
#[test]
fn one_bad_finding_never_sinks_its_batch() {
    let name =
        "constructed/aws.securityhub__GuardDuty-batch-one-odd-Severity.Product_Imported__constructed.json";
    let mut batch = json_of(name);
    batch["detail"]["findings"][3]["Region"] = json!("eu-west-1.attacker.example");
    let p = parse_value(batch).unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<&str> = p
        .findings()
        .iter()
        .map(|f| f.finding.dedup_id.as_str())
        .collect();
    assert_eq!(ids, ["f000000", "f000001", "f000050", "f000052"]);
    let rejected: Vec<(usize, String)> = p
        .rejected()
        .iter()
        .map(|r| (r.index, r.error.to_string()))
        .collect();
    assert_eq!(
        rejected,
        [(
            3,
            "detail.findings[3].Region is \"eu-west-1.attacker.example\"; a region name looks \
             like us-east-1, eu-central-2 or us-gov-west-1"
                .to_string()
        )]
    );
}

/// A V2 finding's account and region are its own; a malformed one is refused naming the path.
#[test]
fn v2_accounts_and_regions_are_checked() {
    let mut bad = json_of(V2_EC2);
    bad["detail"]["findings"][0]["cloud"]["account"]["uid"] = json!("35228389400");
    let p = parse_value(bad).unwrap_or_else(|e| panic!("{e}"));
    assert!(p.findings().is_empty());
    assert_eq!(
        p.rejected().first().map(|r| r.to_string()).as_deref(),
        Some(
            "finding 0 (\"arn:aws:guardduty:us-east-1:352283894008:detector/04af51d101c8c5bcae3a92560c7010ce/finding/3aaf83ddd9c31405246fa1c62e3e034d\"): \
             detail.findings[0].cloud.account.uid is \"35228389400\"; an AWS account id is 12 digits"
        )
    );
    let mut no_region = json_of(V2_EC2);
    let f = &mut no_region["detail"]["findings"][0];
    if let Some(c) = f["cloud"].as_object_mut() {
        c.remove("region");
    }
    f["resources"][0]["region"] = json!("eu-west-3");
    // Never the envelope's region (us-east-1): the resource's.
    assert_eq!(one(no_region).finding.region, "eu-west-3");
}
