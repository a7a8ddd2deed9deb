//! The dashboard the daemon keeps between cycles. A cell depends on the snapshot, the tag
//! history and its decision (its age is taken at the dashboard's `generated_at`); while the
//! daemon shares the same snapshot and history (the head did not move) and the plan has the
//! same rows, a cycle rebuilds only the cells whose decision changed and hands every other row
//! on as it is (rows are shared, so a row is copied only when it changed). Anything else
//! rebuilds the rows whole. Either way the result equals [`super::build`]'s (a unit test walks
//! both).

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use chrono::{DateTime, Utc};

use super::{DashboardData, MrLink, ServiceRow, assemble, cell, controls, lead, rows};
use crate::model::{EnvName, ServiceName};
use crate::plan::Plan;
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
        let cells = positions(snapshot, plan, &rows);
        Self {
            snapshot: Arc::downgrade(snapshot),
            history: Arc::downgrade(history),
            plan: plan.clone(),
            cells,
            data: Arc::new(assemble(snapshot, rows, lead, open_mrs, now)),
        }
    }

    /// The dashboard built last.
    pub fn data(&self) -> Arc<DashboardData> {
        self.data.clone()
    }

    /// Brings the dashboard to `plan` at `now`: only the changed cells when the snapshot and
    /// history are the ones kept and the plan decides the same cells, else whole.
    pub fn update(
        &mut self,
        (snapshot, history): (&Arc<Snapshot>, &Arc<TagHistory>),
        plan: &Arc<Plan>,
        lead: lead::LeadView,
        open_mrs: &[MrLink],
        now: DateTime<Utc>,
    ) -> Arc<DashboardData> {
        let same_cells = std::ptr::eq(self.snapshot.as_ptr(), Arc::as_ptr(snapshot))
            && std::ptr::eq(self.history.as_ptr(), Arc::as_ptr(history))
            && self.plan.promotions.len() == plan.promotions.len()
            && self
                .plan
                .promotions
                .iter()
                .zip(&plan.promotions)
                .all(|(old, new)| old.service == new.service && old.to == new.to);
        if !same_cells {
            *self = Self::new((snapshot, history), plan, lead, open_mrs, now);
            return self.data();
        }
        let mut rows = self.data.rows.clone();
        for ((old, new), at) in self
            .plan
            .promotions
            .iter()
            .zip(&plan.promotions)
            .zip(&self.cells)
        {
            let Some((row, column)) = *at else { continue };
            if old == new {
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
        self.plan = plan.clone();
        self.data()
    }
}

/// Where each promotion of `plan` is shown in `rows` (built from `snapshot` and `plan`).
fn positions(
    snapshot: &Snapshot,
    plan: &Plan,
    rows: &[Arc<ServiceRow>],
) -> Vec<Option<(usize, usize)>> {
    let columns: HashMap<&EnvName, usize> = snapshot
        .environments
        .iter()
        .enumerate()
        .map(|(i, e)| (&e.name, i))
        .collect();
    let row_of: HashMap<&str, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.service.as_str(), i))
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
            Some((*row_of.get(d.service.as_str())?, *columns.get(&d.to)?))
        })
        .collect()
}
