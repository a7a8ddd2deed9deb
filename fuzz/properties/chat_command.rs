//! Property of the chat command parser, `promoter::chatops::command::parse`, and of the replies
//! that repeat its input, shared by the `chat_command` fuzz target and
//! `tests/it/fuzz_regressions.rs`.
//!
//! Input: one line of chat text (invalid UTF-8 is read lossily), parsed against a fixed snapshot
//! of names. A parsed command names only known services and environments and valid tags, and
//! its reason is the end of the line as typed; an error repeats at most 60 characters of input.
//! Either way, the reply rendered for Slack, Mattermost and GitLab can mention no one (every
//! `@here`-style group mention is defused) and starts no line with `/` (a GitLab quick action).

use std::sync::LazyLock;

use promoter::chatops::command::{Command, Known, MAX_LEN, ParseError, Scope, Verb, parse};
use promoter::chatops::reply::{Accepted, Action, Flavor, ParseFailure, Replies};
use promoter::image::is_valid_tag;

/// The names commands may use.
pub fn known() -> Known {
    Known {
        services: vec![
            "maths-api".into(),
            "client".into(),
            "Web".into(),
            "web".into(),
        ],
        environments: vec!["dev".into(), "qa".into(), "prod".into()],
    }
}

static REPLIES: LazyLock<Replies> =
    LazyLock::new(|| Replies::new().expect("the built-in templates load"));

const FLAVORS: [Flavor; 3] = [Flavor::Slack, Flavor::Mattermost, Flavor::GitLab];

/// Panics when parsing `data`, or replying to it, breaks the property.
pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    let known = known();
    let result = parse(text, &known);
    assert_eq!(parse(text, &known), result, "parsing is not deterministic");
    if text.chars().count() > MAX_LEN {
        assert_eq!(result, Err(ParseError::TooLong));
    }
    match result {
        Ok(command) => check_command(text, &known, &command),
        Err(error) => check_error(&error),
    }
}

fn check_command(text: &str, known: &Known, command: &Command) {
    let service_ok = |s: &str| known.services.iter().any(|k| k == s);
    let env_ok = |e: &str| known.environments.iter().any(|k| k == e);
    let (service, envs, tags, reason) = match command {
        Command::Promote {
            service,
            to,
            tag,
            reason,
        } => (
            Some(service),
            to.iter().collect(),
            tag.iter().collect(),
            reason.as_ref(),
        ),
        Command::Rollback {
            service,
            env,
            to,
            reason,
        } => (
            Some(service),
            vec![env],
            to.iter().collect(),
            reason.as_ref(),
        ),
        Command::Status { service } => (service.as_ref(), vec![], vec![], None),
        Command::Unhold { service, env } => (Some(service), vec![env], vec![], None),
        Command::Plan { env } => (None, env.iter().collect(), vec![], None),
        Command::Freeze { scope, reason, .. } => (
            None,
            scope_env(scope).into_iter().collect(),
            vec![],
            Some(reason),
        ),
        Command::Unfreeze { scope } => (None, scope_env(scope).into_iter().collect(), vec![], None),
        Command::Help { topic } => {
            assert!(topic.is_none_or(|t| Verb::ALL.contains(&t)));
            (None, vec![], vec![], None)
        }
    };
    if let Some(service) = service {
        assert!(
            service_ok(service.as_str()),
            "unknown service {service:?} accepted"
        );
    }
    for env in envs {
        assert!(env_ok(env.as_str()), "unknown environment {env:?} accepted");
    }
    for tag in tags {
        assert!(is_valid_tag(tag.as_str()), "invalid tag {tag:?} accepted");
    }
    if let Some(reason) = reason {
        assert!(
            !reason.is_empty() && text.trim().ends_with(reason.as_str()),
            "the reason {reason:?} is not the end of the line"
        );
        assert!(
            !reason.chars().any(char::is_control),
            "a control character in {reason:?}"
        );
        if let Command::Promote { service, .. } | Command::Rollback { service, .. } = command {
            let accepted = Accepted {
                action: if command.verb() == Verb::Promote {
                    Action::Promotion
                } else {
                    Action::Rollback
                },
                service: service.as_str().to_string(),
                env: "prod".into(),
                from_tag: Some("1.0.0".into()),
                to_tag: "1.1.0".into(),
                mr_url: "https://gitlab.example.com/platform/environments/-/merge_requests/7"
                    .into(),
                mr_iid: Some(7),
                requested_by: "alice".into(),
                reason: Some(reason.clone()),
            };
            for flavor in FLAVORS {
                let reply = REPLIES
                    .accepted(flavor, &accepted)
                    .expect("the reply renders");
                check_reply(flavor, &reply);
            }
        }
    }
}

fn scope_env(scope: &Scope) -> Option<&promoter::model::EnvName> {
    match scope {
        Scope::All => None,
        Scope::Env(env) => Some(env),
    }
}

fn check_error(error: &ParseError) {
    let _ = error.to_string();
    if let Some(word) = error.word() {
        assert!(
            word.chars().count() <= 60,
            "the error repeats {} characters",
            word.chars().count()
        );
    }
    let failure = ParseFailure {
        invocation: "/promoter".into(),
        error: error.clone(),
    };
    for flavor in FLAVORS {
        let reply = REPLIES
            .parse_error(flavor, &failure)
            .expect("the reply renders");
        check_reply(flavor, &reply);
    }
}

/// No group mention, no Slack special (`<!here>`, `<@U1>`), no quick action.
fn check_reply(flavor: Flavor, reply: &str) {
    let lower = reply.to_lowercase();
    for group in ["@here", "@channel", "@everyone", "@all"] {
        assert!(
            !lower.contains(group),
            "{flavor:?} reply mentions {group}: {reply}"
        );
    }
    if flavor == Flavor::Slack {
        assert!(
            !reply.contains("<!") && !reply.contains("<@"),
            "Slack special in: {reply}"
        );
    }
    for line in reply.lines() {
        assert!(
            !line.trim_start().starts_with('/'),
            "{flavor:?} line is a quick action: {line}"
        );
    }
}
