//! The dashboard as GitLab Markdown, for the description of the "Promotion dashboard" issue,
//! in the page's order, what is stuck first: the counts, what stops promotions (holds, freezes,
//! stop-the-line), the blocked promotions with their reasons, then the service × environment
//! matrix (`tag (age)` and a state word with an emoji; services with something pending before
//! the up-to-date ones), the release trains, the open promotion merge requests as links, and
//! an `Updated` line. Pure text; keeping the issue in step is `reconcile::dashboard_issue`'s job.
//!
//! Every text that comes from people (service and environment names, tags, reasons, merge
//! request titles and addresses) is escaped by [`crate::text::markdown`], so it can neither
//! break the table nor turn into links, mentions, references or HTML. Ages are whole days: the
//! issue is only rewritten when something changed, and an age in minutes would change it on
//! every cycle.
//!
//! Size: GitLab refuses a description over [`LIMIT`] characters. The stuck part may use all of
//! it (it is only cut, with a count, if it alone would not fit); the fine part (matrix, trains,
//! merge requests) gets at most [`FINE_LIMIT`] characters and is cut with `… N more` counts.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::{Cell, CellState, DashboardData};
use crate::text::markdown::{inline as escape, plain_code as code};

/// GitLab's limit on an issue description: 1 megabyte, `Gitlab::Database::MAX_TEXT_SIZE_LIMIT`
/// (1,048,576), checked by a length validation, which counts characters.
pub const LIMIT: usize = 1_048_576;

/// What the fine part (everything after the blocked promotions) may take: enough for a few
/// hundred matrix rows, small enough for the issue to load and diff quickly.
pub const FINE_LIMIT: usize = 90_000;

/// What the headings, the `… N more` lines and the `Updated` line may take at most.
const RESERVE: usize = 1_000;

/// The start of the last line, the only one that changes with nothing else.
const UPDATED: &str = "_Updated ";

/// The dashboard as the Markdown description of the dashboard issue.
pub fn markdown(data: &DashboardData) -> String {
    let mut out = Text::new(LIMIT - RESERVE);
    out.line("Maintained by promoter: edits to this description are overwritten.");
    out.line("");
    summary(&mut out, data);
    stops(&mut out, data);
    blocked(&mut out, data);
    // The fine part: whatever the stuck part took, it gets at most FINE_LIMIT.
    out.floor = out.budget.saturating_sub(FINE_LIMIT);
    matrix(&mut out, data);
    trains(&mut out, data);
    open_mrs(&mut out, data);
    out.line("");
    out.line(&format!(
        "{UPDATED}{}_",
        data.generated_at.format("%Y-%m-%d %H:%M UTC")
    ));
    out.text
}

/// `description` without its `Updated` line, line endings and trailing spaces: what two
/// renderings of the same dashboard share.
pub fn without_updated_line(description: &str) -> String {
    let lines: Vec<&str> = description
        .lines()
        .map(str::trim_end)
        .filter(|l| !(l.starts_with(UPDATED) && l.ends_with('_')))
        .collect();
    lines.join("\n").trim_end().to_string()
}

/// The output and how much of the budget is left for items.
struct Text {
    text: String,
    /// Characters that items (rows, list entries) may still take.
    budget: usize,
    /// Items stop when they would bring `budget` below this (the fine part's share).
    floor: usize,
}

impl Text {
    fn new(budget: usize) -> Self {
        Self {
            text: String::new(),
            budget,
            floor: 0,
        }
    }

    /// One line; it counts against the budget (the `… N more` lines and the `Updated` line
    /// may overdraw it: [`RESERVE`] is kept for them).
    fn line(&mut self, line: &str) {
        self.budget = self.budget.saturating_sub(line.chars().count() + 1);
        self.text.push_str(line);
        self.text.push('\n');
    }

    /// Adds `items` while they fit, then `… N more {what}` for the rest; `after_table` puts
    /// a blank line first so the count does not become a table row.
    fn items(
        &mut self,
        items: impl ExactSizeIterator<Item = String>,
        what: &str,
        after_table: bool,
    ) {
        let total = items.len();
        let mut added = 0;
        for item in items {
            let size = item.chars().count() + 1;
            if size + self.floor > self.budget {
                break;
            }
            self.line(&item);
            added += 1;
        }
        if added < total {
            if after_table {
                self.line("");
            }
            self.line(&format!("… {} more {what}", total - added));
        }
    }
}

fn summary(out: &mut Text, data: &DashboardData) {
    let count = |state: CellState| {
        data.rows
            .iter()
            .flat_map(|r| &r.cells)
            .filter(|c| c.state == state)
            .count()
    };
    out.line(&format!(
        "Promotions (one service into one environment): **{}** blocked · **{}** promotable · **{}** up to date",
        count(CellState::Blocked),
        count(CellState::Promotable),
        count(CellState::UpToDate)
    ));
    out.line("");
}

fn matrix(out: &mut Text, data: &DashboardData) {
    out.line("### Services");
    out.line("");
    if data.rows.is_empty() {
        out.line("No services deployed.");
        return;
    }
    let mut header = String::from("| Service |");
    let mut rule = String::from("| --- |");
    for env in &data.environments {
        let _ = write!(header, " {} |", escape(env));
        rule.push_str(" --- |");
    }
    out.line(&header);
    out.line(&rule);
    let (settled, mut rows): (Vec<_>, Vec<_>) =
        data.rows.iter().partition(|r| super::render::settled(r));
    rows.extend(settled);
    let rows = rows.into_iter().map(|row| {
        let mut line = format!("| **{}** |", escape(&row.service));
        for cell in &row.cells {
            let _ = write!(line, " {} |", cell_text(cell, data.generated_at));
        }
        line
    });
    out.items(rows, "services", true);
}

/// `` `1.2.1` (5d)<br>⛔ blocked → `1.4.0` ``, its age at `at`; `—` when absent.
fn cell_text(cell: &Cell, at: DateTime<Utc>) -> String {
    if cell.state == CellState::Absent {
        return "—".to_string();
    }
    let mut text = cell.tag.as_deref().map_or_else(|| "?".to_string(), code);
    if let Some(secs) = cell.age_secs(at) {
        let _ = write!(text, " ({})", days(secs));
    }
    let _ = write!(text, "<br>{} {}", emoji(cell.state), cell.state.word());
    if let Some(candidate) = &cell.candidate {
        let _ = write!(text, " → {}", code(candidate));
    }
    text
}

fn emoji(state: CellState) -> &'static str {
    match state {
        CellState::Source => "📥",
        CellState::UpToDate => "✅",
        CellState::Promotable => "🟦",
        CellState::Blocked => "⛔",
        CellState::Absent => "—",
    }
}

/// Whole days: `<1d`, `3d`.
fn days(secs: i64) -> String {
    match secs / 86_400 {
        0 => "<1d".to_string(),
        n => format!("{n}d"),
    }
}

fn blocked(out: &mut Text, data: &DashboardData) {
    let cells: Vec<(&str, &Cell)> = data
        .rows
        .iter()
        .flat_map(|r| r.cells.iter().map(move |c| (r.service.as_str(), c)))
        .filter(|(_, c)| c.state == CellState::Blocked)
        .collect();
    if cells.is_empty() {
        return;
    }
    out.line(&format!("### ⛔ Blocked ({})", cells.len()));
    out.line("");
    let items = cells.into_iter().map(|(service, cell)| {
        let mut item = format!("- **{}** → **{}**", escape(service), escape(&cell.env));
        if let Some(candidate) = &cell.candidate {
            let _ = write!(item, " ({})", code(candidate));
        }
        if cell.reasons.is_empty() {
            item.push_str(": no reason given");
        }
        for reason in &cell.reasons {
            let _ = write!(item, "\n  - {}", escape(reason));
        }
        item
    });
    out.items(items, "blocked", false);
    out.line("");
}

/// Holds and freezes (stop-the-line is a freeze of every environment): what stops promotions.
fn stops(out: &mut Text, data: &DashboardData) {
    let stops: Vec<_> = data.controls.iter().filter(|c| c.kind != "train").collect();
    if stops.is_empty() {
        return;
    }
    out.line("### ⚠️ Promotions are stopped");
    out.line("");
    let items = stops.into_iter().map(|c| {
        format!(
            "- **{}** in {}: {}",
            c.kind,
            escape(&c.env),
            escape(&c.text)
        )
    });
    out.items(items, "holds and freezes", false);
    out.line("");
}

fn trains(out: &mut Text, data: &DashboardData) {
    let trains: Vec<_> = data.controls.iter().filter(|c| c.kind == "train").collect();
    if trains.is_empty() {
        return;
    }
    out.line("");
    out.line("### Release trains");
    out.line("");
    let items = trains
        .into_iter()
        .map(|c| format!("- {}: {}", escape(&c.env), escape(&c.text)));
    out.items(items, "release trains", false);
}

fn open_mrs(out: &mut Text, data: &DashboardData) {
    out.line("");
    out.line("### Open promotion merge requests");
    out.line("");
    if data.open_mrs.is_empty() {
        out.line("None open.");
        return;
    }
    let items = data.open_mrs.iter().map(|mr| {
        let title = escape(&mr.title);
        let safe_url = (mr.url.starts_with("https://") || mr.url.starts_with("http://"))
            && !mr
                .url
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>()[]`\\|".contains(c));
        let link = if safe_url {
            format!("[{title}]({})", mr.url)
        } else {
            format!("{title} ({})", escape(&mr.url))
        };
        format!("- {link} — {} → {}", escape(&mr.service), escape(&mr.env))
    });
    out.items(items, "merge requests", false);
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::dashboard::{MrLink, ServiceRow};
    use std::sync::Arc;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn cell(env: &str, tag: Option<&str>, age_secs: Option<i64>, state: CellState) -> Cell {
        Cell {
            env: env.into(),
            tag: tag.map(Into::into),
            // Aged as of `data()`'s `generated_at`.
            landed: age_secs.map(|s| at("2026-11-24T10:30:00Z") - chrono::TimeDelta::seconds(s)),
            state,
            candidate: None,
            failing_gates: Vec::new(),
            reasons: Vec::new(),
        }
    }

    /// api: dev 1.4.0 (source), qa 1.2.1 blocked on soak, prod 1.2.0 promotable to 1.2.1;
    /// web: dev 2.0.0, qa up to date, absent in prod; one open MR.
    fn data() -> DashboardData {
        let mut qa = cell(
            "qa",
            Some("1.2.1"),
            Some(5 * 86_400 + 3600),
            CellState::Blocked,
        );
        qa.candidate = Some("1.4.0".into());
        qa.failing_gates = vec!["soak".into()];
        qa.reasons = vec!["soak: has run 30m in dev, needs 1h".into()];
        let mut prod = cell(
            "prod",
            Some("1.2.0"),
            Some(40 * 86_400),
            CellState::Promotable,
        );
        prod.candidate = Some("1.2.1".into());
        DashboardData {
            generated_at: at("2026-11-24T10:30:00Z"),
            environments: vec!["dev".into(), "qa".into(), "prod".into()],
            rows: [
                ServiceRow {
                    service: "api".into(),
                    folder: "apps".into(),
                    cells: vec![
                        cell("dev", Some("1.4.0"), Some(1800), CellState::Source),
                        qa,
                        prod,
                    ],
                },
                ServiceRow {
                    service: "web".into(),
                    folder: "apps".into(),
                    cells: vec![
                        cell("dev", Some("2.0.0"), None, CellState::Source),
                        cell("qa", Some("2.0.0"), Some(86_400), CellState::UpToDate),
                        cell("prod", None, None, CellState::Absent),
                    ],
                },
            ]
            .map(Arc::new)
            .into(),
            open_mrs: vec![MrLink {
                title: "promote api to prod: 1.2.0 -> 1.2.1".into(),
                url: "https://gitlab.example.com/ops/calculator/-/merge_requests/7".into(),
                env: "prod".into(),
                service: "api".into(),
            }],
            lead: crate::dashboard::lead::LeadView {
                pairs: Vec::new(),
                slowest: Vec::new(),
                history_known: true,
            },
            controls: Vec::new(),
        }
    }

    #[test]
    fn blocked_cells_come_before_the_matrix_and_the_open_mrs() {
        let expected = "\
Maintained by promoter: edits to this description are overwritten.

Promotions (one service into one environment): **1** blocked · **1** promotable · **1** up to date

### ⛔ Blocked (1)

- **api** → **qa** (`1.4.0`)
  - soak: has run 30m in dev, needs 1h

### Services

| Service | dev | qa | prod |
| --- | --- | --- | --- |
| **api** | `1.4.0` (<1d)<br>📥 from CI | `1.2.1` (5d)<br>⛔ blocked → `1.4.0` | `1.2.0` (40d)<br>🟦 promotable → `1.2.1` |
| **web** | `2.0.0`<br>📥 from CI | `2.0.0` (1d)<br>✅ up to date | — |

### Open promotion merge requests

- [promote api to prod: 1.2.0 -\\> 1.2.1](https://gitlab.example.com/ops/calculator/-/merge_requests/7) — api → prod

_Updated 2026-11-24 10:30 UTC_
";
        assert_eq!(markdown(&data()), expected);
    }

    #[test]
    fn without_blocked_cells_or_mrs_the_sections_say_so() {
        let mut data = data();
        data.rows.truncate(1);
        Arc::make_mut(&mut data.rows[0]).cells.truncate(1);
        data.environments.truncate(1);
        data.open_mrs.clear();
        let text = markdown(&data);
        assert!(!text.contains("Blocked"), "{text}");
        assert!(
            text.contains("### Open promotion merge requests\n\nNone open.\n"),
            "{text}"
        );
        data.rows.clear();
        assert!(markdown(&data).contains("No services deployed."));
    }

    #[test]
    fn text_from_people_cannot_break_the_table_or_ping_anyone() {
        // (input, escaped)
        let table = [
            ("a|b", "a\\|b"),
            ("@alice", "@\u{200B}alice"),
            ("#12 !3 ~bug %v1", "\\#12 \\!3 \\~bug \\%v1"),
            ("<img src=x>", "\\<img src=x\\>"),
            (
                "**bold** _it_ `code`",
                "\\*\\*bold\\*\\* \\_it\\_ \\`code\\`",
            ),
            ("[x](javascript:alert(1))", "\\[x\\](javascript:alert(1))"),
            ("two\nlines\r\n", "two lines  "),
            ("back\\slash", "back\\\\slash"),
            ("&amp; :smile: $x$", "\\&amp; :smile: \\$x\\$"),
            (
                "@all <!-- ![x](https://evil.example/a.png) /merge",
                "@\u{200B}all \\<\\!-- \\!\\[x\\](https\u{200B}://evil.example/a.png) /merge",
            ),
            ("/merge", "\\/merge"),
        ];
        for (input, escaped) in table {
            assert_eq!(escape(input), escaped, "{input:?}");
        }
        assert_eq!(code("1.2.3-rc.1+b5"), "`1.2.3-rc.1+b5`");
        assert_eq!(code("a`b|c"), "a\\`b\\|c");

        let mut data = data();
        Arc::make_mut(&mut data.rows[0]).service = "api | evil".into();
        Arc::make_mut(&mut data.rows[0]).cells[1].reasons =
            vec!["cc @ops | see #1\n| fake | row |".into()];
        data.open_mrs[0].title = "[click](https://evil.example) @all".into();
        data.open_mrs.push(MrLink {
            title: "odd".into(),
            url: "javascript:alert(1)".into(),
            env: "qa".into(),
            service: "api".into(),
        });
        let text = markdown(&data);
        for line in text.lines().filter(|l| l.starts_with('|')) {
            let cells = line.replace("\\|", "").matches('|').count();
            assert_eq!(cells, 5, "{line}");
        }
        assert!(text.contains("| **api \\| evil** |"), "{text}");
        assert!(
            text.contains("  - cc @\u{200B}ops \\| see \\#1 \\| fake \\| row \\|\n"),
            "{text}"
        );
        assert!(
            text.contains("- [\\[click\\](https\u{200B}://evil.example) @\u{200B}all](https://"),
            "{text}"
        );
        assert!(
            text.contains("- odd (javascript:alert(1)) — api → qa"),
            "{text}"
        );

        // Every trick at once in a blocked reason: nothing live, nothing hidden after it.
        let attack = "@all <!-- ![x](https://evil.example/a.png) <img src=x> [click](javascript:alert(1)) /merge";
        let mut data = super::tests::data();
        Arc::make_mut(&mut data.rows[0]).cells[1].reasons = vec![attack.into()];
        let text = markdown(&data);
        assert!(
            !text.contains("@all") && !text.contains("https://evil"),
            "{text}"
        );
        for live in ["<!--", "<img", "![", "[click]("] {
            assert!(
                text.match_indices(live)
                    .all(|(i, _)| text[..i].ends_with('\\')),
                "a live {live} in {text}"
            );
        }
        assert!(!text.lines().any(|l| l.starts_with('/')), "{text}");
        assert!(text.contains("### Open promotion merge requests"), "{text}");
    }

    #[test]
    fn a_huge_dashboard_cuts_the_fine_part_with_counts_but_never_what_is_stuck() {
        let mut data = data();
        let row = (*data.rows[0]).clone();
        data.rows = (0..5_000)
            .map(|n| ServiceRow {
                service: format!("service-{n:04}"),
                ..row.clone()
            })
            .map(Arc::new)
            .collect();
        data.open_mrs = (0..2_000).map(|_| data.open_mrs[0].clone()).collect();
        data.controls.push(crate::dashboard::Control {
            kind: "freeze",
            env: "prod".into(),
            text: "year-end".into(),
        });
        let text = markdown(&data);
        assert!(text.chars().count() <= LIMIT, "{}", text.chars().count());
        let stopped = text.find("### ⚠️ Promotions are stopped").unwrap();
        let blocked = text.find("### ⛔ Blocked (5000)").unwrap();
        let matrix = text.find("| Service |").unwrap();
        assert!(stopped < blocked && blocked < matrix, "stuck first");
        assert_eq!(
            text.matches("\n- **service-").count(),
            5_000,
            "every blocked promotion is listed"
        );
        assert!(!text.contains(" more blocked"), "nothing stuck is cut");
        let more = text
            .lines()
            .find(|l| l.starts_with("… ") && l.ends_with(" more services"))
            .expect("a count of the rows left out");
        let shown = text
            .lines()
            .filter(|l| l.starts_with("| **service-"))
            .count();
        let left: usize = more["… ".len()..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(shown + left, 5_000);
        let fine = &text[matrix..];
        assert!(
            fine.chars().count() <= FINE_LIMIT + RESERVE,
            "{}",
            fine.len()
        );
        assert!(text.contains("… 2000 more merge requests\n"));
        assert!(text.ends_with("_Updated 2026-11-24 10:30 UTC_\n"));
    }

    #[test]
    fn a_stuck_part_over_gitlabs_limit_is_cut_with_a_count_and_still_fits() {
        let mut data = data();
        let mut row = (*data.rows[0]).clone();
        row.cells[1].reasons = vec!["r".repeat(2_000)];
        data.rows = (0..1_000)
            .map(|n| ServiceRow {
                service: format!("service-{n:04}"),
                ..row.clone()
            })
            .map(Arc::new)
            .collect();
        let text = markdown(&data);
        assert!(text.chars().count() <= LIMIT, "{}", text.chars().count());
        let more = text
            .lines()
            .find(|l| l.ends_with(" more blocked"))
            .expect("a count of the blocked promotions left out");
        let listed = text.matches("\n- **service-").count();
        let left: usize = more["… ".len()..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(listed + left, 1_000);
        assert!(
            listed > 400,
            "the stuck part may use GitLab's whole limit: {listed}"
        );
        assert!(
            text.contains(" more services\n"),
            "little room left for the matrix"
        );
    }

    #[test]
    fn only_the_updated_line_is_ignored_when_comparing() {
        let before = markdown(&data());
        let mut later = data();
        later.generated_at = at("2026-11-24T11:45:00Z");
        let again = markdown(&later);
        assert_ne!(before, again);
        assert_eq!(without_updated_line(&before), without_updated_line(&again));
        assert_eq!(
            without_updated_line(&before.replace('\n', "\r\n")),
            without_updated_line(&before),
            "GitLab may hand the text back with CRLF"
        );
        Arc::make_mut(&mut later.rows[1]).cells[1].tag = Some("2.0.1".into());
        assert_ne!(
            without_updated_line(&markdown(&later)),
            without_updated_line(&before)
        );
        assert!(!without_updated_line(&before).contains("Updated"));
    }
}
