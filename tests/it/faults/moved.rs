//! The environments' branch moves between the plan and a push: a person's commit lands on main
//! while promoter is opening the first of two promotions (the double commits it when it
//! receives the first MR create; the MR list call would be too early: a run lists MRs before
//! it fetches). The second promotion must be built on the new head, with the other commit's
//! changes untouched, in the same run.

use http::Method;
use promoter::reconcile::{ActionKind, Scope};

use super::{at, origin};
use crate::support::fake_gitlab::{FakeGitLab, commit_files};

const RELEASE: &str = "2026-11-24T10:00:00Z";
const NOW: &str = "2026-11-24T12:00:00Z";
const VALUES: &str = "clusters/qa/calculator/maths-api/values.yaml";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_landing_between_plan_and_push_is_kept_under_the_promotion() {
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
    assert_eq!(outcome.head, main, "the run ended planned on the new head");

    let maths = &due[1];
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
