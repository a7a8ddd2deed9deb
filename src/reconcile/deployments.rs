//! Telling GitLab what runs where: for each environment, the commit that brought its newest
//! tag is recorded as a successful deployment through the Deployments API (every tier has it),
//! once Flux reported that commit healthy when the environment names Flux Kustomizations. The
//! deployments GitLab already has are the record: nothing is kept but a cache of what was seen,
//! so an idle cycle asks nothing, and a commit waiting for Flux costs one status read a cycle
//! for at most [`HEALTH_PATIENCE`]. On unless `gitlab.record_deployments: false`.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use chrono::{DateTime, Utc};

use super::observe::Observed;
use super::{Error, Reconciler};
use crate::forge::Forge;
use crate::model::EnvName;
use crate::repo::{Snapshot, TagHistory};

/// How long a landing commit waits for Flux to report it healthy before promoter stops asking.
pub const HEALTH_PATIENCE: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// What promoter last saw of an environment's newest landing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// GitLab has the deployment.
    Recorded(String),
    /// GitLab has none; Flux has not reported the commit healthy yet.
    AwaitingHealth(String),
}

/// Per environment, when its newest landing came and by which commit.
pub type Landings = BTreeMap<EnvName, (DateTime<Utc>, String)>;

/// The newest landings of a snapshot the daemon found last (weak: identity only; the weak
/// pointer keeps the address its own).
pub(super) type KeptLandings = Option<(Weak<Snapshot>, Arc<Landings>)>;

/// Per environment, the commit that brought the most recent of its services' current tags, and
/// when.
pub fn newest_landings(snapshot: &Snapshot, history: &TagHistory) -> Landings {
    let mut out: BTreeMap<EnvName, (DateTime<Utc>, String)> = BTreeMap::new();
    for env in &snapshot.environments {
        for service in snapshot.services.get(&env.name).into_iter().flatten() {
            let Some(current) = history
                .stints(&service.1.values_file())
                .last()
                .filter(|s| s.until.is_none() && s.tag.is_some())
            else {
                continue;
            };
            let candidate = (current.since.time, current.since.sha.clone());
            let slot = out.entry(env.name.clone()).or_insert(candidate.clone());
            if candidate.0 > slot.0 {
                *slot = candidate;
            }
        }
    }
    out
}

impl<F: Forge> Reconciler<F> {
    /// Records the deployments GitLab does not have yet; how many were recorded. A failure is
    /// logged and retried next cycle: it never stops a reconcile.
    pub(super) async fn record_deployments(
        &self,
        observed: &Observed,
        now: DateTime<Utc>,
    ) -> usize {
        if !self.record_deployments {
            return 0;
        }
        let mut recorded = 0;
        for (env, (landed, sha)) in self.newest_landings(observed).iter() {
            let (env, landed, sha) = (env.clone(), *landed, sha.clone());
            let seen = self
                .deployed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&env)
                .cloned();
            let listed = match seen {
                Some(Seen::Recorded(s)) if s == sha => continue,
                Some(Seen::AwaitingHealth(s)) if s == sha => {
                    if now - landed > HEALTH_PATIENCE {
                        continue;
                    }
                    true
                }
                _ => false,
            };
            match self.record_deployment(observed, &env, &sha, listed).await {
                Ok(made) => recorded += usize::from(made),
                Err(e) => tracing::warn!(%env, sha, error = %e, "cannot record the deployment"),
            }
        }
        recorded
    }

    /// [`newest_landings`] of the observed snapshot and history: the daemon keeps the last
    /// (the same snapshot is the same head, with the same history), anything else finds them.
    fn newest_landings(&self, observed: &Observed) -> Arc<Landings> {
        let found = || Arc::new(newest_landings(&observed.snapshot, &observed.history));
        if !self.incremental {
            return found();
        }
        let mut kept = self.landings.lock().unwrap_or_else(|p| p.into_inner());
        match kept.as_ref() {
            Some((of, landings)) if std::ptr::eq(of.as_ptr(), Arc::as_ptr(&observed.snapshot)) => {
                landings.clone()
            }
            _ => {
                let landings = found();
                *kept = Some((Arc::downgrade(&observed.snapshot), landings.clone()));
                landings
            }
        }
    }

    /// True when a deployment was created now. `listed`: GitLab's list was read before and
    /// did not have it.
    async fn record_deployment(
        &self,
        observed: &Observed,
        env: &EnvName,
        sha: &str,
        listed: bool,
    ) -> Result<bool, Error> {
        let remember = |seen: Seen| {
            self.deployed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(env.clone(), seen);
        };
        if !listed {
            let existing = self.forge.deployments(env.as_str()).await?;
            if existing
                .iter()
                .any(|d| d.sha == sha && d.status == "success")
            {
                remember(Seen::Recorded(sha.to_string()));
                return Ok(false);
            }
        }
        let own = observed
            .snapshot
            .environment(env)
            .map(|e| e.health.clone())
            .unwrap_or_default();
        if !own.statuses.is_empty() {
            let statuses = self.forge.commit_statuses(sha).await?;
            let healthy = super::facts::first_success(&statuses, &own).is_some();
            if !healthy {
                tracing::debug!(%env, sha, "not recorded yet: Flux has not reported it healthy");
                remember(Seen::AwaitingHealth(sha.to_string()));
                return Ok(false);
            }
        }
        self.forge
            .create_deployment(env.as_str(), sha, &self.config.branch)
            .await?;
        tracing::info!(%env, sha, "recorded the deployment in GitLab");
        remember(Seen::Recorded(sha.to_string()));
        Ok(true)
    }
}
