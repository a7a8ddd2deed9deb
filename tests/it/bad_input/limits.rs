use std::io::Write;

use super::{SAMPLE_ROWS, check_reports, plan_rows, reasons, run};
use crate::support::{SampleRepo, stderr, stdout};

fn sample() -> SampleRepo {
    let repo = SampleRepo::new("2026-11-01T00:00:00Z");
    repo.without_network_gates();
    repo.commit("no network gates", "2026-11-01T00:00:00Z");
    repo
}

/// "Billion laughs": nine levels of nine aliases each, 9^9 strings if anything expanded them.
fn bomb() -> String {
    let mut text = String::from(
        "lol0: &lol0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n",
    );
    for level in 1..9 {
        let aliases = vec![format!("*lol{}", level - 1); 9].join(", ");
        text.push_str(&format!("lol{level}: &lol{level} [{aliases}]\n"));
    }
    text
}

fn append(repo: &SampleRepo, file: &str, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(repo.path().join(file))
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn a_yaml_bomb_is_read_without_expanding_it() {
    // In values.yaml and release.yml promoter never expands aliases: the service is read as
    // usual and planned.
    let repo = sample();
    append(&repo, "clusters/qa/calculator/client/values.yaml", &bomb());
    append(
        &repo,
        "clusters/qa/calculator/maths-api/release.yml",
        &format!("---\n{}", bomb()),
    );
    let (rows, _, err) = plan_rows(&repo);
    assert_eq!(rows, SAMPLE_ROWS);
    assert_eq!(err, "");
    // The edit primitive keeps the bomb intact and refuses to edit through an alias.
    let values = repo
        .path()
        .join("clusters/qa/calculator/client/values.yaml");
    let file = values.to_str().unwrap();
    let out = run(
        &repo,
        &["edit", file, "--path", "image.tag", "--value", "0.5.0"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).ends_with(&format!("  tag: 0.5.0\n{}", bomb())));
    let out = run(
        &repo,
        &["edit", file, "--path", "lol8[0][0]", "--value", "x"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "{file}:31:14: `lol8[0][0]` is reached through the alias *lol7: its value is defined at the anchor &lol7; edit it there (that changes every user of the anchor) or write the value in place of the alias\n"
        )
    );

    // In environments/ and policies/ (read with serde) the bomb is an unknown key: refused at
    // its first line.
    let repo = sample();
    append(&repo, "environments/qa.yaml", &bomb());
    append(&repo, "policies/prod.yaml", &bomb());
    check_reports(
        &repo,
        &[
            "environments/qa.yaml:14:1: unknown field `lol0`, expected one of `name`, `path`, `promotes_from`, `schedule`, `timezone`, `auto_merge`, `approvals_required`, `services`, `health`",
            "policies/prod.yaml:19:1: unknown field `lol0`, expected one of `environments`, `soak`, `freezes`, `allowed_windows`, `semver`, `max_open_promotions`, `break_glass`, `approvers`, `require_health`, `require_image`, `require_pipeline`, `requesters`, `reviewers`, `group`, `holds`",
        ],
    );
    let (rows, _, _) = plan_rows(&repo);
    assert!(rows.is_empty(), "{rows:?}");
}

#[test]
fn deep_nesting_is_refused_at_its_line() {
    let repo = sample();
    append(
        &repo,
        "clusters/qa/calculator/client/values.yaml",
        &format!("deep: {}\n", "[".repeat(100_000)),
    );
    check_reports(
        &repo,
        &[
            "clusters/qa/calculator/client/values.yaml:23:262: invalid YAML: nesting deeper than 255 levels",
        ],
    );
    let (rows, _, err) = plan_rows(&repo);
    assert_eq!(
        rows,
        [
            "client prod blocked",
            "maths-api qa promote",
            "maths-api prod promote"
        ]
    );
    assert!(err.contains("nesting deeper than 255 levels"), "{err}");
}

/// A 100 MB file of valid YAML (comments), written at test time.
fn write_100_mb(path: &std::path::Path) {
    let line = format!("# {}\n", "x".repeat(1021));
    let chunk = line.repeat(1024);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for _ in 0..100 {
        f.write_all(chunk.as_bytes()).unwrap();
    }
    f.flush().unwrap();
}

#[test]
fn a_100_mb_file_is_refused_before_it_is_read() {
    let too_large = "the file is 104857600 bytes, over the 16777216-byte limit for YAML input";
    let repo = sample();
    write_100_mb(
        &repo
            .path()
            .join("clusters/qa/calculator/client/values.yaml"),
    );
    write_100_mb(&repo.path().join("policies/huge.yaml"));
    check_reports(
        &repo,
        &[
            &format!("clusters/qa/calculator/client/values.yaml: cannot read: {too_large}"),
            &format!("policies/huge.yaml: cannot read: {too_large}"),
        ],
    );
    let (rows, plan, _) = plan_rows(&repo);
    assert_eq!(
        rows,
        [
            "client prod blocked",
            "maths-api qa blocked",
            "maths-api prod blocked"
        ]
    );
    assert_eq!(
        reasons(&plan, "maths-api", "qa")[0],
        "policy: policies/huge.yaml invalid: every promotion waits until it is fixed (run `promoter check`)"
    );

    let big = repo.path().join("policies/huge.yaml");
    let out = run(
        &repo,
        &[
            "edit",
            big.to_str().unwrap(),
            "--path",
            "a",
            "--value",
            "b",
            "--write",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), format!("{}: {too_large}\n", big.display()));
}
