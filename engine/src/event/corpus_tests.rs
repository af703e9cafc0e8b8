//! Every fixture in `tests/fixtures/events/` (and `constructed/`), with what a user would check
//! for each. The never-panic variants of the same files are in `robustness_tests`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{parse, Batch, CustomAction, Parsed};
use crate::finding::{FindingSource, SeverityLabel};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/events");

/// What one finding should normalize to.
struct F {
    source: FindingSource,
    kind: &'static str,
    severity: f64,
    label: SeverityLabel,
    account: &'static str,
    region: &'static str,
    resources: &'static [(&'static str, &'static str)],
    user: Option<(&'static str, &'static str)>,
    dedup: &'static str,
}

enum Expect {
    Findings {
        envelope_account: &'static str,
        synthetic: bool,
        custom_action: Option<(&'static str, &'static str)>,
        findings: Vec<F>,
    },
    Ignored {
        source: &'static str,
        detail_type: &'static str,
        reason: &'static str,
    },
    Error(&'static str),
}

const AFSBP: &str =
    "Software and Configuration Checks/Industry and Regulatory Standards/AWS-Foundational-Security-Best-Practices";
const GD: FindingSource = FindingSource::Guardduty;
const SH: FindingSource = FindingSource::Securityhub;

fn expectations() -> Vec<(&'static str, Expect)> {
    use Expect::*;
    use SeverityLabel::*;
    vec![
        ("asff-finding__SecurityHub-AFSBP-IAM.3__1.json", Findings {
            envelope_account: "111111111111", synthetic: true, custom_action: None,
            findings: vec![F { source: SH, kind: AFSBP, severity: 4.0, label: Medium,
                account: "111111111111", region: "us-east-1",
                resources: &[("IamUser", "test-admin2")], user: None,
                dedup: "arn:aws:securityhub:us-east-1::product/aws/securityhub/arn:aws:securityhub:us-east-1:111111111111:subscription/aws-foundational-security-best-practices/v/1.0.0/IAM.3/finding/882c084c-8772-446e-9c3b-e926c4a1a8ef" }],
        }),
        ("asff-finding__SecurityHub-AFSBP-S3.8__1.json", Findings {
            envelope_account: "111111111111", synthetic: true, custom_action: None,
            findings: vec![F { source: SH, kind: AFSBP, severity: 7.0, label: High,
                account: "111111111111", region: "us-east-1",
                resources: &[("S3Bucket", "example")], user: None,
                dedup: "arn:aws:securityhub:us-east-1::product/aws/securityhub/arn:aws:securityhub:us-east-1:111111111111:subscription/aws-foundational-security-best-practices/v/1.0.0/S3.8/finding/e0182181-9218-420f-bef2-ed09ed230c59" }],
        }),
        ("aws.guardduty__AWS-API-Call-via-CloudTrail_CreateSampleFindings__1.json", Ignored {
            source: "aws.guardduty", detail_type: "AWS API Call via CloudTrail",
            reason: "AWS API Call via CloudTrail is a CloudTrail record of a call to the GuardDuty API, not a finding",
        }),
        // Published with placeholder accounts: an account id is 12 digits, so these are refused,
        // naming the field, before anything could act in them.
        ("aws.guardduty__Discovery_Kubernetes_MaliciousIPCaller__1.json", Error(
            "detail.accountId is \"CHILD-EXAMPLE\"; an AWS account id is 12 digits",
        )),
        ("aws.guardduty__Recon_EC2_PortProbeUnprotectedPort__2.json", Error(
            "detail.accountId is \"845345345\"; an AWS account id is 12 digits",
        )),
        ("aws.guardduty__Runtime-Protection-Healthy_EC2__1.json", Ignored {
            source: "aws.guardduty", detail_type: "GuardDuty Runtime Protection Healthy",
            reason: "\"GuardDuty Runtime Protection Healthy\" is a GuardDuty status event, not a finding; only \"GuardDuty Finding\" events carry findings",
        }),
        ("aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json", Findings {
            envelope_account: "352283894008", synthetic: false, custom_action: None,
            findings: vec![F { source: GD, kind: "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom",
                severity: 5.0, label: Medium, account: "352283894008", region: "us-east-1",
                resources: &[("Instance", "i-0961e0b3af8b3ec39")], user: None,
                dedup: "3aaf83ddd9c31405246fa1c62e3e034d" }],
        }),
        ("aws.securityhub__SecurityHub-AFSBP-AutoScaling.1_CustomAction__1.json", Findings {
            envelope_account: "111111111111", synthetic: false,
            custom_action: Some(("AFSBPautoscaling1", "arn:aws:securityhub:eu-west-1:111111111111:action/custom/AFSBPautoscaling1")),
            findings: vec![F { source: SH, kind: AFSBP, severity: 3.9, label: Low,
                account: "111111111111", region: "eu-west-1",
                resources: &[("AwsAutoScalingAutoScalingGroup", "arn:aws:autoscaling:eu-west-1:111111111111:autoScalingGroup:9ddd8926-a71c-490c-956d-5b1e9e3c76e3:autoScalingGroupName/arn:aws:iam::111111111111:role/testalbsh")],
                user: None,
                dedup: "arn:aws:securityhub:eu-west-1::product/aws/securityhub/arn:aws:securityhub:eu-west-1:111111111111:subscription/aws-foundational-security-best-practices/v/1.0.0/AutoScaling.1/finding/40708dcf-8c89-4389-ac0c-8a1c029b7c87" }],
        }),
        ("aws.securityhub__SecurityHub-AFSBP-EC2.8_Imported__1.json", Findings {
            envelope_account: "123456789012", synthetic: false, custom_action: None,
            findings: vec![F { source: SH, kind: AFSBP, severity: 7.0, label: High,
                account: "123456789012", region: "eu-west-1",
                resources: &[("Instance", "i-0000000aaaaaaaaaa")], user: None,
                dedup: "arn:aws:securityhub:eu-west-1::product/aws/securityhub/arn:aws:securityhub:eu-west-1:123456789012:subscription/aws-foundational-security-best-practices/v/1.0.0/EC2.8/finding/fba5a282-b865-41fe-bc9c-30357a1e87a7" }],
        }),
        ("aws.securityhub__SecurityHub-AFSBP-IAM.6_CustomAction__1.json", Findings {
            envelope_account: "111111111111", synthetic: false,
            custom_action: Some(("CIS 1.5 - 1.11", "arn:aws:securityhub:us-east-1:111111111111:action/custom/cis1511RR")),
            findings: vec![
                F { source: SH, kind: AFSBP, severity: 9.0, label: Critical,
                    account: "111111111111", region: "us-east-1",
                    resources: &[("AwsAccount", "111111111111")], user: None,
                    dedup: "arn:aws:securityhub:us-east-1::product/aws/securityhub/arn:aws:securityhub:us-east-1:111111111111:subscription/aws-foundational-security-best-practices/v/1.0.0/IAM.6/finding/9edca51b-6b6e-4307-a634-541603f62fa0" },
                F { source: SH, kind: AFSBP, severity: 4.0, label: Medium,
                    account: "111111111111", region: "us-east-1",
                    resources: &[("AwsRdsDbClusterSnapshot", "arn:aws:rds:us-east-1:111111111111:cluster-snapshot:miotest-us-east-1c-final-snapshot")],
                    user: None,
                    dedup: "arn:aws:securityhub:us-east-1::product/aws/securityhub/arn:aws:securityhub:us-east-1:111111111111:subscription/aws-foundational-security-best-practices/v/1.0.0/RDS.4/finding/0baff3be-7a31-4bf9-b7f5-a2f1ad431762" },
            ],
        }),
        ("aws.securityhub__SecurityHub-CIS-1.2.0-1.3_Imported__1.json", Findings {
            envelope_account: "111111111111", synthetic: false, custom_action: None,
            findings: vec![F { source: SH,
                kind: "Software and Configuration Checks/Industry and Regulatory Standards/CIS AWS Foundations Benchmark",
                severity: 4.0, label: Medium, account: "111111111111", region: "us-east-1",
                resources: &[("AwsAccount", "111111111111")], user: None,
                dedup: "arn:aws:securityhub:us-east-1::product/aws/securityhub/arn:aws:securityhub:us-east-1:111111111111:subscription/cis-aws-foundations-benchmark/v/1.2.0/1.3/finding/6e842abe-6cbf-4bc1-aa55-3b2ae63aabd6" }],
        }),
        ("guardduty-finding__AttackSequence_IAM_CompromisedCredentials__1.json", Findings {
            envelope_account: "123456789012", synthetic: true, custom_action: None,
            findings: vec![F { source: GD, kind: "AttackSequence:IAM/CompromisedCredentials",
                severity: 9.0, label: Critical, account: "123456789012", region: "us-east-1",
                // resourceType AttackSequence carries no details to name a resource by.
                resources: &[], user: None, dedup: "8c258d654378414b9bc26f61a93eb816" }],
        }),
        ("guardduty-finding__PrivilegeEscalation_IAMUser_AdministrativePermissions__1.json", Findings {
            envelope_account: "123456789012", synthetic: true, custom_action: None,
            findings: vec![F { source: GD, kind: "PrivilegeEscalation:IAMUser/AdministrativePermissions",
                // `region` says us-east-1 although the ARN says us-west-2: the field wins.
                severity: 8.0, label: High, account: "123456789012", region: "us-east-1",
                resources: &[], user: None, dedup: "eeb88ab56556eb7771b266670dddee5a" }],
        }),
        ("aws.securityhub__FindingsImportedV2_GuardDuty-Stealth-IAMUser-CloudTrailLoggingDisabled_IAMAccessKey__1.json", Findings {
            envelope_account: "869728294964", synthetic: false, custom_action: None,
            findings: vec![F { source: SH, kind: "Stealth:IAMUser/CloudTrailLoggingDisabled",
                // severity_id 2 (Low): the lower bound of LOW.
                severity: 1.0, label: Low, account: "869728294964", region: "us-east-1",
                // The key is `data.access_key_id`: the published `uid` was shortened by its
                // publisher (17 characters; access key ids have 20).
                resources: &[("AccessKey", "ASIA4U76YS3TB3MEOA3O"), ("IamRole", "cis_automation")],
                user: Some(("cis_automation", "AssumedRole")),
                // GuardDuty's product ARN: the finding id of the GuardDuty ARN, as the GuardDuty
                // event and the ASFF copy give.
                dedup: "06c95f0cfdfd3b579b977e20e9da1aa4" }],
        }),
        ("ocsf-finding__SecurityHub-Coverage-GuardDutyFoundational_Account__1.json", Findings {
            envelope_account: "123456789012", synthetic: true, custom_action: None,
            findings: vec![F { source: SH, kind: "Coverage", severity: 0.0, label: Low,
                account: "123456789012", region: "us-east-1",
                resources: &[("AwsAccount", "123456789012")], user: None,
                dedup: "arn:aws:securityhub:us-east-1::productv2/aws/securityhub-coverage/8c4b7f689d35377f5ac8d5f317c620058b54029ee4a56a644e6e88c87ac19a60" }],
        }),
        ("ocsf-finding__SecurityHub-ExposureFinding-LambdaFunction_AWSdocs-sample__1.json", Findings {
            envelope_account: "123456789012", synthetic: true, custom_action: None,
            findings: vec![F { source: SH, kind: "Exposure/Potential Impact/Resource Hijacking",
                severity: 9.0, label: Critical, account: "123456789012", region: "us-east-1",
                // Not a CloudFormation type name in this documentation sample: kept as written.
                resources: &[("AwsLambdaFunction", "arn:aws:lambda:us-east-1:123456789012:application-function")],
                user: None,
                dedup: "arn:aws:securityhub:us-east-1::productv2/aws/securityhub-risk/arn:aws:securityhub:us-east-1:123456789012:risk:1234f781c7ae7507f01e2fb460f15ca8fe7f9c95e257698a092cb74a4ea84a42" }],
        }),
        ("constructed/aws.securityhub__FindingsImportedV2_GuardDuty-MaliciousIPCaller.Custom_EC2Instance__constructed.json", Findings {
            envelope_account: "111111111111", synthetic: false, custom_action: None,
            findings: vec![F { source: SH, kind: "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom",
                severity: 4.0, label: Medium, account: "352283894008", region: "us-east-1",
                resources: &[("Instance", "i-0961e0b3af8b3ec39")], user: None,
                dedup: "3aaf83ddd9c31405246fa1c62e3e034d" }],
        }),
        ("constructed/aws.securityhub__FindingsImportedV2_GuardDuty-IAMUser-MaliciousIPCaller.Custom_IAMAccessKey__constructed.json", Findings {
            envelope_account: "111111111111", synthetic: false, custom_action: None,
            findings: vec![F { source: SH, kind: "UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom",
                severity: 4.0, label: Medium, account: "222222222222", region: "us-east-1",
                resources: &[("AccessKey", "AKIAIOSFODNN7EXAMPLE"), ("IamUser", "alice")],
                user: Some(("alice", "IAMUser")),
                dedup: "7e1f0c2b3a4d5e6f708192a3b4c5d6e7" }],
        }),
        ("constructed/aws.guardduty__UnauthorizedAccess_EC2_TorClient_SAMPLE__constructed.json", Findings {
            envelope_account: "111122223333", synthetic: false, custom_action: None,
            findings: vec![F { source: GD, kind: "UnauthorizedAccess:EC2/TorClient", severity: 8.0,
                label: High, account: "111122223333", region: "us-east-1",
                resources: &[("Instance", "i-99999999")], user: None,
                dedup: "c3d4e5f60718293a4b5c6d7e8f90a1b2" }],
        }),
        // Every finding of the batch, the one whose Severity.Product (70) is not GuardDuty's
        // 0-10 included: its Label/Normalized (HIGH, 80) give 8.0.
        ("constructed/aws.securityhub__GuardDuty-batch-one-odd-Severity.Product_Imported__constructed.json", Findings {
            envelope_account: "123456789012", synthetic: false, custom_action: None,
            findings: vec![
                F { source: SH, kind: "Backdoor:EC2/C&CActivity.B!DNS", severity: 8.0, label: High,
                    account: "123456789012", region: "eu-west-1",
                    resources: &[("Instance", "i-00000000000000000")], user: None, dedup: "f000000" },
                F { source: SH, kind: "Backdoor:EC2/C&CActivity.B!DNS", severity: 8.0, label: High,
                    account: "123456789012", region: "eu-west-1",
                    resources: &[("Instance", "i-00000000000000001")], user: None, dedup: "f000001" },
                F { source: SH, kind: "Backdoor:EC2/C&CActivity.B!DNS", severity: 8.0, label: High,
                    account: "123456789012", region: "eu-west-1",
                    resources: &[("Instance", "i-00000000000000032")], user: None, dedup: "f000050" },
                F { source: SH, kind: "Backdoor:EC2/C&CActivity.B!DNS", severity: 8.0, label: High,
                    account: "123456789012", region: "eu-west-1",
                    resources: &[("Instance", "i-00000000000000033")], user: None, dedup: "f000051" },
                F { source: SH, kind: "Backdoor:EC2/C&CActivity.B!DNS", severity: 8.0, label: High,
                    account: "123456789012", region: "eu-west-1",
                    resources: &[("Instance", "i-00000000000000034")], user: None, dedup: "f000052" },
            ],
        }),
        ("slack__signing-test-vector__1.json", Error(
            "not a GuardDuty or Security Hub event or finding: got a JSON object with keys \
             [\"algorithm\", \"description\", \"expected_signature\", \"headers\", \"notes\", \
             \"raw_body\", \"sig_basestring\", \"signing_secret\", ... 1 more]; accepted: an \
             EventBridge event from aws.guardduty",
        )),
        ("constructed/aws.guardduty__UnauthorizedAccess_IAMUser_InstanceCredentialExfiltration.OutsideAWS__constructed.json", Findings {
            envelope_account: "111111111111", synthetic: false, custom_action: None,
            findings: vec![F { source: GD,
                kind: "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
                severity: 8.0, label: High, account: "222222222222", region: "us-east-1",
                resources: &[("AccessKey", "ASIAIOSFODNN7EXAMPLE"), ("IamRole", "app-server-role")],
                user: Some(("app-server-role", "AssumedRole")),
                dedup: "5cbd5d3ab1a2b3c4d5e6f708192a3b4c" }],
        }),
        ("constructed/aws.securityhub__GuardDuty-InstanceCredentialExfiltration.OutsideAWS_Imported__constructed.json", Findings {
            envelope_account: "111111111111", synthetic: false, custom_action: None,
            findings: vec![F { source: SH,
                kind: "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
                severity: 8.0, label: High, account: "222222222222", region: "us-east-1",
                resources: &[("AccessKey", "ASIAIOSFODNN7EXAMPLE"), ("IamRole", "app-server-role")],
                user: Some(("app-server-role", "AssumedRole")),
                dedup: "5cbd5d3ab1a2b3c4d5e6f708192a3b4c" }],
        }),
        ("constructed/aws.securityhub__GuardDuty-SSHBruteForce_Imported__constructed.json", Findings {
            envelope_account: "193043430472", synthetic: false, custom_action: None,
            findings: vec![F { source: SH, kind: "UnauthorizedAccess:EC2/SSHBruteForce",
                // GuardDuty's own Product score (2, LOW) wins over Normalized 40, so this copy
                // and the GuardDuty event agree (see asff::severity).
                severity: 2.0, label: Low, account: "193043430472", region: "us-east-1",
                resources: &[("Instance", "i-0c10c2c7863d1a356")], user: None,
                dedup: "46ba0ac2845071e23ccdeb2ae03bfdea" }],
        }),
    ]
}

/// Every `.json` under the fixtures directory, relative to it.
pub(super) fn fixture_files() -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["", "constructed"] {
        let dir = Path::new(DIR).join(sub);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") {
                out.push(if sub.is_empty() {
                    name
                } else {
                    format!("{sub}/{name}")
                });
            }
        }
    }
    out.sort();
    out
}

pub(super) fn read(name: &str) -> Vec<u8> {
    let path: PathBuf = Path::new(DIR).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn every_fixture_has_an_expectation() {
    let files: BTreeSet<String> = fixture_files().into_iter().collect();
    let expected: BTreeSet<String> = expectations().iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(files, expected, "fixtures and expectations differ");
}

#[test]
fn corpus_parses_as_expected() {
    for (name, expect) in expectations() {
        let parsed = parse(&read(name));
        match (expect, parsed) {
            (Expect::Error(prefix), Err(e)) => {
                let msg = e.to_string();
                assert!(msg.starts_with(prefix), "{name}: error {msg:?}");
            }
            (
                Expect::Ignored {
                    source,
                    detail_type,
                    reason,
                },
                Ok(Parsed::Ignored(i)),
            ) => {
                assert_eq!(
                    (i.source.as_str(), i.detail_type.as_str(), i.reason.as_str()),
                    (source, detail_type, reason),
                    "{name}"
                );
            }
            (
                Expect::Findings {
                    envelope_account,
                    synthetic,
                    custom_action,
                    findings,
                },
                Ok(Parsed::Findings(Batch {
                    findings: got,
                    rejected,
                })),
            ) => {
                assert_eq!(rejected, [], "{name}: no finding rejected");
                assert_eq!(got.len(), findings.len(), "{name}: number of findings");
                for (i, (fe, want)) in got.iter().zip(&findings).enumerate() {
                    let f = &fe.finding;
                    let at = format!("{name} finding {i}");
                    assert_eq!(f.source, want.source, "{at}");
                    assert_eq!(f.kind, want.kind, "{at}");
                    assert!(
                        (f.severity - want.severity).abs() < 1e-9,
                        "{at}: severity {}",
                        f.severity
                    );
                    assert_eq!(f.severity_label, want.label, "{at}");
                    assert_eq!(f.account, want.account, "{at}: the finding's account");
                    assert_eq!(
                        fe.event["account"], envelope_account,
                        "{at}: the envelope's account"
                    );
                    assert_eq!(f.region, want.region, "{at}");
                    let res: Vec<(&str, &str)> = f
                        .resources
                        .iter()
                        .map(|r| (r.kind.as_str(), r.id.as_str()))
                        .collect();
                    assert_eq!(res, want.resources, "{at}");
                    assert_eq!(f.user_name.as_deref(), want.user.map(|u| u.0), "{at}");
                    assert_eq!(f.user_type.as_deref(), want.user.map(|u| u.1), "{at}");
                    assert_eq!(f.dedup_id, want.dedup, "{at}");
                    assert_eq!(fe.synthetic_envelope, synthetic, "{at}");
                    assert_eq!(
                        fe.custom_action
                            .as_ref()
                            .map(|c| (c.name.as_str(), c.arn.as_deref().unwrap_or(""))),
                        custom_action,
                        "{at}"
                    );
                    // The single-finding event matches patterns written for the real source.
                    let want_source = match f.source {
                        FindingSource::Guardduty => "aws.guardduty",
                        FindingSource::Securityhub => "aws.securityhub",
                        FindingSource::Manual => "cordon.manual",
                    };
                    assert_eq!(fe.event["source"], want_source, "{at}");
                    if f.source == FindingSource::Securityhub {
                        assert_eq!(
                            fe.event["detail"]["findings"].as_array().map(Vec::len),
                            Some(1),
                            "{at}"
                        );
                        let carried = &fe.event["detail"]["findings"][0];
                        let id = match fe.event["detail-type"].as_str() {
                            Some("Findings Imported V2") => &carried["finding_info"]["uid"],
                            _ => &carried["Id"],
                        };
                        assert_eq!(id, f.id.as_str(), "{at}");
                    } else {
                        assert_eq!(fe.event["detail"]["id"], f.id.as_str(), "{at}");
                    }
                }
            }
            (_, other) => panic!("{name}: unexpected {other:?}"),
        }
    }
}

#[test]
fn instance_attributes_come_through() {
    let p = parse(&read(
        "aws.guardduty__UnauthorizedAccess_EC2_MaliciousIPCaller.Custom__1.json",
    ));
    let f = p
        .ok()
        .and_then(|p| p.findings().first().map(|f| f.finding.clone()));
    let attrs = f
        .as_ref()
        .and_then(|f| f.resource("Instance"))
        .map(|r| r.attributes.clone());
    let get = |k: &str| attrs.as_ref().and_then(|a| a.get(k).cloned());
    assert_eq!(get("vpc_id").as_deref(), Some("vpc-b5a96fcd"));
    assert_eq!(get("subnet_id").as_deref(), Some("subnet-c396b8cf"));
    assert_eq!(get("image_id").as_deref(), Some("ami-8a1ae2e7"));
    assert_eq!(
        get("tag:Name").as_deref(),
        Some("AlertLogic Security Appliance")
    );
    assert_eq!(get("instance_profile_arn"), None);
    assert_eq!(
        f.map(|f| f.updated_at).as_deref(),
        Some("2017-10-11T23:52:16.935Z")
    );

    let p = parse(&read(
        "constructed/aws.securityhub__GuardDuty-SSHBruteForce_Imported__constructed.json",
    ));
    let r = p.ok().and_then(|p| {
        p.findings()
            .first()
            .and_then(|f| f.finding.resource("Instance").cloned())
    });
    let get = |k: &str| r.as_ref().and_then(|r| r.attributes.get(k).cloned());
    assert_eq!(get("tag:Name").as_deref(), Some("kubectl"));
    assert_eq!(get("vpc_id").as_deref(), Some("vpc-a0c2d7c7"));
    assert_eq!(
        get("arn").as_deref(),
        Some("arn:aws:ec2:us-east-1:193043430472:instance/i-0c10c2c7863d1a356")
    );
}

#[test]
fn custom_action_description_is_kept() {
    let p = parse(&read(
        "aws.securityhub__SecurityHub-AFSBP-IAM.6_CustomAction__1.json",
    ));
    let ca = p
        .ok()
        .and_then(|p| p.findings().get(1).and_then(|f| f.custom_action.clone()));
    assert_eq!(ca, Some(CustomAction {
        name: "CIS 1.5 - 1.11".into(),
        description: Some("Remediates CIS Checks 1.5 through 1.11 by establishing a CIS Compliant Strong Password Policy".into()),
        arn: Some("arn:aws:securityhub:us-east-1:111111111111:action/custom/cis1511RR".into()),
    }));
}

#[test]
fn guardduty_event_and_its_security_hub_copy_dedupe_to_one() {
    let dedup = |name: &str| {
        parse(&read(name))
            .ok()
            .and_then(|p| p.findings().first().map(|f| f.finding.dedup_id.clone()))
    };
    let gd = dedup("constructed/aws.guardduty__UnauthorizedAccess_IAMUser_InstanceCredentialExfiltration.OutsideAWS__constructed.json");
    let sh = dedup("constructed/aws.securityhub__GuardDuty-InstanceCredentialExfiltration.OutsideAWS_Imported__constructed.json");
    assert!(gd.is_some());
    assert_eq!(gd, sh);
}

#[test]
fn bare_findings_match_patterns_for_real_events() {
    let p = parse(&read(
        "guardduty-finding__PrivilegeEscalation_IAMUser_AdministrativePermissions__1.json",
    ));
    let e = p
        .ok()
        .and_then(|p| p.findings().first().map(|f| f.event.clone()))
        .unwrap_or_default();
    assert_eq!(e["source"], "aws.guardduty");
    assert_eq!(e["detail-type"], "GuardDuty Finding");
    assert_eq!(e["account"], "123456789012");
    assert_eq!(e["region"], "us-east-1");
    assert_eq!(e["time"], "2020-02-14T18:12:22.316Z");
    assert_eq!(
        e["detail"]["type"],
        "PrivilegeEscalation:IAMUser/AdministrativePermissions"
    );

    let p = parse(&read("asff-finding__SecurityHub-AFSBP-S3.8__1.json"));
    let e = p
        .ok()
        .and_then(|p| p.findings().first().map(|f| f.event.clone()))
        .unwrap_or_default();
    assert_eq!(e["detail-type"], "Security Hub Findings - Imported");
    assert_eq!(
        e["detail"]["findings"][0]["ProductFields"]["ControlId"],
        "S3.8"
    );
    assert_eq!(e["resources"][0], "arn:aws:securityhub:us-east-1::product/aws/securityhub/arn:aws:securityhub:us-east-1:111111111111:subscription/aws-foundational-security-best-practices/v/1.0.0/S3.8/finding/e0182181-9218-420f-bef2-ed09ed230c59");
}
