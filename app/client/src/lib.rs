//! Web front end of the calculator, as a router that the `client` binary
//! serves and tests can run in-process.
//!
//! - `GET /` serves the calculator page (`frontend/index.html`, embedded).
//! - `POST /solve` forwards the request body and content type to
//!   `{maths-api endpoint}/solve` and passes maths-api's status, content type
//!   and body through. When maths-api cannot be reached it answers 502, or 504
//!   when maths-api is too slow, with `{"error": "maths-api is unreachable at
//!   <endpoint>: <reason>"}`, within the timeouts of the [`Config`].
//! - `GET /health` answers 200 `{"status": "ok"}` (the client's own liveness).
//!
//! Request bodies are limited to [`BODY_LIMIT`] bytes.

mod settings;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

pub use settings::{Config, DEFAULT_MATHS_API_ENDPOINT, DEFAULT_PORT, SettingsError, parse_port};

/// Largest accepted request body, in bytes.
pub const BODY_LIMIT: usize = 16 * 1024;

/// The calculator page.
const INDEX_HTML: &str = include_str!("../frontend/index.html");

/// The page only runs its own inline script and style and talks to its origin.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

struct Proxy {
    http: reqwest::Client,
    config: Config,
    solve_url: String,
}

/// The client's routes, with the body limit and request logging.
///
/// # Errors
///
/// Fails if the HTTP client for maths-api cannot be built.
pub fn router(config: Config) -> Result<Router, reqwest::Error> {
    // maths-api is an internal service: never go through a proxy to reach it.
    let http = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(config.connect_timeout)
        .timeout(config.request_timeout)
        .user_agent(concat!("calculator-client/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let proxy = Proxy {
        http,
        solve_url: format!("{}/solve", config.endpoint()),
        config,
    };
    Ok(Router::new()
        .route("/", get(index))
        .route("/solve", post(solve))
        .route("/health", get(health))
        .fallback(not_found)
        .with_state(Arc::new(proxy))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(log_request)))
}

async fn index() -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Html(INDEX_HTML),
    )
}

async fn solve(
    State(proxy): State<Arc<Proxy>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), &rejection.body_text()),
    };
    let mut request = proxy.http.post(&proxy.solve_url).body(body);
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    match forward(request).await {
        Ok(response) => response,
        Err(failure) => {
            let (status, reason) = describe(&failure, &proxy.config);
            let endpoint = proxy.config.endpoint();
            tracing::warn!(endpoint, reason, "maths-api is unreachable");
            error(
                status,
                &format!("maths-api is unreachable at {endpoint}: {reason}"),
            )
        }
    }
}

/// Sends `request` and turns maths-api's answer into the client's response.
async fn forward(request: reqwest::RequestBuilder) -> Result<Response, reqwest::Error> {
    let upstream = request.send().await?;
    let status = upstream.status();
    let content_type = upstream.headers().get(header::CONTENT_TYPE).cloned();
    let body = upstream.bytes().await?;
    let mut response = (status, body).into_response();
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    Ok(response)
}

/// The status to answer and a short reason for a failed exchange with maths-api.
fn describe(failure: &reqwest::Error, config: &Config) -> (StatusCode, String) {
    if failure.is_timeout() {
        let reason = if failure.is_connect() {
            format!("cannot connect within {:?}", config.connect_timeout)
        } else {
            format!("no answer within {:?}", config.request_timeout)
        };
        return (StatusCode::GATEWAY_TIMEOUT, reason);
    }
    // The innermost cause says what actually went wrong (e.g. "Connection refused").
    let mut cause: &dyn std::error::Error = failure;
    while let Some(source) = cause.source() {
        cause = source;
    }
    let reason = if failure.is_connect() {
        format!("cannot connect: {cause}")
    } else {
        cause.to_string()
    };
    (StatusCode::BAD_GATEWAY, reason)
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not found")
}

fn error(status: StatusCode, message: &str) -> Response {
    let mut response = (status, Json(json!({ "error": message }))).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        elapsed_us = started.elapsed().as_micros(),
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_file_matches_package_version() {
        let version = include_str!("../.version");
        assert_eq!(version.trim(), env!("CARGO_PKG_VERSION"));
        assert!(version.ends_with('\n'));
    }

    #[test]
    fn page_is_self_contained() {
        let page = super::INDEX_HTML;
        assert!(page.contains("aria-live"));
        assert!(!page.contains("http://") && !page.contains("https://"));
        assert!(!page.contains(" src="));
    }
}
