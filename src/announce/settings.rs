//! `notify.*` checked into [`Sink`]s ([`Settings::announce_sinks`]): every problem names its
//! key (`notify.webhooks[1].kind`) and what to write instead, and never shows a URL.

use std::collections::BTreeSet;

use secrecy::{ExposeSecret, SecretString};

use super::{Event, Kind, Sink};
use crate::config::{Error, Settings, WebhookSection, read_secret_file};

/// The name of the sink `notify.slack_webhook_url` makes.
pub const LEGACY_SLACK: &str = "slack";

impl Settings {
    /// The announcement sinks: `notify.slack_webhook_url` as a Slack sink named `slack` for
    /// every environment and event, then each of `notify.webhooks` (its `url_file` read and
    /// registered as a secret). Names are unique, kinds and events known, URLs https (http
    /// only to 127.0.0.1 or localhost), exactly one of `url` / `url_file`, `channel` only for
    /// Mattermost.
    pub fn announce_sinks(&self) -> Result<Vec<Sink>, Error> {
        let mut sinks = Vec::new();
        if let Some(url) = self
            .notify
            .slack_webhook_url
            .as_ref()
            .filter(|u| !u.expose_secret().trim().is_empty())
        {
            check_url("notify.slack_webhook_url", url)?;
            sinks.push(Sink {
                name: LEGACY_SLACK.to_string(),
                kind: Kind::Slack,
                url: url.clone(),
                channel: None,
                environments: BTreeSet::new(),
                events: BTreeSet::new(),
            });
        }
        for (i, webhook) in self.notify.webhooks.iter().enumerate() {
            let sink = sink(&format!("notify.webhooks[{i}]"), webhook)?;
            if sinks.iter().any(|s: &Sink| s.name == sink.name) {
                return Err(problem(
                    &format!("notify.webhooks[{i}].name"),
                    format!(
                        "{:?} is taken (by another webhook, or `slack` by notify.slack_webhook_url): give each webhook its own name",
                        sink.name
                    ),
                ));
            }
            sinks.push(sink);
        }
        Ok(sinks)
    }
}

fn problem(key: &str, problem: impl Into<String>) -> Error {
    Error::Notify {
        key: key.to_string(),
        problem: problem.into(),
    }
}

fn sink(at: &str, webhook: &WebhookSection) -> Result<Sink, Error> {
    let key = |name: &str| format!("{at}.{name}");
    let name = webhook.name.as_deref().map(str::trim).unwrap_or_default();
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !name_ok {
        return Err(problem(
            &key("name"),
            "required: a name of letters, digits, `-`, `_` or `.` (at most 64), e.g. `prod-releases`",
        ));
    }
    let kind_name = webhook.kind.as_deref().map(str::trim).unwrap_or_default();
    let kind = Kind::parse(kind_name).ok_or_else(|| {
        problem(
            &key("kind"),
            format!("{kind_name:?} is not a kind: write slack, mattermost or teams"),
        )
    })?;
    let url = webhook
        .url
        .as_ref()
        .filter(|u| !u.expose_secret().trim().is_empty());
    let url_file = webhook
        .url_file
        .as_ref()
        .filter(|p| !p.as_os_str().is_empty());
    let (url, url_key) = match (url, url_file) {
        (Some(url), None) => (url.clone(), key("url")),
        (None, Some(path)) => (read_secret_file(&key("url_file"), path)?, key("url_file")),
        (found, _) => {
            return Err(problem(
                &format!("{} / {}", key("url"), key("url_file")),
                format!(
                    "set exactly one of them ({})",
                    if found.is_some() {
                        "both are set"
                    } else {
                        "neither is set"
                    }
                ),
            ));
        }
    };
    check_url(&url_key, &url)?;
    let channel = webhook
        .channel
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if channel.is_some() && kind != Kind::Mattermost {
        return Err(problem(
            &key("channel"),
            "only a Mattermost webhook takes a channel: a Slack or Teams webhook posts where it was made; remove the key",
        ));
    }
    let mut environments = BTreeSet::new();
    for (j, env) in webhook.environments.iter().enumerate() {
        let env = env.trim();
        if env.is_empty() {
            return Err(problem(
                &format!("{}[{j}]", key("environments")),
                "is empty: write an environment's name, e.g. prod",
            ));
        }
        environments.insert(env.to_string());
    }
    let mut events = BTreeSet::new();
    for (j, event) in webhook.events.iter().enumerate() {
        let known: Vec<&str> = Event::ALL.iter().map(|e| e.as_str()).collect();
        let event = Event::parse(event.trim()).ok_or_else(|| {
            problem(
                &format!("{}[{j}]", key("events")),
                format!(
                    "{:?} is not an event: write one of {}",
                    event.trim(),
                    known.join(", ")
                ),
            )
        })?;
        events.insert(event);
    }
    Ok(Sink {
        name: name.to_string(),
        kind,
        url,
        channel: channel.map(ToString::to_string),
        environments,
        events,
    })
}

/// https, or http to 127.0.0.1 or localhost; the URL itself is never shown.
fn check_url(key: &str, url: &SecretString) -> Result<(), Error> {
    let parsed = url::Url::parse(url.expose_secret().trim()).map_err(|e| {
        problem(
            key,
            format!("not a URL ({e}): paste the webhook's whole address"),
        )
    })?;
    let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost"));
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(problem(
            key,
            "must use https (http only to 127.0.0.1 or localhost)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::config;

    fn load(yaml: &str) -> Result<Vec<super::Sink>, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("promoter.yaml");
        std::fs::write(&path, yaml).unwrap();
        let settings =
            config::load(Some(&path), Some(HashMap::new())).map_err(|e| e.to_string())?;
        settings.announce_sinks().map_err(|e| e.to_string())
    }

    #[test]
    fn webhooks_route_by_environment_and_event_and_the_old_key_still_counts() {
        let sinks = load(
            "notify:\n  slack_webhook_url: https://hooks.slack.com/services/T/B/X\n  webhooks:\n    - name: prod-releases\n      kind: mattermost\n      url: https://chat.example.com/hooks/abc\n      channel: releases\n      environments: [prod]\n      events: [merged, freeze_started, freeze_ended]\n    - name: teams\n      kind: teams\n      url: https://example.webhook.office.com/workflows/x\n",
        )
        .unwrap();
        assert_eq!(sinks.len(), 3);
        assert_eq!(sinks[0].name, "slack");
        assert!(sinks[0].environments.is_empty() && sinks[0].events.is_empty());
        assert_eq!(sinks[1].kind, super::Kind::Mattermost);
        assert_eq!(sinks[1].channel.as_deref(), Some("releases"));
        assert!(sinks[1].environments.contains("prod"));
        assert_eq!(sinks[1].events.len(), 3);
        assert_eq!(sinks[2].kind, super::Kind::Teams);
    }

    #[test]
    fn bad_webhooks_are_refused_naming_the_key_and_never_the_url() {
        for (yaml, key, hint) in [
            (
                "    - name: a\n      kind: discord\n      url: https://x.example/SECRETPATH\n",
                "notify.webhooks[0].kind",
                "slack, mattermost or teams",
            ),
            (
                "    - kind: slack\n      url: https://x.example/SECRETPATH\n",
                "notify.webhooks[0].name",
                "required",
            ),
            (
                "    - name: a\n      kind: slack\n",
                "notify.webhooks[0].url / notify.webhooks[0].url_file",
                "neither",
            ),
            (
                "    - name: a\n      kind: slack\n      url: http://x.example/SECRETPATH\n",
                "notify.webhooks[0].url",
                "https",
            ),
            (
                "    - name: a\n      kind: slack\n      url: https://x.example/SECRETPATH\n      channel: c\n",
                "notify.webhooks[0].channel",
                "Mattermost",
            ),
            (
                "    - name: a\n      kind: slack\n      url: https://x.example/SECRETPATH\n      events: [opened, deployed]\n",
                "notify.webhooks[0].events[1]",
                "freeze_started",
            ),
            (
                "    - name: a\n      kind: slack\n      url: https://x.example/SECRETPATH\n    - name: a\n      kind: teams\n      url: https://y.example/SECRETPATH\n",
                "notify.webhooks[1].name",
                "taken",
            ),
        ] {
            let error = load(&format!("notify:\n  webhooks:\n{yaml}")).unwrap_err();
            assert!(error.starts_with(key), "{key}: {error}");
            assert!(error.contains(hint), "{hint}: {error}");
            assert!(!error.contains("SECRETPATH"), "{error}");
        }
    }

    #[test]
    fn a_url_file_is_read_and_an_unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hook");
        std::fs::write(&file, "https://hooks.slack.com/services/T/B/FROMFILE\n").unwrap();
        let sinks = load(&format!(
            "notify:\n  webhooks:\n    - name: a\n      kind: slack\n      url_file: {}\n",
            file.display()
        ))
        .unwrap();
        use secrecy::ExposeSecret;
        assert_eq!(
            sinks[0].url.expose_secret(),
            "https://hooks.slack.com/services/T/B/FROMFILE"
        );
        let error = load("notify:\n  webhooks:\n    - name: a\n      kind: slack\n      adress: https://x.example\n").unwrap_err();
        assert!(error.contains("notify.webhooks"), "{error}");
    }
}
