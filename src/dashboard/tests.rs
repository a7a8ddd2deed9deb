//! The dashboard on the sample's chain (dev -> qa -> prod) with history given as data: cell
//! states, ages and reasons, lead points, and the page they render to.

use std::collections::BTreeMap;

use super::*;
use crate::plan::{self, Facts};
use crate::testkit::{self, commit, values_path};

const DEPLOYED: [(&str, &str, &str); 5] = [
    ("dev", "api", "1.3.0"),
    ("qa", "api", "1.2.1"),
    ("prod", "api", "1.2.0"),
    ("dev", "web", "2.0.0"),
    ("qa", "web", "2.0.0"),
];

const LANDED: [(&str, &str, &str, &str); 9] = [
    ("dev", "api", "1.2.0", "2026-09-20T00:00:00Z"),
    ("qa", "api", "1.2.0", "2026-09-25T00:00:00Z"),
    ("prod", "api", "1.2.0", "2026-10-01T00:00:00Z"),
    ("dev", "api", "1.2.1", "2026-10-05T00:00:00Z"),
    ("qa", "api", "1.2.1", "2026-10-10T00:00:00Z"),
    ("dev", "web", "2.0.0", "2026-11-01T00:00:00Z"),
    ("qa", "web", "2.0.0", "2026-11-02T00:00:00Z"),
    ("dev", "api", "1.3.0", "2026-11-24T10:00:00Z"),
    ("dev", "api", "1.3.0", "2026-11-24T10:05:00Z"),
];

/// (service, env, tag, age, state, candidate, failing gates)
type Expected = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    CellState,
    Option<&'static str>,
    &'static [&'static str],
);

const NOW: &str = "2026-11-24T10:30:00Z";

fn history() -> TagHistory {
    let mut h = TagHistory::new();
    for (n, (env, service, tag, at)) in LANDED.iter().enumerate() {
        h.record(
            &commit(n as u32 + 1, at),
            &values_path(env, service),
            Some(tag),
        );
    }
    h
}

fn data(history: &TagHistory, open: &[MrLink]) -> DashboardData {
    let snapshot = Snapshot::load(&testkit::tree(&DEPLOYED));
    assert!(snapshot.findings.is_empty(), "{:?}", snapshot.findings);
    let now = NOW.parse().unwrap();
    let no_open = BTreeMap::new();
    let plan = plan::plan(&snapshot, Facts::offline(history, &no_open), &[], now);
    build(&snapshot, &plan, history, open, now)
}

fn cell<'a>(data: &'a DashboardData, service: &str, env: &str) -> &'a Cell {
    data.rows
        .iter()
        .find(|r| r.service == service)
        .and_then(|r| r.cells.iter().find(|c| c.env == env))
        .unwrap()
}

#[test]
fn cells_carry_tag_age_and_the_state_of_the_decision_into_their_environment() {
    let data = data(&history(), &[]);
    assert_eq!(data.environments, ["dev", "qa", "prod"]);
    assert_eq!(
        data.rows
            .iter()
            .map(|r| r.service.as_str())
            .collect::<Vec<_>>(),
        ["api", "web"]
    );
    let table: [Expected; 6] = [
        (
            "api",
            "dev",
            Some("1.3.0"),
            Some("30m"),
            CellState::Source,
            None,
            &[],
        ),
        (
            "api",
            "qa",
            Some("1.2.1"),
            Some("45d 10h"),
            CellState::Blocked,
            Some("1.3.0"),
            &["soak"],
        ),
        (
            "api",
            "prod",
            Some("1.2.0"),
            Some("54d 10h"),
            CellState::Promotable,
            Some("1.2.1"),
            &[],
        ),
        (
            "web",
            "dev",
            Some("2.0.0"),
            Some("23d 10h"),
            CellState::Source,
            None,
            &[],
        ),
        (
            "web",
            "qa",
            Some("2.0.0"),
            Some("22d 10h"),
            CellState::UpToDate,
            None,
            &[],
        ),
        ("web", "prod", None, None, CellState::Absent, None, &[]),
    ];
    for (service, env, tag, age, state, candidate, gates) in table {
        let c = cell(&data, service, env);
        assert_eq!(c.tag.as_deref(), tag, "{service} {env}");
        assert_eq!(c.age.as_deref(), age, "{service} {env}");
        assert_eq!(c.state, state, "{service} {env}");
        assert_eq!(c.candidate.as_deref(), candidate, "{service} {env}");
        assert_eq!(c.failing_gates, gates, "{service} {env}");
    }
    let qa = cell(&data, "api", "qa");
    assert_eq!(qa.age_secs, Some(45 * 86_400 + 10 * 3600 + 30 * 60));
    assert_eq!(qa.landed, Some("2026-10-10T00:00:00Z".parse().unwrap()));
    assert_eq!(
        qa.reasons,
        [
            "soak: has run 30m in dev, needs 1h (policies/qa.yaml): eligible at 2026-11-24T11:00:00+00:00"
        ]
    );
    assert!(
        cell(&data, "api", "prod")
            .reasons
            .iter()
            .any(|r| r.starts_with("soak: "))
    );
}

#[test]
fn lead_points_are_first_landings_per_tag_in_promotion_order() {
    let data = data(&history(), &[]);
    let points: Vec<(&str, &str, &str, String)> = data
        .lead_points
        .iter()
        .map(|p| {
            (
                p.service.as_str(),
                p.tag.as_str(),
                p.env.as_str(),
                p.landed.to_rfc3339(),
            )
        })
        .collect();
    let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap().to_rfc3339();
    assert_eq!(
        points,
        [
            ("api", "1.2.0", "dev", t("2026-09-20T00:00:00Z")),
            ("api", "1.2.0", "qa", t("2026-09-25T00:00:00Z")),
            ("api", "1.2.0", "prod", t("2026-10-01T00:00:00Z")),
            ("api", "1.2.1", "dev", t("2026-10-05T00:00:00Z")),
            ("api", "1.2.1", "qa", t("2026-10-10T00:00:00Z")),
            ("api", "1.3.0", "dev", t("2026-11-24T10:00:00Z")),
            ("web", "2.0.0", "dev", t("2026-11-01T00:00:00Z")),
            ("web", "2.0.0", "qa", t("2026-11-02T00:00:00Z")),
        ]
    );
}

#[test]
fn without_history_there_are_no_ages_and_no_lead_points() {
    let data = data(&TagHistory::unknown(), &[]);
    let dev = cell(&data, "api", "dev");
    assert_eq!(
        (dev.tag.as_deref(), dev.age.as_deref()),
        (Some("1.3.0"), None)
    );
    assert!(data.lead_points.is_empty());
    let page = render(&data, None);
    assert!(page.contains("No landing times known"), "{page}");
}

#[test]
fn the_page_is_a_captioned_matrix_with_state_words_and_reasons() {
    let mr = MrLink {
        title: "Promote api 1.2.1 to prod".into(),
        url: "https://gitlab.example.com/ops/calculator/-/merge_requests/7".into(),
        env: "prod".into(),
        service: "api".into(),
    };
    let page = render(&data(&history(), &[mr]), None);
    for needle in [
        "<!DOCTYPE html>",
        "<html lang=\"en\">",
        "<title>Promotions: dev → qa → prod · promoter</title>",
        "<caption id=\"matrix-caption\">",
        "<th scope=\"col\">Service</th>",
        "<th scope=\"col\">prod</th>",
        "<th scope=\"row\">api</th>",
        "<td class=\"cell blocked\" data-env=\"qa\" data-state=\"blocked\">",
        "<span class=\"state\">blocked</span>",
        "<span class=\"state\">promotable</span>",
        "<span class=\"state\">up to date</span>",
        "<span class=\"state\">not deployed</span>",
        "<summary>why: soak</summary>",
        "<li>soak: has run 30m in dev, needs 1h (policies/qa.yaml): eligible at 2026-11-24T11:00:00+00:00</li>",
        "<a href=\"https://gitlab.example.com/ops/calculator/-/merge_requests/7\">Promote api 1.2.1 to prod</a>",
        "<svg ",
        "<title id=\"lead-svg-title\">",
        "<desc id=\"lead-svg-desc\">",
        "<polyline points=",
        "api 1.2.0 landed in prod at 2026-10-01 00:00 UTC",
        "dev to prod in 11d",
    ] {
        assert!(page.contains(needle), "{needle:?} not in\n{page}");
    }
    for absent in ["http-equiv=\"refresh\"", "<script", "<link", " src="] {
        assert!(!page.contains(absent), "{absent:?} in the page");
    }
    let refreshing = render(&data(&history(), &[]), Some(60));
    assert!(refreshing.contains("<meta http-equiv=\"refresh\" content=\"60\">"));
    assert!(refreshing.contains("<p class=\"muted\">None open.</p>"));
}

#[test]
fn text_from_people_is_escaped() {
    let mut data = data(&history(), &[]);
    data.rows[0].cells[1]
        .reasons
        .push("soak: <script>alert('x')</script> & more".into());
    data.rows[0].service = "api<b>".into();
    data.open_mrs.push(MrLink {
        title: "<img src=x onerror=alert(1)>".into(),
        url: "javascript:alert(1)".into(),
        env: "qa".into(),
        service: "api".into(),
    });
    let page = render(&data, None);
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert!(!page.contains("<b>"), "{page}");
    assert!(!page.contains("href=\"javascript:"), "{page}");
    assert!(page.contains("&lt;script&gt;alert("), "{page}");
    assert!(page.contains("&amp; more"), "{page}");
}
