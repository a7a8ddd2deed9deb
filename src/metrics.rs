//! Prometheus metrics of the daemon and the HTTP routes that expose them: `GET /metrics` (the
//! OpenMetrics text format) and `GET /` (the last rendered [`dashboard`](crate::dashboard)
//! page). Owns the registry and the record methods the reconcile loop calls; it decides
//! nothing and never reads the clock (timestamps and durations are arguments).
//!
//! Label values must stay few: `endpoint` is a route template such as
//! `projects/:id/merge_requests`, never a path with ids in it.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::dashboard::DashboardData;
use crate::policy::gate::Gate;

/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The stages a reconcile fails at (`promoter_reconcile_failures_total{stage}`), each present
/// at zero from the start.
pub const FAILURE_STAGES: [&str; 4] = ["git", "gitlab", "templates", "policy"];

/// The gates of `promoter_gate_verdicts_total{gate,verdict}`, each present at zero from the
/// start.
const GATES: [Gate; 10] = [
    Gate::Order,
    Gate::Semver,
    Gate::Soak,
    Gate::Freeze,
    Gate::Window,
    Gate::OpenLimit,
    Gate::Policy,
    Gate::Health,
    Gate::Image,
    Gate::Hold,
];

/// The windows of `promoter_lead_time_seconds`.
const LEAD_WINDOWS: [&str; 2] = ["30d", "90d"];

/// Upper bounds of the reconcile duration histogram, in seconds.
const DURATION_BUCKETS: [f64; 11] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StageLabels {
    stage: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ActionLabels {
    env: String,
    action: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct GateLabels {
    gate: String,
    verdict: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    endpoint: String,
    status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PairLabels {
    from: String,
    to: String,
    window: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EnvLabels {
    env: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AnnouncementLabels {
    sink: String,
    result: &'static str,
}

/// `promoter_tag_age_seconds`: the ages of the last dashboard's cells whose landing is known,
/// read when scraped. The dashboard is shared, not copied into a gauge per cell: a reconcile
/// at 10,000 services sets 30,000 ages by handing over one pointer. Services that left an
/// environment are no longer listed.
#[derive(Debug, Clone, Default)]
struct TagAges(Arc<std::sync::RwLock<Option<Arc<DashboardData>>>>);

impl EncodeMetric for TagAges {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let shown = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(data) = shown.as_ref() else {
            return Ok(());
        };
        for row in data.rows.iter() {
            for cell in &row.cells {
                let Some(secs) = cell.age_secs(data.generated_at) else {
                    continue;
                };
                let labels = [
                    ("service", row.service.as_str()),
                    ("env", cell.env.as_str()),
                ];
                encoder.encode_family(&labels)?.encode_gauge(&secs)?;
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }

    /// Listed once a tag's age is known (a zero would say every tag just landed).
    fn is_empty(&self) -> bool {
        let shown = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        !shown.as_ref().is_some_and(|data| {
            data.rows
                .iter()
                .any(|row| row.cells.iter().any(|cell| cell.landed.is_some()))
        })
    }
}

/// What the reconcile did to a promotion merge request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A new promotion MR.
    Opened,
    /// An open MR moved to a newer candidate.
    Updated,
    /// promoter merged it.
    Merged,
    /// Closed: no longer due.
    Closed,
}

impl Action {
    /// Every action, each present at zero for every environment from the start.
    pub const ALL: [Action; 4] = [Self::Opened, Self::Updated, Self::Merged, Self::Closed];

    /// The `action` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Updated => "updated",
            Self::Merged => "merged",
            Self::Closed => "closed",
        }
    }
}

/// The daemon's metrics and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<OutcomeLabels, Counter>,
    reconcile_duration: Histogram,
    reconcile_failures: Family<StageLabels, Counter>,
    promotions: Family<ActionLabels, Counter>,
    gate_verdicts: Family<GateLabels, Counter>,
    gitlab_requests: Family<RequestLabels, Counter>,
    rate_limit_waits: Counter,
    rate_limit_wait_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    last_success: Gauge<f64, std::sync::atomic::AtomicU64>,
    tag_age: TagAges,
    lead_time: Family<PairLabels, Gauge>,
    deployments_per_week: Family<EnvLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    deployments_recorded: Counter,
    budget_wait_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    announcements: Family<AnnouncementLabels, Counter>,
    /// The environment pairs of the promotion graph, whose lead times stay listed (at zero
    /// until a sample exists) once [`Metrics::seed_environments`] named them.
    pairs: std::sync::Mutex<Vec<(String, String)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every family registered, all at zero.
    pub fn new() -> Self {
        Self::in_registry(Registry::default())
    }

    /// [`Metrics::new`] for one project of a daemon serving several: every sample carries
    /// `project="<name>"`. [`encode_all`] lists several projects' metrics as one exposition.
    pub fn for_project(name: &str) -> Self {
        let label = (
            std::borrow::Cow::Borrowed("project"),
            std::borrow::Cow::Owned(name.to_string()),
        );
        Self::in_registry(Registry::with_labels(std::iter::once(label)))
    }

    fn in_registry(mut registry: Registry) -> Self {
        let reconciles = Family::<OutcomeLabels, Counter>::default();
        // Both outcomes exist from the start, so rate() and alerts see a zero, not no data.
        for outcome in ["success", "failure"] {
            let _ = reconciles.get_or_create(&OutcomeLabels { outcome });
        }
        registry.register(
            "promoter_reconciles",
            "Reconcile cycles run, by outcome (success or failure)",
            reconciles.clone(),
        );
        let reconcile_duration = Histogram::new(DURATION_BUCKETS);
        registry.register_with_unit(
            "promoter_reconcile_duration",
            "How long a reconcile cycle took",
            Unit::Seconds,
            reconcile_duration.clone(),
        );
        let reconcile_failures = Family::<StageLabels, Counter>::default();
        for stage in FAILURE_STAGES {
            let _ = reconcile_failures.get_or_create(&StageLabels {
                stage: stage.to_string(),
            });
        }
        registry.register(
            "promoter_reconcile_failures",
            "Failed reconcile cycles, by the stage that failed",
            reconcile_failures.clone(),
        );
        let promotions = Family::<ActionLabels, Counter>::default();
        registry.register(
            "promoter_promotions",
            "Promotion merge requests opened, updated, merged or closed, by target environment",
            promotions.clone(),
        );
        let gate_verdicts = Family::<GateLabels, Counter>::default();
        for gate in GATES {
            for verdict in ["pass", "fail"] {
                let _ = gate_verdicts.get_or_create(&GateLabels {
                    gate: gate.name().to_string(),
                    verdict,
                });
            }
        }
        registry.register(
            "promoter_gate_verdicts",
            "Gate evaluations, by gate and verdict (pass or fail)",
            gate_verdicts.clone(),
        );
        let gitlab_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "promoter_gitlab_requests",
            "GitLab API requests, by endpoint template and HTTP status (none: no response)",
            gitlab_requests.clone(),
        );
        let rate_limit_waits = Counter::default();
        registry.register(
            "promoter_rate_limit_waits",
            "Times promoter waited for GitLab's rate limit",
            rate_limit_waits.clone(),
        );
        let rate_limit_wait_seconds = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register_with_unit(
            "promoter_rate_limit_wait",
            "Time spent waiting for GitLab's rate limit",
            Unit::Seconds,
            rate_limit_wait_seconds.clone(),
        );
        let last_success = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register_with_unit(
            "promoter_last_successful_reconcile_timestamp",
            "When the last successful reconcile finished, as a Unix time",
            Unit::Seconds,
            last_success.clone(),
        );
        let tag_age = TagAges::default();
        registry.register_with_unit(
            "promoter_tag_age",
            "How long each service's tag has been in each environment",
            Unit::Seconds,
            tag_age.clone(),
        );
        let lead_time = Family::<PairLabels, Gauge>::default();
        registry.register_with_unit(
            "promoter_lead_time",
            "Median time from landing in one environment to landing in the next, over a window (30d, 90d)",
            Unit::Seconds,
            lead_time.clone(),
        );
        let deployments_per_week =
            Family::<EnvLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "promoter_deployments_per_week",
            "Deployment frequency: tags landed in each environment per week, over the last 30 days",
            deployments_per_week.clone(),
        );
        let budget_wait_seconds = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register_with_unit(
            "promoter_gitlab_budget_wait",
            "Time requests waited for the GitLab host's request budget (gitlab.requests_per_second)",
            Unit::Seconds,
            budget_wait_seconds.clone(),
        );
        let deployments_recorded = Counter::default();
        registry.register(
            "promoter_gitlab_deployments_recorded",
            "Deployments recorded in GitLab through the Deployments API",
            deployments_recorded.clone(),
        );
        let announcements = Family::<AnnouncementLabels, Counter>::default();
        registry.register(
            "promoter_announcements",
            "Announcements posted to incoming webhooks, by sink (its configured name) and result (sent or failed)",
            announcements.clone(),
        );
        Self {
            announcements,
            pairs: std::sync::Mutex::default(),
            budget_wait_seconds,
            lead_time,
            deployments_per_week,
            deployments_recorded,
            registry,
            reconciles,
            reconcile_duration,
            reconcile_failures,
            promotions,
            gate_verdicts,
            gitlab_requests,
            rate_limit_waits,
            rate_limit_wait_seconds,
            last_success,
            tag_age,
        }
    }

    /// One reconcile cycle that took `duration` and succeeded or not.
    pub fn record_reconcile(&self, duration: Duration, ok: bool) {
        let outcome = if ok { "success" } else { "failure" };
        self.reconciles
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        self.reconcile_duration.observe(duration.as_secs_f64());
    }

    /// A reconcile that failed in `stage` (`fetch`, `observe`, `plan`, `act`, ...).
    pub fn record_failure(&self, stage: &str) {
        self.reconcile_failures
            .get_or_create(&StageLabels {
                stage: stage.to_string(),
            })
            .inc();
    }

    /// What the reconcile did to a promotion MR into `env`.
    pub fn record_action(&self, env: &str, action: Action) {
        self.promotions
            .get_or_create(&ActionLabels {
                env: env.to_string(),
                action: action.as_str(),
            })
            .inc();
    }

    /// One gate's verdict (`gate` as in reasons: `soak`, `open limit`, ...).
    pub fn record_gate(&self, gate: &str, passed: bool) {
        self.gate_verdicts
            .get_or_create(&GateLabels {
                gate: gate.to_string(),
                verdict: if passed { "pass" } else { "fail" },
            })
            .inc();
    }

    /// Reports the tag ages of `data`'s cells whose landing is known (as of its reconcile), in
    /// place of the last dashboard's.
    pub fn set_tag_ages(&self, data: &Arc<DashboardData>) {
        *self
            .tag_age
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(data.clone());
    }

    /// Lists every environment's series at zero before anything happened (`rate()` and alerts
    /// on absence need a series): promotions by `envs` and action, lead times of `pairs`
    /// (from, to) in both windows, deployments per week of `envs`. Series that exist keep
    /// their values; pairs named here stay listed after [`Self::set_lead_times`].
    pub fn seed_environments(&self, envs: &[String], pairs: &[(String, String)]) {
        for env in envs {
            for action in Action::ALL {
                let _ = self.promotions.get_or_create(&ActionLabels {
                    env: env.clone(),
                    action: action.as_str(),
                });
            }
            let _ = self
                .deployments_per_week
                .get_or_create(&EnvLabels { env: env.clone() });
        }
        *self
            .pairs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = pairs.to_vec();
        self.seed_lead_times();
    }

    fn seed_lead_times(&self) {
        let pairs = self
            .pairs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (from, to) in pairs.iter() {
            for window in LEAD_WINDOWS {
                let _ = self.lead_time.get_or_create(&PairLabels {
                    from: from.clone(),
                    to: to.clone(),
                    window,
                });
            }
        }
    }

    /// Lists each sink's announcement counts at zero.
    pub fn seed_announcements(&self, sinks: &[String]) {
        for sink in sinks {
            for result in ["sent", "failed"] {
                let _ = self.announcements.get_or_create(&AnnouncementLabels {
                    sink: sink.clone(),
                    result,
                });
            }
        }
    }

    /// One announcement posted to `sink`, or not.
    pub fn record_announcement(&self, sink: &str, sent: bool) {
        self.announcements
            .get_or_create(&AnnouncementLabels {
                sink: sink.to_string(),
                result: if sent { "sent" } else { "failed" },
            })
            .inc();
    }

    /// Replaces lead times and deployment frequencies with those of `lead`; the pairs that
    /// [`Self::seed_environments`] named stay listed, at zero while they have no sample.
    pub fn set_lead_times(&self, lead: &crate::history::LeadTimes) {
        self.lead_time.clear();
        self.seed_lead_times();
        for pair in &lead.pairs {
            for (window, median) in [("30d", &pair.median_30d), ("90d", &pair.median_90d)] {
                if let Some(span) = median {
                    self.lead_time
                        .get_or_create(&PairLabels {
                            from: pair.from.to_string(),
                            to: pair.to.to_string(),
                            window,
                        })
                        .set(span.seconds());
                }
            }
        }
        self.deployments_per_week.clear();
        for env in &lead.frequency {
            self.deployments_per_week
                .get_or_create(&EnvLabels {
                    env: env.env.to_string(),
                })
                .set(env.per_week_30d);
        }
    }

    /// `secs` seconds of waiting for the request budget.
    pub fn record_budget_wait(&self, secs: f64) {
        self.budget_wait_seconds.inc_by(secs.max(0.0));
    }

    /// `n` deployments recorded in GitLab.
    pub fn record_deployments(&self, n: usize) {
        self.deployments_recorded.inc_by(n as u64);
    }

    /// One GitLab request to `endpoint` (a route template) answered with `status`, or `None`
    /// when no response arrived.
    pub fn record_gitlab(&self, endpoint: &str, status: Option<u16>) {
        self.gitlab_requests
            .get_or_create(&RequestLabels {
                endpoint: endpoint.to_string(),
                status: status.map_or_else(|| "none".to_string(), |s| s.to_string()),
            })
            .inc();
    }

    /// One wait of `secs` seconds for GitLab's rate limit.
    pub fn record_rate_limit_wait(&self, secs: f64) {
        self.rate_limit_waits.inc();
        self.rate_limit_wait_seconds.inc_by(secs.max(0.0));
    }

    /// A reconcile succeeded at `ts`.
    pub fn mark_success(&self, ts: DateTime<Utc>) {
        self.last_success.set(ts.timestamp_millis() as f64 / 1000.0);
    }

    /// Every family in the OpenMetrics text format, ending with `# EOF`.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// Several registries' expositions (one per project) as one: each family's `# HELP`, `# TYPE`
/// and `# UNIT` once, then the samples of every project (their `project` label tells them
/// apart), one `# EOF` at the end. An exposition naming a family twice is invalid.
pub fn encode_all(all: &[Arc<Metrics>]) -> String {
    let mut order: Vec<String> = Vec::new();
    let mut families: std::collections::HashMap<String, (Vec<String>, Vec<String>)> =
        std::collections::HashMap::new();
    for metrics in all {
        let text = metrics.encode();
        let mut current: Option<String> = None;
        for line in text.lines() {
            if line == "# EOF" {
                break;
            }
            if let Some(rest) = line.strip_prefix("# ") {
                let mut words = rest.split(' ');
                let _kind = words.next();
                let name = words.next().unwrap_or_default().to_string();
                let family = families.entry(name.clone()).or_insert_with(|| {
                    order.push(name.clone());
                    Default::default()
                });
                // Every project's registry writes the same header lines: keep one of each.
                if !family.0.iter().any(|h| h == line) {
                    family.0.push(line.to_string());
                }
                current = Some(name);
            } else if let Some(name) = &current {
                families
                    .get_mut(name)
                    .expect("the family of the header above")
                    .1
                    .push(line.to_string());
            }
        }
    }
    let mut out = String::new();
    for name in order {
        let (headers, samples) = &families[&name];
        for line in headers.iter().chain(samples) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str("# EOF\n");
    out
}

/// `GET /metrics`: [`Metrics::encode`] as [`CONTENT_TYPE`].
pub fn routes(metrics: Arc<Metrics>) -> Router {
    routes_of(vec![metrics])
}

/// `GET /metrics` of a daemon serving several projects: [`encode_all`] of `all`.
pub fn routes_of(all: Vec<Arc<Metrics>>) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .with_state(Arc::new(all))
}

async fn serve_metrics(State(all): State<Arc<Vec<Arc<Metrics>>>>) -> Response {
    let text = match all.as_slice() {
        [one] => one.encode(),
        all => encode_all(all),
    };
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

/// The page `GET /` answers before the first reconcile has rendered the dashboard.
const NOT_YET: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"refresh\" content=\"10\"><title>Promotion dashboard · promoter</title></head>\
<body><h1>Promotion dashboard</h1><p>No reconcile yet: the dashboard appears after the first \
one.</p></body></html>\n";

/// `GET /`: the page of the last dashboard a reconcile published into `state`; 503 before the
/// first.
pub fn dashboard_route(state: Arc<crate::dashboard::Page>) -> Router {
    Router::new()
        .route("/", get(serve_dashboard))
        .with_state(state)
}

async fn serve_dashboard(State(state): State<Arc<crate::dashboard::Page>>) -> Response {
    // Rendering a large dashboard takes a while: off the async workers.
    let page = tokio::task::spawn_blocking(move || state.html())
        .await
        .ok()
        .flatten();
    let cache = [(header::CACHE_CONTROL, "no-store")];
    match page {
        Some(page) => (cache, Html(page.to_string())).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, cache, Html(NOT_YET)).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    /// A dashboard of one row per `(service, env, age)` (no age: the landing is unknown).
    fn with_ages(cells: &[(&str, &str, Option<i64>)]) -> Arc<DashboardData> {
        use crate::dashboard::{Cell, CellState, ServiceRow};
        let mut data = DashboardData::empty("2026-11-24T10:00:00Z");
        let generated_at = data.generated_at;
        data.rows = cells
            .iter()
            .map(|(service, env, age)| ServiceRow {
                service: service.to_string(),
                folder: String::new(),
                cells: vec![Cell {
                    env: env.to_string(),
                    tag: Some("1.0.0".into()),
                    landed: age.map(|secs| generated_at - chrono::TimeDelta::seconds(secs)),
                    state: CellState::UpToDate,
                    candidate: None,
                    failing_gates: Vec::new(),
                    reasons: Vec::new(),
                }],
            })
            .map(Arc::new)
            .collect();
        Arc::new(data)
    }

    fn recorded() -> Metrics {
        let m = Metrics::new();
        m.record_reconcile(Duration::from_millis(1500), true);
        m.record_reconcile(Duration::from_millis(200), false);
        m.record_failure("fetch");
        m.record_action("qa", Action::Opened);
        m.record_action("qa", Action::Opened);
        m.record_action("prod", Action::Merged);
        m.record_gate("soak", false);
        m.record_gate("open limit", true);
        m.set_tag_ages(&with_ages(&[
            ("maths-api", "qa", Some(3600)),
            ("client", "qa", None),
        ]));
        m.record_gitlab("projects/:id/merge_requests", Some(200));
        m.record_gitlab("projects/:id/merge_requests", None);
        m.record_rate_limit_wait(2.5);
        m.mark_success("2026-11-24T10:00:00.500Z".parse().unwrap());
        m
    }

    #[test]
    fn lead_times_frequency_deployments_and_budget_waits_are_exported() {
        use crate::history::{EnvFrequency, LeadTimes, PairStats, Span};
        use crate::model::EnvName;
        let m = Metrics::new();
        m.set_lead_times(&LeadTimes {
            pairs: vec![PairStats {
                from: EnvName::new("dev"),
                to: EnvName::new("qa"),
                median_30d: Some(Span(chrono::TimeDelta::hours(3))),
                median_90d: None,
                samples_30d: 4,
                samples_90d: 4,
            }],
            frequency: vec![EnvFrequency {
                env: EnvName::new("qa"),
                landings_30d: 9,
                landings_90d: 20,
                per_week_30d: 2.1,
            }],
        });
        m.record_deployments(2);
        m.record_budget_wait(0.25);
        let text = m.encode();
        for line in [
            "promoter_lead_time_seconds{from=\"dev\",to=\"qa\",window=\"30d\"} 10800",
            "promoter_deployments_per_week{env=\"qa\"} 2.1",
            "promoter_gitlab_deployments_recorded_total 2",
            "promoter_gitlab_budget_wait_seconds_total 0.25",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(!text.contains("window=\"90d\""), "no sample, no series");
    }

    #[test]
    fn every_family_is_encoded_with_its_labels() {
        let text = recorded().encode();
        for line in [
            "# TYPE promoter_reconciles counter",
            "promoter_reconciles_total{outcome=\"success\"} 1",
            "promoter_reconciles_total{outcome=\"failure\"} 1",
            "# TYPE promoter_reconcile_duration_seconds histogram",
            "# UNIT promoter_reconcile_duration_seconds seconds",
            "promoter_reconcile_duration_seconds_sum 1.7",
            "promoter_reconcile_duration_seconds_count 2",
            "promoter_reconcile_duration_seconds_bucket{le=\"0.25\"} 1",
            "promoter_reconcile_duration_seconds_bucket{le=\"2.5\"} 2",
            "promoter_reconcile_failures_total{stage=\"fetch\"} 1",
            "promoter_promotions_total{env=\"qa\",action=\"opened\"} 2",
            "promoter_promotions_total{env=\"prod\",action=\"merged\"} 1",
            "promoter_gate_verdicts_total{gate=\"soak\",verdict=\"fail\"} 1",
            "promoter_gate_verdicts_total{gate=\"open limit\",verdict=\"pass\"} 1",
            "promoter_gitlab_requests_total{endpoint=\"projects/:id/merge_requests\",status=\"200\"} 1",
            "promoter_gitlab_requests_total{endpoint=\"projects/:id/merge_requests\",status=\"none\"} 1",
            "promoter_rate_limit_waits_total 1",
            "promoter_rate_limit_wait_seconds_total 2.5",
            "# TYPE promoter_last_successful_reconcile_timestamp_seconds gauge",
            "promoter_last_successful_reconcile_timestamp_seconds 1795514400.5",
            "# TYPE promoter_tag_age_seconds gauge",
            "promoter_tag_age_seconds{service=\"maths-api\",env=\"qa\"} 3600",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
        }
    }

    #[test]
    fn tag_ages_are_those_of_the_last_dashboard() {
        let fresh = Metrics::new();
        assert!(
            !fresh.encode().contains("promoter_tag_age"),
            "no age known, no family"
        );
        fresh.set_tag_ages(&with_ages(&[("client", "qa", None)]));
        assert!(
            !fresh.encode().contains("promoter_tag_age"),
            "no landing known either"
        );
        let m = recorded();
        assert!(
            !m.encode().contains("service=\"client\""),
            "no landing, no age"
        );
        m.set_tag_ages(&with_ages(&[("client", "prod", Some(60))]));
        let text = m.encode();
        assert!(
            text.lines()
                .any(|l| l == "promoter_tag_age_seconds{service=\"client\",env=\"prod\"} 60"),
            "{text}"
        );
        assert!(
            !text.contains("maths-api\",env=\"qa\"} 3600"),
            "a service that left is gone"
        );
    }

    #[test]
    fn series_without_variable_labels_start_at_zero() {
        let text = Metrics::new().encode();
        for line in [
            "promoter_reconciles_total{outcome=\"success\"} 0",
            "promoter_reconciles_total{outcome=\"failure\"} 0",
            "promoter_reconcile_duration_seconds_count 0",
            "promoter_rate_limit_waits_total 0",
            "promoter_rate_limit_wait_seconds_total 0.0",
            "promoter_last_successful_reconcile_timestamp_seconds 0.0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
        }
    }

    #[test]
    fn seeded_environments_stages_pairs_and_sinks_start_at_zero_and_stay_listed() {
        use crate::history::{LeadTimes, PairStats, Span};
        use crate::model::EnvName;
        let m = Metrics::new();
        m.seed_environments(
            &["qa".to_string(), "prod".to_string()],
            &[("qa".to_string(), "prod".to_string())],
        );
        m.seed_announcements(&["team-chat".to_string()]);
        let text = m.encode();
        let mut lines = vec![
            "promoter_lead_time_seconds{from=\"qa\",to=\"prod\",window=\"30d\"} 0".to_string(),
            "promoter_lead_time_seconds{from=\"qa\",to=\"prod\",window=\"90d\"} 0".to_string(),
            "promoter_announcements_total{sink=\"team-chat\",result=\"sent\"} 0".to_string(),
            "promoter_announcements_total{sink=\"team-chat\",result=\"failed\"} 0".to_string(),
        ];
        for env in ["qa", "prod"] {
            for action in Action::ALL {
                lines.push(format!(
                    "promoter_promotions_total{{env=\"{env}\",action=\"{}\"}} 0",
                    action.as_str()
                ));
            }
        }
        for stage in FAILURE_STAGES {
            lines.push(format!(
                "promoter_reconcile_failures_total{{stage=\"{stage}\"}} 0"
            ));
        }
        for line in &lines {
            assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
        }
        // A sample replaces its zero; the seeded window without one stays at zero.
        m.set_lead_times(&LeadTimes {
            pairs: vec![PairStats {
                from: EnvName::new("qa"),
                to: EnvName::new("prod"),
                median_30d: Some(Span(chrono::TimeDelta::hours(1))),
                median_90d: None,
                samples_30d: 1,
                samples_90d: 1,
            }],
            frequency: Vec::new(),
        });
        let text = m.encode();
        for line in [
            "promoter_lead_time_seconds{from=\"qa\",to=\"prod\",window=\"30d\"} 3600",
            "promoter_lead_time_seconds{from=\"qa\",to=\"prod\",window=\"90d\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
        }
    }

    #[tokio::test]
    async fn metrics_route_serves_openmetrics_text() {
        let response = routes(Arc::new(recorded()))
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains("promoter_reconciles_total{outcome=\"success\"} 1"));
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[tokio::test]
    async fn dashboard_route_is_503_until_a_page_is_rendered() {
        let state = Arc::new(crate::dashboard::Page::default());
        let get = || Request::get("/").body(Body::empty()).unwrap();
        let response = dashboard_route(state.clone()).oneshot(get()).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("No reconcile yet"));

        state.publish(Arc::new(DashboardData::empty("2026-12-01T10:00:00Z")));
        let response = dashboard_route(state).oneshot(get()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let page = String::from_utf8_lossy(&body);
        assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
        assert!(page.contains("2026-12-01 10:00 UTC"), "{page}");
    }

    #[test]
    fn several_projects_make_one_exposition_with_each_family_once() {
        let calculator = Arc::new(Metrics::for_project("calculator"));
        let billing = Arc::new(Metrics::for_project("billing"));
        calculator.record_action("qa", Action::Opened);
        billing.record_reconcile(Duration::from_millis(10), false);
        let text = encode_all(&[calculator, billing]);
        assert_eq!(
            text.matches("# TYPE promoter_reconciles counter").count(),
            1
        );
        assert_eq!(text.matches("# HELP promoter_reconciles ").count(), 1);
        assert_eq!(text.matches("# EOF").count(), 1);
        assert!(text.ends_with("# EOF\n"));
        assert!(
            text.contains(
                r#"promoter_promotions_total{project="calculator",env="qa",action="opened"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"promoter_reconciles_total{project="billing",outcome="failure"} 1"#)
        );
        assert!(
            text.contains(r#"promoter_reconciles_total{project="calculator",outcome="failure"} 0"#)
        );
        // Each family's samples follow its own header, before the next family's header.
        let reconciles = text.find("# HELP promoter_reconciles ").unwrap();
        let next = text[reconciles + 1..].find("# HELP").unwrap() + reconciles + 1;
        let block = &text[reconciles..next];
        assert_eq!(
            block.matches("promoter_reconciles_total{").count(),
            4,
            "{block}"
        );
    }
}
