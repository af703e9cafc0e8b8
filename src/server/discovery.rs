//! How the CLI finds a running server: `serve.json` in the journal directory, written at start
//! (owner-only permissions: it holds the admin token) and removed at a clean stop. A file left
//! by a killed server is harmless: the CLI uses it only when the journal is locked, i.e. when a
//! server holds it, and a new server overwrites it.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _, Result};
use serde::{Deserialize, Serialize};

/// The file's name inside the journal directory.
pub const FILE: &str = "serve.json";

/// What the file holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct Endpoint {
    /// Base URL of the admin API, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// The admin token (`Authorization: Bearer`).
    pub token: String,
    /// The server's process id.
    pub pid: u32,
}

/// 256 random bits from the operating system, hex.
pub fn new_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("no operating-system randomness: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn path(journal: &Path) -> PathBuf {
    journal.join(FILE)
}

/// Writes the file atomically (a temporary file renamed), readable by its owner only.
pub fn write(journal: &Path, listen: SocketAddr, token: &str) -> Result<()> {
    let endpoint = Endpoint {
        url: format!("http://{}", super::reachable(listen)),
        token: token.to_string(),
        pid: std::process::id(),
    };
    let tmp = journal.join(format!(".{FILE}.{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(&serde_json::to_vec(&endpoint)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path(journal))
        .with_context(|| format!("writing {}", path(journal).display()))?;
    Ok(())
}

/// Removes the file if it is still this process's.
pub fn remove(journal: &Path) {
    if read(journal).is_ok_and(|e| e.pid == std::process::id()) {
        let _ = std::fs::remove_file(path(journal));
    }
}

/// Reads the file.
pub fn read(journal: &Path) -> Result<Endpoint> {
    let p = path(journal);
    let text = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("reading {}", p.display()))
}
