//! What chat-ops refuses before handing a command to the daemon's loop, past authentication:
//! a Slack signature used a second time ([`SeenSignatures`]) and a Mattermost `response_url`
//! that is not on the configured Mattermost server (Mattermost signs nothing, so whoever holds
//! the token could otherwise make promoter post anywhere). The bound on commands waiting for a
//! reconcile is the loop's ([`crate::daemon::MAX_WAITING`]); [`BUSY`] is its answer.

use url::Url;

use crate::chatops::replay::SeenSignatures;
pub use crate::chatops::reply::BUSY;

/// The shared state of the defences.
#[derive(Debug, Default)]
pub struct ChatGuard {
    /// Slack signatures already accepted.
    pub seen_slack: SeenSignatures,
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
