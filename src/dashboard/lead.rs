//! The dashboard's lead-time view: the median time a tag takes from one environment to the
//! next (over the last 30 and 90 days, from [`crate::history::lead_times`]) and the slowest
//! promotions of the last 30 days. Answers "how long does a change take to reach prod, and
//! what took longest lately" at any number of services. Pure: `now` is an argument.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::history::{self, PairStats, Span};
use crate::model::EnvName;
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
    let samples = history::LeadSamples::of(&deployments, &snapshot.environments);
    let stats = history::lead_times_of(&samples, &snapshot.environments, now);
    view_of(
        snapshot,
        (&deployments, &samples),
        &stats,
        history.is_known(),
        now,
    )
}

/// [`view`], from the `deployments` of `snapshot` as of `now`, their lead-time samples and
/// their lead times ([`history::lead_times_of`]) already computed.
pub fn view_of(
    snapshot: &Snapshot,
    known: (&[history::Deployment], &history::LeadSamples),
    stats: &history::LeadTimes,
    history_known: bool,
    now: DateTime<Utc>,
) -> LeadView {
    LeadView {
        pairs: stats.pairs.clone(),
        slowest: slowest(snapshot, known, now),
        history_known,
    }
}

/// The slowest adjacent promotions landed within [`RECENT_DAYS`] of `now`: each tag counted
/// once per service and environment (its first landing), one commit setting both environments
/// (an import) is no promotion, as in [`history::lead_times`].
fn slowest(
    snapshot: &Snapshot,
    (deployments, samples): (&[history::Deployment], &history::LeadSamples),
    now: DateTime<Utc>,
) -> Vec<SlowPromotion> {
    let adjacent = |(from, to): &(EnvName, EnvName)| {
        snapshot
            .environment(to)
            .is_some_and(|e| e.promotes_from.as_ref() == Some(from))
    };
    let mut recent: Vec<(TimeDelta, &history::Deployment, &history::Deployment)> = Vec::new();
    for (pair, _) in samples
        .pairs
        .iter()
        .enumerate()
        .filter(|(_, p)| adjacent(p))
    {
        for sample in samples.of_pair(pair) {
            let end = sample.landed_at;
            if end <= now && now - end <= TimeDelta::days(RECENT_DAYS) {
                recent.push((
                    end - sample.earlier_at,
                    &deployments[sample.earlier],
                    &deployments[sample.landed],
                ));
            }
        }
    }
    let order = |a: &(TimeDelta, &history::Deployment, &history::Deployment),
                 b: &(TimeDelta, &history::Deployment, &history::Deployment)| {
        b.0.cmp(&a.0).then_with(|| {
            (&a.2.service, &a.2.env, &a.2.tag).cmp(&(&b.2.service, &b.2.env, &b.2.tag))
        })
    };
    if recent.len() > SLOWEST {
        recent.select_nth_unstable_by(SLOWEST - 1, order);
        recent.truncate(SLOWEST);
    }
    recent.sort_by(order);
    recent
        .into_iter()
        .map(|(lead, earlier, landed)| SlowPromotion {
            service: landed.service.to_string(),
            tag: landed.tag.to_string(),
            from: earlier.env.to_string(),
            to: landed.env.to_string(),
            lead: Span(lead),
            landed: landed.landed.time,
            mr: landed.mr,
        })
        .collect()
}
