//! The daemon's idle cycle against the GitLab double: with nothing new it asks GitLab at most
//! three times (here: once) whether 0, 30 or 400 MRs are open, where the full path pages
//! through them all; an approval given between two cycles is still seen and merged; and what
//! it keeps shows the same dashboard, lead times and actions as a full read, cycle by cycle.
//!
//! The open MRs are the sample's one promotion MR plus MRs people opened from their own
//! branches with the `promotion` label: GitLab lists them like promotion MRs (they fill the
//! pages), and promoter leaves them alone.

use chrono::{DateTime, Utc};
use promoter::forge::gitlab::GitLab;
use promoter::reconcile::{ActionKind, Outcome, Reconciler, Scope};

use crate::support::Origin;
use crate::support::fake_gitlab::FakeGitLab;

const RELEASE: &str = "2026-11-24T10:00:00Z";

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

struct World {
    _origin: Origin,
    fake: FakeGitLab,
    _state: tempfile::TempDir,
    reconciler: Reconciler<GitLab>,
}

/// The sample with maths-api due in qa, and `seeded` MRs of people's carrying the label.
async fn world(seeded: usize, incremental: bool) -> World {
    let origin = crate::support::origin_with_new_dev_tag(RELEASE);
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    fake.set_clock(at("2026-11-24T11:00:00Z"));
    fake.seed_merge_requests(seeded, "carol", "main", &["promotion"]);
    let state = tempfile::tempdir().unwrap();
    let reconciler = crate::support::reconciler(&fake, &origin, state.path())
        .await
        .with_incremental(incremental);
    World {
        _origin: origin,
        fake,
        _state: state,
        reconciler,
    }
}

impl World {
    /// One daemon cycle at `now` (GitLab's clock too): the reconcile, then the dashboard issue.
    async fn cycle(&self, now: &str) -> Outcome {
        self.fake.set_clock(at(now));
        let outcome = self
            .reconciler
            .run_once(&Scope::all(), &[], at(now))
            .await
            .unwrap();
        assert_eq!(
            outcome.count(&ActionKind::Failed),
            0,
            "{:#?}",
            outcome.actions
        );
        let dashboard = outcome.dashboard.as_ref().expect("a dashboard");
        self.reconciler
            .ensure_dashboard_issue(dashboard)
            .await
            .unwrap();
        outcome
    }

    /// The promotion MR's iid.
    fn promotion_mr(&self) -> u64 {
        self.fake
            .merge_requests()
            .into_iter()
            .find(|m| m.source_branch == "promoter/qa/maths-api" && m.state == "opened")
            .expect("the qa promotion is open")
            .iid
    }

    /// Cycles until the qa MR is open and a cycle with nothing new has run; then one more
    /// cycle with nothing new, whose GitLab calls are returned.
    async fn idle_calls(&self) -> Vec<String> {
        self.cycle("2026-11-24T12:00:00Z").await;
        self.promotion_mr();
        self.cycle("2026-11-24T12:05:00Z").await;
        self.fake.reset_log();
        let idle = self.cycle("2026-11-24T12:10:00Z").await;
        assert!(
            idle.actions.iter().all(|a| a.kind == ActionKind::Unchanged),
            "{:#?}",
            idle.actions
        );
        assert_eq!(self.fake.write_count(), 0, "{:#?}", self.fake.requests());
        self.fake
            .requests()
            .iter()
            .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_cycle_asks_gitlab_at_most_three_times_whatever_the_number_of_open_mrs() {
    for seeded in [0, 30, 400] {
        let w = world(seeded, true).await;
        let calls = w.idle_calls().await;
        assert!(
            calls.len() <= 3,
            "{} open MRs: {} calls: {calls:#?}",
            seeded + 1,
            calls.len()
        );
        assert!(
            calls.iter().any(|c| c.contains("updated_after=")),
            "asks only for what changed: {calls:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_path_pages_through_every_open_mr_every_cycle() {
    // What the incremental path saves: `reconcile --once` (no state kept) reads every page.
    let w = world(400, false).await;
    let calls = w.idle_calls().await;
    let listings = calls
        .iter()
        .filter(|c| c.starts_with("GET") && c.contains("/merge_requests?"))
        .count();
    assert!(listings >= 5, "401 open MRs, 100 a page: {calls:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_given_between_idle_cycles_is_seen_and_merges() {
    let w = world(400, true).await;
    let calls = w.idle_calls().await;
    assert!(calls.len() <= 3, "{calls:#?}");
    let iid = w.promotion_mr();
    w.fake.set_clock(at("2026-11-24T12:20:00Z"));
    w.fake.approve(iid, "alice");
    let merged = w.cycle("2026-11-24T12:20:00Z").await;
    assert_eq!(
        merged.count(&ActionKind::Merged),
        1,
        "{:#?}",
        merged.actions
    );
    // The next cycle lists everything again (this one changed something), then idles.
    w.cycle("2026-11-24T12:25:00Z").await;
    w.fake.reset_log();
    w.cycle("2026-11-24T12:30:00Z").await;
    assert!(w.fake.requests().len() <= 3, "{:#?}", w.fake.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mr_closed_by_a_person_between_idle_cycles_is_seen() {
    let w = world(30, true).await;
    w.idle_calls().await;
    let iid = w.promotion_mr();
    w.fake.set_clock(at("2026-11-24T12:20:00Z"));
    w.fake.close(iid);
    let after = w.cycle("2026-11-24T12:20:00Z").await;
    // As the full path does: the promotion is due, its MR is gone, so a new one is opened.
    assert_eq!(after.count(&ActionKind::Opened), 1, "{:#?}", after.actions);
}

/// The daemon's kept state (snapshot, history, deployments and lead-time samples, the
/// dashboard, the prepared edits) shows what a full read shows, cycle by cycle: seconds and
/// hours apart, across maths-api's soak into qa (its MR opens), a release of client to dev,
/// and weeks later, past the lead-time windows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_shows_what_a_full_read_shows_cycle_by_cycle() {
    let (kept, full) = (world(0, true).await, world(0, false).await);
    // The MR links name each double's own address: compared without it.
    let shown = |outcome: &Outcome| {
        let mut data = (**outcome.dashboard.as_ref().expect("a dashboard")).clone();
        for link in &mut data.open_mrs {
            link.url = link.url.rsplit('/').next().unwrap_or_default().to_string();
        }
        (data, outcome.lead_times.clone())
    };
    let steps = [
        ("2026-11-24T11:00:00Z", false),
        ("2026-11-24T11:00:30Z", false),
        ("2026-11-24T12:30:00Z", false),
        ("2026-11-25T12:30:00Z", true),
        ("2026-11-25T12:35:00Z", false),
        ("2027-01-10T00:00:00Z", false),
    ];
    for (now, release) in steps {
        if release {
            for world in [&kept, &full] {
                world
                    ._origin
                    .set_tag("dev", "client", "0.4.0", "0.5.0", "2026-11-25T12:00:00Z");
            }
        }
        let (a, b) = (kept.cycle(now).await, full.cycle(now).await);
        assert_eq!(shown(&a), shown(&b), "at {now}");
        let done = |o: &Outcome| -> Vec<String> {
            o.actions
                .iter()
                .map(|a| format!("{} {:?} {}", a.branch, a.kind, a.detail))
                .collect()
        };
        assert_eq!(done(&a), done(&b), "at {now}");
    }
}
