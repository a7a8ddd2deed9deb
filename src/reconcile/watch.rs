//! What the daemon's cycles learned from GitLab, in memory (GitLab stays the record): the open
//! promotion MRs as of the last listing, kept current by asking only for the MRs updated since
//! (`updated_after`, one call while fewer than 100 changed); the approvals of each MR as of its
//! `updated_at` (approving writes a system note, and a note touches its MR, so a new approval
//! moves `updated_at`); the dashboard issue's text as last read or written.
//!
//! What can change in GitLab without moving `updated_at` is read the full way: while an MR's
//! mergeability is in flux (a pipeline running, GitLab checking), after a cycle that changed
//! something, and at least every [`FULL_EVERY`], everything is listed again and forgotten.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};

use crate::forge::{Approval, MergeRequest, MrState};

/// At least this often the open MRs are listed whole and the caches forgotten.
pub const FULL_EVERY: TimeDelta = TimeDelta::hours(1);
/// How far before the last listing (by promoter's clock, or GitLab's newest `updated_at` when
/// that is later) the next listing starts: GitLab's writes commit out of order by a little,
/// and the two clocks may differ by as much.
pub const OVERLAP: TimeDelta = TimeDelta::minutes(5);

/// GitLab's merge statuses that change without the MR being written (a pipeline finishing,
/// GitLab's asynchronous mergeability check).
const IN_FLUX: [&str; 6] = [
    "checking",
    "unchecked",
    "ci_still_running",
    "ci_must_pass",
    "preparing",
    "approvals_syncing",
];

/// The cycle state read from GitLab.
#[derive(Debug, Default)]
pub struct Watch {
    /// Open MRs carrying the promotion label, by iid.
    open: BTreeMap<u64, MergeRequest>,
    /// The newest `updated_at` GitLab reported (GitLab's clock).
    newest: Option<DateTime<Utc>>,
    /// When the open MRs were last listed, whole or not (the cycle's `now`).
    listed_at: Option<DateTime<Utc>>,
    /// When the open MRs were last listed whole (the cycle's `now`).
    full_at: Option<DateTime<Utc>>,
    /// Set by a cycle that changed something: the next one lists everything.
    stale: bool,
    /// Each MR's standing approvals, as of its `updated_at`.
    approvals: HashMap<u64, (DateTime<Utc>, Vec<Approval>)>,
    /// The dashboard issue (iid, web address) and its text without the `Updated` line.
    pub(super) dashboard: Option<(u64, String, String)>,
}

/// How the next listing asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Every open MR with the label.
    Full,
    /// MRs into the branch updated on or after this time.
    UpdatedAfter(DateTime<Utc>),
}

impl Watch {
    /// How the cycle at `now` lists the open MRs.
    pub fn listing(&self, now: DateTime<Utc>) -> Listing {
        let (Some(full_at), Some(listed_at)) = (self.full_at, self.listed_at) else {
            return Listing::Full;
        };
        let in_flux = self.open.values().any(|mr| {
            mr.detailed_merge_status
                .as_deref()
                .is_none_or(|s| IN_FLUX.contains(&s))
                || mr.updated_at.is_none()
        });
        if self.stale || in_flux || now < full_at || now - full_at >= FULL_EVERY {
            Listing::Full
        } else {
            Listing::UpdatedAfter(self.newest.unwrap_or(listed_at).max(listed_at) - OVERLAP)
        }
    }

    /// A full listing at `now`: the open MRs are these, and everything else is forgotten.
    pub fn listed_all(&mut self, open: Vec<MergeRequest>, now: DateTime<Utc>) {
        *self = Watch {
            newest: open
                .iter()
                .filter_map(|mr| mr.updated_at)
                .max()
                .max(self.newest),
            open: open.into_iter().map(|mr| (mr.iid, mr)).collect(),
            full_at: Some(now),
            listed_at: Some(now),
            ..Watch::default()
        };
    }

    /// The MRs into the branch updated since the last listing: open ones with `label` are
    /// (still) open promotion MRs, the rest (closed, merged, relabelled) are not.
    pub fn listed_changes(&mut self, changed: Vec<MergeRequest>, label: &str, now: DateTime<Utc>) {
        self.listed_at = Some(now);
        for mr in changed {
            self.newest = self.newest.max(mr.updated_at);
            if mr.state == MrState::Opened && mr.labels.iter().any(|l| l == label) {
                self.open.insert(mr.iid, mr);
            } else {
                self.open.remove(&mr.iid);
                self.approvals.remove(&mr.iid);
            }
        }
    }

    /// The open MRs, newest first (as GitLab lists them).
    pub fn open(&self) -> Vec<MergeRequest> {
        self.open.values().rev().cloned().collect()
    }

    /// Marks that this cycle changed something in GitLab: the next cycle lists everything.
    pub fn changed(&mut self) {
        self.stale = true;
    }

    /// The approvals read for `mr` when it was as it is now.
    pub fn approvals(&self, mr: &MergeRequest) -> Option<Vec<Approval>> {
        let (at, approvals) = self.approvals.get(&mr.iid)?;
        (Some(*at) == mr.updated_at).then(|| approvals.clone())
    }

    /// Remembers the approvals of `mr` as it is now.
    pub fn remember_approvals(&mut self, mr: &MergeRequest, approvals: &[Approval]) {
        if let Some(at) = mr.updated_at {
            self.approvals.insert(mr.iid, (at, approvals.to_vec()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mr(iid: u64, updated: &str, status: &str) -> MergeRequest {
        MergeRequest {
            iid,
            title: String::new(),
            description: None,
            source_branch: format!("promoter/qa/s{iid}"),
            target_branch: "main".into(),
            state: MrState::Opened,
            labels: vec!["promotion".into()],
            sha: None,
            merge_commit_sha: None,
            detailed_merge_status: Some(status.into()),
            web_url: String::new(),
            head_pipeline: None,
            author: None,
            created_at: None,
            updated_at: Some(updated.parse().unwrap()),
            from_fork: false,
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_quiet_watch_asks_only_for_what_changed_since_the_newest_update() {
        let mut watch = Watch::default();
        assert_eq!(watch.listing(at("2026-01-01T10:00:00Z")), Listing::Full);
        watch.listed_all(
            vec![
                mr(1, "2026-01-01T09:00:00Z", "mergeable"),
                mr(2, "2026-01-01T09:30:00Z", "not_approved"),
            ],
            at("2026-01-01T10:00:00Z"),
        );
        assert_eq!(
            watch.listing(at("2026-01-01T10:01:00Z")),
            Listing::UpdatedAfter(at("2026-01-01T09:55:00Z")),
            "since the last listing"
        );
        assert_eq!(
            watch.listing(at("2026-01-01T11:00:00Z")),
            Listing::Full,
            "at least hourly"
        );
        let mut closed = mr(1, "2026-01-01T10:00:30Z", "not_open");
        closed.state = MrState::Closed;
        watch.listed_changes(vec![closed], "promotion", at("2026-01-01T10:01:00Z"));
        assert_eq!(
            watch.listing(at("2026-01-01T10:02:00Z")),
            Listing::UpdatedAfter(at("2026-01-01T09:56:00Z"))
        );
        assert_eq!(watch.open().len(), 1);
        watch.changed();
        assert_eq!(watch.listing(at("2026-01-01T10:02:00Z")), Listing::Full);
    }

    #[test]
    fn a_running_pipeline_is_read_the_full_way() {
        let mut watch = Watch::default();
        watch.listed_all(
            vec![mr(1, "2026-01-01T09:00:00Z", "ci_still_running")],
            at("2026-01-01T10:00:00Z"),
        );
        assert_eq!(watch.listing(at("2026-01-01T10:01:00Z")), Listing::Full);
    }

    #[test]
    fn approvals_are_reused_only_while_the_mr_has_not_moved() {
        let mut watch = Watch::default();
        let before = mr(1, "2026-01-01T09:00:00Z", "mergeable");
        watch.remember_approvals(&before, &[]);
        assert_eq!(watch.approvals(&before), Some(Vec::new()));
        let approved = mr(1, "2026-01-01T09:10:00Z", "mergeable");
        assert_eq!(watch.approvals(&approved), None);
    }
}
