//! The plan: for every service and every environment that promotes from another, whether the
//! upstream tag should move down, as a [`Decision`] with its reasons. A pure function of the
//! snapshot, facts gathered by the edges, explicit requests and the instant.

pub mod render;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::{EnvName, ServiceName, Tag};
use crate::policy::gate::{self, Asker, Landings, Outcome};
pub use crate::policy::gate::{Health, ImageFact};
use crate::repo::{Environment, Service, Snapshot, TagHistory};

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
    let mut promotions = Vec::new();
    for env in &snapshot.environments {
        let Some(from) = &env.promotes_from else {
            continue;
        };
        let targets = snapshot.services.get(&env.name);
        for (name, target) in targets.into_iter().flatten() {
            let request = requests
                .iter()
                .find(|r| r.service == *name && r.to == env.name);
            let upstream = snapshot.service(from, name);
            promotions.push(decide(
                snapshot, env, from, target, upstream, request, facts, now,
            ));
        }
    }
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

#[allow(clippy::too_many_arguments)]
fn decide(
    snapshot: &Snapshot,
    env: &Environment,
    from: &EnvName,
    target: &Service,
    upstream: Option<&Service>,
    request: Option<&Request>,
    facts: Facts<'_>,
    now: DateTime<Utc>,
) -> Decision {
    let current = target.image.tag.clone();
    let mut decision = Decision {
        service: target.name.clone(),
        from: from.clone(),
        to: env.name.clone(),
        current: current.clone(),
        candidate: None,
        candidate_digest: None,
        decision: Verdict::Blocked,
        reasons: Vec::new(),
        gates: Vec::new(),
        requested_by: request.map(|r| r.requested_by.clone()),
        request_reason: request.and_then(|r| r.reason.clone()),
        break_glass: false,
        rollback: request.is_some_and(|r| r.rollback),
        requested_tag: request.and_then(|r| r.tag.clone()),
        requested_at: request.and_then(|r| r.requested_at),
        train: request.is_none() && snapshot.policies.for_env(&env.name).train,
    };
    let Some(upstream) = upstream else {
        decision
            .reasons
            .push(format!("{from} has no {} to promote from", target.name));
        return decision;
    };
    let upstream_file = upstream.values_file();
    // A rollback without a tag goes back to the tag the environment ran before.
    let requested = request.and_then(|r| r.tag.clone()).or_else(|| {
        request
            .filter(|r| r.rollback)
            .and_then(|_| facts.history.previous_tag(&target.values_file()).cloned())
    });
    let (candidate, digest) = match requested {
        Some(tag) => {
            let digest = (upstream.image.tag.as_ref() == Some(&tag))
                .then(|| upstream.image.digest.clone())
                .flatten();
            (tag, digest)
        }
        None => match &upstream.image.tag {
            Some(tag) => (tag.clone(), upstream.image.digest.clone()),
            None => {
                decision.reasons.push(format!(
                    "{from} has no tag for {} ({})",
                    target.name, upstream_file
                ));
                return decision;
            }
        },
    };
    decision.candidate = Some(candidate.clone());
    decision.candidate_digest = digest.clone();
    if current.as_ref() == Some(&candidate)
        && digest
            .as_ref()
            .is_none_or(|d| target.image.digest.as_ref() == Some(d))
    {
        decision.decision = Verdict::UpToDate;
        decision
            .reasons
            .push(format!("{} already runs {candidate}", env.name));
        return decision;
    }
    if target
        .image
        .repository
        .parse::<crate::image::ImageRef>()
        .ok()
        .zip(
            upstream
                .image
                .repository
                .parse::<crate::image::ImageRef>()
                .ok(),
        )
        .is_some_and(|(a, b)| !a.same_repository(&b))
    {
        decision.reasons.push(format!(
            "{} runs {} but {from} runs {}: the repositories differ, promote by hand",
            env.name, target.image.repository, upstream.image.repository
        ));
        return decision;
    }

    let policy = snapshot.policies.for_env(&env.name);
    let requester = request.map(|r| r.requested_by.as_str());
    let asker = Asker {
        explicit: requester,
        break_glass: request
            .filter(|r| {
                policy.break_glass.contains(&r.requested_by)
                    && r.reason.as_deref().is_some_and(|s| !s.trim().is_empty())
            })
            .map(|r| r.requested_by.as_str()),
        rollback: request.is_some_and(|r| r.rollback),
    };
    decision.break_glass = asker.break_glass.is_some();
    // When the candidate ran upstream: its current stint, or (a requested older tag) its last.
    let stint = facts
        .history
        .stints(&upstream_file)
        .iter()
        .rev()
        .find(|s| s.tag.as_ref() == Some(&candidate));
    let ran = stint.map(|s| (s.since.time, s.until.as_ref().map(|c| c.time)));
    let landings = Landings {
        candidate: stint.map(|s| s.since.time),
        current: current
            .as_ref()
            .and_then(|t| facts.history.landing(&target.values_file(), t))
            .map(|c| c.time),
    };
    let open_others = facts
        .open
        .get(&env.name)
        .map_or(0, |s| s.iter().filter(|n| **n != target.name).count());

    let mut gates: Vec<Outcome> = gate::policies_valid(&snapshot.policies.broken)
        .into_iter()
        .collect();
    gates.push(gate::order(
        current.as_ref(),
        &candidate,
        from,
        &env.name,
        landings,
        asker,
    ));
    if request.is_some_and(|r| r.tag.is_some()) && stint.is_none() && facts.history.is_known() {
        gates.push(Outcome {
            gate: gate::Gate::Order,
            passed: asker.rollback
                && facts
                    .history
                    .first_landing(&target.values_file(), &candidate)
                    .is_some(),
            message: format!("{candidate} never ran in {from}"),
        });
    }
    let upstream_envs = snapshot.upstream_of(&env.name);
    gates.extend(crate::policy::hold::gate(
        snapshot.policies.holds(),
        &target.name,
        &env.name,
        &upstream_envs,
        &candidate,
        asker.rollback,
        facts.history,
        |held_in| {
            snapshot
                .service(held_in, &target.name)
                .map(Service::values_file)
                .unwrap_or_default()
        },
    ));
    gates.extend(gate::semver_limit(
        policy.max_bump,
        current.as_ref(),
        &candidate,
        asker,
    ));
    let key = (env.name.clone(), target.name.clone());
    let health = match facts.health {
        None => Health::NotChecked,
        Some(known) => known
            .get(&key)
            .cloned()
            .unwrap_or(Health::NotReported { commits: 0 }),
    };
    if !asker.rollback {
        gates.extend(soak_gate(
            policy.soak.as_ref(),
            policy.require_health,
            from,
            &candidate,
            ran,
            &health,
            now,
            asker,
        ));
    }
    gates.extend(gate::freeze(&policy.freezes, now, env.timezone, asker));
    gates.extend(gate::window(&policy.windows, now, env.timezone, asker));
    let upstream_statuses = snapshot
        .environment(from)
        .map(|e| e.health.statuses.as_slice())
        .unwrap_or_default();
    gates.extend(gate::health(
        policy.require_health,
        from,
        upstream_statuses,
        &health,
    ));
    let reference = candidate_image(target, &candidate, digest.as_deref());
    let image = match facts.images {
        None => ImageFact::NotChecked,
        Some(known) => known
            .get(&reference)
            .cloned()
            .unwrap_or(ImageFact::Unknown {
                reason: "not asked".into(),
            }),
    };
    gates.extend(gate::image(policy.require_image, &reference, &image));
    let already_open = facts
        .open
        .get(&env.name)
        .is_some_and(|s| s.contains(&target.name));
    if !already_open {
        gates.extend(gate::open_limit(
            policy.max_open_promotions,
            open_others,
            &env.name,
        ));
    }

    let failed: Vec<String> = gates
        .iter()
        .filter(|g| !g.passed)
        .map(|g| format!("{}: {}", g.gate.name(), g.message))
        .collect();
    if failed.is_empty() {
        decision.decision = Verdict::Promote;
        decision.reasons = gates
            .iter()
            .map(|g| format!("{}: {}", g.gate.name(), g.message))
            .collect();
    } else {
        decision.reasons = failed;
    }
    decision.gates = gates;
    decision
}

/// The soak gate with its clock: with the health gate configured, soak counts from the first
/// success Flux reported for the candidate upstream (never from the merge or the image push),
/// and a candidate Flux never reported healthy is not soaking; otherwise from the merge. With
/// health configured the message names the clock.
#[allow(clippy::too_many_arguments)]
fn soak_gate(
    required: Option<&(std::time::Duration, String)>,
    require_health: bool,
    from: &EnvName,
    candidate: &Tag,
    merged: Option<(DateTime<Utc>, Option<DateTime<Utc>>)>,
    health: &Health,
    now: DateTime<Utc>,
    asker: gate::Asker<'_>,
) -> Option<Outcome> {
    let (duration, file) = required?;
    let clock = |mut o: Outcome, clock: &str| {
        o.message = format!("{} [clock: {clock}]", o.message);
        o
    };
    if !require_health {
        return gate::soak(required, from, merged, now, asker);
    }
    match health {
        Health::NotChecked => gate::soak(required, from, merged, now, asker)
            .map(|o| clock(o, "the merge; reconcile counts from Flux's first success")),
        Health::Healthy { since: None, .. } => gate::soak(required, from, merged, now, asker)
            .map(|o| clock(o, "the merge: Flux's report carries no time")),
        Health::Healthy {
            since: Some(since),
            sha,
            ..
        } => {
            let ran = Some((*since, merged.and_then(|(_, until)| until)));
            let short: String = sha.chars().take(8).collect();
            gate::soak(required, from, ran, now, asker).map(|o| {
                clock(
                    o,
                    &format!("Flux's first success in {from} ({short} is healthy now)"),
                )
            })
        }
        _ => Some(match asker.break_glass {
            Some(who) => Outcome {
                gate: gate::Gate::Soak,
                passed: true,
                message: format!(
                    "not soaking: Flux never reported {from} healthy with {candidate}; waived by break-glass {who}"
                ),
            },
            None => Outcome {
                gate: gate::Gate::Soak,
                passed: false,
                message: format!(
                    "not soaking: Flux has not reported {from} healthy with {candidate}, and {} ({file}) counts from its first success [clock: Flux's first success]",
                    gate::human(*duration)
                ),
            },
        }),
    }
}

#[cfg(test)]
mod tests;
