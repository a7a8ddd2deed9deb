//! The gates that need the outside world, in a reconcile: the image must exist in the REAL
//! CNCF registry, and Flux must have reported the upstream environment healthy through a
//! commit status (posted to the GitLab double as Flux's notification-controller would).

use std::collections::HashMap;

use promoter::config::RegistryAccess;
use promoter::forge::gitlab::GitLab;
use promoter::reconcile::{ActionKind, Outcome, Reconciler, Scope};
use promoter::registry::OciRegistry;

use crate::support::Origin;
use crate::support::fake_gitlab::FakeGitLab;
use crate::support::registry::{Auth, REGISTRY_BIN, RegistryServer, tools};

const IMAGE: &str = "registry.gitlab.com/acme/calculator/maths-api";

async fn run(r: &Reconciler<GitLab>, now: &str) -> Outcome {
    let outcome = r
        .run_once(&Scope::all(), &[], now.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        outcome.count(&ActionKind::Failed),
        0,
        "{:#?}",
        outcome.actions
    );
    outcome
}

fn qa_detail(outcome: &Outcome) -> String {
    outcome
        .actions
        .iter()
        .find(|a| a.branch == "promoter/qa/maths-api")
        .map(|a| a.detail.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_or_an_unreported_upstream_blocks_the_promotion() {
    if !tools(&[REGISTRY_BIN, "skopeo"]) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs docker-registry and skopeo (scripts/install-test-deps)"
        );
        eprintln!(
            "skipped: docker-registry or skopeo missing (scripts/install-test-deps installs them)"
        );
        return;
    }
    let registry = RegistryServer::start(&Auth::Open);
    let local = format!("{}/acme/calculator/maths-api", registry.host);
    let origin = Origin::new("2026-11-01T00:00:00Z", |s| {
        s.set_tag("dev", "maths-api", "1.3.0", "1.2.1");
        s.set_tag("prod", "maths-api", "1.2.0", "1.2.1");
        s.set_tag("prod", "client", "0.3.2", "0.4.0");
        for env in ["dev", "qa", "prod"] {
            for file in ["values.yaml", "release.yml"] {
                s.replace(
                    &format!("clusters/{env}/calculator/maths-api/{file}"),
                    IMAGE,
                    &local,
                );
            }
        }
        s.replace(
            "policies/qa.yaml",
            "soak: 1h\n",
            "soak: 1h\nrequire_health: true\n",
        );
    });
    origin.set_tag("dev", "maths-api", "1.2.1", "1.4.0", "2026-11-24T10:00:00Z");
    let landed = origin.head("main").unwrap();

    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let state = tempfile::tempdir().unwrap();
    let access = HashMap::from([(
        registry.host.clone(),
        RegistryAccess {
            insecure: true,
            ..RegistryAccess::default()
        },
    )]);
    let reconciler = crate::support::reconciler(&fake, &origin, state.path())
        .await
        .with_registry(OciRegistry::new(access).unwrap());

    // 1. The image was never pushed: blocked, no MR.
    let outcome = run(&reconciler, "2026-11-24T12:00:00Z").await;
    assert!(
        qa_detail(&outcome).contains(&format!("image: {local}:1.4.0 is not in the registry")),
        "{:#?}",
        outcome.actions
    );
    assert!(fake.merge_requests().is_empty());

    // 2. Pushed, but Flux has not reported dev since the tag landed: still blocked.
    registry
        .push("acme/calculator/maths-api", "1.4.0", None)
        .await;
    let outcome = run(&reconciler, "2026-11-24T12:05:00Z").await;
    assert!(
        qa_detail(&outcome)
            .contains("health: Flux has not reported dev since the candidate landed"),
        "{:#?}",
        outcome.actions
    );
    assert!(fake.merge_requests().is_empty());

    // 3. Flux reports failure on the commit: blocked with Flux's words.
    let post = |state: &'static str, description: &'static str| {
        let url = format!("{}/api/v4/projects/42/statuses/{landed}", fake.url());
        async move {
            let answer = reqwest::Client::new()
                .post(url)
                .header("PRIVATE-TOKEN", FakeGitLab::BOT_TOKEN)
                .form(&[
                    ("state", state),
                    ("name", "kustomization/flux-system/dev"),
                    ("description", description),
                ])
                .send()
                .await
                .unwrap();
            assert!(
                answer.status().is_success(),
                "{}",
                answer.text().await.unwrap()
            );
        }
    };
    fake.set_clock("2026-11-24T10:30:00Z".parse().unwrap());
    post("failed", "health check failed").await;
    let outcome = run(&reconciler, "2026-11-24T12:10:00Z").await;
    assert!(
        qa_detail(&outcome).contains("health: Flux reports dev failed at"),
        "{:#?}",
        outcome.actions
    );
    assert!(
        qa_detail(&outcome).contains("health check failed"),
        "{:#?}",
        outcome.actions
    );

    // 4. Flux reports success (at 11:00): the MR opens and shows both verdicts. qa requires
    //    health, so its soak of 1h counts from that first success, not from the 10:00 merge.
    fake.set_clock("2026-11-24T11:00:00Z".parse().unwrap());
    post("success", "reconciliation succeeded").await;
    let outcome = run(&reconciler, "2026-11-24T12:15:00Z").await;
    assert_eq!(
        outcome.count(&ActionKind::Opened),
        1,
        "{:#?}",
        outcome.actions
    );
    let mr = &fake.merge_requests()[0];
    assert!(
        mr.description
            .contains("| health | ✅ Flux reports dev healthy at"),
        "{}",
        mr.description
    );
    assert!(
        mr.description
            .contains(&format!("| image | ✅ {local}:1.4.0 exists |")),
        "{}",
        mr.description
    );
    assert!(
        mr.description.contains(
            "| soak | ✅ ran 1h 15m in dev (needs 1h) \\[clock: Flux's first success in dev ("
        ),
        "{}",
        mr.description
    );
}
