//! `promoter dashboard` on a copy of the sample with dated history and on a synthetic monorepo
//! of 2,000 services during the year-end freeze, each page loaded in real headless Chromium
//! with axe-core and a probe script inlined (tests/it/dashboard_probe.js): the matrix read back
//! from the DOM Chromium built, no axe violation (WCAG 2.2 AA and best practice), the freeze
//! and blocked promotions on the first 1280x800 screen, the column headers on screen deep in
//! the page, the filter, and a screenshot.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{SampleRepo, promoter, stderr};

const CHROMIUM: &str = "/usr/bin/chromium";
const AT: &str = "2026-11-24T10:30:00Z";

/// The sample imported on 1 November, then client 0.5.0 released and promoted to prod,
/// maths-api 1.2.1 promoted to prod and 1.3.0 to qa, and maths-api 1.4.0 released at 10:00.
fn sample() -> SampleRepo {
    let repo = SampleRepo::new("2026-11-01T00:00:00Z");
    let steps = [
        ("dev", "client", "0.4.0", "0.5.0", "2026-11-03T09:00:00Z"),
        ("qa", "client", "0.4.0", "0.5.0", "2026-11-04T02:00:00Z"),
        ("prod", "client", "0.3.2", "0.5.0", "2026-11-10T09:00:00Z"),
        (
            "prod",
            "maths-api",
            "1.2.0",
            "1.2.1",
            "2026-11-12T09:00:00Z",
        ),
        ("qa", "maths-api", "1.2.1", "1.3.0", "2026-11-20T02:00:00Z"),
        ("dev", "maths-api", "1.3.0", "1.4.0", "2026-11-24T10:00:00Z"),
    ];
    for (env, service, from, to, at) in steps {
        repo.set_tag(env, service, from, to);
        repo.commit(&format!("{service} {to} in {env}"), at);
    }
    repo
}

/// Where screenshots go: `target/test-output/`.
fn output_dir() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| crate::support::project_root().join("target"));
    let dir = target.join("test-output");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs Chromium headless with `args` and a fresh profile, stdout into `stdout`, within a
/// minute.
fn chromium(profile: &Path, args: &[&str], stdout: &Path) {
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(stdout).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium {args:?} exited with {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The synthetic monorepo generator the benchmarks use.
#[path = "../../benches/synthetic/mod.rs"]
mod synthetic;

/// axe.min.js, fetched once by scripts/install-axe-core (npm pack of a pinned version, its
/// integrity checked).
fn axe_core() -> String {
    let script = crate::support::project_root().join("scripts/install-axe-core");
    let out = Command::new(&script)
        .env(
            "CARGO_TARGET_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap(),
        )
        .output()
        .expect("scripts/install-axe-core runs");
    assert!(
        out.status.success(),
        "scripts/install-axe-core failed (needs npm: scripts/install-test-deps): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8(out.stdout).unwrap();
    std::fs::read_to_string(path.trim()).unwrap()
}

/// Whether Chromium is here; in CI its absence fails the test.
fn have_chromium() -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{CHROMIUM} is missing: run scripts/install-test-deps (Debian's chromium)");
    }
    eprintln!("skipping the browser half: {CHROMIUM} is missing (scripts/install-test-deps)");
    false
}

/// `html` loaded in Chromium at 1280x800 with axe-core and the probe inlined (the page's
/// Content-Security-Policy taken out of this copy so they may run); what the probe found.
fn probe(html: &str, name_filter: &str, dir: &Path) -> serde_json::Value {
    let csp_start = html
        .find("<meta http-equiv=\"Content-Security-Policy\"")
        .expect("the page has a Content-Security-Policy");
    let csp_end = csp_start + html[csp_start..].find('>').unwrap() + 1;
    let scripts = format!(
        "<script>{}</script>\n<script>const PROBE_NAME = {};\n{}</script>\n</body>",
        axe_core(),
        serde_json::Value::from(name_filter),
        include_str!("dashboard_probe.js")
    );
    let copy = format!("{}{}", &html[..csp_start], &html[csp_end..]).replace("</body>", &scripts);
    let page = dir.join("probed.html");
    std::fs::write(&page, copy).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let dom_file = dir.join("probed-dom.html");
    let started = Instant::now();
    chromium(
        profile.path(),
        &[
            "--window-size=1280,800",
            "--virtual-time-budget=60000",
            "--dump-dom",
            &format!("file://{}", page.display()),
        ],
        &dom_file,
    );
    eprintln!("chromium with axe and the probe: {:?}", started.elapsed());
    let dom = std::fs::read_to_string(&dom_file).unwrap();
    let open = "<pre id=\"probe-result\">";
    let start = dom.rfind(open).unwrap_or_else(|| {
        panic!(
            "the probe wrote no result: {}",
            &dom[dom.len().saturating_sub(3000)..]
        )
    }) + open.len();
    let json = &dom[start..start + dom[start..].find("</pre>").unwrap()];
    let json = json
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let value: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| {
        panic!(
            "the probe's result is no JSON ({e}): {}",
            &json[..json.len().min(2000)]
        )
    });
    assert!(value.get("error").is_none(), "the probe failed: {value:#}");
    value
}

/// Asserts axe found nothing, listing what it found.
fn assert_no_violations(result: &serde_json::Value, what: &str) {
    let violations = result["violations"].as_array().expect("axe ran");
    assert!(
        violations.is_empty(),
        "axe-core {} found violations on {what}: {:#}",
        result["axe_version"],
        result["violations"]
    );
}

/// The value of attribute `name` in the first tag of `html`.
fn attr<'a>(html: &'a str, name: &str) -> &'a str {
    let start = html
        .find(&format!(" {name}=\""))
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + name.len()
        + 3;
    &html[start..start + html[start..].find('"').unwrap()]
}

/// The text of the first element opening with `open` in `html`, up to the next `<`.
fn text<'a>(html: &'a str, open: &str) -> Option<&'a str> {
    let start = html.find(open)? + open.len();
    Some(html[start..start + html[start..].find('<')?].trim())
}

/// A cell as the page shows it: tag, state (its word in a pending row, its class in a folded
/// up-to-date row).
type CellText = (String, String);

/// The service rows as Chromium's DOM has them (pending and folded alike): per row the
/// service, then per cell (tag, state).
fn matrix(dom: &str) -> Vec<(String, Vec<CellText>)> {
    dom.split("<tr id=\"s-")
        .skip(1)
        .map(|row| {
            let row = &row[..row.find("</tr>").unwrap()];
            let th = &row[row.find("<th scope=\"row\">").unwrap()..];
            let th = &th[..th.find("</th>").unwrap()];
            let service = th[th.rfind("\">").unwrap() + 2..]
                .trim_end_matches("</a>")
                .to_string();
            let cells = row
                .split("<td ")
                .skip(1)
                .map(|cell| {
                    let cell = format!(" {cell}");
                    let state = match text(&cell, "<span class=\"state\">") {
                        Some(word) => word.to_string(),
                        None => attr(&cell, "class").to_string(),
                    };
                    let tag = match text(&cell, "<code>") {
                        Some(tag) => tag,
                        None => cell[cell.find('>').unwrap() + 1..]
                            .split(['<', ' '])
                            .next()
                            .unwrap(),
                    };
                    (tag.to_string(), state)
                })
                .collect();
            (service, cells)
        })
        .collect()
}

#[test]
fn the_dashboard_page_renders_the_matrix_in_chromium_with_no_axe_violation() {
    let repo = sample();
    let out_dir = tempfile::tempdir().unwrap();
    let page = out_dir.path().join("dashboard.html");
    let out = promoter(&[
        "dashboard",
        "--repo",
        repo.path().to_str().unwrap(),
        "--out",
        page.to_str().unwrap(),
        "--at",
        AT,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<main>"), "{html}");
    assert!(
        !html.contains("http-equiv=\"refresh\""),
        "no refresh in a file"
    );
    if !have_chromium() {
        return;
    }
    let url = format!("file://{}", page.display());
    let profile = tempfile::tempdir().unwrap();
    let dom_file = out_dir.path().join("dom.html");
    chromium(profile.path(), &["--dump-dom", &url], &dom_file);
    let dom = std::fs::read_to_string(&dom_file).unwrap();
    assert!(dom.contains("<th scope=\"col\">prod</th>"), "{dom}");
    assert!(
        !dom.contains("<form id=\"filter\" role=\"search\" hidden"),
        "the filter script ran under the page's own CSP"
    );
    let cell = |tag: &str, state: &str| (tag.into(), state.into());
    assert_eq!(
        matrix(&dom),
        vec![
            (
                "maths-api".to_string(),
                vec![
                    cell("1.4.0", "from CI"),
                    cell("1.3.0", "blocked"),
                    cell("1.2.1", "promotable"),
                ]
            ),
            (
                "client".to_string(),
                vec![
                    cell("0.5.0", "source"),
                    cell("0.5.0", "up_to_date"),
                    cell("0.5.0", "up_to_date"),
                ]
            ),
        ],
        "pending rows first, the up-to-date ones folded after them"
    );
    let blocked = &dom[dom.find("<section id=\"blocked\"").unwrap()
        ..dom.find("<section id=\"pending\"").unwrap()];
    assert!(
        blocked.contains("soak: has run 30m in dev, needs 1h (policies/qa.yaml)"),
        "the blocked reason is in the blocked list: {blocked}"
    );
    assert!(dom.contains("<desc id=\"lead-svg-desc\">"), "{dom}");

    let result = probe(&html, "cli", out_dir.path());
    assert_no_violations(&result, "the sample's page");
    assert_eq!(result["filter_shown"], true);
    assert_eq!(
        result["by_name"],
        serde_json::json!(["client"]),
        "{result:#}"
    );
    assert_eq!(result["by_name_status"], "1 of 2 services shown");
    assert_eq!(
        result["settled_open_after_filter"], true,
        "a match in the folded rows unfolds them"
    );
    assert_eq!(result["by_state"], 1, "{result:#}");

    let screenshot = out_dir.path().join("dashboard.png");
    let profile = tempfile::tempdir().unwrap();
    chromium(
        profile.path(),
        &[
            &format!("--screenshot={}", screenshot.display()),
            "--window-size=1280,900",
            &url,
        ],
        &out_dir.path().join("screenshot.log"),
    );
    let png = std::fs::read(&screenshot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(
        png.len() > 20_000,
        "only {} bytes: a blank page?",
        png.len()
    );
    let kept = output_dir().join("dashboard.png");
    std::fs::copy(&screenshot, &kept).unwrap();
    eprintln!("screenshot: {}", kept.display());
}

/// 2,000 services, 20 days of history, read on 22 December: prod's year-end freeze holds.
const SERVICES: usize = 2_000;
const IN_THE_FREEZE: &str = "2025-12-22T10:00:00Z";

#[test]
fn at_2000_services_in_a_freeze_the_first_screen_shows_what_is_stuck() {
    let started = Instant::now();
    // Built once per generator version under target/bench-repos/ and only read here.
    let repo = synthetic::cached(SERVICES, 20, false).expect("the synthetic monorepo builds");
    eprintln!("built the synthetic monorepo in {:?}", started.elapsed());
    let out_dir = tempfile::tempdir().unwrap();
    let page = out_dir.path().join("dashboard.html");
    let out = promoter(&[
        "dashboard",
        "--repo",
        repo.to_str().unwrap(),
        "--out",
        page.to_str().unwrap(),
        "--at",
        IN_THE_FREEZE,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let html = std::fs::read_to_string(&page).unwrap();
    std::fs::write(output_dir().join("dashboard-2000.html"), &html).unwrap();
    eprintln!("2,000 services: {} bytes", html.len());
    assert!(
        html.len() < 1_000_000,
        "the page is {} bytes (it was 2.1 MB before it folded the up-to-date rows)",
        html.len()
    );
    // What the filter should find, from the page itself.
    let service_rows: Vec<&str> = html
        .split("<tr id=\"s-")
        .skip(1)
        .map(|row| &row[..row.find('>').unwrap()])
        .collect();
    assert_eq!(service_rows.len(), SERVICES);
    let with_blocked = service_rows
        .iter()
        .filter(|row| {
            row.contains(" data-st=\"") && attr(row, "data-st").split(' ').any(|s| s == "blocked")
        })
        .count();
    assert!(with_blocked > 100, "the freeze blocks prod: {with_blocked}");
    if !have_chromium() {
        return;
    }
    let result = probe(&html, "svc-012", out_dir.path());
    eprintln!(
        "2,000 services: {} DOM nodes, {} blocked rows, {} on the first screen",
        result["nodes"], result["blocked_rows"], result["blocked_on_first_screen"]
    );
    // A 1280x800 window; Chromium's headless window keeps some of the height for itself, so
    // the page sees at most 800 pixels: what shows there is on any 1280x800 screen.
    assert_eq!(result["viewport"][0], 1280);
    assert!(result["viewport"][1].as_u64().unwrap() <= 800);
    assert_eq!(result["banner_on_first_screen"], true, "{result:#}");
    let banner = result["banner_text"].as_str().unwrap();
    assert!(
        banner.contains("Promotions are stopped") && banner.contains("year-end"),
        "{banner}"
    );
    assert!(
        result["blocked_on_first_screen"].as_u64().unwrap() >= 3,
        "blocked promotions on the first screen: {result:#}"
    );
    let deep = &result["deep"];
    assert!(deep["scroll_y"].as_f64().unwrap() > 20_000.0, "{deep}");
    let header_top = deep["header_top"].as_f64().unwrap();
    assert!(
        (0.0..2.0).contains(&header_top),
        "the column headers stick to the top deep in the page: {deep}"
    );
    assert!(deep["row_top"].as_f64().unwrap() > deep["header_bottom"].as_f64().unwrap());
    assert_eq!(deep["header_text"], "Service dev qa prod");
    assert!(
        result["nodes"].as_u64().unwrap() < 60_000,
        "{}",
        result["nodes"]
    );
    assert_no_violations(&result, "the 2,000-service page");
    let expected: Vec<String> = (120..130).map(|i| format!("svc-{i:04}")).collect();
    let mut by_name: Vec<String> = serde_json::from_value(result["by_name"].clone()).unwrap();
    by_name.sort();
    assert_eq!(by_name, expected);
    assert_eq!(result["by_name_status"], "10 of 2000 services shown");
    assert_eq!(result["by_state"], with_blocked);
}
