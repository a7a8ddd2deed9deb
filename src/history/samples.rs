//! Lead-time samples: for each pair of environments lead time is measured over
//! ([`super::pairs`]), each tag's first landing in the earlier environment and its first landing
//! in the later one, for the same service. They depend on the deployments only, not on the
//! clock, so the daemon finds them once per head (a hash map over every deployment) and each
//! cycle only filters them by the windows ending at its `now` ([`super::lead_times_of`],
//! [`crate::dashboard::lead::view_of`]): a pass over a flat list, no hashing.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::model::{EnvName, ServiceName, Tag};
use crate::repo::Environment;

use super::{Deployment, pairs};

/// One tag of one service that landed in `pairs[pair].0`, then in `pairs[pair].1` by another
/// commit (one commit setting both, an import or a bulk edit, is no promotion: no sample).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeadSample {
    /// Its pair in [`LeadSamples::pairs`].
    pub pair: usize,
    /// The tag's first landing in the earlier environment: an index into the deployments.
    pub earlier: usize,
    /// Its first landing in the later environment: an index into the deployments.
    pub landed: usize,
    /// When it landed in the earlier environment.
    pub earlier_at: DateTime<Utc>,
    /// When it landed in the later one.
    pub landed_at: DateTime<Utc>,
}

/// The samples of one list of deployments (indices into it), and when each environment
/// received a tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadSamples {
    /// The pairs, as [`super::pairs`] lists them.
    pub pairs: Vec<(EnvName, EnvName)>,
    /// Every sample, by pair, then by the later landing's position in the deployments.
    pub samples: Vec<LeadSample>,
    /// Per environment, every landing's time (every deployment, a tag coming back included),
    /// oldest first.
    pub landings: HashMap<EnvName, Vec<DateTime<Utc>>>,
}

impl LeadSamples {
    /// The samples of `deployments` for the pairs of `environments`. Each tag counts once per
    /// service and environment: by its first landing there (in the deployments' order).
    pub fn of(deployments: &[Deployment], environments: &[Environment]) -> Self {
        let mut first: HashMap<(&ServiceName, &EnvName, &Tag), usize> = HashMap::new();
        let mut landings: HashMap<EnvName, Vec<DateTime<Utc>>> = HashMap::new();
        for (i, d) in deployments.iter().enumerate() {
            first.entry((&d.service, &d.env, &d.tag)).or_insert(i);
            match landings.get_mut(&d.env) {
                Some(times) => times.push(d.landed.time),
                None => {
                    landings.insert(d.env.clone(), vec![d.landed.time]);
                }
            }
        }
        for times in landings.values_mut() {
            times.sort_unstable();
        }
        let pairs = pairs(environments);
        let mut samples = Vec::new();
        for (&(service, env, tag), &landed) in &first {
            for (pair, (from, to)) in pairs.iter().enumerate() {
                if to != env {
                    continue;
                }
                let Some(&earlier) = first.get(&(service, from, tag)) else {
                    continue;
                };
                let (start, end) = (&deployments[earlier].landed, &deployments[landed].landed);
                if start.sha == end.sha {
                    continue;
                }
                samples.push(LeadSample {
                    pair,
                    earlier,
                    landed,
                    earlier_at: start.time,
                    landed_at: end.time,
                });
            }
        }
        samples.sort_unstable_by_key(|s| (s.pair, s.landed));
        Self {
            pairs,
            samples,
            landings,
        }
    }

    /// The samples of pair `pair`.
    pub fn of_pair(&self, pair: usize) -> &[LeadSample] {
        let start = self.samples.partition_point(|s| s.pair < pair);
        let end = self.samples.partition_point(|s| s.pair <= pair);
        &self.samples[start..end]
    }

    /// How many tags `env` received from `since` to `until`, both included.
    pub fn landings_between(
        &self,
        env: &EnvName,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> usize {
        self.landings.get(env).map_or(0, |times| {
            times.partition_point(|t| *t <= until) - times.partition_point(|t| *t < since)
        })
    }
}
