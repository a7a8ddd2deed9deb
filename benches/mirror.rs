//! Mirror benchmark: the cost of the first clone of the environments' repository into
//! `state_dir` (`Mirror::open` on an empty directory) against the incremental fetch every
//! reconcile makes (`Mirror::fetch`): with nothing new, after one service's release, and after
//! a day's worth of CI releases (5% of the services in one commit), for synthetic repositories
//! of each size, over two transports:
//!
//! - `file://`: libgit2's local transport; the "server" side (walking the objects, building the
//!   pack with delta search) runs inside promoter's process, so its CPU time is an upper bound;
//! - `git://`: `git daemon` on 127.0.0.1 serves the bare origin, git's `upload-pack` builds the
//!   pack in its own process as GitLab's Gitaly would, and promoter's side is what it pays
//!   against a real server: negotiate, receive, index. No network latency or bandwidth limit.
//!
//! ```text
//! cargo bench --bench mirror                        # 200, 2000 and 10000 services
//! cargo bench --bench mirror -- --services 2000 --repeat 5 --transport git
//! ```

#[path = "support/allocator.rs"]
mod allocator;
#[path = "support/git_daemon.rs"]
mod git_daemon;
#[path = "support/process.rs"]
#[allow(dead_code)]
mod process;
#[path = "synthetic/mod.rs"]
mod synthetic;

use std::path::Path;
use std::time::Instant;

use process::cpu_secs;
use promoter::git::mirror::{Author, BranchUpdate, Credentials, MAX_BRANCHES_PER_PUSH, Mirror};
use synthetic::{DAY, Result, START};

const DEFAULT_SIZES: [usize; 3] = [200, 2000, 10000];
const COMMITS: usize = 40;

fn flag(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

/// Wall and CPU seconds of one run.
type Sample = (f64, f64);

/// Other promotion branches on the remote; one push from the view, from the mirror, and per
/// branch of four pushed together.
type PushRow = (usize, Sample, Sample, Sample);

/// The minimum wall time and the minimum CPU time.
fn stats(samples: Vec<Sample>) -> Sample {
    samples
        .into_iter()
        .fold((f64::INFINITY, f64::INFINITY), |(w, c), (sw, sc)| {
            (w.min(sw), c.min(sc))
        })
}

fn one(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.1} ms", s * 1e3)
    }
}

/// `wall (cpu)`.
fn fmt(s: Sample) -> String {
    format!("{} ({})", one(s.0), one(s.1))
}

/// Wall and CPU time of `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Sample) {
    let (started, cpu) = (Instant::now(), cpu_secs());
    let out = f();
    (out, (started.elapsed().as_secs_f64(), cpu_secs() - cpu))
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

struct Row {
    services: usize,
    transport: &'static str,
    clone: Sample,
    mirror_mb: f64,
    idle: Sample,
    one: Sample,
    day: Sample,
    day_released: usize,
    /// Pushing one promotion branch with this many other promotion branches on the remote:
    /// as reconcile does (`push_onto`, from the push base's view) and from the mirror itself
    /// (`push`, what every push did before the view); then, per branch, four branches pushed
    /// together (`push_all_onto`, as reconcile pushes the next promotions it opens).
    push: Vec<PushRow>,
    /// The push base's first fetch (once per `state_dir`), with the push that caused it.
    base_fetch: Sample,
}

/// Promotion branches on the remote for the push measurements: 0, 100 and 1,000 (as many as
/// there are services, at most: one per service in qa).
fn branch_counts(services: usize) -> Vec<usize> {
    let mut counts: Vec<usize> = [0, 100, 1000].iter().map(|n| (*n).min(services)).collect();
    counts.dedup();
    counts
}

fn measure(services: usize, repeat: usize, transport: &'static str) -> Result<Row> {
    let work = synthetic::cached(services, COMMITS, false)?;
    let origin = tempfile::Builder::new()
        .prefix("promoter-bench-origin-")
        .tempdir()?;
    let bare = origin.path().join("origin.git");
    synthetic::bare_origin(&work, &bare)?;
    let (_daemon, url) = match transport {
        "git" => {
            let daemon = git_daemon::GitDaemon::start(origin.path())?;
            let url = format!("git://127.0.0.1:{}/origin.git", daemon.port);
            (Some(daemon), url)
        }
        _ => (None, format!("file://{}", bare.display())),
    };
    let branch = git2::Repository::open_bare(&bare)?
        .head()?
        .shorthand()?
        .to_string();

    let state = tempfile::Builder::new()
        .prefix("promoter-bench-state-")
        .tempdir()?;
    let mut clones = Vec::new();
    let mut mirror_mb = 0.0;
    for i in 0..repeat {
        let dir = state.path().join(format!("clone-{i}"));
        let (mirror, took) = timed(|| Mirror::open(&dir, &url, Credentials::None));
        let mirror = mirror?;
        clones.push(took);
        drop(mirror);
        mirror_mb = dir_bytes(&dir) as f64 / 1e6;
        std::fs::remove_dir_all(&dir)?;
    }

    let dir = state.path().join("mirror.git");
    let mut mirror = Mirror::open(&dir, &url, Credentials::None)?;
    let time_fetch = |mirror: &mut Mirror| -> Result<Sample> {
        let (fetched, took) = timed(|| mirror.fetch(&branch));
        fetched?;
        Ok(took)
    };
    let mut idle = Vec::new();
    for _ in 0..repeat {
        idle.push(time_fetch(&mut mirror)?);
    }
    let last = START + (COMMITS as i64 - 1) * DAY;
    let (mut one, mut day) = (Vec::new(), Vec::new());
    let five = synthetic::five_percent(services);
    for i in 0..repeat {
        let at = last + (i as i64 + 1) * DAY;
        synthetic::release(
            &bare,
            &[synthetic::service_dir("dev", 0)],
            50 + i as u32,
            at,
        )?;
        one.push(time_fetch(&mut mirror)?);
        synthetic::release(&bare, &five, 70 + i as u32, at + 3600)?;
        day.push(time_fetch(&mut mirror)?);
    }

    // Push one promotion commit (one file changed) to a new branch, as reconcile does for every
    // promotion it opens, with more and more other promotion branches on the remote.
    let author = Author {
        name: "promoter".into(),
        email: "p@example.com".into(),
        keys: promoter::git::signing::SigningKeys::new(promoter::git::signing::key_from_seed(
            [7; 32], "bench",
        )),
    };
    let last_plus = last + 10 * DAY;
    let bench_push =
        |mirror: &Mirror, round: String, head: git2::Oid, onto: bool| -> Result<Sample> {
            let path = format!(
                "{}/values.yaml",
                synthetic::service_dir("prod", services - 1)
            );
            let text = format!("# push {round}\n");
            let commit =
                mirror.commit_files(head, &[(path, Some(text))], "bench", &author, last_plus)?;
            let target = format!("promoter/prod/bench-{round}");
            // `push_onto` as reconcile pushes a promotion: leased, only onto the target's head.
            let (pushed, took) = timed(|| {
                if onto {
                    mirror.push_onto(commit, &target, None, &branch, head)
                } else {
                    mirror.push(commit, &target, None)
                }
            });
            pushed?;
            Ok(took)
        };
    // `push_all_onto` with as many promotions as one push carries; per branch.
    let bench_batch = |mirror: &Mirror, round: String, head: git2::Oid| -> Result<Sample> {
        let batch = (0..MAX_BRANCHES_PER_PUSH)
            .map(|k| {
                let path = format!(
                    "{}/values.yaml",
                    synthetic::service_dir("prod", services - 1 - k.min(services - 1))
                );
                let text = format!("# push {round}-{k}\n");
                let commit = mirror.commit_files(
                    head,
                    &[(path, Some(text))],
                    "bench",
                    &author,
                    last_plus,
                )?;
                Ok(BranchUpdate {
                    commit,
                    branch: format!("promoter/prod/bench-{round}-{k}"),
                    expected: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (pushed, took) = timed(|| mirror.push_all_onto(&batch, &branch, head));
        for answer in pushed {
            answer?;
        }
        let n = MAX_BRANCHES_PER_PUSH as f64;
        Ok((took.0 / n, took.1 / n))
    };
    let head = git2::Repository::open_bare(&bare)?
        .head()?
        .peel_to_commit()?
        .id();
    let base_fetch = bench_push(&mirror, "base".to_string(), head, true)?;
    let mut push = Vec::new();
    let mut existing = 0;
    for (round, count) in branch_counts(services).into_iter().enumerate() {
        synthetic::promotion_branches(&bare, existing, count - existing, last_plus)?;
        existing = count;
        let head = mirror.fetch(&branch)?;
        let (mut view, mut whole, mut batch) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..repeat {
            batch.push(bench_batch(&mirror, format!("{round}-{i}-batch"), head)?);
            view.push(bench_push(&mirror, format!("{round}-{i}"), head, true)?);
            whole.push(bench_push(
                &mirror,
                format!("{round}-{i}-mirror"),
                head,
                false,
            )?);
        }
        push.push((count, stats(view), stats(whole), stats(batch)));
    }

    Ok(Row {
        services,
        transport,
        clone: stats(clones),
        mirror_mb,
        idle: stats(idle),
        one: stats(one),
        day: stats(day),
        day_released: five.len(),
        push,
        base_fetch,
    })
}

fn main() -> Result<()> {
    let sizes: Vec<usize> = match flag("--services") {
        Some(list) => list
            .split(',')
            .map(|n| n.trim().parse())
            .collect::<std::result::Result<_, _>>()?,
        None => DEFAULT_SIZES.to_vec(),
    };
    let repeat: usize = flag("--repeat")
        .map(|r| r.parse())
        .transpose()?
        .unwrap_or(3)
        .max(1);
    let transports: Vec<&'static str> = match flag("--transport").as_deref() {
        Some("file") => vec!["file"],
        Some("git") => vec!["git"],
        None | Some("both") => vec!["file", "git"],
        Some(other) => return Err(format!("--transport file|git|both, not {other}").into()),
    };
    let mut rows = Vec::new();
    for services in sizes {
        for &transport in &transports {
            eprintln!("== mirror: {services} services over {transport}://");
            let row = measure(services, repeat, transport)?;
            eprintln!(
                "JSON {}",
                serde_json::json!({
                    "services": row.services,
                    "transport": row.transport,
                    "clone": row.clone.0, "clone_cpu": row.clone.1,
                    "mirror_mb": row.mirror_mb,
                    "fetch_idle": row.idle.0, "fetch_one": row.one.0, "fetch_day": row.day.0,
                    "fetch_idle_cpu": row.idle.1, "fetch_one_cpu": row.one.1, "fetch_day_cpu": row.day.1,
                    "day_released": row.day_released,
                    "push": row.push.iter().map(|(n, s, m, b)| serde_json::json!({"branches": n, "secs": s.0, "cpu": s.1, "from_mirror_secs": m.0, "from_mirror_cpu": m.1, "four_together_per_branch_secs": b.0, "four_together_per_branch_cpu": b.1})).collect::<Vec<_>>(),
                    "push_base_first_fetch": row.base_fetch.0,
                })
            );
            rows.push(row);
        }
    }
    println!(
        "| services × envs | transport | first clone | mirror on disk | fetch, nothing new | fetch after 1 release | fetch after 5% released | clone ÷ 5% fetch |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} × 3 | {}:// | {} | {:.1} MB | {} | {} | {} ({} services) | {:.0}× |",
            r.services,
            r.transport,
            fmt(r.clone),
            r.mirror_mb,
            fmt(r.idle),
            fmt(r.one),
            fmt(r.day),
            r.day_released,
            r.clone.0 / r.day.0
        );
    }
    println!();
    println!(
        "Pushing one promotion branch (one file changed), by promotion branches already on the remote:"
    );
    println!();
    println!(
        "| services × envs | transport | push base's first fetch | push with 0 / 100 / 1,000 other promotion branches | four in one push, per branch | from the mirror (before) |"
    );
    println!("|---|---|---:|---:|---:|---:|");
    for r in &rows {
        let cell = |pick: &dyn Fn(&PushRow) -> Sample| {
            r.push
                .iter()
                .map(|p| format!("{}: {}", p.0, fmt(pick(p))))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        println!(
            "| {} × 3 | {}:// | {} | {} | {} | {} |",
            r.services,
            r.transport,
            fmt(r.base_fetch),
            cell(&|p| p.1),
            cell(&|p| p.3),
            cell(&|p| p.2),
        );
    }
    println!();
    println!(
        "Wall time (CPU time of promoter's process), each the minimum of {repeat} runs; CPU time has a 10 ms resolution."
    );
    Ok(())
}
