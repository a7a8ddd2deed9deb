//! The plan: for every service and every environment that promotes from another, whether the
//! upstream tag should move down, as a [`Decision`] with its reasons. A pure function of the
//! snapshot, facts gathered by the edges, explicit requests and the instant.

mod decide;
mod gates;
pub mod render;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::{EnvName, ServiceName, Tag};
use crate::policy::gate::Outcome;
pub use crate::policy::gate::{Health, ImageFact};
use crate::repo::{Service, Snapshot, TagHistory};

/// A person asking for a promotion (CLI, chat-ops).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The service.
    pub service: ServiceName,
    /// Into which environment.
    pub to: EnvName,
    /// A specific tag instead of the upstream environment's.
    pub tag: Option<Tag>,
    /// Who asks.
    pub requested_by: String,
    /// Why (required for break-glass).
    pub reason: Option<String>,
    /// A rollback: an older tag is allowed.
    pub rollback: bool,
    /// When it was first asked (a rollback's hold is dated by it); `None`: now.
    pub requested_at: Option<DateTime<Utc>>,
}

/// What the edges observed, as data.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// When each tag landed where.
    pub history: &'a TagHistory,
    /// Services with an open promotion MR, per target environment.
    pub open: &'a BTreeMap<EnvName, BTreeSet<ServiceName>>,
    /// Flux's reports on the upstream environment, per (target env, service); `None` when
    /// not gathered (an offline plan).
    pub health: Option<&'a BTreeMap<(EnvName, ServiceName), Health>>,
    /// Whether candidate images exist, by [`candidate_image`]; `None` when not gathered.
    pub images: Option<&'a BTreeMap<String, ImageFact>>,
}

impl<'a> Facts<'a> {
    /// Facts from a checkout alone: history and open MRs, no registry or Flux reports.
    pub fn offline(
        history: &'a TagHistory,
        open: &'a BTreeMap<EnvName, BTreeSet<ServiceName>>,
    ) -> Self {
        Self {
            history,
            open,
            health: None,
            images: None,
        }
    }
}

/// The image a promotion would make `target` run: its repository with the candidate tag (and
/// the digest the upstream pins).
pub fn candidate_image(target: &Service, tag: &Tag, digest: Option<&str>) -> String {
    match digest {
        Some(digest) => format!("{}:{tag}@{digest}", target.image.repository),
        None => format!("{}:{tag}", target.image.repository),
    }
}

/// The outcome for one service and one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Open or update the promotion.
    Promote,
    /// Due, but a gate stops it.
    Blocked,
    /// Nothing to promote.
    UpToDate,
}

impl Verdict {
    /// The word in tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Promote => "promote",
            Self::Blocked => "blocked",
            Self::UpToDate => "up_to_date",
        }
    }
}

/// One row of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The service.
    pub service: ServiceName,
    /// The upstream environment.
    pub from: EnvName,
    /// The target environment.
    pub to: EnvName,
    /// The target's tag now.
    pub current: Option<Tag>,
    /// The tag that would be promoted.
    pub candidate: Option<Tag>,
    /// The digest the upstream pins beside the candidate, carried along.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate_digest: Option<String>,
    /// The verdict.
    pub decision: Verdict,
    /// Why, in sentences: the failing gates when blocked, else a summary.
    pub reasons: Vec<String>,
    /// Every gate evaluated.
    pub gates: Vec<Outcome>,
    /// Who asked, for an explicit request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// Why they asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_reason: Option<String>,
    /// A break-glass request waived soak or freezes.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
    /// A rollback was asked for.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rollback: bool,
    /// The tag the request named, when it named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_tag: Option<Tag>,
    /// When the request was first made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<DateTime<Utc>>,
    /// Rides its environment's release train (`group: train`) instead of an MR of its own.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub train: bool,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The instant the plan was evaluated at.
    pub generated_at: DateTime<Utc>,
    /// One decision per service and environment with an upstream.
    pub promotions: Vec<Decision>,
}

impl Plan {
    /// The decision for one service into one environment.
    pub fn decision(&self, service: &ServiceName, to: &EnvName) -> Option<&Decision> {
        self.promotions
            .iter()
            .find(|d| d.service == *service && d.to == *to)
    }
}

/// Plans every promotion. Requests replace the default candidate of their (service, env).
pub fn plan(
    snapshot: &Snapshot,
    facts: Facts<'_>,
    requests: &[Request],
    now: DateTime<Utc>,
) -> Plan {
    let promotions = decide_into(snapshot, facts, requests, now, |_| true);
    sorted(snapshot, promotions, now)
}

/// `preliminary` (planned with the same requests at the same `now`, before Flux's reports
/// and the registry were asked) with the promotions into environments whose policy reads
/// those (`require_health`, `require_image`) planned again on `facts`. The other promotions
/// read neither, so they stand as planned: the same as [`plan`] on `facts`, without deciding
/// every promotion twice.
pub fn replan(
    preliminary: Plan,
    snapshot: &Snapshot,
    facts: Facts<'_>,
    requests: &[Request],
    now: DateTime<Utc>,
) -> Plan {
    let reads_facts = |env: &EnvName| {
        let policy = snapshot.policies.for_env(env);
        policy.require_health || policy.require_image
    };
    let again: BTreeSet<&EnvName> = snapshot
        .environments
        .iter()
        .map(|e| &e.name)
        .filter(|name| reads_facts(name))
        .collect();
    if again.is_empty() {
        return preliminary;
    }
    let mut promotions = preliminary.promotions;
    promotions.retain(|d| !again.contains(&d.to));
    promotions.extend(decide_into(snapshot, facts, requests, now, |env| {
        again.contains(env)
    }));
    sorted(snapshot, promotions, now)
}

/// The decisions of every promotion into the environments `into` accepts.
fn decide_into(
    snapshot: &Snapshot,
    facts: Facts<'_>,
    requests: &[Request],
    now: DateTime<Utc>,
    into: impl Fn(&EnvName) -> bool,
) -> Vec<Decision> {
    let mut promotions = Vec::new();
    for env in snapshot.environments.iter().filter(|e| into(&e.name)) {
        let Some(from) = &env.promotes_from else {
            continue;
        };
        let policy = snapshot.policies.for_env(&env.name);
        let targets = snapshot.services.get(&env.name);
        for (name, target) in targets.into_iter().flatten() {
            let request = requests
                .iter()
                .find(|r| r.service == *name && r.to == env.name);
            let route = gates::Route {
                env,
                from,
                target,
                upstream: snapshot.service(from, name),
                policy: &policy,
            };
            promotions.push(decide::decide(snapshot, route, request, facts, now));
        }
    }
    promotions
}

/// The plan of `promotions`, by service, then environment in chain order.
fn sorted(snapshot: &Snapshot, mut promotions: Vec<Decision>, now: DateTime<Utc>) -> Plan {
    promotions.sort_by(|a, b| {
        a.service
            .cmp(&b.service)
            .then_with(|| env_rank(snapshot, &a.to).cmp(&env_rank(snapshot, &b.to)))
    });
    Plan {
        generated_at: now,
        promotions,
    }
}

fn env_rank(snapshot: &Snapshot, env: &EnvName) -> usize {
    snapshot
        .environments
        .iter()
        .position(|e| e.name == *env)
        .unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests;
