//! The shapes of an AWS account id and a region name, checked before anything names them in a
//! cloud call: a finding's account and region at normalization, a step's `account`/`region`
//! parameters in the runner.
//!
//! Both values come from attacker-influenced input (finding fields, chat commands). An account id
//! such as `111111111111/../x` or a region such as `us-east-1.evil.example` must never reach an
//! ARN, an endpoint URL or a role session.

/// Longest region name accepted. The longest AWS region today (`ap-southeast-5`,
/// `us-isob-east-1`) has 14 characters; twice that leaves room for new names.
const MAX_REGION_CHARS: usize = 32;

/// Checks an AWS account id: exactly 12 ASCII digits (AWS Organizations API Reference,
/// `Account.Id`: pattern `^\d{12}$`). Leading zeros are part of the id.
///
/// # Errors
/// A sentence naming the value (truncated, control characters escaped) and the expected shape.
pub fn check_account_id(account: &str) -> Result<(), String> {
    if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!(
            "is {}; an AWS account id is 12 digits",
            shown(account)
        ))
    }
}

/// Checks a region name's shape: two lowercase ASCII letters (the area), then one or two
/// `-word` groups of 2 to 12 lowercase letters (`-east`, `-gov-west`, `-isob-east`), then `-`
/// and a number from 1 to 99 without a leading zero; at most 32 characters. This accepts every
/// region AWS lists (`us-east-1`, `eu-central-2`, `ap-southeast-5`, `us-gov-west-1`,
/// `cn-north-1`, `us-isob-east-1`, `eu-isoe-west-1`) and the names new regions follow, and
/// refuses anything that could change the meaning of an ARN, a host name or a path (dots,
/// slashes, colons, upper case, spaces). It does not check that the region exists or is
/// enabled: the cloud call says so.
///
/// # Errors
/// A sentence naming the value (truncated, control characters escaped) and the expected shape.
pub fn check_region(region: &str) -> Result<(), String> {
    if region_shape(region) {
        Ok(())
    } else {
        Err(format!(
            "is {}; a region name looks like us-east-1, eu-central-2 or us-gov-west-1",
            shown(region)
        ))
    }
}

fn region_shape(region: &str) -> bool {
    if region.len() > MAX_REGION_CHARS {
        return false;
    }
    let parts: Vec<&str> = region.split('-').collect();
    let (Some((number, rest)), true) = (parts.split_last(), (3..=4).contains(&parts.len())) else {
        return false;
    };
    let lower = |s: &str, min: usize, max: usize| {
        (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase())
    };
    let number_ok = matches!(
        number.as_bytes(),
        [b'1'..=b'9'] | [b'1'..=b'9', b'0'..=b'9']
    );
    let (area, words) = rest.split_first().unwrap_or((&"", &[]));
    number_ok && lower(area, 2, 2) && words.iter().all(|w| lower(w, 2, 12))
}

/// The value as shown in an error: quoted, escaped, at most 40 characters.
fn shown(value: &str) -> String {
    let cut: String = value.chars().take(40).collect();
    if cut.len() < value.len() {
        format!("{cut:?}...")
    } else {
        format!("{cut:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_twelve_ascii_digits() {
        assert_eq!(check_account_id("012345678901"), Ok(()));
        for bad in [
            "",
            "12345678901",
            "1234567890123",
            "845345345",
            "CHILD-EXAMPLE",
            "12345678901a",
            "１２３４５６７８９０１２",
            " 123456789012",
            "123456789012\n",
        ] {
            assert!(check_account_id(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            check_account_id("845345345"),
            Err("is \"845345345\"; an AWS account id is 12 digits".into())
        );
    }

    #[test]
    fn region_names_have_the_documented_shape() {
        for good in [
            "us-east-1",
            "us-gov-west-1",
            "cn-north-1",
            "eu-central-2",
            "ap-southeast-5",
            "us-isob-east-1",
            "eu-isoe-west-1",
            "me-central-1",
            "il-central-1",
            "mx-central-1",
            "ca-west-1",
            "xx-newplace-12",
        ] {
            assert_eq!(check_region(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "us-east",
            "us-east-0",
            "us-east-01",
            "us-east-100",
            "US-EAST-1",
            "useast1",
            "us-east-1.evil.example",
            "us-east-1/",
            "us-east-1 ",
            "u-east-1",
            "usa-east-1",
            "us-a-1",
            "us-gov-west-east-far-1",
            "us--1",
            "global",
            "aws-global",
            "us-east-1\u{1b}[2J",
        ] {
            assert!(check_region(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            check_region("us-east-1.evil.example"),
            Err("is \"us-east-1.evil.example\"; a region name looks like us-east-1, eu-central-2 or us-gov-west-1".into())
        );
        let long = "x".repeat(100);
        assert!(check_region(&long)
            .err()
            .is_some_and(|e| e.contains("...") && e.len() < 120));
    }
}
