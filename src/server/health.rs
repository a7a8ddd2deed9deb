//! `GET /healthz` (the process answers) and `GET /readyz` (it can do its job: config loaded,
//! git mirror fetched at least once, GitLab reached recently). [`Readiness`] is written by the
//! daemon's reconcile and read by the probe; it holds marks only, and never checks anything
//! itself.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::ServerState;

/// What the readiness probe reports on, marked by the daemon as it goes.
#[derive(Debug)]
pub struct Readiness {
    /// How old the last successful GitLab contact may be before the daemon is not ready.
    pub max_staleness: Duration,
    marks: Mutex<Marks>,
}

#[derive(Debug, Default)]
struct Marks {
    config_loaded: bool,
    fetched: Option<DateTime<Utc>>,
    gitlab_ok: Option<DateTime<Utc>>,
    /// Why the project's loop could not start, until it does.
    start_failed: Option<String>,
}

impl Readiness {
    /// Nothing marked yet: not ready.
    pub fn new(max_staleness: Duration) -> Self {
        Self {
            max_staleness,
            marks: Mutex::new(Marks::default()),
        }
    }

    /// The project's loop could not start (`Some(why)`), or started after all (`None`).
    pub fn mark_start_failed(&self, why: Option<String>) {
        self.marks().start_failed = why;
    }

    /// Settings were loaded and checked.
    pub fn mark_config_loaded(&self) {
        self.marks().config_loaded = true;
    }

    /// The git mirror was fetched at `at`.
    pub fn mark_fetched(&self, at: DateTime<Utc>) {
        let mut marks = self.marks();
        marks.fetched = marks.fetched.max(Some(at));
    }

    /// A GitLab call succeeded at `at`.
    pub fn mark_gitlab_ok(&self, at: DateTime<Utc>) {
        let mut marks = self.marks();
        marks.gitlab_ok = marks.gitlab_ok.max(Some(at));
    }

    /// Whether the daemon is ready at `now`, and each failing check in words.
    pub fn report(&self, now: DateTime<Utc>) -> (bool, Vec<String>) {
        let marks = self.marks();
        let mut failing = Vec::new();
        if !marks.config_loaded {
            failing.push("config not loaded".to_string());
        }
        if let Some(why) = &marks.start_failed {
            failing.push(format!("cannot start: {why}"));
        }
        if marks.fetched.is_none() {
            failing.push("git mirror not fetched yet".to_string());
        }
        match marks.gitlab_ok {
            None => failing.push("no successful gitlab contact yet".to_string()),
            Some(at) => {
                let age = (now - at).to_std().unwrap_or_default();
                if age > self.max_staleness {
                    failing.push(format!(
                        "last successful gitlab contact {} ago (at {}), more than {}",
                        humantime::format_duration(Duration::from_secs(age.as_secs())),
                        at.to_rfc3339(),
                        humantime::format_duration(self.max_staleness),
                    ));
                }
            }
        }
        (failing.is_empty(), failing)
    }

    fn marks(&self) -> std::sync::MutexGuard<'_, Marks> {
        // The marks stay consistent even if a holder panicked: each write is one field.
        self.marks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Liveness: the process is up and serving.
pub(super) async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// Readiness: 200 when every check passes, else 503 naming the failing ones.
pub(super) async fn readyz(State(state): State<ServerState>) -> Response {
    let (ready, failing) = state.readiness.report(state.clock.now());
    if ready {
        Json(json!({"status": "ready"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "failing": failing})),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn report_names_each_failing_check() {
        let readiness = Readiness::new(Duration::from_secs(600));
        let now = utc("2026-03-03T12:00:00Z");
        assert_eq!(
            readiness.report(now),
            (
                false,
                vec![
                    "config not loaded".to_string(),
                    "git mirror not fetched yet".to_string(),
                    "no successful gitlab contact yet".to_string(),
                ]
            )
        );
        readiness.mark_config_loaded();
        readiness.mark_fetched(utc("2026-03-03T11:00:00Z"));
        readiness.mark_gitlab_ok(utc("2026-03-03T11:50:00Z"));
        assert_eq!(readiness.report(now), (true, vec![]));

        // A late mark with an older time does not move it back.
        readiness.mark_gitlab_ok(utc("2026-03-03T11:00:00Z"));
        let later = utc("2026-03-03T12:00:01Z");
        assert_eq!(readiness.report(later), (false, vec![
            "last successful gitlab contact 10m 1s ago (at 2026-03-03T11:50:00+00:00), more than 10m"
                .to_string()
        ]));
    }
}
