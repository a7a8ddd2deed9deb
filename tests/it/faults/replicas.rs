//! Two daemons (two child processes, each with its own state directory) on one repository,
//! as two replicas during a rolling update, over several rounds: opening (with a race the
//! double makes certain: one replica's MR create lands late, after the other's), merging and
//! opening again (plain races). The claim in docs/deployment.md: push leases and GitLab's 409
//! for a second MR of one source branch make two replicas safe but wasteful. Checked here:
//! exactly one MR per promotion each round, the 409s seen, no orphan branch, one dashboard
//! issue. (The late replica pushed its branches, together, before its first MR create; the
//! refused push of a lease is checked in `push.rs` and `forgery.rs`.)

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use http::Method;

use super::{Due, Expect, assert_converged, config, origin, promoter, set_tags};
use crate::support::Origin;
use crate::support::fake_gitlab::{Effect, FakeGitLab, Hang};

const SECRET: &str = "webhook-secret-for-tests";

struct Daemon {
    child: Child,
    base: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for(what: &str, mut ready: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Daemon {
    fn start(fake: &FakeGitLab, origin: &Origin) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let file = config(
            dir.path(),
            fake,
            &origin.url(),
            &format!("server:\n  listen: 127.0.0.1:{port}\nreconcile:\n  resync_interval: 1h\n"),
        );
        let log = dir.path().join("daemon.log");
        let child = promoter(&file, &["daemon"])
            .env("PROMOTER__SERVER__WEBHOOK_SECRET", SECRET)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// When its last successful reconcile (dashboard issue included) finished; 0 before.
    async fn last_success(&self) -> f64 {
        let Ok(rsp) = reqwest::get(format!("{}/metrics", self.base)).await else {
            return 0.0;
        };
        let text = rsp.text().await.unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("promoter_last_successful_reconcile_timestamp_seconds "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Waits until a reconcile that succeeded finished after `since`.
    async fn wait_round(&self, since: f64) {
        wait_for(&format!("a reconcile of {}", self.base), async || {
            self.last_success().await > since
        })
        .await;
    }

    /// A merge request webhook: reconcile now.
    async fn poke(&self) {
        let rsp = reqwest::Client::new()
            .post(format!("{}/webhooks/gitlab", self.base))
            .header("Content-Type", "application/json")
            .header("X-Gitlab-Event", "Merge Request Hook")
            .header("X-Gitlab-Token", SECRET)
            .body(r#"{"object_kind":"merge_request","object_attributes":{"iid":1,"action":"approved","state":"opened","source_branch":"promoter/qa/client","target_branch":"main"},"labels":[],"project":{"id":42,"path_with_namespace":"acme/calculator"}}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(rsp.status(), 202);
    }
}

/// Both reconcile now; returns once both finished a reconcile.
async fn round(daemons: &[&Daemon]) {
    let mut since = Vec::new();
    for d in daemons {
        since.push(d.last_success().await);
    }
    let [a, b] = daemons else {
        panic!("two daemons")
    };
    tokio::join!(a.poke(), b.poke());
    for (d, since) in daemons.iter().zip(since) {
        d.wait_round(since).await;
    }
}

fn in_merge_commits(origin: &Origin, needle: &str) -> usize {
    let repo = git2::Repository::open_bare(&origin.bare).unwrap();
    let mut walk = repo.revwalk().unwrap();
    walk.push_ref("refs/heads/main").unwrap();
    walk.filter_map(Result::ok)
        .filter(|oid| {
            let commit = repo.find_commit(*oid).unwrap();
            commit.parent_count() == 2 && commit.message().unwrap_or("").contains(needle)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_make_one_mr_per_promotion_round_after_round() {
    let released = (Utc::now() - chrono::Duration::hours(3)).to_rfc3339();
    let (origin, due) = origin(&released, 1);
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;

    // Round 1, opening: the first replica's first MR create is held until the second
    // replica has done everything, then lands.
    fake.hang(Hang::at(Method::POST, "/merge_requests", Effect::OnRelease));
    let first = Daemon::start(&fake, &origin);
    fake.wait_until_hung(1).await;
    let second = Daemon::start(&fake, &origin);
    second.wait_round(0.0).await;
    fake.release_hangs();
    first.wait_round(0.0).await;
    assert_converged(&origin, &fake, &due, Expect::Open);
    let conflicts = fake
        .requests()
        .iter()
        .filter(|r| r.method == Method::POST && r.path.ends_with("/merge_requests"))
        .filter(|r| r.status == 409)
        .count();
    assert_eq!(
        conflicts,
        due.len(),
        "GitLab refused each late create (the other replica had opened them): {:#?}",
        fake.requests()
    );
    let log = first.log();
    assert!(
        !log.contains("promotion failed this time"),
        "the late replica adopted the MRs the other opened, failing none:\n{log}"
    );

    // Round 2, merging, both at once.
    for mr in fake.merge_requests() {
        fake.approve(mr.iid, "alice");
    }
    round(&[&first, &second]).await;
    assert_converged(&origin, &fake, &due, Expect::Merged);
    for d in &due {
        assert_eq!(
            in_merge_commits(&origin, &format!("Merge branch '{}'", d.branch())),
            1,
            "{} merged once",
            d.branch()
        );
    }

    // Round 3, opening again, both at once, then one more round for whoever lost a race.
    let two_hours_ago = (Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    let moves: Vec<(String, String, String)> = due
        .iter()
        .map(|d| (d.service.clone(), d.to.clone(), next_patch(&d.to)))
        .collect();
    let moves_ref: Vec<(&str, &str, &str)> = moves
        .iter()
        .map(|(s, a, b)| (s.as_str(), a.as_str(), b.as_str()))
        .collect();
    set_tags(&origin, "dev", &moves_ref, &two_hours_ago);
    round(&[&first, &second]).await;
    round(&[&first, &second]).await;
    let next: Vec<Due> = moves.iter().map(|(s, a, b)| Due::new(s, a, b)).collect();
    let mrs = fake.merge_requests();
    for d in &next {
        let mine: Vec<_> = mrs
            .iter()
            .filter(|m| m.source_branch == d.branch())
            .collect();
        assert_eq!(mine.len(), 2, "one merged, one new: {mine:#?}");
        let open: Vec<_> = mine.iter().filter(|m| m.state == "opened").collect();
        assert_eq!(open.len(), 1, "{mine:#?}");
        assert_eq!(open[0].title, d.title());
    }
    let open_branches: Vec<String> = mrs
        .iter()
        .filter(|m| m.state == "opened")
        .map(|m| m.source_branch.clone())
        .collect();
    let mut branches = super::promotion_branches(&origin);
    branches.sort();
    let mut expected = open_branches.clone();
    expected.sort();
    assert_eq!(branches, expected, "no orphan branch");

    // One dashboard issue, whoever wrote it.
    let dashboards = fake
        .issues()
        .into_iter()
        .filter(|i| i.state == "opened" && i.labels.iter().any(|l| l == "promoter-dashboard"))
        .count();
    assert_eq!(dashboards, 1, "{:#?}", fake.issues());
}

/// `1.4.0` -> `1.4.1`.
fn next_patch(version: &str) -> String {
    let (head, patch) = version.rsplit_once('.').unwrap();
    format!("{head}.{}", patch.parse::<u32>().unwrap() + 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_opening_the_dashboard_issue_at_once_leave_one() {
    let (origin, _) = origin("2026-11-24T10:00:00Z", 0);
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let (s1, s2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = crate::support::reconciler(&fake, &origin, s1.path()).await;
    let second = crate::support::reconciler(&fake, &origin, s2.path()).await;
    let now = super::at("2026-11-24T12:00:00Z");
    let scope = promoter::reconcile::Scope::all();
    let data = first
        .run_once(&scope, &[], now)
        .await
        .unwrap()
        .dashboard
        .unwrap();
    // Both find no dashboard issue; the first one's create lands after the second's.
    fake.hang(Hang::at(Method::POST, "/issues", Effect::OnRelease));
    let late = {
        let data = data.clone();
        tokio::spawn(async move { first.ensure_dashboard_issue(&data).await.unwrap() })
    };
    fake.wait_until_hung(1).await;
    let kept = second.ensure_dashboard_issue(&data).await.unwrap();
    fake.release_hangs();
    let late = late.await.unwrap();
    assert_eq!(late.iid, kept.iid, "the late replica uses the first issue");
    let issues = fake.issues();
    let open: Vec<_> = issues.iter().filter(|i| i.state == "opened").collect();
    assert_eq!(open.len(), 1, "{issues:#?}");
    assert_eq!(open[0].iid, kept.iid);
}
