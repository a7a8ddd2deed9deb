//! Parsing of the client's settings taken from the environment: its
//! listening port and the maths-api endpoint.

use std::time::Duration;

use reqwest::Url;

/// Port used when `CLIENT_PORT` is unset or empty.
pub const DEFAULT_PORT: u16 = 8080;

/// maths-api endpoint used when `MATHS_API_ENDPOINT` is unset or empty.
pub const DEFAULT_MATHS_API_ENDPOINT: &str = "http://localhost:7779";

/// A setting the client cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A port that is not a number from 1 to 65535.
    #[error("expected a port from 1 to 65535, like 8080 or :8080, got {0:?}")]
    InvalidPort(String),
    /// An endpoint that is not a plain `http://host[:port][/path]` URL.
    #[error("expected an http:// URL like {DEFAULT_MATHS_API_ENDPOINT}, got {value:?}: {reason}")]
    InvalidEndpoint {
        /// The rejected setting.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
}

/// Parses a port given as `8080` or `:8080`; surrounding whitespace is ignored.
///
/// # Errors
///
/// Returns [`SettingsError::InvalidPort`] unless the value is a port from 1 to 65535.
pub fn parse_port(value: &str) -> Result<u16, SettingsError> {
    let trimmed = value.trim();
    let digits = trimmed.strip_prefix(':').unwrap_or(trimmed);
    match digits.parse() {
        Ok(port) if port != 0 && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(port),
        _ => Err(SettingsError::InvalidPort(value.to_owned())),
    }
}

/// How the client reaches maths-api.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    endpoint: String,
    /// Longest wait for a connection to maths-api.
    pub connect_timeout: Duration,
    /// Longest wait for a whole exchange with maths-api, connection included.
    pub request_timeout: Duration,
}

impl Config {
    /// A configuration for the maths-api at `endpoint` (an `http://` URL,
    /// with or without a trailing slash), with a 2 s connect timeout and a
    /// 5 s request timeout.
    ///
    /// # Errors
    ///
    /// Returns [`SettingsError::InvalidEndpoint`] unless `endpoint` is an
    /// `http://` URL without credentials, query or fragment. (The client is
    /// built without TLS: maths-api is reached inside the cluster.)
    pub fn new(endpoint: &str) -> Result<Self, SettingsError> {
        let invalid = |reason: &str| SettingsError::InvalidEndpoint {
            value: endpoint.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = endpoint.trim().trim_end_matches('/');
        let url = Url::parse(trimmed).map_err(|error| invalid(&error.to_string()))?;
        if url.scheme() != "http" {
            return Err(invalid("the scheme must be http"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("a host is required"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("credentials are not supported"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("a query or fragment is not supported"));
        }
        Ok(Self {
            endpoint: trimmed.to_owned(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
        })
    }

    /// The maths-api endpoint, without a trailing slash.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(parse_port("8080"), Ok(8080));
        assert_eq!(parse_port(":8080"), Ok(8080));
        assert_eq!(parse_port(" 1 "), Ok(1));
        for value in [
            "", "0", ":0", "65536", "+80", "-1", "x", "8080/tcp", "::8080",
        ] {
            assert_eq!(
                parse_port(value),
                Err(SettingsError::InvalidPort(value.to_owned())),
                "{value:?}"
            );
        }
    }

    #[test]
    fn endpoints() {
        for (value, expected) in [
            ("http://localhost:7779", "http://localhost:7779"),
            ("http://maths-api:7779/", "http://maths-api:7779"),
            (" http://10.0.0.1 ", "http://10.0.0.1"),
            ("http://[::1]:7779", "http://[::1]:7779"),
            ("http://gateway/maths/", "http://gateway/maths"),
        ] {
            let config = Config::new(value).expect(value);
            assert_eq!(config.endpoint(), expected);
        }
        let config = Config::new(DEFAULT_MATHS_API_ENDPOINT).expect("default");
        assert_eq!(config.connect_timeout, Duration::from_secs(2));
        assert_eq!(config.request_timeout, Duration::from_secs(5));
    }

    #[test]
    fn bad_endpoints() {
        for value in [
            "",
            "localhost:7779",
            "maths-api",
            "https://maths-api",
            "ftp://maths-api",
            "http://user:secret@maths-api",
            "http://maths-api?x=1",
            "http://",
        ] {
            let error = Config::new(value).expect_err(value);
            assert!(
                matches!(error, SettingsError::InvalidEndpoint { .. }),
                "{value:?}: {error}"
            );
        }
    }
}
