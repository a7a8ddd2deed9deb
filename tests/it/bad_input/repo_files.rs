use super::{SAMPLE_ROWS, check_reports, plan_rows, reasons, run};
use crate::support::{SampleRepo, stderr};

fn sample() -> SampleRepo {
    let repo = SampleRepo::new("2026-11-01T00:00:00Z");
    repo.without_network_gates();
    repo.commit("no network gates", "2026-11-01T00:00:00Z");
    repo
}

#[test]
fn the_untouched_sample_checks_clean_and_plans_every_row() {
    let repo = sample();
    let out = run(&repo, &["check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (rows, _, err) = plan_rows(&repo);
    assert_eq!(rows, SAMPLE_ROWS);
    assert_eq!(err, "");
}

#[test]
fn a_malformed_environment_leaves_out_itself_and_what_promotes_from_it() {
    let repo = sample();
    repo.replace(
        "environments/qa.yaml",
        "auto_merge: true",
        "auto_merge: [true",
    );
    check_reports(
        &repo,
        &[
            "environments/qa.yaml:9:19: invalid YAML: illegal placement of ':' indicator",
            "environments/prod.yaml:5:16: promotes_from `qa`, whose file environments/qa.yaml is invalid: fix it first",
        ],
    );
    let (rows, _, err) = plan_rows(&repo);
    assert!(rows.is_empty(), "{rows:?}");
    assert!(
        err.starts_with(
            "promoter: 2 problem(s) left some files out; run `promoter check` for details:\n"
        ),
        "{err}"
    );

    // prod broken: dev -> qa is still planned.
    let repo = sample();
    repo.replace(
        "environments/prod.yaml",
        "name: prod",
        "name: prod\n  path: x",
    );
    check_reports(
        &repo,
        &[
            "environments/prod.yaml:4:7: invalid YAML: mapping values are not allowed in this context",
        ],
    );
    let (rows, _, _) = plan_rows(&repo);
    assert_eq!(rows, ["client qa up_to_date", "maths-api qa promote"]);
}

#[test]
fn a_malformed_policy_blocks_every_promotion() {
    let repo = sample();
    repo.replace("policies/qa.yaml", "soak: 1h", "soak: \"1h");
    check_reports(
        &repo,
        &["policies/qa.yaml:4:7: invalid YAML: invalid indentation in quoted scalar"],
    );
    let (rows, plan, _) = plan_rows(&repo);
    assert_eq!(
        rows,
        [
            "client qa up_to_date",
            "client prod blocked",
            "maths-api qa blocked",
            "maths-api prod blocked"
        ]
    );
    assert_eq!(
        reasons(&plan, "maths-api", "qa")[0],
        "policy: policies/qa.yaml invalid: every promotion waits until it is fixed (run `promoter check`)"
    );
}

#[test]
fn malformed_values_or_release_leave_out_only_that_service() {
    for (file, from, to, line) in [
        (
            "clusters/qa/calculator/client/values.yaml",
            "image:\n",
            "image: {\n",
            "clusters/qa/calculator/client/values.yaml:22:6: invalid YAML: while parsing a flow mapping, did not find expected ',' or '}'",
        ),
        (
            "clusters/qa/calculator/maths-api/release.yml",
            "kind: Deployment",
            "kind: [Deployment",
            "clusters/qa/calculator/maths-api/release.yml:",
        ),
    ] {
        let repo = sample();
        repo.replace(file, from, to);
        let out = run(&repo, &["check"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).lines().any(|l| l.starts_with(line)),
            "{line} in {}",
            stderr(&out)
        );
        let (rows, _, err) = plan_rows(&repo);
        assert!(err.contains(file), "{err}");
        let service = file.split('/').nth(3).unwrap();
        let gone = format!("{service} qa");
        let expected: Vec<&str> = SAMPLE_ROWS
            .iter()
            .copied()
            .filter(|r| !r.starts_with(&gone))
            .collect();
        let rows: Vec<&str> = rows.iter().map(|r| r.as_str()).collect();
        // prod still has a row, blocked: qa has nothing to promote from.
        let rows: Vec<&str> = rows
            .into_iter()
            .filter(|r| *r != format!("{service} prod blocked"))
            .collect();
        let expected: Vec<&str> = expected
            .into_iter()
            .filter(|r| !r.starts_with(&format!("{service} prod")))
            .collect();
        assert_eq!(rows, expected, "{file}");
    }
}

#[test]
fn a_release_that_runs_another_tag_than_values_leaves_the_service_out() {
    let repo = sample();
    repo.replace(
        "clusters/dev/calculator/maths-api/release.yml",
        "maths-api:1.3.0\"",
        "maths-api:9.9.9\"",
    );
    check_reports(
        &repo,
        &[
            "clusters/dev/calculator/maths-api/release.yml:77: spec.template.spec.containers[0].image has tag 9.9.9 but clusters/dev/calculator/maths-api/values.yaml says 1.3.0 (line 21): render the chart again or fix the tag",
        ],
    );
    let (rows, plan, err) = plan_rows(&repo);
    assert_eq!(
        rows,
        [
            "client qa up_to_date",
            "client prod promote",
            "maths-api qa blocked",
            "maths-api prod promote"
        ]
    );
    assert_eq!(
        reasons(&plan, "maths-api", "qa"),
        ["dev has no maths-api to promote from"]
    );
    assert!(err.contains("has tag 9.9.9 but"), "{err}");
}

#[test]
fn a_cycle_or_an_unknown_promotes_from_is_named_at_its_line() {
    let repo = sample();
    repo.replace(
        "environments/dev.yaml",
        "path: clusters/dev",
        "path: clusters/dev\npromotes_from: prod",
    );
    check_reports(
        &repo,
        &[
            "environments/dev.yaml:5:16: promotes_from forms a cycle: dev <- prod <- qa <- dev; the first environment (whose tags come from CI) must have no promotes_from",
            "environments/prod.yaml:5:16: promotes_from forms a cycle: prod <- qa <- dev <- prod; the first environment (whose tags come from CI) must have no promotes_from",
            "environments/qa.yaml:5:16: promotes_from forms a cycle: qa <- dev <- prod <- qa; the first environment (whose tags come from CI) must have no promotes_from",
        ],
    );
    let (rows, _, _) = plan_rows(&repo);
    assert!(rows.is_empty(), "{rows:?}");

    let repo = sample();
    repo.replace(
        "environments/qa.yaml",
        "promotes_from: dev",
        "promotes_from: dve",
    );
    check_reports(
        &repo,
        &[
            "environments/qa.yaml:5:16: promotes_from `dve` is not an environment (known: dev, prod, qa): name one of them, or leave promotes_from out on the first environment",
            "environments/prod.yaml:5:16: promotes_from `qa`, which is left out: fix environments/qa.yaml first",
        ],
    );
    let repo = sample();
    repo.replace(
        "environments/prod.yaml",
        "promotes_from: qa",
        "promotes_from: prod",
    );
    check_reports(
        &repo,
        &[
            "environments/prod.yaml:5:16: `prod` promotes from itself: name the environment before it, or leave promotes_from out on the first environment",
        ],
    );
    let (rows, _, _) = plan_rows(&repo);
    assert_eq!(rows, ["client qa up_to_date", "maths-api qa promote"]);
}

#[test]
fn invalid_cron_in_a_schedule_or_an_allowed_window() {
    let repo = sample();
    repo.replace(
        "environments/prod.yaml",
        "schedule: \"0 0 9 * * Tue,Thu\"",
        "schedule: \"0 9 * * Tue,Thu\"",
    );
    repo.replace(
        "policies/qa.yaml",
        "soak: 1h",
        "soak: 1h\nallowed_windows: [\"* * 9-17 * * Mon-Fri\", \"every day at nine\"]",
    );
    check_reports(
        &repo,
        &[
            "environments/prod.yaml:6:11: invalid cron `0 9 * * Tue,Thu`: 5 fields where 6 are needed, seconds first; write 6 fields with seconds, e.g. \"0 0 2 * * *\" (02:00 daily) or \"0 0 9 * * Tue,Thu\"",
            "policies/qa.yaml:5:43: invalid cron `every day at nine`: 4 fields where 6 are needed, seconds first; write 6 fields with seconds, e.g. \"* * 9-16 * * Mon-Fri\"",
        ],
    );
    let (rows, plan, _) = plan_rows(&repo);
    assert_eq!(rows, ["client qa up_to_date", "maths-api qa blocked",]);
    assert_eq!(
        reasons(&plan, "maths-api", "qa")[0],
        "policy: policies/qa.yaml invalid: every promotion waits until it is fixed (run `promoter check`)"
    );
}

#[test]
fn an_unknown_policy_key_names_file_line_and_the_allowed_keys() {
    let repo = sample();
    repo.replace("policies/prod.yaml", "soak: 24h", "soak: 24h\nsoaks: 48h");
    repo.replace("policies/qa.yaml", "soak: 1h", "soak: 1h\nfreezes:\n  - name: x\n    yearly: {from: \"12-20\", to: \"01-03\"}\n    resaon: typo");
    check_reports(
        &repo,
        &[
            "policies/prod.yaml:5:1: unknown field `soaks`, expected one of `environments`, `soak`, `freezes`, `allowed_windows`, `semver`, `max_open_promotions`, `break_glass`, `approvers`, `require_health`, `require_image`, `require_pipeline`, `requesters`, `reviewers`, `group`, `holds` (did you mean `soak`?)",
            "policies/qa.yaml:8:5: freezes[0]: unknown field `resaon`, expected one of `name`, `reason`, `yearly`, `start`, `end` (did you mean `reason`?)",
        ],
    );
}

#[test]
fn service_folders_with_bad_names_are_left_out_and_promote_refuses_path_like_names() {
    let repo = sample();
    let source = repo.path().join("clusters/qa/calculator/client");
    let names = [
        "a..b",
        "with space",
        "ünïcode",
        "...",
        "Upper",
        "line\nbreak",
    ];
    for name in names {
        let dir = repo.path().join("clusters/qa/calculator").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for file in ["values.yaml", "release.yml"] {
            std::fs::copy(source.join(file), dir.join(file)).unwrap();
        }
    }
    let hint = "is not a valid service name: rename the folder with lowercase letters, digits, `-`, `_` or `.` (starting and ending with a letter or digit)";
    check_reports(
        &repo,
        &[
            &format!("clusters/qa/calculator/.../values.yaml: `...` {hint}"),
            &format!("clusters/qa/calculator/Upper/values.yaml: `Upper` {hint}"),
            &format!("clusters/qa/calculator/a..b/values.yaml: `a..b` {hint}"),
            &format!("clusters/qa/calculator/line\\nbreak/values.yaml: `line\\nbreak` {hint}"),
            &format!("clusters/qa/calculator/with space/values.yaml: `with space` {hint}"),
            &format!("clusters/qa/calculator/ünïcode/values.yaml: `ünïcode` {hint}"),
        ],
    );
    let (rows, _, _) = plan_rows(&repo);
    assert_eq!(rows, SAMPLE_ROWS);

    for (service, to, message) in [
        (
            "../prod/maths-api",
            "qa",
            "no service `../prod/maths-api` in qa",
        ),
        (
            "calculator/maths-api",
            "qa",
            "no service `calculator/maths-api` in qa",
        ),
        ("maths api", "qa", "no service `maths api` in qa"),
        ("mäths-api", "qa", "no service `mäths-api` in qa"),
        (
            "maths-api",
            "../prod",
            "no environment `../prod` (known: dev, qa, prod)",
        ),
    ] {
        let out = run(&repo, &["promote", service, "--to", to, "--dry-run"]);
        assert_eq!(out.status.code(), Some(1), "{service}");
        let err = stderr(&out);
        assert!(
            err.lines()
                .any(|l| l.starts_with(&format!("promoter: {message}"))),
            "{message} in {err}"
        );
        assert!(out.stdout.is_empty(), "{service}");
    }
}
