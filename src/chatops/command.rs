//! The chat-ops command language: one parser for Slack and Mattermost slash commands and GitLab
//! merge request comments. It turns a line of text into a typed [`Command`] or a [`ParseError`]
//! that says what went wrong and suggests a fix. Pure: no I/O, never reads the clock, never
//! decides whether a command is allowed (the handler does).
//!
//! Grammar (keywords are case-insensitive, words are separated by spaces, a leading
//! `/promoter`, `@promoter` or `promoter` is ignored; `because` takes the rest of the line
//! verbatim and must come last):
//!
//! ```text
//! promote  <service> [to <env>] [tag <tag>] [because <reason…>]
//! rollback <service> in <env> [to <tag>] [because <reason…>]
//! status   [<service>]
//! plan     [<env>]
//! freeze   <env|all> [until <RFC 3339 time|YYYY-MM-DD>] because <reason…>
//! unfreeze <env|all>
//! unhold   <service> in <env>
//! help     [<command>]
//! ```

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::model::{EnvName, ServiceName, Tag};

/// The longest command accepted, in characters.
pub const MAX_LEN: usize = 1_000;

/// The longest piece of user input an error repeats, in characters.
const MAX_SHOWN: usize = 60;

/// The largest edit distance a "did you mean" suggestion may have.
const MAX_DISTANCE: usize = 2;

/// The names a command may refer to, from the current snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    /// Service names.
    pub services: Vec<String>,
    /// Environment names.
    pub environments: Vec<String>,
}

/// The command words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    /// `promote`.
    Promote,
    /// `rollback`.
    Rollback,
    /// `status`.
    Status,
    /// `plan`.
    Plan,
    /// `freeze`.
    Freeze,
    /// `unfreeze`.
    Unfreeze,
    /// `unhold`.
    Unhold,
    /// `help`.
    Help,
}

impl Verb {
    /// Every command, in the order help lists them.
    pub const ALL: [Verb; 8] = [
        Verb::Promote,
        Verb::Rollback,
        Verb::Status,
        Verb::Plan,
        Verb::Freeze,
        Verb::Unfreeze,
        Verb::Unhold,
        Verb::Help,
    ];

    /// The word that names the command.
    pub fn word(self) -> &'static str {
        match self {
            Verb::Promote => "promote",
            Verb::Rollback => "rollback",
            Verb::Status => "status",
            Verb::Plan => "plan",
            Verb::Freeze => "freeze",
            Verb::Unfreeze => "unfreeze",
            Verb::Unhold => "unhold",
            Verb::Help => "help",
        }
    }

    /// The command's syntax.
    pub fn usage(self) -> &'static str {
        match self {
            Verb::Promote => "promote <service> [to <env>] [tag <tag>] [because <reason>]",
            Verb::Rollback => "rollback <service> in <env> [to <tag>] [because <reason>]",
            Verb::Status => "status [<service>]",
            Verb::Plan => "plan [<env>]",
            Verb::Freeze => "freeze <env|all> [until <time|YYYY-MM-DD>] because <reason>",
            Verb::Unfreeze => "unfreeze <env|all>",
            Verb::Unhold => "unhold <service> in <env>",
            Verb::Help => "help [<command>]",
        }
    }

    /// What the command does, in one line.
    pub fn summary(self) -> &'static str {
        match self {
            Verb::Promote => {
                "open a merge request that moves a service's tag to the next (or named) environment"
            }
            Verb::Rollback => {
                "open a merge request that puts an environment back on the previous (or named) tag"
            }
            Verb::Status => "show which tag each environment runs",
            Verb::Plan => "show what promoter would do now",
            Verb::Freeze => "stop promotions into an environment (or all), with a reason",
            Verb::Unfreeze => "lift a freeze",
            Verb::Unhold => "lift the hold a rollback left, so newer tags may come back",
            Verb::Help => "show this help",
        }
    }

    fn from_word(word: &str) -> Option<Verb> {
        Verb::ALL
            .into_iter()
            .find(|v| v.word().eq_ignore_ascii_case(word))
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// Which environments a freeze covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every environment (`all`).
    All,
    /// One environment.
    Env(EnvName),
}

/// When a freeze ends, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// An instant (RFC 3339, converted to UTC).
    At(DateTime<Utc>),
    /// A calendar day (`YYYY-MM-DD`); the handler resolves it in the configured time zone.
    Day(NaiveDate),
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Promote a service, to the next environment unless `to` names one.
    Promote {
        /// The service.
        service: ServiceName,
        /// The target environment, when named.
        to: Option<EnvName>,
        /// The tag to promote, when named (otherwise the upstream's).
        tag: Option<Tag>,
        /// Why, verbatim.
        reason: Option<String>,
    },
    /// Put an environment back on an earlier tag.
    Rollback {
        /// The service.
        service: ServiceName,
        /// The environment.
        env: EnvName,
        /// The tag to go back to, when named (otherwise the previous one).
        to: Option<Tag>,
        /// Why, verbatim.
        reason: Option<String>,
    },
    /// Show tags per environment.
    Status {
        /// Only this service.
        service: Option<ServiceName>,
    },
    /// Show the current decisions.
    Plan {
        /// Only this environment.
        env: Option<EnvName>,
    },
    /// Stop promotions.
    Freeze {
        /// Where.
        scope: Scope,
        /// Until when (otherwise until `unfreeze`).
        until: Option<Until>,
        /// Why, verbatim (required).
        reason: String,
    },
    /// Lift a freeze.
    Unfreeze {
        /// Where.
        scope: Scope,
    },
    /// Lift a rollback's hold.
    Unhold {
        /// The service.
        service: ServiceName,
        /// The environment the rollback was made in.
        env: EnvName,
    },
    /// Show the commands.
    Help {
        /// Only this command.
        topic: Option<Verb>,
    },
}

impl Command {
    /// The command word.
    pub fn verb(&self) -> Verb {
        match self {
            Command::Promote { .. } => Verb::Promote,
            Command::Rollback { .. } => Verb::Rollback,
            Command::Status { .. } => Verb::Status,
            Command::Plan { .. } => Verb::Plan,
            Command::Freeze { .. } => Verb::Freeze,
            Command::Unfreeze { .. } => Verb::Unfreeze,
            Command::Unhold { .. } => Verb::Unhold,
            Command::Help { .. } => Verb::Help,
        }
    }
}

/// Why a line is not a command. `word` fields hold user input (cut to 60 characters): render
/// them through [`crate::chatops::reply`], which escapes them, never verbatim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing but whitespace (or only the bot's name).
    #[error("empty command: try `help`")]
    Empty,
    /// Longer than [`MAX_LEN`] characters.
    #[error("the command is longer than {MAX_LEN} characters")]
    TooLong,
    /// A control or bidirectional-override character.
    #[error("the command contains a control character")]
    ControlCharacter,
    /// The first word is no command.
    #[error("unknown command `{word}`{}", did_you_mean(.suggestion))]
    UnknownCommand {
        /// The word.
        word: String,
        /// The nearest command word.
        suggestion: Option<String>,
    },
    /// A service that the snapshot does not have.
    #[error("unknown service `{word}`{}", did_you_mean(.suggestion))]
    UnknownService {
        /// The word.
        word: String,
        /// The nearest known service.
        suggestion: Option<String>,
    },
    /// An environment that the snapshot does not have.
    #[error("unknown environment `{word}`{}", did_you_mean(.suggestion))]
    UnknownEnvironment {
        /// The word.
        word: String,
        /// The nearest known environment.
        suggestion: Option<String>,
    },
    /// A required argument is missing.
    #[error("{verb} needs {what}: {}", .verb.usage())]
    MissingArgument {
        /// The command.
        verb: Verb,
        /// What is missing, such as "a service".
        what: &'static str,
    },
    /// A word the command does not take there.
    #[error("unexpected `{word}`{}: {}", did_you_mean(.suggestion), .verb.usage())]
    Unexpected {
        /// The command.
        verb: Verb,
        /// The word.
        word: String,
        /// The nearest keyword the command takes.
        suggestion: Option<String>,
    },
    /// A clause given twice.
    #[error("`{word}` is given twice: {}", .verb.usage())]
    Repeated {
        /// The command.
        verb: Verb,
        /// The keyword.
        word: String,
    },
    /// Not a valid image tag.
    #[error("`{word}` is not a valid tag: use letters, digits, `_`, `.` and `-`")]
    InvalidTag {
        /// The word.
        word: String,
    },
    /// Not an RFC 3339 time or a `YYYY-MM-DD` date.
    #[error("`{word}` is not a time: use RFC 3339 (2026-12-24T18:00:00Z) or a date (2026-12-24)")]
    InvalidTime {
        /// The word.
        word: String,
    },
    /// The command needs `because <reason>`.
    #[error("{verb} needs a reason: {}", .verb.usage())]
    ReasonRequired {
        /// The command.
        verb: Verb,
    },
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}

impl ParseError {
    /// What went wrong, without any user input (for replies that show the input separately).
    pub fn problem(&self) -> String {
        match self {
            ParseError::Empty => "empty command".to_string(),
            ParseError::TooLong => format!("the command is longer than {MAX_LEN} characters"),
            ParseError::ControlCharacter => "the command contains a control character".to_string(),
            ParseError::UnknownCommand { .. } => "unknown command".to_string(),
            ParseError::UnknownService { .. } => "unknown service".to_string(),
            ParseError::UnknownEnvironment { .. } => "unknown environment".to_string(),
            ParseError::MissingArgument { verb, what } => format!("{verb} needs {what}"),
            ParseError::Unexpected { verb, .. } => format!("{verb} does not take this word"),
            ParseError::Repeated { .. } => "this keyword is given twice".to_string(),
            ParseError::InvalidTag { .. } => "not a valid tag".to_string(),
            ParseError::InvalidTime { .. } => "not a time (use RFC 3339 or YYYY-MM-DD)".to_string(),
            ParseError::ReasonRequired { verb } => format!("{verb} needs a reason"),
        }
    }

    /// The offending user input, cut to 60 characters.
    pub fn word(&self) -> Option<&str> {
        match self {
            ParseError::UnknownCommand { word, .. }
            | ParseError::UnknownService { word, .. }
            | ParseError::UnknownEnvironment { word, .. }
            | ParseError::Unexpected { word, .. }
            | ParseError::Repeated { word, .. }
            | ParseError::InvalidTag { word }
            | ParseError::InvalidTime { word } => Some(word),
            _ => None,
        }
    }

    /// The nearest valid word, if one is close.
    pub fn suggestion(&self) -> Option<&str> {
        match self {
            ParseError::UnknownCommand { suggestion, .. }
            | ParseError::UnknownService { suggestion, .. }
            | ParseError::UnknownEnvironment { suggestion, .. }
            | ParseError::Unexpected { suggestion, .. } => suggestion.as_deref(),
            _ => None,
        }
    }

    /// The syntax of the command concerned, if one is.
    pub fn usage(&self) -> Option<&'static str> {
        match self {
            ParseError::MissingArgument { verb, .. }
            | ParseError::Unexpected { verb, .. }
            | ParseError::Repeated { verb, .. }
            | ParseError::ReasonRequired { verb } => Some(verb.usage()),
            _ => None,
        }
    }
}

/// Parses one line of chat-ops text.
pub fn parse(text: &str, known: &Known) -> Result<Command, ParseError> {
    if text.chars().nth(MAX_LEN).is_some() {
        return Err(ParseError::TooLong);
    }
    let line = text.trim();
    if line.chars().any(is_forbidden) {
        return Err(ParseError::ControlCharacter);
    }
    let mut words = split_words(line);
    if words.first().is_some_and(|w| {
        ["/promoter", "@promoter", "promoter"]
            .iter()
            .any(|p| w.text.eq_ignore_ascii_case(p))
    }) {
        words.remove(0);
    }
    let Some(first) = words.first() else {
        return Err(ParseError::Empty);
    };
    let Some(verb) = Verb::from_word(first.text) else {
        return Err(ParseError::UnknownCommand {
            word: shown(first.text),
            suggestion: closest(first.text, Verb::ALL.iter().map(|v| v.word())),
        });
    };
    let mut args = Args {
        line,
        words: &words[1..],
        pos: 0,
        verb,
        known,
    };
    let command = match verb {
        Verb::Promote => args.promote()?,
        Verb::Rollback => args.rollback()?,
        Verb::Status => Command::Status {
            service: match args.next() {
                Some(w) => Some(args.service(w)?),
                None => None,
            },
        },
        Verb::Plan => Command::Plan {
            env: match args.next() {
                Some(w) => Some(args.env(w)?),
                None => None,
            },
        },
        Verb::Freeze => args.freeze()?,
        Verb::Unfreeze => {
            let word = args.required("an environment or `all`")?;
            Command::Unfreeze {
                scope: args.scope(word)?,
            }
        }
        Verb::Unhold => args.unhold()?,
        Verb::Help => Command::Help {
            topic: match args.next() {
                Some(w) => {
                    Some(
                        Verb::from_word(w.text).ok_or_else(|| ParseError::UnknownCommand {
                            word: shown(w.text),
                            suggestion: closest(w.text, Verb::ALL.iter().map(|v| v.word())),
                        })?,
                    )
                }
                None => None,
            },
        },
    };
    args.end(&[])?;
    Ok(command)
}

/// Control characters and the bidirectional overrides that can make text read differently
/// from what it says.
fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// A word and where it starts in the line.
#[derive(Debug, Clone, Copy)]
struct Word<'a> {
    text: &'a str,
    start: usize,
}

fn split_words(line: &str) -> Vec<Word<'_>> {
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                words.push(Word {
                    text: &line[s..i],
                    start: s,
                });
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push(Word {
            text: &line[s..],
            start: s,
        });
    }
    words
}

/// The words after the command word, consumed left to right.
struct Args<'a, 'k> {
    line: &'a str,
    words: &'a [Word<'a>],
    pos: usize,
    verb: Verb,
    known: &'k Known,
}

impl<'a> Args<'a, '_> {
    fn next(&mut self) -> Option<Word<'a>> {
        let word = self.words.get(self.pos).copied();
        if word.is_some() {
            self.pos += 1;
        }
        word
    }

    fn required(&mut self, what: &'static str) -> Result<Word<'a>, ParseError> {
        self.next().ok_or(ParseError::MissingArgument {
            verb: self.verb,
            what,
        })
    }

    /// The rest of the line after `because`, verbatim.
    fn reason(&mut self) -> Result<String, ParseError> {
        let rest = match self.words.get(self.pos) {
            Some(w) => &self.line[w.start..],
            None => "",
        };
        self.pos = self.words.len();
        if rest.is_empty() {
            return Err(ParseError::ReasonRequired { verb: self.verb });
        }
        Ok(rest.to_string())
    }

    /// Fails on a word left over; `keywords` are the ones that would have fitted.
    fn end(&mut self, keywords: &[&'static str]) -> Result<(), ParseError> {
        match self.next() {
            None => Ok(()),
            Some(w) => Err(self.unexpected(w, keywords)),
        }
    }

    fn unexpected(&self, word: Word<'_>, keywords: &[&'static str]) -> ParseError {
        ParseError::Unexpected {
            verb: self.verb,
            word: shown(word.text),
            suggestion: closest(word.text, keywords.iter().copied()),
        }
    }

    fn repeated(&self, word: Word<'_>) -> ParseError {
        ParseError::Repeated {
            verb: self.verb,
            word: shown(word.text),
        }
    }

    fn service(&self, word: Word<'_>) -> Result<ServiceName, ParseError> {
        resolve(word.text, &self.known.services)
            .map(ServiceName::new)
            .map_err(|suggestion| ParseError::UnknownService {
                word: shown(word.text),
                suggestion,
            })
    }

    fn env(&self, word: Word<'_>) -> Result<EnvName, ParseError> {
        resolve(word.text, &self.known.environments)
            .map(EnvName::new)
            .map_err(|suggestion| ParseError::UnknownEnvironment {
                word: shown(word.text),
                suggestion,
            })
    }

    /// `all` (which wins over an environment of that name) or an environment.
    fn scope(&self, word: Word<'_>) -> Result<Scope, ParseError> {
        if word.text.eq_ignore_ascii_case("all") {
            Ok(Scope::All)
        } else {
            self.env(word).map(Scope::Env)
        }
    }

    fn tag(&self, word: Word<'_>) -> Result<Tag, ParseError> {
        if crate::image::is_valid_tag(word.text) {
            Ok(Tag::new(word.text))
        } else {
            Err(ParseError::InvalidTag {
                word: shown(word.text),
            })
        }
    }

    fn promote(&mut self) -> Result<Command, ParseError> {
        let service = self.required("a service")?;
        let service = self.service(service)?;
        let (mut to, mut tag, mut reason) = (None, None, None);
        const KEYWORDS: [&str; 3] = ["to", "tag", "because"];
        while let Some(word) = self.next() {
            match word.text.to_ascii_lowercase().as_str() {
                "to" if to.is_some() => return Err(self.repeated(word)),
                "to" => {
                    let word = self.required("an environment after `to`")?;
                    to = Some(self.env(word)?);
                }
                "tag" if tag.is_some() => return Err(self.repeated(word)),
                "tag" => {
                    let word = self.required("a tag after `tag`")?;
                    tag = Some(self.tag(word)?);
                }
                "because" => {
                    reason = Some(self.reason()?);
                    break;
                }
                _ => return Err(self.unexpected(word, &KEYWORDS)),
            }
        }
        Ok(Command::Promote {
            service,
            to,
            tag,
            reason,
        })
    }

    fn rollback(&mut self) -> Result<Command, ParseError> {
        let service = self.required("a service")?;
        let service = self.service(service)?;
        let (mut env, mut to, mut reason) = (None, None, None);
        const KEYWORDS: [&str; 3] = ["in", "to", "because"];
        while let Some(word) = self.next() {
            match word.text.to_ascii_lowercase().as_str() {
                "in" if env.is_some() => return Err(self.repeated(word)),
                "in" => {
                    let word = self.required("an environment after `in`")?;
                    env = Some(self.env(word)?);
                }
                "to" | "tag" if to.is_some() => return Err(self.repeated(word)),
                "to" | "tag" => {
                    let word = self.required("a tag after `to`")?;
                    to = Some(self.tag(word)?);
                }
                "because" => {
                    reason = Some(self.reason()?);
                    break;
                }
                _ => return Err(self.unexpected(word, &KEYWORDS)),
            }
        }
        let env = env.ok_or(ParseError::MissingArgument {
            verb: self.verb,
            what: "an environment (`in <env>`)",
        })?;
        Ok(Command::Rollback {
            service,
            env,
            to,
            reason,
        })
    }

    fn unhold(&mut self) -> Result<Command, ParseError> {
        let service = self.required("a service")?;
        let service = self.service(service)?;
        let Some(word) = self.next() else {
            return Err(ParseError::MissingArgument {
                verb: self.verb,
                what: "an environment (`in <env>`)",
            });
        };
        if !word.text.eq_ignore_ascii_case("in") {
            return Err(self.unexpected(word, &["in"]));
        }
        let env = self.required("an environment after `in`")?;
        let env = self.env(env)?;
        Ok(Command::Unhold { service, env })
    }

    fn freeze(&mut self) -> Result<Command, ParseError> {
        let scope = self.required("an environment or `all`")?;
        let scope = self.scope(scope)?;
        let (mut until, mut reason) = (None, None);
        const KEYWORDS: [&str; 2] = ["until", "because"];
        while let Some(word) = self.next() {
            match word.text.to_ascii_lowercase().as_str() {
                "until" if until.is_some() => return Err(self.repeated(word)),
                "until" => until = Some(parse_until(self.required("a time after `until`")?)?),
                "because" => {
                    reason = Some(self.reason()?);
                    break;
                }
                _ => return Err(self.unexpected(word, &KEYWORDS)),
            }
        }
        let reason = reason.ok_or(ParseError::ReasonRequired { verb: self.verb })?;
        Ok(Command::Freeze {
            scope,
            until,
            reason,
        })
    }
}

fn parse_until(word: Word<'_>) -> Result<Until, ParseError> {
    let text = word.text;
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(Until::At(at.with_timezone(&Utc)));
    }
    // Exactly YYYY-MM-DD: chrono's `%Y` alone would also take signs and short years.
    let shape = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if shape && let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(Until::Day(day));
    }
    Err(ParseError::InvalidTime { word: shown(text) })
}

/// The known name `word` means (exactly, else ignoring ASCII case when that is unambiguous),
/// or the nearest suggestion.
fn resolve(word: &str, known: &[String]) -> Result<String, Option<String>> {
    if let Some(name) = known.iter().find(|k| *k == word) {
        return Ok(name.clone());
    }
    let mut folded = known.iter().filter(|k| k.eq_ignore_ascii_case(word));
    if let (Some(name), None) = (folded.next(), folded.next()) {
        return Ok(name.clone());
    }
    Err(closest(word, known.iter().map(String::as_str)))
}

/// The candidate nearest to `word` within [`MAX_DISTANCE`] edits (ASCII case ignored; the
/// first of equals wins).
fn closest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<String> {
    let word = word.to_lowercase();
    candidates
        .into_iter()
        .filter_map(|c| Some((distance(&word, &c.to_lowercase(), MAX_DISTANCE)?, c)))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

/// Levenshtein distance in characters, or `None` when it is above `max`.
fn distance(a: &str, b: &str, max: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        if current.iter().min().is_some_and(|m| *m > max) {
            return None;
        }
        std::mem::swap(&mut previous, &mut current);
    }
    let d = previous[b.len()];
    (d <= max).then_some(d)
}

/// User input as errors repeat it: at most [`MAX_SHOWN`] characters.
fn shown(word: &str) -> String {
    if word.chars().count() <= MAX_SHOWN {
        word.to_string()
    } else {
        let mut out: String = word.chars().take(MAX_SHOWN - 1).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn known() -> Known {
        Known {
            services: vec!["maths-api".into(), "web".into(), "worker".into()],
            environments: vec!["dev".into(), "qa".into(), "prod".into()],
        }
    }

    fn p(text: &str) -> Result<Command, ParseError> {
        parse(text, &known())
    }

    fn svc(s: &str) -> ServiceName {
        ServiceName::new(s)
    }

    fn env(s: &str) -> EnvName {
        EnvName::new(s)
    }

    #[test]
    fn every_form_parses() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 24).unwrap();
        let at = DateTime::parse_from_rfc3339("2026-12-24T18:00:00+01:00")
            .unwrap()
            .with_timezone(&Utc);
        let cases: Vec<(&str, Command)> = vec![
            (
                "promote maths-api",
                Command::Promote {
                    service: svc("maths-api"),
                    to: None,
                    tag: None,
                    reason: None,
                },
            ),
            (
                "/promoter promote maths-api to qa",
                Command::Promote {
                    service: svc("maths-api"),
                    to: Some(env("qa")),
                    tag: None,
                    reason: None,
                },
            ),
            (
                "@promoter PROMOTE Maths-API To PROD Tag v1.3.0-rc.1 BECAUSE  hotfix  for INC-42 ",
                Command::Promote {
                    service: svc("maths-api"),
                    to: Some(env("prod")),
                    tag: Some(Tag::new("v1.3.0-rc.1")),
                    reason: Some("hotfix  for INC-42".into()),
                },
            ),
            (
                "promoter promote web tag 2.0 to qa because to tag because",
                Command::Promote {
                    service: svc("web"),
                    to: Some(env("qa")),
                    tag: Some(Tag::new("2.0")),
                    reason: Some("to tag because".into()),
                },
            ),
            (
                "\n  promote   web because  \"quoted\" <b> `x` @here\n",
                Command::Promote {
                    service: svc("web"),
                    to: None,
                    tag: None,
                    reason: Some("\"quoted\" <b> `x` @here".into()),
                },
            ),
            (
                "rollback web in prod",
                Command::Rollback {
                    service: svc("web"),
                    env: env("prod"),
                    to: None,
                    reason: None,
                },
            ),
            (
                "rollback web to 1.2.0 in prod because 1.3.0 leaks memory",
                Command::Rollback {
                    service: svc("web"),
                    env: env("prod"),
                    to: Some(Tag::new("1.2.0")),
                    reason: Some("1.3.0 leaks memory".into()),
                },
            ),
            ("status", Command::Status { service: None }),
            (
                "Status worker",
                Command::Status {
                    service: Some(svc("worker")),
                },
            ),
            ("plan", Command::Plan { env: None }),
            (
                "plan qa",
                Command::Plan {
                    env: Some(env("qa")),
                },
            ),
            (
                "freeze prod because release party",
                Command::Freeze {
                    scope: Scope::Env(env("prod")),
                    until: None,
                    reason: "release party".into(),
                },
            ),
            (
                "freeze all until 2026-12-24 because holidays",
                Command::Freeze {
                    scope: Scope::All,
                    until: Some(Until::Day(day)),
                    reason: "holidays".into(),
                },
            ),
            (
                "freeze ALL until 2026-12-24T18:00:00+01:00 because holidays",
                Command::Freeze {
                    scope: Scope::All,
                    until: Some(Until::At(at)),
                    reason: "holidays".into(),
                },
            ),
            (
                "unfreeze prod",
                Command::Unfreeze {
                    scope: Scope::Env(env("prod")),
                },
            ),
            ("unfreeze all", Command::Unfreeze { scope: Scope::All }),
            (
                "unhold web in qa",
                Command::Unhold {
                    service: svc("web"),
                    env: env("qa"),
                },
            ),
            ("help", Command::Help { topic: None }),
            (
                "promoter help Freeze",
                Command::Help {
                    topic: Some(Verb::Freeze),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(p(text), Ok(expected.clone()), "{text:?}");
            assert_eq!(expected.verb().word(), p(text).unwrap().verb().word());
        }
    }

    #[test]
    fn every_error_is_reported() {
        use ParseError as E;
        let word = |s: &str| s.to_string();
        let cases: Vec<(String, ParseError)> = vec![
            ("".into(), E::Empty),
            ("   ".into(), E::Empty),
            ("@promoter".into(), E::Empty),
            ("x".repeat(MAX_LEN + 1), E::TooLong),
            ("promote web\u{0}".into(), E::ControlCharacter),
            ("promote web because a\nb".into(), E::ControlCharacter),
            (
                "promote web because \u{202E}evil".into(),
                E::ControlCharacter,
            ),
            (
                "promte web".into(),
                E::UnknownCommand {
                    word: word("promte"),
                    suggestion: Some(word("promote")),
                },
            ),
            (
                "unfrez all".into(),
                E::UnknownCommand {
                    word: word("unfrez"),
                    suggestion: Some(word("unfreeze")),
                },
            ),
            (
                "deploy web".into(),
                E::UnknownCommand {
                    word: word("deploy"),
                    suggestion: None,
                },
            ),
            (
                "help me".into(),
                E::UnknownCommand {
                    word: word("me"),
                    suggestion: None,
                },
            ),
            (
                "promote math-api".into(),
                E::UnknownService {
                    word: word("math-api"),
                    suggestion: Some(word("maths-api")),
                },
            ),
            (
                "status nothing-like-it".into(),
                E::UnknownService {
                    word: word("nothing-like-it"),
                    suggestion: None,
                },
            ),
            (
                "promote web to prd".into(),
                E::UnknownEnvironment {
                    word: word("prd"),
                    suggestion: Some(word("prod")),
                },
            ),
            (
                "freeze staging because x".into(),
                E::UnknownEnvironment {
                    word: word("staging"),
                    suggestion: None,
                },
            ),
            (
                "promote".into(),
                E::MissingArgument {
                    verb: Verb::Promote,
                    what: "a service",
                },
            ),
            (
                "promote web to".into(),
                E::MissingArgument {
                    verb: Verb::Promote,
                    what: "an environment after `to`",
                },
            ),
            (
                "promote web tag".into(),
                E::MissingArgument {
                    verb: Verb::Promote,
                    what: "a tag after `tag`",
                },
            ),
            (
                "rollback web".into(),
                E::MissingArgument {
                    verb: Verb::Rollback,
                    what: "an environment (`in <env>`)",
                },
            ),
            (
                "rollback web to 1.0 because oops".into(),
                E::MissingArgument {
                    verb: Verb::Rollback,
                    what: "an environment (`in <env>`)",
                },
            ),
            (
                "freeze".into(),
                E::MissingArgument {
                    verb: Verb::Freeze,
                    what: "an environment or `all`",
                },
            ),
            (
                "freeze qa until".into(),
                E::MissingArgument {
                    verb: Verb::Freeze,
                    what: "a time after `until`",
                },
            ),
            (
                "unfreeze".into(),
                E::MissingArgument {
                    verb: Verb::Unfreeze,
                    what: "an environment or `all`",
                },
            ),
            (
                "promote web ot qa".into(),
                E::Unexpected {
                    verb: Verb::Promote,
                    word: word("ot"),
                    suggestion: Some(word("to")),
                },
            ),
            (
                "rollback web on prod".into(),
                E::Unexpected {
                    verb: Verb::Rollback,
                    word: word("on"),
                    suggestion: Some(word("in")),
                },
            ),
            (
                "status web qa".into(),
                E::Unexpected {
                    verb: Verb::Status,
                    word: word("qa"),
                    suggestion: None,
                },
            ),
            (
                "unfreeze prod because done".into(),
                E::Unexpected {
                    verb: Verb::Unfreeze,
                    word: word("because"),
                    suggestion: None,
                },
            ),
            (
                "help promote now".into(),
                E::Unexpected {
                    verb: Verb::Help,
                    word: word("now"),
                    suggestion: None,
                },
            ),
            (
                "promote web to qa to prod".into(),
                E::Repeated {
                    verb: Verb::Promote,
                    word: word("to"),
                },
            ),
            (
                "freeze qa until 2026-01-01 until 2026-02-01 because x".into(),
                E::Repeated {
                    verb: Verb::Freeze,
                    word: word("until"),
                },
            ),
            (
                "promote web tag 1.0/../x".into(),
                E::InvalidTag {
                    word: word("1.0/../x"),
                },
            ),
            (
                "rollback web in qa to -1".into(),
                E::InvalidTag { word: word("-1") },
            ),
            (
                "freeze qa until tomorrow because x".into(),
                E::InvalidTime {
                    word: word("tomorrow"),
                },
            ),
            (
                "freeze qa until 2026-13-01 because x".into(),
                E::InvalidTime {
                    word: word("2026-13-01"),
                },
            ),
            (
                "freeze qa until +2026-1-01 because x".into(),
                E::InvalidTime {
                    word: word("+2026-1-01"),
                },
            ),
            (
                "freeze prod".into(),
                E::ReasonRequired { verb: Verb::Freeze },
            ),
            (
                "freeze prod until 2026-12-24".into(),
                E::ReasonRequired { verb: Verb::Freeze },
            ),
            (
                "freeze prod because   ".into(),
                E::ReasonRequired { verb: Verb::Freeze },
            ),
            (
                "promote web because".into(),
                E::ReasonRequired {
                    verb: Verb::Promote,
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(p(&text), Err(expected), "{text:?}");
        }
    }

    #[test]
    fn messages_say_what_to_do() {
        let message = |t: &str| p(t).unwrap_err().to_string();
        assert_eq!(
            message("promte web"),
            "unknown command `promte` (did you mean `promote`?)"
        );
        assert_eq!(
            message("freeze prod"),
            "freeze needs a reason: freeze <env|all> [until <time|YYYY-MM-DD>] because <reason>"
        );
        assert_eq!(
            message("promote"),
            "promote needs a service: promote <service> [to <env>] [tag <tag>] [because <reason>]"
        );
        let e = p("promote web to prd").unwrap_err();
        assert_eq!(e.problem(), "unknown environment");
        assert_eq!(e.word(), Some("prd"));
        assert_eq!(e.suggestion(), Some("prod"));
        assert_eq!(e.usage(), None);
        let e = p("rollback web").unwrap_err();
        assert_eq!(e.usage(), Some(Verb::Rollback.usage()));
        assert_eq!(e.word(), None);
    }

    #[test]
    fn long_words_are_cut_in_errors_and_exactly_max_len_is_accepted() {
        let long = "a".repeat(500);
        let e = p(&format!("promote {long}")).unwrap_err();
        assert_eq!(e.word().unwrap().chars().count(), MAX_SHOWN);
        let text = format!("promote web because {}", "r".repeat(MAX_LEN - 20));
        assert_eq!(text.chars().count(), MAX_LEN);
        assert!(p(&text).is_ok());
    }

    #[test]
    fn names_match_exactly_before_ignoring_case() {
        let known = Known {
            services: vec!["Api".into(), "api".into()],
            environments: vec!["qa".into()],
        };
        assert_eq!(
            parse("status Api", &known),
            Ok(Command::Status {
                service: Some(svc("Api"))
            })
        );
        // Ambiguous without exact case: suggestion, not a guess.
        assert!(matches!(
            parse("status API", &known),
            Err(ParseError::UnknownService { .. })
        ));
    }

    #[test]
    fn distances() {
        assert_eq!(distance("promte", "promote", 2), Some(1));
        assert_eq!(distance("kitten", "sitting", 3), Some(3));
        assert_eq!(distance("kitten", "sitting", 2), None);
        assert_eq!(distance("a", "abcd", 2), None);
        assert_eq!(closest("PLAM", ["plan", "help"]), Some("plan".to_string()));
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in any::<String>()) {
            let _ = p(&text);
        }

        #[test]
        fn parse_never_panics_on_near_commands(
            words in proptest::collection::vec(
                prop_oneof![
                    Just("promote".to_string()), Just("rollback".to_string()),
                    Just("freeze".to_string()), Just("to".to_string()), Just("in".to_string()),
                    Just("tag".to_string()), Just("until".to_string()),
                    Just("because".to_string()), Just("all".to_string()),
                    Just("web".to_string()), Just("qa".to_string()),
                    "\\PC{0,12}",
                ],
                0..8,
            )
        ) {
            let _ = p(&words.join(" "));
        }
    }
}
