//! The edge of announcements: after each reconcile, [`Announcer::prepare`] derives what to
//! say (remembering, in `<state_dir>/announcements.json`, the blocks and freezes already
//! announced) and [`Announcer::post`] POSTs each line to the sinks that want it. Nothing here
//! fails a reconcile: a failure to post is logged (the webhook URL is a secret and is never
//! shown: errors carry no URL, and the log writer redacts registered secrets) and counted in
//! `promoter_announcements_total{sink,result="failed"}`; after a sink fails once in a batch,
//! the rest of that batch is counted as failed without waiting on it again.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use secrecy::ExposeSecret;

use super::derive::{self, Input, Memory};
use super::{Announcement, Sink, format};
use crate::metrics::Metrics;
use crate::reconcile::Outcome;

/// The time limit on one POST.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The file in the state directory holding the [`Memory`].
pub const MEMORY_FILE: &str = "announcements.json";

/// Why a line could not be posted; never holds the URL.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The webhook answered with an error status.
    #[error("the webhook answered {status}: {body}")]
    Status {
        /// The status.
        status: u16,
        /// The start of its body.
        body: String,
    },
    /// No answer (connection refused, timeout, TLS); the URL is stripped from the source.
    #[error("posting to the webhook failed")]
    Transport(#[source] reqwest::Error),
}

/// Posts announcements to the configured sinks.
#[derive(Debug)]
pub struct Announcer {
    sinks: Vec<Sink>,
    client: reqwest::Client,
    memory_file: PathBuf,
    memory: Mutex<Option<Memory>>,
    metrics: Option<Arc<Metrics>>,
}

impl Announcer {
    /// An announcer for `sinks`, remembering in `<state_dir>/announcements.json`, counting in
    /// `metrics`.
    pub fn new(
        sinks: Vec<Sink>,
        state_dir: &std::path::Path,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an http client with rustls builds");
        Self {
            sinks,
            client,
            memory_file: state_dir.join(MEMORY_FILE),
            memory: Mutex::new(None),
            metrics,
        }
    }

    /// The sinks' names (the metric's `sink` label values).
    pub fn sink_names(&self) -> Vec<String> {
        self.sinks.iter().map(|s| s.name.clone()).collect()
    }

    /// What `outcome` announces; remembers its blocks and freezes. Nothing without sinks.
    pub fn prepare(&self, outcome: &Outcome) -> Vec<Announcement> {
        if self.sinks.is_empty() {
            return Vec::new();
        }
        let mut guard = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
        let memory = guard.get_or_insert_with(|| self.load());
        let input = Input {
            actions: &outcome.actions,
            plan: outcome.plan.as_deref(),
            controls: outcome
                .dashboard
                .as_ref()
                .map_or(&[][..], |d| d.controls.as_slice()),
        };
        let (lines, next) = derive::announcements(input, memory);
        if next != *memory {
            self.save(&next);
            *memory = next;
        }
        lines
    }

    /// Posts every line to every sink that wants it; logs and counts failures.
    pub async fn post(&self, lines: &[Announcement]) {
        for sink in &self.sinks {
            let mut down = false;
            for line in lines.iter().filter(|l| sink.wants(l)) {
                let ok = !down && self.post_one(sink, line).await;
                down |= !ok;
                if let Some(metrics) = &self.metrics {
                    metrics.record_announcement(&sink.name, ok);
                }
            }
        }
    }

    /// [`prepare`](Self::prepare), then [`post`](Self::post).
    pub async fn announce(&self, outcome: &Outcome) {
        let lines = self.prepare(outcome);
        self.post(&lines).await;
    }

    async fn post_one(&self, sink: &Sink, line: &Announcement) -> bool {
        let body = format::payload(sink.kind, line, sink.channel.as_deref());
        match self.send(sink, &body).await {
            Ok(()) => {
                tracing::info!(
                    sink = sink.name,
                    event = line.event.as_str(),
                    env = line.env,
                    "announced"
                );
                true
            }
            Err(error) => {
                tracing::warn!(
                    sink = sink.name,
                    kind = sink.kind.as_str(),
                    event = line.event.as_str(),
                    error = %crate::redact::redact(&error_chain(&error)),
                    "cannot post an announcement; the reconcile goes on"
                );
                false
            }
        }
    }

    async fn send(&self, sink: &Sink, body: &serde_json::Value) -> Result<(), PostError> {
        let response = self
            .client
            .post(sink.url.expose_secret())
            .timeout(TIMEOUT)
            .json(body)
            .send()
            .await
            .map_err(|e| PostError::Transport(e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let bytes = response.bytes().await.unwrap_or_default();
        Err(PostError::Status {
            status: status.as_u16(),
            body: crate::text::excerpt::error_body(&bytes),
        })
    }

    fn load(&self) -> Memory {
        match std::fs::read(&self.memory_file) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                tracing::warn!(file = %self.memory_file.display(), %error, "cannot read what was announced; starting afresh");
                Memory::default()
            }),
            Err(_) => Memory::default(),
        }
    }

    fn save(&self, memory: &Memory) {
        let bytes = serde_json::to_vec_pretty(memory).expect("plain data");
        if let Err(error) = crate::atomic_file::replace(&self.memory_file, &bytes) {
            tracing::warn!(file = %self.memory_file.display(), %error, "cannot remember what was announced");
        }
    }
}

/// `error` and its sources, one after the other.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
