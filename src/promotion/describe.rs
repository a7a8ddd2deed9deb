//! The text of promotion merge requests: title, description and notes, rendered with
//! handlebars from templates embedded in the binary (`templates/*.hbs`), each overridable by a
//! file of the same name in a directory from the configuration (read by the wiring,
//! `reconcile/templates.rs`, and given here as text). Strict mode: a template that names a
//! missing field is an error, not an empty string. Pure.
//!
//! Templates get every value already made inert by [`crate::text::markdown`], whatever the
//! template does with it (the templates are the users', and `{{{triple}}}` braces or a value
//! at the start of a line must not undo anything): text people wrote (requester, reason, gate
//! messages, commit subjects and authors, close reasons) is escaped with
//! [`markdown::inline`]; names, tags, digests and paths, which the built-in templates show in
//! backticks, with [`markdown::literal`]; reviewers are kept only when they are GitLab user
//! names.

use std::collections::BTreeMap;

use handlebars::Handlebars;
use serde::Serialize;

use crate::text::markdown;

/// GitLab's limit on a merge request title.
pub const MAX_TITLE: usize = 255;
/// A safe limit on descriptions and notes (GitLab allows about 1,000,000 characters).
pub const MAX_TEXT: usize = 100_000;
/// The most changelog commits an MR lists; the rest are counted.
pub const MAX_CHANGELOG: usize = 50;

/// The templates' names; `<name>.hbs` in the templates directory overrides one.
pub const NAMES: [&str; 5] = ["title", "description", "superseded", "closed", "train.md"];

const BUILT_IN: [(&str, &str); 5] = [
    ("title", include_str!("templates/title.hbs")),
    ("description", include_str!("templates/description.hbs")),
    ("superseded", include_str!("templates/superseded.hbs")),
    ("closed", include_str!("templates/closed.hbs")),
    ("train.md", include_str!("templates/train.md.hbs")),
];

/// Template problems.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A template does not parse.
    #[error("template {name}: {message}")]
    Template { name: String, message: String },
    /// Rendering failed (a missing field in strict mode).
    #[error("rendering {name}: {message}")]
    Render { name: String, message: String },
}

/// The loaded templates.
#[derive(Debug)]
pub struct Templates {
    registry: Handlebars<'static>,
}

/// A gate's verdict as the description shows it.
#[derive(Debug, Clone, Serialize)]
pub struct GateRow {
    /// The gate.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// Why.
    pub message: String,
}

/// Everything a promotion's texts may use.
#[derive(Debug, Clone, Serialize)]
pub struct PromotionText {
    /// Service.
    pub service: String,
    /// Upstream environment.
    pub from: String,
    /// Target environment.
    pub to: String,
    /// Tag now.
    pub old: String,
    /// Tag promoted.
    pub new: String,
    /// Digest carried along.
    pub digest: Option<String>,
    /// Gate verdicts.
    pub gates: Vec<GateRow>,
    /// Files changed.
    pub files: Vec<String>,
    /// Who asked, for an explicit request.
    pub requested_by: Option<String>,
    /// Why they asked.
    pub reason: Option<String>,
    /// Whether promoter merges.
    pub auto_merge: bool,
    /// Approvals needed.
    pub approvals_required: u32,
    /// When the plan was made.
    pub planned_at: String,
    /// Commits of the app between the two versions, at most [`MAX_CHANGELOG`].
    pub changelog: Vec<ChangeRow>,
    /// How many more commits the changelog has than it lists.
    pub changelog_more: usize,
    /// The hold a rollback records in its MR, described as Markdown by promoter (names in it
    /// made inert with [`markdown::literal`] by whoever builds it).
    pub hold: Option<String>,
    /// GitLab usernames to ask for review.
    pub reviewers: Vec<String>,
}

/// What a release train's description may use (`train.md.hbs`).
#[derive(Debug, Clone, Serialize)]
pub struct TrainText {
    /// The environment the train goes into.
    pub env: String,
    /// Whether promoter merges.
    pub auto_merge: bool,
    /// The services riding it.
    pub riders: Vec<RiderRow>,
}

/// One service on a train.
#[derive(Debug, Clone, Serialize)]
pub struct RiderRow {
    /// Service.
    pub service: String,
    /// Tag now (`(none)` for a first landing).
    pub old: String,
    /// Tag promoted.
    pub new: String,
    /// The gates' verdicts in a line (`✅ soak, ✅ image`).
    pub gates: String,
}

/// One commit of the changelog.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeRow {
    /// Short id.
    pub sha: String,
    /// First line of the message.
    pub summary: String,
    /// Author.
    pub author: String,
}

impl Templates {
    /// The built-in templates.
    pub fn built_in() -> Self {
        Self::with_overrides(&BTreeMap::new()).expect("the built-in templates parse")
    }

    /// The built-in templates, each replaced by the text in `overrides` under its name (one of
    /// [`NAMES`]).
    pub fn with_overrides(overrides: &BTreeMap<String, String>) -> Result<Self, Error> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        for (name, built_in) in BUILT_IN {
            let text = overrides.get(name).map_or(built_in, String::as_str);
            registry
                .register_template_string(name, text)
                .map_err(|e| Error::Template {
                    name: name.to_string(),
                    message: e.to_string(),
                })?;
        }
        Ok(Self { registry })
    }

    fn render(&self, name: &str, data: &impl Serialize) -> Result<String, Error> {
        self.registry.render(name, data).map_err(|e| Error::Render {
            name: name.to_string(),
            message: e.to_string(),
        })
    }

    /// The title, on one line, within GitLab's limit.
    pub fn title(&self, text: &PromotionText) -> Result<String, Error> {
        let title = self
            .render("title", &text.inert())?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        Ok(truncate(&title, MAX_TITLE))
    }

    /// The description.
    pub fn description(&self, text: &PromotionText) -> Result<String, Error> {
        Ok(truncate(
            self.render("description", &text.inert())?.trim_end(),
            MAX_TEXT,
        ))
    }

    /// The note left when a newer candidate replaces `previous`.
    pub fn superseded(&self, text: &PromotionText, previous: &str) -> Result<String, Error> {
        #[derive(Serialize)]
        struct Data<'a> {
            #[serde(flatten)]
            text: &'a PromotionText,
            previous: &'a str,
        }
        let (text, previous) = (&text.inert(), &markdown::literal(previous));
        self.render("superseded", &Data { text, previous })
            .map(|s| s.trim_end().to_string())
    }

    /// A release train's description (`train.md.hbs`), before promoter's record of its riders:
    /// the environment and tags as [`markdown::literal`], service names and gates as table
    /// cells.
    pub fn train(&self, text: &TrainText) -> Result<String, Error> {
        #[derive(Serialize)]
        struct Data {
            env: String,
            count: usize,
            auto_merge: bool,
            riders: Vec<RiderRow>,
        }
        let riders = text
            .riders
            .iter()
            .map(|r| RiderRow {
                service: markdown::table_cell(&r.service),
                old: markdown::literal(&r.old),
                new: markdown::literal(&r.new),
                gates: markdown::table_cell(&r.gates),
            })
            .collect();
        let data = Data {
            env: markdown::literal(&text.env),
            count: text.riders.len(),
            auto_merge: text.auto_merge,
            riders,
        };
        Ok(self.render("train.md", &data)?.trim_end().to_string())
    }

    /// The note left when closing a promotion that is no longer due.
    pub fn closed(&self, reasons: &[String]) -> Result<String, Error> {
        #[derive(Serialize)]
        struct Data<'a> {
            reasons: &'a [String],
        }
        let reasons: Vec<String> = reasons.iter().map(|r| markdown::inline(r)).collect();
        let reasons = reasons.as_slice();
        Ok(truncate(
            self.render("closed", &Data { reasons })?.trim_end(),
            MAX_TEXT,
        ))
    }
}

impl PromotionText {
    /// The same texts with every value made inert for Markdown (see the module documentation).
    fn inert(&self) -> PromotionText {
        let literal = |s: &String| markdown::literal(s);
        let inline = |s: &String| markdown::inline(s);
        PromotionText {
            service: literal(&self.service),
            from: literal(&self.from),
            to: literal(&self.to),
            old: literal(&self.old),
            new: literal(&self.new),
            digest: self.digest.as_ref().map(literal),
            gates: self
                .gates
                .iter()
                .map(|g| GateRow {
                    name: inline(&g.name),
                    passed: g.passed,
                    message: inline(&g.message),
                })
                .collect(),
            files: self.files.iter().map(literal).collect(),
            requested_by: self.requested_by.as_ref().map(inline),
            reason: self.reason.as_ref().map(inline),
            auto_merge: self.auto_merge,
            approvals_required: self.approvals_required,
            planned_at: literal(&self.planned_at),
            changelog: self
                .changelog
                .iter()
                .map(|c| ChangeRow {
                    sha: literal(&c.sha),
                    summary: inline(&c.summary),
                    author: inline(&c.author),
                })
                .collect(),
            changelog_more: self.changelog_more,
            hold: self.hold.as_ref().map(|h| markdown::one_line(h)),
            reviewers: self
                .reviewers
                .iter()
                .filter(|r| is_username(r))
                .cloned()
                .collect(),
        }
    }
}

/// True for a GitLab user name (letters, digits, `_`, `-`, `.`; not starting with `-` or `.`),
/// the only thing a `/assign_reviewer @name` line may name.
fn is_username(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

pub use crate::text::excerpt::truncate;

#[cfg(test)]
mod tests {
    use super::*;

    fn text() -> PromotionText {
        PromotionText {
            service: "maths-api".into(),
            from: "dev".into(),
            to: "qa".into(),
            old: "1.2.1".into(),
            new: "1.3.0".into(),
            digest: None,
            gates: vec![GateRow {
                name: "soak".into(),
                passed: true,
                message: "ran 2h in dev (needs 1h)".into(),
            }],
            files: vec!["clusters/qa/calculator/maths-api/values.yaml".into()],
            requested_by: None,
            reason: None,
            auto_merge: true,
            approvals_required: 1,
            planned_at: "2026-11-24T12:00:00Z".into(),
            changelog: Vec::new(),
            changelog_more: 0,
            hold: None,
            reviewers: Vec::new(),
        }
    }

    #[test]
    fn renders_title_and_description() {
        let t = Templates::built_in();
        assert_eq!(
            t.title(&text()).unwrap(),
            "promote maths-api to qa: 1.2.1 -> 1.3.0"
        );
        let d = t.description(&text()).unwrap();
        assert!(
            d.starts_with("Promotes **maths-api** from **dev** to **qa**: `1.2.1` → `1.3.0`."),
            "{d}"
        );
        assert!(d.contains("| soak | ✅ ran 2h in dev (needs 1h) |"), "{d}");
        assert!(
            d.contains("- `clusters/qa/calculator/maths-api/values.yaml`"),
            "{d}"
        );
        assert!(!d.contains("Requested by"));
        assert!(d.contains("promoter merges this once 1 approval(s)"));
    }

    #[test]
    fn markdown_is_escaped_not_html_escaped_and_requests_are_recorded() {
        let t = Templates::built_in();
        let mut x = text();
        x.requested_by = Some("alice".into());
        x.reason = Some("fix <INC-42> & friends".into());
        let d = t.description(&x).unwrap();
        assert!(
            d.contains("Requested by **alice**: fix \\<INC-42\\> \\& friends."),
            "{d}"
        );
    }

    const ATTACK: &str = "@all <!-- ![x](https://evil.example/a.png) <img src=x> [click](javascript:alert(1)) /merge";

    /// Whether every occurrence of `pattern` starts with a backslash-escaped character.
    fn only_escaped(text: &str, pattern: &str) -> bool {
        text.match_indices(pattern)
            .all(|(i, _)| text[..i].chars().rev().take_while(|c| *c == '\\').count() % 2 == 1)
    }

    fn assert_inert(text: &str) {
        assert!(!text.contains("@all"), "{text}");
        for live in ["<!--", "<img", "![", "[click]("] {
            assert!(only_escaped(text, live), "a live {live} in {text}");
        }
        assert!(!text.contains("https://"), "{text}");
        // The one quick action is promoter's own, naming a user name.
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with('/') && l != "/assign_reviewer @alice"),
            "{text}"
        );
    }

    #[test]
    fn text_from_people_is_inert_in_every_field_and_template() {
        let mut x = text();
        x.requested_by = Some(ATTACK.into());
        x.reason = Some(ATTACK.into());
        x.gates[0].message = ATTACK.into();
        x.changelog = vec![ChangeRow {
            sha: "0123abcd".into(),
            summary: ATTACK.into(),
            author: ATTACK.into(),
        }];
        x.new = ATTACK.into();
        x.service = ATTACK.into();
        x.reviewers = vec!["alice".into(), "all /merge".into()];
        // A user's template that puts a value at the start of a line, in triple braces.
        let overrides = BTreeMap::from([(
            "description".to_string(),
            "{{{reason}}}\n{{requested_by}}\n\n| gate | verdict |\n|---|---|\n{{#each gates}}| {{name}} | {{{message}}} |\n{{/each}}\n{{#each changelog}}\n{{{summary}}} {{author}}\n{{/each}}\n{{new}}\n{{service}}\n{{#each reviewers}}@{{this}} {{/each}}".to_string(),
        )]);
        for templates in [
            Templates::built_in(),
            Templates::with_overrides(&overrides).unwrap(),
        ] {
            let d = templates.description(&x).unwrap();
            assert_inert(&d);
            assert!(d.contains("| gate | verdict |"), "{d}");
            assert!(
                !d.contains("all /merge"),
                "only user names are reviewers: {d}"
            );
            assert_inert(&templates.title(&x).unwrap());
            assert_inert(&templates.superseded(&x, ATTACK).unwrap());
        }
        let closed = Templates::built_in().closed(&[ATTACK.to_string()]).unwrap();
        assert_inert(&closed);
    }

    #[test]
    fn titles_fit_gitlab() {
        let t = Templates::built_in();
        let mut x = text();
        x.service = "s".repeat(400);
        let title = t.title(&x).unwrap();
        assert_eq!(title.chars().count(), MAX_TITLE);
        assert!(title.ends_with('…'));
    }

    #[test]
    fn templates_can_be_overridden_and_strict_mode_catches_typos() {
        let title = |text: &str| BTreeMap::from([("title".to_string(), text.to_string())]);
        let t = Templates::with_overrides(&title("[{{to}}] {{service}} {{new}}")).unwrap();
        assert_eq!(t.title(&text()).unwrap(), "[qa] maths-api 1.3.0");
        let t = Templates::with_overrides(&title("{{servce}}")).unwrap();
        assert!(t.title(&text()).unwrap_err().to_string().contains("servce"));
    }

    #[test]
    fn the_train_description_is_a_template_that_can_be_overridden() {
        let text = TrainText {
            env: "qa".into(),
            auto_merge: false,
            riders: vec![RiderRow {
                service: "maths-api | @all [x](https://evil.example)".into(),
                old: "1.2.0".into(),
                new: "1.4.0`<b>".into(),
                gates: "✅ soak".into(),
            }],
        };
        let built_in = Templates::built_in().train(&text).unwrap();
        assert!(
            built_in.starts_with("Release train into **qa**: 1 service(s)"),
            "{built_in}"
        );
        assert!(
            built_in.contains("Merge by hand once approved."),
            "{built_in}"
        );
        let row = built_in.lines().find(|l| l.contains("1.2.0")).unwrap();
        assert_eq!(row.replace("\\|", "").matches('|').count(), 4, "{row}");
        assert_inert(&built_in);
        let overrides = BTreeMap::from([(
            "train.md".to_string(),
            "Train to {{env}}:{{#each riders}} {{service}}@{{new}}{{/each}}".to_string(),
        )]);
        let ours = Templates::with_overrides(&overrides)
            .unwrap()
            .train(&text)
            .unwrap();
        assert!(ours.starts_with("Train to qa: maths-api"), "{ours}");
        assert_inert(&ours);
    }

    #[test]
    fn changelog_and_reviewers_are_rendered() {
        let t = Templates::built_in();
        let mut x = text();
        x.changelog = vec![ChangeRow {
            sha: "0123abcd".into(),
            summary: "faster sums".into(),
            author: "dev".into(),
        }];
        x.reviewers = vec!["alice".into(), "bob".into()];
        let d = t.description(&x).unwrap();
        assert!(
            d.contains(
                "Changes in `app/maths-api` from 1.2.1 to 1.3.0:\n- `0123abcd` faster sums (dev)"
            ),
            "{d}"
        );
        assert!(d.ends_with("/assign_reviewer @alice @bob"), "{d}");
    }

    #[test]
    fn notes() {
        let t = Templates::built_in();
        assert_eq!(
            t.superseded(&text(), "1.2.9").unwrap(),
            "Superseded: this promotion now carries `1.3.0` instead of `1.2.9` (dev moved on)."
        );
        let closed = t.closed(&["qa already runs 1.3.0".to_string()]).unwrap();
        assert_eq!(
            closed,
            "Closed by promoter: this promotion is no longer due.\n\n- qa already runs 1.3.0"
        );
    }
}
