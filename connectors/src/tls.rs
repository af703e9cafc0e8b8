//! The TLS provider for cordon's own HTTPS clients (reqwest: Slack's Web API).
//!
//! reqwest is built with `rustls-no-provider` (see the workspace Cargo.toml: its default
//! provider feature would rebuild the AWS SDK), so a rustls crypto provider must be installed
//! as the process default before any `reqwest::Client` is built; reqwest panics otherwise.
//! The provider is rustls' aws-lc-rs, the one the AWS SDK's own HTTPS client already uses.
//! Certificates are checked by `rustls-platform-verifier` (reqwest's choice): the system's
//! trust store.

use std::sync::Once;

/// Installs rustls' aws-lc-rs provider as the process default, once. Call it before building
/// any `reqwest::Client` (the binary does at start; [`crate::SlackChat::new`] does too). A
/// provider another part of the process installed first is kept.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means a default is already installed, which serves as well.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}
