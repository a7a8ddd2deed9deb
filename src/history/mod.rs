//! `promoter history`: every tag each environment ran, per service, and the lead-time and
//! deployment-frequency statistics drawn from them. Pure: takes the snapshot and the
//! [`TagHistory`] as data and `now` as an argument; reads no clock, no git, no files.
//!
//! The history is read as of `now`: landings after `now` are left out and a tag replaced after
//! `now` still counts as current. The tag an environment ran before its current one (what a
//! rollback goes back to) is [`TagHistory::previous_tag`].

mod listing;
pub mod render;
mod samples;

pub use listing::Listing;
pub use samples::{LeadSample, LeadSamples};

use std::sync::LazyLock;

use chrono::{DateTime, TimeDelta, Utc};
use regex::Regex;
use serde::{Serialize, Serializer};

use crate::model::{Commit, EnvName, ServiceName, Tag};
use crate::repo::{Environment, Snapshot, TagHistory};

/// The statistics windows, in days before `now`.
const WINDOWS: [i64; 2] = [30, 90];

/// A length of time, serialized as `{"seconds", "human"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub TimeDelta);

impl Span {
    /// Whole seconds (negative when commit times run backwards).
    pub fn seconds(&self) -> i64 {
        self.0.num_seconds()
    }

    /// Short human form: `2d 4h`, `35m`, `-1h`.
    pub fn human(&self) -> String {
        let text = crate::policy::gate::human(self.0.abs().to_std().unwrap_or_default());
        if self.0 < TimeDelta::zero() {
            format!("-{text}")
        } else {
            text
        }
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shape {
            seconds: i64,
            human: String,
        }
        Shape {
            seconds: self.seconds(),
            human: self.human(),
        }
        .serialize(serializer)
    }
}

/// One tag running in one environment for one service: a stint of its `values.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deployment {
    /// The service.
    pub service: ServiceName,
    /// The environment.
    pub env: EnvName,
    /// The tag it ran.
    pub tag: Tag,
    /// The commit that brought the tag.
    pub landed: Commit,
    /// The commit that replaced it; `None` while it is current.
    pub left: Option<Commit>,
    /// How long it stayed: until `left`, or until `now` for the current one.
    pub duration: Span,
    /// The merge request that landed it, when the landing commit's message names one.
    pub mr: Option<u64>,
}

/// Lead time between two environments of the chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairStats {
    /// The earlier environment.
    pub from: EnvName,
    /// The later environment.
    pub to: EnvName,
    /// Median over the tags that first landed in `to` within the last 30 days; `None` when none.
    pub median_30d: Option<Span>,
    /// The same over 90 days.
    pub median_90d: Option<Span>,
    /// How many tags the 30-day median is taken over.
    pub samples_30d: usize,
    /// How many tags the 90-day median is taken over.
    pub samples_90d: usize,
}

/// How often an environment received a new tag.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvFrequency {
    /// The environment.
    pub env: EnvName,
    /// Landings (every deployment, a tag coming back included) within the last 30 days.
    pub landings_30d: usize,
    /// Landings within the last 90 days.
    pub landings_90d: usize,
    /// `landings_30d` per week, to two decimals.
    pub per_week_30d: f64,
}

/// Lead times for each pair of environments and deployment frequency per environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeadTimes {
    /// Adjacent pairs in chain order (dev→qa, qa→prod), then first→last end to end (dev→prod).
    pub pairs: Vec<PairStats>,
    /// One row per environment, in chain order.
    pub frequency: Vec<EnvFrequency>,
}

/// What `promoter history` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The instant the history was read as of.
    pub generated_at: DateTime<Utc>,
    /// Deployments by service, environment (chain order), then history order.
    pub deployments: Vec<Deployment>,
    /// Statistics over the deployments of the selected services.
    pub lead_times: LeadTimes,
    /// False outside git: then there is nothing to show.
    #[serde(skip)]
    pub history_known: bool,
}

/// Which part of the history to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this service (deployments and statistics).
    pub service: Option<ServiceName>,
    /// Only this environment (its deployments, the pairs it is part of, its frequency).
    pub env: Option<EnvName>,
}

/// Every tag each environment ran, per service, as of `now`: by service, environment in chain
/// order, then oldest first.
pub fn deployments(
    snapshot: &Snapshot,
    history: &TagHistory,
    now: DateTime<Utc>,
) -> Vec<Deployment> {
    let mut out = Vec::new();
    for service in snapshot.service_names() {
        list_service(snapshot, history, service, now, &mut out);
    }
    out
}

/// [`deployments`] of one service, into `out`.
fn list_service(
    snapshot: &Snapshot,
    history: &TagHistory,
    service: &ServiceName,
    now: DateTime<Utc>,
    out: &mut Vec<Deployment>,
) {
    for env in &snapshot.environments {
        let Some(found) = snapshot.service(&env.name, service) else {
            continue;
        };
        for stint in history.stints(&found.values_file()) {
            let Some(tag) = &stint.tag else { continue };
            if stint.since.time > now {
                continue;
            }
            let left = stint.until.clone().filter(|c| c.time <= now);
            let end = left.as_ref().map_or(now, |c| c.time);
            out.push(Deployment {
                service: service.clone(),
                env: env.name.clone(),
                tag: tag.clone(),
                mr: merge_request(&stint.since.summary),
                landed: stint.since.clone(),
                left,
                duration: Span(end - stint.since.time),
            });
        }
    }
}

/// Brings `deployments`, listed by [`deployments`] from `history` as of `then`, to `now`
/// (what the daemon does between two cycles on the same head): only how long the ongoing ones
/// have run changes, as long as no commit of `history` is dated after `then` and `now` is not
/// before it. `None` otherwise, untouched: list them again.
pub fn advance(
    deployments: &mut [Deployment],
    history: &TagHistory,
    then: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<()> {
    if now < then || history.latest().is_some_and(|latest| latest > then) {
        return None;
    }
    for d in deployments.iter_mut().filter(|d| d.left.is_none()) {
        d.duration = Span(now - d.landed.time);
    }
    Some(())
}

/// The merge request number in a GitLab merge commit's message: the body's `See merge request
/// group/project!12`, or a title ending in `(!12)` / `(group/project!12)`. `None` for the bare
/// `Merge branch '...' into 'main'` title, which names no number.
pub fn merge_request(message: &str) -> Option<u64> {
    static PATTERNS: LazyLock<[Regex; 2]> = LazyLock::new(|| {
        [
            Regex::new(r"(?m)^See merge request \S*!(\d+)\s*$"),
            Regex::new(r"(?m)\((?:[\w.-]+/)*[\w.-]*!(\d+)\)\s*$"),
        ]
        .map(|re| re.expect("merge request patterns are valid"))
    });
    PATTERNS
        .iter()
        .find_map(|re| re.captures(message)?.get(1)?.as_str().parse().ok())
}

/// Whether `time` is within `days` days before `now`: `now - days <= time <= now`.
fn within(time: DateTime<Utc>, now: DateTime<Utc>, days: i64) -> bool {
    time <= now && now - time <= TimeDelta::days(days)
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
fn median(mut values: Vec<TimeDelta>) -> Option<Span> {
    values.sort();
    let mid = values.len() / 2;
    match values.len() {
        0 => None,
        n if n % 2 == 1 => Some(Span(values[mid])),
        _ => Some(Span((values[mid - 1] + values[mid]) / 2)),
    }
}

/// The pairs lead time is measured over: each environment after the one it promotes from,
/// then, for each last environment of a chain at least three long, first to last.
pub fn pairs(environments: &[Environment]) -> Vec<(EnvName, EnvName)> {
    let upstream = |name: &EnvName| {
        environments
            .iter()
            .find(|e| e.name == *name)
            .and_then(|e| e.promotes_from.as_ref())
    };
    let mut out: Vec<_> = environments
        .iter()
        .filter_map(|e| Some((e.promotes_from.clone()?, e.name.clone())))
        .collect();
    for env in environments {
        let is_last = !environments
            .iter()
            .any(|e| e.promotes_from.as_ref() == Some(&env.name));
        let (mut root, mut depth) = (&env.name, 0);
        // Bounded: the chain is validated acyclic, but a loop must not hang the command.
        while let Some(up) = upstream(root).filter(|_| depth < environments.len()) {
            root = up;
            depth += 1;
        }
        if is_last && depth >= 2 {
            out.push((root.clone(), env.name.clone()));
        }
    }
    out
}

/// Lead times between environments and deployment frequency per environment, over the last
/// 30 and 90 days before `now`. Each tag counts once per service, by its first landing in each
/// environment; a tag that skipped the earlier environment, or that one commit set in both,
/// has no sample for that pair.
pub fn lead_times(
    deployments: &[Deployment],
    environments: &[Environment],
    now: DateTime<Utc>,
) -> LeadTimes {
    lead_times_of(
        &LeadSamples::of(deployments, environments),
        environments,
        now,
    )
}

/// [`lead_times`] from the samples of the deployments already found.
pub fn lead_times_of(
    samples: &LeadSamples,
    environments: &[Environment],
    now: DateTime<Utc>,
) -> LeadTimes {
    let pairs = samples
        .pairs
        .iter()
        .enumerate()
        .map(|(pair, (from, to))| {
            let [mut in_30, mut in_90] = [Vec::new(), Vec::new()];
            for sample in samples.of_pair(pair) {
                if sample.earlier_at > now {
                    continue;
                }
                let lead = sample.landed_at - sample.earlier_at;
                for (days, samples) in WINDOWS.into_iter().zip([&mut in_30, &mut in_90]) {
                    if within(sample.landed_at, now, days) {
                        samples.push(lead);
                    }
                }
            }
            PairStats {
                from: from.clone(),
                to: to.clone(),
                samples_30d: in_30.len(),
                samples_90d: in_90.len(),
                median_30d: median(in_30),
                median_90d: median(in_90),
            }
        })
        .collect();
    let frequency = environments
        .iter()
        .map(|env| {
            let [landings_30d, landings_90d] = WINDOWS
                .map(|days| samples.landings_between(&env.name, now - TimeDelta::days(days), now));
            EnvFrequency {
                env: env.name.clone(),
                landings_30d,
                landings_90d,
                per_week_30d: (landings_30d as f64 * 7.0 / 30.0 * 100.0).round() / 100.0,
            }
        })
        .collect();
    LeadTimes { pairs, frequency }
}

/// The history `promoter history` shows: deployments of the filtered services and
/// environments, and statistics over the filtered services (every environment's landings are
/// needed for lead time, so the environment filter applies after).
pub fn report(
    snapshot: &Snapshot,
    history: &TagHistory,
    filter: &Filter,
    now: DateTime<Utc>,
) -> Report {
    let mut all = deployments(snapshot, history, now);
    if let Some(service) = &filter.service {
        all.retain(|d| d.service == *service);
    }
    let mut lead = lead_times(&all, &snapshot.environments, now);
    if let Some(env) = &filter.env {
        all.retain(|d| d.env == *env);
        lead.pairs.retain(|p| p.from == *env || p.to == *env);
        lead.frequency.retain(|f| f.env == *env);
    }
    Report {
        generated_at: now,
        deployments: all,
        lead_times: lead,
        history_known: history.is_known(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CommitInfo;
    use crate::testkit;

    const DAY: i64 = 86_400;

    /// The instant `secs` seconds after 2026-01-01T00:00:00Z.
    fn t(secs: i64) -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + TimeDelta::seconds(secs)
    }

    fn commit(n: usize, secs: i64, summary: &str) -> Commit {
        Commit::from(CommitInfo {
            sha: format!("{n:040x}"),
            time: t(secs),
            author: "dev".into(),
            summary: summary.into(),
        })
    }

    fn snapshot() -> Snapshot {
        let deployed: Vec<_> = ["dev", "qa", "prod"]
            .into_iter()
            .flat_map(|env| [(env, "api", "0.0.1"), (env, "web", "0.0.1")])
            .collect();
        Snapshot::load(&testkit::tree(&deployed))
    }

    /// A history from `(seconds, env, service, tag)` changes, one commit each, in order.
    fn history(changes: &[Change]) -> TagHistory {
        let mut h = TagHistory::new();
        for (n, (secs, env, service, tag)) in changes.iter().enumerate() {
            let c = commit(n + 1, *secs, &format!("{service} {tag:?} in {env}"));
            h.record(&c, &testkit::values_path(env, service), *tag);
        }
        h
    }

    /// `(seconds, env, service, tag)`: one change of a history.
    type Change = (i64, &'static str, &'static str, Option<&'static str>);

    /// `(from, to, median_30d, samples_30d, median_90d, samples_90d)` in seconds.
    type Row = (
        &'static str,
        &'static str,
        Option<i64>,
        usize,
        Option<i64>,
        usize,
    );

    fn rows(lead: &LeadTimes) -> Vec<Row> {
        lead.pairs
            .iter()
            .map(|p| {
                let name = |e: &EnvName| -> &'static str {
                    ["dev", "qa", "prod"].into_iter().find(|n| e == n).unwrap()
                };
                (
                    name(&p.from),
                    name(&p.to),
                    p.median_30d.map(|s| s.seconds()),
                    p.samples_30d,
                    p.median_90d.map(|s| s.seconds()),
                    p.samples_90d,
                )
            })
            .collect()
    }

    #[test]
    fn pairs_are_adjacent_then_end_to_end() {
        let names: Vec<_> = pairs(&snapshot().environments)
            .into_iter()
            .map(|(a, b)| format!("{a}->{b}"))
            .collect();
        assert_eq!(names, ["dev->qa", "qa->prod", "dev->prod"]);
    }

    #[test]
    fn lead_times() {
        let now = 200 * DAY;
        let cases: Vec<(&str, Vec<Change>, [Row; 3])> = vec![
            (
                "empty history",
                vec![],
                [
                    ("dev", "qa", None, 0, None, 0),
                    ("qa", "prod", None, 0, None, 0),
                    ("dev", "prod", None, 0, None, 0),
                ],
            ),
            (
                "odd count: the middle one",
                vec![
                    (now - 20 * DAY, "dev", "api", Some("1.0.0")),
                    (now - 19 * DAY, "qa", "api", Some("1.0.0")),
                    (now - 15 * DAY, "dev", "api", Some("1.1.0")),
                    (now - 11 * DAY, "qa", "api", Some("1.1.0")),
                    (now - 10 * DAY, "dev", "web", Some("2.0.0")),
                    (now - 8 * DAY, "qa", "web", Some("2.0.0")),
                ],
                [
                    ("dev", "qa", Some(2 * DAY), 3, Some(2 * DAY), 3),
                    ("qa", "prod", None, 0, None, 0),
                    ("dev", "prod", None, 0, None, 0),
                ],
            ),
            (
                "even count: the mean of the middle two",
                vec![
                    (now - 20 * DAY, "dev", "api", Some("1.0.0")),
                    (now - 19 * DAY, "qa", "api", Some("1.0.0")),
                    (now - 15 * DAY, "dev", "api", Some("1.1.0")),
                    (now - 13 * DAY, "qa", "api", Some("1.1.0")),
                    (now - 12 * DAY, "dev", "api", Some("1.2.0")),
                    (now - 2 * DAY, "qa", "api", Some("1.2.0")),
                    (now - 10 * DAY, "dev", "web", Some("2.0.0")),
                    (now - 7 * DAY, "qa", "web", Some("2.0.0")),
                ],
                [
                    ("dev", "qa", Some(5 * DAY / 2), 4, Some(5 * DAY / 2), 4),
                    ("qa", "prod", None, 0, None, 0),
                    ("dev", "prod", None, 0, None, 0),
                ],
            ),
            (
                // Counted by the landing in the later environment: exactly 30 (90) days before
                // now is inside, one second more is outside; after now is not history yet.
                "windows at their boundaries",
                vec![
                    (now - 100 * DAY, "dev", "api", Some("1.0.0")),
                    (now - 90 * DAY - 1, "qa", "api", Some("1.0.0")),
                    (now - 100 * DAY, "dev", "web", Some("2.0.0")),
                    (now - 90 * DAY, "qa", "web", Some("2.0.0")),
                    (now - 40 * DAY - 1, "dev", "api", Some("1.1.0")),
                    (now - 30 * DAY - 1, "qa", "api", Some("1.1.0")),
                    (now - 31 * DAY, "dev", "web", Some("2.1.0")),
                    (now - 30 * DAY, "qa", "web", Some("2.1.0")),
                    (now - DAY, "dev", "api", Some("1.2.0")),
                    (now + 1, "qa", "api", Some("1.2.0")),
                ],
                [
                    ("dev", "qa", Some(DAY), 1, Some(10 * DAY), 3),
                    ("qa", "prod", None, 0, None, 0),
                    ("dev", "prod", None, 0, None, 0),
                ],
            ),
            (
                "a tag that skipped qa counts end to end only",
                vec![
                    (now - 10 * DAY, "dev", "api", Some("1.0.0")),
                    (now - 9 * DAY, "qa", "api", Some("1.0.0")),
                    (now - 7 * DAY, "prod", "api", Some("1.0.0")),
                    (now - 5 * DAY, "dev", "api", Some("1.0.1")),
                    (now - 4 * DAY, "prod", "api", Some("1.0.1")),
                ],
                [
                    ("dev", "qa", Some(DAY), 1, Some(DAY), 1),
                    ("qa", "prod", Some(2 * DAY), 1, Some(2 * DAY), 1),
                    ("dev", "prod", Some(2 * DAY), 2, Some(2 * DAY), 2),
                ],
            ),
            (
                "a tag landing twice counts from its first landing",
                vec![
                    (now - 10 * DAY, "dev", "api", Some("1.0.0")),
                    (now - 9 * DAY, "dev", "api", Some("1.1.0")),
                    (now - 8 * DAY, "dev", "api", Some("1.0.0")),
                    (now - 6 * DAY, "qa", "api", Some("1.0.0")),
                    (now - 5 * DAY, "qa", "api", None),
                    (now - 4 * DAY, "qa", "api", Some("1.0.0")),
                ],
                [
                    ("dev", "qa", Some(4 * DAY), 1, Some(4 * DAY), 1),
                    ("qa", "prod", None, 0, None, 0),
                    ("dev", "prod", None, 0, None, 0),
                ],
            ),
        ];
        let snapshot = snapshot();
        for (name, changes, expected) in cases {
            let h = history(&changes);
            let all = deployments(&snapshot, &h, t(now));
            let lead = super::lead_times(&all, &snapshot.environments, t(now));
            assert_eq!(rows(&lead), expected, "{name}");
        }
    }

    #[test]
    fn one_commit_setting_both_environments_is_no_promotion() {
        let mut h = TagHistory::new();
        let import = commit(1, 0, "import");
        for env in ["dev", "qa"] {
            h.record(&import, &testkit::values_path(env, "api"), Some("1.0.0"));
        }
        let promotion = commit(2, DAY, "promote");
        h.record(
            &promotion,
            &testkit::values_path("prod", "api"),
            Some("1.0.0"),
        );
        let snapshot = snapshot();
        let all = deployments(&snapshot, &h, t(2 * DAY));
        let lead = super::lead_times(&all, &snapshot.environments, t(2 * DAY));
        assert_eq!(
            rows(&lead),
            [
                ("dev", "qa", None, 0, None, 0),
                ("qa", "prod", Some(DAY), 1, Some(DAY), 1),
                ("dev", "prod", Some(DAY), 1, Some(DAY), 1),
            ]
        );
    }

    #[test]
    fn frequency_counts_every_landing_in_each_window() {
        let now = 200 * DAY;
        let h = history(&[
            (now - 100 * DAY, "dev", "api", Some("1.0.0")),
            (now - 90 * DAY, "dev", "api", Some("1.1.0")),
            (now - 31 * DAY, "dev", "api", Some("1.2.0")),
            (now - 30 * DAY, "dev", "api", Some("1.1.0")),
            (now - 2 * DAY, "dev", "web", Some("2.0.0")),
            (now - DAY, "qa", "web", Some("2.0.0")),
            (now + DAY, "qa", "web", Some("2.1.0")),
        ]);
        let snapshot = snapshot();
        let lead = super::lead_times(
            &deployments(&snapshot, &h, t(now)),
            &snapshot.environments,
            t(now),
        );
        let got: Vec<_> = lead
            .frequency
            .iter()
            .map(|f| {
                (
                    f.env.to_string(),
                    f.landings_30d,
                    f.landings_90d,
                    f.per_week_30d,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("dev".to_string(), 2, 4, 0.47),
                ("qa".to_string(), 1, 1, 0.23),
                ("prod".to_string(), 0, 0, 0.0),
            ]
        );
    }

    #[test]
    fn deployments_are_the_stints_as_of_now() {
        let now = 10 * DAY;
        let h = history(&[
            (0, "dev", "api", Some("1.0.0")),
            (DAY, "dev", "api", Some("1.1.0")),
            (2 * DAY, "dev", "api", None),
            (3 * DAY, "dev", "api", Some("1.2.0")),
            (DAY, "qa", "api", Some("1.0.0")),
            (12 * DAY, "qa", "api", Some("1.1.0")),
        ]);
        let got: Vec<_> = deployments(&snapshot(), &h, t(now))
            .iter()
            .map(|d| {
                (
                    format!("{} {} {}", d.service, d.env, d.tag),
                    d.landed.time,
                    d.left.as_ref().map(|c| c.time),
                    d.duration.seconds(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("api dev 1.0.0".to_string(), t(0), Some(t(DAY)), DAY),
                ("api dev 1.1.0".to_string(), t(DAY), Some(t(2 * DAY)), DAY),
                ("api dev 1.2.0".to_string(), t(3 * DAY), None, 7 * DAY),
                // Replaced after now: still current as of now; 1.1.0 has not landed yet.
                ("api qa 1.0.0".to_string(), t(DAY), None, 9 * DAY),
            ]
        );
    }

    #[test]
    fn empty_or_unknown_history_has_no_deployments() {
        for h in [TagHistory::new(), TagHistory::unknown()] {
            let report = report(&snapshot(), &h, &Filter::default(), t(0));
            assert!(report.deployments.is_empty());
            assert_eq!(report.history_known, h.is_known());
            assert!(
                report
                    .lead_times
                    .pairs
                    .iter()
                    .all(|p| p.median_90d.is_none())
            );
        }
    }

    #[test]
    fn merge_request_numbers() {
        let cases = [
            ("Merge branch 'promoter/qa/api' into 'main'", None),
            (
                "Merge branch 'promoter/qa/api' into 'main'\n\nPromote api 1.1.0 to qa\n\nSee merge request team/calculator!12\n",
                Some(12),
            ),
            ("Promote api 1.1.0 to qa (!7)", Some(7)),
            ("Promote api 1.1.0 to qa (team/calculator!8)", Some(8)),
            ("release!3 of api", None),
            ("api 1.0.0 in dev", None),
        ];
        for (message, expected) in cases {
            assert_eq!(merge_request(message), expected, "{message}");
        }
        let mut h = TagHistory::new();
        let landing = commit(1, 0, "Promote api 1.1.0 to qa (!7)");
        h.record(&landing, &testkit::values_path("qa", "api"), Some("1.1.0"));
        assert_eq!(deployments(&snapshot(), &h, t(DAY))[0].mr, Some(7));
    }

    #[test]
    fn filters_select_deployments_and_statistics() {
        let h = history(&[
            (0, "dev", "api", Some("1.0.0")),
            (DAY, "qa", "api", Some("1.0.0")),
            (3 * DAY, "prod", "api", Some("1.0.0")),
            (0, "dev", "web", Some("2.0.0")),
            (3 * DAY, "qa", "web", Some("2.0.0")),
        ]);
        let filter = Filter {
            service: Some("api".into()),
            env: Some("qa".into()),
        };
        let report = report(&snapshot(), &h, &filter, t(5 * DAY));
        let tags: Vec<_> = report
            .deployments
            .iter()
            .map(|d| format!("{} {} {}", d.service, d.env, d.tag))
            .collect();
        assert_eq!(tags, ["api qa 1.0.0"]);
        assert_eq!(
            rows(&report.lead_times),
            [
                ("dev", "qa", Some(DAY), 1, Some(DAY), 1),
                ("qa", "prod", Some(2 * DAY), 1, Some(2 * DAY), 1),
            ]
        );
        let envs: Vec<_> = report
            .lead_times
            .frequency
            .iter()
            .map(|f| f.env.to_string())
            .collect();
        assert_eq!(envs, ["qa"]);
    }

    #[test]
    fn spans_serialize_as_seconds_and_human() {
        let cases = [
            (
                TimeDelta::seconds(90_000),
                r#"{"seconds":90000,"human":"1d 1h"}"#,
            ),
            (
                TimeDelta::seconds(-3600),
                r#"{"seconds":-3600,"human":"-1h"}"#,
            ),
            (TimeDelta::zero(), r#"{"seconds":0,"human":"0s"}"#),
        ];
        for (delta, json) in cases {
            assert_eq!(serde_json::to_string(&Span(delta)).unwrap(), json);
        }
    }

    #[test]
    fn deployments_advanced_to_a_later_now_are_those_listed_then() {
        let h = history(&[
            (DAY, "dev", "api", Some("1.0.0")),
            (2 * DAY, "qa", "api", Some("1.0.0")),
            (3 * DAY, "dev", "api", Some("1.1.0")),
        ]);
        let s = snapshot();
        let mut listed = deployments(&s, &h, t(4 * DAY));
        assert!(advance(&mut listed, &h, t(4 * DAY), t(9 * DAY)).is_some());
        assert_eq!(listed, deployments(&s, &h, t(9 * DAY)));
        assert!(
            advance(&mut listed, &h, t(9 * DAY), t(8 * DAY)).is_none(),
            "time went back"
        );
        // A commit dated after the listing (a clock ahead) may start or end a deployment
        // by `now`: list again.
        let mut early = deployments(&s, &h, t(2 * DAY + 1));
        assert!(advance(&mut early, &h, t(2 * DAY + 1), t(9 * DAY)).is_none());
        assert_ne!(early, deployments(&s, &h, t(9 * DAY)));
    }
}
