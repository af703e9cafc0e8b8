//! A realistic EventBridge rule set for one AWS organization's security findings: the kinds of
//! patterns security teams write (GuardDuty finding types and families, accounts, regions,
//! severity thresholds and bands, instance tags, network details, Security Hub labels, types,
//! products, resources and workflow states, custom actions), with `$or`, `prefix`, `suffix`,
//! `numeric`, `anything-but`, `cidr`, `wildcard`, `equals-ignore-case` and `exists` where
//! teams use them.
//!
//! Values are drawn from the same pools a real organization's rules would use, the event's own
//! values included (its finding type, account, region, tags...): most generated patterns share
//! several values with any event, which is what makes naive indexes degrade. Generated
//! patterns that would match the bench event are drawn again, so only the planted ones match
//! and the size of the answer stays the same at any set size.

use serde_json::{json, Value};

use super::Lcg;

/// Real GuardDuty finding types with the resource type GuardDuty reports for them.
pub const GD_TYPES: &[(&str, &str)] = &[
    ("Backdoor:EC2/C&CActivity.B", "Instance"),
    ("Backdoor:EC2/C&CActivity.B!DNS", "Instance"),
    ("Backdoor:EC2/DenialOfService.Tcp", "Instance"),
    ("Backdoor:EC2/Spambot", "Instance"),
    ("Behavior:EC2/NetworkPortUnusual", "Instance"),
    ("Behavior:EC2/TrafficVolumeUnusual", "Instance"),
    ("CryptoCurrency:EC2/BitcoinTool.B", "Instance"),
    ("CryptoCurrency:EC2/BitcoinTool.B!DNS", "Instance"),
    ("Impact:EC2/WinRMBruteForce", "Instance"),
    ("Impact:EC2/PortSweep", "Instance"),
    ("Recon:EC2/PortProbeUnprotectedPort", "Instance"),
    ("Recon:EC2/Portscan", "Instance"),
    ("Trojan:EC2/BlackholeTraffic", "Instance"),
    ("Trojan:EC2/DNSDataExfiltration", "Instance"),
    ("Trojan:EC2/DropPoint", "Instance"),
    ("UnauthorizedAccess:EC2/SSHBruteForce", "Instance"),
    ("UnauthorizedAccess:EC2/RDPBruteForce", "Instance"),
    ("UnauthorizedAccess:EC2/TorClient", "Instance"),
    ("UnauthorizedAccess:EC2/MetadataDNSRebind", "Instance"),
    ("UnauthorizedAccess:EC2/MaliciousIPCaller", "Instance"),
    (
        "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom",
        "Instance",
    ),
    ("Execution:EC2/MaliciousFile", "Instance"),
    ("Execution:Runtime/NewBinaryExecuted", "Instance"),
    ("DefenseEvasion:Runtime/FilelessExecution", "Instance"),
    ("Discovery:S3/MaliciousIPCaller", "S3Bucket"),
    ("Exfiltration:S3/AnomalousBehavior", "S3Bucket"),
    ("Impact:S3/MaliciousIPCaller", "S3Bucket"),
    ("Policy:S3/BucketBlockPublicAccessDisabled", "S3Bucket"),
    ("Stealth:S3/ServerAccessLoggingDisabled", "S3Bucket"),
    ("Discovery:IAMUser/AnomalousBehavior", "AccessKey"),
    ("Exfiltration:IAMUser/AnomalousBehavior", "AccessKey"),
    ("InitialAccess:IAMUser/AnomalousBehavior", "AccessKey"),
    ("PenTest:IAMUser/KaliLinux", "AccessKey"),
    ("Persistence:IAMUser/AnomalousBehavior", "AccessKey"),
    ("Policy:IAMUser/RootCredentialUsage", "AccessKey"),
    ("PrivilegeEscalation:IAMUser/AnomalousBehavior", "AccessKey"),
    ("Recon:IAMUser/MaliciousIPCaller", "AccessKey"),
    ("Stealth:IAMUser/CloudTrailLoggingDisabled", "AccessKey"),
    (
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
        "AccessKey",
    ),
    (
        "UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B",
        "AccessKey",
    ),
    (
        "CredentialAccess:Kubernetes/MaliciousIPCaller",
        "EKSCluster",
    ),
    ("Discovery:Kubernetes/MaliciousIPCaller", "EKSCluster"),
    ("Execution:Kubernetes/ExecInKubeSystemPod", "EKSCluster"),
    ("Execution:ECS/MaliciousFile", "ECSCluster"),
    (
        "CredentialAccess:RDS/AnomalousBehavior.SuccessfulLogin",
        "RDSDBInstance",
    ),
    ("Execution:Lambda/MaliciousFile", "Lambda"),
];

/// Finding-type families teams match with a prefix.
const GD_PREFIXES: &[(&str, &str)] = &[
    ("Backdoor:EC2/", "Instance"),
    ("CryptoCurrency:EC2/", "Instance"),
    ("Trojan:EC2/", "Instance"),
    ("Recon:EC2/", "Instance"),
    ("Impact:EC2/", "Instance"),
    ("Behavior:EC2/", "Instance"),
    ("UnauthorizedAccess:EC2/", "Instance"),
    ("UnauthorizedAccess:", "Instance"),
    ("Discovery:S3/", "S3Bucket"),
    ("Exfiltration:S3/", "S3Bucket"),
    ("Policy:IAMUser/", "AccessKey"),
    ("Stealth:IAMUser/", "AccessKey"),
    ("PrivilegeEscalation:IAMUser/", "AccessKey"),
    ("UnauthorizedAccess:IAMUser/", "AccessKey"),
    ("Discovery:Kubernetes/", "EKSCluster"),
    ("Execution:Runtime/", "Instance"),
    ("CredentialAccess:RDS/", "RDSDBInstance"),
];

const REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-2",
    "ap-northeast-1",
];

/// Instance tags teams route on: (key, values). The bench event carries `Name`, `AlertLogic`
/// and a few `AlertLogic-*` keys.
const TAGS: &[(&str, &[&str])] = &[
    (
        "Name",
        &[
            "bastion",
            "AlertLogic Security Appliance",
            "web",
            "build-agent",
        ],
    ),
    ("Environment", &["prod", "staging", "dev"]),
    ("Team", &["payments", "identity", "platform", "data"]),
    ("AlertLogic", &["Security", "Monitoring"]),
    ("aws:autoscaling:groupName", &["web-asg", "workers-asg"]),
    ("Owner", &["sre", "secops"]),
];

const SH_TYPE_PREFIXES: &[&str] = &[
    "TTPs/Initial Access/",
    "TTPs/Discovery/",
    "TTPs/Command and Control/",
    "TTPs/Privilege Escalation/",
    "Effects/Data Exfiltration/",
    "Effects/Resource Consumption/",
    "Unusual Behaviors/User/",
    "Unusual Behaviors/VM/",
    "Software and Configuration Checks/Industry and Regulatory Standards/",
    "Software and Configuration Checks/Vulnerabilities/CVE",
    "Sensitive Data Identifications/PII/",
];

const SH_PRODUCTS: &[&str] = &[
    "GuardDuty",
    "Inspector",
    "Macie",
    "Security Hub",
    "IAM Access Analyzer",
    "Config",
];

const SH_RESOURCES: &[&str] = &[
    "AwsEc2Instance",
    "AwsIamAccessKey",
    "AwsIamRole",
    "AwsIamUser",
    "AwsS3Bucket",
    "AwsEksCluster",
    "AwsLambdaFunction",
    "AwsAccount",
];

const SH_LABELS: &[&[&str]] = &[
    &["HIGH", "CRITICAL"],
    &["CRITICAL"],
    &["MEDIUM", "HIGH", "CRITICAL"],
    &["HIGH"],
];

const COUNTRIES: &[&str] = &["CN", "RU", "KP", "IR", "GB", "BR", "NG", "VN"];

/// The bench event's account, one of the organization's accounts like any other.
pub const EVENT_ACCOUNT: &str = "352283894008";

/// The organization's accounts (the event's among them).
pub fn accounts(rng: &mut Lcg, n: usize) -> Vec<String> {
    let mut out = vec![EVENT_ACCOUNT.to_string()];
    while out.len() < n {
        let a = format!("{:012}", rng.next() % 1_000_000_000_000);
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// `n` patterns: the planted ones first (each matches the GuardDuty bench event), then
/// generated ones of which none matches `event` (`matches` decides, e.g. the engine's own
/// per-pattern evaluation).
pub fn rule_set(n: usize, event: &Value, matches: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut rng = Lcg(0x00c0_d0a1_15e7 ^ n as u64);
    let accounts = accounts(&mut rng, 300);
    let mut out = planted();
    while out.len() < n {
        let p = pattern(&mut rng, &accounts);
        if !matches(&p) {
            out.push(p);
        }
    }
    assert!(
        out.iter().take(PLANTED).all(&matches),
        "planted patterns match {event}"
    );
    out
}

/// How many planted patterns `rule_set` starts with.
pub const PLANTED: usize = 3;

fn planted() -> Vec<Value> {
    vec![
        gd(
            json!({ "type": ["UnauthorizedAccess:EC2/MaliciousIPCaller.Custom"], "resource": { "resourceType": ["Instance"] } }),
        ),
        json!({ "source": ["aws.guardduty"], "account": [EVENT_ACCOUNT], "detail": { "type": [{ "suffix": ".Custom" }], "severity": [{ "numeric": [">=", 4] }] } }),
        gd(
            json!({ "resource": { "instanceDetails": { "tags": { "key": ["Name"], "value": [{ "prefix": "AlertLogic" }] } } }, "region": ["us-east-1"] }),
        ),
    ]
}

fn gd(detail: Value) -> Value {
    json!({ "source": ["aws.guardduty"], "detail-type": ["GuardDuty Finding"], "detail": detail })
}

fn strings<S: AsRef<str>>(items: &[S]) -> Value {
    Value::Array(items.iter().map(|s| json!(s.as_ref())).collect())
}

/// One generated pattern.
pub fn pattern(rng: &mut Lcg, accounts: &[String]) -> Value {
    match rng.below(100) {
        0..=29 => gd_types(rng, accounts),
        30..=44 => gd_family(rng, accounts),
        45..=51 => gd_tags(rng, accounts),
        52..=58 => gd_or(rng, accounts),
        59..=63 => gd_anything_but(rng, accounts),
        64..=68 => gd_network(rng, accounts),
        69..=88 => security_hub(rng, accounts),
        89..=93 => json!({
            "source": ["aws.securityhub"],
            "detail-type": ["Security Hub Findings - Custom Action"],
            "detail": { "actionName": [format!("cordon-{}", rng.below(400))] }
        }),
        _ => gd_misc(rng, accounts),
    }
}

/// Adds `account` (or `detail.accountId`) for 1-3 of the organization's accounts to half the
/// patterns.
fn scope(rng: &mut Lcg, accounts: &[String], p: &mut Value) {
    if rng.chance(50) {
        let picked = strings(&rng.some(accounts, 3));
        if rng.chance(70) {
            p["account"] = picked;
        } else {
            p["detail"]["accountId"] = picked;
        }
    }
}

fn severity_floor(rng: &mut Lcg) -> Value {
    json!([{ "numeric": [">=", *rng.pick(&[2, 4, 5, 6, 7, 8])] }])
}

fn gd_types(rng: &mut Lcg, accounts: &[String]) -> Value {
    let (first, rtype) = *rng.pick(GD_TYPES);
    let same: Vec<&str> = GD_TYPES
        .iter()
        .filter(|(_, r)| *r == rtype)
        .map(|(ty, _)| *ty)
        .collect();
    let mut types = vec![first];
    for ty in rng.some(&same, 3) {
        if !types.contains(ty) {
            types.push(ty);
        }
    }
    let mut p = gd(json!({ "type": strings(&types), "resource": { "resourceType": [rtype] } }));
    scope(rng, accounts, &mut p);
    if rng.chance(50) {
        p["detail"]["severity"] = severity_floor(rng);
    }
    if rng.chance(25) {
        p["region"] = strings(&rng.some(REGIONS, 2));
    }
    p
}

fn gd_family(rng: &mut Lcg, accounts: &[String]) -> Value {
    let (prefix, rtype) = *rng.pick(GD_PREFIXES);
    let sev = *rng.pick(&[4, 6, 7, 7, 8, 9]);
    let band = if rng.chance(30) {
        json!([{ "numeric": [">=", sev, "<=", 10] }])
    } else {
        json!([{ "numeric": [">=", sev] }])
    };
    let mut p = gd(json!({
        "type": [{ "prefix": prefix }],
        "resource": { "resourceType": [rtype] },
        "severity": band
    }));
    scope(rng, accounts, &mut p);
    p
}

fn gd_tags(rng: &mut Lcg, accounts: &[String]) -> Value {
    let (key, values) = *rng.pick(TAGS);
    let value = if rng.chance(25) {
        json!([{ "prefix": &rng.pick(values)[..3] }])
    } else {
        strings(&rng.some(values, 2))
    };
    let mut p = gd(json!({
        "resource": {
            "resourceType": ["Instance"],
            "instanceDetails": { "tags": { "key": [key], "value": value } }
        }
    }));
    if rng.chance(50) {
        p["detail"]["severity"] = severity_floor(rng);
    }
    if rng.chance(30) {
        p["region"] = strings(&rng.some(REGIONS, 3));
    }
    scope(rng, accounts, &mut p);
    p
}

fn gd_or(rng: &mut Lcg, accounts: &[String]) -> Value {
    let (prefix, _) = *rng.pick(GD_PREFIXES);
    let (custom, _) = *rng.pick(GD_TYPES);
    let picked = strings(&rng.some(accounts, 3));
    json!({
        "source": ["aws.guardduty"],
        "account": picked,
        "$or": [
            { "detail": { "severity": [{ "numeric": [">=", *rng.pick(&[7, 8])] }], "type": [{ "prefix": prefix }] } },
            { "detail": { "type": [custom, format!("{custom}.Custom")] } }
        ]
    })
}

fn gd_anything_but(rng: &mut Lcg, accounts: &[String]) -> Value {
    let mut p = match rng.below(3) {
        0 => gd(json!({
            "type": [{ "anything-but": { "prefix": rng.pick(GD_PREFIXES).0 } }],
            "severity": [{ "numeric": [">=", *rng.pick(&[7, 8])] }]
        })),
        1 => gd(json!({
            "resource": { "resourceType": [rng.pick(GD_TYPES).1] },
            "severity": severity_floor(rng)
        })),
        _ => gd(json!({
            "type": [{ "prefix": rng.pick(GD_PREFIXES).0 }],
            "service": { "resourceRole": [{ "anything-but": "TARGET" }] }
        })),
    };
    if rng.chance(50) {
        p["region"] = json!([{ "anything-but": strings(&rng.some(REGIONS, 3)) }]);
    }
    if p["region"].is_null() || rng.chance(50) {
        let excluded = strings(&rng.some(accounts, 4));
        p["account"] = json!([{ "anything-but": excluded }]);
    }
    p
}

fn gd_network(rng: &mut Lcg, accounts: &[String]) -> Value {
    let remote = if rng.chance(50) {
        json!({ "country": { "countryCode": strings(&rng.some(COUNTRIES, 3)) } })
    } else {
        let block = format!("{}.{}.0.0/16", 10 + rng.below(200), rng.below(256));
        json!({ "ipAddressV4": [{ "cidr": block }] })
    };
    let mut p = gd(json!({
        "service": { "action": {
            "actionType": [*rng.pick(&["NETWORK_CONNECTION", "PORT_PROBE", "DNS_REQUEST"])],
            "networkConnectionAction": {
                "remoteIpDetails": remote,
                "localPortDetails": { "port": [{ "numeric": ["<", *rng.pick(&[1024, 10000])] }] }
            }
        } }
    }));
    scope(rng, accounts, &mut p);
    p
}

fn gd_misc(rng: &mut Lcg, accounts: &[String]) -> Value {
    let mut p = match rng.below(4) {
        0 => gd(json!({
            "type": [{ "suffix": *rng.pick(&[".Custom", "!DNS", ".B"]) }],
            "severity": severity_floor(rng)
        })),
        1 => gd(json!({
            "title": [{ "wildcard": format!("*{}*", rng.pick(&["bitcoin", "Tor", "brute"])) }]
        })),
        2 => gd(json!({
            "resource": { "instanceDetails": { "instanceType": [{ "equals-ignore-case": *rng.pick(&["P3.16XLARGE", "G4DN.XLARGE"]) }] } }
        })),
        _ => gd(json!({
            "service": { "archived": [false], "additionalInfo": { "threatListName": [{ "exists": true }] } },
            "severity": [{ "numeric": [">=", 8] }]
        })),
    };
    scope(rng, accounts, &mut p);
    p
}

fn security_hub(rng: &mut Lcg, accounts: &[String]) -> Value {
    let labels: &[&str] = SH_LABELS[rng.below(SH_LABELS.len())];
    let mut f = json!({ "Severity": { "Label": strings(labels) } });
    if rng.chance(50) {
        let prefixes: Vec<Value> = rng
            .some(SH_TYPE_PREFIXES, 2)
            .iter()
            .map(|p| json!({ "prefix": p }))
            .collect();
        f["Types"] = Value::Array(prefixes);
    }
    if rng.chance(50) {
        f["ProductName"] = strings(&rng.some(SH_PRODUCTS, 2));
    }
    if rng.chance(50) {
        f["Resources"] = json!({ "Type": strings(&rng.some(SH_RESOURCES, 2)) });
    }
    if rng.chance(40) {
        f["Workflow"] = json!({ "Status": ["NEW"] });
        f["RecordState"] = json!(["ACTIVE"]);
    }
    if rng.chance(20) {
        f["Compliance"] = json!({ "Status": ["FAILED"] });
    }
    if rng.chance(50) {
        f["AwsAccountId"] = strings(&rng.some(accounts, 3));
    }
    if rng.chance(20) {
        f["Region"] = strings(&rng.some(REGIONS, 2));
    }
    json!({
        "source": ["aws.securityhub"],
        "detail-type": ["Security Hub Findings - Imported"],
        "detail": { "findings": f }
    })
}
