//! Faults the test injects: a queue of targeted ones and a seeded random mode.

use std::time::Duration;

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

/// What a faulted request gets instead of (or on top of) its normal answer.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// 429 with GitLab's `Retry-After` and `RateLimit-*` headers and the body `Retry later`.
    RateLimited { retry_after_secs: u64 },
    /// This status with a GitLab-like JSON body (`{"message":"502 Bad Gateway"}`).
    Status(u16),
    /// The request is handled normally (a write takes effect at once), but the answer is held
    /// back this long: a client that times out cannot know whether its write happened.
    Delay(Duration),
}

/// One queued fault: the next `times` requests matching `method` and `path_contains` (both
/// optional; `path_contains` is matched against the raw path, e.g. `/merge_requests/3/merge`).
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: Option<Method>,
    pub path_contains: Option<String>,
    pub times: usize,
    pub kind: FaultKind,
}

impl Fault {
    /// The next `times` requests of any kind.
    pub fn any(times: usize, kind: FaultKind) -> Self {
        Self {
            method: None,
            path_contains: None,
            times,
            kind,
        }
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.times > 0
            && self.method.as_ref().is_none_or(|m| m == method)
            && self
                .path_contains
                .as_ref()
                .is_none_or(|p| path.contains(p.as_str()))
    }
}

/// The fault queue and the random mode; checked before any normal handling.
#[derive(Debug, Default)]
pub(super) struct Faults {
    queue: Vec<Fault>,
    random: Option<RandomFaults>,
}

#[derive(Debug)]
struct RandomFaults {
    rate: f64,
    rng: u64,
    kinds: Vec<FaultKind>,
}

impl RandomFaults {
    /// splitmix64: a fixed, dependency-free sequence per seed.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn draw(&mut self) -> Option<FaultKind> {
        if self.kinds.is_empty() {
            return None;
        }
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        if unit >= self.rate {
            return None;
        }
        let pick = (self.next() % self.kinds.len() as u64) as usize;
        Some(self.kinds[pick].clone())
    }
}

impl Faults {
    pub(super) fn push(&mut self, fault: Fault) {
        self.queue.push(fault);
    }

    pub(super) fn set_random(&mut self, rate: f64, seed: u64, kinds: Vec<FaultKind>) {
        assert!(
            (0.0..=1.0).contains(&rate),
            "fault rate {rate} is not in 0..=1"
        );
        self.random = Some(RandomFaults {
            rate,
            rng: seed,
            kinds,
        });
    }

    pub(super) fn clear(&mut self) {
        *self = Self::default();
    }

    /// The fault for this request, if any: the first matching queued fault (used up one
    /// time), else a draw from the random mode (one draw per request, so the same request
    /// sequence fails the same way for the same seed).
    pub(super) fn take(&mut self, method: &Method, path: &str) -> Option<FaultKind> {
        if let Some(pos) = self.queue.iter().position(|f| f.matches(method, path)) {
            let fault = &mut self.queue[pos];
            fault.times -= 1;
            let kind = fault.kind.clone();
            if fault.times == 0 {
                self.queue.remove(pos);
            }
            return Some(kind);
        }
        self.random.as_mut().and_then(RandomFaults::draw)
    }
}

/// The answer for an error fault (`None` for `Delay`, which answers normally). Rate-limit
/// times use the wall clock, not the double's clock: clients compute waits from them.
pub(super) fn error_response(kind: &FaultKind, wall: DateTime<Utc>) -> Option<Response> {
    match kind {
        FaultKind::Delay(_) => None,
        FaultKind::RateLimited { retry_after_secs } => {
            let reset = wall + chrono::Duration::seconds(*retry_after_secs as i64);
            let mut rsp = (StatusCode::TOO_MANY_REQUESTS, "Retry later\n").into_response();
            let headers = rsp.headers_mut();
            let mut set = |name: &'static str, value: String| {
                headers.insert(name, HeaderValue::from_str(&value).expect("header value"));
            };
            set("retry-after", retry_after_secs.to_string());
            set("ratelimit-name", "throttle_authenticated_api".into());
            set("ratelimit-limit", "60".into());
            set("ratelimit-observed", "61".into());
            set("ratelimit-remaining", "0".into());
            set("ratelimit-reset", reset.timestamp().to_string());
            set(
                "ratelimit-resettime",
                reset.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
            );
            set(header::CONTENT_TYPE.as_str(), "text/plain".into());
            Some(rsp)
        }
        FaultKind::Status(code) => {
            let status = StatusCode::from_u16(*code).expect("a valid HTTP status");
            let reason = status.canonical_reason().unwrap_or("Error");
            let body = serde_json::json!({ "message": format!("{code} {reason}") });
            Some((status, axum::Json(body)).into_response())
        }
    }
}
