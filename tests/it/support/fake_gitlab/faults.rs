//! Faults the test injects: a queue of targeted ones, a seeded random mode, hangs that hold
//! a chosen request until the test releases it (so that a test knows exactly where a client
//! is before it kills it), and one-shot hooks that change the world when a request arrives.

use std::path::Path;
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

/// When a hung request takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Never: it is held before it is handled and, once released, answers 503 without
    /// touching anything (the client died before its request got anywhere).
    Never,
    /// First: it is handled, then its answer is held (the client cannot know its write
    /// happened).
    First,
    /// On release: it is held, then handled (a slow request that lands late).
    OnRelease,
}

/// A request held until [`super::FakeGitLab::release_hangs`]: the `skip + 1`-th request
/// matching `method` and `path_contains` (both optional), counted only once a request matching
/// `after` (if any) has arrived.
#[derive(Debug, Clone)]
pub struct Hang {
    pub method: Option<Method>,
    pub path_contains: Option<String>,
    /// Matching requests let through first.
    pub skip: usize,
    /// Counting starts after a request matching (method, path_contains) arrived.
    pub after: Option<(Method, String)>,
    pub effect: Effect,
}

impl Hang {
    /// The next `method` request whose path contains `path`.
    pub fn at(method: Method, path: &str, effect: Effect) -> Self {
        Self {
            method: Some(method),
            path_contains: Some(path.to_owned()),
            skip: 0,
            after: None,
            effect,
        }
    }

    /// The next `method` request whose path contains `path`, held before it takes effect.
    pub fn before(method: Method, path: &str) -> Self {
        Self::at(method, path, Effect::Never)
    }

    /// The next `method` request whose path contains `path`, held after it took effect.
    pub fn after_effect(method: Method, path: &str) -> Self {
        Self::at(method, path, Effect::First)
    }

    /// The `n`-th request of any kind (1-based).
    pub fn nth(n: usize, effect: Effect) -> Self {
        Self {
            method: None,
            path_contains: None,
            skip: n.saturating_sub(1),
            after: None,
            effect,
        }
    }

    /// The first request of any kind after one matching `method` and `path` arrived.
    pub fn next_after(method: Method, path: &str, effect: Effect) -> Self {
        Self {
            after: Some((method, path.to_owned())),
            ..Self::nth(1, effect)
        }
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.method.as_ref().is_none_or(|m| m == method)
            && self
                .path_contains
                .as_ref()
                .is_none_or(|p| path.contains(p.as_str()))
    }
}

/// What a hook runs: it gets the bare repository's path.
pub(super) type Change = Box<dyn FnOnce(&Path) + Send>;

/// A change to the world made once, right before a matching request is handled (a commit
/// landing on a branch "while" promoter works, say). It gets the bare repository's path.
pub(super) struct Hook {
    method: Method,
    path_contains: String,
    run: Change,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hook({} {})", self.method, self.path_contains)
    }
}

#[derive(Debug)]
struct HangRule {
    hang: Hang,
    armed: bool,
}

/// The fault queue, the random mode, hangs and hooks; checked before any normal handling.
#[derive(Debug, Default)]
pub(super) struct Faults {
    queue: Vec<Fault>,
    random: Option<RandomFaults>,
    hangs: Vec<HangRule>,
    hooks: Vec<Hook>,
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

    pub(super) fn push_hang(&mut self, hang: Hang) {
        let armed = hang.after.is_none();
        self.hangs.push(HangRule { hang, armed });
    }

    pub(super) fn push_hook(&mut self, method: Method, path_contains: &str, run: Change) {
        self.hooks.push(Hook {
            method,
            path_contains: path_contains.to_owned(),
            run,
        });
    }

    /// Whether this request hangs (the rule is used up), and arms the rules waiting for it.
    pub(super) fn take_hang(&mut self, method: &Method, path: &str) -> Option<Effect> {
        let mut fired = None;
        for (i, rule) in self.hangs.iter_mut().enumerate() {
            if rule.armed && rule.hang.matches(method, path) {
                if rule.hang.skip == 0 {
                    fired = Some(i);
                    break;
                }
                rule.hang.skip -= 1;
            }
        }
        let effect = fired.map(|i| self.hangs.remove(i).hang.effect);
        for rule in self.hangs.iter_mut().filter(|r| !r.armed) {
            if let Some((m, p)) = &rule.hang.after
                && m == method
                && path.contains(p.as_str())
            {
                rule.armed = true;
            }
        }
        effect
    }

    /// The first hook matching this request, used up.
    pub(super) fn take_hook(&mut self, method: &Method, path: &str) -> Option<Change> {
        let pos = self
            .hooks
            .iter()
            .position(|h| h.method == *method && path.contains(h.path_contains.as_str()))?;
        Some(self.hooks.remove(pos).run)
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
