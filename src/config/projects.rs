//! `projects:`, the GitLab projects one daemon serves. Each entry names a project and the keys
//! that differ per project (its GitLab project, git URL and branch, state folder, webhook
//! secret, MR templates); everything else (the GitLab host and token, the author and signing
//! key, chat-ops, announcements, registries, the resync interval) comes from the top level.
//! [`Settings::projects`] turns each entry into the whole [`Settings`] of one project, so the
//! daemon runs every project through the same path as a single-project configuration.

use std::collections::BTreeSet;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use super::{Error, Settings, secret};

/// One entry of `projects:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectSection {
    /// The name the daemon knows the project by: in URLs (`/projects/<name>/`), logs and the
    /// `project` label of the metrics. Lower-case letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// `gitlab.project` (required), and `gitlab.url` / `gitlab.token` / `gitlab.token_file`
    /// when this project lives on another GitLab host than the top level's.
    #[serde(default)]
    pub gitlab: ProjectGitlab,
    /// `git.url` (required) and `git.branch`.
    #[serde(default)]
    pub git: ProjectGit,
    /// The project's own state folder; default `<state_dir>/<name>`.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// `server.webhook_secret` of this project's webhooks; default the top level's.
    #[serde(default)]
    pub server: ProjectServer,
    /// MR templates of this project; default the top level's.
    #[serde(default)]
    pub templates_dir: Option<PathBuf>,
}

/// `projects[].gitlab.*`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectGitlab {
    /// Project id or `group/name` path.
    #[serde(default)]
    pub project: Option<String>,
    /// Another GitLab host for this project.
    #[serde(default)]
    pub url: Option<String>,
    /// The token for `url` (mutually exclusive with `token_file`).
    #[serde(default, deserialize_with = "secret")]
    pub token: Option<SecretString>,
    /// A file holding the token for `url`.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

/// `projects[].git.*`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectGit {
    /// Clone and push URL of the project's repository.
    #[serde(default)]
    pub url: Option<String>,
    /// The branch its environments live on; default the top level's `git.branch`.
    #[serde(default)]
    pub branch: Option<String>,
}

/// `projects[].server.*`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectServer {
    /// The project's `X-Gitlab-Token`.
    #[serde(default, deserialize_with = "secret")]
    pub webhook_secret: Option<SecretString>,
}

/// One project as the daemon serves it: its name and its whole settings.
#[derive(Debug, Clone)]
pub struct Project {
    /// `projects[].name`.
    pub name: String,
    /// The top level with this project's keys laid over it (`projects` emptied).
    pub settings: Settings,
}

impl Settings {
    /// The projects to serve: one per `projects:` entry, each the top level with the entry's
    /// keys laid over it; empty when `projects:` is not set (the top level is the one project).
    ///
    /// Checks what would make two projects step on each other or leave one ambiguous: names
    /// unique and usable in a URL, `gitlab.project` and `git.url` set in every entry and not at
    /// the top level, no two entries with the same GitLab project or state folder. Every
    /// secret of an entry is registered with [`crate::redact`].
    pub fn projects(&self) -> Result<Vec<Project>, Error> {
        if self.projects.is_empty() {
            return Ok(Vec::new());
        }
        for (key, set) in [
            ("gitlab.project", self.gitlab.project.is_some()),
            ("git.url", self.git.url.is_some()),
        ] {
            if set {
                return Err(Error::Project {
                    key: key.to_string(),
                    problem: "set in each entry of `projects:`, not at the top level, when `projects:` is set".to_string(),
                });
            }
        }
        let mut names = BTreeSet::new();
        let mut gitlab_projects = BTreeSet::new();
        let mut state_dirs = BTreeSet::new();
        let mut projects = Vec::with_capacity(self.projects.len());
        for (i, entry) in self.projects.iter().enumerate() {
            let key = |field: &str| format!("projects[{i}].{field}");
            let problem = |field: &str, problem: String| Error::Project {
                key: key(field),
                problem,
            };
            check_name(&entry.name).map_err(|p| problem("name", p))?;
            if !names.insert(entry.name.clone()) {
                return Err(problem(
                    "name",
                    format!("{:?} names two projects: give each its own", entry.name),
                ));
            }
            let project = required(&entry.gitlab.project)
                .ok_or_else(|| problem("gitlab.project", "required but not set".to_string()))?;
            let host = entry.gitlab.url.as_deref().or(self.gitlab.url.as_deref());
            if !gitlab_projects.insert((host.map(str::to_string), project.to_lowercase())) {
                return Err(problem(
                    "gitlab.project",
                    format!("{project:?} is served by an earlier entry already"),
                ));
            }
            required(&entry.git.url)
                .ok_or_else(|| problem("git.url", "required but not set".to_string()))?;
            let settings = self.laid_over_by(entry);
            if !state_dirs.insert(settings.state_dir.clone()) {
                return Err(problem(
                    "state_dir",
                    format!(
                        "{} is an earlier entry's state folder: each project needs its own",
                        settings.state_dir.display()
                    ),
                ));
            }
            settings.register_secrets();
            // The GitLab URL and token (another host's included) are checked now, so a mistake
            // stops the daemon at start naming the entry rather than failing one project later.
            if let Err(error) = settings.for_gitlab() {
                let cause = std::error::Error::source(&error)
                    .map(|source| format!(": {source}"))
                    .unwrap_or_default();
                return Err(Error::Project {
                    key: format!("projects[{i}]"),
                    problem: format!("{error}{cause}"),
                });
            }
            projects.push(Project {
                name: entry.name.clone(),
                settings,
            });
        }
        Ok(projects)
    }

    /// The top level with `entry`'s keys laid over it.
    fn laid_over_by(&self, entry: &ProjectSection) -> Settings {
        let mut settings = self.clone();
        settings.projects = Vec::new();
        settings.gitlab.project = entry.gitlab.project.clone();
        if entry.gitlab.url.is_some() {
            // Another host: its own token, never the top level's.
            settings.gitlab.url = entry.gitlab.url.clone();
            settings.gitlab.token = entry.gitlab.token.clone();
            settings.gitlab.token_file = entry.gitlab.token_file.clone();
        } else if entry.gitlab.token.is_some() || entry.gitlab.token_file.is_some() {
            settings.gitlab.token = entry.gitlab.token.clone();
            settings.gitlab.token_file = entry.gitlab.token_file.clone();
        }
        settings.git.url = entry.git.url.clone();
        if let Some(branch) = &entry.git.branch {
            settings.git.branch = branch.clone();
        }
        settings.state_dir = entry
            .state_dir
            .clone()
            .unwrap_or_else(|| self.state_dir.join(&entry.name));
        if entry.server.webhook_secret.is_some() {
            settings.server.webhook_secret = entry.server.webhook_secret.clone();
        }
        if entry.templates_dir.is_some() {
            settings.templates_dir = entry.templates_dir.clone();
        }
        settings
    }
}

/// The trimmed value of an optional key, when it is set and not blank.
fn required(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A project name goes into URLs, file names and label values: 1 to 63 of `a-z 0-9 - _ .`,
/// starting with a letter or digit.
fn check_name(name: &str) -> Result<(), String> {
    let fits = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if fits {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a usable name: use 1 to 63 lower-case letters, digits, `-`, `_` or `.`, starting with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load;

    fn settings(text: &str) -> Result<Settings, Error> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("promoter.yaml");
        std::fs::write(&path, text).unwrap();
        load(Some(&path), Some(Default::default()))
    }

    const TWO: &str = "gitlab:\n  url: https://gitlab.example.com\n  token: t0ken-top\nstate_dir: /var/lib/promoter\nserver:\n  webhook_secret: shared-secret\nprojects:\n  - name: calculator\n    gitlab:\n      project: acme/calculator\n    git:\n      url: https://gitlab.example.com/acme/calculator.git\n  - name: billing\n    gitlab:\n      project: 77\n    git:\n      url: https://gitlab.example.com/acme/billing.git\n      branch: production\n    server:\n      webhook_secret: billing-secret\n    state_dir: /data/billing\n";

    #[test]
    fn each_entry_is_the_top_level_with_its_keys_laid_over() {
        let projects = settings(TWO).unwrap().projects().unwrap();
        let names: Vec<&str> = projects.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["calculator", "billing"]);
        let calculator = &projects[0].settings;
        assert_eq!(
            calculator.gitlab.project.as_deref(),
            Some("acme/calculator")
        );
        assert_eq!(calculator.git.branch, "main");
        assert_eq!(
            calculator.state_dir,
            PathBuf::from("/var/lib/promoter/calculator")
        );
        use secrecy::ExposeSecret;
        let secret = |s: &Settings| {
            s.server
                .webhook_secret
                .as_ref()
                .map(|s| s.expose_secret().to_string())
        };
        assert_eq!(secret(calculator).as_deref(), Some("shared-secret"));
        let billing = &projects[1].settings;
        assert_eq!(billing.gitlab.project.as_deref(), Some("77"));
        assert_eq!(billing.git.branch, "production");
        assert_eq!(billing.state_dir, PathBuf::from("/data/billing"));
        assert_eq!(secret(billing).as_deref(), Some("billing-secret"));
        assert!(billing.projects.is_empty());
        assert_eq!(
            billing.gitlab.token.as_ref().map(|t| t.expose_secret()),
            Some("t0ken-top")
        );
    }

    #[test]
    fn a_single_project_configuration_has_no_projects() {
        let single =
            "gitlab:\n  project: acme/calculator\ngit:\n  url: file:///srv/calculator.git\n";
        assert!(settings(single).unwrap().projects().unwrap().is_empty());
    }

    #[test]
    fn mistakes_name_the_entry_and_the_key() {
        let cases = [
            (
                TWO.replace("name: billing", "name: calculator"),
                "projects[1].name: \"calculator\" names two projects",
            ),
            (
                TWO.replace("name: billing", "name: Billing/Team"),
                "projects[1].name: \"Billing/Team\" is not a usable name",
            ),
            (
                TWO.replace("project: 77", "project: ACME/Calculator"),
                "projects[1].gitlab.project: \"ACME/Calculator\" is served by an earlier entry",
            ),
            (
                TWO.replace(
                    "      url: https://gitlab.example.com/acme/billing.git\n",
                    "",
                ),
                "projects[1].git.url: required but not set",
            ),
            (
                TWO.replace(
                    "state_dir: /data/billing",
                    "state_dir: /var/lib/promoter/calculator",
                ),
                "projects[1].state_dir: /var/lib/promoter/calculator is an earlier entry's state folder",
            ),
            (
                TWO.replace(
                    "    gitlab:\n      project: 77\n",
                    "    gitlab:\n      project: 77\n      url: https://other.example\n",
                ),
                "projects[1]: gitlab.token / gitlab.token_file: set exactly one of them (neither",
            ),
            (
                TWO.replace(
                    "  token: t0ken-top\n",
                    "  token: t0ken-top\n  project: acme/x\n",
                ),
                "gitlab.project: set in each entry of `projects:`, not at the top level",
            ),
        ];
        for (text, expected) in cases {
            let error = settings(&text).unwrap().projects().unwrap_err().to_string();
            assert!(error.starts_with(expected), "{error}");
        }
    }

    #[test]
    fn an_unknown_key_in_an_entry_is_refused() {
        let text = TWO.replace(
            "    state_dir: /data/billing\n",
            "    state_dri: /data/billing\n",
        );
        let error = format!("{:#}", anyhow::Error::new(settings(&text).unwrap_err()));
        assert!(error.contains("state_dri"), "{error}");
    }

    #[test]
    fn an_entrys_secrets_never_show_in_debug() {
        let settings = settings(TWO).unwrap();
        let text = format!("{:?}", settings.projects().unwrap());
        assert!(!text.contains("billing-secret") && !text.contains("t0ken-top"));
    }
}
