//! A wrapper around the `gitlab` crate's async client that every request goes through: a
//! timeout per attempt, 429 answered by waiting for `Retry-After` (or `RateLimit-Reset`), 5xx
//! and transport failures retried with bounded exponential backoff and full jitter — the latter
//! only for methods that are safe to repeat (a POST that may have landed is never sent twice;
//! the next reconcile reads the state instead). It also counts calls for tests and metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use gitlab::api::{self, ApiError};
use http::{Method, Response, StatusCode};
use url::Url;

/// How hard to try.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Limit on one attempt.
    pub timeout: Duration,
    /// First backoff; doubles each retry.
    pub base_delay: Duration,
    /// Longest single wait (backoff or `Retry-After`).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            timeout: Duration::from_secs(30),
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The longest a single call can take with this policy: every attempt timing out and
    /// every wait at its maximum.
    pub fn worst_case(&self) -> Duration {
        self.timeout * (self.max_retries + 1) + self.max_delay * self.max_retries
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        // Full jitter: anywhere between zero and the ceiling.
        ceiling.mul_f64(rand::random::<f64>())
    }
}

/// Counters of what went over the wire.
#[derive(Debug, Default)]
pub struct Calls {
    /// Attempts sent (retries included).
    pub attempts: AtomicU64,
    /// Answers 429.
    pub rate_limited: AtomicU64,
    /// Retries after a 5xx, a timeout or a transport error.
    pub retried: AtomicU64,
    /// Time spent waiting before retries, in milliseconds.
    pub waited_ms: AtomicU64,
    /// Requests that waited for the host's request budget.
    pub budget_waits: AtomicU64,
    /// Time spent waiting for the request budget, in milliseconds.
    pub budget_waited_ms: AtomicU64,
}

/// Told about every attempt: the endpoint (`GET /projects/:id/merge_requests`) and the
/// status (`None`: no answer). For metrics.
pub type Observer = Arc<dyn Fn(&str, Option<u16>) + Send + Sync>;

/// The retrying client.
#[derive(Clone)]
pub struct RetryClient<C> {
    inner: C,
    policy: RetryPolicy,
    calls: Arc<Calls>,
    observer: Option<Observer>,
    budget: Option<Arc<super::budget::TokenBucket>>,
}

impl<C: std::fmt::Debug> std::fmt::Debug for RetryClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryClient")
            .field("inner", &self.inner)
            .field("policy", &self.policy)
            .finish()
    }
}

/// A request path as a low-cardinality label: the project, ids and shas replaced.
pub fn endpoint_label(method: &Method, path: &str) -> String {
    let mut out = Vec::new();
    let mut after_projects = false;
    for segment in path.trim_start_matches("/api/v4").split('/') {
        let label = if after_projects {
            ":id"
        } else if !segment.is_empty() && segment.chars().all(|c| c.is_ascii_digit()) {
            ":n"
        } else if segment.len() >= 12 && segment.chars().all(|c| c.is_ascii_hexdigit()) {
            ":sha"
        } else {
            segment
        };
        after_projects = segment == "projects";
        out.push(label);
    }
    format!("{method} {}", out.join("/"))
}

impl<C> RetryClient<C> {
    /// Wraps `inner`.
    pub fn new(inner: C, policy: RetryPolicy) -> Self {
        Self {
            inner,
            policy,
            calls: Arc::new(Calls::default()),
            observer: None,
            budget: None,
        }
    }

    /// Takes a token from `budget` before every attempt (retries included).
    pub fn with_budget(mut self, budget: Arc<super::budget::TokenBucket>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Reports every attempt to `observer`.
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The call counters.
    pub fn calls(&self) -> Arc<Calls> {
        self.calls.clone()
    }
}

impl<C: api::RestClient> api::RestClient for RetryClient<C> {
    type Error = C::Error;

    fn rest_endpoint(&self, endpoint: &str) -> Result<Url, ApiError<Self::Error>> {
        self.inner.rest_endpoint(endpoint)
    }

    fn instance_endpoint(&self, endpoint: &str) -> Result<Url, ApiError<Self::Error>> {
        self.inner.instance_endpoint(endpoint)
    }
}

/// Methods that may be sent again after an answer was lost.
fn repeatable(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE
    )
}

/// How long GitLab asks us to wait: `Retry-After` seconds, else until `RateLimit-Reset`.
fn requested_wait(response: &Response<Bytes>) -> Option<Duration> {
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(secs) = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(secs));
    }
    let reset = header("ratelimit-reset").and_then(|v| v.trim().parse::<i64>().ok())?;
    let wait = reset - chrono::Utc::now().timestamp();
    Some(Duration::from_secs(wait.max(0) as u64))
}

fn timed_out<E: std::error::Error + Send + Sync + 'static>(after: Duration) -> ApiError<E> {
    ApiError::GitlabService {
        status: StatusCode::GATEWAY_TIMEOUT,
        data: format!(
            "no answer within {}s (promoter's request timeout)",
            after.as_secs()
        )
        .into_bytes(),
    }
}

#[async_trait]
impl<C> api::AsyncClient for RetryClient<C>
where
    C: api::AsyncClient + Sync + Send,
{
    async fn rest_async(
        &self,
        request: http::request::Builder,
        body: Vec<u8>,
    ) -> Result<Response<Bytes>, ApiError<Self::Error>> {
        let (parts, _) = request
            .body(())
            .map_err(|e| ApiError::GitlabService {
                status: StatusCode::BAD_REQUEST,
                data: e.to_string().into_bytes(),
            })?
            .into_parts();
        let path = parts.uri.path().to_string();
        let mut attempt = 0;
        loop {
            let mut builder = http::Request::builder()
                .method(parts.method.clone())
                .uri(parts.uri.clone());
            for (name, value) in &parts.headers {
                builder = builder.header(name, value);
            }
            if let Some(budget) = &self.budget {
                let waited = budget.acquire().await;
                if !waited.is_zero() {
                    self.calls.budget_waits.fetch_add(1, Ordering::Relaxed);
                    self.calls
                        .budget_waited_ms
                        .fetch_add(waited.as_millis() as u64, Ordering::Relaxed);
                }
            }
            self.calls.attempts.fetch_add(1, Ordering::Relaxed);
            let result = match tokio::time::timeout(
                self.policy.timeout,
                self.inner.rest_async(builder, body.clone()),
            )
            .await
            {
                Ok(result) => result,
                Err(_) => Err(timed_out(self.policy.timeout)),
            };
            if let Some(observer) = &self.observer {
                observer(
                    &endpoint_label(&parts.method, &path),
                    result.as_ref().ok().map(|r| r.status().as_u16()),
                );
            }
            let wait = match &result {
                Ok(response) if response.status() == StatusCode::TOO_MANY_REQUESTS => {
                    self.calls.rate_limited.fetch_add(1, Ordering::Relaxed);
                    Some(
                        requested_wait(response)
                            .unwrap_or_else(|| self.policy.backoff(attempt))
                            .min(self.policy.max_delay),
                    )
                }
                Ok(response)
                    if response.status().is_server_error() && repeatable(&parts.method) =>
                {
                    self.calls.retried.fetch_add(1, Ordering::Relaxed);
                    Some(self.policy.backoff(attempt))
                }
                Err(ApiError::Client { .. } | ApiError::GitlabService { .. })
                    if repeatable(&parts.method) =>
                {
                    self.calls.retried.fetch_add(1, Ordering::Relaxed);
                    Some(self.policy.backoff(attempt))
                }
                _ => None,
            };
            match wait {
                Some(wait) if attempt < self.policy.max_retries => {
                    let status = result.as_ref().map(|r| r.status().as_u16()).ok();
                    tracing::warn!(method = %parts.method, path, ?status, attempt, wait_ms = wait.as_millis() as u64, "GitLab call failed; retrying");
                    self.calls
                        .waited_ms
                        .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                _ => return result,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_jittered() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..Default::default()
        };
        for attempt in 0..20 {
            let d = policy.backoff(attempt);
            assert!(d <= Duration::from_secs(1), "{attempt}: {d:?}");
            assert!(
                d <= Duration::from_millis(100) * 2u32.pow(attempt.min(10)),
                "{attempt}: {d:?}"
            );
        }
    }

    #[test]
    fn retry_after_and_reset_headers_are_read() {
        let response = |name: &str, value: &str| {
            Response::builder()
                .status(429)
                .header(name, value)
                .body(Bytes::new())
                .unwrap()
        };
        assert_eq!(
            requested_wait(&response("Retry-After", "7")),
            Some(Duration::from_secs(7))
        );
        let reset = (chrono::Utc::now().timestamp() + 30).to_string();
        let wait = requested_wait(&response("RateLimit-Reset", &reset)).unwrap();
        assert!(
            wait <= Duration::from_secs(30) && wait >= Duration::from_secs(28),
            "{wait:?}"
        );
        assert_eq!(requested_wait(&response("X-Other", "1")), None);
    }

    #[test]
    fn endpoints_are_labelled_without_ids() {
        assert_eq!(
            endpoint_label(
                &Method::GET,
                "/api/v4/projects/acme%2Fcalculator/merge_requests/12/approvals"
            ),
            "GET /projects/:id/merge_requests/:n/approvals"
        );
        assert_eq!(
            endpoint_label(
                &Method::GET,
                "/api/v4/projects/42/repository/commits/0123456789abcdef0123/statuses"
            ),
            "GET /projects/:id/repository/commits/:sha/statuses"
        );
    }

    #[test]
    fn only_repeatable_methods_are_retried_on_lost_answers() {
        assert!(repeatable(&Method::GET) && repeatable(&Method::PUT));
        assert!(!repeatable(&Method::POST));
    }

    #[test]
    fn worst_case_adds_up_timeouts_and_waits() {
        let p = RetryPolicy {
            max_retries: 2,
            timeout: Duration::from_secs(10),
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
        };
        assert_eq!(p.worst_case(), Duration::from_secs(40));
    }
}
