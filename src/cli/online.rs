//! The commands that talk to GitLab and the git remote: `reconcile --once`, `promote` (without
//! `--dry-run`) and `daemon`. Wiring only: settings -> forge, mirror, reconciler; the daemon's
//! tasks (HTTP server, schedules, resync, the single-flight loop) are started and stopped here.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use chrono::Utc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::offline::{instant, requester};
use crate::config::{self, Settings};
use crate::daemon::{self, Trigger, clock::Clock, schedule};
use crate::forge::gitlab::{Connection, GitLab, RetryPolicy};
use crate::git::mirror::{Author, Credentials, Mirror};
use crate::metrics::{self as metric, Metrics};
use crate::model::{EnvName, ServiceName, Tag};
use crate::plan::Request;
use crate::promotion::describe::Templates;
use crate::reconcile::{ActionKind, Config, Outcome, Reconciler, Scope};
use crate::server::{self, Readiness, ServerState};

/// Counts a reconcile's actions and gate verdicts.
fn record(metrics: &Metrics, outcome: &Outcome) {
    for action in &outcome.actions {
        let kind = match action.kind {
            ActionKind::Opened => metric::Action::Opened,
            ActionKind::Updated => metric::Action::Updated,
            ActionKind::Merged => metric::Action::Merged,
            ActionKind::Closed => metric::Action::Closed,
            _ => continue,
        };
        let env = crate::reconcile::parse_branch(&action.branch)
            .map(|(e, _)| e.to_string())
            .unwrap_or_default();
        metrics.record_action(&env, kind);
    }
    for (gate, passed) in &outcome.gates {
        metrics.record_gate(gate, *passed);
    }
    if let Some(lead) = &outcome.lead_times {
        metrics.set_lead_times(lead);
    }
    metrics.record_deployments(outcome.deployments_recorded);
}

/// The stage a failed reconcile stopped at, for the failures metric.
fn failure_stage(error: &crate::reconcile::Error) -> &'static str {
    use crate::reconcile::Error;
    match error {
        Error::Mirror(_) | Error::Git(_) | Error::Worker(_) => "git",
        Error::Forge(_) => "gitlab",
        Error::Template(_) => "templates",
        Error::NothingToChange(_) | Error::HandsOff { .. } => "policy",
    }
}

/// The schedule task and the schedules it was started with.
type Timer = (Vec<(EnvName, String)>, Option<JoinHandle<()>>);

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
    let templates =
        Templates::load(settings.templates_dir.as_deref()).context("invalid MR templates")?;
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
    let reconciler = reconciler(&settings, None).await?;
    let scope = Scope {
        only: env.map(EnvName::new),
        ..Scope::all()
    };
    let outcome = reconciler.run_once(&scope, &[], now).await?;
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

/// `promoter daemon`: until SIGTERM, reconcile on schedules, webhooks and a periodic resync,
/// one reconcile at a time, and serve the HTTP endpoints.
pub(super) async fn daemon(file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let settings = settings(file)?;
    let mattermost_url = settings.mattermost_url().context("invalid configuration")?;
    let listener = server::bind(settings.server.listen)
        .await
        .context("cannot start the HTTP server")?;
    let readiness = Arc::new(Readiness::new(settings.reconcile.resync_interval * 3));
    readiness.mark_config_loaded();
    let shutdown = daemon::shutdown_signal();
    let (triggers, receiver) = mpsc::channel(256);

    let (notes, note_queue) = mpsc::channel(64);
    let state = ServerState {
        webhook_secret: settings.server.webhook_secret.clone(),
        triggers: triggers.clone(),
        readiness: readiness.clone(),
        notes: Some(notes),
        project: settings
            .gitlab
            .project
            .as_deref()
            .map(server::project::ProjectRef::parse),
    };
    if state.webhook_secret.is_none() {
        tracing::warn!("server.webhook_secret is not set: every webhook will be refused");
    }
    // Serve /healthz (and an honest "not ready" /readyz) while the first clone runs.
    let metrics = Arc::new(Metrics::new());
    let page: Arc<std::sync::RwLock<Option<String>>> = Arc::default();
    let chat_cell: server::chat::ChatCell = Arc::default();
    let app = server::router(state)
        .merge(crate::metrics::routes(metrics.clone()))
        .merge(crate::metrics::dashboard_route(page.clone()))
        .merge(server::chat::routes(chat_cell.clone()));
    let server = tokio::spawn(server::serve_router(listener, app, shutdown.clone()));
    // The daemon keeps what each cycle read and asks only what changed since.
    let reconciler = Arc::new(
        reconciler(&settings, Some(metrics.clone()))
            .await?
            .with_incremental(true),
    );
    // One reconcile at a time, whoever asks: the daemon loop or a chat command.
    let flight = Arc::new(tokio::sync::Mutex::new(()));
    let latest: Arc<std::sync::RwLock<Option<crate::dashboard::DashboardData>>> = Arc::default();
    let chat = Arc::new(server::chat::ChatOps {
        reconciler: reconciler.clone(),
        flight: flight.clone(),
        latest: latest.clone(),
        slack_secret: settings.chatops.slack.signing_secret.clone(),
        mattermost_token: settings.chatops.mattermost.token.clone(),
        replies: crate::chatops::reply::Replies::new().context("invalid chat-ops templates")?,
        http: reqwest::Client::new(),
        mattermost_url,
        guard: server::chat_guard::ChatGuard::default(),
    });
    let _ = chat_cell.set(chat.clone());
    let bot = reconciler.forge().username().to_string();
    let notes_task = tokio::spawn(server::chat::serve_notes(chat, note_queue, bot));
    let waited_ms = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let budget_ms = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let resync = tokio::spawn(schedule::resync(
        settings.reconcile.resync_interval,
        triggers.clone(),
        shutdown.clone(),
    ));
    let _ = triggers.send(Trigger::Resync).await;

    // The schedules come from environments/ at the head of the branch: restart the timer
    // whenever a reconcile reads different ones.
    let timer: Arc<Mutex<Timer>> = Arc::default();
    let loop_shutdown = shutdown.clone();
    daemon::run(
        receiver,
        |batch| {
            let (reconciler, readiness, timer, triggers, shutdown) =
                (reconciler.clone(), readiness.clone(), timer.clone(), triggers.clone(), loop_shutdown.clone());
            let (metrics, page, waited_ms, budget_ms) = (metrics.clone(), page.clone(), waited_ms.clone(), budget_ms.clone());
            let (flight, latest) = (flight.clone(), latest.clone());
            async move {
                let _flight = flight.lock().await;
                let scope = Scope { scheduled: batch.scheduled.clone(), ..Scope::default() };
                let now = Utc::now();
                let started = std::time::Instant::now();
                let result = reconciler.run_once(&scope, &[], now).await;
                metrics.record_reconcile(started.elapsed(), result.is_ok());
                let total_wait = reconciler.forge().calls().waited_ms.load(std::sync::atomic::Ordering::Relaxed);
                let new_wait = total_wait.saturating_sub(waited_ms.swap(total_wait, std::sync::atomic::Ordering::Relaxed));
                if new_wait > 0 {
                    metrics.record_rate_limit_wait(new_wait as f64 / 1000.0);
                }
                // The request budget is shared with chat-ops and the dashboard: their waits
                // since the last reconcile are counted here too.
                let total_budget = reconciler.forge().calls().budget_waited_ms.load(std::sync::atomic::Ordering::Relaxed);
                let new_budget = total_budget.saturating_sub(budget_ms.swap(total_budget, std::sync::atomic::Ordering::Relaxed));
                if new_budget > 0 {
                    metrics.record_budget_wait(new_budget as f64 / 1000.0);
                }
                match result {
                    Ok(outcome) => {
                        record(&metrics, &outcome);
                        if let Some(data) = &outcome.dashboard {
                            metrics.set_tag_ages(data);
                            *page.write().unwrap_or_else(|p| p.into_inner()) = Some(crate::dashboard::render(data, Some(60)));
                            *latest.write().unwrap_or_else(|p| p.into_inner()) = Some(data.clone());
                            // The same matrix as a GitLab issue, like a dependency dashboard.
                            if let Err(error) = reconciler.ensure_dashboard_issue(data).await {
                                tracing::warn!(error = %format!("{error:#}"), "cannot update the dashboard issue");
                            }
                        }
                        metrics.mark_success(Utc::now());
                        readiness.mark_fetched(Utc::now());
                        readiness.mark_gitlab_ok(Utc::now());
                        for action in outcome.actions.iter().filter(|a| !matches!(a.kind, ActionKind::Unchanged)) {
                            tracing::info!(branch = action.branch, kind = ?action.kind, detail = action.detail, "promotion");
                        }
                        let key: Vec<(EnvName, String)> =
                            outcome.schedules.iter().map(|(e, s, tz)| (e.clone(), format!("{s} {tz}"))).collect();
                        let mut guard = timer.lock().unwrap_or_else(|p| p.into_inner());
                        if guard.0 != key || guard.1.is_none() {
                            if let Some(old) = guard.1.take() {
                                old.abort();
                            }
                            let task = schedule::run(outcome.schedules, Clock::system(), triggers, shutdown);
                            *guard = (key, Some(tokio::spawn(task)));
                        }
                    }
                    Err(error) => {
                        metrics.record_failure(failure_stage(&error));
                        tracing::error!(error = %format!("{error:#}"), "reconcile failed; the next trigger retries");
                    }
                }
            }
        },
        shutdown,
    )
    .await;
    resync.abort();
    notes_task.abort();
    if let Some(task) = timer.lock().unwrap_or_else(|p| p.into_inner()).1.take() {
        task.abort();
    }
    match server.await {
        Ok(Ok(())) => Ok(ExitCode::SUCCESS),
        Ok(Err(e)) => Err(e).context("the HTTP server failed"),
        Err(e) => Err(e).context("the HTTP server task failed"),
    }
}
