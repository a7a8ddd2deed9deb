//! The dashboard as one HTML page, from the handlebars template `page.hbs` embedded in the
//! binary. Strict mode (a template naming a missing field fails the tests rather than printing
//! nothing) and HTML escaping on: tags, reasons and merge request titles come from people.

use std::sync::LazyLock;

use handlebars::Handlebars;
use serde::Serialize;

use super::chart::{self, Chart};
use super::{CellState, DashboardData};

const PAGE: &str = include_str!("page.hbs");

static TEMPLATES: LazyLock<Handlebars<'static>> = LazyLock::new(|| {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    registry
        .register_template_string("page", PAGE)
        .expect("the embedded dashboard template parses");
    registry
});

#[derive(Serialize)]
struct Page<'a> {
    generated_at: String,
    generated_at_text: String,
    refresh: Option<u32>,
    environments: &'a [String],
    rows: Vec<Row<'a>>,
    summary: Vec<Count>,
    open_mrs: Vec<Mr<'a>>,
    controls: &'a [super::Control],
    chart: Chart,
}

#[derive(Serialize)]
struct Count {
    state: &'static str,
    word: &'static str,
    count: usize,
}

#[derive(Serialize)]
struct Row<'a> {
    service: &'a str,
    cells: Vec<CellView<'a>>,
}

#[derive(Serialize)]
struct CellView<'a> {
    env: &'a str,
    state: &'static str,
    word: &'static str,
    tag: Option<&'a str>,
    age: Option<&'a str>,
    landed: Option<String>,
    candidate: Option<&'a str>,
    why: Option<String>,
    /// Blocked reasons show without a click.
    open: bool,
    reasons: &'a [String],
}

#[derive(Serialize)]
struct Mr<'a> {
    title: &'a str,
    /// Only http(s) addresses become links.
    href: Option<&'a str>,
    url: &'a str,
    env: &'a str,
    service: &'a str,
}

/// The dashboard page; with `refresh_secs` the browser reloads it that often.
pub fn render(data: &DashboardData, refresh_secs: Option<u32>) -> String {
    let rows: Vec<Row<'_>> = data
        .rows
        .iter()
        .map(|row| Row {
            service: &row.service,
            cells: row
                .cells
                .iter()
                .map(|cell| CellView {
                    env: &cell.env,
                    state: cell.state.as_str(),
                    word: cell.state.word(),
                    tag: cell.tag.as_deref(),
                    age: cell.age.as_deref(),
                    landed: cell
                        .landed
                        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
                    candidate: cell.candidate.as_deref(),
                    why: match cell.state {
                        CellState::Blocked if cell.failing_gates.is_empty() => {
                            Some("why".to_string())
                        }
                        CellState::Blocked => {
                            Some(format!("why: {}", cell.failing_gates.join(", ")))
                        }
                        CellState::Promotable => Some("gates".to_string()),
                        _ => None,
                    },
                    open: cell.state == CellState::Blocked,
                    reasons: &cell.reasons,
                })
                .collect(),
        })
        .collect();
    let summary = [
        CellState::Promotable,
        CellState::Blocked,
        CellState::UpToDate,
    ]
    .into_iter()
    .map(|state| Count {
        state: state.as_str(),
        word: state.word(),
        count: data
            .rows
            .iter()
            .flat_map(|r| &r.cells)
            .filter(|c| c.state == state)
            .count(),
    })
    .collect();
    let page = Page {
        generated_at: data.generated_at.to_rfc3339(),
        generated_at_text: data.generated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        refresh: refresh_secs,
        environments: &data.environments,
        rows,
        summary,
        controls: &data.controls,
        open_mrs: data
            .open_mrs
            .iter()
            .map(|mr| Mr {
                title: &mr.title,
                href: (mr.url.starts_with("https://") || mr.url.starts_with("http://"))
                    .then_some(mr.url.as_str()),
                url: &mr.url,
                env: &mr.env,
                service: &mr.service,
            })
            .collect(),
        chart: chart::chart(data),
    };
    TEMPLATES
        .render("page", &page)
        .expect("the embedded dashboard template renders its own data")
}
