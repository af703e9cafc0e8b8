//! How the AWS connector treats failures, against a small HTTP server on 127.0.0.1 that answers
//! like STS and IAM and counts requests: every call is sent once, whatever retry the SDK
//! configuration asks for (the runner's policy is the only one, so a non-idempotent call is
//! never re-sent on a 5xx), AccessDenied keeps AWS's message, and each failure reaches the
//! runner with the right kind.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use cordon_connectors::{AwsCloud, AwsSettings};
use cordon_engine::cloud::{ErrorKind, Iam, Target};

const ASSUME_ROLE: &str = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials><AccessKeyId>ASIATEST</AccessKeyId><SecretAccessKey>secret</SecretAccessKey><SessionToken>token</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROATEST:cordon</AssumedRoleId><Arn>arn:aws:sts::111122223333:assumed-role/CordonResponse/cordon</Arn></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>"#;
const GET_ROLE: &str = r#"<GetRoleResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><GetRoleResult><Role><Path>/</Path><RoleName>app</RoleName><RoleId>AROAAPP</RoleId><Arn>arn:aws:iam::111122223333:role/app</Arn><CreateDate>2020-01-01T00:00:00Z</CreateDate></Role></GetRoleResult><ResponseMetadata><RequestId>2</RequestId></ResponseMetadata></GetRoleResponse>"#;

fn error(code: &str, message: &str) -> String {
    format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>3</RequestId></ErrorResponse>")
}

/// Answers AssumeRole with credentials, and GetRole with the scripted responses in order
/// (the last one repeats). Records the `Action` of every request.
struct FakeAws {
    endpoint: String,
    actions: Arc<Mutex<Vec<String>>>,
}

fn start(get_role: Vec<(u16, String)>) -> FakeAws {
    start_with(get_role, (200, ASSUME_ROLE.to_string()))
}

fn start_with(get_role: Vec<(u16, String)>, assume_role: (u16, String)) -> FakeAws {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let actions = Arc::new(Mutex::new(Vec::new()));
    let seen = actions.clone();
    std::thread::spawn(move || {
        let mut script = get_role.into_iter().peekable();
        let mut last = (500, error("InternalFailure", "unscripted"));
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let body = String::from_utf8_lossy(&body);
            let action = body
                .split('&')
                .find_map(|kv| kv.strip_prefix("Action="))
                .unwrap_or("")
                .to_string();
            seen.lock().unwrap().push(action.clone());
            let (status, reply) = if action == "AssumeRole" {
                assume_role.clone()
            } else {
                if let Some(next) = script.next() {
                    last = next;
                }
                last.clone()
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    FakeAws { endpoint, actions }
}

async fn cloud(fake: &FakeAws) -> AwsCloud {
    let base = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&fake.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIATEST", "secret", None, None, "test"))
        // The SDK's standard retry (3 attempts), as a user's environment may ask for: the
        // connector must not let it stack with the runner's.
        .retry_config(RetryConfig::standard().with_initial_backoff(Duration::from_millis(10)))
        .load()
        .await;
    AwsCloud::new(base, AwsSettings::default())
}

fn target() -> Target {
    Target {
        account: "111122223333".into(),
        region: "us-east-1".into(),
        run_id: "run-1".into(),
    }
}

fn get_roles(fake: &FakeAws) -> usize {
    fake.actions
        .lock()
        .unwrap()
        .iter()
        .filter(|a| *a == "GetRole")
        .count()
}

fn count(fake: &FakeAws, action: &str) -> usize {
    fake.actions
        .lock()
        .unwrap()
        .iter()
        .filter(|a| *a == action)
        .count()
}

#[tokio::test]
async fn a_server_error_is_sent_once_and_reaches_the_runner_as_retryable() {
    let fake = start(vec![
        (500, error("InternalFailure", "boom")),
        (200, GET_ROLE.into()),
    ]);
    let err = cloud(&fake)
        .await
        .get_role(&target(), "app")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Retryable);
    assert_eq!(get_roles(&fake), 1, "the runner decides whether to retry");
    assert_eq!(count(&fake, "AssumeRole"), 1);
}

#[tokio::test]
async fn create_access_key_is_never_sent_twice_on_a_500() {
    let fake = start(vec![(500, error("InternalFailure", "boom"))]);
    let err = cloud(&fake)
        .await
        .create_access_key(&target(), "alice")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Retryable);
    assert!(
        err.message.contains("iam:CreateAccessKey in 111122223333"),
        "{}",
        err.message
    );
    assert_eq!(
        count(&fake, "CreateAccessKey"),
        1,
        "a key may have been made: never re-sent"
    );
}

#[tokio::test]
async fn throttling_is_sent_once_and_reported_as_throttled() {
    let fake = start(vec![(400, error("Throttling", "Rate exceeded"))]);
    let err = cloud(&fake)
        .await
        .get_role(&target(), "app")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Throttled);
    assert_eq!(get_roles(&fake), 1);
    assert!(
        err.message.contains("iam:GetRole in 111122223333")
            && err.message.contains("Rate exceeded"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn invalid_credentials_are_denied_at_once() {
    let fake = start_with(
        vec![(200, GET_ROLE.into())],
        (
            403,
            error(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            ),
        ),
    );
    let err = cloud(&fake)
        .await
        .get_role(&target(), "app")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Denied, "{}", err.message);
    assert_eq!(count(&fake, "AssumeRole"), 1);
    assert!(
        err.message.contains("SignatureDoesNotMatch"),
        "{}",
        err.message
    );
    assert!(!err.message.contains('\n'));
}

#[tokio::test]
async fn access_denied_is_not_retried_and_names_the_missing_permission() {
    let msg = "User: arn:aws:sts::111122223333:assumed-role/CordonResponse/cordon-run-1 is not authorized to perform: iam:GetRole on resource: role app";
    let fake = start(vec![(403, error("AccessDenied", msg))]);
    let err = cloud(&fake)
        .await
        .get_role(&target(), "app")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Denied);
    assert_eq!(get_roles(&fake), 1);
    assert!(
        err.message
            .contains("not authorized to perform: iam:GetRole"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn a_missing_role_is_an_answer_not_an_error() {
    let fake = start(vec![(
        404,
        error("NoSuchEntity", "The role with name app cannot be found."),
    )]);
    assert_eq!(
        cloud(&fake).await.get_role(&target(), "app").await.unwrap(),
        None
    );
    assert_eq!(get_roles(&fake), 1);
}

#[tokio::test]
async fn a_refused_assume_role_names_the_account_and_role() {
    let msg = "User: arn:aws:iam::999999999999:user/cordon is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111122223333:role/CordonResponse";
    let fake = start_with(
        vec![(200, GET_ROLE.into())],
        (403, error("AccessDenied", msg)),
    );
    let err = cloud(&fake)
        .await
        .get_role(&target(), "app")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Denied);
    assert!(
        err.message.contains(
            "cannot assume arn:aws:iam::111122223333:role/CordonResponse in account 111122223333"
        ),
        "{}",
        err.message
    );
    assert_eq!(
        get_roles(&fake),
        0,
        "nothing is called in an account cordon could not enter"
    );
}
