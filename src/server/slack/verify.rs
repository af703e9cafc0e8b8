//! Slack request signing, v0 ("Verifying requests from Slack", api.slack.com/authentication/
//! verifying-requests-from-slack): `X-Slack-Signature` is `v0=` and the hex HMAC-SHA256, keyed
//! with the app's signing secret, of `v0:{X-Slack-Request-Timestamp}:{raw body}`. Requests
//! whose timestamp is more than five minutes from now are refused (replays).
//!
//! The check runs on the raw bytes before any parsing; the comparison is constant-time
//! (`Mac::verify_slice`).

use axum::http::HeaderMap;
use cordon_engine::secret::Secret;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How far a request's timestamp may be from now, in seconds.
pub const MAX_SKEW_SECS: i64 = 300;

/// Why a request was refused (said in the 401 and the log; never the secret or the signature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No `X-Slack-Signature` or `X-Slack-Request-Timestamp`.
    Unsigned,
    /// The timestamp is not a number, or is more than five minutes away.
    Stale,
    /// The signature does not match.
    Forged,
}

impl Refused {
    /// Lower-case label (bounded: used in metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Unsigned => "unsigned",
            Refused::Stale => "stale",
            Refused::Forged => "forged",
        }
    }
}

/// Checks a request's Slack signature against `secret`, with `now` in Unix seconds.
pub fn verify(secret: &Secret, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), Refused> {
    let header = |name: &str| headers.get(name).map(|v| v.as_bytes());
    let (Some(timestamp), Some(signature)) = (
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
    ) else {
        return Err(Refused::Unsigned);
    };
    let ts: i64 = std::str::from_utf8(timestamp)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or(Refused::Stale)?;
    if now.abs_diff(ts) > MAX_SKEW_SECS.unsigned_abs() {
        return Err(Refused::Stale);
    }
    let given = signature
        .strip_prefix(b"v0=")
        .and_then(decode_hex)
        .ok_or(Refused::Forged)?;
    // HMAC takes keys of any length: this cannot fail.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).map_err(|_| Refused::Forged)?;
    mac.update(b"v0:");
    mac.update(timestamp);
    mac.update(b":");
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| Refused::Forged)
}

/// Whether the body is Slack's bare URL check (`ssl_check=1`, with at most its `token`), the one
/// request Slack sends unsigned. Anything else in the body and it is verified like the rest.
pub fn is_bare_ssl_check(body: &[u8]) -> bool {
    let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body) else {
        return false;
    };
    pairs.iter().any(|(k, v)| k == "ssl_check" && v == "1")
        && pairs.iter().all(|(k, _)| k == "ssl_check" || k == "token")
        && pairs.len() <= 2
}

fn decode_hex(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    text.chunks(2)
        .map(|p| Some((digit(p[0])? << 4) | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderName, HeaderValue};
    use serde_json::Value;

    /// Slack's published example, with its clock.
    fn vector() -> (Secret, HeaderMap, Vec<u8>, i64) {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/events/slack__signing-test-vector__1.json"
        );
        let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let mut h = HeaderMap::new();
        for (k, val) in v["headers"].as_object().unwrap() {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(val.as_str().unwrap()).unwrap(),
            );
        }
        let now = v["timestamp"].as_str().unwrap().parse().unwrap();
        let body = v["raw_body"].as_str().unwrap().as_bytes().to_vec();
        (
            Secret::new(v["signing_secret"].as_str().unwrap()),
            h,
            body,
            now,
        )
    }

    #[test]
    fn slacks_published_vector_verifies_at_its_time() {
        let (secret, h, body, now) = vector();
        assert_eq!(verify(&secret, &h, &body, now), Ok(()));
        assert_eq!(verify(&secret, &h, &body, now + 300), Ok(()));
        assert_eq!(verify(&secret, &h, &body, now + 301), Err(Refused::Stale));
        assert_eq!(verify(&secret, &h, &body, now - 301), Err(Refused::Stale));
    }

    #[test]
    fn one_changed_byte_anywhere_is_forged() {
        let (secret, h, body, now) = vector();
        let mut changed = body.clone();
        changed[0] ^= 1;
        assert_eq!(verify(&secret, &h, &changed, now), Err(Refused::Forged));
        assert_eq!(
            verify(&Secret::new("other"), &h, &body, now),
            Err(Refused::Forged)
        );
        let mut h2 = h.clone();
        h2.insert("x-slack-signature", HeaderValue::from_static("v0=zz"));
        assert_eq!(verify(&secret, &h2, &body, now), Err(Refused::Forged));
        h2.insert(
            "x-slack-signature",
            HeaderValue::from_static(
                "v1=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
            ),
        );
        assert_eq!(verify(&secret, &h2, &body, now), Err(Refused::Forged));
        let mut h3 = h.clone();
        h3.remove("x-slack-signature");
        assert_eq!(verify(&secret, &h3, &body, now), Err(Refused::Unsigned));
    }

    #[test]
    fn only_a_bare_ssl_check_is_one() {
        assert!(is_bare_ssl_check(b"ssl_check=1&token=abc"));
        assert!(is_bare_ssl_check(b"ssl_check=1"));
        assert!(!is_bare_ssl_check(
            b"ssl_check=1&command=%2Fcordon&text=approve"
        ));
        assert!(!is_bare_ssl_check(b"ssl_check=0"));
        assert!(!is_bare_ssl_check(b"payload=%7B%7D&ssl_check=1"));
    }
}
