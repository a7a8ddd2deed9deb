//! Each format's payload for an [`Announcement`]: one line of fixed words, names and reasons
//! (escaped for the format: text from people never links, mentions or formats) and the merge
//! request's link. Pure.
//!
//! - Slack incoming webhook: `{"text": …}` in mrkdwn, the link as `<url|merge request>`,
//!   people's text through [`chat::slack`].
//! - Mattermost incoming webhook: `{"text": …, "channel": …}` in Markdown, the link as
//!   `[merge request](url)`, people's text through [`markdown::inline`].
//! - Microsoft Teams workflow ("When a Teams webhook request is received"): a `message` with
//!   one Adaptive Card attachment; the line is a `RichTextBlock` of `TextRun`s, which read no
//!   Markdown (people's text through [`chat::plain`]), the link an `Action.OpenUrl`.
//!
//! A link is made only of a plain `http(s)` URL without spaces, quotes or brackets; any other
//! is shown as escaped text.

use serde_json::{Value, json};

use super::{Announcement, Event, Kind};
use crate::text::{chat, markdown};

/// The words of a line: fixed (ours), or text from people and names (escaped by the format).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Fixed(&'static str),
    People(String),
}

/// The line before its link, as pieces.
fn pieces(a: &Announcement) -> Vec<Piece> {
    use Piece::{Fixed, People};
    let mut out = Vec::new();
    let what = |out: &mut Vec<Piece>| match &a.service {
        Some(service) => {
            out.push(People(service.clone()));
            if let Some(tag) = &a.tag {
                out.push(Fixed(" "));
                out.push(People(tag.clone()));
            }
        }
        None => out.push(Fixed("the release train")),
    };
    let env = People(a.env.clone());
    match a.event {
        Event::Opened | Event::Updated | Event::Closed | Event::Blocked => {
            out.push(Fixed(match a.event {
                Event::Opened => "📦 Promotion opened: ",
                Event::Updated => "🔄 Promotion updated: ",
                Event::Closed => "🗑️ Promotion closed, no longer due: ",
                _ => "⛔ Promotion blocked: ",
            }));
            what(&mut out);
            out.push(Fixed(" → "));
            out.push(env);
        }
        Event::Merged => {
            out.push(Fixed("✅ Promoted: "));
            what(&mut out);
            out.push(Fixed(" → "));
            out.push(env);
        }
        Event::Rollback => {
            out.push(Fixed("⏪ Rollback opened: "));
            what(&mut out);
            out.push(Fixed(" in "));
            out.push(env);
        }
        Event::FreezeStarted => {
            out.push(Fixed("🧊 Promotions into "));
            out.push(env);
            out.push(Fixed(" are frozen"));
        }
        Event::FreezeEnded => {
            out.push(Fixed("🌤️ Promotions into "));
            out.push(env);
            out.push(Fixed(" are no longer frozen"));
        }
    }
    if let Some(reason) = &a.reason {
        out.push(Fixed(": "));
        out.push(People(reason.clone()));
    }
    out
}

/// `url` when it can stand in a link in every format: http(s), and none of the characters
/// that end or break a link (whitespace, controls, quotes, brackets, `|`, `\`, backtick).
pub fn link_url(url: &str) -> Option<&str> {
    let plain = (url.starts_with("https://") || url.starts_with("http://"))
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[]{}`\\|\"'".contains(c));
    plain.then_some(url)
}

/// The line in one format's text (Slack mrkdwn, Markdown or plain), link included.
pub fn line(kind: Kind, a: &Announcement) -> String {
    let escape = |text: &str| match kind {
        Kind::Slack => chat::slack(text),
        Kind::Mattermost => markdown::inline(text),
        Kind::Teams => chat::plain(text),
    };
    let mut out: String = pieces(a)
        .iter()
        .map(|p| match p {
            Piece::Fixed(text) => (*text).to_string(),
            Piece::People(text) => escape(text),
        })
        .collect();
    if let Some(url) = &a.url {
        out.push_str(" — ");
        out.push_str(&match (kind, link_url(url)) {
            (Kind::Slack, Some(url)) => format!("<{url}|merge request>"),
            (Kind::Mattermost, Some(url)) => format!("[merge request]({url})"),
            (Kind::Teams, Some(_)) => "merge request".to_string(),
            (_, None) => escape(url),
        });
    }
    out
}

/// The JSON body to POST for `a` to a webhook of `kind` (`channel` only for Mattermost).
pub fn payload(kind: Kind, a: &Announcement, channel: Option<&str>) -> Value {
    match kind {
        Kind::Slack => json!({ "text": line(kind, a) }),
        Kind::Mattermost => {
            let mut body = json!({ "text": line(kind, a) });
            if let Some(channel) = channel {
                body["channel"] = json!(channel);
            }
            body
        }
        Kind::Teams => teams(a),
    }
}

/// A Teams workflow message: one Adaptive Card whose text runs read no Markdown.
fn teams(a: &Announcement) -> Value {
    let url = a.url.as_deref().and_then(link_url);
    let mut inlines = vec![
        json!({ "type": "TextRun", "text": line(Kind::Teams, &Announcement { url: None, ..a.clone() }) }),
    ];
    if let Some(url) = url {
        inlines.push(json!({ "type": "TextRun", "text": " — " }));
        inlines.push(json!({
            "type": "TextRun",
            "text": "merge request",
            "selectAction": { "type": "Action.OpenUrl", "url": url },
        }));
    }
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [{ "type": "RichTextBlock", "inlines": inlines }],
    });
    if let Some(url) = url {
        card["actions"] =
            json!([{ "type": "Action.OpenUrl", "title": "Open the merge request", "url": url }]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const URL: &str = "https://gitlab.example.com/acme/calculator/-/merge_requests/7";

    fn opened(service: &str, tag: &str, reason: Option<&str>) -> Announcement {
        Announcement {
            event: Event::Opened,
            env: "qa".into(),
            service: Some(service.into()),
            tag: Some(tag.into()),
            reason: reason.map(Into::into),
            url: Some(URL.into()),
        }
    }

    #[test]
    fn each_format_carries_the_line_and_the_link() {
        let a = opened("maths-api", "1.4.0", None);
        assert_eq!(
            payload(Kind::Slack, &a, None),
            json!({ "text": format!("📦 Promotion opened: maths-api 1.4.0 → qa — <{URL}|merge request>") })
        );
        assert_eq!(
            payload(Kind::Mattermost, &a, Some("releases")),
            json!({ "text": format!("📦 Promotion opened: maths-api 1.4.0 → qa — [merge request]({URL})"), "channel": "releases" })
        );
        let teams = payload(Kind::Teams, &a, None);
        assert_eq!(teams["type"], "message");
        let attachment = &teams["attachments"][0];
        assert_eq!(
            attachment["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(attachment["content"]["type"], "AdaptiveCard");
        assert_eq!(attachment["content"]["actions"][0]["url"], URL);
        let inlines = &attachment["content"]["body"][0]["inlines"];
        assert_eq!(
            inlines[0]["text"],
            "📦 Promotion opened: maths-api 1.4.0 → qa"
        );
        assert_eq!(inlines[2]["selectAction"]["url"], URL);
    }

    #[test]
    fn a_url_that_could_break_out_is_text_not_a_link() {
        let mut a = opened("x", "1", None);
        a.url = Some("https://e.example/a|<!channel>".into());
        let slack = line(Kind::Slack, &a);
        assert!(
            !slack.contains("|merge request>") && !slack.contains("<!channel>"),
            "{slack}"
        );
        a.url = Some("javascript:alert(1)".into());
        assert!(!line(Kind::Mattermost, &a).contains("]("));
        assert!(payload(Kind::Teams, &a, None)["attachments"][0]["content"]["actions"].is_null());
    }

    /// True when `text` holds `pattern` only right after a backslash (Markdown's escape).
    fn only_escaped(text: &str, pattern: char) -> bool {
        text.match_indices(pattern)
            .all(|(i, _)| text[..i].ends_with('\\'))
    }

    const HOSTILE: &str = "(<!channel>|<!here>|<@U123>|@here|@channel|@all|\\[x\\]\\(http://evil\\)|<http://evil\\|x>| www\\.evil\\.x|<at>x</at>|[a-z&*_~`]| |\n){0,10}";

    proptest! {
        #[test]
        fn nothing_a_person_writes_makes_a_link_or_a_mention(
            service in HOSTILE, tag in HOSTILE, reason in HOSTILE
        ) {
            let a = opened(&service, &tag, Some(&reason));
            let slack = line(Kind::Slack, &a);
            let ours = format!("<{URL}|merge request>");
            let people = slack.replace(&ours, "");
            prop_assert!(!people.contains('<') && !people.contains('>'), "{}", slack);
            prop_assert!(slack.ends_with(&ours));
            let markdown = line(Kind::Mattermost, &a);
            let people = markdown.replace(&format!("[merge request]({URL})"), "");
            for c in ['[', ']', '<', '>'] {
                prop_assert!(only_escaped(&people, c), "{:?} in {}", c, markdown);
            }
            let teams = payload(Kind::Teams, &a, None);
            let run = teams["attachments"][0]["content"]["body"][0]["inlines"][0]["text"].as_str().unwrap().to_string();
            for text in [&slack, &markdown, &run] {
                let lower = text.to_lowercase();
                for forbidden in ["@here", "@channel", "@all", "http://evil", "www.evil"] {
                    prop_assert!(!lower.contains(forbidden), "{} in {}", forbidden, text);
                }
                prop_assert!(!text.contains('\n'));
            }
        }
    }
}
