//! The daemon's idle cycle, side by side with today's full re-read, in one run: per size, two
//! stands of the same synthetic repository against the GitLab double, one whose reconciler
//! reads everything every cycle (`reconcile --once`, and the daemon before issue 16) and one
//! that keeps what each cycle read (the daemon). Each runs a first cycle, idle cycles, a
//! cycle after one release (one commit changing one service's dev tag), and idle again; wall
//! time, promoter's CPU (getrusage, less the double's threads) and GitLab calls per cycle. The
//! cycles run in the daemon's scope between schedules (qa and prod are scheduled, so nothing
//! opens: the cost measured is reading and planning).
//!
//! ```text
//! cargo bench --bench idle_cycle                                  # 200, 2,000, 10,000
//! cargo bench --bench idle_cycle -- --services 200 --idle 50
//! cargo bench --bench idle_cycle -- --services 2000 --idle 100 --path incremental   # to profile
//! cargo bench --bench idle_cycle -- --services 10000 --idle 1000 --releases 5 --path incremental
//! ```
//!
//! `--releases N`: the median of N cycles after a release each (one by default). `--settle S`:
//! RSS again after S seconds without a cycle. `--exit-after-idle`: leave after the idle cycles
//! with everything still held, for a heap profiler (`heaptrack`), whose "leaked" is then what
//! the daemon keeps between cycles.

#[path = "support/allocator.rs"]
mod allocator;
#[path = "../tests/it/support/fake_gitlab/mod.rs"]
#[allow(unused_imports)]
mod fake_gitlab;
#[path = "support/mod.rs"]
mod support;
#[path = "synthetic/mod.rs"]
mod synthetic;

use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as Span, Utc};
use promoter::reconcile::{ActionKind, Scope};
use support::{
    DOUBLE_THREADS, Stand, Transport, cpu_secs, fmt_secs, stand_over, status_kib, threads_cpu_secs,
};
use synthetic::Result;

/// One cycle's cost.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    wall: Duration,
    cpu: f64,
    calls: usize,
    /// CPU of the tag-age metrics and the dashboard issue text the daemon derives after each
    /// reconcile.
    publish: f64,
}

thread_local! {
    /// The daemon's metrics, as the cycles of one benchmark run set them.
    static METRICS: promoter::metrics::Metrics = promoter::metrics::Metrics::new();
}

/// One daemon cycle at `now`: the reconcile in the scope of no fired schedule.
async fn cycle(stand: &Stand, now: DateTime<Utc>) -> Result<Cost> {
    stand.fake.reset_log();
    let (started, cpu, double) = (Instant::now(), cpu_secs(), threads_cpu_secs(DOUBLE_THREADS));
    let outcome = stand
        .reconciler
        .run_once(&Scope::default(), &[], now)
        .await?;
    let wall = started.elapsed();
    let double = threads_cpu_secs(DOUBLE_THREADS) - double;
    let opened = outcome.count(&ActionKind::Opened) + outcome.count(&ActionKind::Failed);
    if opened > 0 {
        return Err(format!("the cycle was not idle: {:?}", outcome.actions).into());
    }
    let cpu = cpu_secs() - cpu - double;
    // What the daemon does with the dashboard after the reconcile: the tag-age metrics and the
    // issue text to compare with the issue's (the page is rendered when someone asks for it).
    let rendering = cpu_secs();
    if let Some(data) = &outcome.dashboard {
        METRICS.with(|m| m.set_tag_ages(data));
        std::hint::black_box(promoter::dashboard::markdown::markdown(data));
    }
    Ok(Cost {
        wall,
        cpu,
        calls: stand.fake.requests().len(),
        publish: cpu_secs() - rendering,
    })
}

/// The median wall time and mean CPU of `costs`.
fn summary(costs: &[Cost]) -> Cost {
    let mut walls: Vec<Duration> = costs.iter().map(|c| c.wall).collect();
    walls.sort();
    Cost {
        wall: walls[walls.len() / 2],
        cpu: costs.iter().map(|c| c.cpu).sum::<f64>() / costs.len() as f64,
        calls: costs.iter().map(|c| c.calls).max().unwrap_or(0),
        publish: costs.iter().map(|c| c.publish).sum::<f64>() / costs.len() as f64,
    }
}

/// The row of one path: first cycle, idle, after one release, idle again.
struct Row {
    first: Cost,
    idle: Cost,
    release: Cost,
    idle_after: Cost,
    /// VmRSS (KiB) after the first cycle and after the idle cycles.
    rss: (u64, u64),
}

async fn measure(services: usize, incremental: bool, idle: usize) -> Result<Row> {
    // Over `git://`, as from GitLab: the server builds the packs the mirror fetches.
    let stand = stand_over(services, false, incremental, Transport::GitDaemon).await?;
    let mut now = stand.now;
    // The daemon's resync interval by default: an idle daemon cycles that often.
    let mut tick = || {
        now += Span::minutes(5);
        now
    };
    let first = cycle(&stand, tick()).await?;
    let rss_first = status_kib("VmRSS");
    let mut costs = Vec::new();
    for n in 1..=idle {
        costs.push(cycle(&stand, tick()).await?);
        if [1, 10, 100, 250, 500, 750].contains(&n) {
            eprintln!(
                "   after {n} idle cycles: VmRSS {} MB",
                status_kib("VmRSS") / 1024
            );
        }
    }
    let idle_cost = summary(&costs);
    let rss_idle = status_kib("VmRSS");
    // Anonymous memory (the heap: what promoter and the double keep) against file-backed
    // pages (mapped pack files, the binary), after the idle cycles.
    eprintln!(
        "   after {idle} idle cycles: VmRSS {} MB = RssAnon {} MB + RssFile {} MB",
        rss_idle / 1024,
        status_kib("RssAnon") / 1024,
        status_kib("RssFile") / 1024
    );
    if let Some(secs) = support::flag("--settle") {
        std::thread::sleep(Duration::from_secs(secs.parse()?));
        eprintln!(
            "   after {secs} s without a cycle: VmRSS {} MB = RssAnon {} MB + RssFile {} MB",
            status_kib("VmRSS") / 1024,
            status_kib("RssAnon") / 1024,
            status_kib("RssFile") / 1024
        );
    }
    // `--exit-after-idle`: leave here with everything still held, so that a heap profiler
    // (`heaptrack`) reports what the daemon keeps between cycles as "leaked".
    if support::switch("--exit-after-idle") {
        std::process::exit(0);
    }
    // `--releases N`: N cycles after a release each (one commit changing one service's dev
    // tag, another service each time), for their median; one by default.
    let releases: usize = support::flag("--releases")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1)
        .max(1);
    let mut after_release = Vec::new();
    for i in 0..releases {
        let dir = synthetic::service_dir("dev", i % stand.services);
        let at = tick();
        let major = 9 + (i / stand.services) as u32;
        synthetic::release(&stand.bare, &[dir], major, at.timestamp() - 60)?;
        after_release.push(cycle(&stand, at).await?);
    }
    let release = summary(&after_release);
    let mut after = Vec::new();
    for _ in 0..idle.min(5) {
        after.push(cycle(&stand, tick()).await?);
    }
    Ok(Row {
        first,
        idle: idle_cost,
        release,
        idle_after: summary(&after),
        rss: (rss_first, rss_idle),
    })
}

fn cell(c: &Cost) -> String {
    format!(
        "{} ({} CPU), {} calls",
        fmt_secs(c.wall.as_secs_f64()),
        fmt_secs(c.cpu),
        c.calls
    )
}

fn main() -> Result<()> {
    support::init_tracing();
    let sizes = support::sizes(&[200, 2_000, 10_000])?;
    let idle: usize = support::flag("--idle")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10)
        .max(1);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!("== idle cycle: {sizes:?} services, {idle} idle cycles each; load {load}");
    // `--path incremental` or `--path full`: one path only (for profiling).
    let only = support::flag("--path");
    let runtime = support::runtime()?;
    println!(
        "| services × 3 envs | path | first cycle | idle cycle (median, mean CPU) | after one release | idle again | VmRSS after first / after idle cycles | tag-age metrics and issue text per idle cycle (CPU) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    for &services in &sizes {
        // The daemon's path first, so that its memory is not the full path's leftovers.
        for (incremental, name) in [(true, "incremental (daemon)"), (false, "full re-read")] {
            let path = if incremental { "incremental" } else { "full" };
            if only.as_deref().is_some_and(|o| o != path) {
                continue;
            }
            eprintln!("-- {services} services, {name}");
            // The full path's idle cycles cost seconds at 10,000: a few tell its median.
            let cycles = if incremental { idle } else { idle.min(3) };
            let row = runtime.block_on(measure(services, incremental, cycles))?;
            let json = |c: &Cost| serde_json::json!({"secs": c.wall.as_secs_f64(), "cpu": c.cpu, "calls": c.calls, "publish_cpu": c.publish});
            // For scripts/bench-plot.
            eprintln!(
                "JSON {}",
                serde_json::json!({
                    "services": services,
                    "path": path,
                    "first": json(&row.first),
                    "idle": json(&row.idle),
                    "release": json(&row.release),
                    "idle_after": json(&row.idle_after),
                    "rss_kib": [row.rss.0, row.rss.1],
                })
            );
            println!(
                "| {services} | {name} | {} | {} | {} | {} | {} MB / {} MB | {} |",
                cell(&row.first),
                cell(&row.idle),
                cell(&row.release),
                cell(&row.idle_after),
                row.rss.0 / 1024,
                row.rss.1 / 1024,
                fmt_secs(row.idle.publish)
            );
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!();
    println!(
        "load average at the end: {}; peak RSS (VmHWM) {} MB",
        load.trim(),
        status_kib("VmHWM") / 1024
    );
    Ok(())
}
