//! Reconcile benchmark: wall time and GitLab API calls of `reconcile` against the GitLab test
//! double (the same stateful double the integration tests use) and a bare repository, for the
//! sample repository and synthetic ones. Scenarios, in order, on one stand: the first
//! reconcile (every due promotion opened), an idle one (nothing new), one new promotion (one
//! dev tag released), 5% due (dev tags of 5% of the services released in one commit), and
//! idle again. Each size runs in its own child process, so its peak RSS is its own.
//!
//! ```text
//! cargo bench --bench reconcile                          # the sample, 200 and 2000 services
//! cargo bench --bench reconcile -- --services 10000      # one size (0 is the sample)
//! cargo bench --bench reconcile -- --services 200,2000   # per opened promotion, side by side
//! cargo bench --bench reconcile -- --services 200 --fresh  # rebuild the cached repository
//! ```
//!
//! Prints a Markdown table on stdout and one JSON line per size on stderr (`JSON {...}`).

#[path = "support/allocator.rs"]
mod allocator;
#[path = "../tests/it/support/fake_gitlab/mod.rs"]
#[allow(unused_imports)]
mod fake_gitlab;
#[path = "support/mod.rs"]
mod support;
#[path = "synthetic/mod.rs"]
mod synthetic;

use chrono::Duration as Span;
use serde_json::{Value, json};
use support::{fmt_secs, run, stand, status_kib};
use synthetic::Result;

/// Sizes a run without `--services` measures (0 is the sample).
const DEFAULT_SIZES: [usize; 3] = [0, 200, 2000];

/// Measures every scenario for one size; runs in the child process.
async fn measure(services: usize, fresh: bool) -> Result<Value> {
    let stand = stand(services, fresh).await?;
    let bare = stand.bare.clone();
    let rss_after_clone = status_kib("VmRSS");
    eprintln!("   cloned in {}", fmt_secs(stand.clone.as_secs_f64()));
    let (first, _) = run(&stand, stand.now).await?;
    eprintln!(
        "   first reconcile {} ({} MRs)",
        fmt_secs(first.time.as_secs_f64()),
        first.opened
    );
    let (idle, _) = run(&stand, stand.now + Span::minutes(5)).await?;
    synthetic::release(
        &bare,
        std::slice::from_ref(&stand.first_dev),
        99,
        stand.now.timestamp() - 7200,
    )?;
    let (one, _) = run(&stand, stand.now + Span::minutes(10)).await?;
    synthetic::release(&bare, &stand.five_percent, 98, stand.now.timestamp() - 5400)?;
    let (due, _) = run(&stand, stand.now + Span::minutes(20)).await?;
    let (idle_after, _) = run(&stand, stand.now + Span::minutes(25)).await?;
    let open = stand
        .fake
        .merge_requests()
        .iter()
        .filter(|m| m.state == "opened")
        .count();
    Ok(json!({
        "services": stand.services,
        "sample": services == 0,
        "clone_secs": stand.clone.as_secs_f64(),
        "clone_cpu": stand.clone_cpu,
        "first": first.json(),
        "idle": idle.json(),
        "one": one.json(),
        "due": due.json(),
        "due_released": stand.five_percent.len(),
        "idle_after": idle_after.json(),
        "open_mrs": open,
        "rss_after_clone_kib": rss_after_clone,
        "rss_end_kib": status_kib("VmRSS"),
        "peak_rss_kib": status_kib("VmHWM"),
    }))
}

/// `wall (promoter CPU / double CPU)`.
fn secs(row: &Value, scenario: &str) -> String {
    let get = |key: &str| match row[scenario][key].as_f64() {
        Some(s) if s < 0.005 => "0".to_string(), // CPU time counts in 10 ms ticks
        Some(s) => fmt_secs(s),
        None => "?".to_string(),
    };
    format!("{} ({} / {})", get("secs"), get("cpu"), get("double_cpu"))
}

fn calls(row: &Value, scenario: &str) -> String {
    format!("{} ({})", row[scenario]["calls"], row[scenario]["writes"])
}

/// Wall and promoter CPU seconds of the first reconcile per MR it opened.
fn per_opened(row: &Value) -> Option<(f64, f64)> {
    let opened = row["first"]["opened"].as_f64().filter(|n| *n > 0.0)?;
    Some((
        row["first"]["secs"].as_f64()? / opened,
        row["first"]["cpu"].as_f64()? / opened,
    ))
}

/// The first reconcile per opened promotion, the sizes side by side, each against the
/// smallest synthetic size: the push must not grow with the promotions already open.
fn report_per_opened(rows: &[Value]) {
    let synthetic: Vec<(&Value, (f64, f64))> = rows
        .iter()
        .filter(|r| r["sample"].as_bool() != Some(true))
        .filter_map(|r| Some((r, per_opened(r)?)))
        .collect();
    let Some((_, (base_wall, base_cpu))) = synthetic.first().copied() else {
        return;
    };
    println!();
    println!("First reconcile, per opened promotion (push + MR):");
    println!();
    println!(
        "| services × envs | MRs opened | wall per MR | promoter CPU per MR | × wall of the smallest | × CPU |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (r, (wall, cpu)) in &synthetic {
        println!(
            "| {} × 3 | {} | {} | {} | {:.1} | {:.1} |",
            r["services"],
            r["first"]["opened"],
            fmt_secs(*wall),
            fmt_secs(*cpu),
            wall / base_wall,
            cpu / base_cpu.max(1e-9),
        );
    }
}

fn report(rows: &[Value]) {
    println!(
        "| repository | first clone | first reconcile | calls | MRs opened | idle reconcile | API calls idle (writes) | one new promotion | API calls (writes) | 5% due: released | 5% due reconcile | MRs opened/updated | API calls (writes) | peak RSS |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let name = if r["sample"].as_bool() == Some(true) {
            "sample (2 × 3)".to_string()
        } else {
            format!("synthetic {} × 3", r["services"])
        };
        println!(
            "| {name} | {} ({}) | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} MB |",
            fmt_secs(r["clone_secs"].as_f64().unwrap_or(f64::NAN)),
            fmt_secs(r["clone_cpu"].as_f64().unwrap_or(f64::NAN)),
            secs(r, "first"),
            r["first"]["calls"],
            r["first"]["opened"],
            secs(r, "idle"),
            calls(r, "idle"),
            secs(r, "one"),
            calls(r, "one"),
            r["due_released"],
            secs(r, "due"),
            r["due"]["opened"],
            calls(r, "due"),
            r["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0,
        );
    }
    println!();
    println!(
        "Times are wall (CPU seconds of promoter / of the GitLab double, which runs in the same process on its own threads); the clone's CPU is promoter's."
    );
    println!();
    for r in rows {
        println!(
            "- {} services: idle again after 5% due {} with {} calls ({} writes); {} MRs open at the end; RSS {:.0} MB after the clone, {:.0} MB at the end.",
            r["services"],
            secs(r, "idle_after"),
            r["idle_after"]["calls"],
            r["idle_after"]["writes"],
            r["open_mrs"],
            r["rss_after_clone_kib"].as_f64().unwrap_or(0.0) / 1024.0,
            r["rss_end_kib"].as_f64().unwrap_or(0.0) / 1024.0,
        );
    }
}

fn main() -> Result<()> {
    support::init_tracing();
    let fresh = support::switch("--fresh");
    if let Some(size) = support::flag("--child") {
        let size: usize = size.parse()?;
        let row = support::runtime()?.block_on(measure(size, fresh))?;
        println!("ROW {row}");
        return Ok(());
    }
    let mut rows = Vec::new();
    for size in support::sizes(&DEFAULT_SIZES)? {
        eprintln!("== reconcile: {size} services (0: the sample)");
        let extra: Vec<String> = if fresh {
            vec!["--fresh".into()]
        } else {
            vec![]
        };
        let row = support::child(size, &extra)?;
        eprintln!("JSON {row}");
        rows.push(row);
    }
    report(&rows);
    report_per_opened(&rows);
    Ok(())
}
