//! The commands that talk to GitLab and the git remote: `reconcile --once`, `promote` (without
//! `--dry-run`) and `daemon`. Wiring only: settings become adapters in [`super::adapters`];
//! the daemon's HTTP server is started here and its one loop in [`super::serve`] (or one per
//! project in [`super::projects`]); what follows each reconcile is in [`super::cycle`].

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use tokio::sync::mpsc;

use super::adapters::{announcer, reconciler};
use super::offline::{instant, requester};
use super::serve::{INBOX, Parts, ProjectLoop, http_routes, server_stopped, until_stopped};
use crate::config::{self, Settings};
use crate::daemon::{self, Clock};
use crate::metrics::Metrics;
use crate::model::{EnvName, ServiceName, Tag};
use crate::plan::Request;
use crate::reconcile::{ActionKind, Outcome, Scope};
use crate::server::{self, Readiness};

/// The async runtime for the online commands.
pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn settings(file: Option<&Path>) -> anyhow::Result<Settings> {
    config::load(file, None).context("invalid configuration")
}

/// The settings of a one-shot command, which works on one project: a configuration listing
/// `projects:` is refused by name rather than failing on the missing `gitlab.project`.
fn one_project(file: Option<&Path>) -> anyhow::Result<Settings> {
    let settings = settings(file)?;
    if let Some(first) = settings.projects.first() {
        anyhow::bail!(
            "projects: this command works on one project, and the configuration lists {} (the first is {:?}); only `promoter daemon` serves `projects:` so far: run it with a configuration of the one project (its gitlab.project and git.url at the top level)",
            settings.projects.len(),
            first.name
        );
    }
    Ok(settings)
}

fn print_outcome(outcome: &Outcome) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "planned on {}", outcome.head)?;
    for action in &outcome.actions {
        let kind = serde_json::to_value(&action.kind)?
            .as_str()
            .unwrap_or_default()
            .to_string();
        let line = format!("{:<12} {} {}", kind, action.branch, action.detail);
        writeln!(out, "{}", crate::redact::redact(&line))?;
    }
    Ok(if outcome.count(&ActionKind::Failed) > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `promoter reconcile --once [--env ENV]`: every environment as if its schedule had fired.
pub(super) async fn reconcile_once(
    file: Option<&Path>,
    env: Option<String>,
    at: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let now = instant(at)?;
    let settings = one_project(file)?;
    let announcer = announcer(&settings, None)?;
    let reconciler = reconciler(&settings, None, None).await?;
    let scope = Scope {
        only: env.map(EnvName::new),
        ..Scope::all()
    };
    let outcome = reconciler.run_once(&scope, &[], now).await?;
    announcer.announce(&outcome).await;
    print_outcome(&outcome)
}

/// `promoter promote SERVICE --to ENV`: the promotion's MR opened or updated now, outside the
/// schedule, still subject to the gates.
pub(super) async fn promote(
    file: Option<&Path>,
    service: &str,
    to: &str,
    tag: Option<String>,
    because: Option<String>,
    at: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let now = instant(at)?;
    let settings = one_project(file)?;
    let announcer = announcer(&settings, None)?;
    let reconciler = reconciler(&settings, None, None).await?;
    let (service, to) = (ServiceName::new(service), EnvName::new(to));
    let request = Request {
        service: service.clone(),
        to: to.clone(),
        tag: tag.map(Tag::new),
        requested_by: requester(),
        reason: because,
        rollback: false,
        requested_at: Some(now),
    };
    let scope = Scope {
        only: Some(to),
        service: Some(service),
        ..Scope::all()
    };
    let outcome = reconciler.run_once(&scope, &[request], now).await?;
    announcer.announce(&outcome).await;
    if outcome.actions.is_empty() {
        anyhow::bail!(
            "no such promotion: check the service and environment names with `promoter plan`"
        );
    }
    print_outcome(&outcome)
}

/// `promoter rollback SERVICE --env ENV [--to TAG] --because WHY`: the rollback's MR now.
pub(super) async fn rollback(
    file: Option<&Path>,
    service: &str,
    env: &str,
    to: Option<String>,
    because: String,
) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    let settings = one_project(file)?;
    let announcer = announcer(&settings, None)?;
    let reconciler = reconciler(&settings, None, None).await?;
    let (service, env) = (ServiceName::new(service), EnvName::new(env));
    let request = Request {
        service: service.clone(),
        to: env.clone(),
        tag: to.map(Tag::new),
        requested_by: requester(),
        reason: Some(because),
        rollback: true,
        requested_at: Some(now),
    };
    let scope = Scope {
        only: Some(env),
        service: Some(service),
        ..Scope::all()
    };
    let outcome = reconciler.run_once(&scope, &[request], now).await?;
    announcer.announce(&outcome).await;
    if outcome.actions.is_empty() {
        anyhow::bail!(
            "no such promotion: check the service and environment names with `promoter plan`"
        );
    }
    print_outcome(&outcome)
}

/// `promoter freeze ENV|--all --because WHY [--until T]` and `promoter unfreeze ENV|--all`:
/// an MR adding or deleting `policies/freeze-<env>.yaml`; a person merges it.
pub(super) async fn freeze(
    file: Option<&Path>,
    env: Option<String>,
    all: bool,
    until: Option<&str>,
    because: Option<String>,
) -> anyhow::Result<ExitCode> {
    use crate::chatops::command::{Scope as Where, Until};
    use crate::reconcile::policy_change::{freeze_change, unfreeze_change};
    let scope = match (env, all) {
        (Some(env), false) => Where::Env(EnvName::new(env)),
        (None, true) => Where::All,
        _ => anyhow::bail!("name an environment or say --all"),
    };
    let until = until.map(|t| instant(Some(t))).transpose()?.map(Until::At);
    let settings = one_project(file)?;
    let reconciler = reconciler(&settings, None, None).await?;
    let who = requester();
    let change = match because {
        Some(reason) => freeze_change(&scope, until, &reason, &who, "the command line", Utc::now()),
        None => unfreeze_change(&scope, "the command line"),
    };
    let mr = reconciler.propose_policy_change(change, Utc::now()).await?;
    println!("{} {}", mr.title, mr.web_url);
    Ok(ExitCode::SUCCESS)
}

/// `promoter unhold SERVICE --env ENV`: an MR deleting the hold a rollback left.
pub(super) async fn unhold(
    file: Option<&Path>,
    service: &str,
    env: &str,
) -> anyhow::Result<ExitCode> {
    let settings = one_project(file)?;
    let reconciler = reconciler(&settings, None, None).await?;
    let change = crate::reconcile::policy_change::unhold_change(
        &EnvName::new(env),
        &ServiceName::new(service),
        &requester(),
        "the command line",
    );
    let mr = reconciler.propose_policy_change(change, Utc::now()).await?;
    println!("{} {}", mr.title, mr.web_url);
    Ok(ExitCode::SUCCESS)
}

/// `promoter daemon`: until SIGTERM, serve the HTTP endpoints and run the one loop: reconciles
/// on schedules, webhooks and a periodic resync, and people's commands, one at a time, all on
/// one clock. With `projects:`, one such loop per project ([`super::projects`]).
pub(super) async fn daemon(file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let settings = settings(file)?;
    let projects = settings.projects().context("invalid configuration")?;
    if !projects.is_empty() {
        return super::projects::daemon(settings, projects).await;
    }
    let clock = Clock::system();
    let listener = server::bind(settings.server.listen)
        .await
        .context("cannot start the HTTP server")?;
    let readiness = Arc::new(Readiness::new(settings.reconcile.resync_interval * 3));
    readiness.mark_config_loaded();
    let shutdown = daemon::shutdown_signal();
    let (triggers, inbox) = mpsc::channel(INBOX);
    let metrics = Arc::new(Metrics::new());
    let page: Arc<crate::dashboard::Page> = Arc::default();
    // Serve /healthz (and an honest "not ready" /readyz) while the first clone runs.
    let app = http_routes(&settings, &triggers, &readiness, clock)?
        .merge(crate::metrics::routes(metrics.clone()))
        .merge(crate::metrics::dashboard_route(page.clone()));
    let server = tokio::spawn(server::run(listener, app, until_stopped(shutdown.clone())));

    let project = ProjectLoop::start(Parts {
        settings,
        clock,
        metrics,
        page,
        readiness,
        triggers,
        shutdown,
        budget: None,
    })
    .await?;
    project.run(inbox).await;
    server_stopped(server).await
}
