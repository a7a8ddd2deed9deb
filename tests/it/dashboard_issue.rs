//! The "Promotion dashboard" issue kept in step with reconciles against the GitLab double:
//! opened once, left alone when only the time moved, rewritten after a promotion; and the
//! double's issue endpoints as GitLab's REST reference documents them.

use promoter::dashboard::DashboardData;
use promoter::forge::Forge;
use promoter::reconcile::dashboard_issue::{ISSUE_LABEL, ISSUE_TITLE, IssueChange};
use serde_json::Value;

use crate::support::Origin;
use crate::support::fake_gitlab::FakeGitLab;
use crate::support::world::{World, at};

const RELEASE: &str = "2026-11-24T10:00:00Z";

fn origin_with_new_dev_tag() -> Origin {
    crate::support::origin_with_new_dev_tag(RELEASE)
}

/// One reconcile at `now`; its dashboard.
async fn dashboard(w: &World, now: &str) -> DashboardData {
    let outcome = w.run(now).await;
    (*outcome.dashboard.expect("every run builds its dashboard")).clone()
}

/// The description of the only issue.
fn issue_description(w: &World) -> String {
    let issues = w.fake.issues();
    assert_eq!(issues.len(), 1, "{issues:#?}");
    issues[0].description.clone().unwrap_or_default()
}

/// The table row of `service`.
fn row<'a>(description: &'a str, service: &str) -> &'a str {
    let start = format!("| **{service}** |");
    description
        .lines()
        .find(|l| l.starts_with(&start))
        .unwrap_or_else(|| panic!("no row for {service} in\n{description}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_issue_is_opened_left_alone_when_idle_and_updated_after_a_promotion() {
    let w = World::new(origin_with_new_dev_tag()).await;
    let data = dashboard(&w, "2026-11-24T12:00:00Z").await;

    // 1. No issue yet: one is opened.
    w.fake.reset_log();
    let first = w.reconciler.ensure_dashboard_issue(&data).await.unwrap();
    assert_eq!(first.change, IssueChange::Created);
    let issue = w.fake.issues().remove(0);
    assert_eq!(
        (issue.iid, issue.title.as_str(), issue.state.as_str()),
        (1, ISSUE_TITLE, "opened")
    );
    assert_eq!(issue.labels, [ISSUE_LABEL]);
    assert_eq!(issue.author, FakeGitLab::BOT_USERNAME);
    assert_eq!(
        first.url,
        format!("{}/acme/calculator/-/issues/1", w.fake.url())
    );
    let description = issue_description(&w);
    assert_eq!(
        row(&description, "maths-api"),
        "| **maths-api** | `1.4.0` (<1d)<br>📥 from CI | `1.2.1` (23d)<br>🟦 promotable → `1.4.0` \
         | `1.2.1` (23d)<br>✅ up to date |"
    );
    assert_eq!(
        row(&description, "client"),
        "| **client** | `0.4.0` (23d)<br>📥 from CI | `0.4.0` (23d)<br>✅ up to date \
         | `0.4.0` (23d)<br>✅ up to date |"
    );
    assert!(
        description.contains("| Service | dev | qa | prod |\n| --- | --- | --- | --- |\n"),
        "{description}"
    );
    assert!(description.ends_with("_Updated 2026-11-24 12:00 UTC_\n"));
    assert_eq!(w.fake.write_count(), 1, "{:#?}", w.fake.requests());

    // 2. The same dashboard a few minutes later: no write call.
    let mut later = data.clone();
    later.generated_at = at("2026-11-24T12:05:00Z");
    w.fake.reset_log();
    let second = w.reconciler.ensure_dashboard_issue(&later).await.unwrap();
    assert_eq!(second.change, IssueChange::Unchanged);
    assert_eq!(second.url, first.url);
    assert_eq!(w.fake.write_count(), 0, "{:#?}", w.fake.requests());
    let requests = w.fake.requests();
    assert_eq!(requests.len(), 1, "one list call: {requests:#?}");
    assert_eq!(
        requests[0].path,
        "/api/v4/projects/acme%2Fcalculator/issues"
    );
    for param in [
        "labels=promoter-dashboard",
        "state=opened",
        "order_by=created_at",
        "sort=asc",
    ] {
        assert!(
            requests[0].query.contains(param),
            "{param} in {}",
            requests[0].query
        );
    }
    assert_eq!(issue_description(&w), description, "nothing rewritten");

    // 3. qa's MR is approved and merged: maths-api runs 1.4.0 in qa, prod waits for its soak.
    let mr = w.fake.merge_requests().remove(0);
    w.fake.approve(mr.iid, "alice");
    w.fake.set_clock(at("2026-11-24T13:00:00Z"));
    dashboard(&w, "2026-11-24T13:00:00Z").await;
    assert_eq!(w.fake.merge_requests()[0].state, "merged");
    // A run plans on the head it fetched: the next one shows the merge.
    let promoted = dashboard(&w, "2026-11-24T13:05:00Z").await;
    w.fake.reset_log();
    let third = w
        .reconciler
        .ensure_dashboard_issue(&promoted)
        .await
        .unwrap();
    assert_eq!(third.change, IssueChange::Updated);
    assert_eq!((third.iid, &third.url), (first.iid, &first.url));
    assert_eq!(w.fake.write_count(), 1, "one PUT: {:#?}", w.fake.requests());
    let updated = issue_description(&w);
    let maths = row(&updated, "maths-api");
    assert!(
        maths.contains("| `1.4.0` (<1d)<br>✅ up to date |")
            && maths.ends_with("| `1.2.1` (23d)<br>⛔ blocked → `1.4.0` |"),
        "{maths}"
    );
    assert_eq!(row(&updated, "client"), row(&description, "client"));
    assert!(
        updated.contains("### ⛔ Blocked (1)\n\n- **maths-api** → **prod** (`1.4.0`)\n  - soak: "),
        "{updated}"
    );
    assert!(
        updated.ends_with("_Updated 2026-11-24 13:05 UTC_\n"),
        "{updated}"
    );
}

/// Plain HTTP against the double, paths relative to `/api/v4/projects/42/`.
struct Api {
    http: reqwest::Client,
    base: String,
}

/// Status, headers and JSON body of an answer.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    json: Value,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    fn iids(&self) -> Vec<u64> {
        let items = self.json.as_array().expect("a list");
        items.iter().map(|i| i["iid"].as_u64().unwrap()).collect()
    }
}

impl Api {
    fn new(fake: &FakeGitLab) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("{}/api/v4/projects/42/", fake.url()),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> Answer {
        let rsp = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("PRIVATE-TOKEN", FakeGitLab::BOT_TOKEN)
            .form(form)
            .send()
            .await
            .unwrap();
        let status = rsp.status().as_u16();
        let headers = rsp.headers().clone();
        let text = rsp.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        Answer {
            status,
            headers,
            json,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, &[]).await
    }

    async fn post(&self, form: &[(&str, &str)]) -> Answer {
        self.send(reqwest::Method::POST, "issues", form).await
    }

    async fn put(&self, iid: u64, form: &[(&str, &str)]) -> Answer {
        self.send(reqwest::Method::PUT, &format!("issues/{iid}"), form)
            .await
    }
}

#[tokio::test]
async fn the_double_serves_issues_as_gitlab_documents_them() {
    let dir = tempfile::tempdir().unwrap();
    git2::Repository::init_bare(dir.path()).unwrap();
    let fake = FakeGitLab::start(dir.path(), "acme/calculator").await;
    let api = Api::new(&fake);

    let missing = api.post(&[("description", "no title")]).await;
    assert_eq!(
        (missing.status, &missing.json),
        (400, &serde_json::json!({ "error": "title is missing" }))
    );
    let blank = api.post(&[("title", "  ")]).await;
    assert_eq!(
        (blank.status, &blank.json["message"]["title"][0]),
        (400, &serde_json::json!("can't be blank"))
    );

    // (title, labels, created at)
    let made = [
        (
            "Promotion dashboard",
            "promoter-dashboard,ops",
            "2026-11-24T10:00:00Z",
        ),
        (
            "Promotion dashboard (copy)",
            "promoter-dashboard",
            "2026-11-24T11:00:00Z",
        ),
        ("Unrelated", "", "2026-11-24T12:00:00Z"),
    ];
    for (n, (title, labels, when)) in made.into_iter().enumerate() {
        fake.set_clock(at(when));
        let mut form = vec![("title", title)];
        if !labels.is_empty() {
            form.extend([("labels", labels), ("description", "hello | world")]);
        }
        let created = api.post(&form).await;
        assert_eq!(created.status, 201, "{}", created.json);
        assert_eq!(created.json["iid"], n as u64 + 1, "iids count per project");
        assert_eq!(created.json["created_at"], format!("{}.000Z", &when[..19]));
    }
    let first = api.get("issues/1").await;
    assert_eq!(first.status, 200);
    let issue = &first.json;
    assert_eq!(issue["project_id"], 42);
    assert_eq!(issue["title"], "Promotion dashboard");
    assert_eq!(issue["description"], "hello | world");
    assert_eq!(issue["state"], "opened");
    assert_eq!(
        issue["labels"],
        serde_json::json!(["ops", "promoter-dashboard"])
    );
    assert_eq!(issue["author"]["username"], FakeGitLab::BOT_USERNAME);
    assert_eq!(issue["references"]["full"], "acme/calculator#1");
    assert_eq!(
        issue["web_url"],
        format!("{}/acme/calculator/-/issues/1", fake.url())
    );
    assert_eq!(api.get("issues/3").await.json["description"], Value::Null);
    assert_eq!(api.get("issues/9").await.status, 404);
    assert!(
        fake.merge_requests().is_empty(),
        "issues are not merge requests"
    );

    // Newest first by default; the dashboard's query pages oldest first.
    assert_eq!(api.get("issues").await.iids(), [3, 2, 1]);
    let page = api
        .get(
            "issues?labels=promoter-dashboard&state=opened&order_by=created_at&sort=asc&per_page=1",
        )
        .await;
    assert_eq!(page.iids(), [1]);
    for (name, value) in [
        ("x-total", "2"),
        ("x-total-pages", "2"),
        ("x-per-page", "1"),
        ("x-page", "1"),
        ("x-next-page", "2"),
        ("x-prev-page", ""),
        ("x-page-type", "offset"),
    ] {
        assert_eq!(page.header(name), value, "{name}");
    }
    assert!(
        page.header("link")
            .contains("&page=2&per_page=1&sort=asc&state=opened>; rel=\"next\""),
        "{}",
        page.header("link")
    );
    assert_eq!(api.get("issues?labels=None").await.iids(), [3]);
    assert_eq!(api.get("issues?iids[]=1&iids[]=3").await.iids(), [3, 1]);
    for bad in ["state=open", "order_by=iid", "sort=up"] {
        assert_eq!(api.get(&format!("issues?{bad}")).await.status, 400, "{bad}");
    }

    // Edits: nothing to change, a bad event, close, reopen, description and labels.
    assert_eq!(api.put(1, &[]).await.status, 400);
    assert_eq!(api.put(1, &[("state_event", "merge")]).await.status, 400);
    fake.set_clock(at("2026-11-24T13:00:00Z"));
    let closed = api.put(1, &[("state_event", "close")]).await;
    assert_eq!(
        (
            closed.status,
            &closed.json["state"],
            &closed.json["closed_at"]
        ),
        (
            200,
            &serde_json::json!("closed"),
            &serde_json::json!("2026-11-24T13:00:00.000Z")
        )
    );
    let open = api
        .get("issues?labels=promoter-dashboard&state=opened&order_by=created_at&sort=asc")
        .await;
    assert_eq!(open.iids(), [2]);
    let reopened = api.put(1, &[("state_event", "reopen")]).await;
    assert_eq!(reopened.json["closed_at"], Value::Null);
    let edited = api
        .put(2, &[("description", "new"), ("labels", "b,a,b")])
        .await;
    assert_eq!(edited.json["updated_at"], "2026-11-24T13:00:00.000Z");
    let records = fake.issues();
    assert_eq!(records.len(), 3);
    assert_eq!(
        (records[1].description.as_deref(), &records[1].labels),
        (Some("new"), &vec!["a".to_string(), "b".to_string()])
    );
    assert_eq!(records[0].state, "opened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oldest_open_dashboard_issue_is_kept_and_a_closed_one_is_replaced() {
    let w = World::new(origin_with_new_dev_tag()).await;
    let data = dashboard(&w, "2026-11-24T12:00:00Z").await;
    let api = Api::new(&w.fake);
    // Two labelled issues made by hand: the older one (#1) is the dashboard.
    for (title, when) in [
        ("mine", "2026-11-24T10:00:00Z"),
        ("copy", "2026-11-24T11:00:00Z"),
    ] {
        w.fake.set_clock(at(when));
        let made = api
            .post(&[
                ("title", title),
                ("labels", ISSUE_LABEL),
                ("description", "old"),
            ])
            .await;
        assert_eq!(made.status, 201);
    }
    let found = w.reconciler.forge().issue_with_label(ISSUE_LABEL).await;
    let found = found.unwrap().expect("an open issue");
    assert_eq!((found.iid, found.title.as_str()), (1, "mine"));
    assert_eq!(found.description.as_deref(), Some("old"));

    let kept = w.reconciler.ensure_dashboard_issue(&data).await.unwrap();
    assert_eq!((kept.change, kept.iid), (IssueChange::Updated, 1));
    let issues = w.fake.issues();
    assert_eq!(issues[0].title, "mine", "only the description is written");
    assert!(
        issues[0]
            .description
            .as_deref()
            .unwrap()
            .contains("| **maths-api** |")
    );
    assert_eq!(
        issues[1].description.as_deref(),
        Some("old"),
        "the copy is left alone"
    );

    // Closing both asks for a new one.
    for iid in [1, 2] {
        assert_eq!(api.put(iid, &[("state_event", "close")]).await.status, 200);
    }
    assert!(
        w.reconciler
            .forge()
            .issue_with_label(ISSUE_LABEL)
            .await
            .unwrap()
            .is_none()
    );
    let new = w.reconciler.ensure_dashboard_issue(&data).await.unwrap();
    assert_eq!((new.change, new.iid), (IssueChange::Created, 3));
}
