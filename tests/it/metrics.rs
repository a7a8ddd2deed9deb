//! `/metrics` of the real daemon from the start: before any reconcile completes (GitLab holds
//! the first request for merge requests), every family is listed with its known label values
//! at zero; once the reconcile completes, a webhook nobody listens on is counted as failed.

use std::process::Stdio;

use axum::http::Method;

use crate::daemon::{Daemon, config, free_port, origin, promoter, wait_for};
use crate::support::fake_gitlab::{Effect, FakeGitLab, Hang};

/// Every family the daemon exports, as its `# TYPE` line names it, but two whose label values
/// exist only once something happened: `promoter_tag_age_seconds` (a tag's age is known once a
/// reconcile has read the history; a zero would say every tag just landed) and
/// `promoter_gitlab_requests_total{endpoint,status}` (an endpoint and status exist once GitLab
/// answered).
const FAMILIES: [&str; 13] = [
    "promoter_reconciles",
    "promoter_reconcile_duration_seconds",
    "promoter_reconcile_failures",
    "promoter_promotions",
    "promoter_gate_verdicts",
    "promoter_rate_limit_waits",
    "promoter_rate_limit_wait_seconds",
    "promoter_last_successful_reconcile_timestamp_seconds",
    "promoter_lead_time_seconds",
    "promoter_deployments_per_week",
    "promoter_gitlab_budget_wait_seconds",
    "promoter_gitlab_deployments_recorded",
    "promoter_announcements",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_list_every_family_and_zero_series_before_the_first_reconcile_completes() {
    let origin = origin();
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    // The first reconcile stops at its first request for merge requests until released.
    fake.hang(Hang::at(Method::GET, "/merge_requests", Effect::OnRelease));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = config(dir.path(), &fake, &origin, port);
    // A held request must not time out and be retried while the test looks.
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("timeout: 5s", "timeout: 120s");
    let down = free_port();
    std::fs::write(
        &file,
        format!(
            "{text}notify:\n  webhooks:\n    - name: team-chat\n      kind: mattermost\n      url: http://127.0.0.1:{down}/hooks/SECRETHOOK\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
    let _daemon = Daemon(
        promoter(&file, &["daemon"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let scrape = async || {
        http.get(format!("{base}/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()
    };
    fake.wait_until_hung(1).await;
    let text = scrape().await.expect("/metrics answers");
    assert!(
        text.lines()
            .any(|l| l == "promoter_reconciles_total{outcome=\"success\"} 0"),
        "no reconcile has completed yet:\n{text}"
    );
    for family in FAMILIES {
        assert!(
            text.lines()
                .any(|l| l.starts_with("# TYPE ") && l[7..].split(' ').next() == Some(family)),
            "{family} is not listed:\n{text}"
        );
    }
    let mut zeros: Vec<String> = Vec::new();
    for env in ["dev", "qa", "prod"] {
        for action in ["opened", "updated", "merged", "closed"] {
            zeros.push(format!(
                "promoter_promotions_total{{env=\"{env}\",action=\"{action}\"}} 0"
            ));
        }
    }
    for stage in ["git", "gitlab", "templates", "policy"] {
        zeros.push(format!(
            "promoter_reconcile_failures_total{{stage=\"{stage}\"}} 0"
        ));
    }
    for (from, to) in [("dev", "qa"), ("qa", "prod"), ("dev", "prod")] {
        for window in ["30d", "90d"] {
            zeros.push(format!(
                "promoter_lead_time_seconds{{from=\"{from}\",to=\"{to}\",window=\"{window}\"}} 0"
            ));
        }
    }
    for verdict in ["pass", "fail"] {
        zeros.push(format!(
            "promoter_gate_verdicts_total{{gate=\"image\",verdict=\"{verdict}\"}} 0"
        ));
    }
    for result in ["sent", "failed"] {
        zeros.push(format!(
            "promoter_announcements_total{{sink=\"team-chat\",result=\"{result}\"}} 0"
        ));
    }
    for line in &zeros {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
    assert!(!text.contains("SECRETHOOK"));

    // The reconcile completes and opens the qa promotion; its announcement cannot be posted
    // (nothing listens), which is counted, and the daemon goes on.
    fake.release_hangs();
    wait_for("the qa MR", async || {
        fake.merge_requests().iter().any(|m| m.state == "opened")
    })
    .await;
    wait_for("the failed announcement counted", async || {
        scrape().await.is_some_and(|t| {
            t.lines().any(|l| {
                l.starts_with("promoter_announcements_total{sink=\"team-chat\",result=\"failed\"} ")
                    && !l.ends_with(" 0")
            }) && t
                .lines()
                .any(|l| l == "promoter_promotions_total{env=\"qa\",action=\"opened\"} 1")
        })
    })
    .await;
    let log = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap();
    assert!(log.contains("cannot post an announcement"), "{log}");
    assert!(!log.contains("SECRETHOOK"), "{log}");
}
