//! Where a person's answer goes, as a value: a chat's waiting HTTP request (the first answer
//! through [`FirstAnswer`], a later result through its own channel) or a comment on the MR the
//! command was typed on.

use tokio::sync::oneshot;

use super::Handlers;
use crate::chatops::reply::BUSY;
use crate::daemon::{FirstAnswer, ReplyTo};
use crate::forge::Forge;

/// The reply side of a request not answered yet.
pub struct Reply(ReplyTo);

/// Where the result of a queued command goes.
pub enum Destination {
    /// The chat's request is waiting for it (then posted to `response_url`).
    Http(oneshot::Sender<String>),
    /// A comment on MR `iid`.
    Note(u64),
}

impl Reply {
    /// The reply side of a request.
    pub fn new(to: ReplyTo) -> Self {
        Self(to)
    }

    /// The whole answer, now.
    pub fn now(self, handlers: &Handlers, text: String) {
        match self.0 {
            ReplyTo::Http(first) => {
                let _ = first.send(FirstAnswer::Done(text));
            }
            ReplyTo::MergeRequest { iid, .. } => comment(handlers, iid, text),
        }
    }

    /// Too many commands wait: this one is not run.
    pub fn busy(self, handlers: &Handlers) {
        match self.0 {
            ReplyTo::Http(first) => {
                let _ = first.send(FirstAnswer::Busy);
            }
            ReplyTo::MergeRequest { iid, .. } => comment(handlers, iid, BUSY.to_string()),
        }
    }

    /// "Working on it"; where the result goes, or `None` when nobody waits for it any more
    /// (the chat's request gave up: the command is not run).
    pub fn working(self, note: &str) -> Option<Destination> {
        match self.0 {
            ReplyTo::Http(first) => {
                let (result, later) = oneshot::channel();
                let working = FirstAnswer::Working {
                    note: note.to_string(),
                    result: later,
                };
                match first.send(working) {
                    Ok(()) => Some(Destination::Http(result)),
                    Err(_) => {
                        tracing::warn!("the chat request gave up waiting: command not run");
                        None
                    }
                }
            }
            ReplyTo::MergeRequest { iid, .. } => Some(Destination::Note(iid)),
        }
    }
}

impl Destination {
    /// Delivers the result.
    pub async fn deliver(self, handlers: &Handlers, text: String) {
        match self {
            Self::Http(result) => {
                let _ = result.send(text);
            }
            Self::Note(iid) => {
                if let Err(e) = handlers.reconciler.forge().add_note(iid, &text).await {
                    tracing::warn!(error = %e, iid, "cannot answer an MR comment");
                }
            }
        }
    }
}

/// Comments on MR `iid` without holding up the loop.
fn comment(handlers: &Handlers, iid: u64, text: String) {
    let reconciler = handlers.reconciler.clone();
    tokio::spawn(async move {
        if let Err(e) = reconciler.forge().add_note(iid, &text).await {
            tracing::warn!(error = %e, iid, "cannot answer an MR comment");
        }
    });
}
