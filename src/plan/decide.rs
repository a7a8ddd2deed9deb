//! One decision: for one service and one environment, choose the candidate (the requested
//! tag, the tag a rollback goes back to, or the upstream's), stop early when there is nothing
//! to gate, then run the gates ([`super::gates`]) and conclude: promote when every gate
//! passed, else blocked with the failing gates as reasons.

use chrono::{DateTime, Utc};

use super::gates::{self, Case, Route};
use super::{Decision, Facts, Request, Verdict};
use crate::image::ImageRef;
use crate::model::Tag;
use crate::policy::gate::Outcome;
use crate::repo::{Service, Snapshot};

/// The decision for `route`, asked for by `request` when someone asked.
pub(super) fn decide(
    snapshot: &Snapshot,
    route: Route<'_>,
    request: Option<&Request>,
    facts: Facts<'_>,
    now: DateTime<Utc>,
) -> Decision {
    let mut decision = undecided(&route, request);
    let Some(upstream) = route.upstream else {
        decision.reasons.push(format!(
            "{} has no {} to promote from",
            route.from, route.target.name
        ));
        return decision;
    };
    let (candidate, digest) = match choose_candidate(&route, upstream, request, facts) {
        Ok(chosen) => chosen,
        Err(reason) => {
            decision.reasons.push(reason);
            return decision;
        }
    };
    decision.candidate = Some(candidate.clone());
    decision.candidate_digest = digest.clone();
    if let Some(reason) = nothing_to_do(&route, upstream, &candidate, digest.as_deref()) {
        decision.decision = match reason {
            Stop::UpToDate(_) => Verdict::UpToDate,
            Stop::ByHand(_) => Verdict::Blocked,
        };
        decision.reasons.push(reason.into_text());
        return decision;
    }
    let case = Case::new(
        snapshot, route, upstream, request, facts, now, candidate, digest,
    );
    decision.break_glass = case.asker.break_glass.is_some();
    conclude(decision, gates::run(&case))
}

/// The decision before anything is decided: blocked, no candidate, the request recorded.
fn undecided(route: &Route<'_>, request: Option<&Request>) -> Decision {
    Decision {
        service: route.target.name.clone(),
        from: route.from.clone(),
        to: route.env.name.clone(),
        current: route.target.image.tag.clone(),
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
        train: request.is_none() && route.policy.train,
    }
}

/// The candidate and the digest that goes with it: the requested tag (a rollback without a
/// tag goes back to the tag the environment ran before), else the upstream's. `Err(reason)`
/// when there is none.
fn choose_candidate(
    route: &Route<'_>,
    upstream: &Service,
    request: Option<&Request>,
    facts: Facts<'_>,
) -> Result<(Tag, Option<String>), String> {
    let requested = request.and_then(|r| r.tag.clone()).or_else(|| {
        request.filter(|r| r.rollback).and_then(|_| {
            facts
                .history
                .previous_tag(&route.target.values_file())
                .cloned()
        })
    });
    match requested {
        Some(tag) => {
            let digest = (upstream.image.tag.as_ref() == Some(&tag))
                .then(|| upstream.image.digest.clone())
                .flatten();
            Ok((tag, digest))
        }
        None => match &upstream.image.tag {
            Some(tag) => Ok((tag.clone(), upstream.image.digest.clone())),
            None => Err(format!(
                "{} has no tag for {} ({})",
                route.from,
                route.target.name,
                upstream.values_file()
            )),
        },
    }
}

/// Why no gate needs asking.
enum Stop {
    /// The environment already runs the candidate.
    UpToDate(String),
    /// The two environments run different image repositories: a person must promote.
    ByHand(String),
}

impl Stop {
    fn into_text(self) -> String {
        match self {
            Self::UpToDate(text) | Self::ByHand(text) => text,
        }
    }
}

fn nothing_to_do(
    route: &Route<'_>,
    upstream: &Service,
    candidate: &Tag,
    digest: Option<&str>,
) -> Option<Stop> {
    let (env, target) = (route.env, route.target);
    if target.image.tag.as_ref() == Some(candidate)
        && digest.is_none_or(|d| target.image.digest.as_deref() == Some(d))
    {
        return Some(Stop::UpToDate(format!(
            "{} already runs {candidate}",
            env.name
        )));
    }
    let repositories = target
        .image
        .repository
        .parse::<ImageRef>()
        .ok()
        .zip(upstream.image.repository.parse::<ImageRef>().ok());
    repositories
        .is_some_and(|(a, b)| !a.same_repository(&b))
        .then(|| {
            Stop::ByHand(format!(
                "{} runs {} but {} runs {}: the repositories differ, promote by hand",
                env.name, target.image.repository, route.from, upstream.image.repository
            ))
        })
}

/// Promote when every gate passed (every gate's message as the reasons), else blocked with
/// the failing ones.
fn conclude(mut decision: Decision, gates: Vec<Outcome>) -> Decision {
    let line = |g: &Outcome| format!("{}: {}", g.gate.name(), g.message);
    let failed: Vec<String> = gates.iter().filter(|g| !g.passed).map(line).collect();
    if failed.is_empty() {
        decision.decision = Verdict::Promote;
        decision.reasons = gates.iter().map(line).collect();
    } else {
        decision.reasons = failed;
    }
    decision.gates = gates;
    decision
}
