//! Dashboard benchmark: what the dashboard page costs at 200, 2,000 and 10,000 services during
//! prod's year-end freeze (the synthetic monorepo of benches/synthetic/, 20 days of history,
//! read as of 22 December). Per size, in one run so the sizes compare side by side: the time
//! `promoter dashboard` takes (the release binary, best of `--repeat`), the page's bytes, the
//! DOM nodes Chromium builds from it, and Chromium's load time (navigation start to the end of
//! the load event, from the page's own Navigation Timing, read through a probe script inlined
//! into a copy of the page), plus the headless Chromium run end to end.
//!
//! ```text
//! cargo bench --bench dashboard                         # 200, 2000 and 10000 services
//! cargo bench --bench dashboard -- --services 2000 --repeat 5
//! ```
//!
//! Prints a Markdown table on stdout; progress goes to stderr.

#[path = "support/allocator.rs"]
mod allocator;
#[path = "synthetic/mod.rs"]
mod synthetic;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const SIZES: [usize; 3] = [200, 2_000, 10_000];
const COMMITS: usize = 20;
const IN_THE_FREEZE: &str = "2025-12-22T10:00:00Z";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Writes the DOM size and the load timing into the page once it has loaded.
const PROBE: &str = r#"<script>
window.addEventListener("load", function () {
  setTimeout(function () {
    var nav = performance.getEntriesByType("navigation")[0];
    var pre = document.createElement("pre");
    pre.id = "bench-result";
    pre.textContent = JSON.stringify({
      nodes: document.getElementsByTagName("*").length,
      dom_content_loaded: nav.domContentLoadedEventEnd,
      load: nav.loadEventEnd
    });
    document.body.appendChild(pre);
  }, 0);
});
</script>
</body>"#;

struct Row {
    services: usize,
    blocked: usize,
    dashboard: Duration,
    bytes: usize,
    nodes: u64,
    dom_content_loaded_ms: f64,
    load_ms: f64,
    chromium: Duration,
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn chromium(page: &Path, profile: &Path) -> Result<(String, Duration)> {
    let started = Instant::now();
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,800",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()?;
    let elapsed = started.elapsed();
    if !out.status.success() {
        return Err(format!("chromium exited with {}", out.status).into());
    }
    Ok((String::from_utf8(out.stdout)?, elapsed))
}

fn measure(services: usize, repeat: usize, work: &Path) -> Result<Row> {
    let repo = synthetic::cached(services, COMMITS, false)?;
    let page = work.join(format!("dashboard-{services}.html"));
    let mut best = Duration::MAX;
    for _ in 0..repeat {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_promoter"))
            .args(["dashboard", "--repo"])
            .arg(&repo)
            .arg("--out")
            .arg(&page)
            .args(["--at", IN_THE_FREEZE])
            .env("RUST_LOG", "error")
            .output()?;
        let elapsed = started.elapsed();
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
        }
        best = best.min(elapsed);
    }
    let html = std::fs::read_to_string(&page)?;
    let blocked = html.matches("<tr id=\"b-").count();
    // The page's CSP admits only its own script: the probe goes into a copy without it.
    let start = html
        .find("<meta http-equiv=\"Content-Security-Policy\"")
        .ok_or("no CSP in the page")?;
    let end = start + html[start..].find('>').ok_or("unclosed meta")? + 1;
    let probed = format!("{}{}", &html[..start], &html[end..]).replace("</body>", PROBE);
    let probed_page = work.join(format!("probed-{services}.html"));
    std::fs::write(&probed_page, probed)?;
    let mut best_chromium = Duration::MAX;
    let mut result = serde_json::Value::Null;
    for _ in 0..repeat {
        let profile = tempfile::tempdir()?;
        let (dom, elapsed) = chromium(&probed_page, profile.path())?;
        let open = "<pre id=\"bench-result\">";
        let at = dom.rfind(open).ok_or("the probe wrote nothing")? + open.len();
        let json = &dom[at..at + dom[at..].find("</pre>").ok_or("unclosed pre")?];
        if elapsed < best_chromium {
            best_chromium = elapsed;
            result = serde_json::from_str(json)?;
        }
    }
    Ok(Row {
        services,
        blocked,
        dashboard: best,
        bytes: html.len(),
        nodes: result["nodes"].as_u64().unwrap_or(0),
        dom_content_loaded_ms: result["dom_content_loaded"].as_f64().unwrap_or(f64::NAN),
        load_ms: result["load"].as_f64().unwrap_or(f64::NAN),
        chromium: best_chromium,
    })
}

fn main() -> Result<()> {
    let sizes: Vec<usize> = match arg("--services") {
        Some(list) => list
            .split(',')
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()?,
        None => SIZES.to_vec(),
    };
    let repeat: usize = arg("--repeat").map(|r| r.parse()).transpose()?.unwrap_or(3);
    if !Path::new(CHROMIUM).exists() {
        return Err(format!("{CHROMIUM} is missing (scripts/install-test-deps)").into());
    }
    let work = tempfile::tempdir()?;
    let mut rows = Vec::new();
    for services in sizes {
        eprintln!("== {services} services");
        rows.push(measure(services, repeat, work.path())?);
    }
    println!(
        "| services | blocked promotions | `promoter dashboard` | page | DOM nodes | DOMContentLoaded | load event | headless Chromium run |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for row in rows {
        println!(
            "| {} | {} | {:.2} s | {:.0} KB | {} | {:.0} ms | {:.0} ms | {:.2} s |",
            row.services,
            row.blocked,
            row.dashboard.as_secs_f64(),
            row.bytes as f64 / 1000.0,
            row.nodes,
            row.dom_content_loaded_ms,
            row.load_ms,
            row.chromium.as_secs_f64()
        );
    }
    Ok(())
}
