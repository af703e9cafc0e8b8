//! `cordon eventbridge install` against moto's EventBridge: what it creates, read back with
//! separate SDK calls; a second run changes nothing; the API key never reaches the output.

mod common;

use std::process::Output;

use aws_sdk_eventbridge::types::{ApiDestinationHttpMethod, ConnectionAuthorizationType};
use serde_json::Value;

use common::moto::Moto;
use common::Cordon;

const KEY: &str = "cordon-test-key-7f3a9c1e";
const ROLE: &str = "arn:aws:iam::123456789012:role/CordonEventBridge";
const DLQ: &str = "arn:aws:sqs:us-east-1:123456789012:cordon-dlq";
const ENDPOINT: &str = "https://cordon.example.com/events";

/// Runs install with the test's settings; `retries` and `rate` vary between runs.
fn install(c: &Cordon, moto: &Moto, retries: &str, rate: &str) -> Output {
    let args = [
        "eventbridge",
        "install",
        "--endpoint",
        ENDPOINT,
        "--role-arn",
        ROLE,
        "--dlq-arn",
        DLQ,
        "--max-retries",
        retries,
        "--max-age-seconds",
        "3600",
        "--rate",
        rate,
    ];
    let mut cmd = c.command(&args);
    moto.env(&mut cmd);
    cmd.env("CORDON_API_KEY", KEY).env("RUST_LOG", "debug");
    cmd.output().expect("run cordon")
}

/// The report, after checking the exit code and that the key appears in no output.
fn report(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        !stdout.contains(KEY) && !stderr.contains(KEY),
        "the API key leaked:\n{stdout}\n{stderr}"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

fn changes(r: &Value) -> Vec<&str> {
    ["connection", "api_destination", "rule", "target"]
        .iter()
        .map(|k| r[k]["change"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn install_creates_then_leaves_everything_as_it_is() {
    let moto = Moto::start();
    let c = Cordon::new();
    let first = report(&install(&c, &moto, "12", "10"));
    assert_eq!(changes(&first), ["created"; 4], "{first}");

    let eb = aws_sdk_eventbridge::Client::new(&moto.config().await);
    let rule = eb.describe_rule().name("cordon").send().await.unwrap();
    let pattern: Value = serde_json::from_str(rule.event_pattern().unwrap()).unwrap();
    let has = |field: &str, v: &str| pattern[field].as_array().unwrap().iter().any(|x| x == v);
    assert!(
        has("source", "aws.guardduty") && has("source", "aws.securityhub"),
        "{pattern}"
    );
    assert!(has("detail-type", "GuardDuty Finding"), "{pattern}");
    assert!(
        has("detail-type", "Security Hub Findings - Custom Action"),
        "{pattern}"
    );
    assert_eq!(pattern, first["event_pattern"]);

    let dest = eb
        .describe_api_destination()
        .name("cordon")
        .send()
        .await
        .unwrap();
    assert_eq!(dest.invocation_endpoint(), Some(ENDPOINT));
    assert_eq!(dest.http_method(), Some(&ApiDestinationHttpMethod::Post));
    assert_eq!(dest.invocation_rate_limit_per_second(), Some(10));
    assert_eq!(
        dest.api_destination_arn(),
        first["api_destination"]["arn"].as_str()
    );

    let conn = eb
        .describe_connection()
        .name("cordon")
        .send()
        .await
        .unwrap();
    assert_eq!(
        conn.authorization_type(),
        Some(&ConnectionAuthorizationType::ApiKey)
    );
    assert_eq!(dest.connection_arn(), conn.connection_arn());

    let targets = eb
        .list_targets_by_rule()
        .rule("cordon")
        .send()
        .await
        .unwrap();
    assert_eq!(targets.targets().len(), 1);
    let t = &targets.targets()[0];
    assert_eq!(Some(t.arn()), dest.api_destination_arn());
    assert_eq!(t.role_arn(), Some(ROLE));
    let retry = t.retry_policy().expect("a retry policy");
    assert_eq!(retry.maximum_retry_attempts(), Some(12));
    assert_eq!(retry.maximum_event_age_in_seconds(), Some(3600));
    assert_eq!(t.dead_letter_config().and_then(|d| d.arn()), Some(DLQ));

    // Again: nothing to do but send the key again (it cannot be read back to compare).
    let second = report(&install(&c, &moto, "12", "10"));
    assert_eq!(
        changes(&second),
        ["updated", "unchanged", "unchanged", "unchanged"],
        "{second}"
    );
    assert_eq!(second["rule"]["arn"], first["rule"]["arn"]);
    let rules = eb.list_rules().name_prefix("cordon").send().await.unwrap();
    assert_eq!(rules.rules().len(), 1);
    let targets = eb
        .list_targets_by_rule()
        .rule("cordon")
        .send()
        .await
        .unwrap();
    assert_eq!(targets.targets().len(), 1);
    let conns = eb.list_connections().send().await.unwrap();
    assert_eq!(conns.connections().len(), 1);
    let dests = eb.list_api_destinations().send().await.unwrap();
    assert_eq!(dests.api_destinations().len(), 1);

    // A changed setting rewrites only what it belongs to.
    let third = report(&install(&c, &moto, "3", "25"));
    assert_eq!(
        changes(&third),
        ["updated", "updated", "unchanged", "updated"],
        "{third}"
    );
    let dest = eb
        .describe_api_destination()
        .name("cordon")
        .send()
        .await
        .unwrap();
    assert_eq!(dest.invocation_rate_limit_per_second(), Some(25));
    let targets = eb
        .list_targets_by_rule()
        .rule("cordon")
        .send()
        .await
        .unwrap();
    assert_eq!(targets.targets().len(), 1);
    let retry = targets.targets()[0].retry_policy().unwrap();
    assert_eq!(retry.maximum_retry_attempts(), Some(3));
}

#[test]
fn the_api_key_is_required() {
    let c = Cordon::new();
    let out = c
        .command(&[
            "eventbridge",
            "install",
            "--endpoint",
            ENDPOINT,
            "--role-arn",
            ROLE,
        ])
        .env_remove("CORDON_API_KEY")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CORDON_API_KEY is not set"), "{err}");
}
