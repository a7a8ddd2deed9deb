//! The push of a promotion is sent from a view that holds only the target branch's history
//! (the push base next to the mirror), never the other promotion branches, so that libgit2
//! does not walk their trees: what the view holds and lacks, that the pushed branch is right,
//! that a base that is behind, damaged or unusable never stops a push, and that several
//! branches pushed together keep each its own lease and answer.

use std::path::{Path, PathBuf};

use git2::{Oid, Repository};
use promoter::git::mirror::{
    Author, BranchUpdate, Credentials, Error, MAX_BRANCHES_PER_PUSH, Mirror,
};

use crate::support::fake_gitlab::commit_files;
use crate::support::{Origin, origin_with_new_dev_tag, signing_keys};

const RELEASED: &str = "2026-11-24T10:00:00Z";

fn author() -> Author {
    Author {
        name: "promoter".into(),
        email: "promoter@example.com".into(),
        keys: signing_keys(),
    }
}

/// The push base of the mirror at `mirror`.
fn push_base(mirror: &Path) -> PathBuf {
    PathBuf::from(format!("{}.push-base", mirror.display()))
}

fn holds(repo: &Path, oid: &str) -> bool {
    Repository::open_bare(repo)
        .unwrap()
        .odb()
        .unwrap()
        .exists(Oid::from_str(oid).unwrap())
}

/// An origin with `count` promotion branches of someone else's, a mirror that fetched them.
fn stand(count: usize) -> (Origin, tempfile::TempDir, PathBuf, Mirror, Vec<String>) {
    let origin = origin_with_new_dev_tag(RELEASED);
    let others = (0..count)
        .map(|i| {
            commit_files(
                &origin.bare,
                &format!("promoter/qa/other-{i}"),
                Some("main"),
                &[(&format!("OTHER-{i}"), "x\n")],
                "another promotion",
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mirror.git");
    let mirror = Mirror::open(&path, &origin.url(), Credentials::None).unwrap();
    (origin, dir, path, mirror, others)
}

/// Builds one promotion commit on `head` and pushes it as reconcile does.
fn promote(mirror: &Mirror, head: Oid, branch: &str, text: &str) -> Oid {
    let files = [("NOTES.md".to_string(), Some(text.to_string()))];
    let commit = mirror
        .commit_files(head, &files, "promote", &author(), 1_800_000_000)
        .unwrap();
    mirror
        .push_onto(commit, branch, None, "main", head)
        .unwrap();
    commit
}

#[test]
fn the_push_base_holds_the_target_history_and_no_promotion_branch() {
    let (origin, _dir, path, mut mirror, others) = stand(3);
    let head = mirror.fetch("main").unwrap();
    assert!(
        others.iter().all(|o| holds(&path, o)),
        "the mirror has them"
    );

    let pushed = promote(&mirror, head, "promoter/qa/maths-api", "one\n");
    assert_eq!(
        origin.head("promoter/qa/maths-api"),
        Some(pushed.to_string())
    );
    let base = push_base(&path);
    assert!(holds(&base, &head.to_string()), "the target's head");
    assert!(
        others.iter().all(|o| !holds(&base, o)),
        "no other promotion branch in the push base"
    );
    assert!(
        !holds(&base, &pushed.to_string()),
        "the pushed commit lived in memory only"
    );
    let local = Repository::open_bare(&base).unwrap();
    assert!(
        local
            .references_glob("refs/promoter/*")
            .unwrap()
            .next()
            .is_none(),
        "no ref left behind"
    );
    // The pushed commit is what the remote holds, object for object: the origin reads it.
    let remote = Repository::open_bare(&origin.bare).unwrap();
    let tree = remote.find_commit(pushed).unwrap().tree().unwrap();
    let notes = tree.get_path(Path::new("NOTES.md")).unwrap();
    assert_eq!(remote.find_blob(notes.id()).unwrap().content(), b"one\n");
}

#[test]
fn a_push_base_behind_the_target_fetches_it_first() {
    let (origin, _dir, path, mut mirror, _) = stand(0);
    let head = mirror.fetch("main").unwrap();
    promote(&mirror, head, "promoter/qa/a", "one\n");
    // main moves on; the next promotion is built on the new head, which the base lacks.
    commit_files(
        &origin.bare,
        "main",
        None,
        &[("LATER.md", "later\n")],
        "later",
    );
    let moved = mirror.fetch("main").unwrap();
    assert!(!holds(&push_base(&path), &moved.to_string()));
    let pushed = promote(&mirror, moved, "promoter/qa/b", "two\n");
    assert_eq!(origin.head("promoter/qa/b"), Some(pushed.to_string()));
    assert!(holds(&push_base(&path), &moved.to_string()));
}

#[test]
fn a_damaged_or_unusable_push_base_never_stops_a_push() {
    let (origin, _dir, path, mut mirror, _) = stand(1);
    let head = mirror.fetch("main").unwrap();
    promote(&mirror, head, "promoter/qa/a", "one\n");
    let base = push_base(&path);

    // Its objects gone: fetched again.
    std::fs::remove_dir_all(base.join("objects")).unwrap();
    std::fs::create_dir_all(base.join("objects/pack")).unwrap();
    let pushed = promote(&mirror, head, "promoter/qa/b", "two\n");
    assert_eq!(origin.head("promoter/qa/b"), Some(pushed.to_string()));

    // Not a repository at all: built again.
    std::fs::remove_dir_all(&base).unwrap();
    std::fs::write(&base, "not a repository").unwrap();
    let pushed = promote(&mirror, head, "promoter/qa/c", "three\n");
    assert_eq!(origin.head("promoter/qa/c"), Some(pushed.to_string()));
    assert!(base.is_dir() && holds(&base, &head.to_string()));

    // A branch deletion needs no history.
    mirror.delete_branch("promoter/qa/c", pushed).unwrap();
    assert_eq!(origin.head("promoter/qa/c"), None);
}

/// One promotion commit per branch of `branches`, built on `head`, each leased on nothing.
fn updates(mirror: &Mirror, head: Oid, branches: &[String]) -> Vec<BranchUpdate> {
    branches
        .iter()
        .map(|branch| {
            let files = [(format!("{branch}.md"), Some(format!("{branch}\n")))];
            let commit = mirror
                .commit_files(head, &files, "promote", &author(), 1_800_000_000)
                .unwrap();
            BranchUpdate {
                commit,
                branch: branch.clone(),
                expected: None,
            }
        })
        .collect()
}

#[test]
fn branches_pushed_together_keep_each_its_own_lease_and_answer() {
    let (origin, _dir, _path, mut mirror, others) = stand(1);
    let head = mirror.fetch("main").unwrap();
    // More branches than one push carries, and one that someone else already holds: its
    // lease ("must not exist") does not hold, whichever push it falls in.
    let mut branches: Vec<String> = (0..MAX_BRANCHES_PER_PUSH + 2)
        .map(|i| format!("promoter/qa/svc-{i}"))
        .collect();
    branches[1] = "promoter/qa/other-0".to_string();
    let batch = updates(&mirror, head, &branches);

    let answers = mirror.push_all_onto(&batch, "main", head);

    assert_eq!(
        answers.len(),
        batch.len(),
        "one answer per branch, in order"
    );
    for (update, answer) in batch.iter().zip(&answers) {
        if update.branch == "promoter/qa/other-0" {
            assert!(
                matches!(answer, Err(Error::Lease { found, .. }) if *found == others[0]),
                "{answer:?}"
            );
            assert_eq!(
                origin.head(&update.branch),
                Some(others[0].clone()),
                "untouched"
            );
            continue;
        }
        assert!(answer.is_ok(), "{}: {answer:?}", update.branch);
        assert_eq!(
            origin.head(&update.branch),
            Some(update.commit.to_string()),
            "pushed"
        );
        assert_eq!(
            mirror.remote_branch(&update.branch).unwrap(),
            Some(update.commit),
            "recorded as the remote's state"
        );
    }
}

#[test]
fn branches_pushed_onto_a_target_that_moved_are_all_refused_and_none_sent() {
    let (origin, _dir, _path, mut mirror, _) = stand(0);
    let head = mirror.fetch("main").unwrap();
    let branches: Vec<String> = (0..3).map(|i| format!("promoter/qa/svc-{i}")).collect();
    let batch = updates(&mirror, head, &branches);
    commit_files(
        &origin.bare,
        "main",
        None,
        &[("NOTES.md", "landed meanwhile\n")],
        "a person's commit",
    );

    let answers = mirror.push_all_onto(&batch, "main", head);

    assert_eq!(answers.len(), 3);
    for (update, answer) in batch.iter().zip(&answers) {
        assert!(
            matches!(answer, Err(Error::TargetMoved { planned, .. }) if *planned == head.to_string()),
            "{answer:?}"
        );
        assert_eq!(origin.head(&update.branch), None, "nothing sent");
        assert_eq!(mirror.remote_branch(&update.branch).unwrap(), None);
    }
}
