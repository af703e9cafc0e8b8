//! Who produced a finding, decided only from what its producer cannot choose: the product ARN
//! that Security Hub checks on import.
//!
//! `BatchImportFindings` (Security Hub API Reference) accepts a finding only from the account it
//! is about when the default product ARN (`arn:aws:securityhub:REGION:ACCOUNT:product/ACCOUNT/
//! default`) is used, or from an account allow-listed for a partner integration; the product ARN
//! of an AWS service has no account field (`arn:aws:securityhub:us-east-1::product/aws/
//! guardduty`, and `::productv2/aws/guardduty` in the new Security Hub). Everything else in a
//! finding (`ProductName`, `CompanyName`, `ProductFields`, OCSF `metadata.product.name`, the
//! `Id`) is the producer's to choose, so none of it decides where a finding came from.

/// `product` in `arn:PARTITION:securityhub:REGION::product/aws/SERVICE` (Security Hub CSPM).
pub(crate) const ASFF: &str = "product";
/// `productv2` in `arn:PARTITION:securityhub:REGION::productv2/aws/SERVICE` (the new Security
/// Hub, OCSF `metadata.product.uid`).
pub(crate) const OCSF: &str = "productv2";

/// True when `arn` is the product ARN of AWS's own `service` in Security Hub:
/// `arn:<aws partition>:securityhub:<region>::<kind>/aws/<service>`, with an empty account
/// field, exactly (no trailing path, no other service).
pub(crate) fn is_aws_product(arn: &str, kind: &str, service: &str) -> bool {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("securityhub"), Some(region), Some(""), Some(res)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let mut segs = res.split('/');
    partition.starts_with("aws")
        && !region.is_empty()
        && segs.next() == Some(kind)
        && segs.next() == Some("aws")
        && segs.next() == Some(service)
        && segs.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_aws_product_arns_count() {
        for (arn, kind) in [
            ("arn:aws:securityhub:us-east-1::product/aws/guardduty", ASFF),
            (
                "arn:aws-us-gov:securityhub:us-gov-west-1::product/aws/guardduty",
                ASFF,
            ),
            (
                "arn:aws:securityhub:us-east-1::productv2/aws/guardduty",
                OCSF,
            ),
        ] {
            assert!(is_aws_product(arn, kind, "guardduty"), "{arn}");
        }
        for arn in [
            // A custom integration's default product names its account.
            "arn:aws:securityhub:us-east-1:444455556666:product/444455556666/default",
            // An account field makes it not AWS's product, whatever follows.
            "arn:aws:securityhub:us-east-1:444455556666:product/aws/guardduty",
            "arn:aws:securityhub:us-east-1::product/aws/guardduty/extra",
            "arn:aws:securityhub:us-east-1::product/aws/guardduty-lookalike",
            "arn:aws:securityhub:us-east-1::productv2/aws/guardduty",
            "arn:aws:securityhub:::product/aws/guardduty",
            "xarn:aws:securityhub:us-east-1::product/aws/guardduty",
            "arn:aws:inspector:us-east-1::product/aws/guardduty",
            "GuardDuty",
            "",
        ] {
            assert!(!is_aws_product(arn, ASFF, "guardduty"), "{arn}");
        }
    }
}
