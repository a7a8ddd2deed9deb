//! What the settings of one project become: its GitLab client (on its host's request budget),
//! git mirror, registry client and templates, assembled into a [`Reconciler`]; and its
//! announcer. Used by the one-shot commands and by every project's daemon loop alike.

use std::sync::Arc;

use anyhow::Context;

use crate::announce::Announcer;
use crate::config::Settings;
use crate::forge::gitlab::budget::TokenBucket;
use crate::forge::gitlab::{Connection, GitLab, RetryPolicy};
use crate::git::mirror::{Author, Credentials, Mirror};
use crate::metrics::Metrics;
use crate::reconcile::{Config, Reconciler};

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

/// The reconciler of `settings`' project; `budget`: the GitLab host's request budget when
/// shared with other projects (else one of its own).
pub(super) async fn reconciler(
    settings: &Settings,
    metrics: Option<Arc<Metrics>>,
    budget: Option<Arc<TokenBucket>>,
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
    let connected = match budget {
        Some(budget) => GitLab::connect_sharing(&connection, budget).await,
        None => GitLab::connect(&connection).await,
    };
    let mut forge = connected.context("cannot reach GitLab")?;
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
