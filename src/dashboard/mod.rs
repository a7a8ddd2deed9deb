//! The promotion dashboard: every service's tag in every environment with its age and whether
//! it is up to date, promotable or blocked (and why), the holds and freezes that stop
//! promotions, the open promotion merge requests, and the lead time between environments
//! (medians over 30 and 90 days, the slowest recent promotions). [`build`] turns the snapshot,
//! the plan and the tag history into [`DashboardData`]; [`render`] turns that into one
//! self-contained HTML page (one inline filter script, no external assets); [`markdown`] into
//! the GitLab Markdown of the dashboard issue. Both put what is stuck first. Pure: no I/O, no clock (`now` is an argument); serving the
//! page and writing the issue are the edges' job ([`crate::metrics::dashboard_route`],
//! `promoter dashboard`, [`crate::reconcile::dashboard_issue`]).

mod chart;
mod kept;
pub mod lead;
pub mod markdown;
mod page;
mod render;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use kept::Kept;
pub use page::Page;
pub use render::render;

use crate::model::{EnvName, ServiceName};
use crate::plan::{Decision, Plan, Verdict};
use crate::policy::gate::human;
use crate::repo::{Snapshot, TagHistory};

/// Everything the dashboard page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardData {
    /// The instant the page describes.
    pub generated_at: DateTime<Utc>,
    /// The environments in promotion order (the first one takes its tags from CI).
    pub environments: Vec<String>,
    /// One row per service, sorted by folder, then name. Each shared: a daemon cycle hands on
    /// the rows it did not change (see [`Kept`]).
    pub rows: Vec<Arc<ServiceRow>>,
    /// Open promotion merge requests.
    pub open_mrs: Vec<MrLink>,
    /// Lead time between environments: medians and the slowest recent promotions.
    pub lead: lead::LeadView,
    /// Holds, freezes in force and release trains: what people set to steer promotions.
    pub controls: Vec<Control>,
}

#[cfg(test)]
impl DashboardData {
    /// A dashboard of one environment (`dev`) and nothing else, generated at `at`.
    pub(crate) fn empty(at: &str) -> Self {
        Self {
            generated_at: at.parse().expect("a valid instant"),
            environments: vec!["dev".into()],
            rows: Vec::new(),
            open_mrs: Vec::new(),
            lead: lead::LeadView {
                pairs: Vec::new(),
                slowest: Vec::new(),
                history_known: false,
            },
            controls: Vec::new(),
        }
    }
}

/// One hold, freeze or train, as a line on the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Control {
    /// `hold`, `freeze` or `train`.
    pub kind: &'static str,
    /// The environment it applies to (`all` for every one).
    pub env: String,
    /// What it says, with who and why.
    pub text: String,
}

/// The holds, the freezes holding at `now` and the trains, from the policies.
pub fn controls(snapshot: &Snapshot, now: DateTime<Utc>) -> Vec<Control> {
    let mut out: Vec<Control> = snapshot
        .policies
        .holds()
        .map(|h| Control {
            kind: "hold",
            env: h.env.to_string(),
            text: format!(
                "{} ({}); `promoter unhold {} --env {}` lifts it",
                h.describe(),
                h.file,
                h.service,
                h.env
            ),
        })
        .collect();
    for env in snapshot
        .environments
        .iter()
        .filter(|e| e.promotes_from.is_some())
    {
        let policy = snapshot.policies.for_env(&env.name);
        for freeze in policy
            .freezes
            .iter()
            .filter(|f| f.holds_at(now, env.timezone))
        {
            out.push(Control {
                kind: "freeze",
                env: env.name.to_string(),
                text: format!("{} ({})", freeze.describe(env.timezone), freeze.file),
            });
        }
        if policy.train {
            out.push(Control {
                kind: "train",
                env: env.name.to_string(),
                text: format!(
                    "release train: every due service in one MR (`promoter/{}/train`) at the schedule",
                    env.name
                ),
            });
        }
    }
    out
}

/// One service across the environments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceRow {
    /// The service.
    pub service: String,
    /// The folder between `clusters/<env>/` and the service's own folder (`calculator` for
    /// `clusters/qa/calculator/maths-api`; empty at the top level): the team or group it
    /// belongs to, as the repository's layout says.
    pub folder: String,
    /// One cell per environment, in [`DashboardData::environments`] order.
    pub cells: Vec<Cell>,
}

/// One service in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cell {
    /// The environment.
    pub env: String,
    /// The tag deployed; `None` when the service is absent or has no readable tag.
    pub tag: Option<String>,
    /// When the tag landed, if the history knows. Its age is taken at the dashboard's
    /// `generated_at` ([`Cell::age_secs`], [`Cell::age`]).
    pub landed: Option<DateTime<Utc>>,
    /// What the plan says about promoting into this environment.
    pub state: CellState,
    /// The tag that would be promoted here, when it differs from `tag`.
    pub candidate: Option<String>,
    /// The names of the gates that fail (blocked cells only).
    pub failing_gates: Vec<String>,
    /// Why, in sentences: the failing gates for a blocked cell, else the plan's reasons.
    pub reasons: Vec<String>,
}

/// A cell's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CellState {
    /// The first environment: its tags come from CI, there is no decision into it.
    Source,
    /// It runs what its upstream runs.
    UpToDate,
    /// The upstream tag can be promoted now.
    Promotable,
    /// A promotion is due but a gate (or a problem) stops it.
    Blocked,
    /// The service is not deployed in this environment.
    Absent,
}

impl CellState {
    /// The identifier in JSON, CSS classes and `data-state` attributes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::UpToDate => "up_to_date",
            Self::Promotable => "promotable",
            Self::Blocked => "blocked",
            Self::Absent => "absent",
        }
    }

    /// The word people read in the cell (the text alternative to its colour).
    pub fn word(self) -> &'static str {
        match self {
            Self::Source => "from CI",
            Self::UpToDate => "up to date",
            Self::Promotable => "promotable",
            Self::Blocked => "blocked",
            Self::Absent => "not deployed",
        }
    }
}

/// An open promotion merge request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MrLink {
    /// Its title.
    pub title: String,
    /// Its web address.
    pub url: String,
    /// The target environment.
    pub env: String,
    /// The service.
    pub service: String,
}

/// The dashboard for `snapshot` as `plan` decided it at `now`.
pub fn build(
    snapshot: &Snapshot,
    plan: &Plan,
    history: &TagHistory,
    open_mrs: &[MrLink],
    now: DateTime<Utc>,
) -> DashboardData {
    let lead = lead::view(snapshot, history, now);
    assemble(snapshot, rows(snapshot, plan, history), lead, open_mrs, now)
}

/// The dashboard from its rows and lead-time view already built.
fn assemble(
    snapshot: &Snapshot,
    rows: Vec<Arc<ServiceRow>>,
    lead: lead::LeadView,
    open_mrs: &[MrLink],
    now: DateTime<Utc>,
) -> DashboardData {
    DashboardData {
        generated_at: now,
        environments: snapshot
            .environments
            .iter()
            .map(|e| e.name.to_string())
            .collect(),
        rows,
        open_mrs: open_mrs.to_vec(),
        lead,
        controls: controls(snapshot, now),
    }
}

/// One row per service, sorted by folder, then name.
fn rows(snapshot: &Snapshot, plan: &Plan, history: &TagHistory) -> Vec<Arc<ServiceRow>> {
    let decisions: HashMap<(&ServiceName, &EnvName), &Decision> = plan
        .promotions
        .iter()
        .map(|d| ((&d.service, &d.to), d))
        .collect();
    let mut rows: Vec<ServiceRow> = snapshot
        .service_names()
        .into_iter()
        .map(|service| ServiceRow {
            service: service.to_string(),
            folder: folder(snapshot, service),
            cells: snapshot
                .environments
                .iter()
                .map(|env| {
                    cell(
                        snapshot,
                        decisions.get(&(service, &env.name)).copied(),
                        history,
                        service,
                        &env.name,
                        env.promotes_from.is_none(),
                    )
                })
                .collect(),
        })
        .collect();
    rows.sort_by(|a, b| (&a.folder, &a.service).cmp(&(&b.folder, &b.service)));
    rows.into_iter().map(Arc::new).collect()
}

fn cell(
    snapshot: &Snapshot,
    decision: Option<&Decision>,
    history: &TagHistory,
    service: &ServiceName,
    env: &EnvName,
    first: bool,
) -> Cell {
    let mut cell = Cell {
        env: env.to_string(),
        tag: None,
        landed: None,
        state: CellState::Absent,
        candidate: None,
        failing_gates: Vec::new(),
        reasons: Vec::new(),
    };
    let Some(deployed) = snapshot.service(env, service) else {
        return cell;
    };
    cell.tag = deployed.image.tag.as_ref().map(|t| t.to_string());
    if let Some(tag) = &deployed.image.tag {
        cell.landed = history
            .landing(&deployed.values_file(), tag)
            .map(|landing| landing.time);
    }
    if first {
        cell.state = CellState::Source;
        return cell;
    }
    let Some(decision) = decision else {
        // Deployed, but the plan has no row (a plan for one environment only).
        cell.state = CellState::UpToDate;
        return cell;
    };
    cell.state = match decision.decision {
        Verdict::UpToDate => CellState::UpToDate,
        Verdict::Promote => CellState::Promotable,
        Verdict::Blocked => CellState::Blocked,
    };
    cell.candidate = decision
        .candidate
        .as_ref()
        .filter(|c| decision.current.as_ref() != Some(*c))
        .map(|c| c.to_string());
    cell.reasons = decision.reasons.clone();
    if cell.state == CellState::Blocked {
        let mut seen = BTreeSet::new();
        cell.failing_gates = decision
            .gates
            .iter()
            .filter(|g| !g.passed && seen.insert(g.gate.name()))
            .map(|g| g.gate.name().to_string())
            .collect();
    }
    cell
}

impl Cell {
    /// Whole seconds since the tag landed, at `at` (never negative); `None` when the landing
    /// is unknown.
    pub fn age_secs(&self, at: DateTime<Utc>) -> Option<i64> {
        self.landed
            .map(|landed| (at - landed).max(chrono::TimeDelta::zero()).num_seconds())
    }

    /// [`Cell::age_secs`] in words (`3d 4h`).
    pub fn age(&self, at: DateTime<Utc>) -> Option<String> {
        let secs = self.age_secs(at)?;
        Some(human(std::time::Duration::from_secs(secs as u64)))
    }
}

/// The folder between the environment's path and the service's folder, from the first
/// environment the service is deployed in.
fn folder(snapshot: &Snapshot, service: &ServiceName) -> String {
    snapshot
        .environments
        .iter()
        .find_map(|env| {
            let found = snapshot.service(&env.name, service)?;
            let inner = found
                .dir
                .strip_prefix(env.path.trim_end_matches('/'))?
                .trim_start_matches('/');
            let parent = inner
                .strip_suffix(service.as_str())
                .unwrap_or(inner)
                .trim_end_matches('/');
            Some(parent.to_string())
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
