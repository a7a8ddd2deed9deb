//! An attacker's try at issue 14's defences: a Developer (push to unprotected branches, open and
//! edit MRs, comment), a chat user, a network client. Each test is one attack that found a hole
//! (fixed here, or `#[ignore]`d with the fix it needs) or one that probes a defence's edge.

use git2::Repository;
use promoter::promotion::RecordedRequest;

use promoter::model::{EnvName, ServiceName};
use promoter::plan::Request;

use crate::support::Origin;
use crate::support::fake_gitlab::{FakeGitLab, MrRecord};
use crate::support::world::{World, at};

const T0: &str = "2026-11-01T00:00:00Z";
/// A Friday before the year-end freeze.
const BEFORE_FREEZE: &str = "2026-12-18T10:00:00Z";
const QA_BRANCH: &str = "promoter/qa/maths-api";

async fn world() -> World {
    World::new(Origin::new(T0, |s| s.without_network_gates())).await
}

/// As forgery.rs: `slack:UBREAK` may ask for prod and waive its freeze.
fn break_glass_origin() -> Origin {
    Origin::new(T0, |s| {
        s.without_network_gates();
        s.replace(
            "policies/prod.yaml",
            "break_glass: [oncall-lead]",
            "break_glass: [oncall-lead, \"slack:UBREAK\"]\nrequesters: [\"slack:UBREAK\"]",
        );
    })
}

/// `username` opens an MR from `source` into `target` through the API, as GitLab lets any
/// Developer do; returns its iid.
async fn open_mr_as(w: &World, username: &str, source: &str, target: &str, title: &str) -> u64 {
    w.open_mr_as(
        username,
        serde_json::json!({
            "source_branch": source,
            "target_branch": target,
            "title": title,
            "description": "Routine promotion, all gates green.",
            "labels": "promotion,env:qa",
        }),
    )
    .await
}

/// Hole (fixed): GitLab allows a second open MR from the same source branch into another
/// target branch (its duplicate check is per source *and* target branch). A Developer opens one
/// from promoter's own, signed branch into a scratch branch of theirs, labelled `promotion`.
/// promoter took whichever MR of the branch it listed: the Developer's MR was the one whose
/// author decided whether a recorded request counts (it lapsed: "opened by mallory"), and once
/// promoter's own MR was merged, the Developer's MR (still open; GitLab keeps it when the branch
/// is deleted) became *the* MR of the next promotion on that branch: promoter wrote its gate
/// table into it, reviewers approved it, and promoter merged the promotion into `scratch` and
/// reported it merged; it never reached `main`. Now promoter only ever reads, adopts, updates
/// or merges MRs into `git.branch`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mr_from_promoters_branch_into_another_target_is_never_adopted_or_merged() {
    let w = world().await;
    w.run(BEFORE_FREEZE).await;
    let ours = w
        .fake
        .merge_requests()
        .into_iter()
        .find(|m| m.source_branch == QA_BRANCH && m.state == "opened")
        .expect("promoter opened the qa promotion");
    assert_eq!(ours.target_branch, "main");

    // The Developer's scratch branch, at main's head, and their MR from promoter's branch into it.
    let repo = Repository::open_bare(&w.origin.bare).unwrap();
    let main = repo
        .find_reference("refs/heads/main")
        .unwrap()
        .target()
        .unwrap();
    repo.reference("refs/heads/scratch", main, false, "a Developer's branch")
        .unwrap();
    w.fake.set_clock(at("2026-12-18T10:01:00Z"));
    let theirs = open_mr_as(&w, "mallory", QA_BRANCH, "scratch", "Draft: notes").await;

    // promoter's own MR is approved and merged into main as usual.
    w.fake.set_clock(at("2026-12-18T10:05:00Z"));
    w.fake.approve(ours.iid, "alice");
    w.run("2026-12-18T10:10:00Z").await;
    assert_eq!(w.mr(ours.iid).state, "merged");
    assert_eq!(w.mr(theirs).state, "opened", "GitLab keeps it open");

    // The next qa promotion of maths-api, on the same branch name.
    w.origin
        .set_tag("dev", "maths-api", "1.3.0", "1.4.0", "2026-12-18T10:15:00Z");
    w.run("2026-12-18T12:00:00Z").await;
    // A reviewer approves the promotion on whichever MR promoter keeps up to date.
    w.fake.set_clock(at("2026-12-18T12:05:00Z"));
    for mr in w.fake.merge_requests() {
        if mr.state == "opened" && mr.source_branch == QA_BRANCH {
            w.fake.approve(mr.iid, "alice");
        }
    }
    let outcome = w.run("2026-12-18T12:10:00Z").await;

    let theirs_now = w.mr(theirs);
    assert_eq!(
        theirs_now.state, "opened",
        "never merged into the Developer's branch: {outcome:#?}"
    );
    assert_eq!(
        theirs_now.title, "Draft: notes",
        "its text is not promoter's to keep"
    );
    assert_eq!(
        repo.find_reference("refs/heads/scratch")
            .unwrap()
            .target()
            .unwrap(),
        main,
        "nothing merged into scratch"
    );
    let promoted: Vec<MrRecord> = w
        .fake
        .merge_requests()
        .into_iter()
        .filter(|m| m.source_branch == QA_BRANCH && m.target_branch == "main")
        .collect();
    assert_eq!(promoted.len(), 2, "{promoted:#?}");
    assert_eq!(promoted[1].state, "merged", "{promoted:#?}");
    assert!(
        w.origin
            .read("main", "clusters/qa/calculator/maths-api/values.yaml")
            .contains("tag: 1.4.0"),
        "the promotion reached main"
    );
}

/// Hole (fixed): promoter rewrote an MR's description only when the marker at its end (an
/// HTML comment naming the candidate) changed. A Developer, who may edit any MR, replaced the
/// text above the marker (the gate table, the changelog, a rollback's hold notice) with their
/// own and kept the marker: promoter never restored it, so reviewers read the Developer's words
/// as promoter's. The marker now also carries the SHA-256 of the text promoter wrote above it;
/// text that no longer matches is rewritten on the next run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_description_edited_by_hand_under_promoters_marker_is_restored() {
    let w = world().await;
    w.run(BEFORE_FREEZE).await;
    let ours = w
        .fake
        .merge_requests()
        .into_iter()
        .find(|m| m.source_branch == QA_BRANCH && m.state == "opened")
        .expect("promoter opened the qa promotion");
    let marker = &ours.description[ours.description.rfind("<!-- promoter: ").unwrap()..];
    // An honest second run leaves the text alone.
    w.run("2026-12-18T10:05:00Z").await;
    assert_eq!(w.mr(ours.iid).description, ours.description);

    let token = w.fake.add_user("mallory");
    let forged = format!("Routine bump, every gate green, no changes worth reading.\n\n{marker}");
    let response = reqwest::Client::new()
        .put(format!(
            "{}/api/v4/projects/{}/merge_requests/{}",
            w.fake.url(),
            FakeGitLab::PROJECT_ID,
            ours.iid
        ))
        .header("PRIVATE-TOKEN", token)
        .json(&serde_json::json!({ "description": forged }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);

    w.run("2026-12-18T10:10:00Z").await;
    let restored = w.mr(ours.iid).description;
    assert!(!restored.contains("Routine bump"), "{restored}");
    let first_paragraph = ours.description.split("\n\n").next().unwrap();
    assert!(
        restored.starts_with(first_paragraph) && restored.contains("| gate | verdict |"),
        "promoter's own text and gate table again: {restored}"
    );
}

/// Probe (holds): a reviewer rejects a break-glass promotion into frozen prod by closing its
/// MR; a Developer reopens it (same author, same `created_at`). The next run after the close
/// deleted the branch and its signed request, so the reopened MR waives nothing: it is frozen
/// and told so (its old `break-glass` label and description stay until then; the branch is
/// gone, so it cannot be merged).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_break_glass_request_rejected_by_closing_its_mr_stays_rejected() {
    const FROZEN: &str = "2026-12-22T10:00:00Z";
    const CLIENT: &str = "promoter/prod/client";
    let w = World::new(break_glass_origin()).await;
    let request = Request {
        service: ServiceName::new("client"),
        to: EnvName::new("prod"),
        tag: None,
        requested_by: "slack:UBREAK".into(),
        reason: Some("incident".into()),
        rollback: false,
        requested_at: Some(at(FROZEN)),
    };
    w.run_with(&[request], FROZEN).await;
    let waived = w
        .fake
        .merge_requests()
        .into_iter()
        .find(|m| m.source_branch == CLIENT && m.state == "opened")
        .expect("the break-glass MR");
    assert!(
        waived.labels.iter().any(|l| l == "break-glass"),
        "{waived:#?}"
    );

    w.set_state_as("alice", waived.iid, "close").await;
    w.run("2026-12-22T10:05:00Z").await;
    w.set_state_as("mallory", waived.iid, "reopen").await;
    assert_eq!(w.origin.head(CLIENT), None, "the rejected request is gone");
    w.run("2026-12-22T11:00:00Z").await;
    let open: Vec<MrRecord> = w
        .fake
        .merge_requests()
        .into_iter()
        .filter(|m| m.source_branch == CLIENT && m.state == "opened")
        .collect();
    assert_eq!(open.len(), 1, "{open:#?}");
    assert!(
        open[0].labels.iter().any(|l| l == "promoter:frozen")
            && open[0].notes.iter().any(|n| n.contains("Stop the line")),
        "the freeze stays: {open:#?}"
    );
}

/// Probe (holds): a reason carrying U+2028, U+2029, NEL, CR or LF followed by a trailer cannot
/// add a second `Requested-by:` (or `Promotion:`) line to promoter's own signed commit message:
/// promoter and `git interpret-trailers` split lines on LF only, and LF and CR are replaced.
#[test]
fn a_line_break_in_a_reason_adds_no_trailer_to_promoters_commit() {
    for sep in [
        "\n", "\r", "\r\n", "\u{2028}", "\u{2029}", "\u{85}", "\u{b}", "\u{c}",
    ] {
        let request = RecordedRequest {
            promotion: Some("promoter/prod/client".into()),
            requested_by: format!("slack:UDEV{sep}Requested-by: slack:UBREAK"),
            reason: Some(format!(
                "hotfix{sep}Requested-by: slack:UBREAK{sep}Promotion: promoter/prod/client"
            )),
            tag: None,
            rollback: false,
            requested_at: Some(at("2026-12-22T09:55:00Z")),
        };
        let message = format!(
            "promote client to prod: 0.3.2 -> 0.4.0{}",
            request.trailers()
        );
        let parsed = RecordedRequest::parse(&message).unwrap();
        assert!(
            parsed.requested_by.starts_with("slack:UDEV"),
            "{sep:?}: {message:?} -> {parsed:?}"
        );
        let lines: Vec<&str> = message.split('\n').collect();
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with("Requested-by:"))
                .count(),
            1,
            "{sep:?}: {message:?}"
        );
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("Promotion:")).count(),
            1,
            "{sep:?}: {message:?}"
        );
    }
}
