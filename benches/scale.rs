//! Scale benchmark: how promoter's read, plan, check and edit paths grow with the size of a
//! GitOps monorepo. Builds a synthetic repository (dev -> qa -> prod like the sample, N
//! services per environment, C commits of tag history one day apart) with git2, or takes it
//! from the cache under `target/bench-repos/`, then measures each path in a fresh child
//! process so that the peak RSS is that of the size alone.
//!
//! ```text
//! cargo bench --bench scale                          # 200, 2000 and 10000 services, 40 commits
//! cargo bench --bench scale -- --services 2000       # one size
//! cargo bench --bench scale -- --services 500,5000 --commits 100 --repeat 3
//! cargo bench --bench scale -- --services 2000 --fresh # rebuild the cached repository
//! cargo bench --bench scale -- --services 2000 --keep  # print its path, to profile
//!                                                    # `scale --measure DIR --services 2000`
//! ```
//!
//! Prints a Markdown table on stdout; progress and details go to stderr.

use std::error::Error;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use chrono::{DateTime, Utc};
use promoter::checkout;
use promoter::plan::{self, Facts, Verdict};
use promoter::repo::{self, DirTree, Snapshot};
use promoter::yaml::{self, Segment, YamlPath};
use serde_json::{Value, json};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// The sizes a run without `--services` measures.
const DEFAULT_SIZES: [usize; 3] = [200, 2000, 10000];
/// Edits per file for the edit primitive.
const EDITS: usize = 1000;
/// Edits of the large corpus file.
const BIG_EDITS: usize = 5;
/// The largest YAML file of the shared corpus, when present.
const BIG_FILE: &str = "/work/shared/corpus/files/argo-cd/manifests__install.yaml";
#[path = "support/allocator.rs"]
mod allocator;
#[path = "support/process.rs"]
#[allow(dead_code)]
mod process;
#[path = "synthetic/mod.rs"]
mod synthetic;

use synthetic::{DAY, ENVS, START, cached, service_dir};

// ---------------------------------------------------------------------------------------------
// Arguments

struct Args {
    sizes: Vec<usize>,
    commits: usize,
    repeat: Option<usize>,
    /// Print where the synthetic repositories are (they stay in the cache anyway).
    keep: bool,
    /// Rebuild the cached synthetic repositories.
    fresh: bool,
    /// Internal: measure the repository at this directory and print one JSON row.
    measure: Option<PathBuf>,
}

fn args() -> Result<Args> {
    let mut out = Args {
        sizes: Vec::new(),
        commits: 40,
        repeat: None,
        keep: false,
        fresh: false,
        measure: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--services" => {
                for n in value("--services")?.split(',') {
                    out.sizes.push(n.trim().parse()?);
                }
            }
            "--commits" => out.commits = value("--commits")?.parse()?,
            "--repeat" => out.repeat = Some(value("--repeat")?.parse()?),
            "--keep" => out.keep = true,
            "--fresh" => out.fresh = true,
            "--measure" => out.measure = Some(PathBuf::from(value("--measure")?)),
            // `cargo bench` passes `--bench`; filters and other flags do not apply here.
            _ => {}
        }
    }
    if out.sizes.is_empty() {
        out.sizes = DEFAULT_SIZES.to_vec();
    }
    if out.commits == 0 {
        return Err("--commits must be at least 1".into());
    }
    Ok(out)
}

fn repeats(args: &Args, services: usize) -> usize {
    args.repeat
        .unwrap_or(if services >= 1000 { 3 } else { 5 })
        .max(1)
}

fn main() -> Result<()> {
    let args = args()?;
    if let Some(dir) = &args.measure {
        let services = *args.sizes.first().ok_or("--measure needs --services")?;
        let row = measure(dir, services, args.commits, repeats(&args, services))?;
        println!("ROW {row}");
        return Ok(());
    }
    let mut rows = Vec::new();
    for &services in &args.sizes {
        eprintln!(
            "== {services} services x {} envs, {} commits",
            ENVS.len(),
            args.commits,
        );
        let started = Instant::now();
        let repo = cached(services, args.commits, args.fresh)?;
        let build_time = started.elapsed();
        // Measure in a fresh process: its VmHWM is the measurement's alone, not the build's.
        let output = Command::new(std::env::current_exe()?)
            .arg("--measure")
            .arg(&repo)
            .args([
                "--services",
                &services.to_string(),
                "--commits",
                &args.commits.to_string(),
            ])
            .args(["--repeat", &repeats(&args, services).to_string()])
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
        let mut row: Value = serde_json::from_str(line)?;
        row["build_s"] = json!(build_time.as_secs_f64());
        eprintln!("JSON {row}");
        rows.push(row);
        if args.keep {
            eprintln!("   the repository is {}", repo.display());
        }
    }
    report(&rows);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Measurement (in the child process)

/// Min and median of a few runs.
#[derive(Debug, Clone, Copy)]
struct Stats {
    min: f64,
    median: f64,
}

fn stats(mut samples: Vec<f64>) -> Stats {
    samples.sort_by(f64::total_cmp);
    Stats {
        min: samples[0],
        median: samples[samples.len() / 2],
    }
}

fn stats_json(s: Stats) -> Value {
    json!({ "min": s.min, "median": s.median })
}

/// `f`'s result, and the CPU seconds it took (10 ms resolution).
fn cpu<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let before = process::cpu_secs();
    let out = f();
    (out, process::cpu_secs() - before)
}

fn time<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let started = Instant::now();
    let out = f();
    (out, started.elapsed().as_secs_f64())
}

/// The process's peak resident set (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmHWM:")
                    .map(|v| v.trim().trim_end_matches("kB").trim().to_string())
            })
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Reads every file under the directories promoter looks at: the baseline.
fn read_files(root: &Path) -> (usize, usize) {
    fn walk(dir: &Path, out: &mut Vec<Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                walk(&entry.path(), out);
            } else if kind.is_file()
                && let Ok(bytes) = std::fs::read(entry.path())
            {
                out.push(bytes);
            }
        }
    }
    let mut contents = Vec::new();
    for top in ["clusters", "environments", "policies"] {
        walk(&root.join(top), &mut contents);
    }
    let contents = black_box(contents);
    (contents.len(), contents.iter().map(Vec::len).sum())
}

/// Seconds per `set_scalar` of `path` in document `doc`, over `n` edits to distinct values.
fn edit_time(src: &str, doc: usize, path: &YamlPath, n: usize) -> Result<Stats> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let value = format!("9.{}.{i}", i % 7);
        let (edit, secs) = time(|| yaml::set_scalar(src, doc, path, &value));
        let edit = edit?;
        assert!(edit.changed);
        black_box(edit);
        samples.push(secs);
    }
    Ok(stats(samples))
}

/// The first `image` scalar of `src`: its document and path.
fn first_image(src: &str) -> Result<(usize, YamlPath)> {
    let found = yaml::find_scalars(
        src,
        |_, p| matches!(p.last(), Some(Segment::Key(k)) if k == "image"),
    )?;
    let first = found.into_iter().next().ok_or("no `image` scalar")?;
    Ok((first.doc, first.path))
}

fn measure(root: &Path, services: usize, commits: usize, repeat: usize) -> Result<Value> {
    let open = Default::default();
    let last_commit =
        DateTime::<Utc>::from_timestamp(START + (commits as i64 - 1) * DAY, 0).ok_or("bad time")?;
    let now = last_commit + chrono::Duration::hours(12);

    // (b), (c), (d) first, so that the peak RSS read right after is that of planning alone.
    // Each measured path runs once untimed first (page cache, allocator, lazy statics).
    {
        let warm = checkout::read(root)?;
        let facts = Facts::offline(&warm.history, &open);
        black_box(plan::plan(&warm.snapshot, facts, &[], now));
    }
    let (mut read_s, mut plan_s, mut total_s) = (Vec::new(), Vec::new(), Vec::new());
    let mut total_cpu = Vec::new();
    let mut checkout = None;
    let mut verdicts = [0usize; 3];
    for _ in 0..repeat {
        drop(checkout.take());
        let (((co, read), (plan, planned)), used) = cpu(|| {
            let (co, read) = time(|| checkout::read(root));
            let planned = co.as_ref().ok().map(|co| {
                let facts = Facts::offline(&co.history, &open);
                time(|| plan::plan(&co.snapshot, facts, &[], now))
            });
            ((co, read), planned.unzip())
        });
        let co = co?;
        let (plan, planned) = (plan.ok_or("no plan")?, planned.ok_or("no plan")?);
        total_cpu.push(used);
        verdicts = [0; 3];
        for d in &plan.promotions {
            verdicts[match d.decision {
                Verdict::Promote => 0,
                Verdict::Blocked => 1,
                Verdict::UpToDate => 2,
            }] += 1;
        }
        black_box(plan);
        read_s.push(read);
        plan_s.push(planned);
        total_s.push(read + planned);
        checkout = Some(co);
    }
    let peak_plan_kib = peak_rss_kib();
    let checkout = checkout.expect("repeat >= 1");
    let found: usize = checkout.snapshot.services.values().map(|s| s.len()).sum();
    assert_eq!(
        found,
        services * ENVS.len(),
        "every service is found: {:?}",
        checkout.snapshot.findings.first()
    );

    // Where checkout::read goes: the snapshot, then the history walk.
    let (mut load_s, mut history_s) = (Vec::new(), Vec::new());
    let (mut load_cpu, mut history_cpu) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        let ((snapshot, load), load_used) = cpu(|| time(|| Snapshot::load(&DirTree::new(root))));
        let ((history, walked), walk_used) = cpu(|| time(|| checkout::history(root, &snapshot)));
        black_box(history?);
        load_s.push(load);
        history_s.push(walked);
        load_cpu.push(load_used);
        history_cpu.push(walk_used);
    }

    // (a) the baseline.
    black_box(read_files(root));
    let mut files_s = Vec::new();
    let (mut files, mut bytes) = (0, 0);
    for _ in 0..repeat {
        let ((n, b), secs) = time(|| read_files(root));
        (files, bytes) = (n, b);
        files_s.push(secs);
    }

    // (e) check, given the checkout.
    let mut check_s = Vec::new();
    let mut diagnostics = 0;
    for _ in 0..repeat {
        let (found, secs) = time(|| repo::check::check(&checkout.snapshot, &checkout.tree));
        diagnostics = found.len();
        check_s.push(secs);
    }

    // (f) the edit primitive on one service's files.
    let dir = root.join(service_dir("prod", 0));
    let values = std::fs::read_to_string(dir.join("values.yaml"))?;
    let release = std::fs::read_to_string(dir.join("release.yml"))?;
    let tag_path: YamlPath = "image.tag".parse()?;
    let (release_doc, release_path) = first_image(&release)?;
    let edit_values = edit_time(&values, 0, &tag_path, EDITS)?;
    let edit_release = edit_time(&release, release_doc, &release_path, EDITS)?;

    // (g) the edit primitive on the largest corpus file.
    let big = match std::fs::read_to_string(BIG_FILE) {
        Ok(src) => {
            let (doc, path) = first_image(&src)?;
            let s = edit_time(&src, doc, &path, BIG_EDITS)?;
            json!({ "lines": src.lines().count(), "bytes": src.len(), "doc": doc, "path": path.to_string(), "time": stats_json(s) })
        }
        Err(_) => Value::Null,
    };
    drop(checkout);

    Ok(json!({
        "services": services,
        "envs": ENVS.len(),
        "commits": commits,
        "repeat": repeat,
        "files": files,
        "bytes": bytes,
        "read_files": stats_json(stats(files_s)),
        "checkout_read": stats_json(stats(read_s)),
        "snapshot_load": stats_json(stats(load_s)),
        "history": stats_json(stats(history_s)),
        "plan": stats_json(stats(plan_s)),
        "plan_total": stats_json(stats(total_s)),
        "cpu": {
            "plan_total": stats(total_cpu).min,
            "snapshot_load": stats(load_cpu).min,
            "history": stats(history_cpu).min,
        },
        "check": stats_json(stats(check_s)),
        "diagnostics": diagnostics,
        "edit_values": stats_json(edit_values),
        "edit_release": stats_json(edit_release),
        "edit_big": big,
        "verdicts": { "promote": verdicts[0], "blocked": verdicts[1], "up_to_date": verdicts[2] },
        "peak_plan_kib": peak_plan_kib,
        "peak_total_kib": peak_rss_kib(),
    }))
}

// ---------------------------------------------------------------------------------------------
// Report

fn fmt_secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

fn secs(row: &Value, key: &str, which: &str) -> f64 {
    row[key][which].as_f64().unwrap_or(f64::NAN)
}

/// `min (median)`.
fn cell(row: &Value, key: &str) -> String {
    format!(
        "{} ({})",
        fmt_secs(secs(row, key, "min")),
        fmt_secs(secs(row, key, "median"))
    )
}

fn report(rows: &[Value]) {
    println!(
        "| services | envs | commits | files | read files | checkout::read | plan | plan total | plan total / read files | check | check total | edit per op (values.yaml / release.yml) | peak RSS MB |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let ratio = secs(row, "plan_total", "min") / secs(row, "read_files", "min");
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1}x | {} | {} | {} / {} | {:.1} |",
            row["services"],
            row["envs"],
            row["commits"],
            row["files"],
            cell(row, "read_files"),
            cell(row, "checkout_read"),
            cell(row, "plan"),
            cell(row, "plan_total"),
            ratio,
            cell(row, "check"),
            fmt_secs(secs(row, "checkout_read", "min") + secs(row, "check", "min")),
            fmt_secs(secs(row, "edit_values", "median")),
            fmt_secs(secs(row, "edit_release", "median")),
            row["peak_plan_kib"].as_f64().unwrap_or(0.0) / 1024.0,
        );
    }
    println!();
    println!(
        "Times are min (median) of the runs; check total is checkout::read + check (sum of the minimums), what `promoter check` costs before it renders with kubectl; edits are the median of {EDITS} edits; peak RSS is VmHWM of a fresh process after checkout::read + plan."
    );
    println!();
    for row in rows {
        println!(
            "- {} services: {} runs; {:.1} MB read; build or cache lookup {} (not measured); checkout::read = Snapshot::load {} + history {} (min; CPU {} + {}); plan total CPU {}; \
             {} promote / {} blocked / {} up to date; {} check diagnostics; whole-process peak RSS {:.1} MB.",
            row["services"],
            row["repeat"],
            row["bytes"].as_f64().unwrap_or(0.0) / 1e6,
            fmt_secs(row["build_s"].as_f64().unwrap_or(f64::NAN)),
            fmt_secs(secs(row, "snapshot_load", "min")),
            fmt_secs(secs(row, "history", "min")),
            fmt_secs(row["cpu"]["snapshot_load"].as_f64().unwrap_or(f64::NAN)),
            fmt_secs(row["cpu"]["history"].as_f64().unwrap_or(f64::NAN)),
            fmt_secs(row["cpu"]["plan_total"].as_f64().unwrap_or(f64::NAN)),
            row["verdicts"]["promote"],
            row["verdicts"]["blocked"],
            row["verdicts"]["up_to_date"],
            row["diagnostics"],
            row["peak_total_kib"].as_f64().unwrap_or(0.0) / 1024.0,
        );
    }
    if let Some(big) = rows.iter().map(|r| &r["edit_big"]).find(|b| !b.is_null()) {
        println!(
            "- set_scalar on {BIG_FILE} ({} lines, {:.1} MB), `{}` in document {}: {} per edit (min of {BIG_EDITS}; median {}).",
            big["lines"],
            big["bytes"].as_f64().unwrap_or(0.0) / 1e6,
            big["path"].as_str().unwrap_or("?"),
            big["doc"],
            fmt_secs(big["time"]["min"].as_f64().unwrap_or(f64::NAN)),
            fmt_secs(big["time"]["median"].as_f64().unwrap_or(f64::NAN)),
        );
    } else {
        println!("- {BIG_FILE} is not present: no large-file edit measured.");
    }
}
