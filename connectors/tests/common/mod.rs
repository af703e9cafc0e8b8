//! moto's AWS API emulator for the connector tests: started on a free 127.0.0.1 port for each
//! test and stopped when the test ends. `CORDON_MOTO_SERVER` names the `moto_server` to run;
//! otherwise the workspace's `.venv` (made by `bash tests/run.sh`) is used.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;

/// A running moto server.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

fn server_binary() -> String {
    if let Ok(p) = std::env::var("CORDON_MOTO_SERVER") {
        return p;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server");
    assert!(
        venv.exists(),
        "moto is not installed: run `bash tests/run.sh` (it creates .venv with moto[server]) or set CORDON_MOTO_SERVER"
    );
    venv.display().to_string()
}

fn answers(endpoint: &str) -> bool {
    let addr = endpoint.trim_start_matches("http://");
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req =
        format!("GET /moto-api/data.json HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    s.write_all(req.as_bytes()).is_ok()
        && s.read_to_string(&mut out).is_ok()
        && (out.starts_with("HTTP/1.1 200") || out.starts_with("HTTP/1.0 200"))
}

impl Moto {
    /// Starts a server and waits until it answers.
    pub fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
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
            if answers(&moto.endpoint) {
                return moto;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "moto_server did not answer on {} within 30 s",
            moto.endpoint
        );
    }

    /// SDK configuration with a static test identity, pointed at the emulator.
    pub async fn config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
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
