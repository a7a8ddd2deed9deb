//! The GitLab double, driven over plain HTTP (and once through the `gitlab` crate), checked
//! against what GitLab's REST reference documents.

use std::path::Path;
use std::time::{Duration, Instant};

use git2::Repository;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::support::fake_gitlab::{FakeGitLab, Fault, FaultKind, commit_files};

const PROJECT: &str = "acme/calculator";
const ENCODED: &str = "acme%2Fcalculator";

/// A bare repository: `main` (README.md, app/values.yaml at tag 1.0.0) and `feature`, one
/// commit on top setting the tag to 1.1.0.
struct Repo {
    dir: tempfile::TempDir,
    main: String,
    feature: String,
}

impl Repo {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        repo.set_head("refs/heads/main").unwrap();
        let main = commit_files(
            dir.path(),
            "main",
            None,
            &[
                ("README.md", "calculator\n"),
                ("app/values.yaml", "image:\n  tag: 1.0.0\n"),
            ],
            "initial",
        );
        let feature = commit_files(
            dir.path(),
            "feature",
            Some("main"),
            &[("app/values.yaml", "image:\n  tag: 1.1.0\n")],
            "promote 1.1.0",
        );
        Self { dir, main, feature }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn git(&self) -> Repository {
        Repository::open_bare(self.path()).unwrap()
    }

    /// The head of `branch`, if it exists.
    fn head(&self, branch: &str) -> Option<String> {
        self.git()
            .refname_to_id(&format!("refs/heads/{branch}"))
            .ok()
            .map(|o| o.to_string())
    }

    /// `count` branches `f-0`.. at the feature commit.
    fn branches(&self, count: usize) {
        let git = self.git();
        let commit = git
            .find_commit(git2::Oid::from_str(&self.feature).unwrap())
            .unwrap();
        for i in 0..count {
            git.branch(&format!("f-{i}"), &commit, false).unwrap();
        }
    }
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or_else(|| panic!("no {name} header"), |v| v.to_str().unwrap())
    }
}

/// Plain reqwest against the double, paths relative to `/api/v4/`, form-encoded bodies.
struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    fn new(fake: &FakeGitLab) -> Self {
        Self::with_token(fake, Some(FakeGitLab::BOT_TOKEN))
    }

    fn with_token(fake: &FakeGitLab, token: Option<&str>) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("{}/api/v4/", fake.url()),
            token: token.map(str::to_owned),
        }
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut req = self.http.request(method, url);
        if let Some(token) = &self.token {
            req = req.header("PRIVATE-TOKEN", token);
        }
        if !form.is_empty() {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish();
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
        }
        req
    }

    async fn send(&self, method: Method, path: &str, form: &[(&str, &str)]) -> Answer {
        let rsp = self.request(method, path, form).send().await.unwrap();
        let status = rsp.status().as_u16();
        let headers = rsp.headers().clone();
        Answer {
            status,
            headers,
            text: rsp.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, &[]).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        self.send(Method::POST, path, form).await
    }

    async fn put(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        self.send(Method::PUT, path, form).await
    }

    /// Asks to open `feature` -> `main`; the status.
    async fn open_status(&self) -> u16 {
        let form = [
            ("source_branch", "feature"),
            ("target_branch", "main"),
            ("title", "t"),
        ];
        self.post("projects/42/merge_requests", &form).await.status
    }

    /// Opens an MR and returns its JSON (asserting 201).
    async fn open(&self, source: &str, title: &str, labels: &str) -> Value {
        let form = [
            ("source_branch", source),
            ("target_branch", "main"),
            ("title", title),
            ("description", "promotion"),
            ("labels", labels),
        ];
        let answer = self
            .post(&format!("projects/{ENCODED}/merge_requests"), &form)
            .await;
        assert_eq!(answer.status, 201, "{}", answer.text);
        answer.json()
    }
}

async fn start() -> (Repo, FakeGitLab, Api) {
    let repo = Repo::new();
    let fake = FakeGitLab::start(repo.path(), PROJECT).await;
    let api = Api::new(&fake);
    (repo, fake, api)
}

fn iids(list: &Value) -> Vec<u64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|mr| mr["iid"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn user_and_project_answer_for_known_tokens_only() {
    let (_repo, fake, api) = start().await;
    let user = api.get("user").await;
    assert_eq!(user.status, 200);
    assert_eq!(user.json()["username"], "promoter-bot");
    assert_eq!(user.json()["state"], "active");

    for id in [ENCODED, "42"] {
        let project = api.get(&format!("projects/{id}")).await.json();
        assert_eq!(project["id"], fake.project_id());
        assert_eq!(project["path_with_namespace"], PROJECT);
        assert_eq!(project["default_branch"], "main");
        assert_eq!(project["web_url"], format!("{}/{PROJECT}", fake.url()));
    }
    let unknown = api.get("projects/acme%2Fother").await;
    assert_eq!(
        (unknown.status, unknown.json()),
        (404, serde_json::json!({"message": "404 Project Not Found"}))
    );

    let alice = Api::with_token(&fake, Some(&fake.add_user("alice")));
    assert_eq!(alice.get("user").await.json()["username"], "alice");
    for api in [
        Api::with_token(&fake, None),
        Api::with_token(&fake, Some("glpat-wrong")),
    ] {
        for path in ["user", "projects/42", "projects/42/merge_requests"] {
            let answer = api.get(path).await;
            assert_eq!(answer.status, 401, "{path}");
            assert_eq!(
                answer.json(),
                serde_json::json!({"message": "401 Unauthorized"})
            );
        }
    }
    let log = fake.requests();
    assert_eq!(log.len(), 11);
    assert_eq!(log[1].path, "/api/v4/projects/acme%2Fcalculator");
    assert_eq!(log.last().unwrap().status, 401);
}

#[tokio::test]
async fn pages_of_twenty_carry_gitlab_headers_and_links() {
    let (repo, fake, api) = start().await;
    repo.branches(45);
    for i in 0..45 {
        api.open(&format!("f-{i}"), &format!("promote {i}"), "promotion")
            .await;
    }
    let first = api
        .get(&format!(
            "projects/{ENCODED}/merge_requests?state=opened&per_page=20"
        ))
        .await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("x-total"), "45");
    assert_eq!(first.header("x-total-pages"), "3");
    assert_eq!(first.header("x-per-page"), "20");
    assert_eq!(first.header("x-page"), "1");
    assert_eq!(first.header("x-next-page"), "2");
    assert_eq!(first.header("x-prev-page"), "");
    assert_eq!(
        iids(&first.json()),
        (26..=45).rev().collect::<Vec<_>>(),
        "newest first"
    );

    let link = |page: u32| {
        format!(
            "<{}/api/v4/projects/{ENCODED}/merge_requests?id={ENCODED}&page={page}&per_page=20&state=opened>",
            fake.url()
        )
    };
    assert_eq!(
        first.header("link"),
        format!(
            "{}; rel=\"next\", {}; rel=\"first\", {}; rel=\"last\"",
            link(2),
            link(1),
            link(3)
        )
    );

    // Follow rel="next" as the gitlab crate's keyset path and most clients do.
    let mut seen = iids(&first.json());
    let mut answer = first;
    let mut pages = 1;
    while let Some(next) = answer
        .header("link")
        .split(", ")
        .find(|l| l.ends_with("rel=\"next\""))
        .map(|l| l[1..l.find('>').unwrap()].to_owned())
    {
        answer = api.get(&next).await;
        pages += 1;
        seen.extend(iids(&answer.json()));
        if pages == 2 {
            assert_eq!(
                answer.header("link"),
                format!(
                    "{}; rel=\"prev\", {}; rel=\"next\", {}; rel=\"first\", {}; rel=\"last\"",
                    link(1),
                    link(3),
                    link(1),
                    link(3)
                )
            );
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (1..=45).rev().collect::<Vec<_>>());
    assert_eq!(answer.header("x-page"), "3");
    assert_eq!(answer.header("x-next-page"), "");
    assert_eq!(answer.header("x-prev-page"), "2");
    assert_eq!(answer.json().as_array().unwrap().len(), 5);

    let capped = api.get("projects/42/merge_requests?per_page=500").await;
    assert_eq!(
        (capped.header("x-per-page"), capped.header("x-total-pages")),
        ("100", "1")
    );
    let defaults = api.get("projects/42/merge_requests").await;
    assert_eq!(
        (defaults.header("x-per-page"), defaults.header("x-page")),
        ("20", "1")
    );
}

#[tokio::test]
async fn the_gitlab_crate_builds_a_client_and_pages_through_the_double() {
    use gitlab::api::projects::merge_requests::{
        CreateMergeRequest, MergeRequestState, MergeRequests,
    };
    use gitlab::api::{self, ApiError, AsyncQuery, Pagination};

    let (repo, fake, api) = start().await;
    repo.branches(45);
    for i in 0..45 {
        api.open(
            &format!("f-{i}"),
            &format!("promote {i}"),
            if i % 2 == 0 { "promotion" } else { "other" },
        )
        .await;
    }
    let client = gitlab::GitlabBuilder::new(fake.host(), FakeGitLab::BOT_TOKEN)
        .insecure()
        .build_async()
        .await
        .unwrap();
    let ep = MergeRequests::builder()
        .project(PROJECT)
        .state(MergeRequestState::Opened)
        .label("promotion")
        .build()
        .unwrap();
    let mrs: Vec<Value> = api::paged(ep, Pagination::AllPerPageLimit(10))
        .query_async(&client)
        .await
        .unwrap();
    assert_eq!(mrs.len(), 23);
    assert!(
        mrs.iter()
            .all(|mr| mr["labels"] == serde_json::json!(["promotion"]))
    );

    let create = CreateMergeRequest::builder()
        .project(PROJECT)
        .source_branch("f-0")
        .target_branch("main")
        .title("again")
        .build()
        .unwrap();
    let created: Result<Value, _> = create.query_async(&client).await;
    match created {
        Err(ApiError::GitlabObjectWithStatus { status, obj }) => {
            assert_eq!(status, 409);
            assert_eq!(
                obj,
                serde_json::json!([
                    "Another open merge request already exists for this source branch: !1"
                ])
            );
        }
        other => panic!("expected a 409, got {other:?}"),
    }
    let gets = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/merge_requests") && r.method == Method::GET)
        .count();
    assert_eq!(gets, 3, "23 MRs at 10 a page");
}

#[tokio::test]
async fn filters_select_by_state_labels_and_branches() {
    let (repo, _fake, api) = start().await;
    repo.branches(4);
    api.open("f-0", "one", "promotion,env::qa").await;
    api.open("f-1", "two", "promotion").await;
    api.open("f-2", "three", "other").await;
    api.open("f-3", "four", "").await;
    let closed = api
        .put(
            &format!("projects/{ENCODED}/merge_requests/2"),
            &[("state_event", "close")],
        )
        .await;
    assert_eq!(closed.json()["state"], "closed");
    assert!(closed.json()["closed_at"].is_string());

    let list = |query: &'static str| {
        let api = &api;
        async move {
            iids(
                &api.get(&format!("projects/42/merge_requests?{query}"))
                    .await
                    .json(),
            )
        }
    };
    assert_eq!(list("labels=promotion").await, [2, 1]);
    assert_eq!(list("labels=promotion,env::qa").await, [1]);
    assert_eq!(list("labels=None").await, [4]);
    assert_eq!(list("labels=Any").await, [3, 2, 1]);
    assert_eq!(list("state=opened&labels=promotion").await, [1]);
    assert_eq!(list("state=closed").await, [2]);
    assert_eq!(list("state=merged").await, Vec::<u64>::new());
    assert_eq!(list("state=all").await, [4, 3, 2, 1]);
    assert_eq!(list("source_branch=f-2").await, [3]);
    assert_eq!(list("target_branch=main&sort=asc").await, [1, 2, 3, 4]);
    assert_eq!(list("target_branch=other").await, Vec::<u64>::new());
    assert_eq!(
        api.get("projects/42/merge_requests?state=bogus")
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn creating_checks_parameters_branches_and_duplicates() {
    let (repo, fake, api) = start().await;
    let mr = api
        .open(
            "feature",
            "Promote calculator 1.1.0 to qa",
            "promotion,env::qa",
        )
        .await;
    assert_eq!(mr["iid"], 1);
    assert_eq!(mr["state"], "opened");
    assert_eq!(mr["sha"], repo.feature);
    assert_eq!(mr["labels"], serde_json::json!(["env::qa", "promotion"]));
    assert_eq!(mr["author"]["username"], "promoter-bot");
    assert_eq!(mr["detailed_merge_status"], "mergeable");
    assert_eq!(mr["merge_status"], "can_be_merged");
    assert_eq!(mr["has_conflicts"], false);
    assert_eq!(mr["draft"], false);
    assert_eq!(mr["references"]["full"], "acme/calculator!1");
    assert_eq!(
        mr["web_url"],
        format!("{}/acme/calculator/-/merge_requests/1", fake.url())
    );
    assert!(mr["merge_commit_sha"].is_null() && mr["head_pipeline"].is_null());

    let create = |form: Vec<(&'static str, String)>| {
        let api = &api;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            api.post("projects/42/merge_requests", &form).await
        }
    };
    let pair = |s: &str, t: &str, title: &str| {
        vec![
            ("source_branch", s.to_owned()),
            ("target_branch", t.to_owned()),
            ("title", title.to_owned()),
        ]
    };
    let duplicate = create(pair("feature", "main", "again")).await;
    assert_eq!(duplicate.status, 409);
    assert_eq!(
        duplicate.json(),
        serde_json::json!({"message": ["Another open merge request already exists for this source branch: !1"]})
    );
    let missing = create(pair("nope", "main", "x")).await;
    assert_eq!(
        (missing.status, missing.json()["message"][0].as_str()),
        (422, Some("Source branch \"nope\" does not exist"))
    );
    assert_eq!(create(pair("feature", "nope", "x")).await.status, 422);
    assert_eq!(create(pair("main", "main", "x")).await.status, 422);
    let no_title = create(pair("feature", "main", "x")[..2].to_vec()).await;
    assert_eq!(
        (no_title.status, no_title.json()),
        (400, serde_json::json!({"error": "title is missing"}))
    );
    let long = create(pair("f-x", "main", &"t".repeat(256))).await;
    assert_eq!(long.status, 422, "branch checks come first");
    commit_files(repo.path(), "other", Some("main"), &[("b.txt", "b\n")], "b");
    let long = create(pair("other", "main", &"t".repeat(256))).await;
    assert_eq!(long.status, 400);
    assert_eq!(
        long.json()["message"]["title"][0],
        "is too long (maximum is 255 characters)"
    );

    assert_eq!(fake.merge_requests().len(), 1);
    assert_eq!(fake.write_count(), 1);
    let one = api
        .get(&format!("projects/{ENCODED}/merge_requests/1"))
        .await;
    assert_eq!(one.json()["title"], "Promote calculator 1.1.0 to qa");
    let none = api.get("projects/42/merge_requests/9").await;
    assert_eq!(
        (none.status, none.json()),
        (404, serde_json::json!({"message": "404 Not found"}))
    );
}

#[tokio::test]
async fn editing_replaces_adds_and_removes_labels_and_reopens() {
    let (_repo, fake, api) = start().await;
    api.open("feature", "t", "a,b").await;
    let path = "projects/42/merge_requests/1";
    let edited = api
        .put(
            path,
            &[
                ("title", "new"),
                ("description", "d"),
                ("add_labels", "c"),
                ("remove_labels", "a"),
            ],
        )
        .await;
    assert_eq!(edited.status, 200);
    assert_eq!(edited.json()["labels"], serde_json::json!(["b", "c"]));
    assert_eq!(
        api.put(path, &[("labels", "z")]).await.json()["labels"],
        serde_json::json!(["z"])
    );
    assert_eq!(api.put(path, &[]).await.status, 400);
    assert_eq!(
        api.put(path, &[("state_event", "close")]).await.json()["detailed_merge_status"],
        "not_open"
    );
    api.open("feature", "second", "").await;
    let reopen = api.put(path, &[("state_event", "reopen")]).await;
    assert_eq!(reopen.status, 409, "another MR for the branch is open");
    let record = &fake.merge_requests()[0];
    assert_eq!(
        (
            record.title.as_str(),
            record.state.as_str(),
            record.labels.clone()
        ),
        ("new", "closed", vec!["z".to_owned()])
    );
    let draft = api
        .put(
            "projects/42/merge_requests/2",
            &[("title", "Draft: second")],
        )
        .await
        .json();
    assert_eq!(
        (
            draft["draft"].clone(),
            draft["detailed_merge_status"].clone()
        ),
        (Value::Bool(true), "draft_status".into())
    );
}

#[tokio::test]
async fn rate_limits_answer_429_with_gitlab_headers_then_recover() {
    let (_repo, fake, api) = start().await;
    fake.inject(Fault {
        method: Some(Method::POST),
        path_contains: Some("/merge_requests".into()),
        times: 2,
        kind: FaultKind::RateLimited {
            retry_after_secs: 7,
        },
    });
    let before = chrono::Utc::now().timestamp();
    let limited = api
        .post(
            "projects/42/merge_requests",
            &[
                ("source_branch", "feature"),
                ("target_branch", "main"),
                ("title", "t"),
            ],
        )
        .await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), "7");
    assert_eq!(limited.header("ratelimit-remaining"), "0");
    assert!(limited.header("ratelimit-limit").parse::<u64>().unwrap() > 0);
    assert!(limited.header("ratelimit-observed").parse::<u64>().unwrap() > 0);
    let reset: i64 = limited.header("ratelimit-reset").parse().unwrap();
    assert!((before + 7..=before + 9).contains(&reset));
    let reset_time =
        chrono::DateTime::parse_from_rfc2822(limited.header("ratelimit-resettime")).unwrap();
    assert_eq!(reset_time.timestamp(), reset);
    assert_eq!(limited.text.trim_end(), "Retry later");
    assert!(
        fake.merge_requests().is_empty(),
        "a faulted write changes nothing"
    );

    assert_eq!(
        api.get("projects/42/merge_requests").await.status,
        200,
        "GETs do not match"
    );
    assert_eq!(api.open_status().await, 429);
    assert_eq!(api.open_status().await, 201);
    assert_eq!(fake.merge_requests().len(), 1);
    assert_eq!(fake.write_count(), 1);
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200, 429, 201]);

    fake.inject(Fault::any(1, FaultKind::Status(502)));
    let bad = api.get("user").await;
    assert_eq!(
        (bad.status, bad.json()),
        (502, serde_json::json!({"message": "502 Bad Gateway"}))
    );
    fake.reset_log();
    assert_eq!((fake.requests().len(), fake.write_count()), (0, 0));
}

#[tokio::test]
async fn a_delayed_answer_times_clients_out_though_the_write_happened() {
    let (_repo, fake, api) = start().await;
    fake.inject(Fault {
        method: None,
        path_contains: Some("/user".into()),
        times: 1,
        kind: FaultKind::Delay(Duration::from_millis(300)),
    });
    let started = Instant::now();
    assert_eq!(api.get("user").await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    fake.inject(Fault {
        method: Some(Method::POST),
        path_contains: None,
        times: 1,
        kind: FaultKind::Delay(Duration::from_secs(5)),
    });
    let form = [
        ("source_branch", "feature"),
        ("target_branch", "main"),
        ("title", "t"),
    ];
    let timed_out = api
        .request(Method::POST, "projects/42/merge_requests", &form)
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(timed_out.unwrap_err().is_timeout());
    assert_eq!(
        fake.merge_requests().len(),
        1,
        "GitLab got the write; the client never heard"
    );
    assert_eq!(
        api.open_status().await,
        409,
        "so a blind retry is a duplicate"
    );
}

#[tokio::test]
async fn merging_checks_the_sha_then_merges_for_real() {
    let (repo, fake, api) = start().await;
    fake.set_clock("2026-11-24T10:00:00Z".parse().unwrap());
    api.post(
        "projects/42/merge_requests",
        &[
            ("source_branch", "feature"),
            ("target_branch", "main"),
            ("title", "Promote 1.1.0"),
            ("remove_source_branch", "true"),
        ],
    )
    .await;
    let path = format!("projects/{ENCODED}/merge_requests/1/merge");

    let stale = api.put(&path, &[("sha", &repo.main)]).await;
    assert_eq!(stale.status, 409);
    assert_eq!(
        stale.json(),
        serde_json::json!({"message": format!("SHA does not match HEAD of source branch: {}", repo.feature)})
    );
    assert_eq!(repo.head("main").unwrap(), repo.main, "nothing merged");
    assert_eq!(fake.merge_requests()[0].state, "opened");

    let merged = api.put(&path, &[("sha", &repo.feature)]).await;
    assert_eq!(merged.status, 200, "{}", merged.text);
    let mr = merged.json();
    assert_eq!(mr["state"], "merged");
    assert_eq!(mr["merged_at"], "2026-11-24T10:00:00.000Z");
    assert_eq!(mr["merged_by"]["username"], "promoter-bot");
    assert_eq!(mr["detailed_merge_status"], "not_open");
    assert_eq!(mr["sha"], repo.feature);
    let merge_sha = mr["merge_commit_sha"].as_str().unwrap().to_owned();
    assert_eq!(repo.head("main").unwrap(), merge_sha);
    assert_eq!(repo.head("feature"), None, "remove_source_branch was set");

    let git = repo.git();
    let commit = git
        .find_commit(git2::Oid::from_str(&merge_sha).unwrap())
        .unwrap();
    let parents: Vec<String> = commit.parent_ids().map(|p| p.to_string()).collect();
    assert_eq!(parents, [repo.main.clone(), repo.feature.clone()]);
    assert_eq!(
        commit.message().unwrap(),
        "Merge branch 'feature' into 'main'\n\nPromote 1.1.0\n\nSee merge request acme/calculator!1"
    );
    assert_eq!(
        (commit.author().name().ok(), commit.committer().name().ok()),
        (Some("GitLab"), Some("GitLab"))
    );
    assert_eq!(commit.time().seconds(), 1_795_514_400);
    let blob = commit
        .tree()
        .unwrap()
        .get_path(Path::new("app/values.yaml"))
        .unwrap()
        .to_object(&git)
        .unwrap();
    assert_eq!(blob.as_blob().unwrap().content(), b"image:\n  tag: 1.1.0\n");

    let again = api.put(&path, &[("sha", &repo.feature)]).await;
    assert_eq!(
        (again.status, again.json()),
        (
            405,
            serde_json::json!({"message": "405 Method Not Allowed"})
        )
    );
    assert_eq!(repo.head("main").unwrap(), merge_sha);
    let record = &fake.merge_requests()[0];
    assert_eq!(
        (record.state.as_str(), record.merge_commit_sha.as_deref()),
        ("merged", Some(merge_sha.as_str()))
    );
    assert_eq!(fake.write_count(), 2, "create and merge");
}

#[tokio::test]
async fn the_mr_sha_follows_the_source_branch() {
    let (repo, _fake, api) = start().await;
    api.open("feature", "t", "").await;
    let moved = commit_files(repo.path(), "feature", None, &[("c.txt", "c\n")], "more");
    let mr = api.get("projects/42/merge_requests/1").await.json();
    assert_eq!(mr["sha"], moved);
    assert_eq!(mr["diff_refs"]["head_sha"], moved);
    assert_eq!(mr["diff_refs"]["base_sha"], repo.main);
    let stale = api
        .put(
            "projects/42/merge_requests/1/merge",
            &[("sha", &repo.feature)],
        )
        .await;
    assert_eq!(stale.status, 409);
}

#[tokio::test]
async fn conflicting_branches_answer_406_and_change_nothing() {
    let (repo, fake, api) = start().await;
    api.open("feature", "t", "").await;
    let main = commit_files(
        repo.path(),
        "main",
        None,
        &[("app/values.yaml", "image:\n  tag: 2.0.0\n")],
        "hotfix",
    );
    let mr = api.get("projects/42/merge_requests/1").await.json();
    assert_eq!(
        (
            mr["has_conflicts"].clone(),
            mr["detailed_merge_status"].clone()
        ),
        (Value::Bool(true), "conflict".into())
    );
    assert_eq!(mr["merge_status"], "cannot_be_merged");
    let refused = api
        .put(
            "projects/42/merge_requests/1/merge",
            &[("sha", &repo.feature)],
        )
        .await;
    assert_eq!(
        (refused.status, refused.json()),
        (
            406,
            serde_json::json!({"message": "Branch cannot be merged"})
        )
    );
    assert_eq!(repo.head("main").unwrap(), main);
    assert_eq!(repo.head("feature").unwrap(), repo.feature);
    assert_eq!(fake.merge_requests()[0].state, "opened");
    assert_eq!(fake.write_count(), 1);
}

#[tokio::test]
async fn a_required_pipeline_gates_the_merge() {
    let (repo, fake, api) = start().await;
    fake.require_pipeline(true);
    api.open("feature", "t", "").await;
    let path = "projects/42/merge_requests/1";
    assert_eq!(
        api.get(path).await.json()["detailed_merge_status"],
        "ci_must_pass"
    );
    fake.set_pipeline(&repo.feature, "running");
    let mr = api.get(path).await.json();
    assert_eq!(mr["detailed_merge_status"], "ci_still_running");
    assert_eq!(
        (
            mr["head_pipeline"]["sha"].as_str(),
            mr["head_pipeline"]["status"].as_str()
        ),
        (Some(repo.feature.as_str()), Some("running"))
    );
    assert_eq!(api.put(&format!("{path}/merge"), &[]).await.status, 405);
    fake.set_pipeline(&repo.feature, "failed");
    assert_eq!(
        api.get(path).await.json()["detailed_merge_status"],
        "ci_must_pass"
    );
    assert_eq!(api.put(&format!("{path}/merge"), &[]).await.status, 405);
    assert_eq!(repo.head("main").unwrap(), repo.main);
    fake.set_pipeline(&repo.feature, "success");
    assert_eq!(
        api.get(path).await.json()["detailed_merge_status"],
        "mergeable"
    );
    assert_eq!(api.put(&format!("{path}/merge"), &[]).await.status, 200);
    assert_eq!(
        repo.head("feature").unwrap(),
        repo.feature,
        "the branch stays unless asked"
    );
}

#[tokio::test]
async fn approvals_list_ui_and_api_approvers() {
    let (repo, fake, api) = start().await;
    api.open("feature", "t", "").await;
    let path = "projects/42/merge_requests/1";
    let none = api.get(&format!("{path}/approvals")).await.json();
    assert_eq!(
        (none["approved"].clone(), none["approved_by"].clone()),
        (Value::Bool(false), serde_json::json!([]))
    );
    assert_eq!(none["user_can_approve"], true);

    fake.approve(1, "alice");
    let one = api.get(&format!("{path}/approvals")).await.json();
    assert_eq!(
        (
            one["id"].clone(),
            one["iid"].clone(),
            one["project_id"].clone()
        ),
        (1001.into(), 1.into(), 42.into())
    );
    assert_eq!(one["approved"], true);
    assert_eq!(one["approved_by"][0]["user"]["username"], "alice");
    assert!(one["approved_by"][0]["user"]["id"].is_u64());
    assert_eq!(one["user_has_approved"], false);

    assert_eq!(
        api.post(&format!("{path}/approve"), &[("sha", &repo.main)])
            .await
            .status,
        409
    );
    let approved = api
        .post(&format!("{path}/approve"), &[("sha", &repo.feature)])
        .await;
    assert_eq!(approved.status, 201);
    assert_eq!(
        (
            approved.json()["user_has_approved"].clone(),
            approved.json()["user_can_approve"].clone()
        ),
        (Value::Bool(true), Value::Bool(false))
    );
    let twice = api.post(&format!("{path}/approve"), &[]).await;
    assert_eq!(
        (twice.status, twice.json()),
        (401, serde_json::json!({"message": "401 Unauthorized"}))
    );
    assert_eq!(
        fake.merge_requests()[0].approvals,
        ["alice", "promoter-bot"]
    );
    assert_eq!(
        api.post(&format!("{path}/unapprove"), &[]).await.status,
        201
    );
    assert_eq!(fake.merge_requests()[0].approvals, ["alice"]);
}

#[tokio::test]
async fn notes_are_created_and_listed_newest_first() {
    let (_repo, fake, api) = start().await;
    api.open("feature", "t", "").await;
    let path = format!("projects/{ENCODED}/merge_requests/1/notes");
    let note = api.post(&path, &[("body", "first")]).await;
    assert_eq!(note.status, 201);
    let note = note.json();
    assert_eq!(
        (note["body"].as_str(), note["system"].as_bool()),
        (Some("first"), Some(false))
    );
    assert_eq!(note["author"]["username"], "promoter-bot");
    assert!(note["id"].is_u64() && note["created_at"].is_string());
    api.post(&path, &[("body", "second")]).await;
    assert_eq!(
        api.post(&path, &[]).await.json(),
        serde_json::json!({"error": "body is missing"})
    );

    let list = api.get(&format!("{path}?per_page=1")).await;
    assert_eq!(list.json()[0]["body"], "second");
    assert_eq!(
        (list.header("x-total"), list.header("x-next-page")),
        ("2", "2")
    );
    assert!(
        list.header("link")
            .contains(&format!("id={ENCODED}&noteable_id=1&page=2&per_page=1"))
    );
    assert_eq!(fake.merge_requests()[0].notes, ["first", "second"]);
    assert_eq!(
        api.get("projects/42/merge_requests/1").await.json()["user_notes_count"],
        2
    );
}

#[tokio::test]
async fn commit_statuses_round_trip() {
    let (repo, _fake, api) = start().await;
    let post = |state: &'static str, name: &'static str| {
        let api = &api;
        let sha = repo.main.clone();
        async move {
            let form = [
                ("state", state),
                ("name", name),
                ("description", "reconciled"),
                ("target_url", "https://flux.example/qa"),
            ];
            api.post(&format!("projects/{ENCODED}/statuses/{sha}"), &form)
                .await
        }
    };
    let created = post("pending", "kustomization/qa/1234abcd").await;
    assert_eq!(created.status, 201);
    let created = created.json();
    assert_eq!(
        (created["status"].as_str(), created["ref"].as_str()),
        (Some("pending"), Some("feature")),
        "no ref given: the first branch by name containing the commit, as GitLab picks"
    );
    assert_eq!(
        post("pending", "kustomization/qa/1234abcd").await.status,
        400,
        "no pending -> pending"
    );
    let success = post("success", "kustomization/qa/1234abcd").await.json();
    assert_eq!(
        success["id"], created["id"],
        "a pending status moves on in place"
    );
    post("failed", "kustomization/qa/1234abcd").await;
    post("success", "other").await;
    assert_eq!(post("bogus", "x").await.status, 400);

    let list = |query: &'static str| {
        let api = &api;
        let sha = repo.main.clone();
        async move {
            api.get(&format!(
                "projects/42/repository/commits/{sha}/statuses{query}"
            ))
            .await
            .json()
        }
    };
    let latest = list("").await;
    let names: Vec<(&str, &str)> = latest
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("kustomization/qa/1234abcd", "failed"),
            ("other", "success")
        ]
    );
    assert_eq!(latest[0]["sha"], repo.main);
    assert_eq!(latest[0]["target_url"], "https://flux.example/qa");
    assert_eq!(latest[0]["description"], "reconciled");
    assert_eq!(list("?all=true").await.as_array().unwrap().len(), 3);
    assert_eq!(list("?name=other").await.as_array().unwrap().len(), 1);
    assert_eq!(list("?ref=main").await.as_array().unwrap().len(), 0);
    assert_eq!(
        api.get("projects/42/repository/commits/0123456789012345678901234567890123456789/statuses")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn random_faults_are_reproducible_from_the_seed() {
    async fn run(seed: u64) -> Vec<u16> {
        let (_repo, fake, api) = start().await;
        fake.set_random_faults(
            0.3,
            seed,
            vec![
                FaultKind::Status(503),
                FaultKind::RateLimited {
                    retry_after_secs: 1,
                },
            ],
        );
        let mut statuses = Vec::new();
        for _ in 0..60 {
            statuses.push(api.get("projects/42/merge_requests").await.status);
        }
        statuses
    }
    let first = run(7).await;
    assert_eq!(first, run(7).await);
    assert_ne!(first, run(8).await);
    let failed = first.iter().filter(|&&s| s != 200).count();
    assert!((8..=30).contains(&failed), "{failed} of 60 at 30%");
    assert!(first.contains(&503) && first.contains(&429));
}

#[tokio::test]
async fn json_bodies_work_and_squash_merges_squash() {
    let (repo, fake, api) = start().await;
    let body = serde_json::json!({
        "source_branch": "feature",
        "target_branch": "main",
        "title": "Promote 1.1.0",
        "labels": ["promotion", "env::qa"],
        "squash": true,
    });
    let created = api
        .request(Method::POST, "projects/42/merge_requests", &[])
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(
        created["labels"],
        serde_json::json!(["env::qa", "promotion"])
    );
    assert_eq!(created["squash"], true);

    let merged = api
        .put(
            "projects/42/merge_requests/1/merge",
            &[("should_remove_source_branch", "true")],
        )
        .await
        .json();
    let squash = merged["squash_commit_sha"].as_str().unwrap();
    let git = repo.git();
    let merge = git
        .find_commit(git2::Oid::from_str(merged["merge_commit_sha"].as_str().unwrap()).unwrap())
        .unwrap();
    let parents: Vec<String> = merge.parent_ids().map(|p| p.to_string()).collect();
    assert_eq!(parents, [repo.main.as_str(), squash]);
    let squashed = git
        .find_commit(git2::Oid::from_str(squash).unwrap())
        .unwrap();
    assert_eq!(squashed.parent_id(0).unwrap().to_string(), repo.main);
    assert_eq!(squashed.message().unwrap(), "Promote 1.1.0");
    assert_eq!(merged["should_remove_source_branch"], true);
    assert_eq!(repo.head("feature"), None);
    assert_eq!(fake.merge_requests()[0].state, "merged");
}
