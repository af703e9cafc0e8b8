//! Values that must never reach a log line, the journal or a terminal.

use std::fmt;

/// A secret string (an access key's secret, a token). `Debug` and `Display` print `***`, and it
/// implements neither `Serialize` nor `Clone`, so it cannot slip into the journal or a log by
/// accident: the only way to read it is [`Secret::expose`], which is easy to grep for. It can be
/// read from a config file (`Deserialize`).
#[derive(serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one call that must send it (e.g. SSM PutParameter).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_formats_its_value() {
        let s = Secret::new("wJalrXUtnFEMI/K7MDENG");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        assert_eq!(s.expose(), "wJalrXUtnFEMI/K7MDENG");
    }
}
