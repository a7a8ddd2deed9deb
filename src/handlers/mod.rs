//! The people's use cases, run by the daemon's loop: every chat command (Slack, Mattermost, an
//! MR comment) arrives as a [`ChatRequest`], is parsed and authorized here, and dispatched by
//! one `match` ([`Handlers::handle`]) to one handler per command family: [`promote`] (promote,
//! rollback), [`status`] (status, plan), [`freeze`] (freeze, unfreeze), [`unhold`], [`help`].
//! A command that needs no reconcile is answered at once; one that does becomes a [`Job`] the
//! loop runs in its turn, and its result travels back through [`answer`]. The loop's
//! reconciles run here too ([`Handlers`] implements [`Work`]), all on one [`Clock`].

pub mod answer;
pub mod freeze;
pub mod help;
pub mod promote;
pub mod status;
pub mod unhold;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::chatops::command::{self, Command, Known};
use crate::chatops::reply::{self, Flavor, ParseFailure, Replies};
use crate::daemon::{self, Asker, Batch, ChatRequest, Clock, ReplyTo, Work};
use crate::dashboard::DashboardData;
use crate::forge::gitlab::GitLab;
use crate::plan::Request;
use crate::reconcile::policy_change::PolicyChange;
use crate::reconcile::{self, Outcome, Reconciler, Scope};
use answer::{Destination, Reply};

/// What a handler decided.
pub enum Handled {
    /// The whole answer.
    Answer(String),
    /// A promotion or rollback to run as a reconcile of that one promotion.
    Run(Box<Request>),
    /// A freeze, unfreeze or unhold to propose as an MR.
    Propose(Box<PolicyChange>),
}

/// A person's command waiting for its turn in the loop.
pub struct Job {
    work: Handled,
    flavor: Flavor,
    asker: Asker,
    to: Destination,
}

/// Called after each of the loop's reconciles (metrics, readiness, the dashboard page,
/// schedules): the daemon's side effects, kept out of the handlers.
pub trait AfterReconcile: Send + Sync {
    /// `result` of a reconcile that took `took`.
    fn after<'a>(
        &'a self,
        result: &'a Result<Outcome, reconcile::Error>,
        took: Duration,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

    /// After the reconcile of one person's promotion or rollback: its actions are counted
    /// and announced like the loop's own.
    fn after_request(&self, outcome: &Outcome) {
        let _ = outcome;
    }
}

/// The reconciler, the clock and the reply templates the handlers share.
pub struct Handlers {
    pub(crate) reconciler: Arc<Reconciler<GitLab>>,
    pub(crate) clock: Clock,
    pub(crate) replies: Replies,
    /// The dashboard of the loop's last successful reconcile (shared, not copied).
    latest: RwLock<Option<Arc<DashboardData>>>,
    bot: String,
    bound: usize,
    after: Option<Box<dyn AfterReconcile>>,
}

/// One command as its handler sees it.
pub struct Asked<'a> {
    /// The handlers' shared parts.
    pub handlers: &'a Handlers,
    /// Where it was typed.
    pub flavor: Flavor,
    /// How it was invoked (`/promoter`).
    pub invocation: &'a str,
    /// Who asked, where.
    pub asker: &'a Asker,
    /// The snapshot of the last reconcile.
    pub snapshot: &'a crate::repo::Snapshot,
    /// The dashboard of the last reconcile.
    pub latest: Option<&'a DashboardData>,
    /// Now, by the daemon's clock.
    pub now: DateTime<Utc>,
}

impl Asked<'_> {
    /// A reply template's text, or a plain apology when the template failed (logged).
    pub fn render(&self, result: Result<String, reply::Error>) -> Handled {
        Handled::Answer(render(result))
    }
}

pub(crate) fn render(result: Result<String, reply::Error>) -> String {
    result.unwrap_or_else(|e| {
        tracing::error!(error = %e, "a chat-ops reply template failed");
        "promoter could not render its answer; see its log.".to_string()
    })
}

impl Handlers {
    /// Handlers on `reconciler`, reading time from `clock`; `bot` is promoter's GitLab user
    /// (its own comments are ignored).
    pub fn new(reconciler: Arc<Reconciler<GitLab>>, clock: Clock, replies: Replies) -> Self {
        let bot = reconciler.forge().username().to_string();
        Self {
            reconciler,
            clock,
            replies,
            latest: RwLock::default(),
            bot,
            bound: daemon::MAX_WAITING,
            after: None,
        }
    }

    /// Starts from the dashboard of a reconcile done before the loop.
    pub fn with_latest(self, latest: Option<Arc<DashboardData>>) -> Self {
        *self.latest.write().unwrap_or_else(|p| p.into_inner()) = latest;
        self
    }

    /// At most `bound` commands waiting for a reconcile or running.
    pub fn with_bound(mut self, bound: usize) -> Self {
        self.bound = bound;
        self
    }

    /// The clock the handlers read.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Calls `after` after each of the loop's reconciles.
    pub fn with_after(mut self, after: Box<dyn AfterReconcile>) -> Self {
        self.after = Some(after);
        self
    }

    /// The reconciler.
    pub fn reconciler(&self) -> &Reconciler<GitLab> {
        &self.reconciler
    }

    fn latest(&self) -> Option<Arc<DashboardData>> {
        self.latest
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Parses and authorizes `request`, then dispatches it to its command's handler.
    pub fn handle(&self, request: &ChatRequest) -> Handled {
        let Some(snapshot) = self.reconciler.latest_snapshot() else {
            return Handled::Answer(
                "promoter is starting: it has not read the repository yet. Try again in a minute."
                    .into(),
            );
        };
        let known = Known {
            services: snapshot
                .service_names()
                .into_iter()
                .map(ToString::to_string)
                .collect(),
            environments: snapshot
                .environments
                .iter()
                .map(|e| e.name.to_string())
                .collect(),
        };
        let command = match command::parse(&request.text, &known) {
            Ok(command) => command,
            Err(error) => {
                let failure = ParseFailure {
                    invocation: request.invocation.clone(),
                    error,
                };
                return Handled::Answer(render(self.replies.parse_error(request.flavor, &failure)));
            }
        };
        let latest = self.latest();
        let asked = Asked {
            handlers: self,
            flavor: request.flavor,
            invocation: &request.invocation,
            asker: &request.asker,
            snapshot: &snapshot,
            latest: latest.as_deref(),
            now: self.clock.now(),
        };
        match command {
            Command::Help { topic } => help::help(&asked, topic),
            Command::Status { service } => status::status(&asked, service.as_ref()),
            Command::Plan { env } => status::plan(&asked, env.as_ref()),
            Command::Freeze {
                scope,
                until,
                reason,
            } => freeze::freeze(&asked, &scope, until, &reason),
            Command::Unfreeze { scope } => freeze::unfreeze(&asked, &scope),
            Command::Unhold { service, env } => unhold::unhold(&asked, &service, &env),
            Command::Promote {
                service,
                to,
                tag,
                reason,
            } => promote::promote(&asked, service, to, tag, reason),
            Command::Rollback {
                service,
                env,
                to,
                reason,
            } => promote::rollback(&asked, service, env, to, reason),
        }
    }

    /// Runs one job and delivers its answer.
    async fn run_job(&self, job: Job) {
        let text = match job.work {
            Handled::Run(request) => promote::run(self, job.flavor, *request, &job.asker).await,
            Handled::Propose(change) => freeze::propose(self, job.flavor, *change).await,
            Handled::Answer(text) => text,
        };
        job.to.deliver(self, text).await;
    }

    /// One reconcile of the loop: the batch's scheduled environments may open MRs.
    async fn reconcile_batch(&self, batch: Batch) {
        let scope = Scope {
            scheduled: batch.scheduled,
            ..Scope::default()
        };
        let started = std::time::Instant::now();
        let result = self
            .reconciler
            .run_once(&scope, &[], self.clock.now())
            .await;
        if let Ok(outcome) = &result
            && let Some(data) = &outcome.dashboard
        {
            *self.latest.write().unwrap_or_else(|p| p.into_inner()) = Some(data.clone());
        }
        match &self.after {
            Some(after) => after.after(&result, started.elapsed()).await,
            None => {
                if let Err(error) = &result {
                    tracing::error!(error = %format!("{error:#}"), "reconcile failed");
                }
            }
        }
    }
}

impl Work for Handlers {
    type Job = Job;

    fn triage(&self, request: ChatRequest, room: bool) -> Option<Job> {
        if let ReplyTo::MergeRequest { author, .. } = &request.reply
            && *author == self.bot
        {
            return None;
        }
        let handled = self.handle(&request);
        let reply = Reply::new(request.reply);
        let note = match &handled {
            Handled::Answer(_) => None,
            Handled::Run(_) => Some("Working on it: the result follows in this channel."),
            Handled::Propose(_) => {
                Some("Working on it: the merge request follows in this channel.")
            }
        };
        let Some(note) = note else {
            if let Handled::Answer(text) = handled {
                reply.now(self, text);
            }
            return None;
        };
        if !room {
            tracing::warn!("chat-ops queue full: a command was answered busy");
            reply.busy(self);
            return None;
        }
        let to = reply.working(note)?;
        Some(Job {
            work: handled,
            flavor: request.flavor,
            asker: request.asker,
            to,
        })
    }

    fn reconcile(&self, batch: Batch) -> impl Future<Output = ()> + Send + '_ {
        self.reconcile_batch(batch)
    }

    fn run(&self, job: Job) -> impl Future<Output = ()> + Send + '_ {
        self.run_job(job)
    }

    fn bound(&self) -> usize {
        self.bound
    }
}
