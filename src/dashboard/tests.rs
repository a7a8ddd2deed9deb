//! The dashboard on the sample's chain (dev -> qa -> prod) with history given as data: cell
//! states, ages and reasons, lead points, and the page they render to.

use std::collections::BTreeMap;
use std::sync::Arc;

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
        assert_eq!(c.age(data.generated_at).as_deref(), age, "{service} {env}");
        assert_eq!(c.state, state, "{service} {env}");
        assert_eq!(c.candidate.as_deref(), candidate, "{service} {env}");
        assert_eq!(c.failing_gates, gates, "{service} {env}");
    }
    let qa = cell(&data, "api", "qa");
    assert_eq!(
        qa.age_secs(data.generated_at),
        Some(45 * 86_400 + 10 * 3600 + 30 * 60)
    );
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
fn the_lead_view_has_medians_per_pair_and_the_slowest_recent_promotions() {
    let data = data(&history(), &[]);
    /// (pair, 30-day median, samples, 90-day median, samples)
    type Medians = (String, Option<String>, usize, Option<String>, usize);
    let pairs: Vec<Medians> = data
        .lead
        .pairs
        .iter()
        .map(|p| {
            (
                format!("{}->{}", p.from, p.to),
                p.median_30d.map(|s| s.human()),
                p.samples_30d,
                p.median_90d.map(|s| s.human()),
                p.samples_90d,
            )
        })
        .collect();
    let h = |s: &str| Some(s.to_string());
    assert_eq!(
        pairs,
        [
            ("dev->qa".to_string(), h("1d"), 1, h("5d"), 3),
            ("qa->prod".to_string(), None, 0, h("6d"), 1),
            ("dev->prod".to_string(), None, 0, h("11d"), 1),
        ]
    );
    // Only web 2.0.0 landed (in qa) within the last 30 days; api's promotions are older.
    let slowest: Vec<(&str, &str, &str, &str, String)> = data
        .lead
        .slowest
        .iter()
        .map(|s| {
            (
                s.service.as_str(),
                s.tag.as_str(),
                s.from.as_str(),
                s.to.as_str(),
                s.lead.human(),
            )
        })
        .collect();
    assert_eq!(slowest, [("web", "2.0.0", "dev", "qa", "1d".to_string())]);
}

#[test]
fn rows_carry_the_folder_under_the_environment() {
    let data = data(&history(), &[]);
    let folders: Vec<(&str, &str)> = data
        .rows
        .iter()
        .map(|r| (r.service.as_str(), r.folder.as_str()))
        .collect();
    assert_eq!(folders, [("api", "apps"), ("web", "apps")]);
}

#[test]
fn without_history_there_are_no_ages_and_no_lead_points() {
    let data = data(&TagHistory::unknown(), &[]);
    let dev = cell(&data, "api", "dev");
    assert_eq!(
        (dev.tag.as_deref(), dev.age(data.generated_at).as_deref()),
        (Some("1.3.0"), None)
    );
    assert!(data.lead.pairs.iter().all(|p| p.median_90d.is_none()));
    assert!(data.lead.slowest.is_empty());
    let page = render(&data, None);
    assert!(
        page.contains("No landing times known: no git history."),
        "{page}"
    );
}

/// The text between `start` and the next `end` after it.
fn between<'a>(page: &'a str, start: &str, end: &str) -> &'a str {
    let from = page.find(start).unwrap_or_else(|| panic!("no {start:?}")) + start.len();
    &page[from..from + page[from..].find(end).unwrap()]
}

#[test]
fn the_page_puts_what_is_stuck_first_then_pending_then_the_up_to_date_folded() {
    let mr = MrLink {
        title: "Promote api 1.2.1 to prod".into(),
        url: "https://gitlab.example.com/ops/calculator/-/merge_requests/7".into(),
        env: "prod".into(),
        service: "api".into(),
    };
    let mut data = data(&history(), &[mr]);
    data.controls.push(Control {
        kind: "freeze",
        env: "prod".into(),
        text: "year-end (every year 12-20 to 01-03, UTC): reduced staffing".into(),
    });
    let page = render(&data, None);
    let order = [
        "<main>",
        "Promotions are stopped",
        "<strong>freeze</strong> in prod: year-end",
        "<a href=\"#blocked\"><strong>1</strong> <span aria-hidden=\"true\">✕</span> promotions blocked</a>",
        "<a href=\"#pending\"><strong>1</strong> <span aria-hidden=\"true\">▶</span> promotions promotable</a>",
        "<a href=\"#settled\"><strong>1</strong> <span aria-hidden=\"true\">✓</span> promotions up to date</a>",
        "A promotion is one service moving into one environment after the first (3 here)",
        "id=\"filter-name\"",
        "<h2 id=\"blocked-title\">Blocked promotions (1)</h2>",
        "<tr class=\"group\"><th colspan=\"4\" scope=\"rowgroup\" class=\"why\">1 blocked by <strong>soak</strong><ul><li>soak: has run 30m in dev, needs 1h (policies/qa.yaml): eligible at 2026-11-24T11:00:00+00:00</li></ul></th></tr>",
        "<tr id=\"b-api--qa\" data-f=\"apps\">",
        "<h2 id=\"pending-title\">Services with promotions pending (1)</h2>",
        "<tbody class=\"g\" data-group=\"apps\">",
        "<tr id=\"s-api\" data-st=\"blocked promotable\">",
        "<a href=\"#b-api--qa\">why</a>",
        "<a href=\"https://gitlab.example.com/ops/calculator/-/merge_requests/7\">MR</a>",
        "<h2 id=\"settled-title\">Up to date everywhere (1)</h2>",
        "<details id=\"settled\">",
        "<tr id=\"s-web\">",
        "<div id=\"after-tables\" tabindex=\"-1\"></div>",
        "<a href=\"https://gitlab.example.com/ops/calculator/-/merge_requests/7\">Promote api 1.2.1 to prod</a>",
        "<title id=\"lead-svg-title\">Median lead time between environments</title>",
        "dev to qa: 30 days: 1d (1 tag), 90 days: 5d (3 tags)",
        "<tr><th scope=\"row\">web</th><td><code>2.0.0</code></td><td>dev → qa</td><td>1d</td>",
        "</main>",
    ];
    let mut at = 0;
    for needle in order {
        let found = page[at..]
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not after byte {at} in\n{page}"));
        at += found + needle.len();
    }
    assert!(page.contains("<a class=\"skip\" href=\"#after-tables\">"));
    // The blocked cell in the matrix: its word (the stylesheet adds a shape beside the colour).
    let api = between(&page, "<tr id=\"s-api\"", "</tr>");
    assert!(
        api.contains("<td class=\"c blocked\"><code>1.2.1</code> <small>45d 10h</small><br><span class=\"state\">blocked</span> <code>→ 1.3.0</code> <a href=\"#b-api--qa\">why</a></td>"),
        "{api}"
    );
    // Up-to-date rows are compact: no state pill, no reasons.
    let web = between(&page, "<tr id=\"s-web\"", "</tr>");
    assert!(!web.contains("class=\"state\""), "{web}");
    assert!(
        web.contains("<td class=\"up_to_date\">2.0.0 <small>22d 10h</small></td>"),
        "{web}"
    );

    for absent in [
        "http-equiv=\"refresh\"",
        "<link",
        " src=",
        " style=\"",
        "<details open",
    ] {
        assert!(!page.contains(absent), "{absent:?} in the page");
    }
    assert_eq!(page.matches("<script").count(), 1, "only the filter script");
    let refreshing = render(&data, Some(60));
    assert!(refreshing.contains("<meta http-equiv=\"refresh\" content=\"60\">"));
}

#[test]
fn only_the_embedded_style_and_script_may_run() {
    use base64::Engine as _;
    use sha2::{Digest, Sha256};
    let page = render(&data(&history(), &[]), None);
    let csp = between(
        &page,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"",
        "\"",
    )
    .replace("&#x27;", "'")
    .replace("&#x3D;", "=");
    let script = between(&page, "<script>", "</script>");
    let style = between(&page, "<style>", "</style>");
    let hash = |text: &str| {
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
    };
    assert_eq!(
        csp,
        format!(
            "default-src 'none'; style-src 'sha256-{}'; script-src 'sha256-{}'; base-uri 'none'; form-action 'none'",
            hash(style),
            hash(script)
        )
    );
}

#[test]
fn anchors_are_valid_ids_whatever_the_name() {
    let mut data = data(&history(), &[]);
    Arc::make_mut(&mut data.rows[0]).service = "api v2/\"x\"".into();
    let page = render(&data, None);
    assert!(page.contains("id=\"s-api_20_v2_2f__22_x_22_\""), "{page}");
}

#[test]
fn text_from_people_is_escaped() {
    let mut data = data(&history(), &[]);
    Arc::make_mut(&mut data.rows[0]).cells[1]
        .reasons
        .push("soak: <script>alert('x')</script> & more".into());
    Arc::make_mut(&mut data.rows[0]).service = "api<b>".into();
    data.open_mrs.push(MrLink {
        title: "<img src=x onerror=alert(1)>".into(),
        url: "javascript:alert(1)".into(),
        env: "qa".into(),
        service: "api".into(),
    });
    let page = render(&data, None);
    assert_eq!(
        page.matches("<script").count(),
        1,
        "only the filter script: {page}"
    );
    assert!(!page.contains("<img"), "{page}");
    assert!(!page.contains("<b>"), "{page}");
    assert!(!page.contains("href=\"javascript:"), "{page}");
    assert!(page.contains("&lt;script&gt;alert("), "{page}");
    assert!(page.contains("&amp; more"), "{page}");
}

#[test]
fn the_kept_dashboard_equals_one_built_whole_at_every_cycle() {
    let snapshot = Arc::new(Snapshot::load(&testkit::tree(&DEPLOYED)));
    let history = Arc::new(history());
    let no_open = BTreeMap::new();
    let at = |s: &str| -> DateTime<Utc> { s.parse().unwrap() };
    let link = MrLink {
        title: "Promote api 1.3.0 to qa".into(),
        url: "https://gitlab.example/mr/1".into(),
        env: "qa".into(),
        service: "api".into(),
    };
    let read = (&snapshot, &history);
    let whole = |now: DateTime<Utc>, plan: &Plan, open: &[MrLink]| {
        build(&snapshot, plan, &history, open, now)
    };
    let plan_at = |now| {
        Arc::new(plan::plan(
            &snapshot,
            Facts::offline(&history, &no_open),
            &[],
            now,
        ))
    };
    let first = at(NOW);
    let mut kept = Kept::new(
        read,
        &plan_at(first),
        lead::view(&snapshot, &history, first),
        &[],
        first,
    );
    assert_eq!(*kept.data(), whole(first, &plan_at(first), &[]));
    // Seconds, then minutes (api's soak into qa ends at 11:00), a day, the year-end freeze in
    // prod, and past the lead-time windows; an MR opens on the way.
    let nows = [
        "2026-11-24T10:30:20Z",
        "2026-11-24T10:31:05Z",
        "2026-11-24T11:10:00Z",
        "2026-11-25T11:10:00Z",
        "2026-12-21T09:00:00Z",
        "2027-03-01T00:00:00Z",
    ];
    let mut held = Vec::new();
    for (i, now) in nows.map(at).into_iter().enumerate() {
        let open = if i >= 2 {
            vec![link.clone()]
        } else {
            Vec::new()
        };
        let plan = plan_at(now);
        let lead = lead::view(&snapshot, &history, now);
        // The last cycle's data is still held elsewhere (the chat handlers): not changed under them.
        let before = kept.data();
        let data = kept.update(read, &plan, lead, &open, now, None);
        assert_eq!(*data, whole(now, &plan, &open), "at {now}");
        held.push((before.generated_at, before));
    }
    for (generated_at, data) in held {
        assert_eq!(data.generated_at, generated_at);
    }
    // Another snapshot: built whole.
    let other = Arc::new(Snapshot::load(&testkit::tree(&DEPLOYED[..3])));
    let now = at("2027-03-01T00:01:00Z");
    let plan = Arc::new(plan::plan(
        &other,
        Facts::offline(&history, &no_open),
        &[],
        now,
    ));
    let data = kept.update(
        (&other, &history),
        &plan,
        lead::view(&other, &history, now),
        &[],
        now,
        None,
    );
    assert_eq!(*data, build(&other, &plan, &history, &[], now));
}
