//! Slack slash commands: the v0 request signature (checked on the raw body before anything is
//! decoded), the form Slack posts, and the JSON it accepts as a reply. Never reads the clock
//! (`now` is an argument) and does no I/O.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::{AuthError, FIELDS, FormError, SlashCommand};

/// How far a request's timestamp may be from now, in seconds.
pub const MAX_SKEW: i64 = 300;

/// Checks `X-Slack-Signature` (`signature`) against `X-Slack-Request-Timestamp` (`timestamp`)
/// and the raw `body`: `v0=` hex HMAC-SHA256 of `v0:{timestamp}:{body}` keyed with the signing
/// secret, compared in constant time, with the timestamp at most 300 s from `now` (Unix
/// seconds). Pass `""` for a missing header.
pub fn verify(
    signing_secret: &SecretString,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: i64,
) -> Result<(), AuthError> {
    let secret = signing_secret.expose_secret().as_bytes();
    if secret.is_empty() {
        return Err(AuthError::NotConfigured);
    }
    // Digits only: `i64::from_str` would also take a sign, and the signed text must be exactly
    // what was parsed.
    if timestamp.is_empty()
        || timestamp.len() > 12
        || !timestamp.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(AuthError::MalformedTimestamp);
    }
    let sent: i64 = timestamp
        .parse()
        .map_err(|_| AuthError::MalformedTimestamp)?;
    let skew = now.saturating_sub(sent);
    if skew.abs() > MAX_SKEW {
        return Err(AuthError::StaleTimestamp { skew });
    }
    let expected = signature
        .strip_prefix("v0=")
        .filter(|hex| hex.len() == 64)
        .and_then(|hex| hex::decode(hex).ok())
        .ok_or(AuthError::MalformedSignature)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| AuthError::NotConfigured)?;
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| AuthError::BadSignature)
}

/// Whether `body` is Slack's `ssl_check=1` probe (answer it with 200 and an empty body).
pub fn is_ssl_check(body: &[u8]) -> bool {
    url::form_urlencoded::parse(body).any(|(k, v)| k == "ssl_check" && v == "1")
}

/// Decodes a verified slash command body. Requires `team_id`, `channel_id`, `user_id`,
/// `command` and `response_url`; the deprecated `token` is ignored (use [`verify`]).
/// `ssl_check=1` gives [`FormError::SslCheck`].
pub fn parse_form(body: &[u8]) -> Result<SlashCommand, FormError> {
    if is_ssl_check(body) {
        return Err(FormError::SslCheck);
    }
    let names: Vec<&'static str> = FIELDS.iter().map(|(f, _)| *f).collect();
    super::slash_command(super::form_fields(body, &names)?)
}

/// A reply only the user who typed the command sees.
pub fn ephemeral(text: &str) -> serde_json::Value {
    super::reply_json("ephemeral", text)
}

/// A reply everyone in the channel sees.
pub fn in_channel(text: &str) -> serde_json::Value {
    super::reply_json("in_channel", text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slack's published example (api.slack.com, "Verifying requests from Slack").
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const NOW: i64 = 1_531_420_618;
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";

    fn secret() -> SecretString {
        SecretString::from(SECRET)
    }

    fn sign(ts: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(format!("v0:{ts}:").as_bytes());
        mac.update(body);
        format!("v0={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn accepts_slacks_published_example() {
        assert_eq!(sign(TS, BODY.as_bytes()), SIGNATURE);
        assert_eq!(
            verify(&secret(), TS, SIGNATURE, BODY.as_bytes(), NOW),
            Ok(())
        );
        assert_eq!(
            verify(&secret(), TS, SIGNATURE, BODY.as_bytes(), NOW + MAX_SKEW),
            Ok(())
        );
        let upper = format!("v0={}", SIGNATURE[3..].to_uppercase());
        assert_eq!(verify(&secret(), TS, &upper, BODY.as_bytes(), NOW), Ok(()));
    }

    #[test]
    fn rejects_tampering_replays_and_malformed_headers() {
        let body = BODY.as_bytes();
        let tampered = BODY.replace("text=", "text=promote+web+to+prod");
        let later = (NOW + 3600).to_string();
        // (case, secret, timestamp, signature, body, now, error)
        type Case<'a> = (
            &'a str,
            SecretString,
            &'a str,
            String,
            &'a [u8],
            i64,
            AuthError,
        );
        let cases: Vec<Case<'_>> = vec![
            (
                "tampered body",
                secret(),
                TS,
                SIGNATURE.into(),
                tampered.as_bytes(),
                NOW,
                AuthError::BadSignature,
            ),
            (
                "wrong secret",
                SecretString::from("x"),
                TS,
                SIGNATURE.into(),
                body,
                NOW,
                AuthError::BadSignature,
            ),
            (
                "empty secret",
                SecretString::from(""),
                TS,
                SIGNATURE.into(),
                body,
                NOW,
                AuthError::NotConfigured,
            ),
            (
                "six minutes late",
                secret(),
                TS,
                SIGNATURE.into(),
                body,
                NOW + 360,
                AuthError::StaleTimestamp { skew: 360 },
            ),
            (
                "from the future",
                secret(),
                TS,
                SIGNATURE.into(),
                body,
                NOW - 301,
                AuthError::StaleTimestamp { skew: -301 },
            ),
            // A captured body and signature replayed later with a fresh timestamp.
            (
                "replayed with a new timestamp",
                secret(),
                &later,
                SIGNATURE.into(),
                body,
                NOW + 3600,
                AuthError::BadSignature,
            ),
            (
                "missing timestamp",
                secret(),
                "",
                SIGNATURE.into(),
                body,
                NOW,
                AuthError::MalformedTimestamp,
            ),
            (
                "signed timestamp",
                secret(),
                "+1531420618",
                SIGNATURE.into(),
                body,
                NOW,
                AuthError::MalformedTimestamp,
            ),
            (
                "timestamp with space",
                secret(),
                " 1531420618",
                SIGNATURE.into(),
                body,
                NOW,
                AuthError::MalformedTimestamp,
            ),
            (
                "huge timestamp",
                secret(),
                "99999999999999999999",
                SIGNATURE.into(),
                body,
                NOW,
                AuthError::MalformedTimestamp,
            ),
            (
                "missing signature",
                secret(),
                TS,
                String::new(),
                body,
                NOW,
                AuthError::MalformedSignature,
            ),
            (
                "other version",
                secret(),
                TS,
                SIGNATURE.replace("v0=", "v1="),
                body,
                NOW,
                AuthError::MalformedSignature,
            ),
            (
                "short signature",
                secret(),
                TS,
                SIGNATURE[..40].into(),
                body,
                NOW,
                AuthError::MalformedSignature,
            ),
            (
                "not hex",
                secret(),
                TS,
                SIGNATURE.replace('a', "g"),
                body,
                NOW,
                AuthError::MalformedSignature,
            ),
        ];
        for (name, secret, ts, signature, body, now, expected) in cases {
            assert_eq!(
                verify(&secret, ts, &signature, body, now),
                Err(expected),
                "{name}"
            );
        }
        // Re-signing with the new timestamp needs the secret: then it is Slack's own request.
        let fresh = sign(&later, body);
        assert_eq!(verify(&secret(), &later, &fresh, body, NOW + 3600), Ok(()));
    }

    #[test]
    fn decodes_the_published_form() {
        let command = parse_form(BODY.as_bytes()).unwrap();
        assert_eq!(
            command,
            SlashCommand {
                team_id: "T1DC2JH3J".into(),
                team_domain: "testteamnow".into(),
                channel_id: "G8PSS9T3V".into(),
                channel_name: "foobar".into(),
                user_id: "U2CERLKJA".into(),
                user_name: "roadrunner".into(),
                command: "/webhook-collect".into(),
                text: String::new(),
                response_url: "https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN".into(),
                trigger_id: "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c".into(),
            }
        );
        let with_text = BODY.replace(
            "text=",
            "text=promote+maths-api+to+qa+because+%3C%21here%3E+%26",
        );
        assert_eq!(
            parse_form(with_text.as_bytes()).unwrap().text,
            "promote maths-api to qa because <!here> &"
        );
    }

    #[test]
    fn form_errors() {
        assert_eq!(
            parse_form(b"ssl_check=1&token=abc"),
            Err(FormError::SslCheck)
        );
        assert!(is_ssl_check(b"token=abc&ssl_check=1"));
        assert!(!is_ssl_check(BODY.as_bytes()));
        assert_eq!(
            parse_form(b"team_id=T&channel_id=C&command=%2Fp&response_url=https%3A%2F%2Fx"),
            Err(FormError::Missing { field: "user_id" })
        );
        let twice = format!("{BODY}&user_id=U0ADMIN");
        assert_eq!(
            parse_form(twice.as_bytes()),
            Err(FormError::Duplicate { field: "user_id" })
        );
    }

    #[test]
    fn reply_json() {
        assert_eq!(
            ephemeral("hi \"there\""),
            serde_json::json!({"response_type": "ephemeral", "text": "hi \"there\""})
        );
        assert_eq!(in_channel("x")["response_type"], "in_channel");
    }
}
