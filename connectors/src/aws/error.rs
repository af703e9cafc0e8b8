//! AWS errors, classified into the engine's kinds: the runner's retry policy reads only the kind.

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response as HttpResponse;
use cordon_engine::cloud::{missing_as_none, CloudError, ErrorKind};

/// Error codes that mean "slow down" across the services cordon calls.
const THROTTLED: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
    "ConcurrentModificationException",
];

/// Codes that mean the caller may not do this: never retried.
const DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthFailure",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "MissingAuthenticationToken",
    "IncompleteSignature",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "AWSOrganizationsNotInUseException",
];

/// Codes that mean the thing is not there (or not attached).
const NOT_FOUND: &[&str] = &[
    "NoSuchEntity",
    "NoSuchEntityException",
    "ParameterNotFound",
    "PolicyNotAttachedException",
    "PolicyNotFoundException",
    "TargetNotFoundException",
    "AccountNotFoundException",
    "InvalidInstanceID.NotFound",
    "InvalidGroup.NotFound",
    "InvalidNetworkInterfaceID.NotFound",
    "InvalidVolume.NotFound",
    "InvalidCommandId",
    "InvocationDoesNotExist",
];

/// The kind of an error code (and HTTP status, when there is no useful code).
pub(crate) fn kind_of(code: Option<&str>, status: Option<u16>) -> ErrorKind {
    match code {
        Some(c) if THROTTLED.contains(&c) => ErrorKind::Throttled,
        Some(c) if DENIED.contains(&c) => ErrorKind::Denied,
        Some(c) if NOT_FOUND.contains(&c) || c.ends_with(".NotFound") => ErrorKind::NotFound,
        _ => match status {
            Some(429) => ErrorKind::Throttled,
            Some(s) if s >= 500 => ErrorKind::Retryable,
            Some(403) => ErrorKind::Denied,
            _ => ErrorKind::Fatal,
        },
    }
}

/// The error arm of [`missing_as_none`]: `Ok(None)` when the thing is not there.
pub(crate) fn none_if_missing<T>(e: CloudError) -> Result<Option<T>, CloudError> {
    missing_as_none(Err(e))
}

/// What is wrong with cordon's own credentials, in one line, when that is why a call failed (the
/// SDK reports it as a dispatch failure, which would otherwise read as transient).
fn credentials_problem(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(ce) = c.downcast_ref::<CredentialsError>() {
            return Some(match ce {
                CredentialsError::CredentialsNotLoaded(_) => "no AWS credentials found (the standard chain looked in the environment, the shared config and credentials files, web identity, and the ECS and EC2 metadata services): set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".to_string(),
                CredentialsError::ProviderTimedOut(_) => "AWS credentials: the credentials provider timed out".to_string(),
                other => format!("AWS credentials could not be loaded: {}", one_line(other)),
            });
        }
        cause = c.source();
    }
    None
}

/// An error and its causes on one line.
fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out.replace(['\n', '\r'], " ")
}

/// Turns an SDK error into a [`CloudError`] naming the API and where it was called. AWS's own
/// message is kept: for AccessDenied it names the missing permission.
pub(crate) fn classify<E>(api: &str, place: &str, e: SdkError<E, HttpResponse>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (kind, detail) = match &e {
        SdkError::ServiceError(se) => {
            let status = Some(se.raw().status().as_u16());
            let (code, message) = (se.err().code(), se.err().message());
            let detail = format!(
                "{}: {}",
                code.unwrap_or("error"),
                message.unwrap_or("no message")
            );
            (kind_of(code, status), detail)
        }
        // Credentials that cannot be loaded fail before any request: no retry helps.
        _ if credentials_problem(&e).is_some() => (
            ErrorKind::Denied,
            credentials_problem(&e).unwrap_or_default(),
        ),
        SdkError::TimeoutError(_) => (ErrorKind::Retryable, "timed out".to_string()),
        SdkError::DispatchFailure(d) => (
            ErrorKind::Retryable,
            format!("could not send the request: {d:?}"),
        ),
        SdkError::ResponseError(_) => (ErrorKind::Retryable, "unreadable response".to_string()),
        other => (ErrorKind::Fatal, format!("{other}")),
    };
    CloudError::new(kind, format!("{api} in {place}: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        assert_eq!(kind_of(Some("Throttling"), Some(400)), ErrorKind::Throttled);
        assert_eq!(kind_of(Some("AccessDenied"), Some(403)), ErrorKind::Denied);
        assert_eq!(
            kind_of(Some("NoSuchEntity"), Some(404)),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind_of(Some("InvalidInstanceID.NotFound"), Some(400)),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind_of(Some("InternalError"), Some(500)),
            ErrorKind::Retryable
        );
        assert_eq!(kind_of(None, Some(503)), ErrorKind::Retryable);
        assert_eq!(kind_of(None, Some(429)), ErrorKind::Throttled);
        assert_eq!(
            kind_of(Some("ValidationError"), Some(400)),
            ErrorKind::Fatal
        );
    }
}
