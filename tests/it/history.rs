use serde_json::Value;

use crate::support::{SampleRepo, promoter, stderr, stdout};

const DAY: i64 = 86_400;

/// The sample imported on day 0, then maths-api 1.4.0 in dev on day 1, qa on day 2, prod on
/// day 4.
fn released() -> SampleRepo {
    let repo = SampleRepo::new("2026-11-01T00:00:00Z");
    repo.set_tag("dev", "maths-api", "1.3.0", "1.4.0");
    repo.commit("release maths-api 1.4.0", "2026-11-02T00:00:00Z");
    repo.set_tag("qa", "maths-api", "1.2.1", "1.4.0");
    repo.commit(
        "Merge branch 'promoter/qa/maths-api' into 'main'\n\nSee merge request team/calculator!12\n",
        "2026-11-03T00:00:00Z",
    );
    repo.set_tag("prod", "maths-api", "1.2.0", "1.4.0");
    repo.commit("promote maths-api 1.4.0 to prod", "2026-11-05T00:00:00Z");
    repo
}

fn history(repo: &SampleRepo, args: &[&str]) -> std::process::Output {
    let mut all = vec!["history"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--repo", repo.path().to_str().unwrap()]);
    all.extend_from_slice(&["--at", "2026-11-10T00:00:00Z"]);
    promoter(&all)
}

#[test]
fn json_lists_every_tag_and_the_lead_times() {
    let repo = released();
    let out = history(&repo, &["maths-api", "--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let value: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(value["generated_at"], "2026-11-10T00:00:00Z");

    let deployments: Vec<_> = value["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["service"], "maths-api");
            (
                d["env"].as_str().unwrap().to_string(),
                d["tag"].as_str().unwrap().to_string(),
                d["landed"]["time"].as_str().unwrap().to_string(),
                d["left"]["time"].as_str().map(str::to_string),
                d["duration"]["seconds"].as_i64().unwrap(),
            )
        })
        .collect();
    let row = |env: &str, tag: &str, landed: &str, left: Option<&str>, days: i64| {
        let day = |d: &str| format!("2026-11-0{d}T00:00:00Z");
        (
            env.into(),
            tag.into(),
            day(landed),
            left.map(day),
            days * DAY,
        )
    };
    assert_eq!(
        deployments,
        [
            row("dev", "1.3.0", "1", Some("2"), 1),
            row("dev", "1.4.0", "2", None, 8),
            row("qa", "1.2.1", "1", Some("3"), 2),
            row("qa", "1.4.0", "3", None, 7),
            row("prod", "1.2.0", "1", Some("5"), 4),
            row("prod", "1.4.0", "5", None, 5),
        ]
    );
    let qa = &value["deployments"][3];
    assert_eq!(
        qa["mr"],
        Value::Null,
        "git gives the summary only, not the body"
    );
    assert_eq!(
        qa["landed"]["summary"],
        "Merge branch 'promoter/qa/maths-api' into 'main'"
    );

    let pairs: Vec<_> = value["lead_times"]["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                format!(
                    "{}->{}",
                    p["from"].as_str().unwrap(),
                    p["to"].as_str().unwrap()
                ),
                p["median_30d"]["seconds"].as_i64(),
                p["samples_30d"].as_u64().unwrap(),
                p["median_90d"]["seconds"].as_i64(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [
            ("dev->qa".to_string(), Some(DAY), 1, Some(DAY)),
            ("qa->prod".to_string(), Some(2 * DAY), 1, Some(2 * DAY)),
            ("dev->prod".to_string(), Some(3 * DAY), 1, Some(3 * DAY)),
        ]
    );
    assert_eq!(value["lead_times"]["pairs"][0]["median_30d"]["human"], "1d");
    let dev = &value["lead_times"]["frequency"][0];
    assert_eq!(
        (&dev["env"], &dev["landings_30d"], &dev["landings_90d"]),
        (&Value::from("dev"), &Value::from(2), &Value::from(2))
    );
}

#[test]
fn table_filtered_to_one_environment() {
    let repo = released();
    let out = history(&repo, &["--env", "qa"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let rows: Vec<_> = text
        .lines()
        .filter(|l| l.contains("maths-api") || l.starts_with("client"))
        .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        rows,
        [
            "client qa 0.4.0 2026-11-01",
            "maths-api qa 1.2.1 2026-11-01",
            "maths-api qa 1.4.0 2026-11-03",
        ],
        "{text}"
    );
    assert!(text.contains("dev -> qa"), "{text}");
    assert!(text.contains("qa -> prod"), "{text}");
    assert!(!text.contains("dev -> prod"), "{text}");
    assert!(
        text.contains("history as of 2026-11-10T00:00:00+00:00"),
        "{text}"
    );
}

#[test]
fn unknown_service_or_environment_fails() {
    let repo = released();
    for args in [&["nope"][..], &["--env", "staging"][..]] {
        let out = history(&repo, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains("no "), "{}", stderr(&out));
    }
}
