//! What the daemon's loop is asked to do: a [`Trigger`] names one cause (a schedule firing, the
//! resync ticker, a webhook, a person's [`ChatRequest`]), and a [`Batch`] gathers the reconcile
//! triggers that piled up while the loop was busy so the next reconcile handles them all at
//! once. The vocabulary the server and the loop share; pure data, no I/O.

use std::collections::BTreeSet;
use std::fmt;

use super::request::ChatRequest;
use crate::model::EnvName;

/// One reason for the loop to act.
#[derive(Debug, PartialEq, Eq)]
pub enum Trigger {
    /// An environment's `schedule` fired: its train may run.
    Schedule(EnvName),
    /// The periodic resync ticker.
    Resync,
    /// A GitLab webhook worth reacting to.
    Webhook {
        /// The `X-Gitlab-Event` header, e.g. `Merge Request Hook`.
        event: String,
        /// What happened, short, e.g. `!12 merge promoter/qa/api -> main`.
        detail: String,
    },
    /// A person asked (Slack, Mattermost, an MR comment): answered by the chat handlers, in
    /// turn with the reconciles when it needs one.
    Chat(ChatRequest),
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Schedule(env) => write!(f, "schedule of {env}"),
            Self::Resync => f.write_str("resync"),
            Self::Webhook { event, detail } => write!(f, "webhook {event}: {detail}"),
            Self::Chat(request) => write!(f, "request: {request}"),
        }
    }
}

/// The triggers one reconcile answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Environments whose schedule fired: their trains may run in this reconcile.
    pub scheduled: BTreeSet<EnvName>,
    /// One short reason per trigger, in arrival order (for logs).
    pub reasons: Vec<String>,
}

impl Batch {
    /// Adds a trigger: its reason, and for a schedule its environment. (The loop hands chat
    /// requests to the handlers instead; one absorbed here only counts as a reason.)
    pub fn absorb(&mut self, trigger: Trigger) {
        self.reasons.push(trigger.to_string());
        if let Trigger::Schedule(env) = trigger {
            self.scheduled.insert(env);
        }
    }

    /// Whether no trigger was absorbed.
    pub fn is_empty(&self) -> bool {
        self.reasons.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absorb_collects_reasons_and_scheduled_environments() {
        let mut batch = Batch::default();
        assert!(batch.is_empty());
        batch.absorb(Trigger::Schedule(EnvName::from("qa")));
        batch.absorb(Trigger::Resync);
        batch.absorb(Trigger::Webhook {
            event: "Merge Request Hook".into(),
            detail: "!7 merge promoter/qa/api -> main".into(),
        });
        let (reply, _answer) = tokio::sync::oneshot::channel();
        batch.absorb(Trigger::Chat(ChatRequest {
            flavor: crate::chatops::reply::Flavor::Slack,
            invocation: "/promoter".into(),
            text: "promote api to prod".into(),
            asker: crate::daemon::request::Asker {
                identities: vec!["slack:alice".into()],
                place: "Slack #deploys".into(),
            },
            reply: crate::daemon::request::ReplyTo::Http(reply),
        }));
        batch.absorb(Trigger::Schedule(EnvName::from("qa")));
        batch.absorb(Trigger::Schedule(EnvName::from("prod")));
        assert!(!batch.is_empty());
        assert_eq!(
            batch
                .scheduled
                .iter()
                .map(EnvName::as_str)
                .collect::<Vec<_>>(),
            ["prod", "qa"]
        );
        assert_eq!(
            batch.reasons,
            [
                "schedule of qa",
                "resync",
                "webhook Merge Request Hook: !7 merge promoter/qa/api -> main",
                "request: slack:alice in Slack #deploys: promote",
                "schedule of qa",
                "schedule of prod",
            ]
        );
    }
}
