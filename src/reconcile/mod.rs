//! One reconcile: observe (fetch the mirror, read the snapshot and history at the head of the
//! environments' branch, list open promotion MRs), plan, then converge GitLab to the plan.
//! Idempotent: with nothing new it makes no write call. Safe to interrupt anywhere: the branch
//! is pushed before its MR is opened, and the next run finishes whatever is half done. A
//! commit landing on the environments' branch between the plan and a push makes the run plan
//! again on the new head.
//!
//! ```text
//!  trigger ──▶ list open MRs (label promotion) ──▶ fetch mirror ──▶ snapshot + history @head
//!                                                        │
//!                       plan(snapshot, history, open MRs, now) ◀─┘
//!                                  │
//!   promote ──▶ push branch if its files differ ──▶ open / update MR ──▶ merge if allowed
//!   not due ──▶ close MR with a note ──▶ delete the branch
//! ```

pub mod act;
pub mod dashboard_issue;
pub mod deployments;
pub mod facts;
pub mod merge_request;
pub mod observe;
pub mod policy_change;
pub mod recorded;
pub mod templates;
pub mod train;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::forge::{self, Forge};
use crate::git::mirror::{self, Author, Mirror};
use crate::model::{EnvName, ServiceName};
use crate::plan::{self, Facts, Request};
use crate::promotion::describe::{self, Templates};
use crate::registry::OciRegistry;

/// The label every promotion MR carries.
pub const LABEL: &str = "promotion";
// Branch names are made and read in `promotion::branches`; these names stay for callers here.
pub use crate::promotion::branches::{PREFIX as BRANCH_PREFIX, parse as parse_branch};

/// Reconcile failures that stop the whole run (a single promotion's failure does not).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The mirror could not be fetched or read.
    #[error(transparent)]
    Mirror(#[from] mirror::Error),
    /// History could not be read.
    #[error(transparent)]
    Git(#[from] crate::git::Error),
    /// GitLab could not be asked.
    #[error(transparent)]
    Forge(#[from] forge::Error),
    /// A template is broken.
    #[error(transparent)]
    Template(#[from] describe::Error),
    /// The blocking task died.
    #[error("the git worker failed: {0}")]
    Worker(String),
    /// A proposed change would change nothing.
    #[error("{0}")]
    NothingToChange(String),
    /// A branch promoter writes holds a commit promoter cannot prove it made: someone's work,
    /// which promoter neither overwrites nor replaces.
    #[error(
        "`{branch}` holds a commit promoter cannot prove it made: {who}; promoter leaves it alone (close its merge request and delete the branch to ask again)"
    )]
    HandsOff { branch: String, who: String },
}

/// Which environments may get new promotion MRs in this run. Existing MRs are always kept up
/// to date, closed or merged; new ones wait for their environment's schedule.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Every environment, as if its schedule had just fired (`reconcile --once`).
    pub all: bool,
    /// Environments whose schedule fired.
    pub scheduled: BTreeSet<EnvName>,
    /// Only promotions into this environment (`--env`).
    pub only: Option<EnvName>,
    /// Only this service's promotions (`promoter promote SERVICE`).
    pub service: Option<ServiceName>,
}

impl Scope {
    /// Every environment.
    pub fn all() -> Self {
        Self {
            all: true,
            ..Self::default()
        }
    }

    /// True when promotions into `env` are handled at all.
    pub fn covers(&self, env: &EnvName) -> bool {
        self.only.as_ref().is_none_or(|only| only == env)
    }

    /// True when this promotion is handled at all.
    pub fn covers_promotion(&self, env: &EnvName, service: &ServiceName) -> bool {
        self.covers(env) && self.service.as_ref().is_none_or(|s| s == service)
    }

    /// True when a new MR may be opened into `env` (one without a schedule is continuous).
    pub fn may_open(&self, env: &EnvName, has_schedule: bool) -> bool {
        self.covers(env) && (self.all || !has_schedule || self.scheduled.contains(env))
    }
}

/// What promoter does with a promotion in one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// A new MR.
    Opened,
    /// The branch or the MR changed.
    Updated,
    /// Merged.
    Merged,
    /// Closed as no longer due.
    Closed,
    /// A branch without MR removed.
    BranchDeleted,
    /// Due, but its environment's schedule has not fired.
    Waiting,
    /// Someone pushed to the promotion branch by hand: promoter neither overwrites nor merges.
    HandsOff,
    /// Nothing to do.
    Unchanged,
    /// Failed this time; the next run tries again.
    Failed,
}

/// One thing done (or not) in a run.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    /// Branch of the promotion.
    pub branch: String,
    /// What happened.
    pub kind: ActionKind,
    /// Details for logs.
    pub detail: String,
    /// The merge request's web address, when there is one.
    pub url: Option<String>,
    /// The merge request's number in its project (`!iid`), when there is one.
    pub iid: Option<u64>,
}

/// What a run did.
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    /// The head of the environments' branch that was planned on.
    pub head: String,
    /// Per promotion.
    pub actions: Vec<Action>,
    /// Each environment's schedule as read at that head, for the daemon's timer.
    #[serde(skip)]
    pub schedules: Vec<(EnvName, cron::Schedule, chrono_tz::Tz)>,
    /// The dashboard of this run's plan.
    #[serde(skip)]
    pub dashboard: Option<Arc<crate::dashboard::DashboardData>>,
    /// Every gate verdict of the plan, as (gate, passed), for metrics.
    #[serde(skip)]
    pub gates: Vec<(&'static str, bool)>,
    /// Lead times and deployment frequency from the history, for metrics.
    #[serde(skip)]
    pub lead_times: Option<crate::history::LeadTimes>,
    /// Deployments recorded in GitLab this run.
    pub deployments_recorded: usize,
    /// The plan this run acted on (announcements read what is blocked from it).
    #[serde(skip)]
    pub plan: Option<Arc<plan::Plan>>,
    /// The environments' branch moved between the plan and a push, or a promotion branch's
    /// lease was refused (someone pushed to it): plan again on what the remote holds now.
    #[serde(skip)]
    pub replan: bool,
}

impl Outcome {
    /// How many actions of a kind.
    pub fn count(&self, kind: &ActionKind) -> usize {
        self.actions.iter().filter(|a| a.kind == *kind).count()
    }

    /// This cycle's outcome after an `earlier` cycle of the same run: what the earlier one did
    /// is kept where this one found nothing left to do (and for branches it did not see).
    fn after(mut self, earlier: Outcome) -> Outcome {
        let did = |kind: &ActionKind| {
            !matches!(
                kind,
                ActionKind::Unchanged | ActionKind::Failed | ActionKind::Waiting
            )
        };
        for old in earlier.actions {
            match self.actions.iter_mut().find(|a| a.branch == old.branch) {
                Some(new) if new.kind == ActionKind::Unchanged && did(&old.kind) => *new = old,
                Some(_) => {}
                None => self.actions.push(old),
            }
        }
        self
    }
}

/// Environment names, and (from, to) pairs of the promotion graph.
pub type Graph = (Vec<String>, Vec<(String, String)>);

/// How many times one run plans again because the environments' branch moved under it.
pub const REPLANS: usize = 2;

/// Settings of the reconcile.
#[derive(Debug, Clone)]
pub struct Config {
    /// Branch the environments live on (`git.branch`).
    pub branch: String,
    /// Author of promotion commits.
    pub author: Author,
}

/// Runs reconciles; holds the mirror and the forge.
pub struct Reconciler<F> {
    /// The snapshot the last run planned on (chat-ops authorizes and answers from it).
    latest: Mutex<Option<Arc<crate::repo::Snapshot>>>,
    forge: F,
    mirror: Arc<Mutex<Mirror>>,
    config: Config,
    templates: Templates,
    registry: OciRegistry,
    /// The deployment last seen in GitLab per environment (a cache; GitLab is the record).
    deployed: Mutex<BTreeMap<EnvName, deployments::Seen>>,
    /// The newest landing per environment of the last snapshot (the daemon's).
    landings: Mutex<deployments::KeptLandings>,
    /// Record deployments through GitLab's Deployments API.
    record_deployments: bool,
    /// Keep what a cycle learned for the next one (the daemon); otherwise every run reads
    /// everything (`reconcile --once`, a cold start).
    incremental: bool,
    /// What earlier cycles read from git (see [`observe::Learned`]).
    learned: Arc<Mutex<observe::Learned>>,
    /// What earlier cycles read from GitLab (see [`watch::Watch`]).
    watched: tokio::sync::Mutex<watch::Watch>,
    /// The deployments the last cycle listed from the history (see
    /// [`crate::history::Listing`]).
    listed: Mutex<Option<crate::history::Listing>>,
    /// The dashboard the last reconcile built (see [`crate::dashboard::Kept`]).
    shown: Mutex<Option<crate::dashboard::Kept>>,
}

impl<F: Forge> Reconciler<F> {
    /// A reconciler over `forge` and `mirror`.
    pub fn new(forge: F, mirror: Mirror, config: Config, templates: Templates) -> Self {
        Self {
            latest: Mutex::new(None),
            forge,
            mirror: Arc::new(Mutex::new(mirror)),
            config,
            templates,
            registry: OciRegistry::new(Default::default())
                .expect("an anonymous registry client builds"),
            deployed: Mutex::default(),
            landings: Mutex::default(),
            record_deployments: false,
            incremental: false,
            learned: Arc::default(),
            watched: Default::default(),
            listed: Mutex::default(),
            shown: Mutex::default(),
        }
    }

    /// Keeps what each cycle read, in memory, and reads only what changed since (the daemon):
    /// see [`observe::Learned`] and [`watch::Watch`]. Off, every run reads everything.
    pub fn with_incremental(mut self, on: bool) -> Self {
        self.incremental = on;
        self
    }

    /// How many service folders the last cycle that saw a new head read again (the rest was
    /// reused); 0 when it read nothing new or is not incremental.
    pub fn folders_read_last(&self) -> usize {
        self.learned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .folders_read_last()
    }

    /// Records each environment's newest landing as a GitLab deployment (see [`deployments`]).
    pub fn with_deployments(mut self, on: bool) -> Self {
        self.record_deployments = on;
        self
    }

    /// Uses `registry` (with its credentials) for the image gate.
    pub fn with_registry(mut self, registry: OciRegistry) -> Self {
        self.registry = registry;
        self
    }

    /// The forge.
    pub fn forge(&self) -> &F {
        &self.forge
    }

    /// The snapshot the last successful run planned on.
    pub fn latest_snapshot(&self) -> Option<Arc<crate::repo::Snapshot>> {
        self.latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The environments at the head of the branch and the lead-time pairs, without planning.
    pub async fn environments(&self) -> Result<Graph, Error> {
        let branch = self.config.branch.clone();
        self.with_mirror(move |m| observe::environments(m, &branch))
            .await
    }

    /// Runs `f` on the mirror on a blocking thread.
    async fn with_mirror<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Mirror) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let mirror = self.mirror.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = mirror
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| Error::Worker(e.to_string()))?
    }

    /// One full cycle at `now`, with explicit `requests` from people. When a commit lands on
    /// the environments' branch between the plan and a push, the promotions are planned again
    /// on the new head (at most [`REPLANS`] times), so that no branch is built on a stale one.
    #[tracing::instrument(skip_all, fields(all = scope.all, only = ?scope.only))]
    pub async fn run_once(
        &self,
        scope: &Scope,
        requests: &[Request],
        now: DateTime<Utc>,
    ) -> Result<Outcome, Error> {
        let mut outcome = self.cycle(scope, requests, now).await?;
        for _ in 0..REPLANS {
            if !outcome.replan {
                break;
            }
            tracing::info!("the environments' branch moved during the run; planning again");
            let next = self.cycle(scope, requests, now).await?;
            outcome = next.after(outcome);
        }
        Ok(outcome)
    }

    async fn cycle(
        &self,
        scope: &Scope,
        requests: &[Request],
        now: DateTime<Utc>,
    ) -> Result<Outcome, Error> {
        let started = std::time::Instant::now();
        let mut open_mrs = self.list_open_merge_requests(now).await?;
        // A person may open an MR from promoter's own branch into another branch, or from a
        // fork's branch of the same name: neither is promoter's to read, adopt or merge.
        open_mrs.retain(|mr| {
            let ours = mr.target_branch == self.config.branch && !mr.from_fork;
            if !ours {
                tracing::warn!(
                    iid = mr.iid,
                    source_branch = %mr.source_branch,
                    target_branch = %mr.target_branch,
                    from_fork = mr.from_fork,
                    "not promoter's merge request: another target branch or a fork's branch"
                );
            }
            ours
        });
        let listed = started.elapsed();
        let mut open: BTreeMap<EnvName, BTreeSet<ServiceName>> = BTreeMap::new();
        for mr in &open_mrs {
            if let Some((env, service)) = parse_branch(&mr.source_branch) {
                open.entry(env).or_default().insert(service);
            }
        }
        let branch = self.config.branch.clone();
        let keys = self.config.author.keys.clone();
        let read_keys = keys.clone();
        let learned = self.incremental.then(|| self.learned.clone());
        let read = self
            .with_mirror(move |m| match learned {
                Some(learned) => {
                    let mut learned = learned.lock().unwrap_or_else(|p| p.into_inner());
                    observe::read(m, &branch, &read_keys, Some(&mut learned))
                }
                None => observe::read(m, &branch, &read_keys, None),
            })
            .await?;
        // Requests from people: this run's, then those recorded on promotion branches by
        // earlier runs (a rollback stays a rollback until its MR is merged or closed).
        let mut requests = requests.to_vec();
        for request in &read.recorded {
            if requests
                .iter()
                .any(|r| r.service == request.service && r.to == request.to)
            {
                continue;
            }
            // Only while its MR is open: a person who closed it has said no.
            let branch = crate::promotion::branch(&request.to, &request.service);
            let Some(mr) = open_mrs.iter_mut().find(|m| m.source_branch == branch) else {
                continue;
            };
            let policy = read.snapshot.policies.for_env(&request.to);
            match recorded::lapsed(request, mr, self.forge.own_username(), &policy) {
                None => requests.push(request.clone()),
                // Later steps of this run see the label, and keep it.
                Some(why) if self.lapse(mr, request, &why).await => {
                    mr.labels.push(recorded::LAPSED_LABEL.to_string());
                }
                Some(_) => {}
            }
        }
        let requests = requests.as_slice();
        // The gates that need the network ask only about this plan's candidates.
        let preliminary = plan::plan(
            &read.snapshot,
            Facts::offline(&read.history, &open),
            requests,
            now,
        );
        let gathered = self.gather(&read, &preliminary).await?;
        let facts = Facts {
            health: Some(&gathered.health),
            images: Some(&gathered.images),
            ..Facts::offline(&read.history, &open)
        };
        let plan = plan::replan(preliminary, &read.snapshot, facts, requests, now);
        let learned = self.incremental.then(|| self.learned.clone());
        let acts_on = observe::ActsOn {
            scope: scope.clone(),
            open: open_mrs.iter().map(|mr| mr.source_branch.clone()).collect(),
        };
        let observed = self
            .with_mirror(move |m| {
                let prepared = match learned {
                    Some(learned) => {
                        let mut learned = learned.lock().unwrap_or_else(|p| p.into_inner());
                        observe::prepare(m, read, plan, &acts_on, &keys, Some(&mut learned))
                    }
                    None => observe::prepare(m, read, plan, &acts_on, &keys, None),
                };
                // The reading is done: what libgit2 parsed for it is not kept to the next cycle.
                m.release_object_cache();
                prepared
            })
            .await?;
        for finding in &observed.snapshot.findings {
            tracing::warn!(%finding, "left out of the plan");
        }
        let schedules = observed
            .snapshot
            .environments
            .iter()
            .filter_map(|e| Some((e.name.clone(), e.schedule.clone()?, e.timezone)))
            .collect();
        let observed_at = started.elapsed();
        let links: Vec<crate::dashboard::MrLink> = open_mrs
            .iter()
            .filter_map(|mr| {
                let (env, service) = parse_branch(&mr.source_branch)?;
                Some(crate::dashboard::MrLink {
                    title: mr.title.clone(),
                    url: mr.web_url.clone(),
                    env: env.to_string(),
                    service: service.to_string(),
                })
            })
            .collect();
        // Listed once for the dashboard's lead-time view and the lead-time metrics.
        let (deployments, samples) = self.deployments(&observed, now);
        let environments = &observed.snapshot.environments;
        let lead_times = crate::history::lead_times_of(&samples, environments, now);
        let lead = crate::dashboard::lead::view_of(
            &observed.snapshot,
            (&deployments, &samples),
            &lead_times,
            observed.history.is_known(),
            now,
        );
        drop(deployments);
        let dashboard = self.dashboard(&observed, lead, &links, now);
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(observed.snapshot.clone());
        let gates = observed
            .plan
            .promotions
            .iter()
            .flat_map(|d| d.gates.iter().map(|g| (g.gate.name(), g.passed)))
            .collect();
        let deployments_recorded = self.record_deployments(&observed, now).await;
        let acted_on = observed.plan.clone();
        let acted = act::act(self, scope, observed, open_mrs, now).await;
        if acted.as_ref().map_or(true, |o| {
            deployments_recorded > 0
                || o.actions
                    .iter()
                    .any(|a| !matches!(a.kind, ActionKind::Unchanged | ActionKind::Waiting))
        }) {
            self.watched.lock().await.changed();
        }
        let mut outcome = acted?;
        outcome.plan = Some(acted_on);
        outcome.lead_times = Some(lead_times);
        outcome.deployments_recorded = deployments_recorded;
        outcome.schedules = schedules;
        outcome.dashboard = Some(dashboard);
        outcome.gates = gates;
        tracing::info!(
            list_ms = listed.as_millis() as u64,
            observe_ms = (observed_at - listed).as_millis() as u64,
            act_ms = (started.elapsed() - observed_at).as_millis() as u64,
            actions = outcome.actions.len(),
            "reconcile finished"
        );
        Ok(outcome)
    }
}

impl<F: Forge> Reconciler<F> {
    /// The deployments of the observed head's history as of `now`: the last cycle's list
    /// brought to `now` and to the observed head when it can be (incremental: see
    /// [`crate::history::Listing`]), else listed again.
    fn deployments(
        &self,
        observed: &observe::Observed,
        now: DateTime<Utc>,
    ) -> (
        Arc<Vec<crate::history::Deployment>>,
        Arc<crate::history::LeadSamples>,
    ) {
        let mut kept = self.listed.lock().unwrap_or_else(|p| p.into_inner());
        let (snapshot, history) = (&observed.snapshot, &observed.history);
        if self.incremental
            && let Some(listing) = kept.as_mut()
            && listing.follow(snapshot, history, observed.changed.as_ref(), now)
        {
            return (listing.deployments.clone(), listing.samples.clone());
        }
        let listing = crate::history::Listing::new(snapshot, history, now);
        let listed = (listing.deployments.clone(), listing.samples.clone());
        if self.incremental {
            *kept = Some(listing);
        }
        listed
    }

    /// The dashboard of the observed plan at `now`: the kept one brought up to date (it is
    /// built whole when the snapshot is another, as it is on every run that reads everything).
    fn dashboard(
        &self,
        observed: &observe::Observed,
        lead: crate::dashboard::lead::LeadView,
        links: &[crate::dashboard::MrLink],
        now: DateTime<Utc>,
    ) -> Arc<crate::dashboard::DashboardData> {
        let read = (&observed.snapshot, &observed.history);
        let mut shown = self.shown.lock().unwrap_or_else(|p| p.into_inner());
        match shown.as_mut() {
            Some(kept) => kept.update(
                read,
                &observed.plan,
                lead,
                links,
                now,
                observed.changed.as_ref(),
            ),
            None => {
                let kept = crate::dashboard::Kept::new(read, &observed.plan, lead, links, now);
                shown.insert(kept).data()
            }
        }
    }

    /// The open promotion MRs: listed whole, or (incremental, when nothing is in flux) the
    /// last cycle's list updated with the MRs changed since (see [`watch`]).
    async fn list_open_merge_requests(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<forge::MergeRequest>, Error> {
        if !self.incremental {
            return Ok(self.forge.open_merge_requests(LABEL).await?);
        }
        let mut watched = self.watched.lock().await;
        match watched.listing(now) {
            watch::Listing::Full => {
                let open = self.forge.open_merge_requests(LABEL).await?;
                watched.listed_all(open, now);
            }
            watch::Listing::UpdatedAfter(after) => {
                let changed = self
                    .forge
                    .merge_requests_updated_after(&self.config.branch, after)
                    .await?;
                tracing::debug!(changed = changed.len(), %after, "merge requests changed since the last cycle");
                watched.listed_changes(changed, LABEL, now);
            }
        }
        Ok(watched.open())
    }

    /// The standing approvals of `mr` (as listed this cycle): read again only when the MR moved
    /// since they were read (incremental), else asked.
    pub(super) async fn approvals_of(
        &self,
        mr: &forge::MergeRequest,
    ) -> Result<Vec<forge::Approval>, Error> {
        if self.incremental
            && let Some(known) = self.watched.lock().await.approvals(mr)
        {
            return Ok(known);
        }
        let approvals = self.forge.approvals(mr.iid).await?;
        if self.incremental {
            self.watched.lock().await.remember_approvals(mr, &approvals);
        }
        Ok(approvals)
    }

    /// Says once on `mr` that its recorded request no longer counts (see [`recorded`]); a
    /// failure to say it is logged, and said at the next run. True when labelled now.
    async fn lapse(&self, mr: &forge::MergeRequest, request: &Request, why: &str) -> bool {
        tracing::warn!(
            mr = mr.iid,
            requested_by = request.requested_by,
            why,
            "a recorded request no longer counts"
        );
        if mr.labels.iter().any(|l| l == recorded::LAPSED_LABEL) {
            return false;
        }
        let note = recorded::note(request, why);
        match merge_request::note_and_label(self, mr, &note, recorded::LAPSED_LABEL).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(mr = mr.iid, error = %e, "cannot say that the request lapsed");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_opens_new_promotions_only_where_scheduled_or_continuous() {
        let qa = EnvName::new("qa");
        let scheduled = Scope {
            scheduled: BTreeSet::from([qa.clone()]),
            ..Scope::default()
        };
        assert!(scheduled.may_open(&qa, true));
        assert!(!scheduled.may_open(&EnvName::new("prod"), true));
        assert!(
            scheduled.may_open(&EnvName::new("prod"), false),
            "no schedule: continuous"
        );
        let only = Scope {
            all: true,
            only: Some(qa.clone()),
            ..Scope::default()
        };
        assert!(only.may_open(&qa, true) && !only.covers(&EnvName::new("prod")));
    }
}
