//! A real AWS API emulator for the end-to-end tests: moto's server from PyPI, started on a free
//! 127.0.0.1 port for each test and stopped when the test ends. `bash tests/run.sh` installs it
//! into `.venv`; `CORDON_MOTO_SERVER` may name another `moto_server`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;

use super::root;

/// The management account moto puts every organization in.
pub const MANAGEMENT: &str = "123456789012";

/// A running moto server.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

fn server_binary() -> String {
    if let Ok(p) = std::env::var("CORDON_MOTO_SERVER") {
        return p;
    }
    let venv = root().join(".venv/bin/moto_server");
    assert!(
        venv.exists(),
        "moto is not installed: run `bash tests/run.sh` (it creates .venv with moto[server]) or set CORDON_MOTO_SERVER"
    );
    venv.display().to_string()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A bare HTTP request to loopback (the emulator's own API), without an HTTP client crate.
pub fn http(endpoint: &str, method: &str, path: &str) -> Option<String> {
    let addr = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

impl Moto {
    /// Starts a server and waits until it answers.
    pub fn start() -> Moto {
        let port = free_port();
        let child = Command::new(server_binary())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if http(&moto.endpoint, "GET", "/moto-api/data.json")
                .is_some_and(|r| r.starts_with("HTTP/1.1 200") || r.starts_with("HTTP/1.0 200"))
            {
                return moto;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "moto_server did not answer on {} within 30 s",
            moto.endpoint
        );
    }

    /// Points a `cordon` command at the emulator through the standard AWS variables only.
    pub fn env(&self, cmd: &mut Command) {
        for var in [
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true");
    }

    /// SDK configuration with the management account's (static, test) identity.
    pub async fn config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .load()
            .await
    }

    /// SDK configuration acting inside `account` (moto lands AssumeRole in the role's account).
    pub async fn in_account(&self, account: &str) -> aws_config::SdkConfig {
        let base = self.config().await;
        let sts = aws_sdk_sts::Client::new(&base);
        let out = sts
            .assume_role()
            .role_arn(format!(
                "arn:aws:iam::{account}:role/OrganizationAccountAccessRole"
            ))
            .role_session_name("test-setup")
            .send()
            .await
            .expect("assume role for set-up");
        let c = out.credentials().expect("credentials");
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                c.access_key_id(),
                c.secret_access_key(),
                Some(c.session_token().to_string()),
                None,
                "test",
            ))
            .load()
            .await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
