//! Chat-ops input and output: verifying and decoding Slack and Mattermost slash commands,
//! parsing the command language (shared with GitLab merge request comments), rendering
//! replies with user text escaped for each chat, and posting late replies to a `response_url`.
//!
//! This module owns no routes and decides nothing: the HTTP layer passes it raw headers and
//! bodies, and the handler acts on the parsed [`command::Command`] and renders the outcome
//! with [`reply::Replies`]. Only [`post_response`] does I/O.
//!
//! - [`command`]: the command language and its errors (pure).
//! - [`slack`]: Slack's request signature, slash command form and reply JSON.
//! - [`mattermost`]: Mattermost's command token, slash command form and reply JSON.
//! - [`reply`]: reply texts per chat flavour, from embedded handlebars templates (pure).
//! - [`replay`]: Slack signatures already used, refused a second time (pure).

pub mod command;
pub mod mattermost;
mod post;
pub mod replay;
pub mod reply;
pub mod slack;

use std::collections::HashMap;

pub use post::{PostError, post_response};

/// A slash command as Slack or Mattermost sends it (the fields both share; a secret token is
/// never kept here).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlashCommand {
    /// The workspace (Slack) or team (Mattermost) id.
    pub team_id: String,
    /// The workspace or team name in URLs (may be empty).
    pub team_domain: String,
    /// The channel id.
    pub channel_id: String,
    /// The channel name (may be empty).
    pub channel_name: String,
    /// The user id: the one to authorize.
    pub user_id: String,
    /// The user name (display only: users can change it).
    pub user_name: String,
    /// The slash command as typed, with its `/`, such as `/promoter`.
    pub command: String,
    /// The text after the command: input for [`command::parse`].
    pub text: String,
    /// Where to post later replies (a capability URL: do not log it).
    pub response_url: String,
    /// The id that opens a dialog (may be empty).
    pub trigger_id: String,
}

/// Why a request is not from the chat it claims to be from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The configured secret or token is empty.
    #[error("no signing secret or token is configured")]
    NotConfigured,
    /// The timestamp header is missing or not a number of seconds.
    #[error("malformed request timestamp")]
    MalformedTimestamp,
    /// The timestamp is too far from now (a replay, or a wrong clock).
    #[error("request timestamp is {skew} s away from now (at most 300 s allowed)")]
    StaleTimestamp {
        /// Now minus the timestamp, in seconds.
        skew: i64,
    },
    /// The signature header is missing or not `v0=` and 64 hex digits.
    #[error("malformed request signature")]
    MalformedSignature,
    /// The signature does not match the body.
    #[error("request signature does not match")]
    BadSignature,
    /// No token in the `Authorization` header nor in the form.
    #[error("missing command token")]
    MissingToken,
    /// An `Authorization` header that is not `Token <token>`.
    #[error("malformed authorization header")]
    MalformedAuthorization,
    /// The token does not match.
    #[error("command token does not match")]
    BadToken,
}

/// Why a slash command form cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// Slack's `ssl_check=1` probe: not a command; answer 200 with an empty body.
    #[error("ssl check probe, not a command")]
    SslCheck,
    /// A required field is absent.
    #[error("missing form field `{field}`")]
    Missing {
        /// The field.
        field: &'static str,
    },
    /// A field appears more than once (which value would be meant is ambiguous).
    #[error("form field `{field}` appears more than once")]
    Duplicate {
        /// The field.
        field: &'static str,
    },
}

/// The fields promoter reads, in [`SlashCommand`] order, and whether each is required.
const FIELDS: [(&str, bool); 10] = [
    ("team_id", true),
    ("team_domain", false),
    ("channel_id", true),
    ("channel_name", false),
    ("user_id", true),
    ("user_name", false),
    ("command", true),
    ("text", false),
    ("response_url", true),
    ("trigger_id", false),
];

/// Decodes the fields of an `application/x-www-form-urlencoded` body that are in `wanted`,
/// refusing duplicates; other fields are ignored.
fn form_fields(
    body: &[u8],
    wanted: &[&'static str],
) -> Result<HashMap<&'static str, String>, FormError> {
    let mut fields = HashMap::new();
    for (key, value) in url::form_urlencoded::parse(body) {
        let Some(field) = wanted.iter().find(|w| **w == key) else {
            continue;
        };
        if fields.insert(*field, value.into_owned()).is_some() {
            return Err(FormError::Duplicate { field });
        }
    }
    Ok(fields)
}

/// A [`SlashCommand`] from decoded fields.
fn slash_command(mut fields: HashMap<&'static str, String>) -> Result<SlashCommand, FormError> {
    let mut take = |field: &'static str| -> Result<String, FormError> {
        let required = FIELDS.iter().any(|(f, r)| *f == field && *r);
        match fields.remove(field) {
            Some(value) => Ok(value),
            None if required => Err(FormError::Missing { field }),
            None => Ok(String::new()),
        }
    };
    Ok(SlashCommand {
        team_id: take("team_id")?,
        team_domain: take("team_domain")?,
        channel_id: take("channel_id")?,
        channel_name: take("channel_name")?,
        user_id: take("user_id")?,
        user_name: take("user_name")?,
        command: take("command")?,
        text: take("text")?,
        response_url: take("response_url")?,
        trigger_id: take("trigger_id")?,
    })
}

/// A reply body for Slack or Mattermost: `{"response_type": ..., "text": ...}`.
fn reply_json(response_type: &str, text: &str) -> serde_json::Value {
    serde_json::json!({ "response_type": response_type, "text": text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_ignore_unknown_fields_and_refuse_duplicates() {
        let names: Vec<&'static str> = FIELDS.iter().map(|(f, _)| *f).collect();
        let fields = form_fields(b"text=a+b%26c&other=1&other=2", &names).unwrap();
        assert_eq!(fields["text"], "a b&c");
        assert_eq!(fields.len(), 1);
        assert_eq!(
            form_fields(b"text=a&text=b", &names),
            Err(FormError::Duplicate { field: "text" })
        );
        assert_eq!(
            slash_command(fields),
            Err(FormError::Missing { field: "team_id" })
        );
    }
}
