//! The daemon reads only what changed since its last cycle (folders by tree id, the tag history
//! by the new commits); `reconcile --once` reads everything. Over random histories (tags
//! changed, services added and removed, policies and environments edited, force pushes) both
//! give the same snapshot, history and plan at every head, and the deployments, lead-time
//! samples and dashboard the daemon brings forward from head to head equal those built whole.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use promoter::dashboard::{self, Kept};
use promoter::git::mirror::{Credentials, Mirror};
use promoter::history::Listing;
use promoter::plan::{self, Facts};
use promoter::reconcile::observe::{self, Learned, Read};
use proptest::prelude::*;

use crate::support::Origin;

const T0: &str = "2026-11-01T00:00:00Z";
const ENVS: [&str; 3] = ["dev", "qa", "prod"];
const SERVICES: [&str; 2] = ["maths-api", "client"];

/// One change pushed to main.
#[derive(Debug, Clone)]
enum Op {
    /// A service's tag, in values.yaml and release.yml.
    Tag {
        env: usize,
        service: usize,
        minor: u8,
    },
    /// A copy of a service under another folder name.
    Add { env: usize, service: usize, n: u8 },
    /// A service folder removed.
    Remove { env: usize, service: usize },
    /// qa's soak policy changed.
    Policy,
    /// An environment file edited (a comment): its definitions are read again.
    Environment { env: usize },
    /// main reset `back` first-parent commits, then one new commit on it.
    ForcePush { back: u8, minor: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..2usize, 0..6u8).prop_map(|(env, service, minor)| Op::Tag { env, service, minor }),
        1 => (0..3usize, 0..2usize, 0..3u8).prop_map(|(env, service, n)| Op::Add { env, service, n }),
        1 => (0..3usize, 0..2usize).prop_map(|(env, service)| Op::Remove { env, service }),
        1 => Just(Op::Policy),
        1 => (0..3usize).prop_map(|env| Op::Environment { env }),
        1 => (1..4u8, 0..6u8).prop_map(|(back, minor)| Op::ForcePush { back, minor }),
    ]
}

fn dir(env: usize, service: &str) -> String {
    format!("clusters/{}/calculator/{service}", ENVS[env])
}

fn exists(origin: &Origin, path: &str) -> bool {
    let repo = git2::Repository::open_bare(&origin.bare).unwrap();
    let tree = repo
        .revparse_single("main")
        .unwrap()
        .peel_to_tree()
        .unwrap();
    tree.get_path(std::path::Path::new(path)).is_ok()
}

/// `service`'s tag in `env` set to `1.<minor>.0`, when the service is there.
fn set_tag(origin: &Origin, env: usize, service: &str, minor: u8, at: &str) {
    let folder = dir(env, service);
    let (values, release) = (
        format!("{folder}/values.yaml"),
        format!("{folder}/release.yml"),
    );
    if !exists(origin, &values) {
        return;
    }
    let text = origin.read("main", &values);
    let Some(old) = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("tag: ").map(str::to_string))
    else {
        return;
    };
    let new = format!("1.{minor}.0");
    if old == new {
        return;
    }
    let release_text = origin
        .read("main", &release)
        .replace(&format!("{service}:{old}\""), &format!("{service}:{new}\""));
    let values_text = text.replacen(&format!("tag: {old}"), &format!("tag: {new}"), 1);
    origin.write(
        &[
            (values.as_str(), Some(values_text.as_str())),
            (release.as_str(), Some(release_text.as_str())),
        ],
        &format!("{service} {new} in {}", ENVS[env]),
        at,
    );
}

fn apply(origin: &Origin, op: &Op, at: &str) {
    match *op {
        Op::Tag {
            env,
            service,
            minor,
        } => set_tag(origin, env, SERVICES[service], minor, at),
        Op::Add { env, service, n } => {
            let from = dir(env, SERVICES[service]);
            let to = dir(env, &format!("{}-{n}", SERVICES[service]));
            if !exists(origin, &format!("{from}/values.yaml")) {
                return;
            }
            let files: Vec<(String, String)> = ["values.yaml", "release.yml"]
                .iter()
                .map(|f| {
                    (
                        format!("{to}/{f}"),
                        origin.read("main", &format!("{from}/{f}")),
                    )
                })
                .collect();
            let files: Vec<(&str, Option<&str>)> = files
                .iter()
                .map(|(p, t)| (p.as_str(), Some(t.as_str())))
                .collect();
            origin.write(&files, "a new service", at);
        }
        Op::Remove { env, service } => {
            let folder = dir(env, SERVICES[service]);
            if !exists(origin, &format!("{folder}/values.yaml")) {
                return;
            }
            let (values, release) = (
                format!("{folder}/values.yaml"),
                format!("{folder}/release.yml"),
            );
            origin.write(
                &[(values.as_str(), None), (release.as_str(), None)],
                "a service removed",
                at,
            );
        }
        Op::Policy => {
            let text = origin.read("main", "policies/qa.yaml");
            let text = if text.contains("soak: 1h") {
                text.replace("soak: 1h", "soak: 3h")
            } else {
                text.replace("soak: 3h", "soak: 1h")
            };
            origin.write(&[("policies/qa.yaml", Some(&text))], "qa soak", at);
        }
        Op::Environment { env } => {
            let file = format!("environments/{}.yaml", ENVS[env]);
            let text = format!("{}# edited at {at}\n", origin.read("main", &file));
            origin.write(&[(file.as_str(), Some(&text))], "environment edited", at);
        }
        Op::ForcePush { back, minor } => {
            let repo = git2::Repository::open_bare(&origin.bare).unwrap();
            let mut commit = repo
                .revparse_single("main")
                .unwrap()
                .peel_to_commit()
                .unwrap();
            for _ in 0..back {
                match commit.parent(0) {
                    Ok(parent) => commit = parent,
                    Err(_) => break,
                }
            }
            repo.reference("refs/heads/main", commit.id(), true, "force push")
                .unwrap();
            set_tag(origin, 0, "client", minor, at);
        }
    }
}

/// What both paths must agree on, as text: the snapshot, every service's stints, the plan.
fn seen(read: &Read, now: DateTime<Utc>) -> (String, String, plan::Plan) {
    let open = BTreeMap::new();
    let plan = plan::plan(
        &read.snapshot,
        Facts::offline(&read.history, &open),
        &[],
        now,
    );
    let mut stints = String::new();
    for services in read.snapshot.services.values() {
        for service in services.values() {
            let file = service.values_file();
            stints.push_str(&format!("{file}: {:?}\n", read.history.stints(&file)));
        }
    }
    (format!("{:?}", read.snapshot), stints, plan)
}

fn at(start: DateTime<Utc>, hours: i64) -> String {
    (start + Duration::hours(hours)).to_rfc3339()
}

/// The plan of `read` at `now`, as the reconciler shares it.
fn plan_of(read: &Read, now: DateTime<Utc>) -> Arc<plan::Plan> {
    let open = BTreeMap::new();
    Arc::new(plan::plan(
        &read.snapshot,
        Facts::offline(&read.history, &open),
        &[],
        now,
    ))
}

/// What the daemon keeps from cycle to cycle and brings to each new read.
struct Carried {
    listing: Listing,
    shown: Kept,
}

impl Carried {
    fn new(read: &Read, now: DateTime<Utc>) -> Self {
        let lead = dashboard::lead::view(&read.snapshot, &read.history, now);
        Self {
            listing: Listing::new(&read.snapshot, &read.history, now),
            shown: Kept::new(
                (&read.snapshot, &read.history),
                &plan_of(read, now),
                lead,
                &[],
                now,
            ),
        }
    }

    /// Brings both to `read` at `now`; whether the deployments followed (not listed whole).
    fn follow(&mut self, read: &Read, now: DateTime<Utc>) -> (bool, Arc<dashboard::DashboardData>) {
        let followed =
            self.listing
                .follow(&read.snapshot, &read.history, read.changed.as_ref(), now);
        if !followed {
            self.listing = Listing::new(&read.snapshot, &read.history, now);
        }
        let lead = dashboard::lead::view(&read.snapshot, &read.history, now);
        let data = self.shown.update(
            (&read.snapshot, &read.history),
            &plan_of(read, now),
            lead,
            &[],
            now,
            read.changed.as_ref(),
        );
        (followed, data)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn the_incremental_read_plans_as_the_full_read(ops in proptest::collection::vec(op(), 1..8)) {
        let origin = Origin::new(T0, |s| s.without_network_gates());
        let state = tempfile::tempdir().unwrap();
        let mut mirror =
            Mirror::open(&state.path().join("mirror.git"), &origin.url(), Credentials::None)
                .unwrap();
        let keys = crate::support::signing_keys();
        let mut learned = Learned::default();
        let start: DateTime<Utc> = T0.parse().unwrap();
        let first = observe::read(&mut mirror, "main", &keys, Some(&mut learned)).unwrap();
        let mut kept = Carried::new(&first, start);
        drop(first);
        for (step, op) in ops.iter().enumerate() {
            let when = at(start, 2 * step as i64 + 1);
            apply(&origin, op, &when);
            let now: DateTime<Utc> = at(start, 2 * step as i64 + 2).parse().unwrap();
            let incremental = observe::read(&mut mirror, "main", &keys, Some(&mut learned)).unwrap();
            let full = observe::read(&mut mirror, "main", &keys, None).unwrap();
            prop_assert_eq!(incremental.head, full.head);
            let (a, b) = (seen(&incremental, now), seen(&full, now));
            prop_assert_eq!(&a.0, &b.0, "snapshot after {:?}", op);
            prop_assert_eq!(&a.1, &b.1, "history after {:?}", op);
            prop_assert_eq!(&a.2, &b.2, "plan after {:?}", op);
            // What the daemon brings forward equals what a full read builds whole.
            let (followed, shown) = kept.follow(&incremental, now);
            let whole = Listing::new(&full.snapshot, &full.history, now);
            prop_assert_eq!(&kept.listing.deployments, &whole.deployments, "deployments after {:?} (followed: {})", op, followed);
            prop_assert_eq!(&kept.listing.samples, &whole.samples, "samples after {:?}", op);
            let built = dashboard::build(&full.snapshot, &plan_of(&full, now), &full.history, &[], now);
            prop_assert_eq!(&*shown, &built, "dashboard after {:?}", op);
            // A plain release follows the last head: nothing is listed whole.
            if matches!(op, Op::Tag { .. } | Op::Policy) {
                prop_assert!(followed, "a release or a policy change is followed, not listed whole");
            }
        }
    }
}

#[test]
fn one_release_reads_one_folder_again() {
    let origin = Origin::new(T0, |s| s.without_network_gates());
    let state = tempfile::tempdir().unwrap();
    let mut mirror = Mirror::open(
        &state.path().join("mirror.git"),
        &origin.url(),
        Credentials::None,
    )
    .unwrap();
    let keys = crate::support::signing_keys();
    let mut learned = Learned::default();
    observe::read(&mut mirror, "main", &keys, Some(&mut learned)).unwrap();
    assert_eq!(
        learned.folders_read_last(),
        6,
        "the first read reads every service"
    );
    set_tag(&origin, 0, "maths-api", 9, "2026-11-02T00:00:00Z");
    observe::read(&mut mirror, "main", &keys, Some(&mut learned)).unwrap();
    assert_eq!(learned.folders_read_last(), 1, "only the released service");
    origin.write(
        &[("policies/qa.yaml", Some("environments: [qa]\nsoak: 2h\n"))],
        "a policy",
        "2026-11-03T00:00:00Z",
    );
    observe::read(&mut mirror, "main", &keys, Some(&mut learned)).unwrap();
    assert_eq!(learned.folders_read_last(), 0, "a policy is no service");
}

/// The daemon checks only what changed since the head it verified last; a missing object in
/// what changed is still found, named by its path, and stops the read.
#[test]
fn a_missing_object_in_a_changed_folder_is_found_by_the_incremental_check() {
    let origin = Origin::new(T0, |s| s.without_network_gates());
    let state = tempfile::tempdir().unwrap();
    let path = state.path().join("mirror.git");
    let mut mirror = Mirror::open(&path, &origin.url(), Credentials::None).unwrap();
    let verified = mirror.fetch("main").unwrap();
    let text = "a note no other file holds\n";
    let author = promoter::git::mirror::Author {
        name: "someone".into(),
        email: "someone@example.com".into(),
        keys: crate::support::signing_keys(),
    };
    let files = [(
        "clusters/qa/calculator/maths-api/NOTES.md".to_string(),
        Some(text.to_string()),
    )];
    let next = mirror
        .commit_files(verified, &files, "a note", &author, 1_800_000_000)
        .unwrap();
    mirror
        .verify_tree_since(next, Some(verified))
        .expect("every object is there");

    // The new blob is a loose object of the mirror: take it away.
    let blob = git2::Oid::hash_object(git2::ObjectType::Blob, text.as_bytes()).unwrap();
    let hex = blob.to_string();
    std::fs::remove_file(path.join("objects").join(&hex[..2]).join(&hex[2..])).unwrap();

    for (check, result) in [
        ("since", mirror.verify_tree_since(next, Some(verified))),
        ("whole", mirror.verify_tree(next)),
    ] {
        let error = result.expect_err(check).to_string();
        assert!(
            error.contains("clusters/qa/calculator/maths-api/NOTES.md") && error.contains(&hex),
            "{check}: {error}"
        );
    }
    // What did not change since the verified head is not checked again.
    mirror
        .verify_tree_since(verified, Some(verified))
        .expect("nothing changed");
}

/// Heads the random operations never make, each followed as the daemon does and compared with
/// a whole build: a service moved to another folder under the same name (its row stays: the
/// folder comes from the first environment) and to a nested folder (its row moves), commits
/// dated in the future and in the past, cycles that read and then fail (the next change starts
/// from a snapshot nothing kept), the same head read again later, and a move back.
#[test]
fn scripted_heads_are_followed_as_built_whole() {
    let origin = Origin::new(T0, |s| s.without_network_gates());
    let state = tempfile::tempdir().unwrap();
    let mut mirror = Mirror::open(
        &state.path().join("mirror.git"),
        &origin.url(),
        Credentials::None,
    )
    .unwrap();
    let keys = crate::support::signing_keys();
    let mut learned = Learned::default();
    let start: DateTime<Utc> = T0.parse().unwrap();
    let first = observe::read(&mut mirror, "main", &keys, Some(&mut learned)).unwrap();
    let mut kept = Carried::new(&first, start);
    drop(first);
    let moved = |from: &str, to: &str, at: &str| {
        let mut files: Vec<(String, Option<String>)> = Vec::new();
        for f in ["values.yaml", "release.yml"] {
            let text = origin.read("main", &format!("{from}/{f}"));
            files.push((format!("{to}/{f}"), Some(text)));
            files.push((format!("{from}/{f}"), None));
        }
        let files: Vec<(&str, Option<&str>)> = files
            .iter()
            .map(|(p, t)| (p.as_str(), t.as_deref()))
            .collect();
        origin.write(&files, "moved", at);
    };
    let released_in = |values: &str, tag: &str, at: &str| {
        let text = origin.read("main", values);
        let old = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("tag: ").map(str::to_string))
            .unwrap();
        let new = text.replacen(&format!("tag: {old}"), &format!("tag: {tag}"), 1);
        origin.write(&[(values, Some(&new))], "released", at);
    };
    /// What to do, the cycle's clock in hours after T0, and whether it fails after reading.
    type Step<'a> = (Box<dyn Fn() + 'a>, i64, bool);
    let steps: Vec<Step> = vec![
        (
            Box::new(|| {
                moved(
                    "clusters/qa/calculator/maths-api",
                    "clusters/qa/other/maths-api",
                    &at(start, 1),
                )
            }),
            2,
            false,
        ),
        (
            Box::new(|| {
                released_in(
                    "clusters/qa/other/maths-api/values.yaml",
                    "1.7.0",
                    &at(start, 3),
                )
            }),
            4,
            false,
        ),
        (
            Box::new(|| {
                moved(
                    "clusters/dev/calculator/client",
                    "clusters/dev/a/b/client",
                    &at(start, 5),
                )
            }),
            6,
            false,
        ),
        (
            Box::new(|| set_tag(&origin, 1, "client", 4, &at(start, 6))),
            7,
            true,
        ),
        (
            Box::new(|| set_tag(&origin, 2, "maths-api", 4, &at(start, 7))),
            7,
            false,
        ),
        (
            Box::new(|| set_tag(&origin, 0, "maths-api", 4, &at(start, 100))),
            8,
            false,
        ),
        (Box::new(|| {}), 9, false),
        (
            Box::new(|| set_tag(&origin, 1, "client", 3, &at(start, -5))),
            10,
            true,
        ),
        (
            Box::new(|| set_tag(&origin, 2, "maths-api", 3, &at(start, 11))),
            12,
            false,
        ),
        (Box::new(|| {}), 120, false),
        (
            Box::new(|| set_tag(&origin, 0, "client", 5, &at(start, 121))),
            122,
            false,
        ),
        (
            Box::new(|| {
                moved(
                    "clusters/qa/other/maths-api",
                    "clusters/qa/calculator/maths-api",
                    &at(start, 123),
                )
            }),
            124,
            false,
        ),
        (
            Box::new(|| set_tag(&origin, 1, "maths-api", 2, &at(start, 125))),
            126,
            false,
        ),
    ];
    for (i, (step, hours, fails)) in steps.iter().enumerate() {
        step();
        let now = start + Duration::hours(*hours);
        let incremental = observe::read(&mut mirror, "main", &keys, Some(&mut learned)).unwrap();
        if *fails {
            continue;
        }
        let full = observe::read(&mut mirror, "main", &keys, None).unwrap();
        let (followed, shown) = kept.follow(&incremental, now);
        let whole = Listing::new(&full.snapshot, &full.history, now);
        let step = i + 1;
        assert_eq!(
            kept.listing.deployments, whole.deployments,
            "deployments at step {step} (followed: {followed})"
        );
        assert_eq!(
            kept.listing.samples, whole.samples,
            "samples at step {step}"
        );
        let built = dashboard::build(
            &full.snapshot,
            &plan_of(&full, now),
            &full.history,
            &[],
            now,
        );
        assert_eq!(*shown, built, "dashboard at step {step}");
    }
}

/// A release and its revert between two reads leave the folder's tree id as it was (the same
/// service, the same `Arc`): only the tag history says the service changed, and it is listed
/// again.
#[test]
fn a_release_and_its_revert_between_two_reads_are_followed() {
    let origin = Origin::new(T0, |s| s.without_network_gates());
    let state = tempfile::tempdir().unwrap();
    let mut mirror = Mirror::open(
        &state.path().join("mirror.git"),
        &origin.url(),
        Credentials::None,
    )
    .unwrap();
    let keys = crate::support::signing_keys();
    let mut learned = Learned::default();
    let start: DateTime<Utc> = T0.parse().unwrap();
    let first = observe::read(&mut mirror, "main", &keys, Some(&mut learned)).unwrap();
    let mut kept = Carried::new(&first, start);
    drop(first);
    let values = "clusters/qa/calculator/maths-api/values.yaml";
    let release = "clusters/qa/calculator/maths-api/release.yml";
    let (old, old_release) = (origin.read("main", values), origin.read("main", release));
    set_tag(&origin, 1, "maths-api", 9, &at(start, 1));
    let reverted = [
        (values, Some(old.as_str())),
        (release, Some(old_release.as_str())),
    ];
    origin.write(&reverted, "revert", &at(start, 2));
    let now = start + Duration::hours(3);
    let incremental = observe::read(&mut mirror, "main", &keys, Some(&mut learned)).unwrap();
    let full = observe::read(&mut mirror, "main", &keys, None).unwrap();
    let (followed, shown) = kept.follow(&incremental, now);
    assert!(
        followed,
        "a release and its revert are followed, not listed whole"
    );
    let whole = Listing::new(&full.snapshot, &full.history, now);
    assert_eq!(kept.listing.deployments, whole.deployments);
    assert_eq!(kept.listing.samples, whole.samples);
    let built = dashboard::build(
        &full.snapshot,
        &plan_of(&full, now),
        &full.history,
        &[],
        now,
    );
    assert_eq!(*shown, built);
}
