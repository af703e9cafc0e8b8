//! A fake Slack Web API on 127.0.0.1: records every call cordon makes (method, JSON body, the
//! status it was answered with) and answers like Slack, or with failures the test scripts
//! (HTTP 500, HTTP 429 with `Retry-After`). Plain HTTP, or TLS with a certificate the test
//! makes (so the real binary's HTTPS client is exercised end to end).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// One call: the API method, its JSON body (plus `_authorization`), the status answered,
/// when.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub body: Value,
    pub status: u16,
    pub at: Instant,
}

/// What the next calls are answered with, besides success.
#[derive(Debug, Clone, Copy, Default)]
pub enum Failing {
    /// Every call succeeds.
    #[default]
    No,
    /// Every call gets HTTP 500 until this instant.
    Until(Instant),
    /// The next call gets HTTP 429 with `Retry-After: secs`.
    RateLimitedOnce(u64),
}

/// The fake's shared state.
#[derive(Default)]
pub struct State {
    pub calls: Mutex<Vec<Call>>,
    pub failing: Mutex<Failing>,
    ts: AtomicU64,
}

pub type Seen = Arc<State>;

impl State {
    /// Successful calls to `method`.
    pub fn ok(&self, method: &str) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.method == method && c.status == 200)
            .map(|c| c.body.clone())
            .collect()
    }

    /// Every call, whatever it was answered.
    pub fn all(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn fail(&self, how: Failing) {
        *self.failing.lock().unwrap() = how;
    }
}

/// Starts a plain-HTTP fake; returns its API base URL.
pub fn start() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let state = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let state = state.clone();
            std::thread::spawn(move || answer(stream, &state));
        }
    });
    (url, seen)
}

/// Starts an HTTPS fake with a certificate for 127.0.0.1 signed by a CA made in `dir`;
/// returns its API base URL and the CA's PEM file (for `SSL_CERT_FILE`).
pub fn start_tls(dir: &Path) -> (String, std::path::PathBuf, Seen) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (ca, cert, key) = make_certificates(dir);
    cordon_connectors::tls::install_crypto_provider();
    let chain = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/api", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let state = seen.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let (state, config) = (state.clone(), config.clone());
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                answer(rustls::StreamOwned::new(conn, tcp), &state);
            });
        }
    });
    (url, ca, seen)
}

/// A CA and a server certificate for IP 127.0.0.1, with the openssl command line.
fn make_certificates(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let p = |name: &str| dir.join(name);
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("the openssl command line (the TLS test makes its certificates with it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca_args = vec!["req", "-x509", "-days", "2", "-subj", "/CN=cordon test CA"];
    ca_args.extend(ec);
    ca_args.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(&ca_args);
    let mut csr_args = vec!["req", "-new", "-subj", "/CN=127.0.0.1"];
    csr_args.extend(ec);
    csr_args.extend(["-keyout", "server.key", "-out", "server.csr"]);
    openssl(&csr_args);
    std::fs::write(
        p("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    ]);
    (p("ca.pem"), p("server.pem"), p("server.key"))
}

fn answer(mut stream: impl Read + Write, state: &State) {
    let Some((method, mut body, auth)) = read_request(&mut stream) else {
        return;
    };
    body["_authorization"] = json!(auth);
    let failing = {
        let mut f = state.failing.lock().unwrap();
        let now = *f;
        if let Failing::RateLimitedOnce(_) = now {
            *f = Failing::No;
        }
        now
    };
    let (status, extra, reply) = match failing {
        Failing::Until(t) if Instant::now() < t => (500, String::new(), json!({"ok": false})),
        Failing::RateLimitedOnce(secs) => (
            429,
            format!("retry-after: {secs}\r\n"),
            json!({"ok": false, "error": "ratelimited"}),
        ),
        _ => (200, String::new(), success(&method, &body, state)),
    };
    state.calls.lock().unwrap().push(Call {
        method,
        body,
        status,
        at: Instant::now(),
    });
    let reply = reply.to_string();
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}connection: close\r\n\r\n{reply}",
        reply.len()
    );
    let _ = stream.flush();
}

/// Slack's answer to a successful call: a new `ts` for each post, the same `ts` for an update.
fn success(method: &str, body: &Value, state: &State) -> Value {
    match method {
        "chat.postMessage" => {
            let n = state.ts.fetch_add(1, Ordering::SeqCst) + 1;
            json!({"ok": true, "channel": body["channel"], "ts": format!("1700000000.{n:06}")})
        }
        "chat.update" => json!({"ok": true, "channel": body["channel"], "ts": body["ts"]}),
        _ => json!({"ok": true}),
    }
}

fn read_request(stream: &mut impl Read) -> Option<(String, Value, String)> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let (mut length, mut auth) = (0usize, String::new());
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        if h.trim().is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        match k.to_ascii_lowercase().as_str() {
            "content-length" => length = v.trim().parse().ok()?,
            "authorization" => auth = v.trim().to_string(),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let method = path.rsplit('/').next()?.to_string();
    Some((
        method,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
        auth,
    ))
}

/// Waits (30 s at most) for a successful call to `method` whose body satisfies `pred`.
pub fn wait_for(seen: &Seen, method: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = seen.ok(method).into_iter().find(|v| pred(v)) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "no {method} call as expected; seen: {:#?}",
            seen.all()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}
