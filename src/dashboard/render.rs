//! The dashboard as one HTML page, from the handlebars template `page.hbs` embedded in the
//! binary with its style sheet `page.css` and filter script `filter.js`. Strict mode (a
//! template naming a missing field fails the tests rather than printing nothing) and HTML
//! escaping on: tags, reasons and merge request titles come from people.
//!
//! The page reads top down as a platform team triages: what stops promotions (holds, freezes,
//! stop-the-line) as a banner, the blocked promotions with their reasons and merge requests,
//! then the services with something pending, grouped by folder, and the up-to-date majority
//! folded away in compact rows. The only script is the constant `filter.js`; a
//! Content-Security-Policy in the page lets only it (by hash) and the page's own style run.

use std::sync::LazyLock;

use base64::Engine as _;
use handlebars::Handlebars;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::chart::{self, Chart};
use super::{Cell, CellState, DashboardData, ServiceRow};

const PAGE: &str = include_str!("page.hbs");
const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("filter.js");

static TEMPLATES: LazyLock<Handlebars<'static>> = LazyLock::new(|| {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    registry
        .register_template_string("page", PAGE)
        .expect("the embedded dashboard template parses");
    registry
});

/// The page's Content-Security-Policy: nothing loads, nothing is sent, and only the embedded
/// style sheet and filter script run (by their SHA-256), so markup that slipped through
/// escaping could not run a script either.
static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = |text: &str| {
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
    };
    format!(
        "default-src 'none'; style-src 'sha256-{}'; script-src 'sha256-{}'; base-uri 'none'; form-action 'none'",
        hash(STYLE),
        hash(SCRIPT)
    )
});

#[derive(Serialize)]
struct Page<'a> {
    generated_at: String,
    generated_at_text: String,
    refresh: Option<u32>,
    csp: &'static str,
    style: &'static str,
    script: &'static str,
    environments: &'a [String],
    /// Columns of the matrix: the service, then one per environment.
    columns: usize,
    services: usize,
    promotions: usize,
    counts: Vec<Count>,
    stops: Vec<&'a super::Control>,
    trains: Vec<&'a super::Control>,
    blocked: Vec<BlockedGroup<'a>>,
    blocked_count: usize,
    pending: Vec<Group<'a>>,
    pending_services: usize,
    settled: Vec<Group<'a>>,
    settled_services: usize,
    folders: Vec<&'a str>,
    open_mrs: Vec<Mr<'a>>,
    open_mrs_count: usize,
    chart: Chart,
    slowest: Vec<Slow<'a>>,
    history_known: bool,
}

#[derive(Serialize)]
struct Count {
    state: &'static str,
    icon: &'static str,
    word: &'static str,
    count: usize,
    /// Where its promotions are listed.
    href: &'static str,
}

/// One blocked promotion in the list at the top.
#[derive(Serialize)]
struct Blocked<'a> {
    id: String,
    row_id: String,
    service: &'a str,
    folder: &'a str,
    env: &'a str,
    tag: Option<&'a str>,
    candidate: Option<&'a str>,
    mr: Option<Mr<'a>>,
}

/// Blocked promotions that share their reasons (a freeze blocks hundreds for one reason).
#[derive(Serialize)]
struct BlockedGroup<'a> {
    gates: String,
    reasons: &'a [String],
    count: usize,
    rows: Vec<Blocked<'a>>,
}

/// The rows of one folder.
#[derive(Serialize)]
struct Group<'a> {
    folder: &'a str,
    label: &'a str,
    count: usize,
    rows: Vec<Row<'a>>,
}

#[derive(Serialize)]
struct Row<'a> {
    id: String,
    service: &'a str,
    folder: &'a str,
    /// The distinct blocked, promotable and up-to-date states of its cells, space separated,
    /// for the filter.
    states: String,
    cells: Vec<CellView<'a>>,
}

#[derive(Serialize)]
struct CellView<'a> {
    state: &'static str,
    word: &'static str,
    tag: Option<&'a str>,
    age: Option<String>,
    candidate: Option<&'a str>,
    /// The anchor of its entry in the blocked list.
    blocked_href: Option<String>,
    mr: Option<Mr<'a>>,
}

#[derive(Serialize, Clone)]
struct Mr<'a> {
    title: &'a str,
    /// Only http(s) addresses become links.
    href: Option<&'a str>,
    url: &'a str,
    env: &'a str,
    service: &'a str,
}

#[derive(Serialize)]
struct Slow<'a> {
    service: &'a str,
    tag: &'a str,
    from: &'a str,
    to: &'a str,
    lead: String,
    landed: String,
    mr: Option<u64>,
}

/// The shape beside each state's word and colour, so no state is told by colour alone.
fn icon(state: CellState) -> &'static str {
    match state {
        CellState::Source => "◆",
        CellState::UpToDate => "✓",
        CellState::Promotable => "▶",
        CellState::Blocked => "✕",
        CellState::Absent => "–",
    }
}

/// A fragment identifier for `text` that is a valid HTML id whatever the text: ASCII letters,
/// digits, `-` and `.` stay, anything else becomes `_` and its code point in hex.
fn anchor(prefix: &str, parts: &[&str]) -> String {
    let mut out = String::from(prefix);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push_str("--");
        }
        for c in part.chars() {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                out.push(c);
            } else {
                out.push_str(&format!("_{:x}_", c as u32));
            }
        }
    }
    out
}

fn mr_view(mr: &super::MrLink) -> Mr<'_> {
    Mr {
        title: &mr.title,
        href: (mr.url.starts_with("https://") || mr.url.starts_with("http://"))
            .then_some(mr.url.as_str()),
        url: &mr.url,
        env: &mr.env,
        service: &mr.service,
    }
}

/// Whether every cell of `row` needs nothing: up to date, from CI or not deployed.
pub(super) fn settled(row: &ServiceRow) -> bool {
    row.cells.iter().all(|c| {
        matches!(
            c.state,
            CellState::Source | CellState::UpToDate | CellState::Absent
        )
    })
}

fn groups<'a>(rows: impl Iterator<Item = Row<'a>>) -> Vec<Group<'a>> {
    let mut out: Vec<Group<'a>> = Vec::new();
    for row in rows {
        match out.last_mut() {
            Some(group) if group.folder == row.folder => {
                group.count += 1;
                group.rows.push(row);
            }
            _ => out.push(Group {
                folder: row.folder,
                label: if row.folder.is_empty() {
                    "(top level)"
                } else {
                    row.folder
                },
                count: 1,
                rows: vec![row],
            }),
        }
    }
    out
}

fn mr_for<'a>(data: &'a DashboardData, service: &str, env: &str) -> Option<Mr<'a>> {
    data.open_mrs
        .iter()
        .find(|mr| mr.service == service && mr.env == env)
        .map(mr_view)
}

fn row_view<'a>(data: &'a DashboardData, row: &'a ServiceRow) -> Row<'a> {
    // The states the filter offers (a row is found by any of its cells' states).
    let mut states: Vec<&str> = Vec::new();
    for cell in &row.cells {
        let state = cell.state.as_str();
        let offered = matches!(
            cell.state,
            CellState::Blocked | CellState::Promotable | CellState::UpToDate
        );
        if offered && !states.contains(&state) {
            states.push(state);
        }
    }
    Row {
        id: anchor("s-", &[&row.service]),
        service: &row.service,
        folder: &row.folder,
        states: states.join(" "),
        cells: row
            .cells
            .iter()
            .map(|cell| CellView {
                state: cell.state.as_str(),
                word: cell.state.word(),
                tag: cell.tag.as_deref(),
                age: cell.age(data.generated_at),
                candidate: cell.candidate.as_deref(),
                blocked_href: (cell.state == CellState::Blocked)
                    .then(|| format!("#{}", anchor("b-", &[&row.service, &cell.env]))),
                mr: matches!(cell.state, CellState::Promotable | CellState::Blocked)
                    .then(|| mr_for(data, &row.service, &cell.env))
                    .flatten(),
            })
            .collect(),
    }
}

fn blocked_view<'a>(data: &'a DashboardData, row: &'a ServiceRow, cell: &'a Cell) -> Blocked<'a> {
    Blocked {
        id: anchor("b-", &[&row.service, &cell.env]),
        row_id: anchor("s-", &[&row.service]),
        service: &row.service,
        folder: &row.folder,
        env: &cell.env,
        tag: cell.tag.as_deref(),
        candidate: cell.candidate.as_deref(),
        mr: mr_for(data, &row.service, &cell.env),
    }
}

/// The dashboard page; with `refresh_secs` the browser reloads it that often.
pub fn render(data: &DashboardData, refresh_secs: Option<u32>) -> String {
    let count = |state: CellState| {
        data.rows
            .iter()
            .flat_map(|r| &r.cells)
            .filter(|c| c.state == state)
            .count()
    };
    let counts = [
        (CellState::Blocked, "#blocked"),
        (CellState::Promotable, "#pending"),
        (CellState::UpToDate, "#settled"),
    ]
    .into_iter()
    .map(|(state, href)| Count {
        state: state.as_str(),
        icon: icon(state),
        word: state.word(),
        count: count(state),
        href,
    })
    .collect();
    let promotions = data
        .rows
        .iter()
        .flat_map(|r| &r.cells)
        .filter(|c| !matches!(c.state, CellState::Source | CellState::Absent))
        .count();
    // Blocked promotions in chain order (prod's last), grouped by their reasons, then by
    // folder and service (the rows' order).
    let mut blocked: Vec<(usize, &ServiceRow, &Cell)> = data
        .rows
        .iter()
        .map(|r| &**r)
        .flat_map(|r| r.cells.iter().enumerate().map(move |(i, c)| (i, r, c)))
        .filter(|(_, _, c)| c.state == CellState::Blocked)
        .collect();
    blocked.sort_by(|a, b| (a.0, &a.2.reasons).cmp(&(b.0, &b.2.reasons)));
    let blocked_count = blocked.len();
    let mut blocked_groups: Vec<BlockedGroup<'_>> = Vec::new();
    for (_, row, cell) in blocked {
        let view = blocked_view(data, row, cell);
        match blocked_groups.last_mut() {
            Some(group)
                if group.reasons == cell.reasons.as_slice() && group.rows[0].env == cell.env =>
            {
                group.count += 1;
                group.rows.push(view);
            }
            _ => blocked_groups.push(BlockedGroup {
                gates: cell.failing_gates.join(", "),
                reasons: &cell.reasons,
                count: 1,
                rows: vec![view],
            }),
        }
    }
    let (settled_rows, pending_rows): (Vec<&ServiceRow>, Vec<&ServiceRow>) =
        data.rows.iter().map(|r| &**r).partition(|r| settled(r));
    let mut folders: Vec<&str> = data.rows.iter().map(|r| r.folder.as_str()).collect();
    folders.sort_unstable();
    folders.dedup();
    let chart = chart::chart(&data.lead);
    let page = Page {
        generated_at: data.generated_at.to_rfc3339(),
        generated_at_text: data.generated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        refresh: refresh_secs,
        csp: CSP.as_str(),
        style: STYLE,
        script: SCRIPT,
        environments: &data.environments,
        columns: data.environments.len() + 1,
        services: data.rows.len(),
        promotions,
        counts,
        stops: data.controls.iter().filter(|c| c.kind != "train").collect(),
        trains: data.controls.iter().filter(|c| c.kind == "train").collect(),
        blocked_count,
        blocked: blocked_groups,
        pending_services: pending_rows.len(),
        pending: groups(pending_rows.into_iter().map(|r| row_view(data, r))),
        settled_services: settled_rows.len(),
        settled: groups(settled_rows.into_iter().map(|r| row_view(data, r))),
        folders,
        open_mrs: data.open_mrs.iter().map(mr_view).collect(),
        open_mrs_count: data.open_mrs.len(),
        chart,
        slowest: data
            .lead
            .slowest
            .iter()
            .map(|s| Slow {
                service: &s.service,
                tag: &s.tag,
                from: &s.from,
                to: &s.to,
                lead: s.lead.human(),
                landed: s.landed.format("%Y-%m-%d %H:%M UTC").to_string(),
                mr: s.mr,
            })
            .collect(),
        history_known: data.lead.history_known,
    };
    TEMPLATES
        .render("page", &page)
        .expect("the embedded dashboard template renders its own data")
}
