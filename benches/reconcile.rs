//! Reconcile benchmark: wall time and GitLab API calls of `reconcile` against the GitLab test
//! double (the same stateful double the integration tests use) and a bare repository, for the
//! sample repository and synthetic ones: the first reconcile (every due promotion opened), an
//! idle one (nothing new), and one with a single new promotion.
//!
//! ```text
//! cargo bench --bench reconcile                     # the sample, 200 and 2000 services
//! cargo bench --bench reconcile -- --services 2000
//! ```

#[path = "../tests/it/support/fake_gitlab/mod.rs"]
#[allow(unused_imports)]
mod fake_gitlab;
#[path = "synthetic/mod.rs"]
mod synthetic;

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use fake_gitlab::FakeGitLab;
use promoter::forge::gitlab::{Connection, GitLab, RetryPolicy};
use promoter::git::mirror::{Author, Credentials, Mirror};
use promoter::promotion::describe::Templates;
use promoter::reconcile::{ActionKind, Config, Outcome, Reconciler, Scope};
use synthetic::{DAY, Result, START};

const COMMITS: usize = 40;

struct Row {
    name: String,
    services: usize,
    clone: Duration,
    first: Measured,
    idle: Measured,
    one: Measured,
}

struct Measured {
    time: Duration,
    calls: usize,
    writes: usize,
    opened: usize,
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

/// The sample repository (environments/, policies/, clusters/), committed once at START.
fn build_sample(root: &Path) -> Result<usize> {
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    for folder in ["environments", "policies", "clusters"] {
        copy_dir(&top.join(folder), &root.join(folder))?;
    }
    let repo = git2::Repository::init(root)?;
    let mut index = repo.index()?;
    index.add_all(["*"], git2::IndexAddOption::DEFAULT, None)?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = git2::Signature::new("dev", "dev@example.com", &git2::Time::new(START, 0))?;
    repo.commit(Some("HEAD"), &sig, &sig, "import the sample", &tree, &[])?;
    Ok(2)
}

/// Commits one new dev tag for the first service on the bare repository's branch.
fn release_one(bare: &Path, values: &str, release: &str, at: i64) -> Result<()> {
    let repo = git2::Repository::open_bare(bare)?;
    let head = repo.head()?.peel_to_commit()?;
    let tree = head.tree()?;
    let mut builder = git2::build::TreeUpdateBuilder::new();
    for path in [values, release] {
        let blob = tree
            .get_path(Path::new(path))?
            .to_object(&repo)?
            .peel_to_blob()?;
        let text = String::from_utf8(blob.content().to_vec())?;
        let bumped = bump_tag(&text).ok_or("no tag to bump")?;
        builder.upsert(path, repo.blob(bumped.as_bytes())?, git2::FileMode::Blob);
    }
    let new_tree = repo.find_tree(builder.create_updated(&repo, &tree)?)?;
    let sig = git2::Signature::new("ci", "ci@example.com", &git2::Time::new(at, 0))?;
    let branch = repo.head()?.name()?.to_string();
    repo.commit(Some(&branch), &sig, &sig, "release", &new_tree, &[&head])?;
    Ok(())
}

/// `tag: X` / `:X"` with X's major version bumped to 99.
fn bump_tag(text: &str) -> Option<String> {
    let re = regex::Regex::new(r#"(tag: |:)(\d+)\.(\d+)\.(\d+)("?)"#).ok()?;
    let found = re.captures(text)?;
    let whole = found.get(0)?;
    let replaced = format!(
        "{}{}.{}.{}{}",
        &found[1], 99, &found[3], &found[4], &found[5]
    );
    Some(format!(
        "{}{}{}",
        &text[..whole.start()],
        replaced,
        &text[whole.end()..]
    ))
}

async fn run(
    r: &Reconciler<GitLab>,
    fake: &FakeGitLab,
    now: DateTime<Utc>,
) -> Result<(Measured, Outcome)> {
    fake.reset_log();
    let started = Instant::now();
    let outcome = r.run_once(&Scope::all(), &[], now).await?;
    let time = started.elapsed();
    let failed = outcome.count(&ActionKind::Failed);
    if failed > 0 {
        return Err(format!("{failed} promotions failed").into());
    }
    let measured = Measured {
        time,
        calls: fake.requests().len(),
        writes: fake.write_count(),
        opened: outcome.count(&ActionKind::Opened) + outcome.count(&ActionKind::Updated),
    };
    Ok((measured, outcome))
}

async fn measure(name: &str, services: usize) -> Result<Row> {
    let work = tempfile::tempdir()?;
    let (envs, first_values) = if services == 0 {
        build_sample(work.path())?;
        (3, "clusters/dev/calculator/maths-api".to_string())
    } else {
        synthetic::build(work.path(), services, COMMITS)?;
        (3, synthetic::service_dir("dev", 0))
    };
    let _ = envs;
    let origin = tempfile::tempdir()?;
    let bare = origin.path().join("origin.git");
    git2::build::RepoBuilder::new()
        .bare(true)
        .clone(&format!("file://{}", work.path().display()), &bare)?;
    let fake = FakeGitLab::start(&bare, "acme/platform").await;
    let connection = Connection {
        url: fake.url().parse()?,
        token: FakeGitLab::BOT_TOKEN.into(),
        project: "acme/platform".into(),
        policy: RetryPolicy::default(),
        budget: promoter::forge::gitlab::budget::BudgetSettings {
            per_second: 1e9,
            burst: u32::MAX,
        },
    };
    let forge = GitLab::connect(&connection).await?;
    let state = tempfile::tempdir()?;
    let started = Instant::now();
    let url = format!("file://{}", bare.display());
    let dir = state.path().join("mirror.git");
    let mirror =
        tokio::task::spawn_blocking(move || Mirror::open(&dir, &url, Credentials::None)).await??;
    let clone = started.elapsed();
    let config = Config {
        branch: "master".into(),
        author: Author {
            name: "promoter".into(),
            email: "p@example.com".into(),
        },
    };
    let branch = git2::Repository::open_bare(&bare)?
        .head()?
        .shorthand()?
        .to_string();
    let config = Config { branch, ..config };
    let reconciler = Reconciler::new(forge, mirror, config, Templates::load(None)?);

    // Two days after the last commit: every soak is over; before the year-end freeze.
    let last = START + (COMMITS as i64) * DAY;
    let now = Utc
        .timestamp_opt(last + 2 * DAY, 0)
        .single()
        .ok_or("time")?;
    let (first, _) = run(&reconciler, &fake, now).await?;
    let (idle, _) = run(&reconciler, &fake, now + chrono::Duration::minutes(5)).await?;
    release_one(
        &bare,
        &format!("{first_values}/values.yaml"),
        &format!("{first_values}/release.yml"),
        last + 2 * DAY - 7200,
    )?;
    let (one, _) = run(&reconciler, &fake, now + chrono::Duration::minutes(10)).await?;
    Ok(Row {
        name: name.to_string(),
        services,
        clone,
        first,
        idle,
        one,
    })
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn main() -> Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let mut sizes: Vec<usize> = vec![0, 200, 2000];
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--services") {
        sizes = args
            .get(i + 1)
            .ok_or("--services N[,N]")?
            .split(',')
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    for size in sizes {
        let name = if size == 0 {
            "sample".to_string()
        } else {
            format!("synthetic {size}")
        };
        eprintln!("== {name}");
        rows.push(runtime.block_on(measure(&name, size))?);
    }
    println!(
        "| repository | services x envs | first clone | first reconcile | MRs opened | idle reconcile | API calls idle (writes) | one new promotion | API calls (writes) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let services = if r.services == 0 { 2 } else { r.services };
        println!(
            "| {} | {} x 3 | {} | {} ({} calls) | {} | {} | {} ({}) | {} | {} ({}) |",
            r.name,
            services,
            ms(r.clone),
            ms(r.first.time),
            r.first.calls,
            r.first.opened,
            ms(r.idle.time),
            r.idle.calls,
            r.idle.writes,
            ms(r.one.time),
            r.one.calls,
            r.one.writes
        );
    }
    Ok(())
}
