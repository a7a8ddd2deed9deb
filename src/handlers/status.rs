//! `status [service]` and `plan [env]`: answered from the dashboard of the last reconcile,
//! without waiting for a new one.

use super::{Asked, Handled};
use crate::chatops::reply::{self, Flavor, Status, StatusRow};
use crate::dashboard::{Cell, CellState, DashboardData};
use crate::model::{EnvName, ServiceName};

/// Every service's tag per environment (one service's with `service`).
pub fn status(asked: &Asked<'_>, service: Option<&ServiceName>) -> Handled {
    let status = rows(asked.latest, service);
    asked.render(asked.handlers.replies.status(asked.flavor, &status))
}

/// What the next scheduled run would do (into `env` only, with `env`).
pub fn plan(asked: &Asked<'_>, env: Option<&EnvName>) -> Handled {
    Handled::Answer(plan_text(asked.flavor, asked.latest, env))
}

/// Whether a cell would get a promotion (allowed or blocked).
pub(super) fn is_due(cell: &Cell) -> bool {
    matches!(cell.state, CellState::Promotable | CellState::Blocked)
}

/// `1.2.1 -> 1.3.0, promote` or `..., blocked: soak: ...`.
fn summary(cell: &Cell) -> String {
    let tags = format!(
        "{} -> {}",
        cell.tag.as_deref().unwrap_or("(none)"),
        cell.candidate.as_deref().unwrap_or("?")
    );
    match cell.state {
        CellState::Blocked => format!("{tags}, blocked: {}", cell.reasons.join("; ")),
        _ => format!("{tags}, promote"),
    }
}

fn rows(latest: Option<&DashboardData>, service: Option<&ServiceName>) -> Status {
    let Some(data) = latest else {
        return Status::default();
    };
    Status {
        environments: data.environments.clone(),
        rows: data
            .rows
            .iter()
            .filter(|r| service.is_none_or(|s| r.service == s.as_str()))
            .map(|r| StatusRow {
                service: r.service.clone(),
                tags: r.cells.iter().map(|c| c.tag.clone()).collect(),
            })
            .collect(),
    }
}

fn plan_text(flavor: Flavor, latest: Option<&DashboardData>, env: Option<&EnvName>) -> String {
    let Some(data) = latest else {
        return "no plan yet: promoter has not reconciled".into();
    };
    let mut lines = Vec::new();
    for row in data.rows.iter() {
        for (cell, name) in row.cells.iter().zip(&data.environments) {
            if env.is_some_and(|e| e.as_str() != name) || !is_due(cell) {
                continue;
            }
            let what = format!("{} → {name}: {}", row.service, summary(cell));
            lines.push(format!("- {}", reply::escape(flavor, &what)));
        }
    }
    if lines.is_empty() {
        return "nothing is due: every environment runs its upstream's tag".into();
    }
    format!(
        "What the next scheduled run would do:\n{}",
        lines.join("\n")
    )
}
