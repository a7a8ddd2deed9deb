//! Reply texts for each chat flavour, rendered with handlebars from templates embedded in the
//! binary (`templates/slack/*.hbs` for Slack mrkdwn, `templates/markdown/*.hbs` for Mattermost
//! and GitLab Markdown). Strict mode: a template that names a missing field is an error.
//!
//! Every `{{value}}` goes through the flavour's escaping ([`escape`]), so user-controlled text
//! (reasons, names, the words of a bad command) can neither format, link nor mention: Slack gets
//! `&`, `<`, `>` as entities, Markdown gets the shared escaping of
//! [`crate::text::markdown::inline`], and every `@` is followed by a zero-width space so
//! `@here`, `@channel`, `@all` and `@user` notify no one.
//! Two helpers write their own escaped output: `{{code x}}` (a code span, or plain escaped text
//! when `x` cannot sit in one) and `{{link url text}}` (an http(s) link, or the text alone).
//! Templates never start a line with a value, so user text cannot begin a heading, a list or a
//! GitLab quick action. Pure.

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, RenderContext, RenderError,
    RenderErrorReason,
};
use serde::Serialize;

use super::command::{ParseError, Verb};
use crate::text::markdown;

/// The longest reply, in characters (Mattermost posts hold 16,383).
pub const MAX_REPLY: usize = 12_000;

const TEMPLATES: [&str; 5] = ["help", "accepted", "refused", "parse_error", "status"];

const SLACK: [&str; 5] = [
    include_str!("templates/slack/help.hbs"),
    include_str!("templates/slack/accepted.hbs"),
    include_str!("templates/slack/refused.hbs"),
    include_str!("templates/slack/parse_error.hbs"),
    include_str!("templates/slack/status.hbs"),
];

const MARKDOWN: [&str; 5] = [
    include_str!("templates/markdown/help.hbs"),
    include_str!("templates/markdown/accepted.hbs"),
    include_str!("templates/markdown/refused.hbs"),
    include_str!("templates/markdown/parse_error.hbs"),
    include_str!("templates/markdown/status.hbs"),
];

/// The answer to a command that would wait behind too many others for a reconcile.
pub const BUSY: &str = "promoter is busy: too many commands are already waiting for a reconcile. Try again in a few minutes.";

/// Where a reply is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// Slack mrkdwn.
    Slack,
    /// Mattermost Markdown.
    Mattermost,
    /// GitLab Flavored Markdown (merge request notes).
    GitLab,
}

/// The two syntaxes the flavours come down to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    Slack,
    Markdown,
}

impl Flavor {
    fn syntax(self) -> Syntax {
        match self {
            Flavor::Slack => Syntax::Slack,
            Flavor::Mattermost | Flavor::GitLab => Syntax::Markdown,
        }
    }
}

/// Template problems.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A template does not parse.
    #[error("reply template {name}: {message}")]
    Template {
        /// The template.
        name: String,
        /// The parser's complaint.
        message: String,
    },
    /// Rendering failed (a missing field in strict mode).
    #[error("rendering reply {name}: {message}")]
    Render {
        /// The template.
        name: String,
        /// The renderer's complaint.
        message: String,
    },
}

/// The help text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Help {
    /// How commands start in this chat: `/promoter` (the slash command's `command`) or
    /// `@promoter` in GitLab.
    pub invocation: String,
    /// Only this command.
    pub topic: Option<Verb>,
}

/// What an accepted request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A promotion.
    Promotion,
    /// A rollback.
    Rollback,
}

/// A promotion or rollback that now has a merge request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Promotion or rollback.
    pub action: Action,
    /// The service.
    pub service: String,
    /// The target environment.
    pub env: String,
    /// The tag the environment runs now, when known.
    pub from_tag: Option<String>,
    /// The tag it will run.
    pub to_tag: String,
    /// The merge request's web URL.
    pub mr_url: String,
    /// The merge request's iid, for the link text (`!42`).
    pub mr_iid: Option<u64>,
    /// Who asked (a display name).
    pub requested_by: String,
    /// Why, as given.
    pub reason: Option<String>,
}

/// A request that a rule or policy refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// What was asked, such as `promote maths-api to prod`.
    pub what: String,
    /// The rule or policy that refused, such as `freeze "xmas"` or `policy prod.yaml`.
    pub rule: String,
    /// Why, in a sentence.
    pub message: String,
}

/// A line that did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFailure {
    /// How commands start in this chat (see [`Help::invocation`]).
    pub invocation: String,
    /// The error.
    pub error: ParseError,
}

/// Tags per service and environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// The column headings, in promotion order.
    pub environments: Vec<String>,
    /// One row per service.
    pub rows: Vec<StatusRow>,
}

/// One service's tags, one per [`Status::environments`] entry (`None`: not deployed there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRow {
    /// The service.
    pub service: String,
    /// The tags.
    pub tags: Vec<Option<String>>,
}

/// The loaded templates, one registry per syntax.
#[derive(Debug)]
pub struct Replies {
    slack: Handlebars<'static>,
    markdown: Handlebars<'static>,
}

impl Replies {
    /// The built-in templates.
    pub fn new() -> Result<Self, Error> {
        Ok(Self {
            slack: registry(Syntax::Slack, &SLACK)?,
            markdown: registry(Syntax::Markdown, &MARKDOWN)?,
        })
    }

    fn render(&self, flavor: Flavor, name: &str, data: &impl Serialize) -> Result<String, Error> {
        let registry = match flavor.syntax() {
            Syntax::Slack => &self.slack,
            Syntax::Markdown => &self.markdown,
        };
        let text = registry.render(name, data).map_err(|e| Error::Render {
            name: name.to_string(),
            message: e.to_string(),
        })?;
        Ok(crate::promotion::describe::truncate(
            text.trim_end(),
            MAX_REPLY,
        ))
    }

    /// The list of commands, or one command's usage.
    pub fn help(&self, flavor: Flavor, help: &Help) -> Result<String, Error> {
        #[derive(Serialize)]
        struct Line {
            usage: String,
            summary: &'static str,
        }
        #[derive(Serialize)]
        struct Data {
            single: bool,
            commands: Vec<Line>,
        }
        let verbs = match help.topic {
            Some(verb) => vec![verb],
            None => Verb::ALL.to_vec(),
        };
        let commands = verbs
            .into_iter()
            .map(|verb| Line {
                usage: format!("{} {}", help.invocation, verb.usage()),
                summary: verb.summary(),
            })
            .collect();
        let data = Data {
            single: help.topic.is_some(),
            commands,
        };
        self.render(flavor, "help", &data)
    }

    /// A promotion or rollback that has a merge request.
    pub fn accepted(&self, flavor: Flavor, accepted: &Accepted) -> Result<String, Error> {
        #[derive(Serialize)]
        struct Data<'a> {
            rollback: bool,
            service: &'a str,
            env: &'a str,
            from_tag: Option<&'a str>,
            to_tag: &'a str,
            mr_url: &'a str,
            mr_text: String,
            requested_by: &'a str,
            reason: Option<&'a str>,
        }
        let data = Data {
            rollback: accepted.action == Action::Rollback,
            service: &accepted.service,
            env: &accepted.env,
            from_tag: accepted.from_tag.as_deref(),
            to_tag: &accepted.to_tag,
            mr_url: &accepted.mr_url,
            mr_text: match accepted.mr_iid {
                Some(iid) => format!("!{iid}"),
                None => "merge request".to_string(),
            },
            requested_by: &accepted.requested_by,
            reason: accepted.reason.as_deref(),
        };
        self.render(flavor, "accepted", &data)
    }

    /// A refusal, naming the rule or policy.
    pub fn refused(&self, flavor: Flavor, refused: &Refused) -> Result<String, Error> {
        #[derive(Serialize)]
        struct Data<'a> {
            what: &'a str,
            rule: &'a str,
            message: &'a str,
        }
        let data = Data {
            what: &refused.what,
            rule: &refused.rule,
            message: &refused.message,
        };
        self.render(flavor, "refused", &data)
    }

    /// What is wrong with a command, the suggestion and the usage.
    pub fn parse_error(&self, flavor: Flavor, failure: &ParseFailure) -> Result<String, Error> {
        #[derive(Serialize)]
        struct Data<'a> {
            problem: String,
            word: Option<&'a str>,
            suggestion: Option<&'a str>,
            usage: Option<String>,
            help: String,
        }
        let error = &failure.error;
        let data = Data {
            problem: error.problem(),
            word: error.word(),
            suggestion: error.suggestion(),
            usage: error
                .usage()
                .map(|usage| format!("{} {usage}", failure.invocation)),
            help: format!("{} help", failure.invocation),
        };
        self.render(flavor, "parse_error", &data)
    }

    /// A table of tags, service by environment.
    pub fn status(&self, flavor: Flavor, status: &Status) -> Result<String, Error> {
        #[derive(Serialize)]
        struct Data<'a> {
            empty: bool,
            environments: &'a [String],
            rows: Vec<Row<'a>>,
            /// Slack only: the aligned table, already escaped.
            table: String,
        }
        let columns = status.environments.len();
        let rows: Vec<Row<'_>> = status
            .rows
            .iter()
            .map(|row| Row {
                service: &row.service,
                tags: (0..columns)
                    .map(|i| row.tags.get(i).and_then(|t| t.as_deref()))
                    .collect(),
            })
            .collect();
        let table = match flavor.syntax() {
            Syntax::Slack => aligned_table(&status.environments, &rows),
            Syntax::Markdown => String::new(),
        };
        let data = Data {
            empty: rows.is_empty(),
            environments: &status.environments,
            rows,
            table,
        };
        self.render(flavor, "status", &data)
    }
}

/// Space-padded columns for a Slack code block, each line escaped.
fn aligned_table(environments: &[String], rows: &[impl AsRow]) -> String {
    let mut lines: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 1);
    let mut header = vec!["service".to_string()];
    header.extend(environments.iter().map(|e| plain(e)));
    lines.push(header);
    for row in rows {
        let mut cells = vec![plain(row.service())];
        cells.extend(row.tags().map(|t| t.map_or_else(|| "-".to_string(), plain)));
        lines.push(cells);
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    lines
        .iter()
        .map(|cells| {
            let mut line = String::new();
            for (i, cell) in cells.iter().enumerate() {
                line.push_str(cell);
                if i + 1 < cells.len() {
                    let pad = widths[i] - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            escape_slack(&line)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Read access to a status row, so [`aligned_table`] can take the borrowed rows.
trait AsRow {
    fn service(&self) -> &str;
    fn tags(&self) -> impl Iterator<Item = Option<&str>>;
}

impl AsRow for Row<'_> {
    fn service(&self) -> &str {
        self.service
    }
    fn tags(&self) -> impl Iterator<Item = Option<&str>> {
        self.tags.iter().copied()
    }
}

/// A status row as the templates see it.
#[derive(Serialize)]
struct Row<'a> {
    service: &'a str,
    tags: Vec<Option<&'a str>>,
}

fn registry(syntax: Syntax, sources: &[&str; 5]) -> Result<Handlebars<'static>, Error> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    match syntax {
        Syntax::Slack => registry.register_escape_fn(escape_slack),
        Syntax::Markdown => registry.register_escape_fn(escape_markdown),
    }
    registry.register_helper("code", Box::new(Code(syntax)));
    registry.register_helper("link", Box::new(Link(syntax)));
    for (name, source) in TEMPLATES.iter().zip(sources) {
        registry
            .register_template_string(name, *source)
            .map_err(|e| Error::Template {
                name: (*name).to_string(),
                message: e.to_string(),
            })?;
    }
    Ok(registry)
}

/// `text` escaped for `flavor`, to put user-controlled text into a reply built by hand.
pub fn escape(flavor: Flavor, text: &str) -> String {
    match flavor.syntax() {
        Syntax::Slack => escape_slack(text),
        Syntax::Markdown => escape_markdown(text),
    }
}

/// `text` as a code span escaped for `flavor` (or as escaped text when it cannot be one), to
/// show user-controlled text verbatim in a reply built by hand.
pub fn code(flavor: Flavor, text: &str) -> String {
    code_span(flavor.syntax(), text, false)
}

/// `text` on one line: line breaks and control characters as spaces, bidirectional overrides
/// dropped. For user-controlled text that ends up in a line of a file or message (a channel
/// name).
pub fn one_line(text: &str) -> String {
    markdown::one_line(text)
}

fn plain(text: &str) -> String {
    markdown::one_line(text)
}

/// Slack mrkdwn: `&`, `<` and `>` as entities (so no `<!here>`, `<@U1>` or `<url|text>`),
/// backticks as `ˋ` (mrkdwn has no escape for them), every `@` defused.
fn escape_slack(text: &str) -> String {
    defuse_mentions(&slack_entities(&plain(text)), true)
}

fn slack_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '`' => out.push('\u{02CB}'),
            c => out.push(c),
        }
    }
    out
}

/// Markdown (Mattermost, GitLab): the shared escaping of [`crate::text::markdown::inline`].
fn escape_markdown(text: &str) -> String {
    markdown::inline(text)
}

/// A zero-width space after `@`: after every one when `all`, else only before the words that
/// notify a whole channel (`here`, `channel`, `everyone`, `all`).
fn defuse_mentions(text: &str, all: bool) -> String {
    markdown::defuse_mentions(text, !all)
}

/// `text` as a code span, or as escaped text when it cannot be one. Inside a span only group
/// mentions are defused, so a command shown for copying (`@promoter help`) still works.
fn code_span(syntax: Syntax, text: &str, in_table: bool) -> String {
    let text = plain(text);
    if text.trim().is_empty() {
        return String::new();
    }
    match syntax {
        // Backticks become `ˋ`, so the span cannot be closed early.
        Syntax::Slack => format!("`{}`", defuse_mentions(&slack_entities(&text), false)),
        // Backslashes do not escape inside code spans, and `|` would split a table cell.
        Syntax::Markdown if text.contains('`') || (in_table && text.contains('|')) => {
            escape_markdown(&text)
        }
        Syntax::Markdown => format!("`{}`", defuse_mentions(&text, false)),
    }
}

/// A link to an http(s) `url` showing `text`; the text alone for any other URL.
fn link(syntax: Syntax, url: &str, text: &str) -> String {
    let parsed = url::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
    let Some(parsed) = parsed else {
        return match syntax {
            Syntax::Slack => escape_slack(text),
            Syntax::Markdown => escape_markdown(text),
        };
    };
    let mut href = String::new();
    for c in parsed.as_str().chars() {
        match (syntax, c) {
            (Syntax::Slack, '&') => href.push_str("&amp;"),
            (Syntax::Slack, '|') => href.push_str("%7C"),
            (_, '<') => href.push_str("%3C"),
            (_, '>') => href.push_str("%3E"),
            (Syntax::Markdown, '(') => href.push_str("%28"),
            (Syntax::Markdown, ')') => href.push_str("%29"),
            (Syntax::Markdown, '|') => href.push_str("%7C"),
            (Syntax::Markdown, '`') => href.push_str("%60"),
            (Syntax::Markdown, '"') => href.push_str("%22"),
            (Syntax::Markdown, '\'') => href.push_str("%27"),
            (Syntax::Markdown, '\\') => href.push_str("%5C"),
            (_, c) if c.is_whitespace() => href.push_str("%20"),
            (_, c) => href.push(c),
        }
    }
    match syntax {
        Syntax::Slack => format!("<{href}|{}>", escape_slack(text)),
        Syntax::Markdown => format!("[{}]({href})", escape_markdown(text)),
    }
}

/// The string value of parameter `index` (`null` as empty).
fn param<'a>(h: &'a Helper<'_>, name: &'static str, index: usize) -> Result<&'a str, RenderError> {
    let value = h
        .param(index)
        .ok_or(RenderErrorReason::ParamNotFoundForIndex(name, index))?;
    match value.value() {
        serde_json::Value::Null => Ok(""),
        serde_json::Value::String(s) => Ok(s),
        _ => Err(RenderErrorReason::InvalidParamType("string").into()),
    }
}

/// `{{code value}}`, or `{{code value table=true}}` in a Markdown table cell.
struct Code(Syntax);

impl HelperDef for Code {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let in_table = h
            .hash_get("table")
            .is_some_and(|v| v.value().as_bool() == Some(true));
        out.write(&code_span(self.0, param(h, "code", 0)?, in_table))?;
        Ok(())
    }
}

/// `{{link url text}}`.
struct Link(Syntax);

impl HelperDef for Link {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        out.write(&link(self.0, param(h, "link", 0)?, param(h, "link", 1)?))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chatops::command::{Known, parse};

    const ALL: [Flavor; 3] = [Flavor::Slack, Flavor::Mattermost, Flavor::GitLab];

    fn replies() -> Replies {
        Replies::new().unwrap()
    }

    fn accepted() -> Accepted {
        Accepted {
            action: Action::Promotion,
            service: "maths-api".into(),
            env: "qa".into(),
            from_tag: Some("1.2.1".into()),
            to_tag: "1.3.0".into(),
            mr_url: "https://gitlab.example.com/ops/envs/-/merge_requests/42".into(),
            mr_iid: Some(42),
            requested_by: "alice".into(),
            reason: Some("fixes INC-42".into()),
        }
    }

    /// The attacks: each must come out without a live mention, link, HTML or code escape.
    const ATTACKS: [&str; 8] = [
        "<!channel> deploy now",
        "<!here|here> and <@U024BE7LH>",
        "@here @channel @everyone @all",
        "[click](http://evil.example)",
        "<http://evil.example|click>",
        "`` ` code ` ``",
        "\"quoted\" and 'single' & <b>bold</b>",
        "**bold** _it_ ~strike~ # heading | cell \\",
    ];

    /// Markdown output without its code spans (whose content is literal), escapes kept.
    fn outside_code(out: &str) -> String {
        let (mut text, mut in_code, mut chars) = (String::new(), false, out.chars());
        while let Some(c) = chars.next() {
            match c {
                '\\' if !in_code => {
                    text.push(c);
                    text.extend(chars.next());
                }
                '`' => in_code = !in_code,
                c if !in_code => text.push(c),
                _ => {}
            }
        }
        assert!(!in_code, "unclosed code span in {out}");
        text
    }

    /// Whether every `c` in `text` is backslash-escaped.
    fn all_escaped(text: &str, c: char) -> bool {
        text.match_indices(c)
            .all(|(i, _)| text[..i].ends_with('\\'))
    }

    fn assert_harmless(flavor: Flavor, out: &str) {
        for mention in ["@here", "@channel", "@everyone", "@all"] {
            assert!(!out.contains(mention), "{flavor:?}: {mention} in {out}");
        }
        match flavor {
            Flavor::Slack => {
                for live in ["<!", "<@", "<http://evil", "<b>", "|click>"] {
                    assert!(!out.contains(live), "{live} in {out}");
                }
            }
            Flavor::Mattermost | Flavor::GitLab => {
                let text = outside_code(out);
                // The only link is the merge request's.
                let text = text.replace("[\\!42](https://gitlab.example.com/", "");
                for c in ['<', '>', '[', ']', '#', '~'] {
                    assert!(all_escaped(&text, c), "{flavor:?}: bare {c} in {out}");
                }
                assert!(!text.contains("**bold"), "{out}");
            }
        }
    }

    #[test]
    fn escapes_for_each_flavor() {
        let cases: [(Flavor, &str, &str); 10] = [
            (
                Flavor::Slack,
                "<!channel> & co",
                "&lt;!channel&gt; &amp; co",
            ),
            (Flavor::Slack, "@here", "@\u{200B}here"),
            (Flavor::Slack, "a `b` c", "a \u{02CB}b\u{02CB} c"),
            (Flavor::Slack, "line\nbreak\u{202E}", "line break"),
            (
                Flavor::Slack,
                "[click](http://evil)",
                "[click](http://evil)",
            ),
            (
                Flavor::Mattermost,
                "[click](http://evil)",
                "\\[click\\](http\u{200B}://evil)",
            ),
            (Flavor::Mattermost, "*a*_b_`c`", "\\*a\\*\\_b\\_\\`c\\`"),
            (Flavor::GitLab, "<b>|#1 ~x \\", "\\<b\\>\\|\\#1 \\~x \\\\"),
            (Flavor::GitLab, "@all thanks", "@\u{200B}all thanks"),
            (Flavor::GitLab, "\"quoted\" 'x'", "\"quoted\" 'x'"),
        ];
        for (flavor, text, expected) in cases {
            assert_eq!(escape(flavor, text), expected, "{flavor:?} {text:?}");
        }
    }

    #[test]
    fn injection_attempts_come_out_harmless_everywhere() {
        let r = replies();
        for flavor in ALL {
            for attack in ATTACKS {
                let mut a = accepted();
                a.reason = Some(attack.to_string());
                a.requested_by = attack.to_string();
                a.service = attack.to_string();
                a.to_tag = attack.to_string();
                assert_harmless(flavor, &r.accepted(flavor, &a).unwrap());

                let refused = Refused {
                    what: attack.into(),
                    rule: attack.into(),
                    message: attack.into(),
                };
                assert_harmless(flavor, &r.refused(flavor, &refused).unwrap());

                let status = Status {
                    environments: vec![attack.into()],
                    rows: vec![StatusRow {
                        service: attack.into(),
                        tags: vec![Some(attack.into())],
                    }],
                };
                let table = r.status(flavor, &status).unwrap();
                assert_harmless(flavor, &table);
                if flavor != Flavor::Slack {
                    // Still two columns on every line: no `|` got through.
                    for line in table.lines() {
                        assert_eq!(
                            outside_code(line).replace("\\|", "").matches('|').count(),
                            3,
                            "{line}"
                        );
                    }
                }

                let failure = ParseFailure {
                    invocation: "/promoter".into(),
                    error: parse(&format!("promote {attack}"), &Known::default()).unwrap_err(),
                };
                assert_harmless(flavor, &r.parse_error(flavor, &failure).unwrap());
                let failure = ParseFailure {
                    invocation: attack.into(),
                    error: parse(attack, &Known::default()).unwrap_err(),
                };
                assert_harmless(flavor, &r.parse_error(flavor, &failure).unwrap());
            }
        }
    }

    #[test]
    fn code_spans_cannot_be_broken_out_of() {
        let cases: [(Syntax, &str, bool, &str); 9] = [
            (Syntax::Slack, "1.3.0", false, "`1.3.0`"),
            (Syntax::Slack, "a`<b>", false, "`a\u{02CB}&lt;b&gt;`"),
            (
                Syntax::Slack,
                "@here @alice",
                false,
                "`@\u{200B}here @alice`",
            ),
            (Syntax::Markdown, "<env|all>", false, "`<env|all>`"),
            (Syntax::Markdown, "a|b", true, "a\\|b"),
            (Syntax::Markdown, "a`b", false, "a\\`b"),
            (
                Syntax::Markdown,
                "@promoter help",
                false,
                "`@promoter help`",
            ),
            (Syntax::Markdown, "@ALL hi", false, "`@\u{200B}ALL hi`"),
            (Syntax::Markdown, " ", false, ""),
        ];
        for (syntax, text, in_table, expected) in cases {
            assert_eq!(
                code_span(syntax, text, in_table),
                expected,
                "{syntax:?} {text:?}"
            );
        }
    }

    #[test]
    fn links_only_to_http_and_cannot_break_the_syntax() {
        let url = "https://gitlab.example.com/g/p/-/merge_requests/1?a=1&b=(2)|x";
        assert_eq!(
            link(Syntax::Slack, url, "!1 <x>"),
            "<https://gitlab.example.com/g/p/-/merge_requests/1?a=1&amp;b=(2)%7Cx|!1 &lt;x&gt;>"
        );
        assert_eq!(
            link(Syntax::Markdown, url, "!1"),
            "[\\!1](https://gitlab.example.com/g/p/-/merge_requests/1?a=1&b=%282%29%7Cx)"
        );
        assert_eq!(link(Syntax::Markdown, "javascript:alert(1)", "!1"), "\\!1");
        assert_eq!(link(Syntax::Slack, "not a url", "<!here>"), "&lt;!here&gt;");
    }

    #[test]
    fn accepted_promotion_and_rollback() {
        let r = replies();
        assert_eq!(
            r.accepted(Flavor::Slack, &accepted()).unwrap(),
            ":rocket: Promotion of *maths-api* to *qa* accepted: `1.2.1` → `1.3.0`.\n\
             Merge request: <https://gitlab.example.com/ops/envs/-/merge_requests/42|!42>\n\
             Requested by *alice*: fixes INC-42."
        );
        let mut rollback = accepted();
        rollback.action = Action::Rollback;
        rollback.from_tag = None;
        rollback.reason = None;
        rollback.mr_iid = None;
        assert_eq!(
            r.accepted(Flavor::Mattermost, &rollback).unwrap(),
            ":rewind: Rollback of **maths-api** in **qa** accepted: `1.3.0`.\n\n\
             Merge request: [merge request](https://gitlab.example.com/ops/envs/-/merge_requests/42)\n\n\
             Requested by **alice**."
        );
    }

    #[test]
    fn refusal_names_the_rule() {
        let refused = Refused {
            what: "promote maths-api to prod".into(),
            rule: "freeze xmas".into(),
            message: "prod is frozen until 2026-12-27.".into(),
        };
        assert_eq!(
            replies().refused(Flavor::GitLab, &refused).unwrap(),
            ":no_entry: Not done: `promote maths-api to prod`.\n\n\
             Refused by **freeze xmas**: prod is frozen until 2026-12-27."
        );
        assert_eq!(
            replies().refused(Flavor::Slack, &refused).unwrap(),
            ":no_entry: Not done: `promote maths-api to prod`.\n\
             Refused by *freeze xmas*: prod is frozen until 2026-12-27."
        );
    }

    #[test]
    fn parse_errors_suggest_and_show_usage() {
        let known = Known {
            services: vec!["web".into()],
            environments: vec!["qa".into(), "prod".into()],
        };
        let failure = |text: &str| ParseFailure {
            invocation: "/promoter".into(),
            error: parse(text, &known).unwrap_err(),
        };
        let r = replies();
        assert_eq!(
            r.parse_error(Flavor::Slack, &failure("promte web"))
                .unwrap(),
            ":warning: unknown command: `promte`. Did you mean `promote`?\n\
             Try `/promoter help` for the list of commands."
        );
        assert_eq!(
            r.parse_error(Flavor::Mattermost, &failure("freeze prod"))
                .unwrap(),
            ":warning: freeze needs a reason.\n\n\
             Usage: `/promoter freeze <env|all> [until <time|YYYY-MM-DD>] because <reason>`\n\n\
             Try `/promoter help` for the list of commands."
        );
        assert_eq!(
            r.parse_error(Flavor::Slack, &failure("freeze prod"))
                .unwrap(),
            ":warning: freeze needs a reason.\n\
             Usage: `/promoter freeze &lt;env|all&gt; [until &lt;time|YYYY-MM-DD&gt;] because &lt;reason&gt;`\n\
             Try `/promoter help` for the list of commands."
        );
        let gitlab = r
            .parse_error(Flavor::GitLab, &failure("promote web to qq"))
            .unwrap();
        assert_eq!(
            gitlab,
            ":warning: unknown environment: `qq`. Did you mean `qa`?\n\n\
             Try `/promoter help` for the list of commands."
        );
    }

    #[test]
    fn help_lists_every_command_or_one() {
        let r = replies();
        let help = Help {
            invocation: "/promoter".into(),
            topic: None,
        };
        for flavor in ALL {
            let text = r.help(flavor, &help).unwrap();
            for verb in Verb::ALL {
                assert!(text.contains(verb.summary()), "{flavor:?} {verb}: {text}");
            }
        }
        let one = Help {
            invocation: "@promoter".into(),
            topic: Some(Verb::Status),
        };
        assert_eq!(
            r.help(Flavor::GitLab, &one).unwrap(),
            "`@promoter status [<service>]`: show which tag each environment runs."
        );
        assert_eq!(
            r.help(Flavor::Slack, &one).unwrap(),
            "`@promoter status [&lt;service&gt;]`: show which tag each environment runs."
        );
    }

    #[test]
    fn status_tables() {
        let status = Status {
            environments: vec!["dev".into(), "qa".into(), "prod".into()],
            rows: vec![
                StatusRow {
                    service: "maths-api".into(),
                    tags: vec![Some("1.3.0".into()), Some("1.2.1".into()), None],
                },
                StatusRow {
                    service: "web".into(),
                    tags: vec![Some("2.0.0-rc.1".into())],
                },
            ],
        };
        let r = replies();
        assert_eq!(
            r.status(Flavor::Mattermost, &status).unwrap(),
            "| service | dev | qa | prod |\n\
             |---|---|---|---|\n\
             | maths-api | `1.3.0` | `1.2.1` | — |\n\
             | web | `2.0.0-rc.1` | — | — |"
        );
        assert_eq!(
            r.status(Flavor::Slack, &status).unwrap(),
            "```\n\
             service    dev         qa     prod\n\
             maths-api  1.3.0       1.2.1  -\n\
             web        2.0.0-rc.1  -      -\n\
             ```"
        );
        for flavor in ALL {
            assert_eq!(
                r.status(flavor, &Status::default()).unwrap(),
                "No services."
            );
        }
    }

    #[test]
    fn replies_are_capped() {
        let status = Status {
            environments: vec!["prod".into()],
            rows: (0..2_000)
                .map(|i| StatusRow {
                    service: format!("service-{i}"),
                    tags: vec![Some("1.0.0".into())],
                })
                .collect(),
        };
        let text = replies().status(Flavor::GitLab, &status).unwrap();
        assert!(text.chars().count() <= MAX_REPLY);
        assert!(text.ends_with(" more characters"), "{text}");
    }
}
