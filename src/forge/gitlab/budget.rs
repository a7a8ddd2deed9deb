//! The request budget of one GitLab host: a token bucket that every request to that host takes
//! a token from, so reconciles, chat-ops and the dashboard together never send more than the
//! configured rate (GitLab's own limits answer 429 long after a burst did its harm). A request
//! that finds the bucket empty waits for the next token; the waits are counted for metrics.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Rate and burst of a bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetSettings {
    /// Tokens added per second (sustained requests per second).
    pub per_second: f64,
    /// Most tokens held (requests sent back to back after a quiet spell).
    pub burst: u32,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        Self {
            per_second: 10.0,
            burst: 20,
        }
    }
}

/// A token bucket shared by every request to one host.
#[derive(Debug)]
pub struct TokenBucket {
    settings: BudgetSettings,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    refilled: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(settings: BudgetSettings) -> Self {
        Self {
            settings,
            state: Mutex::new(State {
                tokens: f64::from(settings.burst.max(1)),
                refilled: Instant::now(),
            }),
        }
    }

    /// Reserves one token and says how long to wait before using it (zero when one was there).
    /// Reservations queue: each caller's wait accounts for the tokens reserved before it.
    pub fn reserve(&self) -> Duration {
        let rate = self.settings.per_second.max(0.001);
        let cap = f64::from(self.settings.burst.max(1));
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(state.refilled).as_secs_f64();
        state.tokens = (state.tokens + elapsed * rate).min(cap);
        state.refilled = now;
        state.tokens -= 1.0;
        if state.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-state.tokens / rate)
        }
    }

    /// Waits for a token; the time waited.
    pub async fn acquire(&self) -> Duration {
        let wait = self.reserve();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_passes_then_requests_are_spaced_at_the_rate() {
        let bucket = TokenBucket::new(BudgetSettings {
            per_second: 2.0,
            burst: 3,
        });
        for _ in 0..3 {
            assert_eq!(bucket.reserve(), Duration::ZERO);
        }
        // The 4th and 5th wait for the 1st and 2nd new tokens: 0.5 s and 1 s.
        assert_eq!(bucket.reserve(), Duration::from_millis(500));
        assert_eq!(bucket.reserve(), Duration::from_millis(1000));
        tokio::time::advance(Duration::from_secs(10)).await;
        // Refilled to the burst, never beyond: three free, then a wait again.
        for _ in 0..3 {
            assert_eq!(bucket.reserve(), Duration::ZERO);
        }
        assert!(bucket.reserve() > Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_sleeps_for_the_wait() {
        let bucket = TokenBucket::new(BudgetSettings {
            per_second: 1.0,
            burst: 1,
        });
        assert_eq!(bucket.acquire().await, Duration::ZERO);
        let before = Instant::now();
        assert_eq!(bucket.acquire().await, Duration::from_secs(1));
        assert_eq!(Instant::now() - before, Duration::from_secs(1));
    }
}
