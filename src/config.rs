//! Settings: the operator's configuration, layered with the `config` crate as built-in
//! defaults, then a YAML file (`promoter.yaml` or `--config FILE`), then environment variables
//! `PROMOTER__<SECTION>__<KEY>`. Owns the key names, their defaults, unknown-key rejection,
//! duration parsing and the checks an adapter needs before it starts ([`Settings::for_gitlab`],
//! [`Settings::for_registries`]).
//!
//! It must not hold snapshot data: `environments/` and `policies/` are re-read every cycle and
//! never live here. Secrets are [`SecretString`]; `Debug` shows them as `[REDACTED]`, no error
//! message carries a secret value, and every secret (from the settings or a secret file) is
//! registered with [`crate::redact`] as it is loaded, so no log line shows one either.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod projects;

pub use projects::{Project, ProjectSection};

use ::config::{Config, ConfigError, Environment, File, FileFormat, Source, Value, ValueKind};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

/// The file read from the working directory when no file is given.
pub const DEFAULT_FILE: &str = "promoter.yaml";

/// Prefix of the environment variables that override the file.
pub const ENV_PREFIX: &str = "PROMOTER";

/// Every key promoter knows, dotted; anything else is rejected by name. A `*` component stands
/// for any one name (a registry host).
const KEYS: &[&str] = &[
    "gitlab.url",
    "gitlab.token",
    "gitlab.token_file",
    "gitlab.project",
    "gitlab.timeout",
    "gitlab.max_retries",
    "gitlab.requests_per_second",
    "gitlab.burst",
    "gitlab.record_deployments",
    "git.url",
    "git.branch",
    "git.author_name",
    "git.author_email",
    "git.ssh_key_file",
    "git.signing_key_file",
    "git.trusted_signing_keys_file",
    "state_dir",
    "server.listen",
    "server.webhook_secret",
    "reconcile.resync_interval",
    "templates_dir",
    "chatops.slack.signing_secret",
    "chatops.mattermost.token",
    "chatops.mattermost.url",
    "notify.slack_webhook_url",
    "notify.webhooks",
    "registries.*.username",
    "registries.*.password",
    "registries.*.password_file",
    "registries.*.insecure",
    "registries.*.timeout",
    // A list: its entries are checked by [`ProjectSection`]'s `deny_unknown_fields`.
    "projects",
];

/// The per-request timeout of a registry that sets no `registries.<host>.timeout`.
pub const DEFAULT_REGISTRY_TIMEOUT: Duration = Duration::from_secs(10);

/// Built-in defaults, the lowest layer.
const DEFAULTS: &[(&str, &str)] = &[
    ("gitlab.timeout", "30s"),
    ("gitlab.max_retries", "5"),
    ("gitlab.requests_per_second", "10"),
    ("gitlab.burst", "20"),
    ("gitlab.record_deployments", "true"),
    ("git.branch", "main"),
    ("git.author_name", "promoter"),
    ("git.author_email", "promoter@localhost"),
    ("state_dir", "./.promoter"),
    ("server.listen", "0.0.0.0:8080"),
    ("reconcile.resync_interval", "5m"),
];

/// Keys holding humantime durations, checked before deserializing so errors name them.
const DURATION_KEYS: &[&str] = &["gitlab.timeout", "reconcile.resync_interval"];

/// What can go wrong loading or checking settings. Every message names the key, and the file
/// for file errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file given with `--config` does not exist.
    #[error("config file {} does not exist", path.display())]
    FileMissing { path: PathBuf },
    /// The file could not be read or parsed as YAML.
    #[error("config file {}: cannot read or parse it", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: ConfigError,
    },
    /// A key promoter does not know (a typo, or a key of another version).
    #[error("{key}: unknown key ({origin})")]
    UnknownKey { key: String, origin: String },
    /// A value has the wrong type or form.
    #[error("{key}: invalid value")]
    Invalid {
        key: String,
        #[source]
        source: ConfigError,
    },
    /// The layers could not be merged or deserialized for a reason tied to no single key.
    #[error("invalid configuration")]
    Load(#[source] ConfigError),
    /// A duration is not humantime (`30s`, `5m`, `1h 30m`).
    #[error("{key}: invalid duration {value:?}")]
    Duration {
        key: &'static str,
        value: String,
        #[source]
        source: humantime::DurationError,
    },
    /// No signing key: promoter cannot prove which commits are its own.
    #[error(
        "git.signing_key_file: required but not set: promoter signs every commit it makes and trusts only commits signed so; write a key with `{}` and set git.signing_key_file (or PROMOTER__GIT__SIGNING_KEY_FILE) to it",
        crate::git::signing::KEYGEN_HINT
    )]
    SigningKeyMissing,
    /// The signing key (or a trusted key) cannot be used.
    #[error(transparent)]
    SigningKey(#[from] crate::git::signing::KeyError),
    /// A key an adapter needs is not set.
    #[error("{key}: required but not set")]
    Missing { key: &'static str },
    /// A URL does not parse.
    #[error("{key}: invalid URL {value:?}")]
    Url {
        key: &'static str,
        value: String,
        #[source]
        source: url::ParseError,
    },
    /// A number outside its range.
    #[error("{key}: {value} is out of range: {expected}")]
    Range {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    /// A URL that replies are posted to is not https (http only to 127.0.0.1 or localhost).
    #[error("{key}: URL {value:?} must use https (http only to 127.0.0.1 or localhost)")]
    UrlNotHttps { key: &'static str, value: String },
    /// A URL parses but is not http or https.
    #[error("{key}: URL {value:?} must use http or https")]
    UrlScheme { key: &'static str, value: String },
    /// Both `gitlab.token` and `gitlab.token_file` are set, or neither.
    #[error("gitlab.token / gitlab.token_file: set exactly one of them ({found})")]
    TokenChoice { found: &'static str },
    /// The token file could not be read.
    #[error("gitlab.token_file: cannot read {}", path.display())]
    TokenFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The token file holds no token.
    #[error("{key}: is empty")]
    Empty { key: &'static str },
    /// Both keys of a registry's password are set (`password`, `password_file`).
    #[error("{first} / {second}: set at most one of them (both are set)")]
    SecretChoice { first: String, second: String },
    /// A registry key that only makes sense with another one (`username` with a password).
    #[error("{key}: required when {with} is set")]
    Requires { key: String, with: String },
    /// A registry's password file could not be read.
    #[error("{key}: cannot read {}", path.display())]
    SecretFile {
        key: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A registry's password file holds no password.
    #[error("{key}: is empty")]
    EmptySecret { key: String },
    /// An entry of `projects:` is not usable as written.
    #[error("{key}: {problem}")]
    Project { key: String, problem: String },
    /// An announcement webhook (`notify.*`) is not usable as written.
    #[error("{key}: {problem}")]
    Notify { key: String, problem: String },
}

/// All settings, as layered from defaults, file and environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// GitLab API access.
    pub gitlab: GitlabSection,
    /// The environments repository.
    pub git: GitSection,
    /// Where the git mirror and other state live.
    pub state_dir: PathBuf,
    /// The HTTP server of the daemon.
    pub server: ServerSection,
    /// The reconcile loop.
    pub reconcile: ReconcileSection,
    /// A folder of MR templates overriding the built-in ones.
    #[serde(default)]
    pub templates_dir: Option<PathBuf>,
    /// Chat-ops integrations.
    #[serde(default)]
    pub chatops: ChatopsSection,
    /// Notifications.
    #[serde(default)]
    pub notify: NotifySection,
    /// Container registries by host as images name them (`registry.gitlab.com`,
    /// `127.0.0.1:5000`, `docker.io`): credentials, plain http, timeout.
    #[serde(default)]
    pub registries: BTreeMap<String, RegistrySection>,
    /// The GitLab projects one daemon serves (empty: the one project of `gitlab.project`);
    /// see [`Settings::projects`].
    #[serde(default)]
    pub projects: Vec<ProjectSection>,
}

/// `gitlab.*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitlabSection {
    /// Base URL, e.g. `https://gitlab.example.com`.
    #[serde(default)]
    pub url: Option<String>,
    /// API token (mutually exclusive with `token_file`).
    #[serde(default, deserialize_with = "secret")]
    pub token: Option<SecretString>,
    /// A file holding the API token (e.g. a mounted Kubernetes secret).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Project id or `group/name` path of the environments repository.
    #[serde(default)]
    pub project: Option<String>,
    /// Per-request timeout.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// Retries of a failed or rate-limited request.
    pub max_retries: u32,
    /// The request budget: sustained requests per second to the GitLab host.
    pub requests_per_second: f64,
    /// The request budget: requests sent back to back after a quiet spell.
    pub burst: u32,
    /// Record each environment's newest landing as a GitLab deployment.
    pub record_deployments: bool,
}

/// `git.*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitSection {
    /// Clone and push URL; any git URL including `file://`.
    #[serde(default)]
    pub url: Option<String>,
    /// The branch the environments live on.
    pub branch: String,
    /// Commit author name.
    pub author_name: String,
    /// Commit author email.
    pub author_email: String,
    /// SSH private key for `ssh://` URLs.
    #[serde(default)]
    pub ssh_key_file: Option<PathBuf>,
    /// The ed25519 private key (OpenSSH form, no passphrase) promoter signs every commit with;
    /// required by every command that writes.
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    /// More public keys (one per line) whose signatures count as promoter's: the previous
    /// key during a rotation.
    #[serde(default)]
    pub trusted_signing_keys_file: Option<PathBuf>,
}

/// `server.*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Address the daemon's HTTP server binds.
    pub listen: SocketAddr,
    /// GitLab's `X-Gitlab-Token`; without it every webhook is refused.
    #[serde(default, deserialize_with = "secret")]
    pub webhook_secret: Option<SecretString>,
}

/// `reconcile.*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileSection {
    /// How often the daemon reconciles without being asked.
    #[serde(deserialize_with = "duration")]
    pub resync_interval: Duration,
}

/// `chatops.*`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatopsSection {
    /// Slack slash commands.
    #[serde(default)]
    pub slack: SlackSection,
    /// Mattermost slash commands.
    #[serde(default)]
    pub mattermost: MattermostSection,
}

/// `chatops.slack.*`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSection {
    /// Slack's request signing secret.
    #[serde(default, deserialize_with = "secret")]
    pub signing_secret: Option<SecretString>,
}

/// `chatops.mattermost.*`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MattermostSection {
    /// Mattermost's slash command token.
    #[serde(default, deserialize_with = "secret")]
    pub token: Option<SecretString>,
    /// The Mattermost server (its Site URL): late replies go only to a `response_url` with
    /// this scheme, host and port. Checked by [`Settings::mattermost_url`].
    #[serde(default)]
    pub url: Option<String>,
}

/// `notify.*`: where announcements go (see [`crate::announce`]; checked by
/// [`Settings::announce_sinks`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySection {
    /// Slack incoming webhook URL (a secret: whoever has it can post): a Slack sink named
    /// `slack` for every environment and event.
    #[serde(default, deserialize_with = "secret")]
    pub slack_webhook_url: Option<SecretString>,
    /// Incoming webhooks, each with its format and routing.
    #[serde(default)]
    pub webhooks: Vec<WebhookSection>,
}

/// `notify.webhooks[]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    /// Unique name: the `sink` label of `promoter_announcements_total`, and in logs.
    #[serde(default)]
    pub name: Option<String>,
    /// `slack`, `mattermost` or `teams`.
    #[serde(default)]
    pub kind: Option<String>,
    /// The webhook URL (a secret; mutually exclusive with `url_file`).
    #[serde(default, deserialize_with = "secret")]
    pub url: Option<SecretString>,
    /// A file holding the webhook URL (e.g. a mounted Kubernetes secret).
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// Mattermost only: the channel to post in instead of the webhook's own.
    #[serde(default)]
    pub channel: Option<String>,
    /// Target environments it hears about (default: every one).
    #[serde(default)]
    pub environments: Vec<String>,
    /// Events it hears about (default: every one).
    #[serde(default)]
    pub events: Vec<String>,
}

/// `registries.<host>.*`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySection {
    /// User name for Basic auth, sent to the registry or its token service.
    #[serde(default)]
    pub username: Option<String>,
    /// Password or access token (mutually exclusive with `password_file`).
    #[serde(default, deserialize_with = "secret")]
    pub password: Option<SecretString>,
    /// A file holding the password (e.g. a mounted Kubernetes secret).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Plain http instead of https (a registry on loopback in tests).
    #[serde(default)]
    pub insecure: bool,
    /// Per-request timeout (default 10 s).
    #[serde(default, deserialize_with = "optional_duration")]
    pub timeout: Option<Duration>,
}

/// What the GitLab forge and the reconcile loop need, checked.
#[derive(Debug, Clone)]
pub struct GitlabSettings {
    /// Base URL (http or https).
    pub url: url::Url,
    /// API token, from `gitlab.token` or read from `gitlab.token_file`.
    pub token: SecretString,
    /// Project id or `group/name`.
    pub project: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries of a failed or rate-limited request.
    pub max_retries: u32,
    /// The request budget of the host.
    pub budget: crate::forge::gitlab::budget::BudgetSettings,
    /// Record deployments through GitLab's Deployments API.
    pub record_deployments: bool,
}

/// What the registry client needs for one registry host, checked.
#[derive(Debug, Clone)]
pub struct RegistryAccess {
    /// Basic credentials, when the registry has a user name and a password.
    pub credentials: Option<RegistryCredentials>,
    /// Plain http instead of https.
    pub insecure: bool,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for RegistryAccess {
    /// Anonymous https with the default timeout: a registry with no `registries.<host>` entry.
    fn default() -> Self {
        Self {
            credentials: None,
            insecure: false,
            timeout: DEFAULT_REGISTRY_TIMEOUT,
        }
    }
}

/// A registry user name and its password (from `password` or read from `password_file`).
#[derive(Debug, Clone)]
pub struct RegistryCredentials {
    /// User name.
    pub username: String,
    /// Password or access token.
    pub password: SecretString,
}

/// Loads settings: defaults, then `file` (or `promoter.yaml` in the working directory when it
/// exists), then `environment` (the process environment when `None`).
#[tracing::instrument(skip_all, fields(file = ?file))]
pub fn load(
    file: Option<&Path>,
    environment: Option<HashMap<String, String>>,
) -> Result<Settings, Error> {
    let default = Path::new(DEFAULT_FILE);
    let file = match file {
        Some(path) if !path.is_file() => {
            return Err(Error::FileMissing {
                path: path.to_path_buf(),
            });
        }
        Some(path) => Some(path),
        None if default.is_file() => Some(default),
        None => None,
    };
    let settings = load_layers(file, environment)?;
    settings.register_secrets();
    Ok(settings)
}

/// Layers defaults, an existing `file` and the environment, then checks and deserializes.
fn load_layers(
    file: Option<&Path>,
    environment: Option<HashMap<String, String>>,
) -> Result<Settings, Error> {
    let mut builder = Config::builder();
    for (key, value) in DEFAULTS {
        builder = builder.set_default(*key, *value).map_err(Error::Load)?;
    }
    if let Some(path) = file {
        let name = path.to_string_lossy();
        builder = builder.add_source(File::new(&name, FileFormat::Yaml).required(true));
    }
    let env = Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("__")
        .separator("__");
    builder = builder.add_source(env.source(environment));
    let config = builder.build().map_err(|source| match (&source, file) {
        (ConfigError::FileParse { .. } | ConfigError::Foreign(_), Some(path)) => Error::File {
            path: path.to_path_buf(),
            source,
        },
        _ => Error::Load(source),
    })?;

    let tree = config.collect().map_err(Error::Load)?;
    reject_unknown(&tree, &[])?;
    for key in DURATION_KEYS {
        let value = config.get_string(key).map_err(|source| Error::Invalid {
            key: key.to_string(),
            source,
        })?;
        parse_duration(key, &value)?;
    }
    config
        .try_deserialize()
        .map_err(|source| match key_of(&source) {
            Some(key) => Error::Invalid { key, source },
            None => Error::Load(source),
        })
}

/// Fails on the first key (depth first, sorted) that is not in [`KEYS`]. `prefix` holds the
/// names above `table` (a registry host may itself contain dots).
fn reject_unknown(table: &::config::Map<String, Value>, prefix: &[&str]) -> Result<(), Error> {
    let mut keys: Vec<_> = table.iter().collect();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    for (name, value) in keys {
        let mut path = prefix.to_vec();
        path.push(name.as_str());
        let key = path.join(".");
        if KEYS.iter().any(|k| key_matches(k, &path, false)) {
            continue;
        }
        let is_section = KEYS.iter().any(|k| key_matches(k, &path, true));
        match &value.kind {
            ValueKind::Table(inner) if is_section => reject_unknown(inner, &path)?,
            // A section set to a scalar is a type error the deserializer names.
            _ if is_section => {}
            _ => {
                let origin = match value.origin() {
                    Some("the environment") => format!(
                        "from the environment variable {ENV_PREFIX}__{}",
                        key.replace('.', "__").to_uppercase()
                    ),
                    Some(origin) => format!("in {origin}"),
                    None => "in the defaults".to_string(),
                };
                return Err(Error::UnknownKey { key, origin });
            }
        }
    }
    Ok(())
}

/// True when `path` is the known key `pattern` (`*` matching any one name), or with `section`
/// a proper prefix of it.
fn key_matches(pattern: &str, path: &[&str], section: bool) -> bool {
    let parts: Vec<&str> = pattern.split('.').collect();
    let length_fits = if section {
        path.len() < parts.len()
    } else {
        path.len() == parts.len()
    };
    length_fits
        && parts
            .iter()
            .zip(path)
            .all(|(part, name)| *part == "*" || part == name)
}

/// The dotted key a `config` error is about, when it says.
fn key_of(error: &ConfigError) -> Option<String> {
    match error {
        ConfigError::Type { key, .. } | ConfigError::At { key, .. } => key.clone(),
        ConfigError::NotFound(key) => Some(key.clone()),
        _ => None,
    }
}

fn parse_duration(key: &'static str, value: &str) -> Result<Duration, Error> {
    humantime::parse_duration(value.trim()).map_err(|source| Error::Duration {
        key,
        value: value.to_string(),
        source,
    })
}

/// Deserializes a humantime duration (already checked by [`load_layers`], so the message here
/// is only a backstop).
fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(text.trim()).map_err(serde::de::Error::custom)
}

/// Deserializes an optional humantime duration.
fn optional_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    Option::<String>::deserialize(deserializer)?
        .map(|text| humantime::parse_duration(text.trim()).map_err(serde::de::Error::custom))
        .transpose()
}

/// Deserializes an optional secret without `secrecy`'s serde feature.
fn secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<SecretString>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.map(SecretString::from))
}

impl Settings {
    /// `chatops.mattermost.url`, checked: an https URL (http only to 127.0.0.1 or localhost,
    /// as late replies are posted), of which only the origin counts.
    pub fn mattermost_url(&self) -> Result<Option<url::Url>, Error> {
        const KEY: &str = "chatops.mattermost.url";
        let Some(raw) = self.chatops.mattermost.url.as_deref() else {
            return Ok(None);
        };
        let url = url::Url::parse(raw.trim()).map_err(|source| Error::Url {
            key: KEY,
            value: raw.to_string(),
            source,
        })?;
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost"));
        match url.scheme() {
            "https" => Ok(Some(url)),
            "http" if loopback => Ok(Some(url)),
            _ => Err(Error::UrlNotHttps {
                key: KEY,
                value: crate::redact::without_userinfo(raw),
            }),
        }
    }

    /// Registers every secret value these settings hold with [`crate::redact`], so no log line
    /// or printed error shows one: the GitLab token, the webhook, Slack and Mattermost secrets,
    /// the notify webhook URL, registry passwords and the userinfo of `gitlab.url` and
    /// `git.url`. Secrets read from files are registered where they are read.
    pub fn register_secrets(&self) {
        let secrets = [
            &self.gitlab.token,
            &self.server.webhook_secret,
            &self.chatops.slack.signing_secret,
            &self.chatops.mattermost.token,
            &self.notify.slack_webhook_url,
        ];
        let passwords = self.registries.values().map(|r| &r.password);
        for secret in secrets.into_iter().chain(passwords).flatten() {
            crate::redact::register(secret.expose_secret());
        }
        let webhooks = self.notify.webhooks.iter().map(|w| &w.url);
        for url in std::iter::once(&self.notify.slack_webhook_url)
            .chain(webhooks)
            .flatten()
        {
            crate::redact::register(url.expose_secret());
            crate::redact::register_userinfo(url.expose_secret());
        }
        for url in [&self.gitlab.url, &self.git.url].into_iter().flatten() {
            crate::redact::register_userinfo(url);
        }
    }

    /// Checks and gathers what talking to GitLab needs: `gitlab.url` is an http(s) URL,
    /// `gitlab.project` is set, exactly one of `gitlab.token` / `gitlab.token_file` is set (the
    /// file is read and its trailing newline trimmed), and `git.url` is set.
    #[tracing::instrument(skip_all)]
    pub fn for_gitlab(&self) -> Result<GitlabSettings, Error> {
        let gitlab = &self.gitlab;
        let raw = gitlab
            .url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .ok_or(Error::Missing { key: "gitlab.url" })?;
        // The userinfo (`user:password@`) is never echoed.
        let url = url::Url::parse(raw.trim()).map_err(|source| Error::Url {
            key: "gitlab.url",
            value: crate::redact::without_userinfo(raw),
            source,
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::UrlScheme {
                key: "gitlab.url",
                value: crate::redact::without_userinfo(raw),
            });
        }
        if !(gitlab.requests_per_second.is_finite() && gitlab.requests_per_second > 0.0) {
            return Err(Error::Range {
                key: "gitlab.requests_per_second",
                value: gitlab.requests_per_second.to_string(),
                expected: "more than 0 (requests per second, e.g. 10 or 0.5)",
            });
        }
        if gitlab.burst == 0 {
            return Err(Error::Range {
                key: "gitlab.burst",
                value: "0".into(),
                expected: "at least 1",
            });
        }
        let project = gitlab
            .project
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .ok_or(Error::Missing {
                key: "gitlab.project",
            })?
            .to_string();
        // Blank counts as unset, so a variable set to "" can switch off a value from the file.
        let token = gitlab
            .token
            .as_ref()
            .filter(|t| !t.expose_secret().trim().is_empty());
        let token_file = gitlab
            .token_file
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty());
        let token = match (token, token_file) {
            (Some(_), Some(_)) => {
                return Err(Error::TokenChoice {
                    found: "both are set",
                });
            }
            (None, None) => {
                return Err(Error::TokenChoice {
                    found: "neither is set",
                });
            }
            (Some(token), None) => token.clone(),
            (None, Some(path)) => read_token(path)?,
        };
        self.git_url()?;
        Ok(GitlabSettings {
            url,
            token,
            project,
            timeout: gitlab.timeout,
            max_retries: gitlab.max_retries,
            budget: crate::forge::gitlab::budget::BudgetSettings {
                per_second: gitlab.requests_per_second,
                burst: gitlab.burst,
            },
            record_deployments: gitlab.record_deployments,
        })
    }

    /// Checks and gathers what the registry client needs, by lowercased host: per host, at most
    /// one of `password` / `password_file` (the file is read and its trailing newline trimmed),
    /// and a user name exactly when there is a password. Blank values count as unset.
    #[tracing::instrument(skip_all)]
    pub fn for_registries(&self) -> Result<HashMap<String, RegistryAccess>, Error> {
        let mut out = HashMap::new();
        for (host, section) in &self.registries {
            let key = |name: &str| format!("registries.{host}.{name}");
            let username = section
                .username
                .as_deref()
                .map(str::trim)
                .filter(|u| !u.is_empty());
            let password = section
                .password
                .as_ref()
                .filter(|p| !p.expose_secret().trim().is_empty());
            let password_file = section
                .password_file
                .as_ref()
                .filter(|p| !p.as_os_str().is_empty());
            let password = match (password, password_file) {
                (Some(_), Some(_)) => {
                    return Err(Error::SecretChoice {
                        first: key("password"),
                        second: key("password_file"),
                    });
                }
                (Some(password), None) => Some(password.clone()),
                (None, Some(path)) => Some(read_secret_file(&key("password_file"), path)?),
                (None, None) => None,
            };
            let credentials = match (username, password) {
                (Some(username), Some(password)) => Some(RegistryCredentials {
                    username: username.to_string(),
                    password,
                }),
                (None, None) => None,
                (None, Some(_)) => {
                    return Err(Error::Requires {
                        key: key("username"),
                        with: format!("{} or {}", key("password"), key("password_file")),
                    });
                }
                (Some(_), None) => {
                    return Err(Error::Requires {
                        key: format!("{} or {}", key("password"), key("password_file")),
                        with: key("username"),
                    });
                }
            };
            let access = RegistryAccess {
                credentials,
                insecure: section.insecure,
                timeout: section.timeout.unwrap_or(DEFAULT_REGISTRY_TIMEOUT),
            };
            out.insert(host.to_lowercase(), access);
        }
        Ok(out)
    }

    /// `git.url`, which reconcile and the daemon need.
    /// promoter's commit signing keys: `git.signing_key_file` must be set and hold a usable
    /// key, so that no online command runs trusting commits by their author line.
    pub fn signing_keys(&self) -> Result<crate::git::signing::SigningKeys, Error> {
        let path = self
            .git
            .signing_key_file
            .as_deref()
            .ok_or(Error::SigningKeyMissing)?;
        Ok(crate::git::signing::SigningKeys::load(
            path,
            self.git.trusted_signing_keys_file.as_deref(),
        )?)
    }

    pub fn git_url(&self) -> Result<&str, Error> {
        self.git
            .url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or(Error::Missing { key: "git.url" })
    }
}

/// Reads a token file, trimming the trailing newline editors and `echo` add.
fn read_token(path: &Path) -> Result<SecretString, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::TokenFile {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.trim_end_matches(['\n', '\r']);
    crate::redact::register(token);
    if token.trim().is_empty() {
        return Err(Error::Empty {
            key: "gitlab.token_file",
        });
    }
    Ok(SecretString::from(token))
}

/// Reads a secret file (`<key>` names it in errors), trimming the trailing newline editors and
/// `echo` add, and registers its contents with [`crate::redact`]. Every `*_file` secret is read
/// here, so whatever a new one holds never reaches a log line.
pub fn read_secret_file(key: &str, path: &Path) -> Result<SecretString, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::SecretFile {
        key: key.to_string(),
        path: path.to_path_buf(),
        source,
    })?;
    let secret = text.trim_end_matches(['\n', '\r']);
    crate::redact::register_file_content(secret);
    if secret.trim().is_empty() {
        return Err(Error::EmptySecret {
            key: key.to_string(),
        });
    }
    Ok(SecretString::from(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn yaml(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("promoter.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The full chain of an error, as `{:#}` would show it.
    fn chain(error: &Error) -> String {
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        text
    }

    #[test]
    fn defaults_apply_without_file_or_environment() {
        let s = load_layers(None, env(&[])).unwrap();
        assert_eq!(s.gitlab.timeout, Duration::from_secs(30));
        assert_eq!(s.gitlab.max_retries, 5);
        assert_eq!(s.gitlab.url, None);
        assert!(s.gitlab.token.is_none());
        assert_eq!(s.git.branch, "main");
        assert_eq!(s.git.author_name, "promoter");
        assert_eq!(s.git.author_email, "promoter@localhost");
        assert_eq!(s.git.url, None);
        assert_eq!(s.state_dir, PathBuf::from("./.promoter"));
        assert_eq!(s.server.listen, "0.0.0.0:8080".parse().unwrap());
        assert!(s.server.webhook_secret.is_none());
        assert_eq!(s.reconcile.resync_interval, Duration::from_secs(300));
        assert_eq!(s.templates_dir, None);
        assert!(s.chatops.slack.signing_secret.is_none());
        assert!(s.notify.slack_webhook_url.is_none());
    }

    #[test]
    fn mattermost_url_must_be_https_or_loopback() {
        let with = |url: &str| {
            let s = load_layers(None, env(&[("PROMOTER__CHATOPS__MATTERMOST__URL", url)])).unwrap();
            s.mattermost_url()
                .map(|u| u.map(|u| u.origin().ascii_serialization()))
        };
        assert_eq!(
            load_layers(None, env(&[]))
                .unwrap()
                .mattermost_url()
                .unwrap(),
            None
        );
        assert_eq!(
            with("https://chat.example.com").unwrap().as_deref(),
            Some("https://chat.example.com")
        );
        assert_eq!(
            with("http://127.0.0.1:8065").unwrap().as_deref(),
            Some("http://127.0.0.1:8065")
        );
        assert_eq!(
            with("http://chat.example.com").unwrap_err().to_string(),
            "chatops.mattermost.url: URL \"http://chat.example.com\" must use https (http only to 127.0.0.1 or localhost)"
        );
        assert!(
            with("chat.example.com")
                .unwrap_err()
                .to_string()
                .starts_with("chatops.mattermost.url: invalid URL")
        );
    }

    #[test]
    fn file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = yaml(
            &dir,
            "gitlab:\n  url: https://gitlab.example.com\n  project: 42\n  timeout: 1m 30s\n\
             git:\n  url: file:///srv/env.git\n  branch: trunk\n\
             state_dir: /var/lib/promoter\n\
             server:\n  listen: 127.0.0.1:9000\n  webhook_secret: hook-secret\n\
             reconcile:\n  resync_interval: 10m\n\
             templates_dir: ./templates\n\
             chatops:\n  slack:\n    signing_secret: slack-secret\n  mattermost:\n    token: mm-secret\n\
             notify:\n  slack_webhook_url: https://hooks.slack.com/services/T/B/X\n",
        );
        let s = load(Some(&path), env(&[])).unwrap();
        assert_eq!(s.gitlab.url.as_deref(), Some("https://gitlab.example.com"));
        assert_eq!(s.gitlab.project.as_deref(), Some("42"));
        assert_eq!(s.gitlab.timeout, Duration::from_secs(90));
        assert_eq!(s.gitlab.max_retries, 5, "untouched default");
        assert_eq!(s.git.url.as_deref(), Some("file:///srv/env.git"));
        assert_eq!(s.git.branch, "trunk");
        assert_eq!(s.git.author_name, "promoter", "untouched default");
        assert_eq!(s.state_dir, PathBuf::from("/var/lib/promoter"));
        assert_eq!(s.server.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(
            s.server.webhook_secret.as_ref().unwrap().expose_secret(),
            "hook-secret"
        );
        assert_eq!(s.reconcile.resync_interval, Duration::from_secs(600));
        assert_eq!(s.templates_dir, Some(PathBuf::from("./templates")));
        assert_eq!(
            s.chatops.mattermost.token.as_ref().unwrap().expose_secret(),
            "mm-secret"
        );
    }

    #[test]
    fn every_secret_is_registered_for_redaction_as_it_loads() {
        let dir = tempfile::tempdir().unwrap();
        let password_file = dir.path().join("registry-password");
        std::fs::write(&password_file, "registry-file-secret-1\n").unwrap();
        let path = yaml(
            &dir,
            &format!(
                "gitlab:\n  url: https://bot:gitlab-url-secret@gitlab.example.com\n  project: 42\n\
                 git:\n  url: https://deploy:git-url-secret@gitlab.example.com/envs.git\n\
                 server:\n  webhook_secret: hook-secret-for-redaction\n\
                 chatops:\n  slack:\n    signing_secret: slack-secret-for-redaction\n\
                 notify:\n  slack_webhook_url: https://hooks.slack.com/services/T/B/redaction\n\
                 registries:\n  registry.example.com:\n    username: u\n    password_file: {}\n",
                password_file.display()
            ),
        );
        let s = load(
            Some(&path),
            env(&[
                ("PROMOTER__GITLAB__TOKEN", "glpat-token-for-redaction"),
                (
                    "PROMOTER__CHATOPS__MATTERMOST__TOKEN",
                    "mm-token-for-redaction",
                ),
            ]),
        )
        .unwrap();
        s.for_registries().unwrap();
        let line = "glpat-token-for-redaction hook-secret-for-redaction slack-secret-for-redaction \
                    mm-token-for-redaction https://hooks.slack.com/services/T/B/redaction \
                    registry-file-secret-1 https://bot:gitlab-url-secret@gitlab.example.com \
                    https://deploy:git-url-secret@gitlab.example.com/envs.git";
        let redacted = crate::redact::redact(line);
        for secret in [
            "glpat-token",
            "hook-secret",
            "slack-secret",
            "mm-token",
            "hooks.slack.com",
            "registry-file",
            "gitlab-url-secret",
            "git-url-secret",
        ] {
            assert!(!redacted.contains(secret), "{secret}: {redacted}");
        }
        assert!(
            redacted.contains("https://[REDACTED]@gitlab.example.com"),
            "{redacted}"
        );
    }

    #[test]
    fn environment_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = yaml(
            &dir,
            "gitlab:\n  token: from-file\n  max_retries: 2\ngit:\n  branch: trunk\n",
        );
        let s = load(
            Some(&path),
            env(&[
                ("PROMOTER__GITLAB__TOKEN_FILE", "/run/secrets/gitlab"),
                ("PROMOTER__GITLAB__MAX_RETRIES", "7"),
                ("PROMOTER__STATE_DIR", "/data"),
                ("PROMOTER__GIT__BRANCH", "release"),
                ("OTHER__GIT__BRANCH", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(
            s.gitlab.token_file,
            Some(PathBuf::from("/run/secrets/gitlab"))
        );
        assert_eq!(
            s.gitlab.token.as_ref().unwrap().expose_secret(),
            "from-file"
        );
        assert_eq!(s.gitlab.max_retries, 7);
        assert_eq!(s.state_dir, PathBuf::from("/data"));
        assert_eq!(s.git.branch, "release");
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key_and_where() {
        let dir = tempfile::tempdir().unwrap();
        let path = yaml(&dir, "gitlab:\n  tokn: x\n");
        let err = load(Some(&path), env(&[])).unwrap_err();
        assert!(matches!(&err, Error::UnknownKey { key, .. } if key == "gitlab.tokn"));
        assert!(err.to_string().starts_with("gitlab.tokn: unknown key (in "));
        assert!(err.to_string().contains("promoter.yaml"), "{err}");

        let err = load_layers(None, env(&[("PROMOTER__SERVER__PORT", "80")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "server.port: unknown key (from the environment variable PROMOTER__SERVER__PORT)"
        );

        let path = yaml(&dir, "statedir: /x\n");
        let err = load(Some(&path), env(&[])).unwrap_err();
        assert!(
            err.to_string().starts_with("statedir: unknown key"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let err =
            load_layers(None, env(&[("PROMOTER__GITLAB__TIMEOUT", "5 parsecs")])).unwrap_err();
        let text = chain(&err);
        assert!(
            text.starts_with("gitlab.timeout: invalid duration \"5 parsecs\": "),
            "{text}"
        );

        let err = load_layers(None, env(&[("PROMOTER__GITLAB__MAX_RETRIES", "many")])).unwrap_err();
        assert!(
            err.to_string().starts_with("gitlab.max_retries: "),
            "{}",
            chain(&err)
        );

        let err = load_layers(None, env(&[("PROMOTER__SERVER__LISTEN", "localhost")])).unwrap_err();
        assert!(
            err.to_string().starts_with("server.listen: "),
            "{}",
            chain(&err)
        );
    }

    #[test]
    fn file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.yaml");
        let err = load(Some(&missing), env(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("config file {} does not exist", missing.display())
        );

        let path = yaml(&dir, "gitlab: [unclosed\n");
        let err = load(Some(&path), env(&[])).unwrap_err();
        assert!(matches!(err, Error::File { .. }), "{}", chain(&err));
        assert!(err.to_string().contains(&path.display().to_string()));
    }

    fn gitlab_ready(extra: &[(&str, &str)]) -> Result<GitlabSettings, Error> {
        let mut pairs = vec![
            ("PROMOTER__GITLAB__URL", "https://gitlab.example.com"),
            ("PROMOTER__GITLAB__PROJECT", "platform/environments"),
            ("PROMOTER__GIT__URL", "file:///srv/env.git"),
        ];
        pairs.extend_from_slice(extra);
        load_layers(None, env(&pairs)).unwrap().for_gitlab()
    }

    #[test]
    fn for_gitlab_reports_what_is_missing_or_wrong() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("PROMOTER__GITLAB__URL", "")],
                "gitlab.url: required but not set",
            ),
            (
                &[("PROMOTER__GITLAB__URL", "gitlab.example.com")],
                "gitlab.url: invalid URL \"gitlab.example.com\"",
            ),
            (
                &[("PROMOTER__GITLAB__URL", "ftp://gitlab.example.com")],
                "gitlab.url: URL \"ftp://gitlab.example.com\" must use http or https",
            ),
            (
                &[
                    ("PROMOTER__GITLAB__PROJECT", " "),
                    ("PROMOTER__GITLAB__TOKEN", "t"),
                ],
                "gitlab.project: required but not set",
            ),
            (
                &[],
                "gitlab.token / gitlab.token_file: set exactly one of them (neither is set)",
            ),
            (
                &[
                    ("PROMOTER__GITLAB__TOKEN", "t"),
                    ("PROMOTER__GITLAB__TOKEN_FILE", "/t"),
                ],
                "gitlab.token / gitlab.token_file: set exactly one of them (both are set)",
            ),
            (
                &[("PROMOTER__GITLAB__TOKEN", "t"), ("PROMOTER__GIT__URL", "")],
                "git.url: required but not set",
            ),
            (
                &[(
                    "PROMOTER__GITLAB__TOKEN_FILE",
                    "/nonexistent/promoter-token",
                )],
                "gitlab.token_file: cannot read /nonexistent/promoter-token",
            ),
        ];
        for (extra, want) in cases {
            let err = gitlab_ready(extra).unwrap_err();
            assert_eq!(err.to_string(), *want, "{extra:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "glpat-file").unwrap();
        let blank_token_is_unset = gitlab_ready(&[
            ("PROMOTER__GITLAB__TOKEN", ""),
            ("PROMOTER__GITLAB__TOKEN_FILE", file.to_str().unwrap()),
        ]);
        assert_eq!(
            blank_token_is_unset.unwrap().token.expose_secret(),
            "glpat-file"
        );

        let ok = gitlab_ready(&[("PROMOTER__GITLAB__TOKEN", "glpat-abc")]).unwrap();
        assert_eq!(ok.url.as_str(), "https://gitlab.example.com/");
        assert_eq!(ok.project, "platform/environments");
        assert_eq!(ok.token.expose_secret(), "glpat-abc");
        assert_eq!(ok.timeout, Duration::from_secs(30));
        assert_eq!(ok.max_retries, 5);
    }

    #[test]
    fn token_file_is_read_and_trailing_newline_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "glpat-from-file\n").unwrap();
        let ok = gitlab_ready(&[("PROMOTER__GITLAB__TOKEN_FILE", file.to_str().unwrap())]).unwrap();
        assert_eq!(ok.token.expose_secret(), "glpat-from-file");

        std::fs::write(&file, "\n").unwrap();
        let err =
            gitlab_ready(&[("PROMOTER__GITLAB__TOKEN_FILE", file.to_str().unwrap())]).unwrap_err();
        assert_eq!(err.to_string(), "gitlab.token_file: is empty");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let s = load_layers(
            None,
            env(&[
                ("PROMOTER__GITLAB__TOKEN", "glpat-SECRET1"),
                ("PROMOTER__SERVER__WEBHOOK_SECRET", "hook-SECRET2"),
                ("PROMOTER__CHATOPS__SLACK__SIGNING_SECRET", "slack-SECRET3"),
                ("PROMOTER__CHATOPS__MATTERMOST__TOKEN", "mm-SECRET4"),
                (
                    "PROMOTER__NOTIFY__SLACK_WEBHOOK_URL",
                    "https://hooks.slack.com/SECRET5",
                ),
                ("PROMOTER__GITLAB__URL", "https://gitlab.example.com"),
                ("PROMOTER__GITLAB__PROJECT", "1"),
                ("PROMOTER__GIT__URL", "file:///x"),
            ]),
        )
        .unwrap();
        let gitlab = s.for_gitlab().unwrap();
        for text in [format!("{s:?}"), format!("{s:#?}"), format!("{gitlab:?}")] {
            assert!(!text.contains("SECRET"), "{text}");
            assert!(text.contains("REDACTED"), "{text}");
        }
    }

    #[test]
    fn every_known_key_is_accepted() {
        // Lists of tables (`notify.webhooks`, `projects`) are written in the file only.
        let scalars = KEYS
            .iter()
            .filter(|key| !["notify.webhooks", "projects"].contains(*key));
        let pairs = scalars.map(|key| {
            let value = match *key {
                "server.listen" => "127.0.0.1:1",
                "gitlab.max_retries" | "gitlab.burst" | "gitlab.requests_per_second" => "1",
                "gitlab.record_deployments" => "true",
                "registries.*.insecure" => "true",
                "registries.*.timeout" => "1s",
                k if DURATION_KEYS.contains(&k) => "1s",
                _ => "x",
            };
            // The environment can only name a host without dots: `localhost` stands for `*`.
            let key = key.replace('*', "localhost");
            let var = format!("PROMOTER__{}", key.replace('.', "__").to_uppercase());
            (var, value.to_string())
        });
        let s = load_layers(None, Some(pairs.collect())).unwrap();
        assert_eq!(s.git.ssh_key_file, Some(PathBuf::from("x")));
        assert_eq!(s.templates_dir, Some(PathBuf::from("x")));
        assert_eq!(s.reconcile.resync_interval, Duration::from_secs(1));
        assert_eq!(
            s.registries["localhost"].timeout,
            Some(Duration::from_secs(1))
        );
        assert!(s.registries["localhost"].insecure);
    }

    #[test]
    fn registries_are_keyed_by_host_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("registry-password");
        std::fs::write(&secret, "from-FILE-secret\n").unwrap();
        let path = yaml(
            &dir,
            &format!(
                "registries:\n  \
                   127.0.0.1:5000:\n    insecure: true\n    timeout: 2s\n  \
                   registry.gitlab.com:\n    username: bot\n    password_file: {}\n  \
                   Docker.io:\n    username: hub\n    password: hub-SECRET\n",
                secret.display()
            ),
        );
        let s = load(
            Some(&path),
            env(&[("PROMOTER__REGISTRIES__LOCALHOST__INSECURE", "true")]),
        )
        .unwrap();
        let access = s.for_registries().unwrap();
        let local = &access["127.0.0.1:5000"];
        assert!(local.insecure);
        assert_eq!(local.timeout, Duration::from_secs(2));
        assert!(local.credentials.is_none());
        let gitlab = access["registry.gitlab.com"].credentials.as_ref().unwrap();
        assert_eq!(gitlab.username, "bot");
        assert_eq!(gitlab.password.expose_secret(), "from-FILE-secret");
        assert_eq!(
            access["registry.gitlab.com"].timeout,
            DEFAULT_REGISTRY_TIMEOUT
        );
        let hub = access["docker.io"].credentials.as_ref().unwrap();
        assert_eq!(hub.password.expose_secret(), "hub-SECRET");
        assert!(access["localhost"].insecure);
        let text = format!("{s:?} {access:?}");
        assert!(!text.contains("SECRET"), "{text}");
    }

    #[test]
    fn registry_errors_name_the_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("PROMOTER__REGISTRIES__LOCALHOST__PASSWORD_SECRET", "x")],
                "registries.localhost.password_secret: unknown key \
                 (from the environment variable PROMOTER__REGISTRIES__LOCALHOST__PASSWORD_SECRET)",
            ),
            (
                &[("PROMOTER__REGISTRIES__LOCALHOST", "x")],
                "registries.localhost: invalid value",
            ),
        ];
        for (pairs, want) in cases {
            let err = load_layers(None, env(pairs)).unwrap_err();
            assert_eq!(err.to_string(), *want);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = yaml(&dir, "registries:\n  127.0.0.1:5000:\n    pasword: x\n");
        let err = load(Some(&path), env(&[])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("registries.127.0.0.1:5000.pasword: unknown key (in "),
            "{err}"
        );

        let err = load_layers(
            None,
            env(&[("PROMOTER__REGISTRIES__LOCALHOST__TIMEOUT", "5 parsecs")]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("registries.localhost.timeout: "),
            "{}",
            chain(&err)
        );
        let err = load_layers(
            None,
            env(&[("PROMOTER__REGISTRIES__LOCALHOST__INSECURE", "maybe")]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("registries.localhost.insecure: "),
            "{}",
            chain(&err)
        );

        let checked: &[(&[(&str, &str)], &str)] = &[
            (
                &[
                    ("PROMOTER__REGISTRIES__LOCALHOST__USERNAME", "u"),
                    ("PROMOTER__REGISTRIES__LOCALHOST__PASSWORD", "p-SECRET"),
                    ("PROMOTER__REGISTRIES__LOCALHOST__PASSWORD_FILE", "/p"),
                ],
                "registries.localhost.password / registries.localhost.password_file: \
                 set at most one of them (both are set)",
            ),
            (
                &[("PROMOTER__REGISTRIES__LOCALHOST__PASSWORD", "p-SECRET")],
                "registries.localhost.username: required when registries.localhost.password \
                 or registries.localhost.password_file is set",
            ),
            (
                &[("PROMOTER__REGISTRIES__LOCALHOST__USERNAME", "u")],
                "registries.localhost.password or registries.localhost.password_file: \
                 required when registries.localhost.username is set",
            ),
            (
                &[
                    ("PROMOTER__REGISTRIES__LOCALHOST__USERNAME", "u"),
                    (
                        "PROMOTER__REGISTRIES__LOCALHOST__PASSWORD_FILE",
                        "/nonexistent/registry-password",
                    ),
                ],
                "registries.localhost.password_file: cannot read /nonexistent/registry-password",
            ),
        ];
        for (pairs, want) in checked {
            let err = load_layers(None, env(pairs))
                .unwrap()
                .for_registries()
                .unwrap_err();
            assert_eq!(err.to_string(), *want);
            assert!(!chain(&err).contains("SECRET"));
        }
    }
}
