use serde_json::Value;

use crate::support::{SampleRepo, promoter, stderr, stdout};

fn plan_json(repo: &SampleRepo, at: &str) -> Value {
    let out = promoter(&[
        "plan",
        "--repo",
        repo.path().to_str().unwrap(),
        "--at",
        at,
        "--output",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn row<'a>(plan: &'a Value, service: &str, to: &str) -> &'a Value {
    plan["promotions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["service"] == service && p["to"] == to)
        .unwrap()
}

#[test]
fn a_new_dev_tag_is_blocked_by_soak_then_promoted() {
    let repo = SampleRepo::new("2026-11-01T00:00:00Z");
    repo.set_tag("dev", "maths-api", "1.3.0", "1.4.0");
    repo.commit("release maths-api 1.4.0", "2026-11-24T10:00:00Z");

    let early = plan_json(&repo, "2026-11-24T10:30:00Z");
    assert_eq!(early["generated_at"], "2026-11-24T10:30:00Z");
    let qa = row(&early, "maths-api", "qa");
    assert_eq!(qa["decision"], "blocked");
    assert_eq!(
        (qa["current"].as_str(), qa["candidate"].as_str()),
        (Some("1.2.1"), Some("1.4.0"))
    );
    assert_eq!(
        qa["reasons"][0],
        "soak: has run 30m in dev, needs 1h (policies/qa.yaml): eligible at 2026-11-24T11:00:00+00:00"
    );

    let later = plan_json(&repo, "2026-11-24T12:00:00Z");
    let qa = row(&later, "maths-api", "qa");
    assert_eq!(qa["decision"], "promote", "{qa}");
    assert!(
        qa["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "soak: ran 2h in dev (needs 1h)"),
        "{qa}"
    );
    // prod takes qa's tag (1.2.1), in qa since the import 23 days earlier.
    assert_eq!(row(&later, "maths-api", "prod")["decision"], "promote");
    assert_eq!(row(&later, "client", "qa")["decision"], "up_to_date");
    let pairs = later["lead_times"]["pairs"].as_array().unwrap();
    assert_eq!(
        (pairs[0]["from"].as_str(), pairs[0]["to"].as_str()),
        (Some("dev"), Some("qa"))
    );
}

#[test]
fn an_uncommitted_tag_has_no_landing_time() {
    let repo = SampleRepo::new("2026-11-01T00:00:00Z");
    repo.set_tag("dev", "maths-api", "1.3.0", "1.4.0");
    let plan = plan_json(&repo, "2026-11-24T12:00:00Z");
    let qa = row(&plan, "maths-api", "qa");
    assert_eq!(qa["decision"], "blocked");
    assert!(
        qa["reasons"][0]
            .as_str()
            .unwrap()
            .contains("cannot be measured"),
        "{qa}"
    );
}

#[test]
fn the_table_shows_tags_with_age() {
    let repo = SampleRepo::new("2026-11-01T00:00:00Z");
    let out = promoter(&[
        "plan",
        "--repo",
        repo.path().to_str().unwrap(),
        "--at",
        "2026-11-03T00:00:00Z",
    ]);
    let text = stdout(&out);
    assert!(
        text.starts_with("SERVICE    dev         qa          prod\n"),
        "{text}"
    );
    assert!(
        text.contains("\nmaths-api  1.3.0 (2d)  1.2.1 (2d)  1.2.0 (2d)\n"),
        "{text}"
    );
    assert!(
        text.contains("maths-api qa <- dev: promote (1.2.1 -> 1.3.0)"),
        "{text}"
    );
}

#[test]
fn check_passes_on_the_sample_and_catches_a_mismatch() {
    let repo = SampleRepo::new("2026-11-01T00:00:00Z");
    let dir = repo.path().to_str().unwrap();
    let out = promoter(&["check", "--repo", dir]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    repo.replace(
        "clusters/qa/calculator/maths-api/release.yml",
        "maths-api:1.2.1\"",
        "maths-api:9.9.9\"",
    );
    let out = promoter(&["check", "--repo", dir]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.contains("9.9.9"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.starts_with("clusters/qa/calculator/maths-api/release.yml:"),
        "{line}"
    );
    assert!(line.ends_with("has tag 9.9.9 but clusters/qa/calculator/maths-api/values.yaml says 1.2.1 (line 21): render the chart again or fix the tag"), "{line}");
}

#[test]
fn check_reports_bad_input_with_file_and_line() {
    let repo = SampleRepo::new("2026-11-01T00:00:00Z");
    let dir = repo.path().to_str().unwrap();
    repo.replace(
        "environments/qa.yaml",
        "schedule: \"0 0 2 * * *\"",
        "schedule: \"0 2 * *\"",
    );
    repo.replace("policies/prod.yaml", "soak: 24h", "soak: 24h\nsoaks: 1h");
    repo.replace(
        "clusters/dev/calculator/client/values.yaml",
        "image:\n",
        "image: [\n",
    );
    let out = promoter(&["check", "--repo", dir]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("environments/qa.yaml:6:11: invalid cron `0 2 * *`"),
        "{err}"
    );
    assert!(
        err.contains("policies/prod.yaml:5:1: unknown field `soaks`"),
        "{err}"
    );
    assert!(
        err.contains("clusters/dev/calculator/client/values.yaml:"),
        "{err}"
    );
}

#[test]
fn a_broken_service_is_left_out_and_the_others_are_planned() {
    let repo = SampleRepo::new("2026-11-01T00:00:00Z");
    let dir = repo.path().to_str().unwrap();
    repo.replace(
        "clusters/qa/calculator/client/values.yaml",
        "image:\n",
        "image: [\n",
    );
    let out = promoter(&[
        "plan",
        "--repo",
        dir,
        "--output",
        "json",
        "--at",
        "2026-11-24T00:00:00Z",
    ]);
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("clusters/qa/calculator/client/values.yaml:"),
        "{}",
        stderr(&out)
    );
    let plan: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let rows: Vec<_> = plan["promotions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{} {}", p["service"], p["to"]))
        .collect();
    assert_eq!(
        rows,
        [
            "\"client\" \"prod\"",
            "\"maths-api\" \"qa\"",
            "\"maths-api\" \"prod\""
        ]
    );
    assert_eq!(
        row(&plan, "client", "prod")["reasons"][0],
        "qa has no client to promote from"
    );
}

#[test]
fn promote_dry_run_prints_a_diff_of_only_the_tag_lines() {
    let repo = SampleRepo::new("2026-11-01T00:00:00Z");
    let out = promoter(&[
        "promote",
        "maths-api",
        "--to",
        "qa",
        "--dry-run",
        "--repo",
        repo.path().to_str().unwrap(),
        "--at",
        "2026-11-24T00:00:00Z",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("maths-api qa <- dev: promote (1.2.1 -> 1.3.0)\n  pass order:"),
        "{text}"
    );
    assert!(
        text.contains(
            "branch promoter/qa/maths-api\ncommit \"promote maths-api to qa: 1.2.1 -> 1.3.0\""
        ),
        "{text}"
    );
    let changed: Vec<&str> = text
        .lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .collect();
    assert_eq!(
        changed,
        [
            "-  tag: 1.2.1",
            "+  tag: 1.3.0",
            "-          image: \"registry.gitlab.com/acme/calculator/maths-api:1.2.1\"",
            "+          image: \"registry.gitlab.com/acme/calculator/maths-api:1.3.0\""
        ]
    );
    // Nothing was written.
    let values = std::fs::read_to_string(
        repo.path()
            .join("clusters/qa/calculator/maths-api/values.yaml"),
    )
    .unwrap();
    assert!(values.contains("tag: 1.2.1"));
}

#[test]
fn promote_refuses_unknown_names_clearly() {
    let repo = SampleRepo::new("2026-11-01T00:00:00Z");
    let dir = repo.path().to_str().unwrap();
    let out = promoter(&[
        "promote",
        "maths-api",
        "--to",
        "stage",
        "--dry-run",
        "--repo",
        dir,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no environment `stage` (known: dev, qa, prod)"),
        "{}",
        stderr(&out)
    );
    let out = promoter(&["promote", "nope", "--to", "qa", "--dry-run", "--repo", dir]);
    assert!(
        stderr(&out).contains("no service `nope` in qa"),
        "{}",
        stderr(&out)
    );
    let out = promoter(&[
        "promote",
        "maths-api",
        "--to",
        "dev",
        "--dry-run",
        "--repo",
        dir,
    ]);
    assert!(
        stderr(&out).contains("`dev` is the first environment"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn edit_writes_atomically_and_errors_name_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.yaml");
    std::fs::write(&file, "image:\n  name: x\n  tag: 1.2.3 # pinned\n").unwrap();
    let f = file.to_str().unwrap();
    let out = promoter(&["edit", f, "--path", "image.tag", "--value", "2.10"]);
    assert_eq!(
        stdout(&out),
        "image:\n  name: x\n  tag: \"2.10\" # pinned\n"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "image:\n  name: x\n  tag: 1.2.3 # pinned\n",
        "stdout only"
    );

    let out = promoter(&[
        "edit",
        f,
        "--path",
        "image.tag",
        "--value",
        "1.2.4",
        "--write",
    ]);
    assert!(out.status.success());
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "image:\n  name: x\n  tag: 1.2.4 # pinned\n"
    );

    let out = promoter(&["edit", f, "--path", "image.repo", "--value", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!("{f}:2:3: `image.repo` not found in document 0: `image` has no key `repo`\n")
    );
    let out = promoter(&["edit", f, "--path", "image", "--value", "x"]);
    assert_eq!(
        stderr(&out),
        format!("{f}:2:3: `image` is a mapping, not a scalar: give the path of a single value\n")
    );
    let out = promoter(&["edit", f, "--path", "a..b", "--value", "x"]);
    assert!(
        stderr(&out).contains("invalid YAML path `a..b` at character 3"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_lists_every_command_and_online_ones_need_configuration() {
    let out = promoter(&["--help"]);
    let help = stdout(&out);
    for command in ["plan", "check", "edit", "promote", "reconcile", "daemon"] {
        assert!(
            help.contains(&format!("  {command} ")),
            "{command} missing in {help}"
        );
    }
    let empty = tempfile::tempdir().unwrap();
    for args in [
        &["reconcile", "--once"][..],
        &["daemon"][..],
        &["promote", "maths-api", "--to", "qa"][..],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_promoter"))
            .args(args)
            .current_dir(empty.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("gitlab.url"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn the_readme_example_configuration_is_valid() {
    let readme = std::fs::read_to_string(crate::support::project_root().join("README.md")).unwrap();
    let section = &readme[readme.find("## Running against GitLab").unwrap()..];
    let start = section.find("```yaml\n").unwrap() + "```yaml\n".len();
    let example = &section[start..start + section[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("promoter.yaml");
    std::fs::write(&file, example).unwrap();
    let settings = promoter::config::load(Some(&file), Some(Default::default())).unwrap();
    assert_eq!(settings.gitlab.project.as_deref(), Some("acme/calculator"));
    assert_eq!(settings.git.branch, "main");
    assert_eq!(
        settings.reconcile.resync_interval,
        std::time::Duration::from_secs(300)
    );
}
