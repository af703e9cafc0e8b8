//! Missing credentials fail at once, with one line that names the problem, and are never
//! classified as transient (cases row 8): the connector's standard chain finds nothing, so no
//! request leaves, and the runner must not retry.
//!
//! One test in its own binary: it clears the process's AWS environment.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use cordon_connectors::{AwsCloud, AwsSettings};
use cordon_engine::cloud::{Iam, Target};

#[tokio::test]
async fn no_credentials_fail_within_a_second_with_one_clear_line() {
    // A loopback port that counts connections: nothing may be sent without credentials.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            std::env::remove_var(k);
        }
    }
    std::env::set_var("AWS_ENDPOINT_URL", &endpoint);
    std::env::set_var("AWS_REGION", "us-east-1");
    // No instance metadata service here, and none reached: traffic stays on loopback.
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::set_var("AWS_CONFIG_FILE", dir.path().join("config"));
    std::env::set_var(
        "AWS_SHARED_CREDENTIALS_FILE",
        dir.path().join("credentials"),
    );

    let started = Instant::now();
    let cloud = AwsCloud::from_env(AwsSettings::default()).await;
    let t = Target {
        account: "111122223333".into(),
        region: "us-east-1".into(),
        run_id: "run-1".into(),
    };
    let err = cloud.get_role(&t, "app").await.unwrap_err();
    let took = started.elapsed();
    println!("{took:?} {:?}: {}", err.kind, err.message);
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(!err.kind.is_retryable(), "{:?}: {}", err.kind, err.message);
    assert!(!err.message.contains('\n'), "one line: {}", err.message);
    assert!(
        err.message.contains("no AWS credentials"),
        "{}",
        err.message
    );
    assert!(listener.accept().is_err(), "nothing was sent");
}
