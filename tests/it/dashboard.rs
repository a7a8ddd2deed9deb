//! `promoter dashboard` on a copy of the sample with dated history, then the page loaded in
//! real headless Chromium: the matrix read back from the DOM Chromium built, and a screenshot.

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

/// A cell as the page shows it: environment, tag, state word.
type CellText = (String, String, String);

/// The matrix as Chromium's DOM has it: per row the service, then per cell (env, tag, state).
fn matrix(dom: &str) -> Vec<(String, Vec<CellText>)> {
    let body = &dom[dom.find("<tbody>").expect("a tbody")..dom.find("</tbody>").unwrap()];
    body.split("<tr ")
        .skip(1)
        .map(|row| {
            let row = format!(" {row}");
            let service = text(&row, "<th scope=\"row\">").unwrap().to_string();
            assert_eq!(attr(&row, "data-service"), service);
            let cells = row
                .split("<td ")
                .skip(1)
                .map(|cell| {
                    let cell = format!(" {cell}");
                    (
                        attr(&cell, "data-env").to_string(),
                        text(&cell, "<span class=\"tag\">")
                            .unwrap_or("-")
                            .to_string(),
                        text(&cell, "<span class=\"state\">").unwrap().to_string(),
                    )
                })
                .collect();
            (service, cells)
        })
        .collect()
}

#[test]
fn the_dashboard_page_renders_the_matrix_in_chromium() {
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
    assert!(html.contains("<table>"), "{html}");
    assert!(
        !html.contains("http-equiv=\"refresh\""),
        "no refresh in a file"
    );

    if !Path::new(CHROMIUM).exists() {
        if std::env::var_os("CI").is_some() {
            panic!("{CHROMIUM} is missing: run scripts/install-test-deps (Debian's chromium)");
        }
        eprintln!("skipping the browser half: {CHROMIUM} is missing (scripts/install-test-deps)");
        return;
    }
    let url = format!("file://{}", page.display());
    let profile = tempfile::tempdir().unwrap();
    let dom_file = out_dir.path().join("dom.html");
    chromium(profile.path(), &["--dump-dom", &url], &dom_file);
    let dom = std::fs::read_to_string(&dom_file).unwrap();
    assert!(dom.contains("<caption id=\"matrix-caption\">"), "{dom}");
    assert!(dom.contains("<th scope=\"col\">prod</th>"), "{dom}");
    let cell = |env: &str, tag: &str, state: &str| (env.into(), tag.into(), state.into());
    assert_eq!(
        matrix(&dom),
        vec![
            (
                "client".to_string(),
                vec![
                    cell("dev", "0.5.0", "source"),
                    cell("qa", "0.5.0", "up to date"),
                    cell("prod", "0.5.0", "up to date"),
                ]
            ),
            (
                "maths-api".to_string(),
                vec![
                    cell("dev", "1.4.0", "source"),
                    cell("qa", "1.3.0", "blocked"),
                    cell("prod", "1.2.1", "promotable"),
                ]
            ),
        ]
    );
    assert!(
        dom.contains("soak: has run 30m in dev, needs 1h (policies/qa.yaml)"),
        "the blocked reason is in the page: {dom}"
    );
    assert!(dom.contains("<desc id=\"lead-svg-desc\">"), "{dom}");
    assert!(dom.contains("maths-api 1.3.0 landed in qa at 2026-11-20 02:00 UTC"));

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
