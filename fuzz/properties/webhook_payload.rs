//! Property of GitLab webhook payload parsing, `promoter::server::webhook::parse_delivery` (what
//! the `POST /webhooks/gitlab` handler runs on an authenticated body), shared by the
//! `webhook_payload` fuzz target and `tests/it/fuzz_regressions.rs`.
//!
//! Input: the first line is the `X-Gitlab-Event` header, the rest is the body. Parsing never
//! panics; a refusal says whether the JSON or its shape was wrong; an outcome depends on the
//! JSON data only (the same data written compactly is refused too, or gives the same outcome);
//! a trigger carries the event it came from, a comment is a `note`, other events are ignored.

use promoter::daemon::Trigger;
use promoter::server::webhook::{Outcome, parse_delivery};

/// The events promoter reads; any other is ignored.
const HANDLED: [&str; 4] = [
    "Merge Request Hook",
    "Pipeline Hook",
    "Push Hook",
    "Note Hook",
];

/// Panics when parsing the delivery in `data` breaks the property.
pub fn check(data: &[u8]) {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(newline) => (&data[..newline], &data[newline + 1..]),
        None => (data, &[][..]),
    };
    let event = String::from_utf8_lossy(header);
    let event = event.as_ref();
    let outcome = parse_delivery(event, body, "main");
    let data: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    match &outcome {
        Err(message) => {
            let expected = match data {
                None => "malformed JSON: ".to_string(),
                Some(_) => format!("invalid {event} payload"),
            };
            assert!(
                message.starts_with(&expected),
                "{message:?} should start with {expected:?}"
            );
        }
        Ok(Outcome::Trigger(Trigger::Webhook { event: from, .. })) => {
            assert_eq!(from, event, "the trigger names another event");
        }
        Ok(Outcome::Trigger(other)) => panic!("a webhook queued {other:?}"),
        Ok(Outcome::ChatOps(note)) => {
            assert_eq!(event, "Note Hook");
            assert!(note.object_kind.is_empty() || note.object_kind == "note");
        }
        Ok(Outcome::Ignored(why)) => assert!(!why.is_empty()),
    }
    if let Some(data) = data {
        if !HANDLED.contains(&event) {
            assert!(
                matches!(outcome, Ok(Outcome::Ignored(_))),
                "{event:?} is not handled"
            );
        }
        // Refusals are compared by kind only: they quote the offending value, and serde_json
        // does not read every long float back to the same bits (2.2222222222222222e23).
        let compact = serde_json::to_vec(&data).expect("JSON values serialize");
        let again = parse_delivery(event, &compact, "main");
        match (&again, &outcome) {
            (Err(_), Err(_)) => {}
            _ => assert_eq!(
                format!("{again:?}"),
                format!("{outcome:?}"),
                "the same data written otherwise gives another outcome"
            ),
        }
    }
}
