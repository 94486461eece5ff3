//! Which registry failures are worth retrying, and how long to wait.

use std::future::Future;
use std::time::Duration;

use http::StatusCode;

use super::options::RetryPolicy;
use super::transport::Failure;

/// Whether a failure is transient: a connection problem, a timeout, a transfer cut short,
/// 5xx or 429 — or a manifest naming a blob the registry cannot find for a moment
/// (distribution 2.8 briefly loses a blob while another client commits the same one).
pub(super) fn is_transient(failure: &Failure) -> bool {
    match failure {
        Failure::Transport(e) => e.is_connect() || e.is_timeout() || e.is_request() || e.is_body(),
        Failure::Status { status, text, .. } => {
            status.is_server_error()
                || *status == StatusCode::TOO_MANY_REQUESTS
                || (*status == StatusCode::BAD_REQUEST && text.contains("MANIFEST_BLOB_UNKNOWN"))
        }
        Failure::Refused(_) => false,
    }
}

/// Runs `operation` until it succeeds, fails for good, or the attempts run out. A registry's
/// `Retry-After` (seconds) is honoured, up to the policy's longest delay.
pub(super) async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    mut operation: F,
) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut attempt = 0;
    loop {
        match operation().await {
            Ok(value) => return Ok(value),
            Err(failure) if attempt + 1 < policy.attempts && is_transient(&failure) => {
                let delay = retry_after(&failure)
                    .map(|asked| asked.min(policy.max_delay))
                    .unwrap_or_else(|| backoff(policy, attempt));
                tracing::warn!(
                    "registry request failed ({failure}); retrying in {} ms",
                    delay.as_millis()
                );
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(failure) => return Err(failure),
        }
    }
}

/// `Retry-After: <seconds>` of a 429 or 503 (an HTTP date is taken as "soon": the backoff).
fn retry_after(failure: &Failure) -> Option<Duration> {
    let Failure::Status { headers, .. } = failure else { return None };
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
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

    fn status(code: u16, text: &str, retry_after: Option<&str>) -> Failure {
        let mut headers = http::HeaderMap::new();
        if let Some(value) = retry_after {
            headers.insert(http::header::RETRY_AFTER, value.parse().expect("header"));
        }
        Failure::Status {
            status: StatusCode::from_u16(code).expect("status"),
            headers,
            text: text.into(),
        }
    }

    #[test]
    fn server_errors_throttling_and_unknown_blobs_are_transient_client_errors_are_not() {
        assert!(is_transient(&status(503, "", None)));
        assert!(is_transient(&status(429, "", None)));
        assert!(is_transient(&status(
            400,
            "400 Bad Request: MANIFEST_BLOB_UNKNOWN: blob unknown",
            None
        )));
        assert!(!is_transient(&status(400, "400 Bad Request: MANIFEST_INVALID", None)));
        assert!(!is_transient(&status(404, "", None)));
        assert!(!is_transient(&Failure::Refused("no".into())));
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_longest_delay() {
        assert_eq!(retry_after(&status(429, "", Some("3"))), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(&status(429, "", Some("Wed, 21 Oct 2015 07:28:00 GMT"))), None);
        assert_eq!(retry_after(&status(503, "", None)), None);
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
        assert!(backoff(&policy, 10) <= Duration::from_millis(450));
    }
}
