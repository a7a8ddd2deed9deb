//! Daemon memory benchmark: one process runs idle reconciles in a loop, as the daemon does
//! between triggers (the daemon's incremental `Reconciler` against the GitLab double, like the
//! reconcile benchmark), and samples its resident memory (`/proc/self/status`: VmRSS, split into
//! RssAnon and RssFile) after reconcile 1, 10, 100, 500 and 1000. Memory that grows with the
//! number of reconciles is a leak.
//!
//! ```text
//! cargo bench --bench daemon_rss                            # 200 services, 1000 reconciles
//! cargo bench --bench daemon_rss -- --services 0 --reconciles 5000   # the sample
//! ```
//!
//! The double runs in the same process (its request log is cleared before every reconcile and
//! it stores nothing for reads), so its memory is part of the figures.

#[path = "support/allocator.rs"]
mod allocator;
#[path = "../tests/it/support/fake_gitlab/mod.rs"]
#[allow(unused_imports)]
mod fake_gitlab;
#[path = "support/mod.rs"]
mod support;
#[path = "synthetic/mod.rs"]
mod synthetic;

use std::time::Instant;

use chrono::Duration as Span;
use support::{fmt_secs, run, stand_with, status_kib};
use synthetic::Result;

/// Reconciles after which memory is sampled (those up to `--reconciles`, and the last).
const CHECKPOINTS: [usize; 5] = [1, 10, 100, 500, 1000];

struct Sample {
    after: usize,
    rss: u64,
    anon: u64,
    file: u64,
    mean_secs: f64,
    calls: usize,
    writes: usize,
}

async fn measure(services: usize, reconciles: usize) -> Result<Vec<Sample>> {
    // The daemon's reconciler: it keeps what each cycle read (what must not grow).
    let stand = stand_with(services, false, true).await?;
    let (first, _) = run(&stand, stand.now).await?;
    eprintln!(
        "   first reconcile {}: {} MRs open; RSS {} MB",
        fmt_secs(first.time.as_secs_f64()),
        first.opened,
        status_kib("VmRSS") / 1024
    );
    let mut checkpoints: Vec<usize> = CHECKPOINTS
        .iter()
        .copied()
        .filter(|&c| c <= reconciles)
        .collect();
    if checkpoints.last() != Some(&reconciles) {
        checkpoints.push(reconciles);
    }
    let mut samples = Vec::new();
    let mut window = (Instant::now(), 0usize);
    let (mut calls, mut writes) = (0, 0);
    for i in 1..=reconciles {
        // The daemon's clock moves on: a reconcile every 30 s (a webhook or the resync).
        let now = stand.now + Span::seconds(30 * i as i64);
        let (m, _) = run(&stand, now).await?;
        calls = calls.max(m.calls);
        writes += m.writes;
        if m.opened > 0 {
            return Err(format!("reconcile {i} was not idle: {} MRs opened", m.opened).into());
        }
        if checkpoints.contains(&i) {
            let runs = i - window.1;
            samples.push(Sample {
                after: i,
                rss: status_kib("VmRSS"),
                anon: status_kib("RssAnon"),
                file: status_kib("RssFile"),
                mean_secs: window.0.elapsed().as_secs_f64() / runs as f64,
                calls,
                writes,
            });
            eprintln!("   after {i}: VmRSS {} MB", status_kib("VmRSS") / 1024);
            window = (Instant::now(), i);
        }
    }
    Ok(samples)
}

fn main() -> Result<()> {
    support::init_tracing();
    let services: usize = support::flag("--services")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(200);
    let reconciles: usize = support::flag("--reconciles")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1000)
        .max(1);
    eprintln!("== daemon RSS: {services} services (0: the sample), {reconciles} idle reconciles");
    let started = Instant::now();
    let samples = support::runtime()?.block_on(measure(services, reconciles))?;
    println!(
        "| idle reconciles | VmRSS | RssAnon | RssFile | mean reconcile since previous row | API calls per reconcile (max) | writes (total) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mb = |kib: u64| format!("{:.1} MB", kib as f64 / 1024.0);
    for s in &samples {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            s.after,
            mb(s.rss),
            mb(s.anon),
            mb(s.file),
            fmt_secs(s.mean_secs),
            s.calls,
            s.writes
        );
    }
    println!();
    println!(
        "{} services × 3 environments; peak RSS (VmHWM) {}; whole run {}.",
        services.max(2),
        mb(status_kib("VmHWM")),
        fmt_secs(started.elapsed().as_secs_f64())
    );
    Ok(())
}
