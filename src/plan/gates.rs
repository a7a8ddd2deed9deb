//! The gates of one decision, as a table of named steps ([`GATES`]) run in the order the plan
//! evaluates and shows them. Each step reads the [`Case`] (the candidate, the policy in force,
//! who asks, what the history and the edges observed) and returns its verdict, or nothing when
//! it does not apply.

use chrono::{DateTime, Utc};

use super::{Facts, Request, candidate_image};
use crate::model::{EnvName, Tag};
use crate::policy::Effective;
use crate::policy::gate::{self, Asker, Health, ImageFact, Landings, Outcome};
use crate::repo::history::Stint;
use crate::repo::{Environment, Service, Snapshot};

/// Where a promotion goes: the environment, its upstream and the service on both sides.
#[derive(Debug, Clone, Copy)]
pub(super) struct Route<'a> {
    pub env: &'a Environment,
    pub from: &'a EnvName,
    pub target: &'a Service,
    pub upstream: Option<&'a Service>,
    /// The policy in force in `env` (read once per environment, not per service).
    pub policy: &'a Effective,
}

/// Every gate that applies to `case`, in order.
pub(super) fn run(case: &Case<'_>) -> Vec<Outcome> {
    GATES.iter().filter_map(|step| step(case)).collect()
}

/// Everything the gates look at for one candidate.
pub(super) struct Case<'a> {
    snapshot: &'a Snapshot,
    route: Route<'a>,
    request: Option<&'a Request>,
    facts: Facts<'a>,
    now: DateTime<Utc>,
    candidate: Tag,
    digest: Option<String>,
    policy: &'a Effective,
    pub(super) asker: Asker<'a>,
    /// The candidate's stint upstream: its current one, or (a requested older tag) its last.
    stint: Option<&'a Stint>,
    health: Health,
}

impl<'a> Case<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        snapshot: &'a Snapshot,
        route: Route<'a>,
        upstream: &Service,
        request: Option<&'a Request>,
        facts: Facts<'a>,
        now: DateTime<Utc>,
        candidate: Tag,
        digest: Option<String>,
    ) -> Self {
        let policy = route.policy;
        let break_glass = request
            .filter(|r| {
                policy.break_glass.contains(&r.requested_by)
                    && r.reason.as_deref().is_some_and(|s| !s.trim().is_empty())
            })
            .map(|r| r.requested_by.as_str());
        let asker = Asker {
            explicit: request.map(|r| r.requested_by.as_str()),
            break_glass,
            rollback: request.is_some_and(|r| r.rollback),
        };
        let stint = facts
            .history
            .stints(&upstream.values_file())
            .iter()
            .rev()
            .find(|s| s.tag.as_ref() == Some(&candidate));
        let key = (route.env.name.clone(), route.target.name.clone());
        let health = match facts.health {
            None => Health::NotChecked,
            Some(known) => known
                .get(&key)
                .cloned()
                .unwrap_or(Health::NotReported { commits: 0 }),
        };
        Self {
            snapshot,
            route,
            request,
            facts,
            now,
            candidate,
            digest,
            policy,
            asker,
            stint,
            health,
        }
    }

    fn current(&self) -> Option<&Tag> {
        self.route.target.image.tag.as_ref()
    }

    fn env(&self) -> &'a Environment {
        self.route.env
    }
}

/// One gate: `None` when it does not apply.
type Step = fn(&Case<'_>) -> Option<Outcome>;

/// The gates, in the order the plan evaluates and shows them.
const GATES: [Step; 11] = [
    policies_valid,
    order,
    requested_tag_ran_upstream,
    hold,
    semver,
    soak,
    freeze,
    window,
    health,
    image,
    open_limit,
];

fn policies_valid(case: &Case<'_>) -> Option<Outcome> {
    gate::policies_valid(&case.snapshot.policies.broken)
}

fn order(case: &Case<'_>) -> Option<Outcome> {
    let landings = Landings {
        candidate: case.stint.map(|s| s.since.time),
        current: case
            .current()
            .and_then(|t| {
                case.facts
                    .history
                    .landing(&case.route.target.values_file(), t)
            })
            .map(|c| c.time),
    };
    Some(gate::order(
        case.current(),
        &case.candidate,
        case.route.from,
        &case.env().name,
        landings,
        case.asker,
    ))
}

/// A requested tag must have run upstream (a rollback may go back to a tag that ran here).
fn requested_tag_ran_upstream(case: &Case<'_>) -> Option<Outcome> {
    let history = case.facts.history;
    let named_a_tag = case.request.is_some_and(|r| r.tag.is_some());
    (named_a_tag && case.stint.is_none() && history.is_known()).then(|| Outcome {
        gate: gate::Gate::Order,
        passed: case.asker.rollback
            && history
                .first_landing(&case.route.target.values_file(), &case.candidate)
                .is_some(),
        message: format!("{} never ran in {}", case.candidate, case.route.from),
    })
}

fn hold(case: &Case<'_>) -> Option<Outcome> {
    let (snapshot, target) = (case.snapshot, case.route.target);
    crate::policy::hold::gate(
        snapshot.policies.holds(),
        &target.name,
        &case.env().name,
        &snapshot.upstream_of(&case.env().name),
        &case.candidate,
        case.asker.rollback,
        |held_in: &EnvName, tag: &Tag| {
            let file = snapshot.service(held_in, &target.name)?.values_file();
            Some(case.facts.history.first_landing(&file, tag)?.time)
        },
    )
}

fn semver(case: &Case<'_>) -> Option<Outcome> {
    gate::semver_limit(
        case.policy.max_bump,
        case.current(),
        &case.candidate,
        case.asker,
    )
}

/// Soak, unless a rollback (going back needs no soak).
fn soak(case: &Case<'_>) -> Option<Outcome> {
    if case.asker.rollback {
        return None;
    }
    let ran = case
        .stint
        .map(|s| (s.since.time, s.until.as_ref().map(|c| c.time)));
    soak_gate(
        case.policy.soak.as_ref(),
        case.policy.require_health,
        case.route.from,
        &case.candidate,
        ran,
        &case.health,
        case.now,
        case.asker,
    )
}

fn freeze(case: &Case<'_>) -> Option<Outcome> {
    gate::freeze(
        &case.policy.freezes,
        case.now,
        case.env().timezone,
        case.asker,
    )
}

fn window(case: &Case<'_>) -> Option<Outcome> {
    gate::window(
        &case.policy.windows,
        case.now,
        case.env().timezone,
        case.asker,
    )
}

fn health(case: &Case<'_>) -> Option<Outcome> {
    let upstream_statuses = case
        .snapshot
        .environment(case.route.from)
        .map(|e| e.health.statuses.as_slice())
        .unwrap_or_default();
    gate::health(
        case.policy.require_health,
        case.route.from,
        upstream_statuses,
        &case.health,
    )
}

fn image(case: &Case<'_>) -> Option<Outcome> {
    let reference = candidate_image(case.route.target, &case.candidate, case.digest.as_deref());
    let fact = match case.facts.images {
        None => ImageFact::NotChecked,
        Some(known) => known
            .get(&reference)
            .cloned()
            .unwrap_or(ImageFact::Unknown {
                reason: "not asked".into(),
            }),
    };
    gate::image(case.policy.require_image, &reference, &fact)
}

/// The open-MR limit, unless this promotion's MR is already open.
fn open_limit(case: &Case<'_>) -> Option<Outcome> {
    let open = case.facts.open.get(&case.env().name);
    let target = &case.route.target.name;
    if open.is_some_and(|s| s.contains(target)) {
        return None;
    }
    let open_others = open.map_or(0, |s| s.iter().filter(|n| *n != target).count());
    gate::open_limit(
        case.policy.max_open_promotions,
        open_others,
        &case.env().name,
    )
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
