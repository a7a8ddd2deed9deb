//! `environments/<env>.yaml`: one file per environment, and the promotion chain they form
//! through `promotes_from`. Parsing and validation only; problems become [`Diagnostic`]s.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

use super::Tree;
use super::health::{self, HealthFile, HealthSource};
use crate::diagnostic::Diagnostic;
use crate::model::EnvName;
use crate::yaml::typed;

/// The directory that holds one file per environment.
pub const DIR: &str = "environments";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvironmentFile {
    name: String,
    path: String,
    promotes_from: Option<String>,
    schedule: Option<String>,
    timezone: Option<String>,
    #[serde(default)]
    auto_merge: bool,
    #[serde(default)]
    approvals_required: u32,
    #[serde(default)]
    services: BTreeMap<String, ServiceOverride>,
    #[serde(default)]
    health: Option<HealthFile>,
}

/// Where a service's image lives in its `values.yaml`, for charts that do not use
/// `image.name`/`image.repository` + `image.tag` or an `image: repo:tag` string.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceOverride {
    /// YAML path of the tag scalar, e.g. `app.image.version`.
    pub tag_path: Option<String>,
    /// YAML path of the repository scalar that goes with `tag_path`.
    pub repository_path: Option<String>,
    /// YAML path of a full `repository:tag` string, e.g. `app.image`.
    pub ref_path: Option<String>,
}

/// One environment.
#[derive(Debug, Clone)]
pub struct Environment {
    /// Its name.
    pub name: EnvName,
    /// Its folder, e.g. `clusters/qa`.
    pub path: String,
    /// The environment whose tags it takes; `None` for the first.
    pub promotes_from: Option<EnvName>,
    /// When its nightly train runs: cron with seconds, in `timezone`.
    pub schedule: Option<cron::Schedule>,
    /// The schedule as written.
    pub schedule_text: Option<String>,
    /// The environment's time zone (UTC when not set).
    pub timezone: chrono_tz::Tz,
    /// Whether promoter merges approved promotion MRs itself.
    pub auto_merge: bool,
    /// Approvals from allowed approvers before a merge.
    pub approvals_required: u32,
    /// Per-service image locations.
    pub services: BTreeMap<String, ServiceOverride>,
    /// The GitLab commit statuses that report this environment's health (`health`).
    pub health: HealthSource,
    /// The file it was read from.
    pub file: String,
}

/// Reads every `environments/*.yaml` (and `.yml`); returns the environments that are valid and
/// a diagnostic for each problem, including the chain's (unknown `promotes_from`, cycles).
pub fn load(tree: &dyn Tree) -> (Vec<Environment>, Vec<Diagnostic>) {
    let mut environments = Vec::new();
    let mut problems = Vec::new();
    let entries = match tree.list(DIR) {
        Ok(entries) => entries,
        Err(e) => {
            return (
                environments,
                vec![Diagnostic::file(DIR, format!("cannot list: {e}"))],
            );
        }
    };
    // The text of each valid file (to point chain problems at their line), and the files that
    // are invalid by the environment name their file name gives.
    let mut sources: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut invalid: BTreeMap<String, String> = BTreeMap::new();
    for entry in entries.iter().filter(|e| !e.is_dir && is_yaml(&e.name)) {
        let file = format!("{DIR}/{}", entry.name);
        match tree.read(&file) {
            Ok(bytes) => match parse(&file, &bytes) {
                Ok(env) => {
                    environments.push(env);
                    sources.insert(file, bytes);
                }
                Err(mut found) => {
                    problems.append(&mut found);
                    invalid.insert(stem(&file).to_string(), file);
                }
            },
            Err(e) => {
                problems.push(Diagnostic::file(&file, format!("cannot read: {e}")));
                invalid.insert(stem(&file).to_string(), file);
            }
        }
    }
    if environments.is_empty() && problems.is_empty() {
        problems.push(Diagnostic::file(
            DIR,
            "no environments: add environments/<env>.yaml files (see README.md)",
        ));
    }
    let chain_problems = validate_chain(&mut environments, &sources, &invalid);
    problems.extend(chain_problems);
    problems.extend(health::claimed_twice(&mut environments, &sources));
    (environments, problems)
}

/// The environment names the files in `environments/` stand for (their names without
/// extension), valid or not.
pub fn file_names(tree: &dyn Tree) -> Vec<String> {
    tree.list(DIR)
        .unwrap_or_default()
        .iter()
        .filter(|e| !e.is_dir && is_yaml(&e.name))
        .map(|e| stem(&e.name).to_string())
        .collect()
}

/// The file name without folder and extension: the environment name it should hold.
fn stem(file: &str) -> &str {
    file.rsplit('/')
        .next()
        .unwrap_or(file)
        .trim_end_matches(".yaml")
        .trim_end_matches(".yml")
}

pub(crate) fn is_yaml(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

fn parse(file: &str, bytes: &[u8]) -> Result<Environment, Vec<Diagnostic>> {
    let raw: EnvironmentFile = typed::parse(file, bytes).map_err(|d| vec![d])?;
    let mut problems = Vec::new();
    let stem = stem(file);
    if raw.name != stem {
        problems.push(typed::at_key(
            file,
            bytes,
            "name",
            format!(
                "name `{}` differs from the file name `{stem}`: name the file environments/{}.yaml",
                raw.name, raw.name
            ),
        ));
    }
    if !is_valid_name(&raw.name) {
        problems.push(typed::at_key(
            file,
            bytes,
            "name",
            format!(
                "`{}` is not a valid environment name: use lowercase letters, digits and `-`",
                raw.name
            ),
        ));
    }
    let path = raw.path.trim_end_matches('/').to_string();
    if path.is_empty()
        || path.starts_with('/')
        || path
            .split('/')
            .any(|c| c == ".." || c == "." || c.is_empty())
    {
        problems.push(typed::at_key(
            file,
            bytes,
            "path",
            format!(
                "path `{}` must be a relative folder inside the repository, like clusters/{}",
                raw.path, raw.name
            ),
        ));
    }
    let schedule = match &raw.schedule {
        None => None,
        Some(text) => match crate::policy::window::parse_cron(text) {
            Ok(s) => Some(s),
            Err(e) => {
                problems.push(typed::at_key(
                    file,
                    bytes,
                    "schedule",
                    format!(
                        "invalid cron `{text}`: {e}; write 6 fields with seconds, e.g. \"0 0 2 * * *\" (02:00 daily) or \"0 0 9 * * Tue,Thu\""
                    ),
                ));
                None
            }
        },
    };
    let timezone = match &raw.timezone {
        None => chrono_tz::UTC,
        Some(text) => {
            match text.parse::<chrono_tz::Tz>() {
                Ok(tz) => tz,
                Err(_) => {
                    problems.push(typed::at_key(
                    file,
                    bytes,
                    "timezone",
                    format!("unknown time zone `{text}`: use an IANA name such as Europe/London or UTC"),
                ));
                    chrono_tz::UTC
                }
            }
        }
    };
    for (service, o) in &raw.services {
        let key = format!("services.{service}");
        let message = match (&o.tag_path, &o.ref_path, &o.repository_path) {
            (Some(_), None, _) | (None, Some(_), None) => None,
            (Some(_), Some(_), _) => Some("set either tag_path or ref_path, not both"),
            (None, Some(_), Some(_)) => {
                Some("repository_path goes with tag_path, not with ref_path")
            }
            (None, None, _) => Some("set tag_path (with optional repository_path) or ref_path"),
        };
        if let Some(message) = message {
            problems.push(typed::at_key(
                file,
                bytes,
                &key,
                format!("services.{service}: {message}"),
            ));
        }
        for p in [&o.tag_path, &o.ref_path, &o.repository_path]
            .into_iter()
            .flatten()
        {
            if let Err(e) = p.parse::<crate::yaml::YamlPath>() {
                problems.push(typed::at_key(
                    file,
                    bytes,
                    &key,
                    format!("services.{service}: {e}"),
                ));
            }
        }
    }
    let health = match health::source(file, bytes, &raw.name, &path, raw.health) {
        Ok(source) => source,
        Err(mut found) => {
            problems.append(&mut found);
            HealthSource::default()
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Environment {
        name: EnvName::new(raw.name),
        path,
        promotes_from: raw.promotes_from.map(EnvName::new),
        schedule,
        schedule_text: raw.schedule,
        timezone,
        auto_merge: raw.auto_merge,
        approvals_required: raw.approvals_required,
        services: raw.services,
        health,
        file: file.to_string(),
    })
}

/// Environment and service names end up in branch names and labels: keep them plain.
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
        && !name.contains("..")
}

/// Checks `promotes_from` links and orders the environments so that each comes after the one
/// it promotes from (dev, qa, prod). An environment whose chain does not lead back to a first
/// environment (an unknown or invalid upstream, a cycle) is removed, with a diagnostic at its
/// `promotes_from`: promoting into it from an environment promoter cannot read is unsafe.
fn validate_chain(
    environments: &mut Vec<Environment>,
    sources: &BTreeMap<String, Vec<u8>>,
    invalid: &BTreeMap<String, String>,
) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for env in environments.iter() {
        if !seen.insert(env.name.clone()) {
            problems.push(Diagnostic::file(
                &env.file,
                format!("environment `{}` is defined twice", env.name),
            ));
        }
    }
    let mut by_name: BTreeMap<&EnvName, &Environment> = BTreeMap::new();
    for env in environments.iter() {
        by_name.entry(&env.name).or_insert(env);
    }
    let mut broken: HashSet<EnvName> = HashSet::new();
    let mut depth: BTreeMap<EnvName, usize> = BTreeMap::new();
    for env in environments.iter() {
        match chain(env, &by_name, invalid) {
            Ok(d) => {
                depth.insert(env.name.clone(), d);
            }
            Err(message) => {
                let bytes = sources.get(&env.file).map_or(&[][..], Vec::as_slice);
                problems.push(typed::at_key(&env.file, bytes, "promotes_from", message));
                broken.insert(env.name.clone());
            }
        }
    }
    environments.retain(|e| !broken.contains(&e.name));
    // Order: by depth in the chain, then by name.
    environments.sort_by(|a, b| {
        depth
            .get(&a.name)
            .cmp(&depth.get(&b.name))
            .then_with(|| a.name.cmp(&b.name))
    });
    problems
}

/// The number of steps from `env` back to a first environment, or what breaks the chain.
fn chain(
    env: &Environment,
    by_name: &BTreeMap<&EnvName, &Environment>,
    invalid: &BTreeMap<String, String>,
) -> Result<usize, String> {
    let Some(up) = &env.promotes_from else {
        return Ok(0);
    };
    if *up == env.name {
        return Err(format!(
            "`{up}` promotes from itself: name the environment before it, or leave promotes_from out on the first environment"
        ));
    }
    let left_out = |name: &EnvName| {
        format!(
            "promotes_from `{up}`, which is left out: fix {} first",
            by_name.get(name).map_or("it", |e| e.file.as_str())
        )
    };
    let mut path = vec![env.name.clone()];
    let mut at = up.clone();
    loop {
        let Some(next) = by_name.get(&at) else {
            if path.len() > 1 {
                return Err(left_out(up));
            }
            return Err(match invalid.get(at.as_str()) {
                Some(file) => {
                    format!("promotes_from `{at}`, whose file {file} is invalid: fix it first")
                }
                None => {
                    let known: Vec<&str> = by_name.keys().map(|n| n.as_str()).collect();
                    format!(
                        "promotes_from `{at}` is not an environment (known: {}): name one of them, or leave promotes_from out on the first environment",
                        known.join(", ")
                    )
                }
            });
        };
        if path.contains(&at) {
            if at != env.name {
                return Err(left_out(up));
            }
            let cycle: Vec<&str> = path
                .iter()
                .map(EnvName::as_str)
                .chain([at.as_str()])
                .collect();
            return Err(format!(
                "promotes_from forms a cycle: {}; the first environment (whose tags come from CI) must have no promotes_from",
                cycle.join(" <- ")
            ));
        }
        path.push(at.clone());
        match &next.promotes_from {
            None => return Ok(path.len() - 1),
            Some(up) => at = up.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::tree::MemTree;

    fn env_file(name: &str, extra: &str) -> String {
        format!("name: {name}\npath: clusters/{name}\n{extra}")
    }

    #[test]
    fn loads_a_chain_in_order() {
        let mut tree = MemTree::new();
        tree.insert("environments/prod.yaml", env_file("prod", "promotes_from: qa\nschedule: \"0 0 9 * * Tue,Thu\"\ntimezone: Europe/London\napprovals_required: 2\n"))
            .insert("environments/dev.yaml", env_file("dev", ""))
            .insert("environments/qa.yaml", env_file("qa", "promotes_from: dev\nauto_merge: true\napprovals_required: 1\n"));
        let (envs, problems) = load(&tree);
        assert!(problems.is_empty(), "{problems:?}");
        let names: Vec<_> = envs.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["dev", "qa", "prod"]);
        assert_eq!(envs[2].timezone, chrono_tz::Europe::London);
        assert!(envs[2].schedule.is_some());
        assert!(envs[1].auto_merge);
        assert_eq!(envs[2].approvals_required, 2);
    }

    fn problems_of(files: &[(&str, String)]) -> Vec<String> {
        let mut tree = MemTree::new();
        for (path, text) in files {
            tree.insert(path, text.as_str());
        }
        load(&tree).1.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn reports_bad_files_with_line_and_advice() {
        let cases: &[(&str, String, &str)] = &[
            (
                "environments/qa.yaml",
                env_file("qa", "shedule: x\n"),
                "environments/qa.yaml:3:1: unknown field `shedule`",
            ),
            (
                "environments/qa.yaml",
                env_file("qa", "schedule: \"0 2 * * *\"\n"),
                "environments/qa.yaml:3:11: invalid cron `0 2 * * *`",
            ),
            (
                "environments/qa.yaml",
                env_file("qa", "timezone: Mars/Base\n"),
                "environments/qa.yaml:3:11: unknown time zone `Mars/Base`",
            ),
            (
                "environments/qa.yaml",
                env_file("staging", ""),
                "environments/qa.yaml:1:7: name `staging` differs from the file name `qa`",
            ),
            (
                "environments/qa.yaml",
                "name: qa\npath: ../etc\n".to_string(),
                "environments/qa.yaml:2:7: path `../etc` must be a relative folder",
            ),
            (
                "environments/qa.yaml",
                env_file("qa", "promotes_from: dve\n"),
                "environments/qa.yaml:3:16: promotes_from `dve` is not an environment (known: qa): name one of them",
            ),
            (
                "environments/qa.yaml",
                "name: qa\n".to_string(),
                "environments/qa.yaml:1:1: missing field `path`",
            ),
            (
                "environments/qa.yaml",
                env_file("qa", "services:\n  app: {}\n"),
                "environments/qa.yaml:4:8: services.app: set tag_path",
            ),
        ];
        for (path, text, want) in cases {
            let got = problems_of(&[(path, text.clone())]);
            assert!(
                got.iter().any(|p| p.starts_with(want)),
                "want {want:?}, got {got:?}"
            );
        }
    }

    #[test]
    fn a_cycle_is_reported_and_its_members_dropped() {
        let mut tree = MemTree::new();
        tree.insert("environments/a.yaml", env_file("a", "promotes_from: b\n"))
            .insert("environments/b.yaml", env_file("b", "promotes_from: a\n"))
            .insert("environments/c.yaml", env_file("c", ""));
        let (envs, problems) = load(&tree);
        assert_eq!(
            envs.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            ["c"]
        );
        let text: Vec<_> = problems.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|p| p.contains("promotes_from forms a cycle: a <- b <- a")),
            "{text:?}"
        );
    }

    #[test]
    fn what_promotes_from_a_broken_environment_is_dropped_too() {
        let mut tree = MemTree::new();
        tree.insert("environments/dev.yaml", env_file("dev", ""))
            .insert("environments/qa.yaml", "name: [qa\n")
            .insert(
                "environments/prod.yaml",
                env_file("prod", "promotes_from: qa\n"),
            )
            .insert(
                "environments/eu.yaml",
                env_file("eu", "promotes_from: us\n"),
            )
            .insert(
                "environments/us.yaml",
                env_file("us", "promotes_from: nope\n"),
            );
        let (envs, problems) = load(&tree);
        assert_eq!(
            envs.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            ["dev"]
        );
        let text: Vec<_> = problems.iter().map(ToString::to_string).collect();
        for want in [
            "environments/prod.yaml:3:16: promotes_from `qa`, whose file environments/qa.yaml is invalid: fix it first",
            "environments/eu.yaml:3:16: promotes_from `us`, which is left out: fix environments/us.yaml first",
            "environments/us.yaml:3:16: promotes_from `nope` is not an environment (known: dev, eu, prod, us): name one of them, or leave promotes_from out on the first environment",
        ] {
            assert!(text.iter().any(|p| p == want), "{want} in {text:#?}");
        }
    }

    #[test]
    fn names_must_be_plain() {
        for ok in ["dev", "prod-eu", "qa2", "a.b"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "Dev", "a/b", "..", "a..b", "-x", "x-", "a b", "ünï"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
