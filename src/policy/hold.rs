//! Holds: a rollback's promise that the tag it rolled back from (or anything newer) does not
//! come back into that environment, or any environment downstream of it, until a person lifts
//! the hold. A hold is a `holds:` entry in a policy file, written by the rollback's own MR
//! (`policies/hold-<env>-<service>.yaml`) and removed by an `unhold` MR. Pure.
//!
//! ```yaml
//! holds:
//!   - service: maths-api
//!     env: qa
//!     tag: 1.4.0                      # rolled back from; it and anything newer are held
//!     by: "gitlab:alice"
//!     because: "5xx after the deploy"
//!     since: 2026-11-30T20:00:00Z
//! ```

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::gate::{Gate, Outcome};
use crate::model::{EnvName, ServiceName, Tag};

/// One `holds:` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HoldEntry {
    service: String,
    env: String,
    tag: String,
    by: String,
    because: String,
    since: DateTime<Utc>,
}

impl HoldEntry {
    pub(super) fn into_hold(self, file: &str) -> Hold {
        Hold {
            service: ServiceName::new(self.service),
            env: EnvName::new(self.env),
            tag: Tag::new(self.tag),
            by: self.by,
            because: self.because,
            since: self.since,
            file: file.to_string(),
        }
    }

    pub(super) fn env(&self) -> &str {
        &self.env
    }
}

/// A standing hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// The service held.
    pub service: ServiceName,
    /// The environment it was rolled back in; environments downstream are held too.
    pub env: EnvName,
    /// The tag rolled back from: it and anything newer are held.
    pub tag: Tag,
    /// Who rolled back.
    pub by: String,
    /// Why.
    pub because: String,
    /// Since when.
    pub since: DateTime<Utc>,
    /// The policy file that records it.
    pub file: String,
}

impl Hold {
    /// `held in qa by gitlab:alice since 2026-11-30 20:00 UTC: 5xx after the deploy`.
    pub fn describe(&self) -> String {
        format!(
            "{} {} held in {} by {} since {}: {}",
            self.service,
            self.tag,
            self.env,
            self.by,
            self.since.format("%Y-%m-%d %H:%M UTC"),
            self.because
        )
    }
}

/// The file a rollback writes its hold to.
pub fn file(env: &EnvName, service: &ServiceName) -> String {
    format!("{}/hold-{env}-{service}.yaml", super::DIR)
}

/// The text of a hold's policy file.
pub fn render(hold: &Hold) -> String {
    use crate::yaml::quote::{comment, double_quoted as quoted};
    let (service, tag, env) = (
        comment(hold.service.as_str()),
        comment(hold.tag.as_str()),
        comment(hold.env.as_str()),
    );
    format!(
        "# A hold left by a rollback: {service} {tag} and anything newer stay out of {env} and the\n# environments downstream of it. `promoter unhold {service} --env {env}` (an MR deleting this\n# file) lifts it.\nholds:\n  - service: {}\n    env: {}\n    tag: {}\n    by: {}\n    because: {}\n    since: {}\n",
        quoted(hold.service.as_str()),
        quoted(hold.env.as_str()),
        quoted(hold.tag.as_str()),
        quoted(&hold.by),
        quoted(&hold.because),
        hold.since.format("%Y-%m-%dT%H:%M:%SZ"),
    )
}

/// Is `candidate` the held tag or newer? Semantic versions compare as versions; other tags by
/// when they first landed in the held environment (a tag never seen there counts as newer: a
/// hold fails safe).
fn at_or_after(
    hold: &Hold,
    candidate: &Tag,
    first_landed: &impl Fn(&EnvName, &Tag) -> Option<DateTime<Utc>>,
) -> bool {
    if *candidate == hold.tag {
        return true;
    }
    if let (Some(held), Some(new)) = (hold.tag.semver(), candidate.semver()) {
        return new >= held;
    }
    match (
        first_landed(&hold.env, candidate),
        first_landed(&hold.env, &hold.tag),
    ) {
        (Some(new), Some(held)) => new >= held,
        _ => true,
    }
}

/// The hold gate for promoting `candidate` of `service` into `to`, whose chain of upstream
/// environments (nearest first) is `upstream`. A rollback request passes when it goes back to
/// an older tag; anything else waits for `unhold`. `first_landed` (when a tag first landed in
/// an environment, from the repository's history) tells the order of tags that are not versions.
#[allow(clippy::too_many_arguments)]
pub fn gate<'a>(
    holds: impl IntoIterator<Item = &'a Hold>,
    service: &ServiceName,
    to: &EnvName,
    upstream: &[EnvName],
    candidate: &Tag,
    rollback: bool,
    first_landed: impl Fn(&EnvName, &Tag) -> Option<DateTime<Utc>>,
) -> Option<Outcome> {
    let applying: Vec<&Hold> = holds
        .into_iter()
        .filter(|h| h.service == *service && (h.env == *to || upstream.contains(&h.env)))
        .collect();
    if applying.is_empty() {
        return None;
    }
    let blocking = applying
        .iter()
        .find(|h| at_or_after(h, candidate, &first_landed));
    Some(match blocking {
        Some(h) if !(rollback && *candidate != h.tag) => Outcome {
            gate: Gate::Hold,
            passed: false,
            message: format!(
                "{} ({}); `promoter unhold {} --env {}` lifts it",
                h.describe(),
                h.file,
                h.service,
                h.env
            ),
        },
        _ => Outcome {
            gate: Gate::Hold,
            passed: true,
            message: format!(
                "{candidate} is older than the held {} ({} since {})",
                applying[0].tag,
                applying[0].env,
                applying[0].since.format("%Y-%m-%d %H:%M UTC")
            ),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(tag: &str) -> Hold {
        Hold {
            service: ServiceName::new("api"),
            env: EnvName::new("qa"),
            tag: Tag::new(tag),
            by: "gitlab:alice".into(),
            because: "5xx".into(),
            since: "2026-11-30T20:00:00Z".parse().unwrap(),
            file: "policies/hold-qa-api.yaml".into(),
        }
    }

    fn check(holds: &[Hold], to: &str, upstream: &[&str], candidate: &str) -> Option<Outcome> {
        let upstream: Vec<EnvName> = upstream.iter().map(|e| EnvName::new(*e)).collect();
        gate(
            holds,
            &ServiceName::new("api"),
            &EnvName::new(to),
            &upstream,
            &Tag::new(candidate),
            false,
            |_: &EnvName, _: &Tag| None,
        )
    }

    #[test]
    fn the_held_tag_and_newer_are_blocked_in_the_env_and_downstream() {
        let holds = [hold("1.4.0")];
        for (to, upstream) in [("qa", &["dev"][..]), ("prod", &["qa", "dev"][..])] {
            for candidate in ["1.4.0", "1.4.1", "2.0.0"] {
                let got = check(&holds, to, upstream, candidate).unwrap();
                assert!(!got.passed, "{to} {candidate}");
                assert_eq!(
                    got.message,
                    "api 1.4.0 held in qa by gitlab:alice since 2026-11-30 20:00 UTC: 5xx (policies/hold-qa-api.yaml); `promoter unhold api --env qa` lifts it"
                );
            }
            assert!(check(&holds, to, upstream, "1.3.9").unwrap().passed);
        }
    }

    #[test]
    fn upstream_environments_and_other_services_are_not_held() {
        let holds = [hold("1.4.0")];
        assert_eq!(check(&holds, "dev", &[], "1.5.0"), None);
        let mut other = hold("1.4.0");
        other.service = ServiceName::new("web");
        assert_eq!(check(&[other], "qa", &["dev"], "1.5.0"), None);
    }

    #[test]
    fn a_rollback_to_an_older_tag_passes_but_not_to_the_held_one() {
        let holds = [hold("1.4.0")];
        let run = |candidate: &str| {
            gate(
                &holds,
                &ServiceName::new("api"),
                &EnvName::new("qa"),
                &[EnvName::new("dev")],
                &Tag::new(candidate),
                true,
                |_: &EnvName, _: &Tag| None,
            )
            .unwrap()
            .passed
        };
        assert!(run("1.3.0"));
        assert!(!run("1.4.0"));
    }

    #[test]
    fn unversioned_tags_never_seen_are_held_fail_safe() {
        assert!(
            !check(&[hold("main-abc")], "qa", &["dev"], "main-def")
                .unwrap()
                .passed
        );
    }

    #[test]
    fn the_file_round_trips() {
        let h = hold("1.4.0");
        let text = render(&h);
        let policy = super::super::parse(
            &file(&h.env, &h.service),
            text.as_bytes(),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(
            policy.holds,
            vec![Hold {
                file: file(&h.env, &h.service),
                ..h
            }]
        );
    }
}
