//! One daemon serving many small projects: the real binary (`promoter daemon` with
//! `projects:`) against one GitLab host of N doubles (one per project, each a copy of the
//! sample repository), resyncing every `--resync` seconds. Measured from outside, in
//! `/proc/<pid>`: the daemon's resident memory once every project has reconciled and again
//! after `--idle` seconds of idle cycles, its CPU time over those seconds, the idle cycles run
//! (from its `/metrics`) and so the CPU per project cycle, and the host's requests per cycle.
//! Sizes side by side in one run.
//!
//! ```text
//! cargo bench --bench projects                        # 1 and 50 projects
//! cargo bench --bench projects -- --projects 1,10,50 --idle 60 --resync 2
//! ```

#[path = "support/allocator.rs"]
mod allocator;
#[path = "../tests/it/support/fake_gitlab/mod.rs"]
#[allow(unused_imports)]
mod fake_gitlab;
#[path = "support/mod.rs"]
mod support;
#[path = "synthetic/mod.rs"]
mod synthetic;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fake_gitlab::FakeGitLab;
use fake_gitlab::host::FakeHost;
use support::{cpu_secs_in, fmt_secs, status_kib_in};
use synthetic::Result;

struct Row {
    projects: usize,
    ready_after: Duration,
    rss_ready: u64,
    rss_idle: u64,
    peak: u64,
    cycles: f64,
    cpu: f64,
    wall_mean: f64,
    requests: usize,
}

/// The daemon, killed when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The sum of `family`'s samples in an exposition (every project's).
fn sum(metrics: &str, family: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(family) && l[family.len()..].starts_with('{'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn measure(projects: usize, idle: Duration, resync: u64) -> Result<Row> {
    let dir = tempfile::Builder::new()
        .prefix("promoter-bench-projects-")
        .tempdir()?;
    let sample = dir.path().join("sample");
    support::build_sample(&sample)?;
    let branch = git2::Repository::open(&sample)?
        .head()?
        .shorthand()?
        .to_string();
    let mut doubles = Vec::with_capacity(projects);
    let mut entries = String::new();
    for i in 0..projects {
        let bare = dir.path().join(format!("origin-{i}.git"));
        synthetic::bare_origin(&sample, &bare)?;
        let path = format!("acme/project-{i}");
        let double = FakeGitLab::start_as(&bare, &path, 1000 + i as u64).await;
        entries.push_str(&format!(
            "  - name: project-{i}\n    gitlab:\n      project: {path}\n    git:\n      url: file://{}\n",
            bare.display()
        ));
        doubles.push(double);
    }
    let host = FakeHost::start(&doubles.iter().collect::<Vec<_>>()).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let key = dir.path().join("signing_key");
    std::fs::write(
        &key,
        promoter::git::signing::private_openssh(&promoter::git::signing::key_from_seed(
            [7; 32], "bench",
        )),
    )?;
    let config = dir.path().join("promoter.yaml");
    std::fs::write(
        &config,
        format!(
            "gitlab:\n  url: {}\n  token: {}\n  requests_per_second: 1000000\n  burst: 1000000\ngit:\n  branch: {branch}\n  signing_key_file: {}\nstate_dir: {}\nserver:\n  listen: 127.0.0.1:{port}\nreconcile:\n  resync_interval: {resync}s\nprojects:\n{entries}",
            host.url(),
            FakeGitLab::BOT_TOKEN,
            key.display(),
            dir.path().join("state").display(),
        ),
    )?;
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_promoter"))
        .arg("--config")
        .arg(&config)
        .arg("daemon")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("daemon.log"))?)
        .spawn()?;
    let mut daemon = Daemon(child);
    let log = || std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
    let pid = daemon.0.id().to_string();
    let http = reqwest::Client::new();
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    let scrape = async || -> String {
        match http.get(&metrics_url).send().await {
            Ok(answer) => answer.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    };
    // Ready: every project has one successful reconcile.
    loop {
        let text = scrape().await;
        let done = text
            .lines()
            .filter(|l| {
                l.starts_with("promoter_reconciles_total{") && l.contains("outcome=\"success\"")
            })
            .filter(|l| l.rsplit(' ').next().is_some_and(|v| v != "0"))
            .count();
        if done == projects {
            break;
        }
        if let Some(status) = daemon.0.try_wait()? {
            return Err(format!("the daemon exited ({status}):\n{}", log()).into());
        }
        if started.elapsed() > Duration::from_secs(120) {
            return Err(format!(
                "only {done} of {projects} projects reconciled in 2 minutes:\n{}",
                log()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready_after = started.elapsed();
    let rss_ready = status_kib_in(&pid, "VmRSS");
    let before = scrape().await;
    let (cpu_before, requests_before) = (cpu_secs_in(&pid), host.requests());
    tokio::time::sleep(idle).await;
    let after = scrape().await;
    let cpu = cpu_secs_in(&pid) - cpu_before;
    let requests = host.requests() - requests_before;
    let count = "promoter_reconcile_duration_seconds_count";
    let total = "promoter_reconcile_duration_seconds_sum";
    let cycles = sum(&after, count) - sum(&before, count);
    let wall = sum(&after, total) - sum(&before, total);
    let row = Row {
        projects,
        ready_after,
        rss_ready,
        rss_idle: status_kib_in(&pid, "VmRSS"),
        peak: status_kib_in(&pid, "VmHWM"),
        cycles,
        cpu,
        wall_mean: if cycles > 0.0 {
            wall / cycles
        } else {
            f64::NAN
        },
        requests,
    };
    drop(daemon);
    drop(host);
    drop(doubles);
    Ok(row)
}

fn main() -> Result<()> {
    let sizes: Vec<usize> = support::flag("--projects")
        .unwrap_or_else(|| "1,50".to_string())
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<std::result::Result<_, _>>()?;
    let idle = Duration::from_secs(
        support::flag("--idle")
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(60),
    );
    let resync: u64 = support::flag("--resync")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(2);
    eprintln!(
        "== many projects in one daemon: {sizes:?} projects (the sample each), resync every {resync} s, {} s idle",
        idle.as_secs()
    );
    let runtime = support::runtime()?;
    let mut rows = Vec::new();
    for projects in sizes {
        eprintln!("-- {projects} projects");
        let row = runtime.block_on(measure(projects, idle, resync))?;
        eprintln!(
            "{}",
            serde_json::json!({
                "bench": "projects", "projects": row.projects,
                "ready_secs": row.ready_after.as_secs_f64(),
                "rss_ready_kib": row.rss_ready, "rss_idle_kib": row.rss_idle, "peak_kib": row.peak,
                "idle_cycles": row.cycles, "cpu_secs": row.cpu, "cycle_wall_secs": row.wall_mean,
                "requests": row.requests,
            })
        );
        rows.push(row);
    }
    println!(
        "| projects | all reconciled after | RSS then | RSS after {} s idle | peak RSS | idle cycles | mean cycle (wall) | daemon CPU per cycle | GitLab requests per cycle |",
        idle.as_secs()
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let per = |x: f64| {
            if r.cycles > 0.0 {
                x / r.cycles
            } else {
                f64::NAN
            }
        };
        println!(
            "| {} | {} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.0} | {} | {} | {:.1} |",
            r.projects,
            fmt_secs(r.ready_after.as_secs_f64()),
            r.rss_ready as f64 / 1024.0,
            r.rss_idle as f64 / 1024.0,
            r.peak as f64 / 1024.0,
            r.cycles,
            fmt_secs(r.wall_mean),
            fmt_secs(per(r.cpu)),
            per(r.requests as f64),
        );
    }
    Ok(())
}
