//! The dashboard the daemon keeps between cycles. A cell depends on the snapshot's service,
//! the tag history of its values file and its decision (its age is taken at the dashboard's
//! `generated_at`). While the plan has the same rows, a cycle rebuilds only the cells whose
//! decision changed and the rows of the services a new head changed ([`ChangedSince`], the
//! same snapshot changes none), and hands every other row on as it is (rows are shared, so a
//! row is copied only when it changed). Anything else (another snapshot not known to follow
//! the kept one, a service added or removed or moved to another folder) rebuilds the rows
//! whole. Either way the result equals [`super::build`]'s (a unit test walks both on one
//! snapshot; `tests/it/incremental.rs` across heads).

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use chrono::{DateTime, Utc};

use super::{DashboardData, MrLink, ServiceRow, assemble, cell, controls, folder, lead, rows};
use crate::model::{EnvName, ServiceName};
use crate::plan::Plan;
use crate::repo::changed::ChangedSince;
use crate::repo::{Snapshot, TagHistory};

/// The last dashboard built and what it was built from.
#[derive(Debug)]
pub struct Kept {
    /// Which snapshot and history (weak: the daemon extends the history in place on a new head
    /// when nothing else holds it; a weak pointer keeps the allocation, so an address is never
    /// another's).
    snapshot: Weak<Snapshot>,
    history: Weak<TagHistory>,
    plan: Arc<Plan>,
    /// Per promotion of `plan`, its cell: (row, column); `None` for a promotion whose cell a
    /// later one of the same service and environment decides, or that has no row.
    cells: Vec<Option<(usize, usize)>>,
    /// Each service's row.
    row_of: HashMap<ServiceName, usize>,
    data: Arc<DashboardData>,
}

impl Kept {
    /// The dashboard of `snapshot` as `plan` decided it at `now`, built whole.
    pub fn new(
        (snapshot, history): (&Arc<Snapshot>, &Arc<TagHistory>),
        plan: &Arc<Plan>,
        lead: lead::LeadView,
        open_mrs: &[MrLink],
        now: DateTime<Utc>,
    ) -> Self {
        let rows = rows(snapshot, plan, history);
        let row_of = row_of(snapshot, &rows);
        let cells = positions(snapshot, plan, &row_of);
        Self {
            snapshot: Arc::downgrade(snapshot),
            history: Arc::downgrade(history),
            plan: plan.clone(),
            cells,
            row_of,
            data: Arc::new(assemble(snapshot, rows, lead, open_mrs, now)),
        }
    }

    /// The dashboard built last.
    pub fn data(&self) -> Arc<DashboardData> {
        self.data.clone()
    }

    /// Brings the dashboard to `snapshot`, `history` and `plan` at `now`: only the changed
    /// cells and the rows of the services `changed` names, when the snapshot is the kept one
    /// or `changed` starts from it and the plan decides the same cells; else whole.
    pub fn update(
        &mut self,
        (snapshot, history): (&Arc<Snapshot>, &Arc<TagHistory>),
        plan: &Arc<Plan>,
        lead: lead::LeadView,
        open_mrs: &[MrLink],
        now: DateTime<Utc>,
        changed: Option<&ChangedSince>,
    ) -> Arc<DashboardData> {
        let same = std::ptr::eq(self.snapshot.as_ptr(), Arc::as_ptr(snapshot))
            && std::ptr::eq(self.history.as_ptr(), Arc::as_ptr(history));
        let follows = changed.filter(|c| !same && c.starts_from(&self.snapshot));
        let same_cells = self.plan.promotions.len() == plan.promotions.len()
            && self
                .plan
                .promotions
                .iter()
                .zip(&plan.promotions)
                .all(|(old, new)| old.service == new.service && old.to == new.to);
        let redone = match follows {
            Some(changed) => self.rows_to_redo(snapshot, &changed.services),
            None => same.then(Vec::new),
        };
        let Some(redone) = redone.filter(|_| same_cells) else {
            *self = Self::new((snapshot, history), plan, lead, open_mrs, now);
            return self.data();
        };
        let mut rows = self.data.rows.clone();
        for (row, service) in &redone {
            // Every cell of a changed service, decided or not, from this snapshot and history;
            // the decided ones are filled below.
            let cells = snapshot
                .environments
                .iter()
                .map(|env| {
                    let first = env.promotes_from.is_none();
                    cell(snapshot, None, history, service, &env.name, first)
                })
                .collect();
            Arc::make_mut(&mut rows[*row]).cells = cells;
        }
        let redone: std::collections::HashSet<usize> =
            redone.into_iter().map(|(row, _)| row).collect();
        for ((old, new), at) in self
            .plan
            .promotions
            .iter()
            .zip(&plan.promotions)
            .zip(&self.cells)
        {
            let Some((row, column)) = *at else { continue };
            if old == new && !redone.contains(&row) {
                continue;
            }
            let env = &snapshot.environments[column];
            // Copies the one row (the last dashboard still holds it).
            Arc::make_mut(&mut rows[row]).cells[column] = cell(
                snapshot,
                Some(new),
                history,
                &new.service,
                &env.name,
                env.promotes_from.is_none(),
            );
        }
        self.data = Arc::new(DashboardData {
            generated_at: now,
            environments: self.data.environments.clone(),
            rows,
            open_mrs: open_mrs.to_vec(),
            lead,
            controls: controls(snapshot, now),
        });
        self.snapshot = Arc::downgrade(snapshot);
        self.history = Arc::downgrade(history);
        self.plan = plan.clone();
        self.data()
    }

    /// The rows of `changed` services to build again, with their services: `None` when the
    /// rows themselves change (a service added or removed, or in another folder, which moves
    /// its row).
    fn rows_to_redo(
        &self,
        snapshot: &Snapshot,
        changed: &std::collections::BTreeSet<ServiceName>,
    ) -> Option<Vec<(usize, ServiceName)>> {
        let mut redo = Vec::with_capacity(changed.len());
        for service in changed {
            let present = snapshot.services.values().any(|s| s.contains_key(service));
            match (self.row_of.get(service), present) {
                (None, false) => continue,
                (Some(&row), true) if self.data.rows[row].folder == folder(snapshot, service) => {
                    redo.push((row, service.clone()));
                }
                _ => return None,
            }
        }
        Some(redo)
    }
}

/// Each service's row in `rows` (built from `snapshot`).
fn row_of(snapshot: &Snapshot, rows: &[Arc<ServiceRow>]) -> HashMap<ServiceName, usize> {
    let by_name: HashMap<&str, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.service.as_str(), i))
        .collect();
    snapshot
        .service_names()
        .into_iter()
        .filter_map(|name| Some((name.clone(), *by_name.get(name.as_str())?)))
        .collect()
}

/// Where each promotion of `plan` is shown in the rows (`row_of`, built from `snapshot` and
/// `plan`).
fn positions(
    snapshot: &Snapshot,
    plan: &Plan,
    row_of: &HashMap<ServiceName, usize>,
) -> Vec<Option<(usize, usize)>> {
    let columns: HashMap<&EnvName, usize> = snapshot
        .environments
        .iter()
        .enumerate()
        .map(|(i, e)| (&e.name, i))
        .collect();
    // The rows show the last decision of a service and environment (`rows` collects them in a
    // map): an earlier one of the same pair has no cell of its own.
    let last: HashMap<(&ServiceName, &EnvName), usize> = plan
        .promotions
        .iter()
        .enumerate()
        .map(|(i, d)| ((&d.service, &d.to), i))
        .collect();
    plan.promotions
        .iter()
        .enumerate()
        .map(|(i, d)| {
            if last.get(&(&d.service, &d.to)) != Some(&i) {
                return None;
            }
            Some((*row_of.get(&d.service)?, *columns.get(&d.to)?))
        })
        .collect()
}
