//! GitLab Flavored Markdown (and Mattermost's Markdown) that means only itself: the one place
//! that escapes text from people (reasons, requester and channel names, chat words, MR titles,
//! commit subjects and authors, hold and freeze reasons) for merge request descriptions and
//! notes, the dashboard issue and chat replies.
//!
//! - [`inline`]: text on one line where every construct is inert: ASCII punctuation that can
//!   format, link, embed an image, open HTML or a comment, or make a GitLab reference
//!   (`#1`, `!1`, `~label`, `%milestone`, `$snippet`, `&epic`, `^alert`) is backslash-escaped
//!   (GitLab honours escaped references since 14.0; `:emoji:` is left alone: GitLab renders it
//!   after escapes are gone, and a picture notifies no one); every `@` is followed by
//!   a zero-width space, so no `@user`, `@group`, `@all` or `@here` notifies anyone in GitLab or
//!   Mattermost, escaped or not; `://` and `www.` get a zero-width space so nothing autolinks; a
//!   leading `/` is escaped, and since line breaks become spaces, the text never begins a line
//!   after the first, so it cannot hold a quick action (GitLab runs `/merge` only at the start
//!   of a line). Safe in a table cell too: `|` is escaped.
//! - [`code`]: a code span when the text can sit in one, else [`inline`]; [`plain_code`]: a
//!   code span only for a plain tag.
//! - [`literal`]: names, tags and paths that templates may put inside or outside backticks:
//!   characters inert in both places are kept, any other becomes `�`.
//! - [`one_line`]: line breaks and control characters as spaces, bidi overrides dropped.
//!
//! Pure.

/// The zero-width space put after every `@` (and before `://`, after `www`) so that no
/// mention, e-mail address or autolink forms.
pub const ZWSP: char = '\u{200B}';

/// The character standing in for one [`literal`] cannot show.
pub const REPLACEMENT: char = '\u{FFFD}';

/// ASCII punctuation that formats, links, opens HTML, starts code, splits a table cell or
/// makes a GitLab reference, emoji or math: always backslash-escaped.
const ESCAPED: &[char] = &[
    '\\', '`', '*', '_', '{', '}', '[', ']', '<', '>', '#', '!', '|', '~', '$', '&', '%', '^',
];

/// Bidirectional overrides and isolates, which make text read differently from what it says.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// True for every character some reader takes for a line break: LF, CR, VT, FF, NEL and the
/// Unicode line and paragraph separators.
pub fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// `text` on one line: line breaks and other control characters as spaces, bidirectional
/// overrides dropped.
pub fn one_line(text: &str) -> String {
    text.chars()
        .filter(|c| !is_bidi_control(*c))
        .map(|c| {
            if c.is_control() || is_line_break(c) {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// `text` as inline Markdown that shows exactly its characters and does nothing else (see the
/// module documentation). Also a safe table cell.
pub fn inline(text: &str) -> String {
    let chars: Vec<char> = one_line(text).chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        let next = |n: usize| chars.get(i + n).copied();
        match c {
            '@' => {
                out.push('@');
                out.push(ZWSP);
            }
            ':' if next(1) == Some('/') && next(2) == Some('/') => {
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
            // At the start: what would begin a list, a setext underline or a quick action
            // should a template put the text at the start of a line.
            c if ESCAPED.contains(&c) || (i == 0 && matches!(c, '-' | '+' | '=' | '/')) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A table cell: [`inline`] text, which already escapes `|` and has no line breaks.
pub fn table_cell(text: &str) -> String {
    inline(text.trim())
}

/// `text` as a code span (its characters shown verbatim in code style), or as [`inline`] text
/// when a span cannot hold it (a backtick would close it; a `|` would split a table cell, as
/// GitLab splits cells before it sees code spans). Empty text stays empty.
pub fn code(text: &str) -> String {
    let text = one_line(text);
    if text.trim().is_empty() {
        return String::new();
    }
    if text.contains('`') || text.contains('|') {
        return inline(&text);
    }
    format!("`{text}`")
}

/// A tag as a code span when every character is `A-Z a-z 0-9 . _ + -` (a plain tag), else
/// [`inline`] text: for tags shown where a span must never hold anything else.
pub fn plain_code(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
    if plain {
        format!("`{text}`")
    } else {
        inline(text)
    }
}

/// True for the characters [`literal`] keeps: inert inside a code span and outside one alike.
fn is_literal(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+' | '/' | ':' | ',' | '=' | ' ')
}

/// A name, tag, digest or path that a template may show inside backticks or outside them:
/// every character outside `A-Z a-z 0-9 . - _ + / : , =` and space becomes `�` (no escape
/// works in both places). Names and tags that promoter accepts never contain one.
pub fn literal(text: &str) -> String {
    let text: String = text
        .chars()
        .map(|c| if is_literal(c) { c } else { REPLACEMENT })
        .collect();
    // `://` would autolink outside a code span.
    text.replace("://", ":\u{FFFD}//")
}

/// A zero-width space after `@`: after every one, or with `only_groups` only before the words
/// that notify a whole channel (`here`, `channel`, `everyone`, `all`), for text that must stay
/// usable (a command to copy inside a code span).
pub fn defuse_mentions(text: &str, only_groups: bool) -> String {
    const GROUPS: [&str; 4] = ["here", "channel", "everyone", "all"];
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        out.push(c);
        if c != '@' {
            continue;
        }
        let rest = &text[i + 1..];
        let group = GROUPS.iter().any(|g| {
            rest.get(..g.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(g))
        });
        if !only_groups || group {
            out.push(ZWSP);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Whether the character at byte `i` of `text` is backslash-escaped.
    fn escaped_at(text: &str, i: usize) -> bool {
        let backslashes = text[..i].chars().rev().take_while(|c| *c == '\\').count();
        backslashes % 2 == 1
    }

    /// Every `c` in `text` is escaped.
    fn all_escaped(text: &str, c: char) -> bool {
        text.match_indices(c).all(|(i, _)| escaped_at(text, i))
    }

    /// Every `@` is followed by a zero-width space.
    fn mentions_defused(text: &str) -> bool {
        text.match_indices('@')
            .all(|(i, _)| text[i + 1..].starts_with(ZWSP))
    }

    #[test]
    fn each_construct_is_inert() {
        // (input, escaped)
        let z = ZWSP;
        let table = [
            ("@all", format!("@{z}all")),
            (
                "@here @channel @group/sub",
                format!("@{z}here @{z}channel @{z}group/sub"),
            ),
            ("a@b.example", format!("a@{z}b.example")),
            (
                "#12 !3 ~bug %v1 $4 &5 ^6",
                "\\#12 \\!3 \\~bug \\%v1 \\$4 \\&5 \\^6".to_string(),
            ),
            ("<!-- hidden", "\\<\\!-- hidden".to_string()),
            ("<img src=x>", "\\<img src=x\\>".to_string()),
            (
                "![x](https://evil.example/a.png)",
                format!("\\!\\[x\\](https{z}://evil.example/a.png)"),
            ),
            (
                "[click](javascript:alert(1))",
                "\\[click\\](javascript:alert(1))".to_string(),
            ),
            ("see www.evil.example", format!("see www{z}.evil.example")),
            (
                "<https://evil.example>",
                format!("\\<https{z}://evil.example\\>"),
            ),
            ("/merge", "\\/merge".to_string()),
            ("ok\n/merge\r\n/close", "ok /merge  /close".to_string()),
            ("a\u{2028}b\u{2029}c\u{85}d", "a b c d".to_string()),
            (
                "**b** _i_ `c` ~~s~~",
                "\\*\\*b\\*\\* \\_i\\_ \\`c\\` \\~\\~s\\~\\~".to_string(),
            ),
            ("a|b", "a\\|b".to_string()),
            (":smile: back\\slash", ":smile: back\\\\slash".to_string()),
            ("\"quoted\" 'x'", "\"quoted\" 'x'".to_string()),
            (
                "{+ added +} $`x`$",
                "\\{+ added +\\} \\$\\`x\\`\\$".to_string(),
            ),
            ("- item", "\\- item".to_string()),
            ("evil\u{202E}txt", "eviltxt".to_string()),
            ("fix INC-42 (prod)", "fix INC-42 (prod)".to_string()),
        ];
        for (input, escaped) in table {
            assert_eq!(inline(input), escaped, "{input:?}");
        }
    }

    #[test]
    fn code_spans_and_literals() {
        assert_eq!(code("1.3.0"), "`1.3.0`");
        assert_eq!(code("<env|all>"), "\\<env\\|all\\>");
        assert_eq!(code("a`b"), "a\\`b");
        assert_eq!(code("@promoter help"), "`@promoter help`");
        assert_eq!(code(" "), "");
        assert_eq!(literal("1.3.0-rc.1+b5"), "1.3.0-rc.1+b5");
        assert_eq!(literal("sha256:abc"), "sha256:abc");
        assert_eq!(
            literal("clusters/qa/api/values.yaml"),
            "clusters/qa/api/values.yaml"
        );
        assert_eq!(
            literal("1.0`<img>@all"),
            "1.0\u{FFFD}\u{FFFD}img\u{FFFD}\u{FFFD}all"
        );
        assert_eq!(literal("https://x"), "https:\u{FFFD}//x");
    }

    #[test]
    fn mentions_in_code_can_stay_usable() {
        assert_eq!(
            defuse_mentions("@promoter @ALL", true),
            "@promoter @\u{200B}ALL"
        );
        assert_eq!(defuse_mentions("@promoter", false), "@\u{200B}promoter");
    }

    proptest! {
        #[test]
        fn escaped_text_is_inert(text in "\\PC{0,40}|[@<>/!\\[\\]()\\n\\u{2028}a-z:#\\\\ ]{0,40}") {
            let out = inline(&text);
            prop_assert!(!out.contains('\n') && !out.contains('\r'), "{out:?}");
            prop_assert!(!out.chars().any(is_line_break), "{out:?}");
            prop_assert!(all_escaped(&out, '<'), "unescaped < in {out:?}");
            prop_assert!(all_escaped(&out, '['), "unescaped [ in {out:?}");
            prop_assert!(all_escaped(&out, '|'), "unescaped | in {out:?}");
            prop_assert!(mentions_defused(&out), "live mention in {out:?}");
            prop_assert!(!out.starts_with('/'), "quick action in {out:?}");
            prop_assert!(
                out.match_indices("://").all(|(i, _)| out[..i].ends_with(ZWSP)),
                "autolink in {out:?}"
            );
            // In a longer text after a line break, still no quick action.
            let note = format!("Requested by x: {out}\n\n| gate |");
            prop_assert!(note.lines().all(|l| !l.starts_with('/')));
        }
    }
}
