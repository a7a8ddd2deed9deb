//! Announcements where people talk: one line per thing a reconcile did that people want to
//! know about (a promotion MR opened or updated, merged, blocked by a gate a person can act
//! on, closed as no longer due, a freeze or stop-the-line starting and ending, a rollback),
//! posted to incoming webhooks of Slack, Mattermost and Microsoft Teams workflows, each in its
//! own payload format, routed per environment and event (`notify.webhooks`).
//!
//! ```text
//!  Outcome (actions, plan, controls) + Memory ──derive──▶ Vec<Announcement> + Memory
//!                                                     │
//!                          format (per sink kind) ◀───┘──▶ post (edge: reqwest, redacted)
//! ```
//!
//! [`derive`] and [`format`] are pure: what to say, and how each format says it (every text
//! that came from people escaped for that format through [`crate::text::chat`] or
//! [`crate::text::markdown`]). [`post`] is the edge: it remembers what blocks and freezes it
//! already announced (a file in the state directory, so a block is announced once, when it
//! starts or its reason changes), posts with a timeout, logs failures with the webhook URL
//! redacted (URLs are secrets), counts them in `promoter_announcements_total{sink,result}`,
//! and never fails or holds up a reconcile. [`sink`] owns a configured webhook and its routing,
//! [`settings`] checks `notify.*` into sinks.

pub mod derive;
pub mod format;
pub mod post;
pub mod settings;
pub mod sink;

use serde::{Deserialize, Serialize};

pub use derive::{Memory, announcements};
pub use post::Announcer;
pub use sink::{Kind, Sink};

/// What happened, as `notify.webhooks[].events` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A promotion MR was opened.
    Opened,
    /// A promotion MR moved to a newer candidate (or its text changed).
    Updated,
    /// A promotion MR was merged.
    Merged,
    /// A promotion is stopped by a gate a person can act on (semver, policy, health, image).
    Blocked,
    /// A promotion MR was closed: no longer due.
    Closed,
    /// A freeze (or stop-the-line, a freeze of every environment) started.
    FreezeStarted,
    /// A freeze ended.
    FreezeEnded,
    /// A rollback MR was opened.
    Rollback,
}

impl Event {
    /// Every event, in the order the documentation lists them.
    pub const ALL: [Event; 8] = [
        Event::Opened,
        Event::Updated,
        Event::Merged,
        Event::Blocked,
        Event::Closed,
        Event::FreezeStarted,
        Event::FreezeEnded,
        Event::Rollback,
    ];

    /// The name in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Opened => "opened",
            Event::Updated => "updated",
            Event::Merged => "merged",
            Event::Blocked => "blocked",
            Event::Closed => "closed",
            Event::FreezeStarted => "freeze_started",
            Event::FreezeEnded => "freeze_ended",
            Event::Rollback => "rollback",
        }
    }

    /// The event a configuration name stands for.
    pub fn parse(name: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

/// One line to announce. Every string but `url` may hold text from people and is escaped by
/// the format that shows it; `url` is shown as a link only when it is a plain http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Announcement {
    /// What happened.
    pub event: Event,
    /// The target environment (routing uses it).
    pub env: String,
    /// The service, or `None` for a release train or a freeze.
    pub service: Option<String>,
    /// The tag promoted (or rolled back to).
    pub tag: Option<String>,
    /// Why: the gate's message, the close reason, the freeze.
    pub reason: Option<String>,
    /// The merge request's web address.
    pub url: Option<String>,
}
