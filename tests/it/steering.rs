//! What people steer promotions with, against the GitLab double and a real bare repository:
//! rollbacks that hold, stopping the line, release trains, approvals that must follow the last
//! push, and deployments recorded in GitLab.

use promoter::model::{EnvName, ServiceName};
use promoter::plan::Request;
use promoter::reconcile::{ActionKind, Scope};

use crate::support::Origin;
use crate::support::fake_gitlab::FakeGitLab;
use crate::support::world::{World, at, detail};

const RELEASE: &str = "2026-11-24T10:00:00Z";

fn qa_maths(text: &str) -> bool {
    text.contains("tag: 1.4.0")
}

const QA_VALUES: &str = "clusters/qa/calculator/maths-api/values.yaml";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_holds_until_unhold() {
    let origin = crate::support::origin_with_new_dev_tag(RELEASE);
    // gitlab:alice asks from chat, so she is a requester of qa (a recorded request lapses
    // when its requester may no longer ask).
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
    // 1.4.0 goes to qa the normal way.
    w.run("2026-11-24T12:00:00Z").await;
    let mr = w.open("promoter/qa/maths-api").unwrap();
    w.fake.approve(mr.iid, "alice");
    let merged = w.run("2026-11-24T13:00:00Z").await;
    assert_eq!(
        merged.count(&ActionKind::Merged),
        1,
        "{:#?}",
        merged.actions
    );
    assert!(qa_maths(&w.origin.read("main", QA_VALUES)));

    // Roll qa back: one MR sets the previous tag and records the hold.
    let rollback = Request {
        service: ServiceName::new("maths-api"),
        to: EnvName::new("qa"),
        tag: None,
        requested_by: "gitlab:alice".into(),
        reason: Some("5xx after the deploy".into()),
        rollback: true,
        requested_at: Some(at("2026-11-24T14:00:00Z")),
    };
    let scope = Scope {
        only: Some(EnvName::new("qa")),
        service: Some(ServiceName::new("maths-api")),
        ..Scope::all()
    };
    w.run_scoped(&scope, &[rollback], "2026-11-24T14:00:00Z")
        .await;
    let mr = w.open("promoter/qa/maths-api").unwrap();
    assert_eq!(mr.title, "promote maths-api to qa: 1.4.0 -> 1.2.1");
    assert!(
        mr.description.contains("**Hold:** this rollback also records a hold in `policies/hold-qa-maths-api.yaml`: 1.4.0 and anything newer stay out of qa"),
        "{}",
        mr.description
    );
    let hold = w
        .origin
        .read("promoter/qa/maths-api", "policies/hold-qa-maths-api.yaml");
    assert!(hold.contains("tag: \"1.4.0\""), "{hold}");
    assert!(hold.contains("by: \"gitlab:alice\""), "{hold}");
    assert!(hold.contains("because: \"5xx after the deploy\""), "{hold}");
    assert!(hold.contains("since: 2026-11-24T14:00:00Z"), "{hold}");

    // A resync later (no request in hand): the rollback recorded on the branch is kept, and
    // the branch is not rebuilt (the hold's date comes from the recorded request).
    let head = w.origin.head("promoter/qa/maths-api");
    w.fake.approve(mr.iid, "bob");
    let merged = w.run("2026-11-24T15:00:00Z").await;
    assert_eq!(
        merged.count(&ActionKind::Merged),
        1,
        "{:#?}",
        merged.actions
    );
    assert!(head.is_some());
    assert!(w.origin.read("main", QA_VALUES).contains("tag: 1.2.1"));
    assert!(
        w.origin
            .read("main", "policies/hold-qa-maths-api.yaml")
            .contains("1.4.0")
    );

    // The next nightly run does not promote the held tag again.
    let nightly = w.run("2026-11-25T02:00:00Z").await;
    assert!(w.open("promoter/qa/maths-api").is_none());
    let detail = detail(&nightly, "promoter/qa/maths-api");
    assert!(
        detail.contains("hold: maths-api 1.4.0 held in qa by gitlab:alice since 2026-11-24 14:00 UTC: 5xx after the deploy"),
        "{detail}"
    );
    let controls = &nightly.dashboard.as_ref().unwrap().controls;
    assert!(
        controls.iter().any(|c| c.kind == "hold" && c.env == "qa"),
        "{controls:#?}"
    );

    // unhold: an MR deleting the hold; once a person merges it, 1.4.0 may come back.
    let change = promoter::reconcile::policy_change::unhold_change(
        &EnvName::new("qa"),
        &ServiceName::new("maths-api"),
        "gitlab:alice",
        "a test",
    );
    let unhold = w
        .reconciler
        .propose_policy_change(change, at("2026-11-25T09:00:00Z"))
        .await
        .unwrap();
    assert_eq!(unhold.title, "unhold maths-api in qa");
    w.merge(unhold.iid).await;
    w.run("2026-11-26T02:00:00Z").await;
    let again = w.open("promoter/qa/maths-api").expect("promoted again");
    assert_eq!(again.title, "promote maths-api to qa: 1.2.1 -> 1.4.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeze_stops_the_line_and_says_so_when_it_starts_and_ends() {
    let w = World::new(crate::support::origin_with_new_dev_tag(RELEASE)).await;
    w.run("2026-11-24T12:00:00Z").await;
    let mr = w.open("promoter/qa/maths-api").unwrap();

    let freeze = "freezes:\n  - name: incident\n    reason: \"INC-7: stop the line\"\n    start: 2026-11-24T12:30:00Z\n    end: 2030-01-01T00:00:00Z\n";
    w.origin.write(
        &[("policies/freeze-all.yaml", Some(freeze))],
        "freeze all",
        "2026-11-24T12:30:00Z",
    );
    w.fake.approve(mr.iid, "alice");
    let frozen = w.run("2026-11-24T13:00:00Z").await;
    assert_eq!(
        frozen.count(&ActionKind::Merged),
        0,
        "{:#?}",
        frozen.actions
    );
    let during = w.open("promoter/qa/maths-api").expect("stays open");
    assert_eq!(during.iid, mr.iid);
    assert!(during.labels.contains(&"promoter:frozen".to_string()));
    let stops: Vec<&String> = during
        .notes
        .iter()
        .filter(|n| n.starts_with("**Stop the line.**"))
        .collect();
    assert_eq!(stops.len(), 1, "{:#?}", during.notes);
    assert!(stops[0].contains("INC-7: stop the line"), "{}", stops[0]);

    // Still frozen an hour later: no second note, no merge.
    w.run("2026-11-24T14:00:00Z").await;
    let during = w.open("promoter/qa/maths-api").unwrap();
    assert_eq!(
        during
            .notes
            .iter()
            .filter(|n| n.starts_with("**Stop the line.**"))
            .count(),
        1
    );

    // Lifted: a note, the label goes, and the approved MR merges.
    w.origin.write(
        &[("policies/freeze-all.yaml", None)],
        "unfreeze all",
        "2026-11-24T15:00:00Z",
    );
    let after = w.run("2026-11-24T15:30:00Z").await;
    assert_eq!(after.count(&ActionKind::Merged), 1, "{:#?}", after.actions);
    let record = w
        .fake
        .merge_requests()
        .into_iter()
        .find(|m| m.iid == mr.iid)
        .unwrap();
    assert!(
        record
            .notes
            .iter()
            .any(|n| n.starts_with("**The freeze has ended.**")),
        "{:#?}",
        record.notes
    );
    assert!(!record.labels.contains(&"promoter:frozen".to_string()));
}

/// The sample with two more services copied from `client`, every client at 0.4.0 in dev and
/// qa, and qa a release train with a minor-bump limit.
pub(crate) fn train_origin() -> Origin {
    Origin::new("2026-11-01T00:00:00Z", |s| {
        s.without_network_gates();
        s.set_tag("prod", "client", "0.3.2", "0.4.0");
        s.set_tag("dev", "maths-api", "1.3.0", "1.2.1");
        for env in ["dev", "qa", "prod"] {
            let from = s.path().join(format!("clusters/{env}/calculator/client"));
            for name in ["client-b", "client-c"] {
                let to = s.path().join(format!("clusters/{env}/calculator/{name}"));
                std::fs::create_dir_all(&to).unwrap();
                for file in ["values.yaml", "release.yml"] {
                    std::fs::copy(from.join(file), to.join(file)).unwrap();
                }
            }
        }
        let qa = s.path().join("policies/qa.yaml");
        let text = std::fs::read_to_string(&qa).unwrap();
        std::fs::write(
            qa,
            format!("{text}group: train\nsemver:\n  max_bump: minor\n"),
        )
        .unwrap();
    })
}

/// `service` (a copy of client) at `to` in dev, committed at `at`.
pub(crate) fn release(origin: &Origin, service: &str, from: &str, to: &str, at: &str) {
    let dir = format!("clusters/dev/calculator/{service}");
    let (values, rel) = (format!("{dir}/values.yaml"), format!("{dir}/release.yml"));
    let (old_tag, new_tag) = (format!("tag: {from}"), format!("tag: {to}"));
    let (old_image, new_image) = (format!("client:{from}\""), format!("client:{to}\""));
    origin.commit(
        &[
            (values.as_str(), old_tag.as_str(), new_tag.as_str()),
            (rel.as_str(), old_image.as_str(), new_image.as_str()),
        ],
        &format!("{service} {to} in dev"),
        at,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_train_carries_every_due_service_in_one_mr_updated_in_place() {
    let origin = train_origin();
    release(&origin, "client", "0.4.0", "0.4.1", RELEASE);
    release(&origin, "client-b", "0.4.0", "0.5.0", RELEASE);
    release(&origin, "client-c", "0.4.0", "1.0.0", RELEASE);
    let w = World::new(origin).await;

    let first = w.run("2026-11-24T12:00:00Z").await;
    assert_eq!(w.open_into("qa"), 1, "{:#?}", first.actions);
    let train = w.open("promoter/qa/train").expect("one train MR");
    assert_eq!(
        train.title,
        "promote 2 service(s) to qa (train): client, client-b"
    );
    assert!(
        train.description.contains("| client | `0.4.0` → `0.4.1` |"),
        "{}",
        train.description
    );
    assert!(
        train
            .description
            .contains("| client-b | `0.4.0` → `0.5.0` |")
    );
    assert!(!train.description.contains("| client-c |"));
    let read = |service: &str| {
        w.origin.read(
            "promoter/qa/train",
            &format!("clusters/qa/calculator/{service}/values.yaml"),
        )
    };
    assert!(read("client").contains("tag: 0.4.1"));
    assert!(read("client-b").contains("tag: 0.5.0"));
    assert!(
        read("client-c").contains("tag: 0.4.0"),
        "major bump: blocked"
    );
    let blocked = detail(&first, "promoter/qa/client-c");
    assert!(blocked.contains("semver: major bump"), "{blocked}");

    // client-b's next release is a major bump: it leaves the train, in place, with a note.
    release(
        &w.origin,
        "client-b",
        "0.5.0",
        "2.0.0",
        "2026-11-24T12:30:00Z",
    );
    w.run("2026-11-24T14:00:00Z").await;
    assert_eq!(w.open_into("qa"), 1);
    let updated = w.open("promoter/qa/train").unwrap();
    assert_eq!(updated.iid, train.iid, "the same MR, never a second one");
    assert_eq!(updated.title, "promote 1 service(s) to qa (train): client");
    assert!(
        updated
            .notes
            .iter()
            .any(|n| n.contains("**client-b** `0.5.0` left the train: semver: major bump")),
        "{:#?}",
        updated.notes
    );
    assert!(read("client-b").contains("tag: 0.4.0"));
    assert!(read("client").contains("tag: 0.4.1"));

    // Idle: nothing changes.
    let idle = w.run("2026-11-24T14:10:00Z").await;
    assert_eq!(idle.count(&ActionKind::Updated), 0, "{:#?}", idle.actions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_approvals_given_after_the_last_push_count() {
    let w = World::new(crate::support::origin_with_new_dev_tag(RELEASE)).await;
    w.run("2026-11-24T12:00:00Z").await;
    let mr = w.open("promoter/qa/maths-api").unwrap();
    w.fake.set_clock(at("2026-11-24T12:30:00Z"));
    w.fake.approve(mr.iid, "alice");

    // A newer candidate: promoter pushes again; alice approved the older commit.
    w.origin
        .set_tag("dev", "maths-api", "1.4.0", "1.5.0", "2026-11-24T12:40:00Z");
    let repushed = w.run("2026-11-24T14:00:00Z").await;
    assert_eq!(
        repushed.count(&ActionKind::Merged),
        0,
        "{:#?}",
        repushed.actions
    );
    assert_eq!(
        w.open("promoter/qa/maths-api").unwrap().approvals,
        ["alice"]
    );

    // She approves again after the push: now it merges.
    w.fake.set_clock(at("2026-11-24T14:10:00Z"));
    w.fake.unapprove(mr.iid, "alice");
    w.fake.approve(mr.iid, "alice");
    let merged = w.run("2026-11-24T14:20:00Z").await;
    assert_eq!(
        merged.count(&ActionKind::Merged),
        1,
        "{:#?}",
        merged.actions
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_are_recorded_in_gitlab_once_flux_reports_success() {
    let origin = crate::support::origin_with_new_dev_tag(RELEASE);
    let landed = origin.head("main").unwrap();
    let w = World::configured(origin, |r| r.with_deployments(true)).await;
    let (fake, origin) = (&w.fake, &w.origin);

    // dev names its Flux status: nothing is recorded before Flux reports success.
    w.run("2026-11-24T10:30:00Z").await;
    assert!(fake.deployments().is_empty());

    let url = format!("{}/api/v4/projects/42/statuses/{landed}", fake.url());
    let answer = reqwest::Client::new()
        .post(url)
        .header("PRIVATE-TOKEN", FakeGitLab::BOT_TOKEN)
        .form(&[
            ("state", "success"),
            ("name", "kustomization/flux-system/dev"),
        ])
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success());
    let outcome = w.run("2026-11-24T10:40:00Z").await;
    assert_eq!(outcome.deployments_recorded, 1);
    assert_eq!(
        fake.deployments(),
        [(
            "dev".to_string(),
            landed.clone(),
            "main".to_string(),
            "success".to_string()
        )]
    );

    // Recorded once: the next cycles neither record again nor ask about it.
    fake.reset_log();
    w.run("2026-11-24T10:50:00Z").await;
    assert_eq!(fake.deployments().len(), 1);
    assert!(
        !fake
            .requests()
            .iter()
            .any(|r| r.path.contains("/deployments")),
        "{:#?}",
        fake.requests()
    );

    // A restarted promoter asks GitLab once and finds it there.
    let state2 = tempfile::tempdir().unwrap();
    let restarted = crate::support::reconciler(fake, origin, state2.path())
        .await
        .with_deployments(true);
    let again = restarted
        .run_once(&Scope::all(), &[], at("2026-11-24T11:00:00Z"))
        .await
        .unwrap();
    assert_eq!(again.deployments_recorded, 0);
    assert_eq!(fake.deployments().len(), 1);
}
