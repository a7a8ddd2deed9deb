//! The commands that talk to GitLab and the git remote: `reconcile --once`, `promote` (without
//! `--dry-run`) and `daemon`. Wiring only: settings -> forge, mirror, reconciler; the daemon's
//! tasks (HTTP server, schedules, resync, the one loop) are started and stopped here; what
//! follows each reconcile is in [`super::cycle`].

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context;
use chrono::Utc;
use tokio::sync::mpsc;

use super::cycle::{Cycle, Timer};
use super::offline::{instant, requester};
use crate::announce::Announcer;
use crate::config::{self, Settings};
use crate::daemon::{self, Clock, Trigger, schedule};
use crate::forge::gitlab::{Connection, GitLab, RetryPolicy};
use crate::git::mirror::{Author, Credentials, Mirror};
use crate::handlers::Handlers;
use crate::metrics::Metrics;
use crate::model::{EnvName, ServiceName, Tag};
use crate::plan::Request;
use crate::reconcile::{ActionKind, Config, Outcome, Reconciler, Scope};
use crate::server::chat::ChatState;
use crate::server::{self, Readiness, ServerState};

/// The announcer of `notify.*`, counting in `metrics` (each sink listed there at zero).
pub(super) fn announcer(
    settings: &Settings,
    metrics: Option<Arc<Metrics>>,
) -> anyhow::Result<Arc<Announcer>> {
    let sinks = settings.announce_sinks().context("invalid configuration")?;
    let announcer = Announcer::new(sinks, &settings.state_dir, metrics.clone());
    if let Some(metrics) = metrics {
        metrics.seed_announcements(&announcer.sink_names());
    }
    Ok(Arc::new(announcer))
}

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

/// How to authenticate to `url`: the GitLab token over HTTPS, the configured key over SSH.
fn credentials(
    url: &str,
    settings: &Settings,
    token: &secrecy::SecretString,
) -> anyhow::Result<Credentials> {
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(Credentials::Token(token.clone()));
    }
    if url.starts_with("ssh://") || (url.contains('@') && url.contains(':') && !url.contains("://"))
    {
        let key = settings
            .git
            .ssh_key_file
            .clone()
            .context("git.ssh_key_file: needed for an SSH git.url")?;
        return Ok(Credentials::SshKey(key));
    }
    Ok(Credentials::None)
}

async fn reconciler(
    settings: &Settings,
    metrics: Option<Arc<Metrics>>,
) -> anyhow::Result<Reconciler<GitLab>> {
    let gitlab = settings.for_gitlab().context("invalid configuration")?;
    let keys = settings.signing_keys().context("invalid configuration")?;
    tracing::info!(key = keys.fingerprint(), "signing commits");
    let connection = Connection {
        url: gitlab.url.clone(),
        token: gitlab.token.clone(),
        project: gitlab.project.clone(),
        policy: RetryPolicy {
            max_retries: gitlab.max_retries,
            timeout: gitlab.timeout,
            ..RetryPolicy::default()
        },
        budget: gitlab.budget,
    };
    let mut forge = GitLab::connect(&connection)
        .await
        .context("cannot reach GitLab")?;
    if let Some(metrics) = metrics {
        forge = forge.with_observer(Arc::new(move |endpoint: &str, status: Option<u16>| {
            metrics.record_gitlab(endpoint, status)
        }));
    }
    let url = settings.git_url()?.to_string();
    let credentials = credentials(&url, settings, &gitlab.token)?;
    let dir = settings.state_dir.join("mirror.git");
    let mirror = tokio::task::spawn_blocking(move || Mirror::open(&dir, &url, credentials))
        .await
        .context("the git worker failed")?
        .context("cannot prepare the git mirror")?;
    let templates = crate::reconcile::templates::read(settings.templates_dir.as_deref())
        .context("invalid MR templates")?;
    let config = Config {
        branch: settings.git.branch.clone(),
        author: Author {
            name: settings.git.author_name.clone(),
            email: settings.git.author_email.clone(),
            keys,
        },
    };
    let registries = settings.for_registries().context("invalid configuration")?;
    let registry = crate::registry::OciRegistry::new(registries)
        .context("cannot set up the registry client")?;
    Ok(Reconciler::new(forge, mirror, config, templates)
        .with_registry(registry)
        .with_deployments(gitlab.record_deployments))
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
    let settings = settings(file)?;
    let announcer = announcer(&settings, None)?;
    let reconciler = reconciler(&settings, None).await?;
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
    let settings = settings(file)?;
    let announcer = announcer(&settings, None)?;
    let reconciler = reconciler(&settings, None).await?;
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
    let settings = settings(file)?;
    let announcer = announcer(&settings, None)?;
    let reconciler = reconciler(&settings, None).await?;
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
    let settings = settings(file)?;
    let reconciler = reconciler(&settings, None).await?;
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
    let settings = settings(file)?;
    let reconciler = reconciler(&settings, None).await?;
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
/// one clock.
pub(super) async fn daemon(file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let settings = settings(file)?;
    let clock = Clock::system();
    let listener = server::bind(settings.server.listen)
        .await
        .context("cannot start the HTTP server")?;
    let readiness = Arc::new(Readiness::new(settings.reconcile.resync_interval * 3));
    readiness.mark_config_loaded();
    let shutdown = daemon::shutdown_signal();
    let (triggers, inbox) = mpsc::channel(256);
    let metrics = Arc::new(Metrics::new());
    let page: Arc<RwLock<Option<String>>> = Arc::default();
    // Serve /healthz (and an honest "not ready" /readyz) while the first clone runs.
    let app = http_routes(&settings, &triggers, &readiness, clock)?
        .merge(crate::metrics::routes(metrics.clone()))
        .merge(crate::metrics::dashboard_route(page.clone()));
    let server = tokio::spawn(server::run(listener, app, until_stopped(shutdown.clone())));

    let announcer = announcer(&settings, Some(metrics.clone()))?;
    // The daemon keeps what each cycle read and asks only what changed since.
    let reconciler = Arc::new(
        reconciler(&settings, Some(metrics.clone()))
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
    let replies = crate::chatops::reply::Replies::new().context("invalid chat-ops templates")?;
    let handlers = Handlers::new(reconciler, clock, replies).with_after(Box::new(cycle));
    let resync = tokio::spawn(schedule::resync(
        settings.reconcile.resync_interval,
        triggers.clone(),
        shutdown.clone(),
    ));
    let _ = triggers.send(Trigger::Resync).await;
    daemon::run(inbox, &handlers, shutdown).await;

    resync.abort();
    if let Some(task) = timer.lock().unwrap_or_else(|p| p.into_inner()).1.take() {
        task.abort();
    }
    match server.await {
        Ok(Ok(())) => Ok(ExitCode::SUCCESS),
        Ok(Err(e)) => Err(e).context("the HTTP server failed"),
        Err(e) => Err(e).context("the HTTP server task failed"),
    }
}

/// The server's routes (webhooks, probes, chat-ops), handing what they decode to `triggers`.
fn http_routes(
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
async fn until_stopped(mut shutdown: tokio::sync::watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}
