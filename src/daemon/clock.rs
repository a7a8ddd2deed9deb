//! The daemon's wall clock. [`Clock::system`] is the real UTC time; [`Clock::starting_at`]
//! follows tokio's clock from a fixed instant, so tests under
//! `#[tokio::test(start_paused = true)]` move calendar time by advancing tokio time. Only the
//! daemon's edges read it; the core takes `now` as an argument.

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// A source of `DateTime<Utc>` consistent with tokio's timers.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// `None` for the system clock; else the calendar time at a tokio instant.
    origin: Option<(DateTime<Utc>, Instant)>,
}

impl Clock {
    /// The real clock.
    pub fn system() -> Self {
        Self { origin: None }
    }

    /// A clock reading `start` now and advancing with tokio time (pausable in tests).
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self {
            origin: Some((start, Instant::now())),
        }
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        match self.origin {
            None => Utc::now(),
            Some((start, at)) => {
                let elapsed = Instant::now().saturating_duration_since(at);
                chrono::TimeDelta::from_std(elapsed)
                    .ok()
                    .and_then(|elapsed| start.checked_add_signed(elapsed))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn follows_paused_tokio_time() {
        let start = "2026-03-28T23:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let clock = Clock::starting_at(start);
        assert_eq!(clock.now(), start);
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(clock.now().to_rfc3339(), "2026-03-29T00:00:00+00:00");
    }

    #[test]
    fn system_clock_is_now() {
        let before = Utc::now();
        let now = Clock::system().now();
        assert!(now >= before && now <= Utc::now());
    }
}
