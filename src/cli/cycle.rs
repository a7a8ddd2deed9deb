//! What the daemon does after each of its loop's reconciles, in named steps: count it in the
//! metrics (actions, gate verdicts, GitLab waits, failures), publish the dashboard (page and
//! GitLab issue), mark readiness, and restart the schedule timer when the environments'
//! schedules changed. Wiring only; the reconcile itself runs in [`crate::handlers`].

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::announce::Announcer;
use crate::daemon::{Clock, Trigger, schedule};
use crate::dashboard::DashboardData;
use crate::forge::gitlab::GitLab;
use crate::handlers::AfterReconcile;
use crate::metrics::{self as metric, Metrics};
use crate::model::EnvName;
use crate::reconcile::{self, ActionKind, Outcome, Reconciler};
use crate::server::Readiness;

/// The schedule task and the schedules it was started with.
pub(super) type Timer = (Vec<(EnvName, String)>, Option<JoinHandle<()>>);

/// The daemon's side effects of a reconcile.
pub(super) struct Cycle {
    pub reconciler: Arc<Reconciler<GitLab>>,
    pub metrics: Arc<Metrics>,
    /// Posts what changed to the chat webhooks of `notify.*`.
    pub announcer: Arc<Announcer>,
    pub page: Arc<crate::dashboard::Page>,
    pub readiness: Arc<Readiness>,
    pub clock: Clock,
    /// The schedules come from environments/ at the head of the branch.
    pub timer: Arc<Mutex<Timer>>,
    /// For the schedule task.
    pub triggers: mpsc::Sender<Trigger>,
    pub shutdown: watch::Receiver<bool>,
    /// GitLab's waits counted so far (rate limits, the request budget), in ms.
    pub waited_ms: AtomicU64,
    pub budget_ms: AtomicU64,
}

impl AfterReconcile for Cycle {
    fn after<'a>(
        &'a self,
        result: &'a Result<Outcome, reconcile::Error>,
        took: Duration,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            self.metrics.record_reconcile(took, result.is_ok());
            self.record_waits();
            match result {
                Ok(outcome) => {
                    record(&self.metrics, outcome);
                    self.announce(outcome);
                    if let Some(data) = &outcome.dashboard {
                        self.publish(data).await;
                    }
                    let now = self.clock.now();
                    self.metrics.mark_success(now);
                    self.readiness.mark_fetched(now);
                    self.readiness.mark_gitlab_ok(now);
                    log_actions(outcome);
                    self.restart_schedules(outcome);
                }
                Err(error) => {
                    self.metrics.record_failure(failure_stage(error));
                    tracing::error!(error = %format!("{error:#}"), "reconcile failed; the next trigger retries");
                }
            }
        })
    }

    fn after_request(&self, outcome: &Outcome) {
        record(&self.metrics, outcome);
        self.announce(outcome);
        log_actions(outcome);
    }
}

impl Cycle {
    /// Posted beside the loop: a slow webhook never holds up the next run.
    fn announce(&self, outcome: &Outcome) {
        let lines = self.announcer.prepare(outcome);
        let announcer = self.announcer.clone();
        tokio::spawn(async move { announcer.post(&lines).await });
    }

    /// GitLab's rate-limit and budget waits since the last reconcile. The request budget is
    /// shared with chat-ops and the dashboard: their waits are counted here too.
    fn record_waits(&self) {
        let calls = self.reconciler.forge().calls();
        let new = |total: u64, seen: &AtomicU64| {
            total.saturating_sub(seen.swap(total, Ordering::Relaxed))
        };
        let waited = new(calls.waited_ms.load(Ordering::Relaxed), &self.waited_ms);
        if waited > 0 {
            self.metrics.record_rate_limit_wait(waited as f64 / 1000.0);
        }
        let budget = new(
            calls.budget_waited_ms.load(Ordering::Relaxed),
            &self.budget_ms,
        );
        if budget > 0 {
            self.metrics.record_budget_wait(budget as f64 / 1000.0);
        }
    }

    /// The dashboard page, the tag ages, and the same matrix as a GitLab issue.
    async fn publish(&self, data: &Arc<DashboardData>) {
        self.metrics.set_tag_ages(data);
        self.page.publish(data.clone());
        if let Err(error) = self.reconciler.ensure_dashboard_issue(data).await {
            tracing::warn!(error = %format!("{error:#}"), "cannot update the dashboard issue");
        }
    }

    /// Restarts the schedule timer when the schedules read at the head changed.
    fn restart_schedules(&self, outcome: &Outcome) {
        let key: Vec<(EnvName, String)> = outcome
            .schedules
            .iter()
            .map(|(e, s, tz)| (e.clone(), format!("{s} {tz}")))
            .collect();
        let mut timer = self.timer.lock().unwrap_or_else(|p| p.into_inner());
        if timer.0 == key && timer.1.is_some() {
            return;
        }
        if let Some(old) = timer.1.take() {
            old.abort();
        }
        let task = schedule::run(
            outcome.schedules.clone(),
            self.clock,
            self.triggers.clone(),
            self.shutdown.clone(),
        );
        *timer = (key, Some(tokio::spawn(task)));
    }
}

fn log_actions(outcome: &Outcome) {
    for action in &outcome.actions {
        if !matches!(action.kind, ActionKind::Unchanged) {
            tracing::info!(branch = action.branch, kind = ?action.kind, detail = action.detail, "promotion");
        }
    }
}

/// Counts a reconcile's actions and gate verdicts.
pub(super) fn record(metrics: &Metrics, outcome: &Outcome) {
    for action in &outcome.actions {
        let kind = match action.kind {
            ActionKind::Opened => metric::Action::Opened,
            ActionKind::Updated => metric::Action::Updated,
            ActionKind::Merged => metric::Action::Merged,
            ActionKind::Closed => metric::Action::Closed,
            _ => continue,
        };
        let env = crate::promotion::branches::parse(&action.branch)
            .map(|(e, _)| e.to_string())
            .unwrap_or_default();
        metrics.record_action(&env, kind);
    }
    for (gate, passed) in &outcome.gates {
        metrics.record_gate(gate, *passed);
    }
    if let (Some(data), Some(lead)) = (&outcome.dashboard, &outcome.lead_times) {
        let pairs: Vec<(String, String)> = lead
            .pairs
            .iter()
            .map(|p| (p.from.to_string(), p.to.to_string()))
            .collect();
        metrics.seed_environments(&data.environments, &pairs);
    }
    if let Some(lead) = &outcome.lead_times {
        metrics.set_lead_times(lead);
    }
    metrics.record_deployments(outcome.deployments_recorded);
}

/// The stage a failed reconcile stopped at, for the failures metric (one of
/// [`metric::FAILURE_STAGES`]).
fn failure_stage(error: &reconcile::Error) -> &'static str {
    use crate::reconcile::Error;
    match error {
        Error::Mirror(_) | Error::Git(_) | Error::Worker(_) => "git",
        Error::Forge(_) => "gitlab",
        Error::Template(_) => "templates",
        Error::NothingToChange(_) | Error::HandsOff { .. } => "policy",
    }
}
