//! Lead-time samples: for each pair of environments lead time is measured over
//! ([`super::pairs`]), each tag's first landing in the earlier environment and its first landing
//! in the later one, for the same service. They depend on the deployments only, not on the
//! clock, so the daemon finds them once per head (service by service: a sample pairs two
//! deployments of one service) and each cycle only filters them by the windows ending at its `now` ([`super::lead_times_of`],
//! [`crate::dashboard::lead::view_of`]): a pass over a flat list, no hashing.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::model::{EnvName, Tag};
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
    ///
    /// A sample pairs two deployments of one service, so each service's deployments are looked
    /// at on their own: a few entries scanned (a map past [`SCAN_AT_MOST`]), no map over the
    /// whole list. [`super::deployments`] lists them grouped by service, in order;
    /// any other order is grouped first.
    pub fn of(deployments: &[Deployment], environments: &[Environment]) -> Self {
        let pairs = pairs(environments);
        let mut samples = Vec::new();
        let mut landings: HashMap<EnvName, Vec<DateTime<Utc>>> = HashMap::new();
        for d in deployments {
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
        let order = by_service(deployments);
        for indices in order.chunk_by(|a, b| deployments[*a].service == deployments[*b].service) {
            of_service(deployments, indices, &pairs, &mut samples);
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

/// The indices of `deployments` grouped by service, each service's in the deployments' order.
fn by_service(deployments: &[Deployment]) -> Vec<usize> {
    let grouped = deployments.windows(2).all(|w| w[0].service <= w[1].service);
    let mut order: Vec<usize> = (0..deployments.len()).collect();
    if !grouped {
        order.sort_by(|a, b| deployments[*a].service.cmp(&deployments[*b].service));
    }
    order
}

/// Over this many deployments of one service, its first landings are found through a map.
const SCAN_AT_MOST: usize = 32;

/// The samples of one service's deployments (`indices`, in the deployments' order) into `out`.
fn of_service(
    deployments: &[Deployment],
    indices: &[usize],
    pairs: &[(EnvName, EnvName)],
    out: &mut Vec<LeadSample>,
) {
    // Each (environment, tag)'s first landing, in the deployments' order.
    let mut map: HashMap<(&EnvName, &Tag), usize> = HashMap::new();
    if indices.len() > SCAN_AT_MOST {
        for &i in indices {
            map.entry((&deployments[i].env, &deployments[i].tag))
                .or_insert(i);
        }
    }
    let first = |env: &EnvName, tag: &Tag| -> Option<usize> {
        if indices.len() > SCAN_AT_MOST {
            return map.get(&(env, tag)).copied();
        }
        indices
            .iter()
            .copied()
            .find(|&i| deployments[i].env == *env && deployments[i].tag == *tag)
    };
    for &landed in indices {
        let d = &deployments[landed];
        if first(&d.env, &d.tag) != Some(landed) {
            continue;
        }
        for (pair, (from, to)) in pairs.iter().enumerate() {
            if *to != d.env {
                continue;
            }
            let Some(earlier) = first(from, &d.tag) else {
                continue;
            };
            let (start, end) = (&deployments[earlier].landed, &d.landed);
            if start.sha == end.sha {
                continue;
            }
            out.push(LeadSample {
                pair,
                earlier,
                landed,
                earlier_at: start.time,
                landed_at: end.time,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Commit, CommitInfo, ServiceName};
    use crate::testkit;
    use proptest::prelude::*;

    /// The samples as first written: one map over every deployment of every service.
    fn reference(deployments: &[Deployment], environments: &[Environment]) -> Vec<LeadSample> {
        let mut first: HashMap<(&ServiceName, &EnvName, &Tag), usize> = HashMap::new();
        for (i, d) in deployments.iter().enumerate() {
            first.entry((&d.service, &d.env, &d.tag)).or_insert(i);
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
                if start.sha != end.sha {
                    samples.push(LeadSample {
                        pair,
                        earlier,
                        landed,
                        earlier_at: start.time,
                        landed_at: end.time,
                    });
                }
            }
        }
        samples.sort_unstable_by_key(|s| (s.pair, s.landed));
        samples
    }

    /// A deployment from small numbers: service, environment (dev, qa, prod), tag, commit.
    fn deployment((service, env, tag, sha): (u8, u8, u8, u8)) -> Deployment {
        let landed = Commit::from(CommitInfo {
            sha: format!("{sha:040x}"),
            time: chrono::DateTime::from_timestamp(i64::from(sha) * 3600, 0).unwrap(),
            author: "dev".into(),
            summary: "landed".into(),
        });
        Deployment {
            service: ServiceName::new(format!("svc-{service}")),
            env: EnvName::new(["dev", "qa", "prod"][usize::from(env % 3)]),
            tag: Tag::new(format!("1.0.{tag}")),
            landed,
            left: None,
            duration: super::super::Span(chrono::TimeDelta::zero()),
            mr: None,
        }
    }

    proptest! {
        #[test]
        fn the_samples_of_each_service_are_those_of_one_map_over_all(
            raw in proptest::collection::vec((0..4u8, 0..3u8, 0..3u8, 0..6u8), 0..60),
            many in 0..80usize,
            grouped in any::<bool>(),
        ) {
            let mut deployments: Vec<Deployment> = raw.into_iter().map(deployment).collect();
            // One service with more deployments than a scan looks through.
            deployments.extend((0..many).map(|i| deployment((9, (i % 3) as u8, (i % 5) as u8, (i % 7) as u8))));
            if grouped {
                deployments.sort_by(|a, b| a.service.cmp(&b.service));
            }
            let environments = crate::repo::Snapshot::load(&testkit::tree(&[])).environments;
            let got = LeadSamples::of(&deployments, &environments);
            prop_assert_eq!(got.samples, reference(&deployments, &environments));
        }
    }
}
