//! The text promoter writes for people, pinned with `insta` snapshots (in `snapshots/`): MR
//! descriptions (a promotion with its gates and changelog, a rollback, a train), the notes it
//! leaves on MRs, chat replies, and the dashboard issue. Every scenario runs through the test
//! world at fixed instants, so a snapshot changes only when the wording does; a reviewer sees
//! every change of wording in the diff. Only what differs between runs is replaced: the
//! double's address (a free port) and commit ids (some commits are made at the wall clock).

use promoter::model::{EnvName, ServiceName};
use promoter::plan::Request;
use promoter::reconcile::{ActionKind, Scope};

use crate::support::Origin;
use crate::support::chat::{Chats, mattermost, reply_text, response_url, slack};
use crate::support::chat::{MATTERMOST_TOKEN, wait_for_posts};
use crate::support::fake_gitlab::MrRecord;
use crate::support::world::{World, at};

const T0: &str = "2026-11-01T00:00:00Z";
const RELEASE: &str = "2026-11-24T10:00:00Z";
const QA: &str = "promoter/qa/maths-api";

/// `text` with the run-dependent parts replaced: the double's URL, and the ids of the
/// origin's commits (some are made at the wall clock), whole or cut to 8 digits.
fn stable(w: &World, text: &str) -> String {
    let mut text = text.replace(&w.fake.url(), "https://gitlab.example.com");
    for id in commit_ids(w) {
        text = text.replace(&id, "<commit>").replace(&id[..8], "<commit>");
    }
    text
}

/// Every commit reachable from a branch of the origin.
fn commit_ids(w: &World) -> Vec<String> {
    let repo = git2::Repository::open_bare(&w.origin.bare).unwrap();
    let mut walk = repo.revwalk().unwrap();
    walk.push_glob("heads/*").unwrap();
    walk.map(|id| id.unwrap().to_string()).collect()
}

/// An MR as a reader sees it: title, labels, description.
fn shown(w: &World, mr: &MrRecord) -> String {
    stable(
        w,
        &format!(
            "title: {}\nlabels: {}\n\n{}",
            mr.title,
            mr.labels.join(", "),
            mr.description
        ),
    )
}

/// The notes of `mr` that start with `start`, exactly one expected.
fn note(w: &World, mr: &MrRecord, start: &str) -> String {
    let found: Vec<&String> = mr.notes.iter().filter(|n| n.starts_with(start)).collect();
    assert_eq!(found.len(), 1, "{start}: {:#?}", mr.notes);
    stable(w, found[0])
}

/// maths-api 1.4.0 released to dev with two app commits (one mentioning @here) and qa
/// reviewed by alice; slack:U1 and gitlab:alice may ask for qa.
fn changelog_origin() -> Origin {
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
            "soak: 1h\nreviewers: [alice]\nrequesters: [\"slack:U1\", \"gitlab:alice\"]\n",
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
    origin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_mr_superseded_then_no_longer_due() {
    let w = World::new(changelog_origin()).await;
    w.run("2026-11-24T12:00:00Z").await;
    let mr = w.open_mr(QA);
    insta::assert_snapshot!("promotion_mr", shown(&w, &mr));

    // dev moves on: the same MR, rewritten, says what it replaced.
    w.origin
        .set_tag("dev", "maths-api", "1.4.0", "1.4.1", "2026-11-24T12:30:00Z");
    w.run("2026-11-24T14:00:00Z").await;
    let mr = w.open_mr(QA);
    insta::assert_snapshot!("note_superseded", note(&w, &mr, "Superseded"));

    // A person sets qa by hand: the promotion is no longer due.
    w.origin
        .set_tag("qa", "maths-api", "1.2.1", "1.4.1", "2026-11-24T14:30:00Z");
    w.run("2026-11-24T15:00:00Z").await;
    let closed = w.mr(mr.iid);
    assert_eq!(closed.state, "closed");
    insta::assert_snapshot!(
        "note_no_longer_due",
        note(&w, &closed, "Closed by promoter")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_mr() {
    let origin = crate::support::origin_with_new_dev_tag(RELEASE);
    origin.commit(
        &[(
            "policies/qa.yaml",
            "soak: 1h\n",
            "soak: 1h\nrequesters: [\"gitlab:alice\"]\n",
        )],
        "alice may ask for qa",
        RELEASE,
    );
    let w = World::new(origin).await;
    w.run("2026-11-24T12:00:00Z").await;
    w.approve(w.open_mr(QA).iid, "alice");
    w.run("2026-11-24T13:00:00Z").await;
    let rollback = Request {
        service: ServiceName::new("maths-api"),
        to: EnvName::new("qa"),
        tag: None,
        requested_by: "gitlab:alice".into(),
        reason: Some("5xx after the deploy".into()),
        rollback: true,
        requested_at: Some(at("2026-11-24T14:00:00Z")),
    };
    w.run_with(&[rollback], "2026-11-24T14:00:00Z").await;
    insta::assert_snapshot!("rollback_mr", shown(&w, &w.open_mr(QA)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_train_mr() {
    let origin = crate::steering::train_origin();
    crate::steering::release(&origin, "client", "0.4.0", "0.4.1", RELEASE);
    crate::steering::release(&origin, "client-b", "0.4.0", "0.5.0", RELEASE);
    crate::steering::release(&origin, "client-c", "0.4.0", "1.0.0", RELEASE);
    let w = World::new(origin).await;
    w.run("2026-11-24T12:00:00Z").await;
    insta::assert_snapshot!("train_mr", shown(&w, &w.open_mr("promoter/qa/train")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_the_line_and_the_freeze_ended() {
    let w = World::new(crate::support::origin_with_new_dev_tag(RELEASE)).await;
    w.run("2026-11-24T12:00:00Z").await;
    let iid = w.open_mr(QA).iid;
    let freeze = "freezes:\n  - name: incident\n    reason: \"INC-7: stop the line\"\n    start: 2026-11-24T12:30:00Z\n    end: 2030-01-01T00:00:00Z\n";
    w.origin.write(
        &[("policies/freeze-all.yaml", Some(freeze))],
        "freeze all",
        "2026-11-24T12:30:00Z",
    );
    w.approve(iid, "alice");
    w.run("2026-11-24T13:00:00Z").await;
    insta::assert_snapshot!(
        "note_stop_the_line",
        note(&w, &w.mr(iid), "**Stop the line.**")
    );
    w.origin.write(
        &[("policies/freeze-all.yaml", None)],
        "unfreeze all",
        "2026-11-24T15:00:00Z",
    );
    w.run("2026-11-24T15:30:00Z").await;
    insta::assert_snapshot!(
        "note_freeze_ended",
        note(&w, &w.mr(iid), "**The freeze has ended.**")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hands_off_a_branch_a_person_changed() {
    let w = World::new(crate::support::origin_with_new_dev_tag(RELEASE)).await;
    w.run("2026-11-24T12:00:00Z").await;
    crate::support::fake_gitlab::commit_files(
        &w.origin.bare,
        QA,
        None,
        &[(
            "clusters/qa/calculator/maths-api/NOTES.md",
            "tested by hand\n",
        )],
        "note from a person",
    );
    let outcome = w.run("2026-11-24T12:10:00Z").await;
    assert_eq!(outcome.count(&ActionKind::HandsOff), 1, "{outcome:#?}");
    let mr = w.open_mr(QA);
    let last = mr.notes.last().expect("a note").clone();
    insta::assert_snapshot!("note_hands_off", stable(&w, &last));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_lapsed() {
    let origin = Origin::new(T0, |s| {
        s.without_network_gates();
        s.replace(
            "policies/prod.yaml",
            "break_glass: [oncall-lead]",
            "break_glass: [oncall-lead, \"slack:UBREAK\"]\nrequesters: [\"slack:UBREAK\"]",
        );
    });
    let w = World::new(origin).await;
    let frozen = "2026-12-22T10:00:00Z";
    let request = Request {
        service: ServiceName::new("client"),
        to: EnvName::new("prod"),
        tag: None,
        requested_by: "slack:UBREAK".into(),
        reason: Some("incident".into()),
        rollback: false,
        requested_at: Some(at(frozen)),
    };
    w.run_with(&[request], frozen).await;
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
    let mr = w.open_mr("promoter/prod/client");
    let lapsed: Vec<&String> = mr
        .notes
        .iter()
        .filter(|n| n.contains("no longer counts"))
        .collect();
    assert_eq!(lapsed.len(), 1, "{:#?}", mr.notes);
    insta::assert_snapshot!("note_request_lapsed", stable(&w, lapsed[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_issue() {
    let w = World::new(changelog_origin()).await;
    // The first run opens the qa promotion; the second's dashboard lists it.
    w.run("2026-11-24T12:00:00Z").await;
    let outcome = w.run("2026-11-24T12:05:00Z").await;
    let data = outcome.dashboard.expect("every run builds its dashboard");
    w.reconciler.ensure_dashboard_issue(&data).await.unwrap();
    let issues = w.fake.issues();
    assert_eq!(issues.len(), 1, "{issues:#?}");
    let issue = &issues[0];
    insta::assert_snapshot!(
        "dashboard_issue",
        stable(
            &w,
            &format!(
                "title: {}\nlabels: {}\n\n{}",
                issue.title,
                issue.labels.join(", "),
                issue.description.as_deref().unwrap_or_default()
            )
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_replies() {
    let w = World::new(changelog_origin()).await;
    // The daemon's first resync at a fixed instant: its dashboard answers status and plan.
    let first = w
        .run_scoped(&Scope::default(), &[], "2026-11-24T12:00:00Z")
        .await;
    let stack = w.chat_stack(
        &first,
        Chats {
            slack: true,
            mattermost: true,
            ..Chats::default()
        },
    );
    let app = stack.app.clone();
    let (hook, posted) = response_url().await;
    let asks = [
        ("help", "slack_help", "U1"),
        ("promte maths-api", "slack_unknown_command", "U1"),
        ("status", "slack_status", "U1"),
        ("status maths-api", "slack_status_one_service", "U1"),
        ("plan", "slack_plan", "U1"),
        ("promote maths-api to qa", "slack_promote_refused", "U2"),
    ];
    for (text, name, user) in asks {
        let reply = reply_text(&app, slack(user, text, &hook)).await;
        insta::assert_snapshot!(name, stable(&w, &reply), text);
    }
    for (text, name) in [
        ("help", "mattermost_help"),
        ("status", "mattermost_status"),
        ("promte maths-api", "mattermost_unknown_command"),
        ("plan", "mattermost_plan"),
        // mattermost:bob is no requester of qa.
        ("promote maths-api to qa", "mattermost_promote_refused"),
    ] {
        let reply = reply_text(&app, mattermost(Some(MATTERMOST_TOKEN), text)).await;
        insta::assert_snapshot!(name, stable(&w, &reply), text);
    }

    // Accepted: the immediate answer, then the result posted to response_url.
    let accepted = reply_text(&app, slack("U1", "promote maths-api to qa", &hook)).await;
    insta::assert_snapshot!("slack_promote_accepted", stable(&w, &accepted));
    wait_for_posts(&posted, 1).await;
    let result = posted.lock().unwrap()[0].clone();
    insta::assert_snapshot!(
        "slack_promote_result",
        stable(&w, &serde_json::to_string_pretty(&result).unwrap())
    );
}
