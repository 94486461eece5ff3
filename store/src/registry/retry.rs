//! Which registry failures are worth retrying, and how long to wait.

use std::future::Future;
use std::time::Duration;

use oci_client::errors::{OciDistributionError, OciErrorCode};

use super::options::RetryPolicy;

/// Whether an error is transient: a connection problem, a timeout, 5xx or 429.
pub fn is_transient(error: &OciDistributionError) -> bool {
    match error {
        OciDistributionError::RequestError(e) => {
            e.is_connect()
                || e.is_timeout()
                || e.is_request()
                || e.is_body()
                || e.status().is_some_and(|s| s.as_u16() == 429 || s.is_server_error())
        }
        OciDistributionError::IoError(_) => true,
        // A manifest naming a blob the registry cannot find for a moment: distribution 2.8
        // briefly loses a blob while another client commits the same one.
        OciDistributionError::ServerError { code: 400, .. } => super::unknown_blob(error).is_some(),
        OciDistributionError::ServerError { code, .. } => *code >= 500 || *code == 429,
        OciDistributionError::RegistryError { envelope, .. } => {
            envelope.errors.iter().any(|e| matches!(e.code, OciErrorCode::Toomanyrequests))
        }
        _ => false,
    }
}

/// Runs `operation` until it succeeds, fails permanently, or the attempts run out.
pub async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    mut operation: F,
) -> Result<T, OciDistributionError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, OciDistributionError>>,
{
    let mut attempt = 0;
    loop {
        match operation().await {
            Ok(value) => return Ok(value),
            Err(error) if attempt + 1 < policy.attempts && is_transient(&error) => {
                let delay = backoff(policy, attempt);
                tracing::warn!(
                    "registry request failed ({error}); retrying in {} ms",
                    delay.as_millis()
                );
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Exponential backoff with ±50 % jitter, so clients that failed together retry apart.
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exponential = policy.base_delay.saturating_mul(1 << attempt.min(16)).min(policy.max_delay);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let jitter = 0.5 + f64::from(nanos % 1000) / 1000.0;
    exponential.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_naming_a_blob_the_registry_cannot_find_is_retried() {
        let refused = |message: &str| OciDistributionError::ServerError {
            code: 400,
            url: "http://registry/v2/app/manifests/1".into(),
            message: message.into(),
        };
        let digest = "6".repeat(64);
        let blob_unknown = format!(
            r#"{{"errors":[{{"code":"MANIFEST_BLOB_UNKNOWN","detail":"sha256:{digest}"}}]}}"#
        );
        assert!(is_transient(&refused(&blob_unknown)));
        assert!(!is_transient(&refused(r#"{"errors":[{"code":"MANIFEST_INVALID"}]}"#)));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
        };
        let first = backoff(&policy, 0);
        assert!(
            first >= Duration::from_millis(50) && first <= Duration::from_millis(150),
            "{first:?}"
        );
        let capped = backoff(&policy, 10);
        assert!(capped <= Duration::from_millis(450), "{capped:?}");
    }

    #[test]
    fn server_errors_and_throttling_are_transient_client_errors_are_not() {
        let server = |code| OciDistributionError::ServerError {
            code,
            url: "u".into(),
            message: String::new(),
        };
        assert!(is_transient(&server(503)));
        assert!(is_transient(&server(429)));
        assert!(!is_transient(&server(404)));
        assert!(!is_transient(&OciDistributionError::UnauthorizedError { url: "u".into() }));
    }
}
