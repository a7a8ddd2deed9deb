//! Which GitLab commit statuses report an environment's health: the `health` block of
//! `environments/<env>.yaml` (exact status names, optionally the GitLab users who may post
//! them), its validation, the rule that no status name belongs to two environments, and the
//! match the health gate, the soak clock and recorded deployments all use.
//!
//! Every Flux that syncs the branch posts its statuses on the same commits, so a status counts
//! for an environment only when its name is one that environment lists, character for
//! character: no prefix, no case folding, nothing another cluster's status could satisfy.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Environment;
use crate::diagnostic::Diagnostic;
use crate::yaml::typed;

/// The `health` block as written in `environments/<env>.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HealthFile {
    /// The exact names of the commit statuses this environment's Flux posts.
    #[serde(default)]
    statuses: Option<Vec<String>>,
    /// The GitLab usernames whose statuses count; absent: anyone's.
    #[serde(default)]
    reporters: Option<Vec<String>>,
    /// The old prefix form (`kustomization/<name>/…`), refused with what to write instead.
    #[serde(default)]
    kustomizations: Option<Vec<String>>,
}

/// The statuses that report one environment's health.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthSource {
    /// Their exact names (`health.statuses`); empty when the environment names none.
    pub statuses: Vec<String>,
    /// The GitLab usernames that may post them (`health.reporters`); empty: anyone.
    pub reporters: Vec<String>,
}

impl HealthSource {
    /// Does a status named `name`, posted by the GitLab user `author`, report this
    /// environment's health? Only an exact, case-sensitive name counts, and, when reporters
    /// are listed, only from one of them.
    pub fn counts(&self, name: &str, author: Option<&str>) -> bool {
        self.statuses.iter().any(|own| own == name)
            && (self.reporters.is_empty()
                || author.is_some_and(|a| self.reporters.iter().any(|r| r == a)))
    }
}

/// The health source of a `health` block, or what is wrong with it (at the line of the key).
/// `env` and `path` are the environment's name and folder, for the suggested fix.
pub(super) fn source(
    file: &str,
    bytes: &[u8],
    env: &str,
    path: &str,
    raw: Option<HealthFile>,
) -> Result<HealthSource, Vec<Diagnostic>> {
    let Some(raw) = raw else {
        return Ok(HealthSource::default());
    };
    let example = format!("statuses: [kustomization/flux-system/{env}]");
    let setup = format!(
        "the Provider's spec.commitStatusExpr putting the Alert's eventMetadata env into the name, as {path}/flux-system/commit-status.yaml does"
    );
    let mut problems = Vec::new();
    if raw.kustomizations.is_some() {
        problems.push(typed::at_key(
            file,
            bytes,
            "health.kustomizations",
            format!(
                "health.kustomizations is no longer read: it matched every status named kustomization/<name>/…, which each cluster syncing this branch posts, so another environment's report counted as {env}'s; list {env}'s exact status names instead (`{example}`), with {setup}"
            ),
        ));
    }
    let names = raw.statuses.unwrap_or_default();
    if names.is_empty() && problems.is_empty() {
        problems.push(typed::at_key(
            file,
            bytes,
            "health",
            format!(
                "health.statuses is missing or empty: list the exact names of the commit statuses {env}'s Flux posts (`{example}`), or remove the health block"
            ),
        ));
    }
    for (i, name) in names.iter().enumerate() {
        if let Some(bad) = malformed(name) {
            problems.push(typed::at_key(
                file,
                bytes,
                &format!("health.statuses[{i}]"),
                format!(
                    "health.statuses[{i}] {bad}: write the status name exactly as Flux posts it (`{example}`)"
                ),
            ));
        }
    }
    // Absent means anyone's; written but empty would mean no one's, surely a mistake.
    if raw.reporters.as_ref().is_some_and(Vec::is_empty) {
        problems.push(typed::at_key(
            file,
            bytes,
            "health.reporters",
            format!(
                "health.reporters is empty: list the GitLab usernames {env}'s Flux posts as (its token's user), or remove the key to accept anyone's status"
            ),
        ));
    }
    let reporters = raw.reporters.unwrap_or_default();
    for (i, name) in reporters.iter().enumerate() {
        if let Some(bad) = malformed(name).or(name.contains(' ').then_some("holds a space")) {
            problems.push(typed::at_key(
                file,
                bytes,
                &format!("health.reporters[{i}]"),
                format!(
                    "health.reporters[{i}] {bad}: write the GitLab username of the token {env}'s Flux posts with"
                ),
            ));
        }
    }
    if problems.is_empty() {
        Ok(HealthSource {
            statuses: names,
            reporters,
        })
    } else {
        Err(problems)
    }
}

/// What is wrong with a name as written, if anything.
fn malformed(name: &str) -> Option<&'static str> {
    if name.trim().is_empty() {
        Some("is empty")
    } else if name.trim() != name {
        Some("has spaces around it")
    } else if name.chars().any(char::is_control) {
        Some("holds a control character")
    } else {
        None
    }
}

/// The rule that one status name reports one environment: every name listed by two or more
/// environments gets a diagnostic at each listing (naming the other files) and is removed from
/// all of them, so that it counts for none (fail safe: a health gate whose upstream lists no
/// status left blocks). `sources` holds each environment file's text, for the lines.
pub(super) fn claimed_twice(
    environments: &mut [Environment],
    sources: &BTreeMap<String, Vec<u8>>,
) -> Vec<Diagnostic> {
    let mut claims: BTreeMap<&str, Vec<(usize, usize)>> = BTreeMap::new();
    for (e, env) in environments.iter().enumerate() {
        for (i, name) in env.health.statuses.iter().enumerate() {
            let listed = claims.entry(name.as_str()).or_default();
            // A name listed twice in one file is harmless: it is still one environment's.
            if !listed.iter().any(|(other, _)| *other == e) {
                listed.push((e, i));
            }
        }
    }
    let mut problems = Vec::new();
    let mut shared = Vec::new();
    for (name, listed) in claims.iter().filter(|(_, l)| l.len() > 1) {
        for (e, i) in listed {
            let env = &environments[*e];
            let others: Vec<String> = listed
                .iter()
                .filter(|(o, _)| o != e)
                .map(|(o, _)| environments[*o].file.clone())
                .collect();
            let bytes = sources
                .get(&env.file)
                .map(Vec::as_slice)
                .unwrap_or_default();
            problems.push(typed::at_key(
                &env.file,
                bytes,
                &format!("health.statuses[{i}]"),
                format!(
                    "status `{name}` is also listed in {}: one status must report one environment, or one cluster's report passes another's gate; give each environment's Flux its own status name (its env in the Provider's commitStatusExpr) and list only that here. Until then `{name}` counts for neither",
                    others.join(", ")
                ),
            ));
        }
        shared.push(name.to_string());
    }
    for env in environments.iter_mut() {
        env.health.statuses.retain(|n| !shared.contains(n));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_the_exact_name_counts() {
        let qa = HealthSource {
            statuses: names(&["kustomization/flux-system/qa"]),
            reporters: Vec::new(),
        };
        assert!(qa.counts("kustomization/flux-system/qa", None));
        // The bug this replaces: any cluster's default status shared the prefix.
        for foreign in [
            "kustomization/flux-system/d3adbeef",
            "kustomization/flux-system/dev",
            "kustomization/flux-system/prod",
            "kustomization/flux-system/qa-old",
            "kustomization/flux-system/qa/x",
            "Kustomization/flux-system/qa",
            "kustomization/flux-system/",
            "kustomization/flux-system",
            "",
        ] {
            assert!(!qa.counts(foreign, None), "{foreign} must not count");
        }
        assert!(!HealthSource::default().counts("kustomization/flux-system/qa", None));
    }

    #[test]
    fn with_reporters_only_their_statuses_count() {
        let qa = HealthSource {
            statuses: names(&["kustomization/flux-system/qa"]),
            reporters: names(&["flux-qa"]),
        };
        assert!(qa.counts("kustomization/flux-system/qa", Some("flux-qa")));
        assert!(!qa.counts("kustomization/flux-system/qa", Some("mallory")));
        assert!(!qa.counts("kustomization/flux-system/qa", Some("Flux-qa")));
        assert!(!qa.counts("kustomization/flux-system/qa", None));
        assert!(!qa.counts("kustomization/flux-system/dev", Some("flux-qa")));
    }

    fn parse(text: &str) -> Result<HealthSource, Vec<Diagnostic>> {
        #[derive(Deserialize)]
        struct File {
            health: Option<HealthFile>,
        }
        let file: File = serde_yaml::from_str(text).unwrap();
        source(
            "environments/qa.yaml",
            text.as_bytes(),
            "qa",
            "clusters/qa",
            file.health,
        )
    }

    #[test]
    fn statuses_are_read_as_written() {
        assert_eq!(parse("x: 1\n").unwrap(), HealthSource::default());
        assert_eq!(
            parse("health:\n  statuses: [kustomization/flux-system/qa, a/b/c]\n").unwrap(),
            HealthSource {
                statuses: names(&["kustomization/flux-system/qa", "a/b/c"]),
                reporters: Vec::new(),
            }
        );
        assert_eq!(
            parse("health:\n  statuses: [s]\n  reporters: [flux-qa]\n")
                .unwrap()
                .reporters,
            names(&["flux-qa"])
        );
    }

    #[test]
    fn the_old_prefix_form_is_refused_with_what_to_write() {
        let problems = parse("name: qa\nhealth:\n  kustomizations: [flux-system]\n").unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        let text = problems[0].to_string();
        assert!(
            text.starts_with("environments/qa.yaml:3:"),
            "at the key's line: {text}"
        );
        assert!(
            text.contains("`statuses: [kustomization/flux-system/qa]`")
                && text.contains("clusters/qa/flux-system/commit-status.yaml"),
            "{text}"
        );
    }

    #[test]
    fn empty_or_blank_names_are_refused_at_their_line() {
        let problems = parse("health:\n  statuses: []\n").unwrap_err();
        assert!(
            problems[0]
                .message
                .contains("health.statuses is missing or empty"),
            "{problems:?}"
        );
        let problems = parse("health:\n  statuses:\n    - a\n    - \" b\"\n").unwrap_err();
        assert_eq!(
            problems[0].to_string().split(": ").next().unwrap(),
            "environments/qa.yaml:4:7"
        );
        assert!(problems[0].message.contains("has spaces around it"));
        let problems = parse("health:\n  statuses: [s]\n  reporters: []\n").unwrap_err();
        assert!(
            problems[0]
                .to_string()
                .starts_with("environments/qa.yaml:3:")
                && problems[0].message.contains("health.reporters is empty"),
            "{problems:?}"
        );
        let problems = parse("health:\n  statuses: [s]\n  reporters: [flux qa]\n").unwrap_err();
        assert!(
            problems[0].message.contains("holds a space"),
            "{problems:?}"
        );
    }

    fn env(name: &str, statuses: &[&str]) -> Environment {
        Environment {
            name: crate::model::EnvName::new(name),
            path: format!("clusters/{name}"),
            promotes_from: None,
            schedule: None,
            schedule_text: None,
            timezone: chrono_tz::UTC,
            auto_merge: false,
            approvals_required: 0,
            services: BTreeMap::new(),
            health: HealthSource {
                statuses: names(statuses),
                reporters: Vec::new(),
            },
            file: format!("environments/{name}.yaml"),
        }
    }

    #[test]
    fn a_status_two_environments_list_is_reported_in_both_and_counts_for_neither() {
        let mut environments = vec![
            env("dev", &["kustomization/flux-system/dev", "shared"]),
            env("qa", &["kustomization/flux-system/qa", "shared", "shared"]),
            env("prod", &["kustomization/flux-system/prod"]),
        ];
        let sources = BTreeMap::from([(
            "environments/qa.yaml".to_string(),
            b"name: qa\nhealth:\n  statuses:\n    - kustomization/flux-system/qa\n    - shared\n"
                .to_vec(),
        )]);
        let problems = claimed_twice(&mut environments, &sources);
        assert_eq!(problems.len(), 2, "{problems:?}");
        let qa = problems
            .iter()
            .find(|p| p.path.ends_with("qa.yaml"))
            .unwrap();
        assert_eq!(qa.line, Some(5), "{qa}");
        assert!(
            qa.message
                .starts_with("status `shared` is also listed in environments/dev.yaml"),
            "{qa}"
        );
        assert_eq!(
            environments[0].health.statuses,
            names(&["kustomization/flux-system/dev"])
        );
        assert_eq!(
            environments[1].health.statuses,
            names(&["kustomization/flux-system/qa"])
        );
        assert!(claimed_twice(&mut environments, &sources).is_empty());
    }

    #[test]
    fn distinct_names_are_no_overlap_even_when_one_starts_with_another() {
        let mut environments = vec![
            env("dev", &["kustomization/flux-system/qa"]),
            env("qa", &["kustomization/flux-system/qa-eu"]),
        ];
        assert!(claimed_twice(&mut environments, &BTreeMap::new()).is_empty());
    }
}
