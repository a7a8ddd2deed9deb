//! Mattermost custom slash commands: the shared command token (sent as
//! `Authorization: Token <token>` and as the form's `token`), the form (POST body or GET query)
//! and the JSON reply. Mattermost signs nothing, so the token must travel over TLS. No I/O.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AuthError, FIELDS, FormError, SlashCommand};

/// A decoded slash command with the token it carried.
#[derive(Debug, Clone)]
pub struct Form {
    /// The command.
    pub command: SlashCommand,
    /// The form's `token`, for [`verify`].
    pub token: Option<SecretString>,
}

/// Checks the command token: from `Authorization: Token <token>` when that header is present
/// and from the form's `token` when that is present; each present one must match, and one must
/// be. Compared in constant time (over SHA-256 digests, so the length does not leak either).
pub fn verify(
    expected: &SecretString,
    authorization_header: Option<&str>,
    form_token: Option<&str>,
) -> Result<(), AuthError> {
    let expected = expected.expose_secret();
    if expected.is_empty() {
        return Err(AuthError::NotConfigured);
    }
    if authorization_header.is_none() && form_token.is_none() {
        return Err(AuthError::MissingToken);
    }
    if let Some(header) = authorization_header {
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("token"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or(AuthError::MalformedAuthorization)?;
        check(expected, token)?;
    }
    if let Some(token) = form_token {
        check(expected, token)?;
    }
    Ok(())
}

fn check(expected: &str, given: &str) -> Result<(), AuthError> {
    let expected = Sha256::digest(expected.as_bytes());
    let given = Sha256::digest(given.as_bytes());
    if bool::from(expected.ct_eq(&given)) {
        Ok(())
    } else {
        Err(AuthError::BadToken)
    }
}

/// Decodes a slash command from a form body (or a GET request's query string). Requires
/// `team_id`, `channel_id`, `user_id`, `command` and `response_url`.
pub fn parse_form(body: &[u8]) -> Result<Form, FormError> {
    let mut names: Vec<&'static str> = FIELDS.iter().map(|(f, _)| *f).collect();
    names.push("token");
    let mut fields = super::form_fields(body, &names)?;
    let token = fields.remove("token").map(SecretString::from);
    Ok(Form {
        command: super::slash_command(fields)?,
        token,
    })
}

/// A reply only the user who typed the command sees. Mattermost's Slack-compatible link
/// parsing (`<url|text>`) is switched off: replies are Markdown, escaped as such.
pub fn ephemeral(text: &str) -> serde_json::Value {
    reply("ephemeral", text)
}

/// A reply everyone in the channel sees (Slack-compatible parsing off, as for [`ephemeral`]).
pub fn in_channel(text: &str) -> serde_json::Value {
    reply("in_channel", text)
}

fn reply(response_type: &str, text: &str) -> serde_json::Value {
    let mut json = super::reply_json(response_type, text);
    json["skip_slack_parsing"] = serde_json::Value::Bool(true);
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"channel_id=cniah6qa73bjjjan6mzn11f4ie&channel_name=town-square&command=%2Fpromoter&response_url=https%3A%2F%2Fchat.example.com%2Fhooks%2Fcommands%2Fqbq7xfx9&team_domain=acme&team_id=rdc9bgriktyx9p4kowh3dmgqyc&text=status+web&token=xr3j5x3p4pfk7kk6ck7b4e6ghh&trigger_id=dGVzdA&user_id=rnina9994bde8mua79zqcg5hmo&user_name=alice";

    fn expected() -> SecretString {
        SecretString::from("xr3j5x3p4pfk7kk6ck7b4e6ghh")
    }

    #[test]
    fn accepts_the_token_in_either_place() {
        let ok: [(Option<&str>, Option<&str>); 4] = [
            (Some("Token xr3j5x3p4pfk7kk6ck7b4e6ghh"), None),
            (Some("token  xr3j5x3p4pfk7kk6ck7b4e6ghh"), None),
            (None, Some("xr3j5x3p4pfk7kk6ck7b4e6ghh")),
            (
                Some("Token xr3j5x3p4pfk7kk6ck7b4e6ghh"),
                Some("xr3j5x3p4pfk7kk6ck7b4e6ghh"),
            ),
        ];
        for (header, form) in ok {
            assert_eq!(
                verify(&expected(), header, form),
                Ok(()),
                "{header:?} {form:?}"
            );
        }
    }

    #[test]
    fn rejects_missing_wrong_and_malformed_tokens() {
        let t = "xr3j5x3p4pfk7kk6ck7b4e6ghh";
        let cases: [(Option<&str>, Option<&str>, AuthError); 9] = [
            (None, None, AuthError::MissingToken),
            (Some("Token wrong"), None, AuthError::BadToken),
            (None, Some("wrong"), AuthError::BadToken),
            (None, Some(""), AuthError::BadToken),
            (None, Some("xr3j5x3p4pfk7kk6ck7b4e6gh"), AuthError::BadToken),
            (Some("Token wrong"), Some(t), AuthError::BadToken),
            (
                Some("Token xr3j5x3p4pfk7kk6ck7b4e6ghh"),
                Some("wrong"),
                AuthError::BadToken,
            ),
            (
                Some("Bearer xr3j5x3p4pfk7kk6ck7b4e6ghh"),
                None,
                AuthError::MalformedAuthorization,
            ),
            (Some("Token "), Some(t), AuthError::MalformedAuthorization),
        ];
        for (header, form, error) in cases {
            assert_eq!(
                verify(&expected(), header, form),
                Err(error),
                "{header:?} {form:?}"
            );
        }
        assert_eq!(
            verify(&SecretString::from(""), None, Some("")),
            Err(AuthError::NotConfigured)
        );
    }

    #[test]
    fn decodes_the_form_and_keeps_the_token_apart() {
        let form = parse_form(BODY).unwrap();
        assert_eq!(
            form.command,
            SlashCommand {
                team_id: "rdc9bgriktyx9p4kowh3dmgqyc".into(),
                team_domain: "acme".into(),
                channel_id: "cniah6qa73bjjjan6mzn11f4ie".into(),
                channel_name: "town-square".into(),
                user_id: "rnina9994bde8mua79zqcg5hmo".into(),
                user_name: "alice".into(),
                command: "/promoter".into(),
                text: "status web".into(),
                response_url: "https://chat.example.com/hooks/commands/qbq7xfx9".into(),
                trigger_id: "dGVzdA".into(),
            }
        );
        let token = form.token.as_ref().map(|t| t.expose_secret());
        assert_eq!(verify(&expected(), None, token), Ok(()));
        assert!(!format!("{form:?}").contains("xr3j5x3p4pfk7kk6ck7b4e6ghh"));
        let twice = [BODY, b"&token=other"].concat();
        assert_eq!(
            parse_form(&twice).unwrap_err(),
            FormError::Duplicate { field: "token" }
        );
        assert_eq!(
            parse_form(b"text=x").unwrap_err(),
            FormError::Missing { field: "team_id" }
        );
    }

    #[test]
    fn replies_skip_slack_parsing() {
        assert_eq!(
            in_channel("**done**"),
            serde_json::json!({
                "response_type": "in_channel",
                "text": "**done**",
                "skip_slack_parsing": true,
            })
        );
        assert_eq!(ephemeral("x")["response_type"], "ephemeral");
    }
}
