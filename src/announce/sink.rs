//! One configured incoming webhook (`notify.webhooks[]`, or the older
//! `notify.slack_webhook_url`): its name (the metric's `sink` label), its format, its URL (a
//! secret) and which environments and events it hears about.

use std::collections::BTreeSet;

use secrecy::SecretString;

use super::{Announcement, Event};

/// The payload format a webhook reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Slack incoming webhook (mrkdwn).
    Slack,
    /// Mattermost incoming webhook (Markdown, optional channel).
    Mattermost,
    /// Microsoft Teams workflow (Adaptive Card).
    Teams,
}

impl Kind {
    /// The name in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Slack => "slack",
            Kind::Mattermost => "mattermost",
            Kind::Teams => "teams",
        }
    }

    /// The kind a configuration name stands for.
    pub fn parse(name: &str) -> Option<Kind> {
        [Kind::Slack, Kind::Mattermost, Kind::Teams]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// A webhook announcements are posted to, checked.
#[derive(Debug, Clone)]
pub struct Sink {
    /// Its name, unique among the sinks (the `sink` label of the metric).
    pub name: String,
    /// Its format.
    pub kind: Kind,
    /// Where to POST (a secret: whoever has it can post).
    pub url: SecretString,
    /// The Mattermost channel to post in instead of the webhook's own.
    pub channel: Option<String>,
    /// The target environments it hears about; empty: every one.
    pub environments: BTreeSet<String>,
    /// The events it hears about; empty: every one.
    pub events: BTreeSet<Event>,
}

impl Sink {
    /// True when this sink is to hear `a`.
    pub fn wants(&self, a: &Announcement) -> bool {
        (self.environments.is_empty() || self.environments.contains(&a.env))
            && (self.events.is_empty() || self.events.contains(&a.event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_by_environment_and_event() {
        let sink = Sink {
            name: "prod-channel".into(),
            kind: Kind::Slack,
            url: SecretString::from("https://hooks.slack.com/services/T/B/X"),
            channel: None,
            environments: BTreeSet::from(["prod".to_string()]),
            events: BTreeSet::from([Event::Merged, Event::FreezeStarted]),
        };
        let a = |event, env: &str| Announcement {
            event,
            env: env.into(),
            service: None,
            tag: None,
            reason: None,
            url: None,
        };
        assert!(sink.wants(&a(Event::Merged, "prod")));
        assert!(!sink.wants(&a(Event::Merged, "qa")));
        assert!(!sink.wants(&a(Event::Opened, "prod")));
        let everything = Sink {
            environments: BTreeSet::new(),
            events: BTreeSet::new(),
            ..sink
        };
        assert!(everything.wants(&a(Event::Opened, "qa")));
    }
}
