//! Gate evaluation: each gate is a function of facts, the merged policy and the instant, and
//! returns an [`Outcome`] saying whether it passed and why, in words a reviewer reads in the
//! plan and the merge request. Pure.

use std::cmp::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::{Bump, Freeze, WindowSet};
use crate::model::{EnvName, Tag};

/// The gates promoter knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// The candidate is newer than what runs now.
    Order,
    /// The version step is within the policy's limit.
    Semver,
    /// The candidate has run long enough upstream.
    Soak,
    /// No freeze holds.
    Freeze,
    /// Now is inside an allowed window.
    Window,
    /// The environment has room for another open promotion.
    OpenLimit,
    /// Every policy file is valid.
    Policy,
    /// Flux reported the upstream environment healthy with the candidate.
    Health,
    /// The candidate image exists in its registry.
    Image,
    /// No rollback holds the candidate back.
    Hold,
}

impl Gate {
    /// The gate's name in reasons.
    pub fn name(self) -> &'static str {
        match self {
            Self::Order => "order",
            Self::Semver => "semver",
            Self::Soak => "soak",
            Self::Freeze => "freeze",
            Self::Window => "window",
            Self::OpenLimit => "open limit",
            Self::Policy => "policy",
            Self::Health => "health",
            Self::Image => "image",
            Self::Hold => "hold",
        }
    }
}

/// The verdict of one gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Which gate.
    pub gate: Gate,
    /// Whether it let the promotion through (also when waived).
    pub passed: bool,
    /// Why, in a sentence.
    pub message: String,
}

impl Outcome {
    fn pass(gate: Gate, message: String) -> Self {
        Self {
            gate,
            passed: true,
            message,
        }
    }

    fn fail(gate: Gate, message: String) -> Self {
        Self {
            gate,
            passed: false,
            message,
        }
    }
}

/// Who is asking for a promotion, when someone is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Asker<'a> {
    /// A person asked (CLI, chat-ops): waives allowed windows and the semver limit.
    pub explicit: Option<&'a str>,
    /// That person is break-glass for this environment and gave a reason: waives soak and
    /// freezes too.
    pub break_glass: Option<&'a str>,
    /// A rollback was asked for: an older tag is allowed.
    pub rollback: bool,
}

pub use crate::text::duration::human;

/// The step from `current` to `candidate`, both semantic versions.
pub fn bump(current: &semver::Version, candidate: &semver::Version) -> Bump {
    if candidate.major != current.major {
        Bump::Major
    } else if candidate.minor != current.minor {
        Bump::Minor
    } else {
        Bump::Patch
    }
}

/// Facts the order gate needs when tags are not semantic versions.
#[derive(Debug, Clone, Copy)]
pub struct Landings {
    /// When the candidate landed upstream.
    pub candidate: Option<DateTime<Utc>>,
    /// When the current tag landed in the target.
    pub current: Option<DateTime<Utc>>,
}

/// Is the candidate newer than what runs? Semantic versions by precedence; other tags by when
/// they landed. A downgrade passes only on a rollback request.
pub fn order(
    current: Option<&Tag>,
    candidate: &Tag,
    from: &EnvName,
    to: &EnvName,
    landings: Landings,
    asker: Asker<'_>,
) -> Outcome {
    let Some(current) = current else {
        return Outcome::pass(Gate::Order, format!("{to} has no tag yet"));
    };
    let ordering = match (current.semver(), candidate.semver()) {
        (Some(a), Some(b)) => Some((b.cmp(&a), "by semantic version".to_string())),
        _ => match (landings.candidate, landings.current) {
            (Some(c), Some(t)) => Some((
                c.cmp(&t),
                format!(
                    "tags are not semantic versions: ordered by landing time ({candidate} in {from} {}, {current} in {to} {})",
                    c.to_rfc3339(),
                    t.to_rfc3339()
                ),
            )),
            _ => None,
        },
    };
    match ordering {
        None => Outcome::fail(
            Gate::Order,
            format!(
                "cannot order `{current}` and `{candidate}`: they are not semantic versions and their landing times are unknown"
            ),
        ),
        Some((Ordering::Greater, how)) => Outcome::pass(
            Gate::Order,
            format!("{candidate} is newer than {current} ({how})"),
        ),
        Some((_, how)) if asker.rollback => Outcome::pass(
            Gate::Order,
            format!("rollback from {current} to {candidate} was asked for ({how})"),
        ),
        Some((_, how)) => Outcome::fail(
            Gate::Order,
            format!(
                "{candidate} is not newer than {current} ({how}); promoter never downgrades unless a rollback is asked for"
            ),
        ),
    }
}

/// Is the version step within the policy's limit?
pub fn semver_limit(
    limit: Option<Bump>,
    current: Option<&Tag>,
    candidate: &Tag,
    asker: Asker<'_>,
) -> Option<Outcome> {
    let limit = limit?;
    let (Some(a), Some(b)) = (current?.semver(), candidate.semver()) else {
        return None;
    };
    let step = bump(&a, &b);
    Some(if step <= limit {
        Outcome::pass(
            Gate::Semver,
            format!("{step} bump, within the {limit} limit"),
        )
    } else if let Some(who) = asker.explicit {
        Outcome::pass(
            Gate::Semver,
            format!("{step} bump over the {limit} limit, explicitly requested by {who}"),
        )
    } else {
        Outcome::fail(
            Gate::Semver,
            format!(
                "{step} bump ({} -> {b}) needs an explicit request: the policy allows {limit} bumps automatically",
                current?
            ),
        )
    })
}

/// Has the candidate run long enough upstream? `ran` is when it landed there and, if it has
/// left since, when it left.
pub fn soak(
    required: Option<&(Duration, String)>,
    from: &EnvName,
    ran: Option<(DateTime<Utc>, Option<DateTime<Utc>>)>,
    now: DateTime<Utc>,
    asker: Asker<'_>,
) -> Option<Outcome> {
    let (required, file) = required?;
    let Some((since, until)) = ran else {
        return Some(match asker.break_glass {
            Some(who) => Outcome::pass(
                Gate::Soak,
                format!("soak waived by break-glass {who}: landing time in {from} unknown"),
            ),
            None => Outcome::fail(
                Gate::Soak,
                format!(
                    "soak of {} in {from} cannot be measured: when the tag landed there is unknown (no git history, or an uncommitted change)",
                    human(*required)
                ),
            ),
        });
    };
    let end = until.unwrap_or(now).min(now);
    let ran_for = (end - since).to_std().unwrap_or_default();
    Some(if ran_for >= *required {
        Outcome::pass(
            Gate::Soak,
            format!(
                "ran {} in {from} (needs {})",
                human(ran_for),
                human(*required)
            ),
        )
    } else if let Some(who) = asker.break_glass {
        Outcome::pass(
            Gate::Soak,
            format!(
                "ran {} in {from}, under the {} of {file}; waived by break-glass {who}",
                human(ran_for),
                human(*required)
            ),
        )
    } else {
        let ready = since + chrono::Duration::from_std(*required).unwrap_or_default();
        Outcome::fail(
            Gate::Soak,
            format!(
                "has run {} in {from}, needs {} ({file}): eligible at {}",
                human(ran_for),
                human(*required),
                ready.to_rfc3339()
            ),
        )
    })
}

/// Does a freeze hold?
pub fn freeze(freezes: &[Freeze], now: DateTime<Utc>, tz: Tz, asker: Asker<'_>) -> Option<Outcome> {
    if freezes.is_empty() {
        return None;
    }
    let holding: Vec<&Freeze> = freezes.iter().filter(|f| f.holds_at(now, tz)).collect();
    Some(match (holding.first(), asker.break_glass) {
        (None, _) => Outcome::pass(Gate::Freeze, "no freeze holds".into()),
        (Some(f), Some(who)) => Outcome::pass(
            Gate::Freeze,
            format!("frozen by {}; waived by break-glass {who}", f.describe(tz)),
        ),
        (Some(f), None) => Outcome::fail(
            Gate::Freeze,
            format!("frozen by {} ({})", f.describe(tz), f.file),
        ),
    })
}

/// Is now inside an allowed window (every policy file's list must allow)?
pub fn window(sets: &[WindowSet], now: DateTime<Utc>, tz: Tz, asker: Asker<'_>) -> Option<Outcome> {
    if sets.is_empty() {
        return None;
    }
    let closed = sets.iter().find(|s| s.matching(now, tz).is_none());
    Some(match (closed, asker.explicit) {
        (None, _) => Outcome::pass(Gate::Window, "inside an allowed window".into()),
        (Some(s), Some(who)) => Outcome::pass(
            Gate::Window,
            format!(
                "outside the allowed windows of {}; explicitly requested by {who}",
                s.file
            ),
        ),
        (Some(s), None) => {
            let list: Vec<_> = s.windows.iter().map(|(t, _)| format!("`{t}`")).collect();
            Outcome::fail(
                Gate::Window,
                format!(
                    "outside the allowed windows {} ({tz}) of {}",
                    list.join(", "),
                    s.file
                ),
            )
        }
    })
}

/// Are all policy files valid? A broken one might have gated this promotion.
pub fn policies_valid(broken: &[String]) -> Option<Outcome> {
    (!broken.is_empty()).then(|| {
        Outcome::fail(
            Gate::Policy,
            format!(
                "{} invalid: every promotion waits until it is fixed (run `promoter check`)",
                broken.join(", ")
            ),
        )
    })
}

/// What Flux reported for the upstream environment since the candidate landed there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Health {
    /// Not gathered (an offline `plan`; reconcile always gathers it).
    NotChecked,
    /// The newest status on a commit at or after the landing says success.
    Healthy {
        sha: String,
        status: String,
        /// When Flux first reported success on a commit at or after the landing: the soak
        /// clock when the environment's policy requires health.
        #[serde(skip_serializing_if = "Option::is_none")]
        since: Option<DateTime<Utc>>,
    },
    /// The newest status says failed.
    Failed {
        sha: String,
        status: String,
        description: Option<String>,
    },
    /// No status for the environment's Kustomizations on any of the commits checked.
    NotReported { commits: usize },
    /// The statuses could not be read.
    Unknown { reason: String },
}

/// Whether the candidate image exists in its registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ImageFact {
    /// Not gathered (an offline `plan`).
    NotChecked,
    /// The registry has it.
    Present { digest: Option<String> },
    /// The registry does not.
    Missing,
    /// The registry could not be asked.
    Unknown { reason: String },
}

/// Did Flux report the upstream environment healthy with the candidate in it? `statuses` are
/// the upstream's own status names (`health.statuses`); `fact` was read with only those.
pub fn health(
    required: bool,
    from: &EnvName,
    statuses: &[String],
    fact: &Health,
) -> Option<Outcome> {
    if !required {
        return None;
    }
    if statuses.is_empty() {
        return Some(Outcome::fail(
            Gate::Health,
            format!(
                "the policy requires health, but environments/{from}.yaml names no commit status of its own (health.statuses)"
            ),
        ));
    }
    let short = |sha: &str| sha.chars().take(8).collect::<String>();
    Some(match fact {
        Health::NotChecked => Outcome::pass(
            Gate::Health,
            format!("not checked here: reconcile reads Flux's statuses for {from}"),
        ),
        Health::Healthy { sha, status, .. } => Outcome::pass(
            Gate::Health,
            format!("Flux reports {from} healthy at {} ({status})", short(sha)),
        ),
        Health::Failed {
            sha,
            status,
            description,
        } => Outcome::fail(
            Gate::Health,
            format!(
                "Flux reports {from} failed at {} ({status}{})",
                short(sha),
                description
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ),
        ),
        Health::NotReported { commits } => Outcome::fail(
            Gate::Health,
            format!(
                "Flux has not reported {from} since the candidate landed ({commits} commit(s) checked for {})",
                statuses.join(", ")
            ),
        ),
        Health::Unknown { reason } => Outcome::fail(
            Gate::Health,
            format!("cannot read Flux's statuses for {from}: {reason}"),
        ),
    })
}

/// Does the candidate image exist?
pub fn image(required: bool, reference: &str, fact: &ImageFact) -> Option<Outcome> {
    if !required {
        return None;
    }
    Some(match fact {
        ImageFact::NotChecked => Outcome::pass(
            Gate::Image,
            format!("{reference}: not checked here (reconcile asks the registry)"),
        ),
        ImageFact::Present { .. } => Outcome::pass(Gate::Image, format!("{reference} exists")),
        ImageFact::Missing => Outcome::fail(
            Gate::Image,
            format!("{reference} is not in the registry: Flux could not pull it"),
        ),
        ImageFact::Unknown { reason } => {
            Outcome::fail(Gate::Image, format!("cannot check {reference}: {reason}"))
        }
    })
}

/// Is there room for another open promotion into the environment? An MR already open for this
/// promotion is updated, not added.
pub fn open_limit(limit: Option<u32>, open_others: usize, to: &EnvName) -> Option<Outcome> {
    let limit = limit?;
    Some(if open_others < limit as usize {
        Outcome::pass(
            Gate::OpenLimit,
            format!("{open_others} of {limit} open promotions into {to}"),
        )
    } else {
        Outcome::fail(
            Gate::OpenLimit,
            format!(
                "{open_others} promotions into {to} are open already, the policy allows {limit}: merge or close one"
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn env(name: &str) -> EnvName {
        EnvName::new(name)
    }

    const NOBODY: Asker<'static> = Asker {
        explicit: None,
        break_glass: None,
        rollback: false,
    };

    #[test]
    fn soak_boundary_is_inclusive() {
        let required = (Duration::from_secs(3600), "policies/qa.yaml".to_string());
        let landed = at("2026-11-24T10:00:00Z");
        let check = |now: &str| {
            soak(
                Some(&required),
                &env("dev"),
                Some((landed, None)),
                at(now),
                NOBODY,
            )
            .unwrap()
        };
        let early = check("2026-11-24T10:59:59Z");
        assert!(!early.passed);
        assert_eq!(
            early.message,
            "has run 59m in dev, needs 1h (policies/qa.yaml): eligible at 2026-11-24T11:00:00+00:00"
        );
        assert!(check("2026-11-24T11:00:00Z").passed, "exactly one hour");
        assert_eq!(
            check("2026-11-24T12:00:00Z").message,
            "ran 2h in dev (needs 1h)"
        );
    }

    #[test]
    fn soak_of_a_tag_that_left_counts_until_it_left() {
        let required = (Duration::from_secs(3600), "p".to_string());
        let ran = Some((at("2026-11-24T10:00:00Z"), Some(at("2026-11-24T10:30:00Z"))));
        assert!(
            !soak(
                Some(&required),
                &env("dev"),
                ran,
                at("2026-11-25T00:00:00Z"),
                NOBODY
            )
            .unwrap()
            .passed
        );
    }

    #[test]
    fn soak_unknown_landing_blocks_unless_break_glass() {
        let required = (Duration::from_secs(3600), "p".to_string());
        let o = soak(
            Some(&required),
            &env("dev"),
            None,
            at("2026-11-24T00:00:00Z"),
            NOBODY,
        )
        .unwrap();
        assert!(!o.passed && o.message.contains("unknown"));
        let bg = Asker {
            explicit: Some("alice"),
            break_glass: Some("alice"),
            rollback: false,
        };
        assert!(
            soak(
                Some(&required),
                &env("dev"),
                None,
                at("2026-11-24T00:00:00Z"),
                bg
            )
            .unwrap()
            .passed
        );
        assert!(soak(None, &env("dev"), None, at("2026-11-24T00:00:00Z"), NOBODY).is_none());
    }

    #[test]
    fn order_by_semver_then_by_landing_time() {
        let t = Tag::new;
        let none = Landings {
            candidate: None,
            current: None,
        };
        assert!(
            order(
                Some(&t("1.2.0")),
                &t("1.10.0"),
                &env("dev"),
                &env("qa"),
                none,
                NOBODY
            )
            .passed
        );
        let down = order(
            Some(&t("1.3.0")),
            &t("1.2.0"),
            &env("dev"),
            &env("qa"),
            none,
            NOBODY,
        );
        assert!(
            !down.passed && down.message.contains("never downgrades"),
            "{}",
            down.message
        );
        let rb = Asker {
            rollback: true,
            ..NOBODY
        };
        assert!(
            order(
                Some(&t("1.3.0")),
                &t("1.2.0"),
                &env("dev"),
                &env("qa"),
                none,
                rb
            )
            .passed
        );
        assert!(order(None, &t("x"), &env("dev"), &env("qa"), none, NOBODY).passed);
        let unknown = order(
            Some(&t("abc")),
            &t("def"),
            &env("dev"),
            &env("qa"),
            none,
            NOBODY,
        );
        assert!(!unknown.passed && unknown.message.contains("landing times are unknown"));
        let later = Landings {
            candidate: Some(at("2026-11-02T00:00:00Z")),
            current: Some(at("2026-11-01T00:00:00Z")),
        };
        let o = order(
            Some(&t("sha-1")),
            &t("sha-2"),
            &env("dev"),
            &env("qa"),
            later,
            NOBODY,
        );
        assert!(
            o.passed && o.message.contains("ordered by landing time"),
            "{}",
            o.message
        );
        let earlier = Landings {
            candidate: later.current,
            current: later.candidate,
        };
        assert!(
            !order(
                Some(&t("sha-1")),
                &t("sha-2"),
                &env("dev"),
                &env("qa"),
                earlier,
                NOBODY
            )
            .passed
        );
    }

    #[test]
    fn semver_limit_needs_explicit_request_for_large_bumps() {
        let t = Tag::new;
        assert!(
            semver_limit(Some(Bump::Minor), Some(&t("1.2.3")), &t("1.3.0"), NOBODY)
                .unwrap()
                .passed
        );
        let major =
            semver_limit(Some(Bump::Minor), Some(&t("1.2.3")), &t("2.0.0"), NOBODY).unwrap();
        assert!(!major.passed);
        assert_eq!(
            major.message,
            "major bump (1.2.3 -> 2.0.0) needs an explicit request: the policy allows minor bumps automatically"
        );
        let asked = Asker {
            explicit: Some("bob"),
            ..NOBODY
        };
        assert!(
            semver_limit(Some(Bump::Minor), Some(&t("1.2.3")), &t("2.0.0"), asked)
                .unwrap()
                .passed
        );
        assert!(
            semver_limit(Some(Bump::Patch), Some(&t("v1.2.3")), &t("v1.2.4"), NOBODY)
                .unwrap()
                .passed
        );
        assert!(semver_limit(Some(Bump::Minor), Some(&t("latest")), &t("2.0.0"), NOBODY).is_none());
        assert!(semver_limit(None, Some(&t("1.0.0")), &t("9.0.0"), NOBODY).is_none());
    }

    #[test]
    fn open_limit_counts_other_promotions() {
        assert!(open_limit(Some(2), 1, &env("qa")).unwrap().passed);
        assert!(!open_limit(Some(2), 2, &env("qa")).unwrap().passed);
        assert!(open_limit(None, 100, &env("qa")).is_none());
    }

    #[test]
    fn health_gate_reads_flux_reports() {
        let k = vec!["calculator".to_string()];
        let dev = env("dev");
        assert!(
            health(
                false,
                &dev,
                &k,
                &Health::Failed {
                    sha: "a".into(),
                    status: "s".into(),
                    description: None
                }
            )
            .is_none()
        );
        let ok = health(
            true,
            &dev,
            &k,
            &Health::Healthy {
                sha: "0123456789".into(),
                status: "kustomization/calculator/x".into(),
                since: None,
            },
        )
        .unwrap();
        assert!(ok.passed);
        assert_eq!(
            ok.message,
            "Flux reports dev healthy at 01234567 (kustomization/calculator/x)"
        );
        let failed = Health::Failed {
            sha: "abc".into(),
            status: "kustomization/calculator/x".into(),
            description: Some("health check failed".into()),
        };
        assert_eq!(
            health(true, &dev, &k, &failed).unwrap().message,
            "Flux reports dev failed at abc (kustomization/calculator/x: health check failed)"
        );
        assert!(
            !health(true, &dev, &k, &Health::NotReported { commits: 3 })
                .unwrap()
                .passed
        );
        assert!(
            !health(true, &dev, &[], &Health::NotChecked).unwrap().passed,
            "no statuses named"
        );
        assert!(health(true, &dev, &k, &Health::NotChecked).unwrap().passed);
    }

    #[test]
    fn image_gate() {
        assert!(
            image(true, "r/a:1", &ImageFact::Present { digest: None })
                .unwrap()
                .passed
        );
        let missing = image(true, "r/a:1", &ImageFact::Missing).unwrap();
        assert!(!missing.passed);
        assert_eq!(
            missing.message,
            "r/a:1 is not in the registry: Flux could not pull it"
        );
        assert!(
            !image(true, "r/a:1", &ImageFact::Unknown { reason: "x".into() })
                .unwrap()
                .passed
        );
        assert!(image(false, "r/a:1", &ImageFact::Missing).is_none());
    }
}
