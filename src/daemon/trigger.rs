//! Why the daemon reconciles: a [`Trigger`] names one cause (a schedule firing, the resync
//! ticker, a webhook, a request), and a [`Batch`] gathers the triggers that piled up while a
//! reconcile ran so the next reconcile handles them all at once. Pure data; no I/O.

use std::collections::BTreeSet;
use std::fmt;

use crate::model::EnvName;

/// One reason to reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// A person or tool asked (chat-ops, CLI).
    Request {
        /// Who asked for what, short.
        detail: String,
    },
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Schedule(env) => write!(f, "schedule of {env}"),
            Self::Resync => f.write_str("resync"),
            Self::Webhook { event, detail } => write!(f, "webhook {event}: {detail}"),
            Self::Request { detail } => write!(f, "request: {detail}"),
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
    /// Adds a trigger: its reason, and for a schedule its environment.
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
        batch.absorb(Trigger::Request {
            detail: "alice: promote api to prod".into(),
        });
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
                "request: alice: promote api to prod",
                "schedule of qa",
                "schedule of prod",
            ]
        );
    }
}
