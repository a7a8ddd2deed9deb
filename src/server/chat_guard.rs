//! What chat-ops refuses before doing any work, past authentication: a Slack signature used a
//! second time ([`SeenSignatures`]), a command that would wait behind [`MAX_WAITING`] others for
//! the reconcile lock (answered "busy" at once instead of queueing without bound), and a
//! Mattermost `response_url` that is not on the configured Mattermost server (Mattermost signs
//! nothing, so whoever holds the token could otherwise make promoter post anywhere).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

use crate::chatops::replay::SeenSignatures;

/// How many commands that take the reconcile lock may be waiting for it or running at once.
pub const MAX_WAITING: usize = 16;

/// The answer past [`MAX_WAITING`].
pub const BUSY: &str = "promoter is busy: too many commands are already waiting for a reconcile. Try again in a few minutes.";

/// The shared state of the defences.
#[derive(Debug)]
pub struct ChatGuard {
    /// Slack signatures already accepted.
    pub seen_slack: SeenSignatures,
    waiting: Arc<Semaphore>,
}

impl Default for ChatGuard {
    fn default() -> Self {
        Self::with_queue(MAX_WAITING)
    }
}

impl ChatGuard {
    /// At most `max_waiting` lock-taking commands at once.
    pub fn with_queue(max_waiting: usize) -> Self {
        Self {
            seen_slack: SeenSignatures::default(),
            waiting: Arc::new(Semaphore::new(max_waiting)),
        }
    }

    /// A place for one command that takes the reconcile lock, held until it is done; `None`
    /// when [`MAX_WAITING`] are already waiting or running (answer [`BUSY`]).
    pub fn queue(&self) -> Option<OwnedSemaphorePermit> {
        let place = self.waiting.clone().try_acquire_owned().ok();
        if place.is_none() {
            tracing::warn!("chat-ops queue full: a command was answered busy");
        }
        place
    }
}

/// Whether a late reply may be posted to a Mattermost `response_url`: only when
/// `chatops.mattermost.url` is set and the URL has its scheme, host and port. `Err` says why
/// not, for the log.
pub fn mattermost_response_url(
    configured: Option<&Url>,
    response_url: &str,
) -> Result<(), &'static str> {
    let Some(server) = configured else {
        return Err("chatops.mattermost.url is not set");
    };
    let Ok(url) = Url::parse(response_url) else {
        return Err("response_url is not a URL");
    };
    if url.origin() != server.origin() {
        return Err("response_url is not on the server of chatops.mattermost.url");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_is_bounded_and_frees_its_places() {
        let guard = ChatGuard::with_queue(2);
        let first = guard.queue().unwrap();
        let _second = guard.queue().unwrap();
        assert!(guard.queue().is_none());
        drop(first);
        assert!(guard.queue().is_some());
    }

    #[test]
    fn response_urls_must_be_on_the_configured_server() {
        let server = Url::parse("https://chat.example.com").unwrap();
        let ok = |url: &str| mattermost_response_url(Some(&server), url);
        assert_eq!(ok("https://chat.example.com/hooks/commands/abc"), Ok(()));
        assert_eq!(
            ok("https://chat.example.com:443/hooks/commands/abc"),
            Ok(())
        );
        for bad in [
            "http://chat.example.com/hooks/commands/abc",
            "https://chat.example.com:8443/hooks/commands/abc",
            "https://chat.example.com.evil.example/hooks",
            "https://evil.example/?chat.example.com",
            "http://127.0.0.1:8065/hooks/commands/abc",
            "not a url",
        ] {
            assert!(ok(bad).is_err(), "{bad}");
        }
        assert_eq!(
            mattermost_response_url(None, "https://chat.example.com/hooks/commands/abc"),
            Err("chatops.mattermost.url is not set")
        );
    }
}
