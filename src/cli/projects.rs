//! `promoter daemon` with `projects:`: one process serving several GitLab projects. Each
//! project runs the single-project loop ([`ProjectLoop`]) with its own settings, inbox, mirror,
//! metrics (labelled `project`), dashboard and readiness, so one reconcile at a time per
//! project and several projects at once. Projects on one GitLab host share that host's request
//! budget. A project that cannot start (GitLab unreachable, a bad token, a mirror that cannot
//! be cloned) is retried with backoff while the others run; a failing reconcile is the
//! project's own, as in a single-project daemon. Wiring only: the HTTP front that routes
//! webhooks by project is [`crate::server::projects`].

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use super::serve::{INBOX, Parts, ProjectLoop, http_routes, server_stopped, until_stopped};
use crate::config::{Project, Settings};
use crate::daemon::{self, Clock, Trigger};
use crate::forge::gitlab::budget::TokenBucket;
use crate::metrics::Metrics;
use crate::server::project::ProjectRef;
use crate::server::projects::Served;
use crate::server::{self, Readiness};

/// The first wait before a project that could not start is tried again; it doubles up to
/// [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(5);
const MAX_RETRY: Duration = Duration::from_secs(300);

/// Serves every project of `projects` (from [`Settings::projects`]) until SIGTERM.
pub(super) async fn daemon(settings: Settings, projects: Vec<Project>) -> anyhow::Result<ExitCode> {
    let clock = Clock::system();
    let listener = server::bind(settings.server.listen)
        .await
        .context("cannot start the HTTP server")?;
    let shutdown = daemon::shutdown_signal();
    let mut budgets = Budgets::default();
    let mut served = Vec::with_capacity(projects.len());
    let mut all_metrics = Vec::with_capacity(projects.len());
    let mut loops = Vec::with_capacity(projects.len());
    for project in projects {
        let settings = project.settings;
        let (triggers, inbox) = mpsc::channel(INBOX);
        let readiness = Arc::new(Readiness::new(settings.reconcile.resync_interval * 3));
        readiness.mark_config_loaded();
        let metrics = Arc::new(Metrics::for_project(&project.name));
        let page: Arc<crate::dashboard::Page> = Arc::default();
        let routes = http_routes(&settings, &triggers, &readiness, clock)?
            .merge(crate::metrics::dashboard_route(page.clone()));
        served.push(Served {
            name: project.name.clone(),
            project: ProjectRef::parse(settings.gitlab.project.as_deref().unwrap_or_default()),
            webhook_secret: settings.server.webhook_secret.clone(),
            readiness: readiness.clone(),
            routes,
        });
        all_metrics.push(metrics.clone());
        let budget = budgets.of(&settings);
        let parts = Parts {
            settings,
            clock,
            metrics,
            page,
            readiness,
            triggers,
            shutdown: shutdown.clone(),
            budget,
        };
        loops.push((project.name, parts, inbox));
    }
    tracing::info!(projects = loops.len(), "serving several projects");
    let app = server::projects::router(served, clock).merge(crate::metrics::routes_of(all_metrics));
    let server = tokio::spawn(server::run(listener, app, until_stopped(shutdown.clone())));

    let mut tasks = tokio::task::JoinSet::new();
    for (name, parts, inbox) in loops {
        let span = tracing::info_span!("project", project = %name);
        tasks.spawn(serve(parts, inbox).instrument(span));
    }
    while let Some(finished) = tasks.join_next().await {
        if let Err(error) = finished {
            // A panic in one project's loop is logged; the others go on.
            tracing::error!(%error, "a project's loop stopped");
        }
    }
    server_stopped(server).await
}

/// One project: started (retried with backoff while it cannot start), then run until
/// shutdown. Triggers that arrive meanwhile wait in its inbox.
async fn serve(parts: Parts, inbox: mpsc::Receiver<Trigger>) {
    let mut shutdown = parts.shutdown.clone();
    let readiness = parts.readiness.clone();
    let mut wait = FIRST_RETRY;
    loop {
        match ProjectLoop::start(parts.clone()).await {
            Ok(project) => {
                readiness.mark_start_failed(None);
                tracing::info!("project started");
                project.run(inbox).await;
                return;
            }
            Err(error) => {
                // Shown by /readyz, which no log layer masks: masked here.
                let why = crate::redact::redact(&format!("{error:#}"));
                tracing::error!(error = %why, retry_in = ?wait, "cannot start the project; the others go on");
                readiness.mark_start_failed(Some(why));
            }
        }
        if stopped_within(&mut shutdown, wait).await {
            return;
        }
        wait = (wait * 2).min(MAX_RETRY);
    }
}

/// Waits `wait`, or less when shutdown comes first (then `true`).
async fn stopped_within(shutdown: &mut watch::Receiver<bool>, wait: Duration) -> bool {
    let stopped = tokio::select! {
        () = tokio::time::sleep(wait) => None,
        result = shutdown.wait_for(|stop| *stop) => Some(result.is_ok()),
    };
    stopped.unwrap_or_else(|| *shutdown.borrow())
}

/// One request budget per GitLab host (scheme, host and port of `gitlab.url`), shared by the
/// projects there: GitLab's rate limits are per user and host, not per project.
#[derive(Default)]
struct Budgets(HashMap<String, Arc<TokenBucket>>);

impl Budgets {
    /// The budget of `settings`' host (`None` when its GitLab settings do not check out:
    /// starting the project reports why).
    fn of(&mut self, settings: &Settings) -> Option<Arc<TokenBucket>> {
        let gitlab = settings.for_gitlab().ok()?;
        let host = gitlab.url.origin().ascii_serialization();
        Some(
            self.0
                .entry(host)
                .or_insert_with(|| Arc::new(TokenBucket::new(gitlab.budget)))
                .clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("promoter.yaml");
        let text = format!(
            "gitlab:\n  url: {url}\n  token: t\n  project: a/b\ngit:\n  url: file:///srv/b.git\n"
        );
        std::fs::write(&path, text).unwrap();
        crate::config::load(Some(&path), Some(Default::default())).unwrap()
    }

    #[test]
    fn projects_on_one_host_share_its_budget() {
        let mut budgets = Budgets::default();
        let a = budgets.of(&settings("https://gitlab.example.com")).unwrap();
        let b = budgets
            .of(&settings("https://gitlab.example.com/"))
            .unwrap();
        let other = budgets
            .of(&settings("https://gitlab.other.example"))
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &other));
    }
}
