//! Typed `inputs:` of manual playbooks: what a person gives when starting one by hand
//! (`/cordon run PLAYBOOK key=value ...`), checked before any run exists.
//!
//! ```yaml
//! mode: manual
//! inputs:
//!   account: {type: account_id, description: the account to fence}
//!   instance: {type: instance_id}
//! ```
//!
//! Every declared input is required. Formats follow AWS's documented identifiers: 12-digit
//! account ids; `i-` and 8 or 17 hex digits for instances (EC2 "Resource IDs"); IAM user and
//! role names of 1-64 (role) / 1-64 (user) characters of letters, digits and `+=,.@_-` (IAM
//! "IAM identifiers", name limits); access key ids `AKIA`/`ASIA` and 16 upper-case letters or
//! digits; region names like `us-east-1`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The type of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    /// An AWS account id: 12 digits.
    AccountId,
    /// An EC2 instance id: `i-` and 8 or 17 lower-case hex digits.
    InstanceId,
    /// An IAM role name.
    RoleName,
    /// An IAM user name.
    UserName,
    /// An IAM access key id.
    AccessKeyId,
    /// An AWS region name.
    Region,
    /// Free text (1-256 characters, no control characters).
    Text,
}

impl InputType {
    /// `Err` says what the value should look like.
    pub fn check(self, value: &str) -> Result<(), String> {
        let all = |s: &str, f: fn(u8) -> bool| s.bytes().all(f);
        let iam = |b: u8| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b);
        let ok = match self {
            InputType::AccountId => value.len() == 12 && all(value, |b| b.is_ascii_digit()),
            InputType::InstanceId => value.strip_prefix("i-").is_some_and(|h| {
                (h.len() == 8 || h.len() == 17)
                    && all(h, |b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            }),
            InputType::RoleName | InputType::UserName => {
                (1..=64).contains(&value.len()) && all(value, iam)
            }
            InputType::AccessKeyId => {
                (value.starts_with("AKIA") || value.starts_with("ASIA"))
                    && value.len() == 20
                    && all(value, |b| b.is_ascii_uppercase() || b.is_ascii_digit())
            }
            InputType::Region => {
                let parts: Vec<&str> = value.split('-').collect();
                (3..=4).contains(&parts.len())
                    && parts.iter().all(|p| {
                        !p.is_empty() && all(p, |b| b.is_ascii_lowercase() || b.is_ascii_digit())
                    })
                    && parts.last().is_some_and(|p| all(p, |b| b.is_ascii_digit()))
            }
            InputType::Text => {
                (1..=256).contains(&value.chars().count()) && !value.chars().any(char::is_control)
            }
        };
        if ok {
            return Ok(());
        }
        Err(match self {
            InputType::AccountId => "an AWS account id: 12 digits".into(),
            InputType::InstanceId => {
                "an EC2 instance id: i- and 8 or 17 lower-case hex digits".into()
            }
            InputType::RoleName => "an IAM role name: 1-64 letters, digits and +=,.@_-".into(),
            InputType::UserName => "an IAM user name: 1-64 letters, digits and +=,.@_-".into(),
            InputType::AccessKeyId => {
                "an access key id: AKIA or ASIA and 16 upper-case letters or digits".into()
            }
            InputType::Region => "an AWS region name such as us-east-1".into(),
            InputType::Text => "text: 1-256 characters, no control characters".into(),
        })
    }
}

/// A declared input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Input {
    /// Its name (`a-z`, `0-9`, `_`; starts with a letter).
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: InputType,
    /// What it is, for help texts.
    pub description: String,
}

/// Checks `given` (`name=value` pairs as typed) against the declared `inputs` of playbook
/// `playbook`. Returns the values by name, or every problem, each naming the input.
pub fn bind(
    playbook: &str,
    inputs: &[Input],
    given: &[(String, String)],
) -> Result<BTreeMap<String, String>, Vec<String>> {
    let mut values = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, value) in given {
        match inputs.iter().find(|i| &i.name == name) {
            None => errors.push(format!(
                "playbook {playbook} has no input {name:?} (it takes: {})",
                names(inputs)
            )),
            Some(_) if values.contains_key(name) => {
                errors.push(format!("input {name} is given twice"));
            }
            Some(i) => match i.kind.check(value) {
                Ok(()) => {
                    values.insert(name.clone(), value.clone());
                }
                Err(want) => errors.push(format!("input {name}: {value:?} is not {want}")),
            },
        }
    }
    for i in inputs {
        if !given.iter().any(|(n, _)| n == &i.name) {
            errors.push(format!(
                "input {} is missing ({})",
                i.name,
                serde_json::to_value(i.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ));
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

fn names(inputs: &[Input]) -> String {
    if inputs.is_empty() {
        return "none".into();
    }
    inputs
        .iter()
        .map(|i| i.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `name` may name an input.
pub(crate) fn valid_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_type_takes_aws_identifiers_and_refuses_the_rest() {
        let cases: &[(InputType, &str, bool)] = &[
            (InputType::AccountId, "111122223333", true),
            (InputType::AccountId, "11112222333", false),
            (InputType::AccountId, "11112222333x", false),
            (InputType::InstanceId, "i-0961e0b3af8b3ec39", true),
            (InputType::InstanceId, "i-0961e0b3", true),
            (InputType::InstanceId, "i-0961E0B3", false),
            (InputType::InstanceId, "i-0961e0b3;rm", false),
            (InputType::RoleName, "Admin+Ops=1,2.3@x_y-z", true),
            (InputType::RoleName, "a/b", false),
            (InputType::UserName, "", false),
            (InputType::UserName, &"u".repeat(65), false),
            (InputType::AccessKeyId, "AKIAIOSFODNN7EXAMPLE", true),
            (InputType::AccessKeyId, "akiaiosfodnn7example", false),
            (InputType::Region, "us-east-1", true),
            (InputType::Region, "us-gov-west-1", true),
            (InputType::Region, "us-east", false),
            (InputType::Text, "why: phishing", true),
            (InputType::Text, "a\u{1b}[31m", false),
        ];
        for (kind, value, ok) in cases {
            assert_eq!(kind.check(value).is_ok(), *ok, "{kind:?} {value:?}");
        }
    }

    #[test]
    fn binding_names_every_problem() {
        let inputs = vec![
            Input {
                name: "account".into(),
                kind: InputType::AccountId,
                description: String::new(),
            },
            Input {
                name: "instance".into(),
                kind: InputType::InstanceId,
                description: String::new(),
            },
        ];
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        let ok = bind(
            "p",
            &inputs,
            &[
                pair("account", "111122223333"),
                pair("instance", "i-0123abcd"),
            ],
        )
        .unwrap();
        assert_eq!(ok["instance"], "i-0123abcd");
        let errors = bind(
            "p",
            &inputs,
            &[pair("account", "1111"), pair("colour", "red")],
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "input account: \"1111\" is not an AWS account id: 12 digits",
                "playbook p has no input \"colour\" (it takes: account, instance)",
                "input instance is missing (instance_id)",
            ]
        );
    }
}
