//! Parsing of the listening port taken from the environment.

/// Port used when `MATHS_API_PORT` is unset or empty.
pub const DEFAULT_PORT: u16 = 7779;

/// A port setting that is not a number from 1 to 65535.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a port from 1 to 65535, like 7779 or :7779, got {value:?}")]
pub struct InvalidPort {
    /// The rejected setting.
    pub value: String,
}

/// Parses a port given as `7779` or `:7779`; surrounding whitespace is ignored.
///
/// # Errors
///
/// Returns [`InvalidPort`] unless the value is a port from 1 to 65535.
pub fn parse_port(value: &str) -> Result<u16, InvalidPort> {
    let trimmed = value.trim();
    let digits = trimmed.strip_prefix(':').unwrap_or(trimmed);
    match digits.parse() {
        Ok(port) if port != 0 && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(port),
        _ => Err(InvalidPort {
            value: value.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_both_forms() {
        assert_eq!(parse_port("7779"), Ok(7779));
        assert_eq!(parse_port(":7779"), Ok(7779));
        assert_eq!(parse_port(" :8080\n"), Ok(8080));
        assert_eq!(parse_port("65535"), Ok(65535));
    }

    #[test]
    fn rejects_bad_values() {
        for value in [
            "",
            ":",
            "0",
            ":0",
            "65536",
            "-1",
            "+80",
            "abc",
            "7779x",
            "::7779",
            "0.0.0.0:7779",
        ] {
            assert_eq!(
                parse_port(value),
                Err(InvalidPort {
                    value: value.to_owned()
                }),
                "{value:?}"
            );
        }
    }
}
