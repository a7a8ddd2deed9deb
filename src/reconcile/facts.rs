//! Gathering the facts the plan's gates need from outside git, only for the promotions whose
//! policies ask: Flux's commit statuses for the upstream environment (through the forge) and
//! whether each candidate image exists (through the registry). One request per commit and per
//! image reference per cycle.

use std::collections::{BTreeMap, HashMap};

use super::observe::{self, Read};
use super::{Error, Reconciler};
use crate::forge::{CommitStatus, Forge};
use crate::image::ImageRef;
use crate::model::{EnvName, ServiceName};
use crate::plan::{Health, ImageFact, Plan, candidate_image};
use crate::registry::{ImageCheck, Registry};
use crate::repo::health::HealthSource;

/// How far back from the branch head statuses are looked for.
const MAX_COMMITS: usize = 30;

/// Facts for the plan.
#[derive(Debug, Default)]
pub struct Gathered {
    /// Flux's reports, per (target env, service).
    pub health: BTreeMap<(EnvName, ServiceName), Health>,
    /// Image existence, per reference.
    pub images: BTreeMap<String, ImageFact>,
}

/// Is `status` one of the environment's own reports (`own`: its `health` block)?
fn is_own(own: &HealthSource, status: &CommitStatus) -> bool {
    own.counts(&status.name, status.author_username())
}

/// The verdict of the statuses on one commit that are the upstream environment's own (`own`:
/// its `health` block: exact names, maybe reporters): a failure wins over a success.
fn verdict(statuses: &[CommitStatus], own: &HealthSource, sha: &str) -> Option<Health> {
    let matching: Vec<&CommitStatus> = statuses.iter().filter(|s| is_own(own, s)).collect();
    if let Some(failed) = matching.iter().find(|s| s.status == "failed") {
        return Some(Health::Failed {
            sha: sha.to_string(),
            status: failed.name.clone(),
            description: failed.description.clone(),
        });
    }
    matching
        .iter()
        .find(|s| s.status == "success")
        .map(|s| Health::Healthy {
            sha: sha.to_string(),
            status: s.name.clone(),
            since: None,
        })
}

/// The earliest success among `statuses` that is the environment's own (`own`: its `health`
/// block): another cluster's success never starts its clock.
pub(super) fn first_success(
    statuses: &[CommitStatus],
    own: &HealthSource,
) -> Option<chrono::DateTime<chrono::Utc>> {
    statuses
        .iter()
        .filter(|s| s.status == "success")
        .filter(|s| is_own(own, s))
        .filter_map(|s| s.created_at.as_deref()?.parse().ok())
        .min()
}

impl<F: Forge> Reconciler<F> {
    /// Reads what the gates of `preliminary`'s candidates need.
    pub(super) async fn gather(&self, read: &Read, preliminary: &Plan) -> Result<Gathered, Error> {
        let mut gathered = Gathered::default();
        let mut statuses: HashMap<String, Result<Vec<CommitStatus>, String>> = HashMap::new();
        self.registry.begin_cycle();
        // Read once per environment, not per promotion.
        let policies: HashMap<&crate::model::EnvName, crate::policy::Effective> = read
            .snapshot
            .environments
            .iter()
            .map(|e| (&e.name, read.snapshot.policies.for_env(&e.name)))
            .collect();
        for decision in &preliminary.promotions {
            let (Some(candidate), Some(target)) = (
                &decision.candidate,
                read.snapshot.service(&decision.to, &decision.service),
            ) else {
                continue;
            };
            if decision.current.as_ref() == Some(candidate) {
                continue;
            }
            let Some(policy) = policies.get(&decision.to) else {
                continue;
            };
            if policy.require_image {
                let reference =
                    candidate_image(target, candidate, decision.candidate_digest.as_deref());
                if let std::collections::btree_map::Entry::Vacant(slot) =
                    gathered.images.entry(reference)
                {
                    let fact = match slot.key().parse::<ImageRef>() {
                        Err(e) => ImageFact::Unknown {
                            reason: e.to_string(),
                        },
                        Ok(image) => match self.registry.check(&image).await {
                            Ok(ImageCheck::Present { digest }) => ImageFact::Present { digest },
                            Ok(ImageCheck::Missing) => ImageFact::Missing,
                            Err(e) => ImageFact::Unknown {
                                reason: e.to_string(),
                            },
                        },
                    };
                    slot.insert(fact);
                }
            }
            let own = read
                .snapshot
                .environment(&decision.from)
                .map(|e| e.health.clone())
                .unwrap_or_default();
            if !policy.require_health || own.statuses.is_empty() {
                continue;
            }
            let Some(upstream) = read.snapshot.service(&decision.from, &decision.service) else {
                continue;
            };
            let landed = read
                .history
                .stints(&upstream.values_file())
                .iter()
                .rev()
                .find(|s| s.tag.as_ref() == Some(candidate))
                .map(|s| s.since.sha.clone());
            let Some(landed) = landed else {
                gathered.health.insert(
                    (decision.to.clone(), decision.service.clone()),
                    Health::NotReported { commits: 0 },
                );
                continue;
            };
            let head = read.head;
            let stop = landed.clone();
            let chain = self
                .with_mirror(move |m| observe::chain(m, head, &stop, MAX_COMMITS))
                .await?;
            let mut health = Health::NotReported {
                commits: chain.len(),
            };
            let mut earliest = None;
            for sha in &chain {
                if !statuses.contains_key(sha) {
                    let read = self
                        .forge
                        .commit_statuses(sha)
                        .await
                        .map_err(|e| e.to_string());
                    statuses.insert(sha.clone(), read);
                }
                match &statuses[sha] {
                    Err(reason) => {
                        health = Health::Unknown {
                            reason: reason.clone(),
                        };
                        break;
                    }
                    Ok(found) => {
                        // Newest first: the first verdict is the health now; the soak clock
                        // needs the earliest success, so older commits are read too.
                        if let Some(first) = first_success(found, &own) {
                            earliest =
                                Some(earliest.map_or(first, |e: chrono::DateTime<chrono::Utc>| {
                                    e.min(first)
                                }));
                        }
                        if matches!(health, Health::NotReported { .. })
                            && let Some(verdict) = verdict(found, &own, sha)
                        {
                            health = verdict;
                        }
                    }
                }
            }
            if let Health::Healthy { since, .. } = &mut health {
                *since = earliest;
            }
            gathered
                .health
                .insert((decision.to.clone(), decision.service.clone()), health);
        }
        Ok(gathered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str, state: &str) -> CommitStatus {
        CommitStatus {
            name: name.into(),
            status: state.into(),
            sha: "s".into(),
            description: None,
            created_at: None,
            author: None,
        }
    }

    fn own(names: &[&str]) -> HealthSource {
        HealthSource {
            statuses: names.iter().map(|n| n.to_string()).collect(),
            reporters: Vec::new(),
        }
    }

    fn at(name: &str, state: &str, created: &str) -> CommitStatus {
        CommitStatus {
            created_at: Some(created.into()),
            ..status(name, state)
        }
    }

    #[test]
    fn only_the_environments_own_statuses_decide() {
        let qa = own(&["kustomization/flux-system/qa"]);
        // Three clusters on one commit: dev and prod succeeded, a cluster on Flux's default
        // name (the bug this replaces) too; qa said nothing.
        let others = [
            status("kustomization/flux-system/dev", "success"),
            status("kustomization/flux-system/prod", "success"),
            status("kustomization/flux-system/d3adbeef", "success"),
        ];
        assert_eq!(verdict(&others, &qa, "a"), None);
        let mut with_qa = others.to_vec();
        with_qa.push(status("kustomization/flux-system/qa", "success"));
        assert!(matches!(
            verdict(&with_qa, &qa, "a"),
            Some(Health::Healthy { status, .. }) if status == "kustomization/flux-system/qa"
        ));
        // prod's failure is not qa's.
        with_qa.push(status("kustomization/flux-system/prod", "failed"));
        assert!(matches!(
            verdict(&with_qa, &qa, "a"),
            Some(Health::Healthy { .. })
        ));
        with_qa.push(status("kustomization/flux-system/qa", "failed"));
        assert!(matches!(
            verdict(&with_qa, &qa, "a"),
            Some(Health::Failed { status, .. }) if status == "kustomization/flux-system/qa"
        ));
    }

    #[test]
    fn the_soak_clock_starts_at_the_environments_own_first_success() {
        let qa = own(&["kustomization/flux-system/qa"]);
        let statuses = [
            at(
                "kustomization/flux-system/dev",
                "success",
                "2026-11-24T10:05:00Z",
            ),
            at(
                "kustomization/flux-system/d3adbeef",
                "success",
                "2026-11-24T10:06:00Z",
            ),
            at(
                "kustomization/flux-system/qa",
                "failed",
                "2026-11-24T10:30:00Z",
            ),
            at(
                "kustomization/flux-system/qa",
                "success",
                "2026-11-24T11:00:00Z",
            ),
        ];
        assert_eq!(
            first_success(&statuses, &qa),
            Some("2026-11-24T11:00:00Z".parse().unwrap())
        );
        assert_eq!(first_success(&statuses[..3], &qa), None);
    }

    #[test]
    fn flux_statuses_are_matched_by_their_exact_name() {
        let k = own(&["kustomization/calculator/0c9c2e41"]);
        assert_eq!(verdict(&[status("build", "success")], &k, "a"), None);
        assert!(matches!(
            verdict(
                &[status("kustomization/calculator/0c9c2e41", "success")],
                &k,
                "a"
            ),
            Some(Health::Healthy { .. })
        ));
        let both = [
            status("kustomization/calculator/0c9c2e41", "success"),
            status("kustomization/calculator/0c9c2e41", "failed"),
        ];
        assert!(matches!(
            verdict(&both, &k, "a"),
            Some(Health::Failed { .. })
        ));
        for other in [
            "kustomization/calculator/1",
            "kustomization/calculator-old/0c9c2e41",
            "KUSTOMIZATION/calculator/0c9c2e41",
        ] {
            assert_eq!(verdict(&[status(other, "success")], &k, "a"), None);
        }
    }

    #[test]
    fn with_reporters_a_status_from_anyone_else_is_not_the_environments() {
        let qa = HealthSource {
            reporters: vec!["flux-qa".into()],
            ..own(&["kustomization/flux-system/qa"])
        };
        let by = |who: &str, state: &str| CommitStatus {
            author: Some(crate::forge::StatusAuthor {
                username: who.into(),
            }),
            ..status("kustomization/flux-system/qa", state)
        };
        assert_eq!(verdict(&[by("mallory", "success")], &qa, "a"), None);
        assert_eq!(
            verdict(
                &[status("kustomization/flux-system/qa", "success")],
                &qa,
                "a"
            ),
            None
        );
        assert!(matches!(
            verdict(
                &[by("mallory", "success"), by("flux-qa", "success")],
                &qa,
                "a"
            ),
            Some(Health::Healthy { .. })
        ));
    }
}
