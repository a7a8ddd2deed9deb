//! The dashboard's lead-time view: the median time a tag takes from one environment to the
//! next (over the last 30 and 90 days, from [`crate::history::lead_times`]) and the slowest
//! promotions of the last 30 days. Answers "how long does a change take to reach prod, and
//! what took longest lately" at any number of services. Pure: `now` is an argument.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::history::{self, PairStats, Span};
use crate::repo::{Snapshot, TagHistory};

/// How many of the slowest recent promotions the view lists.
pub const SLOWEST: usize = 10;

/// The window the slowest promotions are taken from, in days before `now`.
pub const RECENT_DAYS: i64 = 30;

/// What the lead-time view shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeadView {
    /// Adjacent pairs in chain order, then first to last, with their medians.
    pub pairs: Vec<PairStats>,
    /// The slowest promotions between adjacent environments that landed within the last
    /// [`RECENT_DAYS`] days, slowest first (at most [`SLOWEST`]).
    pub slowest: Vec<SlowPromotion>,
    /// False outside git: no landing times are known.
    pub history_known: bool,
}

impl Eq for LeadView {}

/// One promotion between adjacent environments and how long it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlowPromotion {
    /// The service.
    pub service: String,
    /// The tag promoted.
    pub tag: String,
    /// The environment it came from.
    pub from: String,
    /// The environment it landed in.
    pub to: String,
    /// From its first landing in `from` to its first landing in `to`.
    pub lead: Span,
    /// When it landed in `to`.
    pub landed: DateTime<Utc>,
    /// The merge request that landed it, when the commit message names one.
    pub mr: Option<u64>,
}

/// The lead-time view of `snapshot`'s services as of `now`.
pub fn view(snapshot: &Snapshot, history: &TagHistory, now: DateTime<Utc>) -> LeadView {
    let deployments = history::deployments(snapshot, history, now);
    let stats = history::lead_times(&deployments, &snapshot.environments, now);
    view_of(snapshot, &deployments, &stats, history.is_known(), now)
}

/// [`view`], from the `deployments` of `snapshot` as of `now` and their lead times
/// ([`history::lead_times`]) already computed.
pub fn view_of(
    snapshot: &Snapshot,
    deployments: &[history::Deployment],
    stats: &history::LeadTimes,
    history_known: bool,
    now: DateTime<Utc>,
) -> LeadView {
    LeadView {
        pairs: stats.pairs.clone(),
        slowest: slowest(snapshot, deployments, now),
        history_known,
    }
}

/// The slowest adjacent promotions landed within [`RECENT_DAYS`] of `now`: each tag counted
/// once per service and environment (its first landing), one commit setting both environments
/// (an import) is no promotion, as in [`history::lead_times`].
fn slowest(
    snapshot: &Snapshot,
    deployments: &[history::Deployment],
    now: DateTime<Utc>,
) -> Vec<SlowPromotion> {
    let mut first: HashMap<(&str, &str, &str), &history::Deployment> = HashMap::new();
    for d in deployments {
        first
            .entry((d.service.as_str(), d.env.as_str(), d.tag.as_str()))
            .or_insert(d);
    }
    let mut out: Vec<SlowPromotion> = Vec::new();
    for env in &snapshot.environments {
        let Some(from) = &env.promotes_from else {
            continue;
        };
        for ((service, to, tag), landed) in &first {
            if *to != env.name.as_str() {
                continue;
            }
            let Some(earlier) = first.get(&(*service, from.as_str(), *tag)) else {
                continue;
            };
            let (start, end) = (&earlier.landed, &landed.landed);
            let recent = end.time <= now && now - end.time <= TimeDelta::days(RECENT_DAYS);
            if !recent || start.sha == end.sha {
                continue;
            }
            out.push(SlowPromotion {
                service: service.to_string(),
                tag: tag.to_string(),
                from: from.to_string(),
                to: to.to_string(),
                lead: Span(end.time - start.time),
                landed: end.time,
                mr: landed.mr,
            });
        }
    }
    out.sort_by(|a, b| {
        b.lead
            .cmp(&a.lead)
            .then_with(|| (&a.service, &a.to, &a.tag).cmp(&(&b.service, &b.to, &b.tag)))
    });
    out.truncate(SLOWEST);
    out
}
