//! Cloud errors carry a kind; the runner's retry policy reads only the kind.

/// How a failed cloud call should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A transient failure (5xx, timeout, connection reset): retry with backoff.
    Retryable,
    /// Throttled by the API: retry with a longer backoff.
    Throttled,
    /// The thing does not exist (or is already in the wanted state): often success for undo.
    NotFound,
    /// Access denied: never retried; the message names the missing permission when AWS says it.
    Denied,
    /// Anything else: not retried.
    Fatal,
}

impl ErrorKind {
    /// Whether a retry may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Retryable | ErrorKind::Throttled)
    }
}

/// "Not found" as an answer: `Ok(None)`; other errors stay errors.
pub fn missing_as_none<T>(result: Result<T, CloudError>) -> Result<Option<T>, CloudError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// "Not found" as done: deleting what is gone, detaching what is not attached.
pub fn missing_as_done(result: Result<(), CloudError>) -> Result<(), CloudError> {
    missing_as_none(result).map(|_| ())
}

/// A failed cloud call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct CloudError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What failed, naming the account, resource and API where known.
    pub message: String,
}

impl CloudError {
    /// A new error of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> CloudError {
        CloudError {
            kind,
            message: message.into(),
        }
    }

    /// A `NotFound` error.
    pub fn not_found(message: impl Into<String>) -> CloudError {
        CloudError::new(ErrorKind::NotFound, message)
    }

    /// A `Fatal` error.
    pub fn fatal(message: impl Into<String>) -> CloudError {
        CloudError::new(ErrorKind::Fatal, message)
    }
}
