//! The environments' branch moves under a run: a person's commit lands on main while promoter
//! is opening the first of two promotions (the double commits it when it receives the first MR
//! create; the MR list call would be too early: a run lists MRs before it fetches). Both
//! branches were pushed together before that MR (up to four go in one push), so both MRs open
//! on the planned head, one commit stale; the next run builds the promotion whose file the
//! commit touched again on the new head, with the other commit's changes untouched. (A push
//! onto a head that moved before it is refused whole: `push.rs`.)

use http::Method;
use promoter::reconcile::{ActionKind, Scope};

use super::{at, origin};
use crate::support::fake_gitlab::{FakeGitLab, commit_files};

const RELEASE: &str = "2026-11-24T10:00:00Z";
const NOW: &str = "2026-11-24T12:00:00Z";
const VALUES: &str = "clusters/qa/calculator/maths-api/values.yaml";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_landing_under_a_run_is_kept_under_the_promotion_by_the_next() {
    let (origin, due) = origin(RELEASE, 0);
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let state = tempfile::tempdir().unwrap();
    let r = crate::support::reconciler(&fake, &origin, state.path()).await;
    let planned_on = origin.head("main").unwrap();
    // While the first promotion (client) is being opened, someone scales maths-api in qa (the
    // file the second promotion edits) and adds a note elsewhere.
    let values = origin.read("main", VALUES);
    assert!(values.contains("replicaCount: 2\n"));
    let scaled = values.replace("replicaCount: 2\n", "replicaCount: 3\n");
    fake.on_request(Method::POST, "/merge_requests", move |bare| {
        commit_files(
            bare,
            "main",
            None,
            &[
                (VALUES, scaled.as_str()),
                ("NOTES.md", "scaled up for the sale\n"),
            ],
            "maths-api: 3 replicas in qa",
        );
    });

    let outcome = r.run_once(&Scope::all(), &[], at(NOW)).await.unwrap();
    assert_eq!(
        outcome.count(&ActionKind::Opened),
        2,
        "{:#?}",
        outcome.actions
    );
    let main = origin.head("main").unwrap();
    assert_ne!(main, planned_on, "the commit landed during the run");
    assert_eq!(
        outcome.head, planned_on,
        "it landed after the branches' push"
    );

    let next = r.run_once(&Scope::all(), &[], at(NOW)).await.unwrap();
    assert_eq!(next.head, main, "the next run planned on the new head");
    let maths = &due[1];
    let rebuilt = next
        .actions
        .iter()
        .find(|a| a.branch == maths.branch())
        .unwrap();
    assert_eq!(rebuilt.kind, ActionKind::Updated, "{:#?}", next.actions);
    assert!(rebuilt.detail.contains("pushed"), "{rebuilt:?}");
    assert_eq!(maths.service, "maths-api");
    let repo = git2::Repository::open_bare(&origin.bare).unwrap();
    let tip = repo
        .find_commit(git2::Oid::from_str(&origin.head(&maths.branch()).unwrap()).unwrap())
        .unwrap();
    assert_eq!(
        tip.parent_id(0).unwrap().to_string(),
        main,
        "the promotion is built on the new head"
    );
    let promoted = origin.read(&maths.branch(), VALUES);
    assert_eq!(
        promoted,
        origin
            .read("main", VALUES)
            .replace("tag: 1.2.1", "tag: 1.4.0"),
        "the other commit's change is kept, only the tag moves"
    );
    assert!(promoted.contains("replicaCount: 3\n"));
    assert_eq!(
        origin.read(&maths.branch(), "NOTES.md"),
        "scaled up for the sale\n"
    );
    let mrs = fake.merge_requests();
    assert_eq!(mrs.len(), 2, "{mrs:#?}");
    for d in &due {
        assert_eq!(
            mrs.iter().filter(|m| m.source_branch == d.branch()).count(),
            1
        );
    }

    // The next run has nothing to do.
    fake.reset_log();
    let again = r.run_once(&Scope::all(), &[], at(NOW)).await.unwrap();
    assert!(
        again
            .actions
            .iter()
            .all(|a| a.kind == ActionKind::Unchanged),
        "{:#?}",
        again.actions
    );
    assert_eq!(fake.write_count(), 0);
}
