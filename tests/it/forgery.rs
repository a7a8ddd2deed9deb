//! Requests and ownership nobody can forge (issue 14, part 2). A person with push access can
//! write any author, committer and trailers, amend promoter's commit, push a genuine old
//! commit again, or push between promoter's read and its push. None of it may waive a gate,
//! relabel an MR, be overwritten, or be lost: promoter trusts only commits whose SSH
//! signature verifies against its key, binds each recorded request to its branch and MR, and
//! leases every push on the push connection itself. Real git checks promoter's signatures.

use git2::{Oid, Repository, Signature, Time};
use promoter::chatops::command;
use promoter::git::mirror::{self, Author, Credentials, Mirror};
use promoter::model::{EnvName, ServiceName};
use promoter::plan::Request;
use promoter::reconcile::{self, ActionKind, Outcome, Scope};

use crate::support::Origin;
use crate::support::fake_gitlab::{FakeGitLab, MrRecord, commit_files};
use crate::support::world::{World, at};

const T0: &str = "2026-11-01T00:00:00Z";
/// A Friday before the year-end freeze (prod promotions may open).
const BEFORE_FREEZE: &str = "2026-12-18T10:00:00Z";
/// Inside prod's year-end freeze.
const FROZEN: &str = "2026-12-22T10:00:00Z";
const BREAK_GLASS: &str = "slack:UBREAK";
const CLIENT: &str = "promoter/prod/client";
const CLIENT_VALUES: &str = "clusters/prod/calculator/client/values.yaml";

/// The sample without network gates; `slack:UBREAK` may ask for prod and waive its freeze.
/// Due: client 0.3.2 -> 0.4.0 and maths-api 1.2.0 -> 1.2.1 into prod, maths-api into qa.
fn origin() -> Origin {
    Origin::new(T0, |s| {
        s.without_network_gates();
        s.replace(
            "policies/prod.yaml",
            "break_glass: [oncall-lead]",
            "break_glass: [oncall-lead, \"slack:UBREAK\"]\nrequesters: [\"slack:UBREAK\"]",
        );
    })
}

/// A commit on `branch` built on main's head, changing client's prod tag to 0.4.0, with the
/// given author/committer and message, optionally signed with `keys`.
fn push_commit(
    w: &World,
    branch: &str,
    who: (&str, &str),
    message: &str,
    when: &str,
    keys: Option<&promoter::git::signing::SigningKeys>,
) -> String {
    let repo = Repository::open_bare(&w.origin.bare).unwrap();
    let main = repo
        .find_reference("refs/heads/main")
        .unwrap()
        .peel_to_commit()
        .unwrap();
    let values = w.origin.read("main", CLIENT_VALUES);
    let blob = repo
        .blob(values.replace("tag: 0.3.2", "tag: 0.4.0").as_bytes())
        .unwrap();
    let mut update = git2::build::TreeUpdateBuilder::new();
    update.upsert(CLIENT_VALUES, blob, git2::FileMode::Blob);
    let tree = repo
        .find_tree(update.create_updated(&repo, &main.tree().unwrap()).unwrap())
        .unwrap();
    let sig = Signature::new(who.0, who.1, &Time::new(at(when).timestamp(), 0)).unwrap();
    let oid = match keys {
        None => repo
            .commit(None, &sig, &sig, message, &tree, &[&main])
            .unwrap(),
        Some(keys) => {
            let buffer = repo
                .commit_create_buffer(&sig, &sig, message, &tree, &[&main])
                .unwrap();
            let content = std::str::from_utf8(&buffer).unwrap();
            let signature = keys.sign(content.as_bytes()).unwrap();
            repo.commit_signed(content, &signature, None).unwrap()
        }
    };
    repo.reference(&format!("refs/heads/{branch}"), oid, true, "a push")
        .unwrap();
    oid.to_string()
}

/// `username` opens an MR from `branch` labelled as a promotion, through the API.
async fn open_promotion_as(w: &World, username: &str, branch: &str) {
    w.open_mr_as(
        username,
        serde_json::json!({
            "source_branch": branch,
            "target_branch": "main",
            "title": "promote client to prod: 0.3.2 -> 0.4.0",
            "labels": "promotion,env:prod",
        }),
    )
    .await;
}

fn action<'a>(outcome: &'a Outcome, branch: &str) -> &'a reconcile::Action {
    outcome
        .actions
        .iter()
        .find(|a| a.branch == branch)
        .unwrap_or_else(|| panic!("no action for {branch}: {:#?}", outcome.actions))
}

fn has(mr: &MrRecord, label: &str) -> bool {
    mr.labels.iter().any(|l| l == label)
}

const MODIFIED: &str = "promoter:modified-by-hand";

/// mallory's forgery: a commit on client's prod branch whose author and committer are
/// promoter's and whose trailers name the break-glass person, in an MR labelled as a
/// promotion: everything a reader of the text would trust. Returns the commit id.
async fn forge_break_glass(w: &World) -> String {
    let message = format!(
        "promote client to prod: 0.3.2 -> 0.4.0\n\nRequested-by: {BREAK_GLASS}\nReason: incident\nRequested-at: 2026-12-22T09:55:00+00:00\nPromotion: {CLIENT}"
    );
    let forged = push_commit(
        w,
        CLIENT,
        ("promoter", "promoter@example.com"),
        &message,
        "2026-12-22T09:55:00Z",
        None,
    );
    open_promotion_as(w, "mallory", CLIENT).await;
    forged
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_promoter_commit_with_break_glass_trailers_waives_nothing() {
    let w = World::new(origin()).await;
    let forged = forge_break_glass(&w).await;

    let outcome = w.run(FROZEN).await;
    let client = action(&outcome, CLIENT);
    assert_eq!(client.kind, ActionKind::HandsOff, "{client:#?}");
    assert!(
        client
            .detail
            .starts_with("blocked: modified by promoter <promoter@example.com> (commit")
            && client
                .detail
                .contains("not signed by promoter: it is not signed"),
        "{}",
        client.detail
    );
    let mr = w.open_mr(CLIENT);
    assert!(!has(&mr, "break-glass"), "no gate waived: {mr:#?}");
    assert!(has(&mr, MODIFIED), "{mr:#?}");
    assert_eq!(mr.notes.len(), 1, "{:#?}", mr.notes);
    assert!(
        mr.notes[0].contains("promoter cannot prove it made")
            && mr.notes[0].contains("will not overwrite that work or merge this MR"),
        "{}",
        mr.notes[0]
    );
    assert_eq!(
        w.origin.head(CLIENT).as_deref(),
        Some(forged.as_str()),
        "never rebuilt as a genuine commit carrying the forged trailers"
    );
    // prod's other promotion stays frozen: nothing was waived for anyone.
    assert!(
        w.fake
            .merge_requests()
            .iter()
            .all(|m| m.source_branch != "promoter/prod/maths-api"),
        "frozen"
    );

    let again = w.run("2026-12-22T11:00:00Z").await;
    assert_eq!(action(&again, CLIENT).kind, ActionKind::HandsOff);
    let mr = w.open_mr(CLIENT);
    assert_eq!(mr.notes.len(), 1, "said once");
    assert_eq!(mr.state, "opened");
    assert_eq!(w.origin.head(CLIENT).as_deref(), Some(forged.as_str()));
}

/// The same forgery against the real binary: `promoter reconcile --once` with its own config
/// (signing key and all) leaves the forged branch alone and waives nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_waives_nothing_for_a_forged_break_glass_commit() {
    let w = World::new(origin()).await;
    let forged = forge_break_glass(&w).await;
    w.fake.set_clock(at(FROZEN));

    let dir = tempfile::tempdir().unwrap();
    let config = crate::support::daemon::config(
        dir.path(),
        &w.fake,
        &w.origin,
        crate::support::daemon::free_port(),
    );
    let mut command =
        crate::support::daemon::promoter(&config, &["reconcile", "--once", "--at", FROZEN]);
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains(CLIENT))
        .unwrap_or_else(|| {
            panic!(
                "no line for {CLIENT}:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(line.contains("blocked: modified by"), "{line}");
    let mr = w.open_mr(CLIENT);
    assert!(!has(&mr, "break-glass"), "no gate waived: {mr:#?}");
    assert!(has(&mr, MODIFIED), "{mr:#?}");
    assert_eq!(w.origin.head(CLIENT).as_deref(), Some(forged.as_str()));
    assert!(
        w.fake
            .merge_requests()
            .iter()
            .all(|m| m.source_branch != "promoter/prod/maths-api"),
        "prod stays frozen for everyone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amended_promoter_commit_is_hands_off() {
    let w = World::new(origin()).await;
    w.run(BEFORE_FREEZE).await;
    let branch = "promoter/qa/maths-api";
    let mr = w.open_mr(branch);
    let repo = Repository::open_bare(&w.origin.bare).unwrap();
    let ours = repo
        .find_commit(Oid::from_str(&w.origin.head(branch).unwrap()).unwrap())
        .unwrap();
    // `git commit --amend` keeps the author (and here even the committer) and drops the
    // signature: same tree, same parent, another message.
    let amended = repo
        .commit(
            None,
            &ours.author(),
            &ours.committer(),
            &format!("{}\n\nreviewed by hand", ours.message().unwrap()),
            &ours.tree().unwrap(),
            &[&ours.parent(0).unwrap()],
        )
        .unwrap();
    repo.reference(&format!("refs/heads/{branch}"), amended, true, "amend")
        .unwrap();
    w.fake.approve(mr.iid, "alice");

    let outcome = w.run("2026-12-18T11:00:00Z").await;
    assert_eq!(action(&outcome, branch).kind, ActionKind::HandsOff);
    assert_eq!(outcome.count(&ActionKind::Merged), 0);
    assert_eq!(
        w.origin.head(branch).as_deref(),
        Some(amended.to_string().as_str()),
        "not force-pushed"
    );
    let mr = w.open_mr(branch);
    assert!(has(&mr, MODIFIED), "{mr:#?}");
    assert_eq!(mr.notes.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_commit_on_a_policy_branch_is_never_replaced() {
    let w = World::new(origin()).await;
    let prod = command::Scope::Env(EnvName::new("prod"));
    let freeze = |reason: &str| {
        reconcile::policy_change::freeze_change(
            &prod,
            None,
            reason,
            "slack:U1",
            "a test",
            at("2026-12-01T10:00:00Z"),
        )
    };
    let opened = w
        .reconciler
        .propose_policy_change(freeze("release week"), at("2026-12-01T10:00:00Z"))
        .await
        .unwrap();
    let branch = "promoter-policy/freeze-prod";
    let theirs = commit_files(
        &w.origin.bare,
        branch,
        None,
        &[("policies/freeze-prod.yaml", "freezes: []\n")],
        "a person's edit of the freeze",
    );

    for attempt in 0..2 {
        let refused = w
            .reconciler
            .propose_policy_change(freeze("another reason"), at("2026-12-01T11:00:00Z"))
            .await
            .unwrap_err();
        assert!(
            matches!(refused, reconcile::Error::HandsOff { .. }),
            "{attempt}: {refused}"
        );
        assert!(
            refused
                .to_string()
                .starts_with("`promoter-policy/freeze-prod` holds a commit promoter cannot prove it made: dev <dev@example.com>"),
            "{refused}"
        );
        assert_eq!(w.origin.head(branch).as_deref(), Some(theirs.as_str()));
        let mr = w.open_mr(branch);
        assert_eq!(mr.iid, opened.iid);
        assert!(has(&mr, MODIFIED), "{mr:#?}");
        assert_eq!(mr.notes.len(), 1, "said once: {:#?}", mr.notes);
        assert!(
            mr.title.contains("release week"),
            "not replaced: {}",
            mr.title
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_genuine_old_request_pushed_again_is_not_honoured() {
    let w = World::new(origin()).await;
    // Before the freeze promoter opens prod's client promotion (no request).
    w.run(BEFORE_FREEZE).await;
    assert!(!has(&w.open_mr(CLIENT), "break-glass"));
    // In the freeze, someone pushes last month's genuine, signed break-glass commit again.
    let keys = crate::support::signing_keys();
    let message = format!(
        "promote client to prod: 0.3.2 -> 0.4.0\n\nRequested-by: {BREAK_GLASS}\nReason: incident last month\nRequested-at: 2026-11-20T09:00:00+00:00\nPromotion: {CLIENT}"
    );
    let replayed = push_commit(
        &w,
        CLIENT,
        ("promoter", "promoter@example.com"),
        &message,
        "2026-11-20T09:00:00Z",
        Some(&keys),
    );

    w.run(FROZEN).await;
    let mr = w.open_mr(CLIENT);
    assert!(
        !has(&mr, "break-glass"),
        "the freeze is not waived: {mr:#?}"
    );
    assert!(has(&mr, "promoter:frozen"), "{mr:#?}");
    assert!(has(&mr, "promoter:request-lapsed"), "{mr:#?}");
    let lapse: Vec<&String> = mr
        .notes
        .iter()
        .filter(|n| n.contains("no longer counts"))
        .collect();
    assert_eq!(lapse.len(), 1, "{:#?}", mr.notes);
    assert!(
        lapse[0].contains("before this merge request was opened"),
        "{}",
        lapse[0]
    );
    assert_eq!(mr.state, "opened", "paused by the freeze, not merged");
    assert_eq!(w.origin.head(CLIENT).as_deref(), Some(replayed.as_str()));

    w.run("2026-12-22T11:00:00Z").await;
    let notes = w.open_mr(CLIENT).notes;
    assert_eq!(
        notes
            .iter()
            .filter(|n| n.contains("no longer counts"))
            .count(),
        1,
        "said once: {notes:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_lapses_when_its_requester_is_removed_from_the_policy() {
    let w = World::new(origin()).await;
    let request = Request {
        service: ServiceName::new("client"),
        to: EnvName::new("prod"),
        tag: None,
        requested_by: BREAK_GLASS.into(),
        reason: Some("incident".into()),
        rollback: false,
        requested_at: Some(at(FROZEN)),
    };
    w.run_with(&[request], FROZEN).await;
    let mr = w.open_mr(CLIENT);
    assert!(has(&mr, "break-glass"), "the freeze is waived: {mr:#?}");
    // The next run keeps honouring the recorded (signed) request.
    w.run("2026-12-22T10:10:00Z").await;
    let mr = w.open_mr(CLIENT);
    assert!(!has(&mr, "promoter:frozen"), "{mr:#?}");

    // slack:UBREAK leaves the on-call rota.
    w.origin.commit(
        &[(
            "policies/prod.yaml",
            "requesters: [\"slack:UBREAK\"]",
            "requesters: [\"slack:UOTHER\"]",
        )],
        "UBREAK left the rota",
        "2026-12-22T10:20:00Z",
    );
    w.run("2026-12-22T10:30:00Z").await;
    let mr = w.open_mr(CLIENT);
    let lapse: Vec<&String> = mr
        .notes
        .iter()
        .filter(|n| n.contains("no longer counts"))
        .collect();
    assert_eq!(lapse.len(), 1, "{:#?}", mr.notes);
    assert!(
        lapse[0].contains("slack:UBREAK may no longer request promotions into prod"),
        "{}",
        lapse[0]
    );
    assert!(
        has(&mr, "promoter:frozen"),
        "the plan without the request: frozen"
    );

    w.run("2026-12-22T11:00:00Z").await;
    let notes = w.open_mr(CLIENT).notes;
    assert_eq!(
        notes
            .iter()
            .filter(|n| n.contains("no longer counts"))
            .count(),
        1,
        "said once"
    );
}

#[test]
fn the_lease_is_decided_on_the_push_connection() {
    let origin = crate::support::origin_with_new_dev_tag("2026-11-24T10:00:00Z");
    let dir = tempfile::tempdir().unwrap();
    let mut mirror = Mirror::open(
        &dir.path().join("mirror.git"),
        &origin.url(),
        Credentials::None,
    )
    .unwrap();
    let author = Author {
        name: "promoter".into(),
        email: "promoter@example.com".into(),
        keys: crate::support::signing_keys(),
    };
    let head = mirror.fetch("main").unwrap();
    let branch = "promoter/qa/notes";
    let file = |text: &str| vec![("NOTES.md".to_string(), Some(text.to_string()))];
    let first = mirror
        .commit_files(head, &file("one\n"), "first", &author, 1_800_000_000)
        .unwrap();
    mirror.push(first, branch, None).unwrap();
    // A person pushes after promoter read the branch and before its next push.
    let theirs = commit_files(
        &origin.bare,
        branch,
        None,
        &[("NOTES.md", "theirs\n")],
        "mine",
    );
    let second = mirror
        .commit_files(head, &file("two\n"), "second", &author, 1_800_000_100)
        .unwrap();
    match mirror.push(second, branch, Some(first)) {
        Err(mirror::Error::Lease {
            expected, found, ..
        }) => {
            assert_eq!(expected, first.to_string());
            assert_eq!(found, theirs);
        }
        other => panic!("the lease must refuse: {other:?}"),
    }
    assert_eq!(
        origin.head(branch).as_deref(),
        Some(theirs.as_str()),
        "nothing lost"
    );
    // Creating a branch that someone created meanwhile is refused the same way.
    let other = commit_files(
        &origin.bare,
        "promoter/qa/other",
        Some("main"),
        &[("X", "x\n")],
        "x",
    );
    assert!(matches!(
        mirror.push(second, "promoter/qa/other", None),
        Err(mirror::Error::Lease { .. })
    ));
    assert_eq!(
        origin.head("promoter/qa/other").as_deref(),
        Some(other.as_str())
    );
    // Deleting is leased too.
    assert!(matches!(
        mirror.delete_branch(branch, first),
        Err(mirror::Error::Lease { .. })
    ));
    assert_eq!(origin.head(branch).as_deref(), Some(theirs.as_str()));
}

/// A person takes over a promotion branch right after promoter pushed it, before its MR: the
/// branches of the next promotions (up to four) go in one push before their MRs, so this is
/// the window between a branch's push and its MR. promoter opens the MR (it cannot know), and
/// the next run sees the person's commit: their work is kept, labelled, and never merged. (A
/// person's commit that lands *before* promoter's push refuses the push by its lease: above,
/// and `push.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_taking_a_branch_between_its_push_and_its_mr_is_left_alone() {
    let (origin, due) = crate::faults::origin("2026-11-24T10:00:00Z", 0);
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let state = tempfile::tempdir().unwrap();
    let r = crate::support::reconciler(&fake, &origin, state.path()).await;
    let maths = due[1].branch();
    assert_eq!(maths, "promoter/qa/maths-api");
    // While the first promotion (client) opens its MR, a person replaces maths-api's branch,
    // which promoter pushed together with client's.
    let person = maths.clone();
    fake.on_request(http::Method::POST, "/merge_requests", move |bare| {
        commit_files(
            bare,
            &person,
            Some("main"),
            &[("NOTES.md", "a person's work\n")],
            "mine",
        );
    });
    let outcome = r
        .run_once(&Scope::all(), &[], at("2026-11-24T12:00:00Z"))
        .await
        .unwrap();
    assert_eq!(action(&outcome, &due[0].branch()).kind, ActionKind::Opened);

    let next = r
        .run_once(&Scope::all(), &[], at("2026-11-24T12:05:00Z"))
        .await
        .unwrap();
    let theirs = origin.head(&maths).unwrap();
    let repo = Repository::open_bare(&origin.bare).unwrap();
    let tip = repo.find_commit(Oid::from_str(&theirs).unwrap()).unwrap();
    assert_eq!(
        tip.message().ok(),
        Some("mine"),
        "the person's commit is kept"
    );
    assert_eq!(
        action(&next, &maths).kind,
        ActionKind::HandsOff,
        "the next run saw the person's commit: {:#?}",
        next.actions
    );
    let mr = fake
        .merge_requests()
        .into_iter()
        .find(|m| m.source_branch == maths)
        .unwrap();
    assert_eq!(mr.state, "opened", "never merged");
    assert!(mr.labels.iter().any(|l| l == MODIFIED), "{mr:#?}");
}

#[test]
fn real_git_verifies_promoters_commits() {
    let Some(git) = tool("git") else { return };
    if tool("ssh-keygen").is_none() {
        return;
    }
    let origin = crate::support::origin_with_new_dev_tag("2026-11-24T10:00:00Z");
    let dir = tempfile::tempdir().unwrap();
    let mut mirror = Mirror::open(
        &dir.path().join("mirror.git"),
        &origin.url(),
        Credentials::None,
    )
    .unwrap();
    let keys = crate::support::signing_keys();
    let author = Author {
        name: "promoter".into(),
        email: "promoter@example.com".into(),
        keys: keys.clone(),
    };
    let head = mirror.fetch("main").unwrap();
    let commit = mirror
        .commit_files(
            head,
            &[("NOTES.md".to_string(), Some("signed\n".to_string()))],
            "promote maths-api to qa: 1.2.1 -> 1.4.0",
            &author,
            1_800_000_000,
        )
        .unwrap();
    mirror.push(commit, "promoter/qa/maths-api", None).unwrap();
    let signers = dir.path().join("allowed_signers");
    std::fs::write(
        &signers,
        format!(
            "promoter@example.com namespaces=\"git\" {}\n",
            keys.public_key()
        ),
    )
    .unwrap();
    let verify = |sha: &str| {
        std::process::Command::new(&git)
            .arg("-C")
            .arg(&origin.bare)
            .args(["-c", "gpg.format=ssh", "-c"])
            .arg(format!("gpg.ssh.allowedSignersFile={}", signers.display()))
            .args(["verify-commit", "-v", sha])
            .output()
            .unwrap()
    };
    let good = verify(&commit.to_string());
    let said = String::from_utf8_lossy(&good.stderr).into_owned();
    assert!(good.status.success(), "git verify-commit refused: {said}");
    assert!(
        said.contains("Good \"git\" signature for promoter@example.com with ED25519 key"),
        "{said}"
    );
    // A person's commit does not verify, for git either.
    let theirs = commit_files(
        &origin.bare,
        "promoter/qa/maths-api",
        None,
        &[("NOTES.md", "theirs\n")],
        "mine",
    );
    assert!(!verify(&theirs).status.success());
}

/// A tool on PATH; missing ones skip the test, except under `CI=true`, where they fail it.
fn tool(name: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{name} is required under CI (scripts/install-test-deps)"
        );
        eprintln!("skipped: {name} is not installed");
    }
    found
}

#[test]
fn online_commands_refuse_to_start_without_a_signing_key() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "glpat-x\n").unwrap();
    let file = dir.path().join("promoter.yaml");
    let base = format!(
        "gitlab:\n  url: http://127.0.0.1:9\n  project: acme/calculator\n  token_file: {}\ngit:\n  url: file:///nonexistent\n",
        token.display()
    );
    std::fs::write(&file, &base).unwrap();
    for args in [&["reconcile", "--once"][..], &["daemon"][..]] {
        let out =
            crate::support::promoter(&[&["--config", file.to_str().unwrap()][..], args].concat());
        let said = crate::support::stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {said}");
        assert!(
            said.contains("git.signing_key_file: required but not set")
                && said.contains("ssh-keygen -t ed25519 -N ''"),
            "{args:?}: {said}"
        );
    }
    // A key file that is not a key is named, with what to do.
    let bad = dir.path().join("signing_key");
    std::fs::write(&bad, "not a key\n").unwrap();
    std::fs::write(
        &file,
        format!("{base}  signing_key_file: {}\n", bad.display()),
    )
    .unwrap();
    let out =
        crate::support::promoter(&["--config", file.to_str().unwrap(), "reconcile", "--once"]);
    let said = crate::support::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("git.signing_key_file: cannot read an OpenSSH private key from")
            && !said.contains("glpat-x"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_commit_on_a_train_is_hands_off() {
    let origin = origin();
    origin.commit(
        &[(
            "policies/prod.yaml",
            "requesters: [\"slack:UBREAK\"]",
            "requesters: [\"slack:UBREAK\"]\ngroup: train",
        )],
        "prod rides a train",
        T0,
    );
    let w = World::new(origin).await;
    w.run(BEFORE_FREEZE).await;
    let train = "promoter/prod/train";
    let mr = w.open_mr(train);
    assert!(mr.title.contains("(train)"), "{}", mr.title);
    let theirs = commit_files(
        &w.origin.bare,
        train,
        None,
        &[("NOTES.md", "checked by hand\n")],
        "a person's fix on the train",
    );
    for now in ["2026-12-18T11:00:00Z", "2026-12-18T12:00:00Z"] {
        let outcome = w.run(now).await;
        assert_eq!(action(&outcome, train).kind, ActionKind::HandsOff);
        assert_eq!(w.origin.head(train).as_deref(), Some(theirs.as_str()));
        let mr = w.open_mr(train);
        assert!(has(&mr, MODIFIED), "{mr:#?}");
        assert_eq!(mr.notes.len(), 1, "said once: {:#?}", mr.notes);
    }
}
