//! Flux health knows which environment reported. dev, qa and prod all sync `main`, so one
//! commit carries every cluster's commit status; these tests post them to the GitLab double
//! named exactly as notification-controller names them from this repository's manifests, run
//! the real binary (`reconcile --once --env prod`, `check`), and see that only qa's own status
//! decides a promotion into prod, and starts its soak clock.

use crate::faults::{config, promoter as promoter_with, show};
use crate::support::fake_gitlab::FakeGitLab;
use crate::support::{Origin, SampleRepo, project_root, promoter, stderr};

/// The Provider's `spec.commitStatusExpr` in `clusters/<env>/flux-system/commit-status.yaml`.
const EXPR: &str = "(event.involvedObject.kind + '/' + event.involvedObject.name + '/' + event.metadata.env).lowerAscii()";

/// The name `env`'s notification-controller gives its Kustomization's statuses, read from this
/// repository's manifests: the Provider's `commitStatusExpr` (asserted to be [`EXPR`]) over
/// the Alert's event source and `eventMetadata.env` (the Alert's metadata is merged into the
/// event before the expression runs: `combineEventMetadata` in notification-controller's
/// internal/server/event_handlers.go).
fn flux_status_name(env: &str) -> String {
    use serde::Deserialize;
    let file = project_root().join(format!("clusters/{env}/flux-system/commit-status.yaml"));
    let text = std::fs::read_to_string(&file).unwrap();
    let (mut expr, mut source, mut metadata_env) = (None, None, None);
    for document in serde_yaml::Deserializer::from_str(&text) {
        let doc = serde_yaml::Value::deserialize(document).unwrap();
        match doc["kind"].as_str() {
            Some("Provider") => {
                assert_eq!(doc["spec"]["type"].as_str(), Some("gitlab"));
                expr = doc["spec"]["commitStatusExpr"].as_str().map(String::from);
            }
            Some("Alert") => {
                let sources = doc["spec"]["eventSources"].as_sequence().unwrap();
                assert_eq!(sources.len(), 1, "{}", file.display());
                source = Some(format!(
                    "{}/{}",
                    sources[0]["kind"].as_str().unwrap(),
                    sources[0]["name"].as_str().unwrap()
                ));
                metadata_env = doc["spec"]["eventMetadata"]["env"]
                    .as_str()
                    .map(String::from);
            }
            _ => {}
        }
    }
    assert_eq!(expr.as_deref(), Some(EXPR), "{}", file.display());
    let env_of_cluster = metadata_env.expect("the Alert names its environment");
    assert_eq!(env_of_cluster, env, "{}", file.display());
    format!("{}/{env_of_cluster}", source.unwrap()).to_ascii_lowercase()
}

/// The name a cluster still on Flux's default gets: `lower(kind/name/<first part of the
/// Provider's UID>)` (`generateDefaultCommitStatus`), the same prefix on every cluster.
const DEFAULT_NAMED: &str = "kustomization/flux-system/d3adbeef";

#[test]
fn the_sample_clusters_name_their_statuses_after_their_environment() {
    for env in ["dev", "qa", "prod"] {
        assert_eq!(
            flux_status_name(env),
            format!("kustomization/flux-system/{env}")
        );
        let listed =
            std::fs::read_to_string(project_root().join(format!("environments/{env}.yaml")))
                .unwrap();
        assert!(
            listed.contains(&format!("statuses: [{}]", flux_status_name(env))),
            "environments/{env}.yaml lists what its Flux posts"
        );
    }
}

/// Posts a commit status on `sha` as a Flux notification-controller would.
async fn post(fake: &FakeGitLab, sha: &str, name: &str, state: &str, at: &str) {
    post_as(fake, (FakeGitLab::BOT_TOKEN, None), sha, name, state, at).await;
}

/// Posts a commit status on `sha` with the API token `who.0`, for the ref `who.1` (GitLab's
/// default: a branch holding the commit).
async fn post_as(
    fake: &FakeGitLab,
    who: (&str, Option<&str>),
    sha: &str,
    name: &str,
    state: &str,
    at: &str,
) {
    fake.set_clock(at.parse().unwrap());
    let (token, git_ref) = who;
    let description = if state == "success" {
        "reconciliation succeeded"
    } else {
        "health check failed"
    };
    let answer = reqwest::Client::new()
        .post(format!("{}/api/v4/projects/42/statuses/{sha}", fake.url()))
        .header("PRIVATE-TOKEN", token)
        .form(
            &[
                ("state", state),
                ("name", name),
                ("description", description),
            ]
            .into_iter()
            .chain(git_ref.map(|r| ("ref", r)))
            .collect::<Vec<_>>(),
        )
        .send()
        .await
        .unwrap();
    assert!(
        answer.status().is_success(),
        "{}",
        answer.text().await.unwrap()
    );
}

/// `reconcile --once --env prod --at now`: exit 0; the line about prod's maths-api promotion.
async fn reconcile_prod(file: &std::path::Path, now: &str) -> String {
    let mut command = promoter_with(file, &["reconcile", "--once", "--env", "prod", "--at", now]);
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.contains("promoter/prod/maths-api"))
        .unwrap_or_else(|| panic!("no line for prod's maths-api: {}", show(&out)))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_upstream_clusters_own_status_passes_the_gate_and_starts_the_soak() {
    // prod requires health (and a 24h soak) but no registry; maths-api 1.3.0 lands in qa at
    // 10:00, so the promotion into prod waits on qa's Flux.
    let origin = Origin::new("2026-11-01T00:00:00Z", |s| {
        s.without_network_gates();
        s.replace(
            "policies/prod.yaml",
            "soak: 24h\n",
            "soak: 24h\nrequire_health: true\n",
        );
        s.set_tag("prod", "client", "0.3.2", "0.4.0");
    });
    origin.set_tag("qa", "maths-api", "1.2.1", "1.3.0", "2026-11-24T10:00:00Z");
    let landed = origin.head("main").unwrap();
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), &fake, &origin.url(), "");
    let (dev, qa, prod) = (
        flux_status_name("dev"),
        flux_status_name("qa"),
        flux_status_name("prod"),
    );

    // 1. The three clusters apply the commit; dev and prod report success, and so does a
    //    cluster on Flux's default name (which used to count as anybody's); qa says nothing.
    post(&fake, &landed, &dev, "success", "2026-11-24T10:05:00Z").await;
    post(&fake, &landed, &prod, "success", "2026-11-24T10:05:00Z").await;
    post(
        &fake,
        &landed,
        DEFAULT_NAMED,
        "success",
        "2026-11-24T10:06:00Z",
    )
    .await;
    let line = reconcile_prod(&file, "2026-11-24T10:30:00Z").await;
    assert!(
        line.contains("health: Flux has not reported qa since the candidate landed"),
        "{line}"
    );
    assert!(
        line.contains("soak: not soaking: Flux has not reported qa healthy with 1.3.0"),
        "{line}"
    );
    assert!(fake.merge_requests().is_empty());

    // 2. qa reports success at 11:00: health passes, and the 24h soak counts from 11:00, not
    //    from dev's 10:05 nor the 10:00 merge: at 10:30 the next day it has run 23h 30m.
    post(&fake, &landed, &qa, "success", "2026-11-24T11:00:00Z").await;
    let line = reconcile_prod(&file, "2026-11-25T10:30:00Z").await;
    assert!(
        line.contains("has run 23h 30m in qa, needs 1d")
            && line.contains("[clock: Flux's first success in qa"),
        "{line}"
    );
    assert!(!line.contains("health:"), "health passed: {line}");
    assert!(fake.merge_requests().is_empty());

    // 3. prod's own cluster now fails on the same commit: that is prod's health, not qa's, and
    //    does not block promotions into prod. Once soaked, the MR opens naming qa's status.
    post(&fake, &landed, &prod, "failed", "2026-11-25T10:45:00Z").await;
    let line = reconcile_prod(&file, "2026-11-25T11:30:00Z").await;
    assert!(line.starts_with("opened"), "{line}");
    let mrs = fake.merge_requests();
    assert_eq!(mrs.len(), 1);
    assert!(
        mrs[0]
            .description
            .contains(&format!("Flux reports qa healthy at {}", &landed[..8]))
            && mrs[0].description.contains(&format!("({qa})")),
        "{}",
        mrs[0].description
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_reporters_a_status_posted_by_anyone_else_does_not_count() {
    // qa accepts its status only from the GitLab user its Flux token belongs to.
    let origin = Origin::new("2026-11-01T00:00:00Z", |s| {
        s.without_network_gates();
        s.replace(
            "policies/prod.yaml",
            "soak: 24h\n",
            "soak: 24h\nrequire_health: true\n",
        );
        s.replace(
            "environments/qa.yaml",
            "statuses: [kustomization/flux-system/qa]",
            "statuses: [kustomization/flux-system/qa]\n  reporters: [flux-qa]",
        );
        s.set_tag("prod", "client", "0.3.2", "0.4.0");
    });
    origin.set_tag("qa", "maths-api", "1.2.1", "1.3.0", "2026-11-24T10:00:00Z");
    let landed = origin.head("main").unwrap();
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let (flux_qa, mallory) = (fake.add_user("flux-qa"), fake.add_user("mallory"));
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), &fake, &origin.url(), "");
    let qa = flux_status_name("qa");

    // 1. A developer's token posts qa's status name (for a branch of their own at the same
    //    commit, so that GitLab keeps it beside Flux's): it names qa but is not qa's Flux.
    let forged = (mallory.as_str(), Some("mallory/same-commit"));
    post_as(
        &fake,
        forged,
        &landed,
        &qa,
        "success",
        "2026-11-24T10:05:00Z",
    )
    .await;
    let line = reconcile_prod(&file, "2026-11-25T10:08:00Z").await;
    assert!(
        line.contains("health: Flux has not reported qa since the candidate landed"),
        "{line}"
    );

    // 2. qa's Flux reports at 10:10: health passes, and the soak counts from 10:10, not from
    //    the forged 10:05.
    let flux = (flux_qa.as_str(), None);
    post_as(&fake, flux, &landed, &qa, "success", "2026-11-24T10:10:00Z").await;
    let line = reconcile_prod(&file, "2026-11-25T10:08:00Z").await;
    assert!(line.contains("has run 23h 58m in qa, needs 1d"), "{line}");
    assert!(!line.contains("health:"), "health passed: {line}");
    let line = reconcile_prod(&file, "2026-11-25T10:15:00Z").await;
    assert!(line.starts_with("opened"), "{line}");
}

/// `promoter check` on the sample with `edit` applied to one file: exit 1, stderr lines.
fn check_with(file: &str, from: &str, to: &str) -> Vec<String> {
    let repo = SampleRepo::new("2026-11-01T00:00:00Z");
    repo.replace(file, from, to);
    let out = promoter(&["check", "--repo", repo.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    stderr(&out).lines().map(String::from).collect()
}

#[test]
fn check_refuses_a_status_two_environments_list() {
    let lines = check_with(
        "environments/qa.yaml",
        "statuses: [kustomization/flux-system/qa]",
        "statuses: [kustomization/flux-system/qa, kustomization/flux-system/dev]",
    );
    let expected = [
        "environments/dev.yaml:11:14: status `kustomization/flux-system/dev` is also listed in environments/qa.yaml",
        "environments/qa.yaml:13:44: status `kustomization/flux-system/dev` is also listed in environments/dev.yaml",
    ];
    for want in expected {
        assert!(
            lines.iter().any(|l| l.starts_with(want)),
            "want a line starting\n{want}\nin\n{lines:#?}"
        );
    }
    assert!(
        lines[0].contains("Until then `kustomization/flux-system/dev` counts for neither"),
        "{lines:#?}"
    );
}

#[test]
fn check_refuses_the_old_prefix_form_and_says_what_to_write() {
    let lines = check_with(
        "environments/prod.yaml",
        "statuses: [kustomization/flux-system/prod]",
        "kustomizations: [flux-system]",
    );
    assert!(
        lines.iter().any(|l| l
            .starts_with("environments/prod.yaml:13:19: health.kustomizations is no longer read")
            && l.contains("`statuses: [kustomization/flux-system/prod]`")
            && l.contains("clusters/prod/flux-system/commit-status.yaml")),
        "{lines:#?}"
    );
}
