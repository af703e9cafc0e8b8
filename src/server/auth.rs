//! Who may call the server. Event intake takes what an EventBridge connection sends: an API-key
//! header (`ApiKeyAuthParameters`: header name and value) or HTTP Basic
//! (`BasicAuthParameters`), per the EventBridge User Guide, "Connections for API destinations".
//! Everything else (the admin API, health, metrics) takes the admin token as
//! `Authorization: Bearer TOKEN`; health and metrics also take the intake credentials, so a
//! load balancer configured like EventBridge can probe.
//!
//! Every comparison is constant-time (`subtle`), and no credential is ever logged: the values
//! are [`Secret`]s.

use axum::http::{header, HeaderMap, HeaderName};
use base64::Engine as _;
use cordon_engine::secret::Secret;
use subtle::ConstantTimeEq;

/// The credentials the server accepts.
pub struct Credentials {
    /// The API-key header's name (lower case), e.g. `x-cordon-api-key`.
    pub api_key_header: HeaderName,
    /// The API key, if API-key auth is configured.
    pub api_key: Option<Secret>,
    /// `user:password`, if Basic auth is configured.
    pub basic: Option<Secret>,
    /// The admin token (random, written to the journal directory for the CLI).
    pub admin_token: Secret,
}

/// Which credential a request presented, for the log (never the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The intake API key or Basic credentials.
    Intake,
    /// The admin token.
    Admin,
}

impl Credentials {
    /// Whether the request carries the intake credentials: the API-key header, or Basic.
    pub fn intake(&self, headers: &HeaderMap) -> bool {
        let by_key = match (&self.api_key, headers.get(&self.api_key_header)) {
            (Some(key), Some(got)) => equal(got.as_bytes(), key.expose().as_bytes()),
            _ => false,
        };
        let by_basic = match (&self.basic, basic(headers)) {
            (Some(pair), Some(got)) => equal(&got, pair.expose().as_bytes()),
            _ => false,
        };
        by_key | by_basic
    }

    /// Whether the request carries the admin token.
    pub fn admin(&self, headers: &HeaderMap) -> bool {
        match bearer(headers) {
            Some(got) => equal(got, self.admin_token.expose().as_bytes()),
            None => false,
        }
    }

    /// Who the caller is, if anyone.
    pub fn caller(&self, headers: &HeaderMap) -> Option<Caller> {
        if self.admin(headers) {
            Some(Caller::Admin)
        } else if self.intake(headers) {
            Some(Caller::Intake)
        } else {
            None
        }
    }
}

/// Constant-time in the contents; the length of the expected value is not a secret worth the
/// trouble (it is fixed by the user's configuration, and keys are long).
fn equal(got: &[u8], want: &[u8]) -> bool {
    got.ct_eq(want).into()
}

/// The decoded `user:password` of an `Authorization: Basic ...` header.
fn basic(headers: &HeaderMap) -> Option<Vec<u8>> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = split_scheme(value)?;
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    base64::engine::general_purpose::STANDARD
        .decode(rest.trim_ascii())
        .ok()
}

/// The token of an `Authorization: Bearer ...` header.
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = split_scheme(value)?;
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| rest.trim_ascii())
}

fn split_scheme(value: &[u8]) -> Option<(&[u8], &[u8])> {
    let space = value.iter().position(|b| *b == b' ')?;
    Some((&value[..space], &value[space + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn creds() -> Credentials {
        Credentials {
            api_key_header: HeaderName::from_static("x-cordon-api-key"),
            api_key: Some(Secret::new("k-123")),
            basic: Some(Secret::new("eventbridge:pw")),
            admin_token: Secret::new("admin-tok"),
        }
    }

    fn with(name: &str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    #[test]
    fn intake_takes_the_api_key_header_or_basic() {
        let c = creds();
        assert!(c.intake(&with("X-Cordon-Api-Key", "k-123")));
        assert!(!c.intake(&with("x-cordon-api-key", "k-124")));
        assert!(!c.intake(&with("x-cordon-api-key", "k-12")));
        assert!(!c.intake(&with("x-other", "k-123")));
        // base64("eventbridge:pw")
        assert!(c.intake(&with("authorization", "Basic ZXZlbnRicmlkZ2U6cHc=")));
        assert!(c.intake(&with("authorization", "basic ZXZlbnRicmlkZ2U6cHc=")));
        assert!(!c.intake(&with("authorization", "Basic ZXZlbnRicmlkZ2U6cHg=")));
        assert!(!c.intake(&with("authorization", "Basic !!!")));
        assert!(!c.intake(&HeaderMap::new()));
    }

    #[test]
    fn the_admin_token_is_a_bearer_token_and_not_an_intake_credential() {
        let c = creds();
        assert!(c.admin(&with("authorization", "Bearer admin-tok")));
        assert!(!c.admin(&with("authorization", "Bearer admin-to")));
        assert!(!c.admin(&with("authorization", "Basic admin-tok")));
        assert!(!c.intake(&with("authorization", "Bearer admin-tok")));
        assert!(!c.admin(&with("x-cordon-api-key", "k-123")));
        assert_eq!(
            c.caller(&with("authorization", "Bearer admin-tok")),
            Some(Caller::Admin)
        );
        assert_eq!(c.caller(&with("authorization", "Bearer nope")), None);
    }

    #[test]
    fn without_configured_intake_credentials_nothing_passes_as_intake() {
        let c = Credentials {
            api_key: None,
            basic: None,
            ..creds()
        };
        assert!(!c.intake(&with("x-cordon-api-key", "")));
        assert!(!c.intake(&with("authorization", "Basic Og==")));
    }
}
