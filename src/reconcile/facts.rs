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

/// The statuses of `status_names` (Kustomization names) on `statuses`, as a verdict.
fn verdict(statuses: &[CommitStatus], kustomizations: &[String], sha: &str) -> Option<Health> {
    let wanted: Vec<String> = kustomizations
        .iter()
        .map(|k| format!("kustomization/{}/", k.to_lowercase()))
        .collect();
    let matching: Vec<&CommitStatus> = statuses
        .iter()
        .filter(|s| wanted.iter().any(|w| s.name.to_lowercase().starts_with(w)))
        .collect();
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

/// The earliest success any of `kustomizations` reported in `statuses`.
pub(super) fn first_success(
    statuses: &[CommitStatus],
    kustomizations: &[String],
) -> Option<chrono::DateTime<chrono::Utc>> {
    let wanted: Vec<String> = kustomizations
        .iter()
        .map(|k| format!("kustomization/{}/", k.to_lowercase()))
        .collect();
    statuses
        .iter()
        .filter(|s| s.status == "success")
        .filter(|s| wanted.iter().any(|w| s.name.to_lowercase().starts_with(w)))
        .filter_map(|s| s.created_at.as_deref()?.parse().ok())
        .min()
}

impl<F: Forge> Reconciler<F> {
    /// Reads what the gates of `preliminary`'s candidates need.
    pub(super) async fn gather(&self, read: &Read, preliminary: &Plan) -> Result<Gathered, Error> {
        let mut gathered = Gathered::default();
        let mut statuses: HashMap<String, Result<Vec<CommitStatus>, String>> = HashMap::new();
        self.registry.begin_cycle();
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
            let policy = read.snapshot.policies.for_env(&decision.to);
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
            let kustomizations = read
                .snapshot
                .environment(&decision.from)
                .map(|e| e.health_kustomizations.clone())
                .unwrap_or_default();
            if !policy.require_health || kustomizations.is_empty() {
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
                        if let Some(first) = first_success(found, &kustomizations) {
                            earliest =
                                Some(earliest.map_or(first, |e: chrono::DateTime<chrono::Utc>| {
                                    e.min(first)
                                }));
                        }
                        if matches!(health, Health::NotReported { .. })
                            && let Some(verdict) = verdict(found, &kustomizations, sha)
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
        }
    }

    #[test]
    fn flux_statuses_are_matched_by_kind_and_name_not_the_uid() {
        let k = vec!["Calculator".to_string()];
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
            status("kustomization/calculator/1", "success"),
            status("kustomization/calculator/2", "failed"),
        ];
        assert!(matches!(
            verdict(&both, &k, "a"),
            Some(Health::Failed { .. })
        ));
        assert_eq!(
            verdict(
                &[status("kustomization/calculator-old/1", "success")],
                &k,
                "a"
            ),
            None
        );
    }
}
