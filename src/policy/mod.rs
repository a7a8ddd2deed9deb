//! `policies/*.yaml`: the gates a promotion into an environment must pass, read and validated,
//! and merged per environment (the strictest value wins). Evaluation lives in [`gate`] and
//! [`window`]; everything here is pure. The files are found and read by
//! [`crate::repo::policies`]: this module sees their bytes, never the repository.
//!
//! ```yaml
//! environments: [prod]          # promotions into these environments; "*" (default) is all
//! soak: 24h                     # time the candidate must have run in the upstream env
//! freezes:
//!   - name: year-end
//!     yearly: {from: "12-20", to: "01-03"}   # whole days, in the environment's time zone
//!   - name: launch
//!     start: 2026-11-01T00:00:00Z            # absolute, end exclusive
//!     end: 2026-11-02T00:00:00Z
//! allowed_windows: ["* * 9-16 * * Mon-Fri"]  # cron with seconds; now must match one of them
//! semver: {max_bump: minor}     # larger bumps only on explicit request
//! max_open_promotions: 5
//! break_glass: [alice]          # may waive soak and freezes, with a reason
//! approvers: [bob, carol]       # whose approvals count (default: anyone's)
//! require_health: true          # Flux reported the upstream env healthy with the candidate
//! require_image: true           # the candidate image exists in its registry
//! require_pipeline: true        # merge only after a pipeline succeeded on the pushed commit
//! requesters: ["gitlab:alice", "slack:U024BE7LH", "mattermost:bob"]   # who may ask in chat
//! reviewers: [alice]            # asked to review promotion MRs (GitLab quick action)
//! group: train                  # one MR per environment and schedule for every due service
//! holds: [...]                  # written by `promoter rollback`, see [`hold`]
//! ```

pub mod access;
pub mod gate;
pub mod hold;
pub mod window;

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;

use crate::diagnostic::Diagnostic;
use crate::model::EnvName;
use crate::yaml::typed;
pub use window::{Freeze, FreezeSpan, MonthDay};

/// The directory of policy files.
pub const DIR: &str = "policies";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    environments: Option<Vec<String>>,
    soak: Option<String>,
    #[serde(default)]
    freezes: Vec<FreezeEntry>,
    #[serde(default)]
    allowed_windows: Vec<String>,
    semver: Option<SemverEntry>,
    max_open_promotions: Option<u32>,
    #[serde(default)]
    break_glass: Vec<String>,
    #[serde(default)]
    approvers: Vec<String>,
    #[serde(default)]
    require_health: bool,
    #[serde(default)]
    require_image: bool,
    #[serde(default)]
    require_pipeline: bool,
    #[serde(default)]
    requesters: Vec<String>,
    #[serde(default)]
    reviewers: Vec<String>,
    group: Option<Group>,
    #[serde(default)]
    holds: Vec<hold::HoldEntry>,
}

/// How promotions into an environment are grouped into merge requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// One MR per service (the default).
    Service,
    /// One MR per environment carrying every due service: a release train.
    Train,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FreezeEntry {
    name: String,
    reason: Option<String>,
    yearly: Option<YearlyEntry>,
    start: Option<chrono::DateTime<chrono::Utc>>,
    end: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct YearlyEntry {
    from: String,
    to: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SemverEntry {
    max_bump: Bump,
}

/// How large a semantic-version step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bump {
    /// `1.2.3 -> 1.2.4` (or a pre-release change)
    Patch,
    /// `1.2.3 -> 1.3.0`
    Minor,
    /// `1.2.3 -> 2.0.0`
    Major,
}

impl std::fmt::Display for Bump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Patch => "patch",
            Self::Minor => "minor",
            Self::Major => "major",
        })
    }
}

/// Allowed windows from one policy file: now must match at least one of them.
#[derive(Debug, Clone)]
pub struct WindowSet {
    /// The file that declares them.
    pub file: String,
    /// The cron expressions as written, with their schedules.
    pub windows: Vec<(String, cron::Schedule)>,
}

/// One policy file, validated.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Where it was read from.
    pub file: String,
    /// The environments it applies to; `None` for all.
    pub environments: Option<BTreeSet<EnvName>>,
    /// Minimum soak in the upstream environment.
    pub soak: Option<Duration>,
    /// Freeze windows.
    pub freezes: Vec<Freeze>,
    /// Allowed windows.
    pub windows: Option<WindowSet>,
    /// Largest bump promoted without an explicit request.
    pub max_bump: Option<Bump>,
    /// Most open promotion MRs into the environment at once.
    pub max_open_promotions: Option<u32>,
    /// Who may waive soak and freezes.
    pub break_glass: BTreeSet<String>,
    /// Whose approvals count towards `approvals_required` (empty: anyone's).
    pub approvers: BTreeSet<String>,
    /// Flux must report the upstream environment healthy on the candidate's commit.
    pub require_health: bool,
    /// The candidate image must exist in its registry.
    pub require_image: bool,
    /// Merge only after a pipeline succeeded on the pushed commit.
    pub require_pipeline: bool,
    /// Who may ask for promotions through chat-ops: `slack:<user id>`,
    /// `mattermost:<user name>`, `gitlab:<user name>`.
    pub requesters: BTreeSet<String>,
    /// GitLab usernames asked to review promotion MRs.
    pub reviewers: BTreeSet<String>,
    /// How promotions are grouped into MRs, when the file says.
    pub group: Option<Group>,
    /// Holds left by rollbacks (they apply by their own `env`, not by `environments`).
    pub holds: Vec<hold::Hold>,
}

impl Policy {
    fn applies_to(&self, env: &EnvName) -> bool {
        self.environments
            .as_ref()
            .is_none_or(|envs| envs.contains(env))
    }
}

/// Every policy file.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    /// In file-name order.
    pub files: Vec<Policy>,
    /// Files that could not be read or are invalid. Which environments they meant to gate is
    /// unknown, so while any is broken every promotion is blocked (fail safe, never open).
    pub broken: Vec<String>,
}

/// The policy in force for promotions into one environment: every applicable file merged,
/// the strictest value winning.
#[derive(Debug, Clone, Default)]
pub struct Effective {
    /// The longest soak any file asks for, with that file.
    pub soak: Option<(Duration, String)>,
    /// All freezes.
    pub freezes: Vec<Freeze>,
    /// One set per file: each must allow.
    pub windows: Vec<WindowSet>,
    /// The smallest bump limit.
    pub max_bump: Option<Bump>,
    /// The smallest limit.
    pub max_open_promotions: Option<u32>,
    /// Everyone any file names.
    pub break_glass: BTreeSet<String>,
    /// Allowed approvers; empty means anyone's approval counts. With several files naming
    /// approvers, only people every one of them names count.
    pub approvers: BTreeSet<String>,
    /// Any file asks for the health gate.
    pub require_health: bool,
    /// Any file asks for the image gate.
    pub require_image: bool,
    /// Any file asks for a successful pipeline before a merge.
    pub require_pipeline: bool,
    /// Everyone any file lets ask through chat-ops, with the files that name requesters.
    pub requesters: BTreeSet<String>,
    /// The files that name requesters (the rule a refusal cites).
    pub requester_files: Vec<String>,
    /// Everyone any file asks to review.
    pub reviewers: BTreeSet<String>,
    /// A release train: every due service in one MR per schedule.
    pub train: bool,
}

impl Policies {
    /// Every standing hold, from every file.
    pub fn holds(&self) -> impl Iterator<Item = &hold::Hold> {
        self.files.iter().flat_map(|p| p.holds.iter())
    }

    /// The merged policy for promotions into `env`.
    pub fn for_env(&self, env: &EnvName) -> Effective {
        let mut out = Effective::default();
        for p in self.files.iter().filter(|p| p.applies_to(env)) {
            if let Some(soak) = p.soak
                && out.soak.as_ref().is_none_or(|(d, _)| soak > *d)
            {
                out.soak = Some((soak, p.file.clone()));
            }
            out.freezes.extend(p.freezes.iter().cloned());
            out.windows.extend(p.windows.iter().cloned());
            out.max_bump = min_some(out.max_bump, p.max_bump);
            out.max_open_promotions = min_some(out.max_open_promotions, p.max_open_promotions);
            out.break_glass.extend(p.break_glass.iter().cloned());
            out.require_health |= p.require_health;
            out.require_image |= p.require_image;
            out.require_pipeline |= p.require_pipeline;
            out.reviewers.extend(p.reviewers.iter().cloned());
            out.train |= p.group == Some(Group::Train);
            if !p.requesters.is_empty() {
                out.requesters.extend(p.requesters.iter().cloned());
                out.requester_files.push(p.file.clone());
            }
            if !p.approvers.is_empty() {
                out.approvers = if out.approvers.is_empty() {
                    p.approvers.clone()
                } else {
                    out.approvers.intersection(&p.approvers).cloned().collect()
                };
            }
        }
        out
    }
}

fn min_some<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Parses one policy file.
pub fn parse(
    file: &str,
    bytes: &[u8],
    known: &BTreeSet<EnvName>,
) -> Result<Policy, Vec<Diagnostic>> {
    let raw: PolicyFile = typed::parse(file, bytes).map_err(|d| vec![d])?;
    let mut problems = Vec::new();
    let at = |key: &str, message: String| typed::at_key(file, bytes, key, message);
    let environments = match raw.environments {
        None => None,
        Some(list) if list.iter().any(|e| e == "*") => None,
        Some(list) => {
            for (i, env) in list.iter().enumerate() {
                if !known.is_empty() && !known.contains(&EnvName::new(env.as_str())) {
                    let names: Vec<_> = known.iter().map(EnvName::as_str).collect();
                    problems.push(at(
                        &format!("environments[{i}]"),
                        format!("unknown environment `{env}` (known: {})", names.join(", ")),
                    ));
                }
            }
            Some(list.into_iter().map(EnvName::new).collect())
        }
    };
    let soak = raw
        .soak
        .as_deref()
        .and_then(|text| match humantime::parse_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                problems.push(at(
                    "soak",
                    format!("invalid duration `{text}`: {e}; write e.g. 1h, 30m or 2d 12h"),
                ));
                None
            }
        });
    let mut freezes = Vec::new();
    for (i, f) in raw.freezes.into_iter().enumerate() {
        let span = match (f.yearly, f.start, f.end) {
            (Some(y), None, None) => match (y.from.parse::<MonthDay>(), y.to.parse::<MonthDay>()) {
                (Ok(from), Ok(to)) => Some(FreezeSpan::Yearly { from, to }),
                (Err(e), _) => {
                    problems.push(at(&format!("freezes[{i}].yearly.from"), e));
                    None
                }
                (_, Err(e)) => {
                    problems.push(at(&format!("freezes[{i}].yearly.to"), e));
                    None
                }
            },
            (None, Some(start), Some(end)) if start < end => {
                Some(FreezeSpan::Between { start, end })
            }
            (None, Some(_), Some(_)) => {
                problems.push(at(
                    &format!("freezes[{i}].end"),
                    format!("freeze `{}` ends before it starts", f.name),
                ));
                None
            }
            _ => {
                problems.push(at(
                    &format!("freezes[{i}].name"),
                    format!("freeze `{}` needs either yearly: {{from: MM-DD, to: MM-DD}} or both start and end", f.name),
                ));
                None
            }
        };
        if let Some(span) = span {
            freezes.push(Freeze {
                name: f.name,
                reason: f.reason,
                span,
                file: file.to_string(),
            });
        }
    }
    let mut windows = Vec::new();
    for (i, text) in raw.allowed_windows.iter().enumerate() {
        match window::parse_cron(text) {
            Ok(s) => windows.push((text.clone(), s)),
            Err(e) => problems.push(at(
                &format!("allowed_windows[{i}]"),
                format!("invalid cron `{text}`: {e}; write 6 fields with seconds, e.g. \"* * 9-16 * * Mon-Fri\""),
            )),
        }
    }
    for (i, entry) in raw.holds.iter().enumerate() {
        if !known.is_empty() && !known.contains(&EnvName::new(entry.env())) {
            let names: Vec<_> = known.iter().map(EnvName::as_str).collect();
            problems.push(at(
                &format!("holds[{i}].env"),
                format!(
                    "unknown environment `{}` (known: {})",
                    entry.env(),
                    names.join(", ")
                ),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Policy {
        file: file.to_string(),
        environments,
        soak,
        freezes,
        windows: (!windows.is_empty()).then(|| WindowSet {
            file: file.to_string(),
            windows,
        }),
        max_bump: raw.semver.map(|s| s.max_bump),
        max_open_promotions: raw.max_open_promotions,
        break_glass: raw.break_glass.into_iter().collect(),
        approvers: raw.approvers.into_iter().collect(),
        require_health: raw.require_health,
        require_image: raw.require_image,
        require_pipeline: raw.require_pipeline,
        requesters: raw.requesters.into_iter().collect(),
        reviewers: raw.reviewers.into_iter().collect(),
        group: raw.group,
        holds: raw.holds.into_iter().map(|h| h.into_hold(file)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> BTreeSet<EnvName> {
        ["dev", "qa", "prod"]
            .into_iter()
            .map(EnvName::new)
            .collect()
    }

    const PROD: &str = "environments: [prod]\nsoak: 24h\nfreezes:\n  - name: year-end\n    yearly: {from: \"12-20\", to: \"01-03\"}\nsemver: {max_bump: minor}\nmax_open_promotions: 3\nbreak_glass: [alice]\n";

    #[test]
    fn parses_a_policy_file() {
        let p = parse("policies/prod.yaml", PROD.as_bytes(), &known()).unwrap();
        assert_eq!(p.soak, Some(Duration::from_secs(24 * 3600)));
        assert_eq!(p.freezes.len(), 1);
        assert_eq!(p.max_bump, Some(Bump::Minor));
        assert!(p.applies_to(&EnvName::new("prod")));
        assert!(!p.applies_to(&EnvName::new("qa")));
    }

    #[test]
    fn merges_the_strictest_values() {
        let a = parse("policies/a.yaml", PROD.as_bytes(), &known()).unwrap();
        let b = parse(
            "policies/b.yaml",
            b"soak: 1h\nmax_open_promotions: 1\nsemver: {max_bump: major}\nbreak_glass: [bob]\n",
            &known(),
        )
        .unwrap();
        let policies = Policies {
            files: vec![a, b],
            broken: Vec::new(),
        };
        let prod = policies.for_env(&EnvName::new("prod"));
        assert_eq!(
            prod.soak,
            Some((Duration::from_secs(86400), "policies/a.yaml".into()))
        );
        assert_eq!(prod.max_open_promotions, Some(1));
        assert_eq!(prod.max_bump, Some(Bump::Minor));
        assert_eq!(prod.break_glass.len(), 2);
        let qa = policies.for_env(&EnvName::new("qa"));
        assert_eq!(qa.soak.map(|s| s.0), Some(Duration::from_secs(3600)));
        assert!(qa.freezes.is_empty());
    }

    #[test]
    fn bad_policies_are_reported_with_lines() {
        let cases: &[(&str, &str)] = &[
            (
                "soak: an hour\n",
                "policies/p.yaml:1:7: invalid duration `an hour`",
            ),
            ("soka: 1h\n", "policies/p.yaml:1:1: unknown field `soka`"),
            (
                "environments: [prd]\n",
                "policies/p.yaml:1:16: unknown environment `prd` (known: dev, prod, qa)",
            ),
            (
                "allowed_windows: [\"9-17 * *\"]\n",
                "policies/p.yaml:1:19: invalid cron `9-17 * *`",
            ),
            (
                "freezes:\n  - name: x\n    yearly: {from: \"13-01\", to: \"01-01\"}\n",
                "policies/p.yaml:3:20: `13-01` is not a month and day",
            ),
            (
                "freezes:\n  - name: x\n",
                "policies/p.yaml:2:11: freeze `x` needs either yearly",
            ),
            (
                "freezes:\n  - name: x\n    start: 2026-01-02T00:00:00Z\n    end: 2026-01-01T00:00:00Z\n",
                "policies/p.yaml:4:10: freeze `x` ends before it starts",
            ),
            (
                "semver: {max_bump: huge}\n",
                "policies/p.yaml:1:20: semver.max_bump: unknown variant `huge`",
            ),
        ];
        for (text, want) in cases {
            let got: Vec<String> = parse("policies/p.yaml", text.as_bytes(), &known())
                .unwrap_err()
                .iter()
                .map(ToString::to_string)
                .collect();
            assert!(
                got.iter().any(|g| g.starts_with(want)),
                "want {want:?}, got {got:?}"
            );
        }
    }
}
