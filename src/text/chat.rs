//! Text from people made inert for the chat formats that announcements are posted in (see
//! `crate::announce`): each format has its own rules, so each has its own function here.
//! Mattermost reads Markdown and uses [`super::markdown::inline`].
//!
//! - [`slack`]: Slack's `mrkdwn` (the `text` of an incoming webhook). Slack parses `&`, `<`
//!   and `>` as control characters (`<!channel>`, `<@U123>`, `<https://x|text>`) and documents
//!   that they are to be written as `&amp;`, `&lt;` and `&gt;` when they mean themselves; with
//!   them escaped no mention, channel link or link can form. mrkdwn has no escape for `*`, `_`,
//!   `~` and `` ` ``: emphasis can still show, but it neither links nor notifies. A bare URL
//!   would be linked by Slack: `://` and `www.` get a zero-width space, as `@` does (so
//!   `@here` is no mention even where `link_names` is on).
//! - [`plain`]: text shown as-is (a Teams Adaptive Card `TextRun`, which reads no Markdown and
//!   makes no `<at>` mention without an entity): on one line, with the same zero-width spaces so
//!   the client does not autolink a URL.
//!
//! Pure.

use super::markdown::{ZWSP, one_line};

/// `text` for Slack `mrkdwn`: one line, `&`, `<`, `>` as entities, and zero-width spaces
/// after `@` and inside `://` and `www.` (see the module documentation).
pub fn slack(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in defuse_links(&one_line(text)).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` for a surface that shows text as-is: one line, with zero-width spaces after `@` and
/// inside `://` and `www.`.
pub fn plain(text: &str) -> String {
    defuse_links(&one_line(text))
}

/// Zero-width spaces after every `@`, before `://` and after a `www` that starts a word.
fn defuse_links(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '@' => {
                out.push('@');
                out.push(ZWSP);
            }
            ':' if chars.get(i + 1) == Some(&'/') && chars.get(i + 2) == Some(&'/') => {
                out.push(ZWSP);
                out.push(':');
            }
            '.' if i >= 3
                && chars[i - 3..i].iter().all(|w| w.eq_ignore_ascii_case(&'w'))
                && (i == 3 || !chars[i - 4].is_alphanumeric()) =>
            {
                out.push(ZWSP);
                out.push('.');
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What would notify or link, in any of the formats, were it to survive escaping.
    fn assert_inert(out: &str) {
        for forbidden in [
            "<",
            ">",
            "@here",
            "@channel",
            "@everyone",
            "@all",
            "http://",
            "www.",
        ] {
            assert!(
                !out.to_lowercase().contains(forbidden),
                "{forbidden:?} in {out:?}"
            );
        }
        assert!(!out.contains('\n') && !out.contains('\r'), "{out:?}");
    }

    #[test]
    fn slack_control_sequences_are_entities() {
        assert_eq!(slack("a & b < c > d"), "a &amp; b &lt; c &gt; d");
        let out = slack("<!channel> <@U123> <https://evil.example|click> @here");
        assert_inert(&out);
        assert!(
            out.starts_with("&lt;!channel&gt; &lt;@\u{200B}U123&gt;"),
            "{out}"
        );
    }

    #[test]
    fn plain_text_keeps_its_characters_but_links_nothing() {
        let out = plain("[x](http://evil) @here www.evil.example\nnext");
        assert_inert(&out);
        assert_eq!(
            out.replace(ZWSP, ""),
            "[x](http://evil) @here www.evil.example next"
        );
    }

    proptest! {
        #[test]
        fn nothing_a_person_writes_mentions_or_links_in_slack(
            text in "(<!channel>|<@U123>|@here|@channel|<!here>|\\[x\\]\\(http://evil\\)|<http://e\\|x>| www\\.e\\.x|&|<|>|[a-z ]|\n){0,12}"
        ) {
            let out = slack(&text);
            assert_inert(&out);
            // Slack reads the entities back as the characters people wrote.
            let back = out.replace(ZWSP, "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
            prop_assert_eq!(back, text.replace('\n', " "));
        }

        #[test]
        fn nothing_a_person_writes_mentions_or_links_as_plain_text(
            text in "(<at>x</at>|@here|\\[x\\]\\(http://evil\\)| www\\.e\\.x|[a-z <>]|\n){0,12}"
        ) {
            let out = plain(&text);
            for forbidden in ["@here", "http://", "www."] {
                prop_assert!(!out.contains(forbidden), "{} in {:?}", forbidden, out);
            }
            prop_assert_eq!(out.replace(ZWSP, ""), text.replace('\n', " "));
        }
    }
}
