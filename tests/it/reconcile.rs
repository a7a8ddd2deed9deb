use std::time::Duration;

use promoter::reconcile::{ActionKind, Scope};

use crate::support::fake_gitlab::{FakeGitLab, Fault, FaultKind};
use crate::support::world::{World, at};
use crate::support::{Origin, reconciler};

const T0: &str = "2026-11-01T00:00:00Z";
const RELEASE: &str = "2026-11-24T10:00:00Z";

fn origin_with_new_dev_tag() -> Origin {
    crate::support::origin_with_new_dev_tag(RELEASE)
}

/// Lines that differ between two texts of the same length in lines.
fn changed_lines(a: &str, b: &str) -> Vec<(String, String)> {
    assert_eq!(a.lines().count(), b.lines().count());
    a.lines()
        .zip(b.lines())
        .filter(|(x, y)| x != y)
        .map(|(x, y)| (x.to_string(), y.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_dev_tag_opens_one_qa_mr_that_changes_only_the_tag() {
    let w = World::new(origin_with_new_dev_tag()).await;

    let early = w.run("2026-11-24T10:30:00Z").await;
    assert!(
        w.open_mrs().is_empty(),
        "soak of 1h not over: {:#?}",
        early.actions
    );

    let outcome = w.run("2026-11-24T12:00:00Z").await;
    assert_eq!(
        outcome.count(&ActionKind::Opened),
        1,
        "{:#?}",
        outcome.actions
    );
    let mrs = w.open_mrs();
    assert_eq!(mrs.len(), 1);
    let mr = &mrs[0];
    assert_eq!(mr.source_branch, "promoter/qa/maths-api");
    assert_eq!(mr.target_branch, "main");
    assert_eq!(mr.title, "promote maths-api to qa: 1.2.1 -> 1.4.0");
    let mut labels = mr.labels.clone();
    labels.sort();
    assert_eq!(labels, ["env:qa", "promotion"]);
    assert!(
        mr.description
            .contains("| soak | ✅ ran 2h in dev (needs 1h) |"),
        "{}",
        mr.description
    );

    for file in [
        "clusters/qa/calculator/maths-api/values.yaml",
        "clusters/qa/calculator/maths-api/release.yml",
    ] {
        let changed = changed_lines(
            &w.origin.read("main", file),
            &w.origin.read("promoter/qa/maths-api", file),
        );
        assert_eq!(changed.len(), 1, "{file}: {changed:?}");
        let (old, new) = &changed[0];
        assert_eq!(
            old.replace("1.2.1", "1.4.0"),
            *new,
            "{file}: only the tag differs"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_reconcile_writes_nothing() {
    let w = World::new(origin_with_new_dev_tag()).await;
    w.run("2026-11-24T12:00:00Z").await;
    w.fake.reset_log();
    let again = w.run("2026-11-24T12:05:00Z").await;
    assert_eq!(w.fake.write_count(), 0, "{:#?}", w.fake.requests());
    assert!(
        again
            .actions
            .iter()
            .all(|a| a.kind == ActionKind::Unchanged),
        "{:#?}",
        again.actions
    );
    let reads = w.fake.requests().len();
    assert!(
        reads <= 4,
        "an idle reconcile reads little: {reads} requests {:#?}",
        w.fake.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_merges_qa_and_prod_follows_a_day_later() {
    let w = World::new(origin_with_new_dev_tag()).await;
    w.run("2026-11-24T12:00:00Z").await;
    let iid = w.open_mrs()[0].iid;

    // Without approval nothing is merged.
    let waiting = w.run("2026-11-24T12:10:00Z").await;
    assert_eq!(waiting.count(&ActionKind::Merged), 0);

    w.fake.approve(iid, "alice");
    w.fake.set_clock(at("2026-11-24T13:00:00Z"));
    let merged = w.run("2026-11-24T13:00:00Z").await;
    assert_eq!(
        merged.count(&ActionKind::Merged),
        1,
        "{:#?}",
        merged.actions
    );
    assert!(
        w.origin
            .read("main", "clusters/qa/calculator/maths-api/values.yaml")
            .contains("tag: 1.4.0")
    );
    assert!(
        w.origin.head("promoter/qa/maths-api").is_none(),
        "the source branch is removed"
    );

    // An hour after the merge, prod waits for its 24 h soak in qa.
    w.run("2026-11-24T14:00:00Z").await;
    assert!(w.open_mrs().is_empty());
    // A day later it opens, and since prod is not auto-merged it stays open.
    let next_day = w.run("2026-11-25T13:30:00Z").await;
    assert_eq!(
        next_day.count(&ActionKind::Opened),
        1,
        "{:#?}",
        next_day.actions
    );
    let mrs = w.open_mrs();
    assert_eq!(mrs[0].title, "promote maths-api to prod: 1.2.1 -> 1.4.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_racing_reconciles_make_one_mr() {
    let origin = origin_with_new_dev_tag();
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let (s1, s2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (
        reconciler(&fake, &origin, s1.path()).await,
        reconciler(&fake, &origin, s2.path()).await,
    );
    let now = at("2026-11-24T12:00:00Z");
    let all = Scope::all();
    let (ra, rb) = tokio::join!(a.run_once(&all, &[], now), b.run_once(&all, &[], now));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let opened: Vec<_> = fake
        .merge_requests()
        .into_iter()
        .filter(|m| m.state == "opened")
        .collect();
    assert_eq!(opened.len(), 1, "{ra:#?} {rb:#?}");
    // Whichever lost converges on the next run without a second MR.
    let again = a.run_once(&Scope::all(), &[], now).await.unwrap();
    assert_eq!(again.count(&ActionKind::Failed), 0, "{again:#?}");
    assert_eq!(
        fake.merge_requests()
            .iter()
            .filter(|m| m.state == "opened")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_dies_after_the_push_is_finished_by_the_next() {
    let w = World::new(origin_with_new_dev_tag()).await;
    w.fake.inject(Fault {
        method: Some(http::Method::POST),
        path_contains: Some("/merge_requests".into()),
        times: 1,
        kind: FaultKind::Status(500),
    });
    let broken = w
        .reconciler
        .run_once(&Scope::all(), &[], at("2026-11-24T12:00:00Z"))
        .await
        .unwrap();
    assert_eq!(broken.count(&ActionKind::Failed), 1, "{broken:#?}");
    assert!(
        w.origin.head("promoter/qa/maths-api").is_some(),
        "the branch was pushed"
    );
    assert!(w.open_mrs().is_empty());
    let pushed = w.origin.head("promoter/qa/maths-api");

    let fixed = w.run("2026-11-24T12:01:00Z").await;
    assert_eq!(fixed.count(&ActionKind::Opened), 1);
    assert_eq!(w.open_mrs().len(), 1);
    assert_eq!(
        w.origin.head("promoter/qa/maths-api"),
        pushed,
        "no second push"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_no_longer_due_is_closed_with_a_note_and_its_branch_deleted() {
    let w = World::new(origin_with_new_dev_tag()).await;
    w.run("2026-11-24T12:00:00Z").await;
    // Someone sets qa to 1.4.0 by hand.
    w.origin
        .set_tag("qa", "maths-api", "1.2.1", "1.4.0", "2026-11-24T12:30:00Z");
    let outcome = w.run("2026-11-24T13:00:00Z").await;
    assert_eq!(
        outcome.count(&ActionKind::Closed),
        1,
        "{:#?}",
        outcome.actions
    );
    let mr = &w.fake.merge_requests()[0];
    assert_eq!(mr.state, "closed");
    assert_eq!(
        mr.notes.last().unwrap(),
        "Closed by promoter: this promotion is no longer due.\n\n- qa already runs 1.4.0"
    );
    assert!(w.origin.head("promoter/qa/maths-api").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_candidate_updates_the_same_mr_with_a_note() {
    let w = World::new(origin_with_new_dev_tag()).await;
    w.run("2026-11-24T12:00:00Z").await;
    w.origin
        .set_tag("dev", "maths-api", "1.4.0", "1.4.1", "2026-11-24T12:30:00Z");
    let outcome = w.run("2026-11-24T14:00:00Z").await;
    assert_eq!(
        outcome.count(&ActionKind::Updated),
        1,
        "{:#?}",
        outcome.actions
    );
    let mrs = w.open_mrs();
    assert_eq!(mrs.len(), 1);
    assert_eq!(mrs[0].title, "promote maths-api to qa: 1.2.1 -> 1.4.1");
    assert_eq!(
        mrs[0].notes.last().unwrap(),
        "Superseded: this promotion now carries `1.4.1` instead of `1.4.0` (dev moved on)."
    );
    assert!(
        w.origin
            .read(
                "promoter/qa/maths-api",
                "clusters/qa/calculator/maths-api/values.yaml"
            )
            .contains("tag: 1.4.1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_server_errors_are_waited_out() {
    let w = World::new(origin_with_new_dev_tag()).await;
    w.fake.inject(Fault {
        method: Some(http::Method::GET),
        path_contains: None,
        times: 1,
        kind: FaultKind::RateLimited {
            retry_after_secs: 1,
        },
    });
    w.fake.inject(Fault {
        method: Some(http::Method::GET),
        path_contains: None,
        times: 1,
        kind: FaultKind::Status(502),
    });
    let started = std::time::Instant::now();
    let outcome = w.run("2026-11-24T12:00:00Z").await;
    assert_eq!(outcome.count(&ActionKind::Opened), 1);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    let statuses: Vec<u16> = w.fake.requests().iter().map(|r| r.status).collect();
    assert!(
        statuses.contains(&429) && statuses.contains(&502),
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_promotions_wait_for_their_schedule() {
    let w = World::new(origin_with_new_dev_tag()).await;
    let resync = Scope::default();
    let outcome = w
        .reconciler
        .run_once(&resync, &[], at("2026-11-24T12:00:00Z"))
        .await
        .unwrap();
    assert_eq!(outcome.count(&ActionKind::Waiting), 1, "{outcome:#?}");
    assert!(w.open_mrs().is_empty());
    let nightly = Scope {
        scheduled: [promoter::model::EnvName::new("qa")].into(),
        ..Scope::default()
    };
    let outcome = w
        .reconciler
        .run_once(&nightly, &[], at("2026-11-25T02:00:00Z"))
        .await
        .unwrap();
    assert_eq!(outcome.count(&ActionKind::Opened), 1, "{outcome:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_pipeline_on_the_pushed_commit_prevents_the_merge() {
    let w = World::new(origin_with_new_dev_tag()).await;
    w.run("2026-11-24T12:00:00Z").await;
    let mr = w.open_mrs().remove(0);
    let sha = mr.sha.clone().unwrap();
    w.fake.set_pipeline(&sha, "failed");
    w.fake.approve(mr.iid, "alice");
    let outcome = w.run("2026-11-24T12:10:00Z").await;
    assert_eq!(
        outcome.count(&ActionKind::Merged),
        0,
        "{:#?}",
        outcome.actions
    );
    assert_eq!(w.open_mrs().len(), 1);

    w.fake.set_pipeline(&sha, "success");
    let outcome = w.run("2026-11-24T12:20:00Z").await;
    assert_eq!(
        outcome.count(&ActionKind::Merged),
        1,
        "{:#?}",
        outcome.actions
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_pushed_commit_is_never_overwritten_or_merged() {
    let w = World::new(origin_with_new_dev_tag()).await;
    w.run("2026-11-24T12:00:00Z").await;
    let mr = w.open_mrs().remove(0);
    // A person fixes something on the promotion branch.
    let theirs = crate::support::fake_gitlab::commit_files(
        &w.origin.bare,
        "promoter/qa/maths-api",
        None,
        &[(
            "clusters/qa/calculator/maths-api/NOTES.md",
            "tested by hand\n",
        )],
        "note from a person",
    );
    w.fake.approve(mr.iid, "alice");
    let outcome = w.run("2026-11-24T12:10:00Z").await;
    let qa = outcome
        .actions
        .iter()
        .find(|a| a.branch == "promoter/qa/maths-api")
        .unwrap();
    assert_eq!(qa.kind, ActionKind::HandsOff, "{qa:#?}");
    assert!(
        qa.detail
            .starts_with("blocked: modified by dev <dev@example.com>"),
        "{}",
        qa.detail
    );
    assert_eq!(
        w.origin.head("promoter/qa/maths-api").as_deref(),
        Some(theirs.as_str()),
        "not force-pushed"
    );
    let record = w.open_mrs().remove(0);
    assert!(
        record
            .notes
            .last()
            .unwrap()
            .contains("promoter will not overwrite that work or merge this MR")
    );
    assert!(
        record
            .labels
            .iter()
            .any(|l| l == "promoter:modified-by-hand")
    );
    // The note is said once; still no merge.
    let again = w.run("2026-11-24T12:20:00Z").await;
    assert_eq!(again.count(&ActionKind::Merged), 0);
    assert_eq!(w.open_mrs()[0].notes.len(), record.notes.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mr_lists_the_app_changes_and_asks_the_policy_reviewers() {
    let origin = Origin::new(T0, |s| {
        s.without_network_gates();
        s.set_tag("dev", "maths-api", "1.3.0", "1.2.1");
        s.set_tag("prod", "maths-api", "1.2.0", "1.2.1");
        s.set_tag("prod", "client", "0.3.2", "0.4.0");
        std::fs::create_dir_all(s.path().join("app/maths-api")).unwrap();
        std::fs::write(s.path().join("app/maths-api/.version"), "1.2.1\n").unwrap();
        std::fs::write(s.path().join("app/maths-api/lib.rs"), "fn sum() {}\n").unwrap();
        s.replace(
            "policies/qa.yaml",
            "soak: 1h\n",
            "soak: 1h\nreviewers: [alice]\n",
        );
    });
    origin.commit(
        &[("app/maths-api/lib.rs", "fn sum() {}", "fn sum() { fast() }")],
        "faster sums for @here",
        "2026-11-20T00:00:00Z",
    );
    origin.commit(
        &[("app/maths-api/.version", "1.2.1", "1.4.0")],
        "release maths-api 1.4.0",
        "2026-11-21T00:00:00Z",
    );
    origin.set_tag("dev", "maths-api", "1.2.1", "1.4.0", RELEASE);
    let w = World::new(origin).await;
    w.run("2026-11-24T12:00:00Z").await;
    let mr = w.open_mrs().remove(0);
    assert!(
        mr.description
            .contains("Changes in `app/maths-api` from 1.2.1 to 1.4.0:"),
        "{}",
        mr.description
    );
    let lines: Vec<&str> = mr
        .description
        .lines()
        .filter(|l| l.starts_with("- `"))
        .collect();
    assert!(
        lines[0].ends_with("release maths-api 1.4.0 (dev)"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("faster sums for @\u{200b}here"),
        "the mention is defused: {lines:?}"
    );
    assert!(
        mr.description.contains("\n/assign_reviewer @alice\n"),
        "a quick action on its own line: {}",
        mr.description
    );
}
