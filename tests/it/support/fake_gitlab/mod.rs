//! A stateful GitLab REST API test double: an axum server on 127.0.0.1:0 that answers the
//! endpoints promoter's `gitlab`-crate client calls, with GitLab's status codes, bodies and
//! pagination headers, merges for real into a bare git repository, and fails on demand.
//!
//! Endpoints (under `/api/v4`, `PRIVATE-TOKEN` or `Authorization: Bearer`, 401 otherwise;
//! project ids numeric or URL-encoded paths; bodies form-encoded or JSON):
//! `GET /user`; `GET /projects/:id`; `GET|POST /projects/:id/merge_requests`;
//! `GET|PUT .../merge_requests/:iid`; `PUT .../merge`; `GET|POST .../notes`;
//! `GET .../approvals`; `POST .../approve`, `.../unapprove`;
//! `GET|POST /projects/:id/issues`; `GET|PUT .../issues/:iid`;
//! `GET /projects/:id/repository/commits/:sha/statuses`; `POST /projects/:id/statuses/:sha`;
//! `GET|POST /projects/:id/deployments`.
//!
//! Where GitLab's documentation is ambiguous the double picks one behaviour:
//! - merge conflicts answer 406 `Branch cannot be merged` (the documented status; gitlab.com
//!   answers 405, gitlab#364102); the merge checks run in the endpoint's order: 405 (not
//!   opened, draft, a branch gone, required pipeline missing or not `success`), 406, then 409
//!   for a stale `sha`;
//! - approving twice (or a closed/merged MR) answers 401 `401 Unauthorized`, as GitLab >= 13
//!   does (`unauthorized! unless success`), not the 304 of older versions; authors may approve
//!   their own MRs (Free);
//! - the only system notes are GitLab's `approved this merge request` and `unapproved this
//!   merge request` (none on merge, close or push);
//! - `Delay` faults handle the request first (a write takes effect) and hold the answer back;
//!   error faults (429, 5xx) never reach the handlers, so faulted writes change nothing;
//! - a [`Hang`] holds one chosen request until the test calls `release_hangs`, taking effect
//!   never, first, or on release ([`Effect`]); `wait_until_hung` tells the test the client is
//!   there (to kill it, say); `on_request` changes the bare repository when a request arrives;
//! - rate-limit reset times use the wall clock; everything else the double's clock;
//! - `auto_merge`/`merge_when_pipeline_succeeds` are not simulated (the merge is attempted now);
//! - issues order only by `created_at` or `updated_at` (GitLab's other `order_by` values are
//!   accepted and order like `created_at`); issues have no notes, assignees or milestones.
#![allow(dead_code)] // The API serves every test file; not each uses all of it.

mod api;
mod deployments;
mod faults;
mod git;
pub mod host;
mod issues;
mod mrs;
mod state;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

pub use faults::{Effect, Fault, FaultKind, Hang};
pub use git::commit_files;
pub use state::{IssueRecord, MrRecord, Recorded};

use api::Ctx;
use state::{Pipeline, State};

/// The running double; the server stops when this is dropped.
pub struct FakeGitLab {
    ctx: Arc<Ctx>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl FakeGitLab {
    /// The bot's username.
    pub const BOT_USERNAME: &'static str = "promoter-bot";
    /// The bot's personal access token.
    pub const BOT_TOKEN: &'static str = "glpat-promoter-bot-fake-token";
    /// The project's numeric id.
    pub const PROJECT_ID: u64 = 42;

    /// Serves the bare repository at `bare_repo` as project `project_path` (`acme/calculator`)
    /// on the current tokio runtime.
    pub async fn start(bare_repo: &Path, project_path: &str) -> FakeGitLab {
        Self::start_as(bare_repo, project_path, Self::PROJECT_ID).await
    }

    /// [`FakeGitLab::start`] with another project id (several doubles behind one
    /// [`host::FakeHost`] are several projects of one GitLab).
    pub async fn start_as(bare_repo: &Path, project_path: &str, project_id: u64) -> FakeGitLab {
        let mut state = State::new(project_id, project_path, String::new());
        let bot = state.user_or_add(Self::BOT_USERNAME);
        state
            .users
            .iter_mut()
            .find(|u| u.id == bot.id)
            .expect("bot")
            .token = Self::BOT_TOKEN.into();
        Self::serve(bare_repo, state).await
    }

    /// Another double serving `bare_repo` (a copy of this one's, say) with a copy of this
    /// one's merge requests, issues, users, statuses and settings; no faults, an empty log.
    pub async fn fork(&self, bare_repo: &Path) -> FakeGitLab {
        let state = self.ctx.lock().fork();
        Self::serve(bare_repo, state).await
    }

    async fn serve(bare_repo: &Path, mut state: State) -> FakeGitLab {
        git2::Repository::open_bare(bare_repo).expect("a bare git repository");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local address");
        state.base_url = format!("http://{addr}");
        let ctx = Arc::new(Ctx {
            state: Mutex::new(state),
            repo: bare_repo.to_owned(),
            released: tokio::sync::watch::Sender::new(0),
        });
        let app = axum::Router::new()
            .fallback(api::serve)
            .with_state(ctx.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        FakeGitLab {
            ctx,
            addr,
            stop: Some(stop),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT`, what `gitlab::GitlabBuilder::new(host, token).insecure()` wants.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn project_id(&self) -> u64 {
        self.ctx.lock().project_id
    }

    pub fn project_path(&self) -> String {
        self.ctx.lock().project_path.clone()
    }

    /// Adds a user (or finds an existing one) and returns their token.
    pub fn add_user(&self, username: &str) -> String {
        self.ctx.lock().user_or_add(username).token
    }

    /// `username` approves MR `iid`, as in the UI (the user is added if unknown; approving
    /// twice is a no-op). Panics if the MR does not exist.
    pub fn approve(&self, iid: u64, username: &str) {
        let mut st = self.ctx.lock();
        let user = st.user_or_add(username);
        let now = st.now();
        let idx = st
            .mr_index(iid)
            .unwrap_or_else(|| panic!("no merge request !{iid}"));
        if !st.mrs[idx].approved_by.contains(&user.id) {
            let note = st.system_note(user.id, "approved this merge request");
            let mr = &mut st.mrs[idx];
            mr.approved_by.push(user.id);
            mr.notes.push(note);
            mr.updated_at = now;
        }
    }

    /// A person closes MR `iid` in the UI. Panics if the MR does not exist.
    pub fn close(&self, iid: u64) {
        let mut st = self.ctx.lock();
        let now = st.now();
        let idx = st
            .mr_index(iid)
            .unwrap_or_else(|| panic!("no merge request !{iid}"));
        let mr = &mut st.mrs[idx];
        mr.state = "closed";
        mr.closed_at = Some(now);
        mr.updated_at = now;
    }

    /// `count` merge requests opened by `username` in the UI from branches of theirs
    /// (`people/wip-N`, which need not exist) into `target`, carrying `labels`; their iids.
    pub fn seed_merge_requests(
        &self,
        count: usize,
        username: &str,
        target: &str,
        labels: &[&str],
    ) -> Vec<u64> {
        let mut st = self.ctx.lock();
        let user = st.user_or_add(username);
        let now = st.now();
        let mut iids = Vec::new();
        for n in 0..count {
            let iid = st.mrs.iter().map(|m| m.iid).max().unwrap_or(0) + 1;
            let id = st.next_id();
            st.mrs.push(state::Mr {
                id,
                iid,
                title: format!("work in progress {n}"),
                description: String::new(),
                state: "opened",
                sha: None,
                source_branch: format!("people/wip-{n}"),
                target_branch: target.to_string(),
                labels: mrs::parse_labels(&labels.join(",")),
                author: user.id,
                created_at: now,
                updated_at: now,
                merged_at: None,
                merged_by: None,
                closed_at: None,
                closed_by: None,
                merge_commit_sha: None,
                squash_commit_sha: None,
                force_remove_source_branch: false,
                should_remove_source_branch: None,
                squash: false,
                notes: Vec::new(),
                approved_by: Vec::new(),
            });
            iids.push(iid);
        }
        iids
    }

    /// `username` takes back their approval of MR `iid` (a no-op when they had not approved).
    pub fn unapprove(&self, iid: u64, username: &str) {
        let mut st = self.ctx.lock();
        let user = st.user_or_add(username);
        let idx = st
            .mr_index(iid)
            .unwrap_or_else(|| panic!("no merge request !{iid}"));
        if st.mrs[idx].approved_by.contains(&user.id) {
            let note = st.system_note(user.id, "unapproved this merge request");
            let mr = &mut st.mrs[idx];
            mr.approved_by.retain(|&id| id != user.id);
            mr.notes.push(note);
        }
    }

    /// Fixes the double's clock (created_at, updated_at, merged_at, notes, merge commits).
    pub fn set_clock(&self, at: DateTime<Utc>) {
        self.ctx.lock().clock = Some(at);
    }

    /// Sets the head pipeline of commit `sha` (`running`, `success`, `failed`, ...).
    pub fn set_pipeline(&self, sha: &str, status: &str) {
        let mut st = self.ctx.lock();
        let id = match st.pipelines.get(sha) {
            Some(p) => p.id,
            None => st.next_id(),
        };
        st.pipelines.insert(
            sha.to_owned(),
            Pipeline {
                id,
                status: status.to_owned(),
            },
        );
    }

    /// The project's "Pipelines must succeed" (`only_allow_merge_if_pipeline_succeeds`).
    pub fn require_pipeline(&self, on: bool) {
        self.ctx.lock().require_pipeline = on;
    }

    /// Every merge request, by iid.
    pub fn merge_requests(&self) -> Vec<MrRecord> {
        let st = self.ctx.lock();
        st.mrs.iter().map(|mr| st.record(mr)).collect()
    }

    /// Every deployment recorded, oldest first, as (environment, sha, ref, status).
    pub fn deployments(&self) -> Vec<(String, String, String, String)> {
        let st = self.ctx.lock();
        st.deployments
            .iter()
            .map(|d| {
                (
                    d.environment.clone(),
                    d.sha.clone(),
                    d.git_ref.clone(),
                    d.status.clone(),
                )
            })
            .collect()
    }

    /// Every issue, by iid.
    pub fn issues(&self) -> Vec<IssueRecord> {
        let st = self.ctx.lock();
        st.issues.iter().map(|i| st.issue_record(i)).collect()
    }

    /// Every request since the start (or the last `reset_log`), in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.ctx.lock().log.clone()
    }

    /// Requests other than GET/HEAD that answered 2xx, since the last `reset_log`.
    pub fn write_count(&self) -> usize {
        let st = self.ctx.lock();
        st.log
            .iter()
            .filter(|r| r.method != axum::http::Method::GET && r.method != axum::http::Method::HEAD)
            .filter(|r| (200..300).contains(&r.status))
            .count()
    }

    /// Forgets the request log (and so the write count).
    pub fn reset_log(&self) {
        self.ctx.lock().log.clear();
    }

    /// Queues a fault; queued faults are matched in order, before the random mode.
    pub fn inject(&self, fault: Fault) {
        self.ctx.lock().faults.push(fault);
    }

    /// Fails a `rate` share of requests with one of `kinds`, drawn from a generator seeded with
    /// `seed`: the same request sequence fails the same way every run.
    pub fn set_random_faults(&self, rate: f64, seed: u64, kinds: Vec<FaultKind>) {
        self.ctx.lock().faults.set_random(rate, seed, kinds);
    }

    /// Drops queued faults and the random mode.
    pub fn clear_faults(&self) {
        self.ctx.lock().faults.clear();
    }

    /// Holds a chosen request (see [`Hang`]) until [`Self::release_hangs`].
    pub fn hang(&self, hang: Hang) {
        self.ctx.lock().faults.push_hang(hang);
    }

    /// Every request that hung so far, in order.
    pub fn hung_requests(&self) -> Vec<Recorded> {
        self.ctx.lock().hung.clone()
    }

    /// Waits (up to 30 s, then panics) until `count` requests have hung; returns the last.
    pub async fn wait_until_hung(&self, count: usize) -> Recorded {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(hung) = self.ctx.lock().hung.get(count.saturating_sub(1)) {
                return hung.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no request hung; requests: {:#?}",
                self.requests()
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Lets every hung request go (those held before taking effect answer 503 and change
    /// nothing).
    pub fn release_hangs(&self) {
        self.ctx.released.send_modify(|generation| *generation += 1);
    }

    /// Runs `change` once, on the bare repository's path, right before the next `method`
    /// request whose path contains `path_contains` is handled.
    pub fn on_request(
        &self,
        method: axum::http::Method,
        path_contains: &str,
        change: impl FnOnce(&Path) + Send + 'static,
    ) {
        self.ctx
            .lock()
            .faults
            .push_hook(method, path_contains, Box::new(change));
    }
}

impl Drop for FakeGitLab {
    fn drop(&mut self) {
        self.release_hangs();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
