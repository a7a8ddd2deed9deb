#![allow(dead_code)] // each benchmark uses part of the support
//! What the reconcile benchmarks share: a stand of one repository (the sample or a synthetic
//! one) served as a bare origin over `file://`, the GitLab test double in the same process, and
//! a `Reconciler` with its mirror cloned; one measured reconcile; the process's memory from
//! `/proc/self/status`. Each benchmark includes it with `#[path]`, after `fake_gitlab` and
//! `synthetic`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use promoter::forge::gitlab::{Connection, GitLab, RetryPolicy};
use promoter::git::mirror::{Author, Credentials, Mirror};
use promoter::promotion::describe::Templates;
use promoter::reconcile::{ActionKind, Config, Outcome, Reconciler, Scope};

use crate::fake_gitlab::FakeGitLab;

pub mod git_daemon;
pub mod process;
#[allow(unused_imports)] // each benchmark uses part of the support
pub use process::{cpu_secs, cpu_secs_in, status_kib, status_kib_in, threads_cpu_secs};

/// The name of the threads the GitLab double runs on (its own runtime), so that its CPU time
/// can be told apart from promoter's.
pub const DOUBLE_THREADS: &str = "fake-gitlab";

/// The double's runtime: one worker thread (and its blocking pool) named [`DOUBLE_THREADS`].
/// Shut down in the background when dropped, which is allowed inside another runtime.
pub struct DoubleRuntime(Option<tokio::runtime::Runtime>);

impl DoubleRuntime {
    fn new() -> Result<Self> {
        Ok(Self(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name(DOUBLE_THREADS)
                .thread_keep_alive(Duration::from_secs(24 * 3600))
                .enable_all()
                .build()?,
        )))
    }
}

impl Drop for DoubleRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}
use crate::synthetic::{self, DAY, Result, START};

/// Commits of history in the synthetic repositories.
pub const COMMITS: usize = 40;

/// The repository under test, its origin, the double and the reconciler.
pub struct Stand {
    /// Services per environment (2 for the sample).
    pub services: usize,
    /// The bare origin the mirror fetches from and pushes to.
    pub bare: PathBuf,
    /// The GitLab double serving `bare`, on its own runtime (dropped after it).
    pub fake: FakeGitLab,
    _double_runtime: DoubleRuntime,
    /// The reconciler, its mirror cloned.
    pub reconciler: Reconciler<GitLab>,
    /// How long cloning the mirror took.
    pub clone: Duration,
    /// CPU seconds of the clone.
    pub clone_cpu: f64,
    /// Dev folder of the first service (the one "one new promotion" releases).
    pub first_dev: String,
    /// Dev folders of 5% of the services (the "5% due" release).
    pub five_percent: Vec<String>,
    /// Two days after the last commit: every soak is over, before the year-end freeze.
    pub now: DateTime<Utc>,
    /// The last commit's time.
    pub last_commit: i64,
    /// The `git daemon` serving `bare` when the mirror fetches over `git://`.
    _git_daemon: Option<git_daemon::GitDaemon>,
    _dirs: Vec<tempfile::TempDir>,
}

/// How the mirror reaches the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `file://`: libgit2 builds the packs in promoter's process.
    File,
    /// `git://` from a `git daemon`: the server builds them, as GitLab does.
    GitDaemon,
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()))?;
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// The sample repository (environments/, policies/, clusters/), committed once at START,
/// with its `require_image` gates off: they ask registry.gitlab.com, and benchmarks run
/// without network.
pub fn build_sample(root: &Path) -> Result<()> {
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    for folder in ["environments", "policies", "clusters"] {
        copy_dir(&top.join(folder), &root.join(folder))?;
    }
    for policy in std::fs::read_dir(root.join("policies"))? {
        let path = policy?.path();
        let text = std::fs::read_to_string(&path)?;
        std::fs::write(
            &path,
            text.replace("require_image: true", "require_image: false"),
        )?;
    }
    let repo = git2::Repository::init(root)?;
    let mut index = repo.index()?;
    index.add_all(["*"], git2::IndexAddOption::DEFAULT, None)?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = git2::Signature::new("dev", "dev@example.com", &git2::Time::new(START, 0))?;
    repo.commit(Some("HEAD"), &sig, &sig, "import the sample", &tree, &[])?;
    Ok(())
}

/// A stand for `services` services per environment (0: the sample repository). Synthetic
/// repositories come from the shared cache (`fresh`: rebuilt).
pub async fn stand(services: usize, fresh: bool) -> Result<Stand> {
    stand_with(services, fresh, false).await
}

/// [`stand`], its reconciler keeping what each cycle read (`incremental`, as the daemon's).
pub async fn stand_with(services: usize, fresh: bool, incremental: bool) -> Result<Stand> {
    stand_over(services, fresh, incremental, Transport::File).await
}

/// [`stand_with`], the mirror reaching the origin over `transport`.
pub async fn stand_over(
    services: usize,
    fresh: bool,
    incremental: bool,
    transport: Transport,
) -> Result<Stand> {
    let mut dirs = Vec::new();
    let (work, first_dev, five_percent, last_commit) = if services == 0 {
        let work = tempfile::tempdir()?;
        build_sample(work.path())?;
        let path = work.path().to_path_buf();
        dirs.push(work);
        let first = "clusters/dev/calculator/maths-api".to_string();
        let other = "clusters/dev/calculator/client".to_string();
        (path, first, vec![other], START)
    } else {
        let work = synthetic::cached(services, COMMITS, fresh)?;
        let last = START + (COMMITS as i64 - 1) * DAY;
        (
            work,
            synthetic::service_dir("dev", 0),
            synthetic::five_percent(services),
            last,
        )
    };
    let origin = tempfile::Builder::new()
        .prefix("promoter-bench-origin-")
        .tempdir()?;
    let bare = origin.path().join("origin.git");
    synthetic::bare_origin(&work, &bare)?;
    let double_runtime = DoubleRuntime::new()?;
    let served = bare.clone();
    let fake = double_runtime
        .0
        .as_ref()
        .ok_or("the double's runtime")?
        .spawn(async move { FakeGitLab::start(&served, "acme/platform").await })
        .await?;
    let connection = Connection {
        url: fake.url().parse()?,
        token: FakeGitLab::BOT_TOKEN.into(),
        project: "acme/platform".into(),
        policy: RetryPolicy::default(),
        // The benchmark measures promoter, not its request budget.
        budget: promoter::forge::gitlab::budget::BudgetSettings {
            per_second: 1e9,
            burst: u32::MAX,
        },
    };
    let forge = GitLab::connect(&connection).await?;
    let state = tempfile::Builder::new()
        .prefix("promoter-bench-state-")
        .tempdir()?;
    let (git_daemon, url) = match transport {
        Transport::File => (None, format!("file://{}", bare.display())),
        Transport::GitDaemon => {
            let daemon = git_daemon::GitDaemon::start(origin.path())?;
            let url = format!("git://127.0.0.1:{}/origin.git", daemon.port);
            (Some(daemon), url)
        }
    };
    dirs.push(origin);
    let dir = state.path().join("mirror.git");
    dirs.push(state);
    let (started, cpu) = (Instant::now(), cpu_secs());
    let mirror =
        tokio::task::spawn_blocking(move || Mirror::open(&dir, &url, Credentials::None)).await??;
    let clone = started.elapsed();
    let clone_cpu = cpu_secs() - cpu;
    let branch = git2::Repository::open_bare(&bare)?
        .head()?
        .shorthand()?
        .to_string();
    let config = Config {
        branch,
        author: Author {
            name: "promoter".into(),
            email: "p@example.com".into(),
            keys: promoter::git::signing::SigningKeys::new(promoter::git::signing::key_from_seed(
                [7; 32], "bench",
            )),
        },
    };
    // With the defaults of the binary: GitLab deployments recorded (`gitlab.record_deployments`
    // is on unless turned off), by the daemon and by `reconcile --once` alike.
    let reconciler = Reconciler::new(forge, mirror, config, Templates::built_in())
        .with_incremental(incremental)
        .with_deployments(true);
    let now = Utc
        .timestamp_opt(last_commit + 2 * DAY, 0)
        .single()
        .ok_or("time")?;
    Ok(Stand {
        services: services.max(2),
        bare,
        fake,
        _double_runtime: double_runtime,
        reconciler,
        clone,
        clone_cpu,
        first_dev,
        five_percent,
        now,
        last_commit,
        _git_daemon: git_daemon,
        _dirs: dirs,
    })
}

/// One reconcile's cost.
#[derive(Debug, Clone, Copy, Default)]
pub struct Measured {
    /// Wall time of `run_once`.
    pub time: Duration,
    /// CPU seconds of promoter meanwhile (the process's, less the double's threads').
    pub cpu: f64,
    /// CPU seconds of the double's threads meanwhile.
    pub double_cpu: f64,
    /// HTTP requests the double answered.
    pub calls: usize,
    /// Of which not GET.
    pub writes: usize,
    /// MRs opened or updated.
    pub opened: usize,
}

impl Measured {
    /// As JSON, for the parent process.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "secs": self.time.as_secs_f64(),
            "cpu": self.cpu,
            "double_cpu": self.double_cpu,
            "calls": self.calls,
            "writes": self.writes,
            "opened": self.opened,
        })
    }
}

/// One reconcile of everything at `now`; a failed promotion fails the benchmark.
pub async fn run(stand: &Stand, now: DateTime<Utc>) -> Result<(Measured, Outcome)> {
    stand.fake.reset_log();
    let (started, cpu, double) = (Instant::now(), cpu_secs(), threads_cpu_secs(DOUBLE_THREADS));
    let outcome = stand.reconciler.run_once(&Scope::all(), &[], now).await?;
    let time = started.elapsed();
    let double_cpu = threads_cpu_secs(DOUBLE_THREADS) - double;
    let cpu = cpu_secs() - cpu - double_cpu;
    let failed = outcome.count(&ActionKind::Failed);
    if failed > 0 {
        let first = outcome
            .actions
            .iter()
            .find(|a| a.kind == ActionKind::Failed);
        return Err(format!("{failed} promotions failed, first: {first:?}").into());
    }
    let measured = Measured {
        time,
        cpu,
        double_cpu,
        calls: stand.fake.requests().len(),
        writes: stand.fake.write_count(),
        opened: outcome.count(&ActionKind::Opened) + outcome.count(&ActionKind::Updated),
    };
    Ok((measured, outcome))
}

/// A tokio runtime like the daemon's (two workers: the machine has two cores).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Logs to stderr when `RUST_LOG` asks for it.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
}

/// `--name VALUE` from the command line.
pub fn flag(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

/// `--name` present on the command line.
pub fn switch(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

/// `--services 0,200,2000` (0 is the sample), or `default`.
pub fn sizes(default: &[usize]) -> Result<Vec<usize>> {
    match flag("--services") {
        None => Ok(default.to_vec()),
        Some(list) => Ok(list
            .split(',')
            .map(|n| n.trim().parse())
            .collect::<std::result::Result<_, _>>()?),
    }
}

/// Runs this benchmark's executable again for one size (`--child SIZE` plus `extra`), so
/// that its peak memory is that size's alone; returns the JSON line it printed after `ROW `.
pub fn child(size: usize, extra: &[String]) -> Result<serde_json::Value> {
    let output = std::process::Command::new(std::env::current_exe()?)
        .args(["--child", &size.to_string()])
        .args(extra)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !output.status.success() {
        return Err(format!("the measuring process failed: {}", output.status).into());
    }
    let stdout = String::from_utf8(output.stdout)?;
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ROW "))
        .ok_or("the measuring process printed no row")?;
    Ok(serde_json::from_str(line)?)
}

/// Seconds, readably.
pub fn fmt_secs(s: f64) -> String {
    if s >= 10.0 {
        format!("{s:.1} s")
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.0} ms", s * 1e3)
    } else {
        format!("{:.2} ms", s * 1e3)
    }
}
