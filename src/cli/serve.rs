//! One project's daemon loop, as `promoter daemon` runs it for the project of `gitlab.project`
//! and for each entry of `projects:` alike: its reconciler (GitLab, the git mirror, the
//! registry), what follows each reconcile ([`Cycle`]: metrics, announcements, dashboard,
//! readiness, schedules), the chat use cases ([`Handlers`]) and the periodic resync, fed by
//! one inbox of [`Trigger`]s. Wiring only: the HTTP routes that fill the inbox are built by
//! the caller.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::adapters::{announcer, reconciler};
use super::cycle::{Cycle, Timer};
use crate::config::Settings;
use crate::daemon::{self, Clock, Trigger, schedule};
use crate::forge::gitlab::budget::TokenBucket;
use crate::handlers::Handlers;
use crate::metrics::Metrics;
use crate::server::chat::ChatState;
use crate::server::{self, Readiness, ServerState};

/// What one project's loop shares with the daemon around it.
#[derive(Clone)]
pub(super) struct Parts {
    /// The project's whole settings.
    pub settings: Settings,
    pub clock: Clock,
    /// The project's metrics (labelled with its name when the daemon serves several).
    pub metrics: Arc<Metrics>,
    /// The project's dashboard page, as `GET /` (or `/projects/<name>/`) serves it.
    pub page: Arc<crate::dashboard::Page>,
    pub readiness: Arc<Readiness>,
    /// The sender of the project's inbox (schedules and the resync queue here).
    pub triggers: mpsc::Sender<Trigger>,
    pub shutdown: watch::Receiver<bool>,
    /// The request budget of the project's GitLab host, shared by the projects there; `None`:
    /// a budget of its own.
    pub budget: Option<Arc<TokenBucket>>,
}

/// A project's loop, connected and ready to run.
pub(super) struct ProjectLoop {
    handlers: Handlers,
    timer: Arc<Mutex<Timer>>,
    resync: JoinHandle<()>,
    shutdown: watch::Receiver<bool>,
}

impl ProjectLoop {
    /// Connects to GitLab, opens (or clones) the mirror, reads the templates and starts the
    /// periodic resync; a failure here is the project's (unreachable, bad credentials,
    /// invalid templates), and nothing of it keeps running.
    pub(super) async fn start(parts: Parts) -> anyhow::Result<Self> {
        let Parts {
            settings,
            clock,
            metrics,
            page,
            readiness,
            triggers,
            shutdown,
            budget,
        } = parts;
        let announcer = announcer(&settings, Some(metrics.clone()))?;
        // The daemon keeps what each cycle read and asks only what changed since.
        let reconciler = Arc::new(
            reconciler(&settings, Some(metrics.clone()), budget)
                .await?
                .with_incremental(true),
        );
        // Every environment's series at zero before the first reconcile ends.
        match reconciler.environments().await {
            Ok((envs, pairs)) => metrics.seed_environments(&envs, &pairs),
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "cannot list the environments for the metrics yet")
            }
        }
        let timer: Arc<Mutex<Timer>> = Arc::default();
        let cycle = Cycle {
            reconciler: reconciler.clone(),
            metrics,
            announcer,
            page,
            readiness,
            clock,
            timer: timer.clone(),
            triggers: triggers.clone(),
            shutdown: shutdown.clone(),
            waited_ms: AtomicU64::new(0),
            budget_ms: AtomicU64::new(0),
        };
        let replies =
            crate::chatops::reply::Replies::new().context("invalid chat-ops templates")?;
        let handlers = Handlers::new(reconciler, clock, replies).with_after(Box::new(cycle));
        let resync = tokio::spawn(schedule::resync(
            settings.reconcile.resync_interval,
            triggers.clone(),
            shutdown.clone(),
        ));
        let _ = triggers.send(Trigger::Resync).await;
        Ok(Self {
            handlers,
            timer,
            resync,
            shutdown,
        })
    }

    /// Runs the loop on `inbox` until shutdown, then stops the project's timers.
    pub(super) async fn run(self, inbox: mpsc::Receiver<Trigger>) {
        daemon::run(inbox, &self.handlers, self.shutdown.clone()).await;
        self.resync.abort();
        if let Some(task) = self
            .timer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .take()
        {
            task.abort();
        }
    }
}

/// How many triggers a project's inbox holds before webhooks are dropped (and counted).
pub(super) const INBOX: usize = 256;

/// The server's routes (webhooks, probes, chat-ops), handing what they decode to `triggers`.
pub(super) fn http_routes(
    settings: &Settings,
    triggers: &mpsc::Sender<Trigger>,
    readiness: &Arc<Readiness>,
    clock: Clock,
) -> anyhow::Result<axum::Router> {
    let state = ServerState {
        webhook_secret: settings.server.webhook_secret.clone(),
        triggers: triggers.clone(),
        readiness: readiness.clone(),
        project: settings
            .gitlab
            .project
            .as_deref()
            .map(server::project::ProjectRef::parse),
        branch: settings.git.branch.clone(),
        clock,
    };
    if state.webhook_secret.is_none() {
        tracing::warn!("server.webhook_secret is not set: every webhook will be refused");
    }
    let chat = ChatState {
        triggers: triggers.clone(),
        clock,
        slack_secret: settings.chatops.slack.signing_secret.clone(),
        mattermost_token: settings.chatops.mattermost.token.clone(),
        mattermost_url: settings.mattermost_url().context("invalid configuration")?,
        http: reqwest::Client::new(),
        guard: Arc::default(),
    };
    Ok(server::router(state).merge(server::chat::routes(chat)))
}

/// Resolves when `shutdown` turns true (never, if its sender is gone without setting it).
pub(super) async fn until_stopped(mut shutdown: tokio::sync::watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The daemon's exit once its loops have stopped: the HTTP server task's own result.
pub(super) async fn server_stopped(
    server: JoinHandle<Result<(), server::Error>>,
) -> anyhow::Result<std::process::ExitCode> {
    match server.await {
        Ok(Ok(())) => Ok(std::process::ExitCode::SUCCESS),
        Ok(Err(e)) => Err(e).context("the HTTP server failed"),
        Err(e) => Err(e).context("the HTTP server task failed"),
    }
}
