//! The one test world, in the spirit of rust-lang/bors' `BorsTester`: an origin (a bare
//! repository holding the sample), the GitLab double serving it, and a reconciler on both with
//! its own state directory. A test drives it with `run(at)` and acts as the people around
//! promoter would: approve, merge, open or close MRs through the API, push to the origin, and
//! (through [`super::chat`]) post slash commands and MR comments.
//!
//! Time is an argument, never the machine's clock: `run(at)` sets the double's clock to `at`
//! and reconciles at `at`, so every timestamp GitLab records (MRs, notes, approvals, merges)
//! is the test's. `run_now()` is the exception, for the chat tests whose signed requests carry
//! the wall clock.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use promoter::forge::gitlab::GitLab;
use promoter::plan::Request;
use promoter::reconcile::{ActionKind, Outcome, Reconciler, Scope};

use super::Origin;
use super::fake_gitlab::{FakeGitLab, MrRecord};

/// An RFC 3339 instant.
pub fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// Origin, GitLab double and reconciler, wired together.
pub struct World {
    pub origin: Origin,
    pub fake: FakeGitLab,
    /// promoter's state directory (its mirror lives here).
    pub state: tempfile::TempDir,
    /// Shared, so that chat-ops can hold it as the daemon does.
    pub reconciler: Arc<Reconciler<GitLab>>,
}

impl World {
    /// The double serving `origin` as `acme/calculator`, and a reconciler on both.
    pub async fn new(origin: Origin) -> World {
        Self::configured(origin, |reconciler| reconciler).await
    }

    /// As [`World::new`], with the reconciler passed through `configure` first (to give it a
    /// registry, say, or turn on deployments).
    pub async fn configured(
        origin: Origin,
        configure: impl FnOnce(Reconciler<GitLab>) -> Reconciler<GitLab>,
    ) -> World {
        let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
        let state = tempfile::tempdir().unwrap();
        let reconciler = configure(super::reconciler(&fake, &origin, state.path()).await);
        World {
            origin,
            fake,
            state,
            reconciler: Arc::new(reconciler),
        }
    }

    /// An independent copy of this world: the origin's files, the double's state, promoter's
    /// state directory, and a plain reconciler on them (not `configured`); the double's log
    /// starts empty (the reconciler's connection is not in it). Much cheaper than building the
    /// world again.
    pub async fn fork(&self) -> World {
        let origin = self.origin.duplicate();
        let fake = self.fake.fork(&origin.bare).await;
        let state = tempfile::tempdir().unwrap();
        super::copy_dir(self.state.path(), state.path());
        let reconciler = Arc::new(super::reconciler(&fake, &origin, state.path()).await);
        fake.reset_log();
        World {
            origin,
            fake,
            state,
            reconciler,
        }
    }

    /// One reconcile of every environment at `now`; no action may fail.
    pub async fn run(&self, now: &str) -> Outcome {
        self.run_scoped(&Scope::all(), &[], now).await
    }

    /// One reconcile at `now` honouring `requests` (people's asks); no action may fail.
    pub async fn run_with(&self, requests: &[Request], now: &str) -> Outcome {
        self.run_scoped(&Scope::all(), requests, now).await
    }

    /// One reconcile of `scope` at `now` honouring `requests`, with the double's clock at
    /// `now`; no action may fail.
    pub async fn run_scoped(&self, scope: &Scope, requests: &[Request], now: &str) -> Outcome {
        self.fake.set_clock(at(now));
        let outcome = self
            .reconciler
            .run_once(scope, requests, at(now))
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

    /// The daemon's resync now (the wall clock, the default scope), as chat tests start.
    pub async fn run_now(&self) -> Outcome {
        self.reconciler
            .run_once(&Scope::default(), &[], Utc::now())
            .await
            .unwrap()
    }

    /// Every open MR.
    pub fn open_mrs(&self) -> Vec<MrRecord> {
        self.fake
            .merge_requests()
            .into_iter()
            .filter(|m| m.state == "opened")
            .collect()
    }

    /// The open MR from `branch`, if any.
    pub fn open(&self, branch: &str) -> Option<MrRecord> {
        self.open_mrs()
            .into_iter()
            .find(|m| m.source_branch == branch)
    }

    /// The open MR from `branch`; panics if there is none.
    pub fn open_mr(&self, branch: &str) -> MrRecord {
        self.open(branch)
            .unwrap_or_else(|| panic!("no open MR from {branch}"))
    }

    /// How many promotions into `env` are open.
    pub fn open_into(&self, env: &str) -> usize {
        let prefix = format!("promoter/{env}/");
        self.open_mrs()
            .iter()
            .filter(|m| m.source_branch.starts_with(&prefix))
            .count()
    }

    /// MR `iid`, whatever its state.
    pub fn mr(&self, iid: u64) -> MrRecord {
        self.fake
            .merge_requests()
            .into_iter()
            .find(|m| m.iid == iid)
            .unwrap_or_else(|| panic!("no MR !{iid}"))
    }

    /// `username` approves MR `iid`, at the double's clock.
    pub fn approve(&self, iid: u64, username: &str) {
        self.fake.approve(iid, username);
    }

    /// A person merges MR `iid` at its head (through the API, with the bot's token); panics
    /// unless GitLab merged it.
    pub async fn merge(&self, iid: u64) {
        use promoter::forge::Forge;
        let sha = self.mr(iid).sha.expect("an MR has a head");
        let merged = self.reconciler.forge().merge(iid, &sha).await.unwrap();
        assert!(
            matches!(merged, promoter::forge::MergeOutcome::Merged(_)),
            "{merged:?}"
        );
    }

    /// `username` opens an MR through the API with the fields in `body` (`source_branch`,
    /// `target_branch`, `title`, ...), as GitLab lets any Developer do; returns its iid.
    pub async fn open_mr_as(&self, username: &str, body: serde_json::Value) -> u64 {
        let token = self.fake.add_user(username);
        let response = reqwest::Client::new()
            .post(self.api("merge_requests"))
            .header("PRIVATE-TOKEN", token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
        response.json::<serde_json::Value>().await.unwrap()["iid"]
            .as_u64()
            .unwrap()
    }

    /// `username` sets the state of MR `iid` (`close`, `reopen`) through the API.
    pub async fn set_state_as(&self, username: &str, iid: u64, event: &str) {
        let token = self.fake.add_user(username);
        let response = reqwest::Client::new()
            .put(self.api(&format!("merge_requests/{iid}")))
            .header("PRIVATE-TOKEN", token)
            .json(&serde_json::json!({ "state_event": event }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }

    /// The URL of the project's `path` in the double's REST API.
    pub fn api(&self, path: &str) -> String {
        format!(
            "{}/api/v4/projects/{}/{path}",
            self.fake.url(),
            FakeGitLab::PROJECT_ID
        )
    }
}

/// The `detail` of the action on `branch` in `outcome` (empty if there is none).
pub fn detail<'a>(outcome: &'a Outcome, branch: &str) -> &'a str {
    outcome
        .actions
        .iter()
        .find(|a| a.branch == branch)
        .map(|a| a.detail.as_str())
        .unwrap_or_default()
}
