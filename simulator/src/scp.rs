//! Service control policy documents a scenario brings (guardrails already in the organization):
//! the shape AWS Organizations accepts, narrowed to what [`crate::authz`] evaluates, so that a
//! guardrail the simulator could not evaluate is a scenario error at load, not an undecided
//! attacker move mid-drill.
//!
//! Follows the AWS Organizations User Guide, "SCP syntax"
//! (<https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps_syntax.html>):
//! a JSON object with `Version` and `Statement`; statements with `Effect`, `Action`
//! (or `NotAction`), optional `Sid`, `Resource`, `Condition`; no `Principal`; and the quota of
//! 5,120 characters ("Quotas and service limits for AWS Organizations").

use serde_json::Value;

use crate::authz::{parse_date, CONDITION_KEYS, OPERATORS};

/// AWS's maximum size of an SCP document, in characters.
pub const MAX_SCP_CHARS: usize = 5120;

/// A problem in a policy document: where (`Statement[0].Effect`, empty for the whole document)
/// and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Path inside the document.
    pub path: String,
    /// What is wrong, and what would be accepted.
    pub problem: String,
}

fn problem(path: &str, text: impl Into<String>) -> Problem {
    Problem {
        path: path.to_string(),
        problem: text.into(),
    }
}

/// Checks `doc` as an SCP the simulator can evaluate; returns it as compact JSON (what
/// Organizations stores and what the size quota counts).
pub fn check(doc: &Value) -> Result<String, Problem> {
    let Value::Object(top) = doc else {
        return Err(problem(
            "",
            "is not a policy document (an object with Version and Statement)",
        ));
    };
    for key in top.keys() {
        if !["Version", "Statement"].contains(&key.as_str()) {
            return Err(problem(key, "is not an SCP element (Version, Statement)"));
        }
    }
    if let Some(v) = top.get("Version") {
        if !matches!(v.as_str(), Some("2012-10-17" | "2008-10-17")) {
            return Err(problem("Version", format!("{v} is not 2012-10-17")));
        }
    }
    match top.get("Statement") {
        Some(s @ Value::Object(_)) => statement(s, "Statement")?,
        Some(Value::Array(items)) if !items.is_empty() => {
            for (i, s) in items.iter().enumerate() {
                statement(s, &format!("Statement[{i}]"))?;
            }
        }
        _ => {
            return Err(problem(
                "Statement",
                "is missing; write one statement or a list of them",
            ))
        }
    }
    let compact = doc.to_string();
    if compact.chars().count() > MAX_SCP_CHARS {
        return Err(problem(
            "",
            format!(
                "is {} characters without white space; AWS's limit for an SCP is {MAX_SCP_CHARS}",
                compact.chars().count()
            ),
        ));
    }
    Ok(compact)
}

fn statement(s: &Value, at: &str) -> Result<(), Problem> {
    let Value::Object(s) = s else {
        return Err(problem(at, "is not an object"));
    };
    let field = |k: &str| format!("{at}.{k}");
    for key in s.keys() {
        match key.as_str() {
            "Sid" | "Effect" | "Action" | "Resource" | "Condition" => {}
            "Principal" | "NotPrincipal" => {
                return Err(problem(
                    &field(key),
                    "SCPs take no principal (they apply to every principal of the accounts below them); use a Condition on aws:PrincipalARN",
                ))
            }
            "NotAction" | "NotResource" => {
                return Err(problem(
                    &field(key),
                    "is valid in an SCP but not evaluated by the simulator; write Action or Resource",
                ))
            }
            _ => {
                return Err(problem(
                    &field(key),
                    "is not an SCP statement element (Sid, Effect, Action, Resource, Condition)",
                ))
            }
        }
    }
    if !matches!(
        s.get("Effect").and_then(Value::as_str),
        Some("Allow" | "Deny")
    ) {
        return Err(problem(&field("Effect"), "must be Allow or Deny"));
    }
    let actions = strings(s.get("Action"))
        .ok_or_else(|| problem(&field("Action"), "must be a string or a list of strings"))?;
    if actions.is_empty() {
        return Err(problem(
            &field("Action"),
            "is missing (write \"*\" or service:Operation)",
        ));
    }
    for (i, a) in actions.iter().enumerate() {
        if a != "*"
            && !a
                .split_once(':')
                .is_some_and(|(s, o)| !s.is_empty() && !o.is_empty())
        {
            let at = if s.get("Action").is_some_and(Value::is_array) {
                format!("{}[{i}]", field("Action"))
            } else {
                field("Action")
            };
            return Err(problem(&at, format!("`{a}` is not * or service:Operation")));
        }
    }
    if s.contains_key("Resource") && strings(s.get("Resource")).is_none() {
        return Err(problem(
            &field("Resource"),
            "must be a string or a list of strings",
        ));
    }
    if let Some(c) = s.get("Condition") {
        condition(c, &field("Condition"))?;
    }
    Ok(())
}

fn condition(c: &Value, at: &str) -> Result<(), Problem> {
    let Value::Object(ops) = c else {
        return Err(problem(at, "is not an object of operators"));
    };
    for (op, keys) in ops {
        let at = format!("{at}.{op}");
        if !OPERATORS.contains(&op.as_str()) {
            return Err(problem(
                &at,
                format!(
                    "the simulator does not evaluate this operator; it evaluates {}",
                    OPERATORS.join(", ")
                ),
            ));
        }
        let Value::Object(keys) = keys else {
            return Err(problem(&at, "is not an object of condition keys"));
        };
        for (key, values) in keys {
            let at = format!("{at}.{key}");
            if !CONDITION_KEYS.contains(&key.to_ascii_lowercase().as_str()) {
                return Err(problem(
                    &at,
                    "the simulator does not set this condition key; it sets aws:PrincipalARN, aws:TokenIssueTime, aws:CurrentTime",
                ));
            }
            let values = strings(Some(values))
                .ok_or_else(|| problem(&at, "must be a string or a list of strings"))?;
            if op.starts_with("Date") {
                if let Some(v) = values.iter().find(|v| parse_date(v).is_none()) {
                    return Err(problem(
                        &at,
                        format!("`{v}` is not a UTC date (2026-01-01T00:00:00Z)"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A string or a list of strings; `None` for anything else.
fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    match v {
        None => Some(Vec::new()),
        Some(Value::String(s)) => Some(vec![s.clone()]),
        Some(Value::Array(a)) => a.iter().map(|x| x.as_str().map(String::from)).collect(),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(doc: Value) -> (String, String) {
        let p = check(&doc).unwrap_err();
        (p.path, p.problem)
    }

    #[test]
    fn a_guardrail_as_aws_documents_it_passes_compacted() {
        let doc = json!({"Version": "2012-10-17", "Statement": [{"Sid": "NoLeaving",
            "Effect": "Deny", "Action": "organizations:LeaveOrganization", "Resource": "*",
            "Condition": {"ArnNotLike": {"aws:PrincipalARN": "arn:aws:iam::*:role/BreakGlass*"}}}]});
        assert_eq!(check(&doc).unwrap(), doc.to_string());
    }

    #[test]
    fn each_problem_names_where_it_is() {
        let cases = [
            (json!({"Statement": []}), "Statement"),
            (
                json!({"Version": "2012-10-17", "Id": "x", "Statement": {}}),
                "Id",
            ),
            (
                json!({"Statement": {"Effect": "Block", "Action": "*"}}),
                "Statement.Effect",
            ),
            (
                json!({"Statement": [{"Effect": "Deny"}]}),
                "Statement[0].Action",
            ),
            (
                json!({"Statement": [{"Effect": "Deny", "Action": ["s3:*", "nope"]}]}),
                "Statement[0].Action[1]",
            ),
            (
                json!({"Statement": [{"Effect": "Deny", "Action": "*", "Principal": "*"}]}),
                "Statement[0].Principal",
            ),
            (
                json!({"Statement": [{"Effect": "Deny", "NotAction": "iam:*"}]}),
                "Statement[0].NotAction",
            ),
            (
                json!({"Statement": [{"Effect": "Deny", "Action": "*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}),
                "Statement[0].Condition.IpAddress",
            ),
            (
                json!({"Statement": [{"Effect": "Deny", "Action": "*", "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}}]}),
                "Statement[0].Condition.StringEquals.aws:RequestedRegion",
            ),
            (
                json!({"Statement": [{"Effect": "Deny", "Action": "*", "Condition": {"DateLessThan": {"aws:TokenIssueTime": "yesterday"}}}]}),
                "Statement[0].Condition.DateLessThan.aws:TokenIssueTime",
            ),
        ];
        for (doc, path) in cases {
            assert_eq!(at(doc.clone()).0, path, "{doc}");
        }
    }

    #[test]
    fn an_scp_over_aws_size_limit_is_refused() {
        let actions: Vec<String> = (0..400).map(|i| format!("ec2:Operation{i:04}")).collect();
        let (path, text) = at(json!({"Statement": {"Effect": "Deny", "Action": actions}}));
        assert_eq!(path, "");
        assert!(text.contains("5120"), "{text}");
    }

    #[test]
    fn every_operator_listed_is_one_authz_evaluates() {
        use crate::authz::{authorize, Principal, Request};
        use crate::world::{Role, World};
        let mut w = World::default();
        w.org.join("111111111111");
        w.account("111111111111")
            .roles
            .insert("r".into(), Role::default());
        for op in OPERATORS {
            let value = if op.starts_with("Date") {
                "2026-01-01T00:00:00Z"
            } else {
                "arn:aws:iam::*:role/x"
            };
            let mut condition = serde_json::Map::new();
            condition.insert(op.to_string(), json!({"aws:PrincipalARN": value}));
            let doc =
                json!({"Statement": {"Effect": "Deny", "Action": "*", "Condition": condition}});
            check(&doc).unwrap();
            w.org
                .policies
                .insert("p-g".into(), ("g".into(), doc.to_string()));
            w.org
                .attachments
                .get_mut("111111111111")
                .unwrap()
                .insert("p-g".into());
            let r = Request {
                principal: Principal::Session {
                    account: "111111111111".into(),
                    role: "r".into(),
                    issued_ms: 0,
                },
                action: "s3:GetObject".into(),
                now_ms: 0,
            };
            // A date operator on an ARN is a type error at evaluation, not an unknown operator.
            if let Err(e) = authorize(&w, &r) {
                assert!(!e.problem.contains("not modelled"), "{op}: {e}");
            }
        }
    }
}
