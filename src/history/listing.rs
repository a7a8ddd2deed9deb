//! The deployments and lead-time samples the daemon keeps between cycles, and how it brings
//! them to the next cycle without listing everything again: on the same snapshot only how long
//! the current deployments have run changes ([`super::advance`]); on a new head only the
//! services that head changed ([`crate::repo::changed`]) are listed again, every other
//! service's deployments are moved over as they were. Either way the result equals a list
//! made whole ([`super::deployments`], [`LeadSamples::of`]): `tests/it/incremental.rs` follows
//! random and scripted histories both ways and compares them.

use std::sync::{Arc, Weak};

use chrono::{DateTime, Utc};

use super::{Deployment, LeadSamples, Span};
use crate::model::ServiceName;
use crate::repo::changed::ChangedSince;
use crate::repo::{Snapshot, TagHistory};

/// The deployments of one snapshot and history as of `then`, with their lead-time samples.
#[derive(Debug, Clone)]
pub struct Listing {
    /// The snapshot listed (identity only; the weak pointer keeps the address its own).
    snapshot: Weak<Snapshot>,
    /// The instant the deployments run until.
    then: DateTime<Utc>,
    /// The latest commit time of the history listed: a deployment dated after `then` was
    /// left out, and a list that left one out cannot be brought forward.
    latest: Option<DateTime<Utc>>,
    /// The deployments, as [`super::deployments`] lists them.
    pub deployments: Arc<Vec<Deployment>>,
    /// Their samples.
    pub samples: Arc<LeadSamples>,
}

impl Listing {
    /// Lists the deployments of `snapshot` and `history` as of `now`, whole.
    pub fn new(snapshot: &Arc<Snapshot>, history: &TagHistory, now: DateTime<Utc>) -> Self {
        let deployments = super::deployments(snapshot, history, now);
        let samples = LeadSamples::of(&deployments, &snapshot.environments);
        Self {
            snapshot: Arc::downgrade(snapshot),
            then: now,
            latest: history.latest(),
            deployments: Arc::new(deployments),
            samples: Arc::new(samples),
        }
    }

    /// Brings the list to `snapshot` and `history` at `now` when it can: the same snapshot
    /// (only durations change), or the next one with `changed` saying what changed since the
    /// one listed. False, untouched, otherwise: list it whole.
    pub fn follow(
        &mut self,
        snapshot: &Arc<Snapshot>,
        history: &TagHistory,
        changed: Option<&ChangedSince>,
        now: DateTime<Utc>,
    ) -> bool {
        if now < self.then || self.latest.is_some_and(|latest| latest > self.then) {
            return false;
        }
        let same = std::ptr::eq(self.snapshot.as_ptr(), Arc::as_ptr(snapshot));
        if same {
            if history.latest() != self.latest {
                return false;
            }
            let deployments = Arc::make_mut(&mut self.deployments);
            if super::advance(deployments, history, self.then, now).is_none() {
                return false;
            }
            self.then = now;
            return true;
        }
        let Some(changed) = changed.filter(|c| c.starts_from(&self.snapshot)) else {
            return false;
        };
        let kept = Arc::unwrap_or_clone(std::mem::take(&mut self.deployments));
        let deployments = splice(kept, snapshot, history, &changed.services, now);
        self.samples = Arc::new(LeadSamples::of(&deployments, &snapshot.environments));
        self.deployments = Arc::new(deployments);
        self.snapshot = Arc::downgrade(snapshot);
        self.then = now;
        self.latest = history.latest();
        true
    }
}

/// The deployments of `snapshot` as of `now`: `kept`'s for every service not in `changed`
/// (moved over, their durations brought to `now`), listed again from `history` for the others.
/// `kept` is in [`super::deployments`]'s order (by service), as is the result.
fn splice(
    kept: Vec<Deployment>,
    snapshot: &Snapshot,
    history: &TagHistory,
    changed: &std::collections::BTreeSet<ServiceName>,
    now: DateTime<Utc>,
) -> Vec<Deployment> {
    let mut out = Vec::with_capacity(kept.len());
    let mut kept = kept.into_iter().peekable();
    for service in snapshot.service_names() {
        // Services listed before and gone now.
        while kept.next_if(|d| d.service < *service).is_some() {}
        if changed.contains(service) {
            while kept.next_if(|d| d.service == *service).is_some() {}
            super::list_service(snapshot, history, service, now, &mut out);
            continue;
        }
        while let Some(mut d) = kept.next_if(|d| d.service == *service) {
            if d.left.is_none() {
                d.duration = Span(now - d.landed.time);
            }
            out.push(d);
        }
    }
    out
}
