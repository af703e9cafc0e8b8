//! The normalized finding: one shape for GuardDuty findings, Security Hub CSPM (ASFF) findings and
//! the new Security Hub's OCSF findings.
//!
//! Every field here comes from the event and is attacker-influenced data (names, tags, paths):
//! it is passed to scripts and actions as data, never interpreted as code.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Which service produced the finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingSource {
    /// Amazon GuardDuty (`aws.guardduty`, `GuardDuty Finding`).
    Guardduty,
    /// AWS Security Hub (`aws.securityhub`): ASFF findings from Security Hub CSPM, and OCSF
    /// findings from the new Security Hub (`Findings Imported V2`).
    Securityhub,
    /// No finding: a person started a manual playbook by hand with its typed inputs (the
    /// finding's account, region and resources come from them).
    Manual,
}

/// Severity bucket, as GuardDuty and Security Hub name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SeverityLabel {
    /// Informational findings are folded into LOW.
    Low,
    /// MEDIUM.
    Medium,
    /// HIGH.
    High,
    /// CRITICAL.
    Critical,
}

impl SeverityLabel {
    /// The label of a 0-10 severity score, using GuardDuty's bands (LOW < 4 <= MEDIUM < 7 <= HIGH
    /// < 9 <= CRITICAL). Security Hub's normalized 0-100 scale is divided by 10 first.
    pub fn from_score(score: f64) -> SeverityLabel {
        if score >= 9.0 {
            SeverityLabel::Critical
        } else if score >= 7.0 {
            SeverityLabel::High
        } else if score >= 4.0 {
            SeverityLabel::Medium
        } else {
            SeverityLabel::Low
        }
    }

    /// The label as written in events and playbooks.
    pub fn as_str(self) -> &'static str {
        match self {
            SeverityLabel::Low => "LOW",
            SeverityLabel::Medium => "MEDIUM",
            SeverityLabel::High => "HIGH",
            SeverityLabel::Critical => "CRITICAL",
        }
    }
}

/// A resource named by a finding.
///
/// `type` is one of the [`kind`] constants (`Instance`, `AccessKey`, `IamRole`, `IamUser`,
/// `S3Bucket`, `EKSCluster`, `AwsAccount`) or the source's own type name when cordon has no
/// better one (GuardDuty's `resourceType` such as `Lambda`, ASFF's `AwsLambdaFunction`, OCSF's
/// CloudFormation type such as `AWS::Lambda::Function`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// Resource type, e.g. `Instance`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The identifier actions act on: instance id, access key id, role name, bucket name...
    pub id: String,
    /// Extra string attributes useful to playbooks: `vpc_id`, `user_name`, `user_type`,
    /// `principal_id`, `arn`, `region`, `tag:<key>`... Absent values are simply missing.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

/// Well-known resource kinds, and what each source calls them:
///
/// | kind | GuardDuty `resourceType` | ASFF `Resources[].Type` | OCSF `resources[].type` |
/// |---|---|---|---|
/// | `Instance` | `Instance` | `AwsEc2Instance` | `AWS::EC2::Instance` |
/// | `AccessKey` | `AccessKey` (and `S3Bucket`'s key) | `AwsIamAccessKey` | `AWS::IAM::AccessKey` |
/// | `IamRole` | an `AssumedRole` key's principal | `AwsIamRole` | `AWS::IAM::Role` |
/// | `IamUser` | an `IAMUser` key's principal | `AwsIamUser` | `AWS::IAM::User` |
/// | `S3Bucket` | `S3Bucket` | `AwsS3Bucket` | `AWS::S3::Bucket` |
/// | `EKSCluster` | `EKSCluster` | `AwsEksCluster` | `AWS::EKS::Cluster` |
/// | `AwsAccount` | a `Root` key's principal | `AwsAccount` | `AWS::::Account` |
///
/// The OCSF names are CloudFormation resource type names, as the AWS extension for OCSF in
/// Security Hub requires of `resources[].type` (Security Hub User Guide, "AWS extension for
/// OCSF", basic attributes).
pub mod kind {
    /// An EC2 instance; `id` is the instance id.
    pub const INSTANCE: &str = "Instance";
    /// An IAM access key; `id` is the access key id.
    pub const ACCESS_KEY: &str = "AccessKey";
    /// An IAM role; `id` is the role name.
    pub const IAM_ROLE: &str = "IamRole";
    /// An IAM user; `id` is the user name.
    pub const IAM_USER: &str = "IamUser";
    /// An S3 bucket; `id` is the bucket name.
    pub const S3_BUCKET: &str = "S3Bucket";
    /// An EKS cluster; `id` is the cluster name.
    pub const EKS_CLUSTER: &str = "EKSCluster";
    /// An AWS account; `id` is the account id.
    pub const ACCOUNT: &str = "AwsAccount";
}

/// A normalized finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// `guardduty` or `securityhub`.
    pub source: FindingSource,
    /// The finding id (GuardDuty `id`, ASFF `Id`, OCSF `finding_info.uid`).
    pub id: String,
    /// The finding type: GuardDuty `type`; for ASFF and OCSF the GuardDuty type when the finding
    /// came from GuardDuty (by its product ARN), else the first of ASFF `Types` (else
    /// `GeneratorId`), or of OCSF `finding_info.types` (else `class_name`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Human title.
    pub title: String,
    /// Severity on GuardDuty's 0-10 scale. ASFF: `Normalized`/10 (GuardDuty's own `Product`
    /// score for GuardDuty findings); OCSF: the lower bound of the `severity_id`'s label (see
    /// the OCSF reader).
    pub severity: f64,
    /// LOW | MEDIUM | HIGH | CRITICAL.
    pub severity_label: SeverityLabel,
    /// The account the finding is about (`detail.accountId`, ASFF `AwsAccountId`, OCSF
    /// `cloud.account.uid`), which is where containment acts; not the envelope's account, which
    /// may be a delegated administrator. Always 12 ASCII digits
    /// ([`check_account_id`](crate::cloud::check_account_id)).
    pub account: String,
    /// The region the finding is about, always of a region name's shape
    /// ([`check_region`](crate::cloud::check_region)).
    pub region: String,
    /// Resources the finding names.
    pub resources: Vec<Resource>,
    /// When the finding was last updated, as the source wrote it.
    pub updated_at: String,
    /// For access-key findings: the user name (or role session issuer's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// For access-key findings: `IAMUser`, `AssumedRole`, `Root`, `FederatedUser`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    /// Identity used to recognise the same finding arriving twice by different routes: the
    /// GuardDuty finding id for GuardDuty findings and for their Security Hub copies (whose ASFF
    /// `Id` and OCSF `finding_info.uid` are the GuardDuty finding ARN, and whose product ARN is
    /// GuardDuty's), otherwise the product ARN and the finding id (`PRODUCT/ID`).
    pub dedup_id: String,
    /// The finding's workflow status as its source wrote it: OCSF `status` (or the caption of
    /// `status_id`: `New`, `In Progress`, `Suppressed`, `Resolved`, `Archived`, `Deleted`), ASFF
    /// `Workflow.Status` (`NEW`, `NOTIFIED`, `RESOLVED`, `SUPPRESSED`). GuardDuty events carry none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// True for a sample finding GuardDuty generated on request (`CreateSampleFindings`, the
    /// console's "Generate sample findings"): `service.additionalInfo.sample`, or the same flag in
    /// the JSON string `service.additionalInfo.value`, or, for its ASFF copy, `ProductFields`
    /// `aws/guardduty/service/additionalInfo/sample`. A sample never starts a containment on its
    /// own (see `playbook::MatchOutcome::Sample`).
    #[serde(default)]
    pub sample: bool,
}

impl Finding {
    /// The first resource of the given kind.
    pub fn resource(&self, kind: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| r.kind == kind)
    }
}
