//! HTTP API of the calculator, as a router that the `maths-api` binary serves
//! and tests can run in-process.
//!
//! - `POST /solve` takes `{"expression": "2+3*(4-1)"}` and answers 200
//!   `{"result": 11}`, or 400 `{"error": "...", "column": N}` for an
//!   expression that cannot be evaluated (`column` is null when no column
//!   applies). A body that is not a JSON object with a string `expression`
//!   gets a 4xx status with `{"error": "..."}`.
//! - `GET /health` answers 200 `{"status": "ok"}`.
//!
//! Request bodies are limited to [`BODY_LIMIT`] bytes.

mod port;

use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Number, json};

pub use port::{DEFAULT_PORT, InvalidPort, parse_port};

/// Largest accepted request body, in bytes.
pub const BODY_LIMIT: usize = 16 * 1024;

/// Body of `POST /solve`.
#[derive(Debug, Clone, Deserialize)]
pub struct SolveRequest {
    /// The arithmetic expression to evaluate.
    pub expression: String,
}

/// The API's routes, with the body limit and request logging.
pub fn router() -> Router {
    Router::new()
        .route("/solve", post(solve))
        .route("/health", get(health))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(log_request))
}

async fn solve(payload: Result<Json<SolveRequest>, JsonRejection>) -> Response {
    let request = match payload {
        Ok(Json(request)) => request,
        Err(rejection) => return error(rejection.status(), &rejection.body_text()),
    };
    match maths::evaluate(&request.expression) {
        Ok(value) => match json_number(value) {
            Some(result) => Json(json!({ "result": result })).into_response(),
            None => error(StatusCode::INTERNAL_SERVER_ERROR, "result is not finite"),
        },
        Err(failure) => {
            tracing::debug!(expression = %request.expression, %failure, "cannot evaluate");
            let body = json!({ "error": failure.to_string(), "column": failure.column() });
            (StatusCode::BAD_REQUEST, Json(body)).into_response()
        }
    }
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not found")
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// `value` as a JSON number: an integer when it is integral and fits in an
/// `i64` (so 11.0 serializes as `11`), otherwise a float; `None` if not finite.
#[must_use]
pub fn json_number(value: f64) -> Option<Number> {
    // 2^63: i64::MAX is not representable as f64, so compare against this.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if value.fract() == 0.0 && (-LIMIT..LIMIT).contains(&value) {
        // Exact: the value is integral and within the range of i64.
        return Some(Number::from(value as i64));
    }
    Number::from_f64(value)
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
    use super::*;

    #[test]
    fn integral_results_are_integers() {
        assert_eq!(json!(json_number(11.0)).to_string(), "11");
        assert_eq!(json!(json_number(-4.0)).to_string(), "-4");
        assert_eq!(json!(json_number(0.0)).to_string(), "0");
        assert_eq!(
            json!(json_number(-9.223_372_036_854_776e18)).to_string(),
            "-9223372036854775808"
        );
    }

    #[test]
    fn other_results_are_floats() {
        assert_eq!(json!(json_number(3.5)).to_string(), "3.5");
        assert_eq!(
            json!(json_number(9.223_372_036_854_776e18)).to_string(),
            "9.223372036854776e+18"
        );
        assert_eq!(json!(json_number(1e300)).to_string(), "1e+300");
        assert_eq!(json_number(f64::INFINITY), None);
        assert_eq!(json_number(f64::NAN), None);
    }

    #[test]
    fn version_file_matches_package_version() {
        assert_eq!(
            include_str!("../.version").trim(),
            env!("CARGO_PKG_VERSION")
        );
        assert!(include_str!("../.version").ends_with('\n'));
    }
}
