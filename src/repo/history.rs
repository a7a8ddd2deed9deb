//! Tag history: which tag each `values.yaml` held over the first-parent history of the branch,
//! and when each tag landed: the first commit from which the file has held it. Built from
//! changes given as data, oldest commit first (the git edge walks the history once for all
//! services); knows nothing of git.

use std::collections::HashMap;

use serde::Serialize;

use crate::model::{Commit, Tag};

/// A stretch of history during which one file held one tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stint {
    /// The tag; `None` while the file had no readable tag (or did not exist).
    pub tag: Option<Tag>,
    /// The commit that brought it.
    pub since: Commit,
    /// The commit that replaced it; `None` while it is still there.
    pub until: Option<Commit>,
}

/// Tag history of every `values.yaml`, by path.
#[derive(Debug, Clone, Default)]
pub struct TagHistory {
    by_file: HashMap<String, Vec<Stint>>,
    /// False when no history was available (not a git repository).
    known: bool,
    /// The latest time of any commit recorded (commit times need not grow with history).
    latest: Option<chrono::DateTime<chrono::Utc>>,
}

impl TagHistory {
    /// An empty history that knows it has no information (a plain directory, no git).
    pub fn unknown() -> Self {
        Self::default()
    }

    /// An empty history of a repository, ready for [`TagHistory::record`].
    pub fn new() -> Self {
        Self {
            by_file: HashMap::new(),
            known: true,
            latest: None,
        }
    }

    /// True when built from a repository's history.
    pub fn is_known(&self) -> bool {
        self.known
    }

    /// Records that `commit` set the tag of `file` to `tag`. Calls must come oldest commit first.
    /// A commit that leaves the tag as it was (another key of the file changed) is no landing.
    pub fn record(&mut self, commit: &Commit, file: &str, tag: Option<&str>) {
        self.latest = self.latest.max(Some(commit.time));
        let stints = self.by_file.entry(file.to_string()).or_default();
        let tag = tag.filter(|t| !t.is_empty()).map(Tag::new);
        if let Some(last) = stints.last_mut() {
            if last.tag == tag {
                return;
            }
            last.until = Some(commit.clone());
        }
        stints.push(Stint {
            tag,
            since: commit.clone(),
            until: None,
        });
    }

    /// The latest time of any commit that landed or replaced a tag; `None` when there is none.
    pub fn latest(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.latest
    }

    /// Every stint of `file`, oldest first.
    pub fn stints(&self, file: &str) -> &[Stint] {
        self.by_file.get(file).map_or(&[], Vec::as_slice)
    }

    /// When `tag` landed in `file`, if the file holds it now (per the history's last commit).
    /// `None` when the history does not end with this tag (for example an uncommitted edit).
    pub fn landing(&self, file: &str, tag: &Tag) -> Option<&Commit> {
        self.stints(file)
            .last()
            .filter(|s| s.tag.as_ref() == Some(tag) && s.until.is_none())
            .map(|s| &s.since)
    }

    /// The first time `tag` landed in `file`, whether or not it is still there.
    pub fn first_landing(&self, file: &str, tag: &Tag) -> Option<&Commit> {
        self.stints(file)
            .iter()
            .find(|s| s.tag.as_ref() == Some(tag))
            .map(|s| &s.since)
    }

    /// The tag `file` held before its current one (what a rollback goes back to).
    pub fn previous_tag(&self, file: &str) -> Option<&Tag> {
        let stints = self.stints(file);
        stints.iter().rev().skip(1).find_map(|s| s.tag.as_ref())
    }
}

#[cfg(test)]
pub(crate) fn commit(n: u32, at: &str) -> Commit {
    Commit::from(crate::model::CommitInfo {
        sha: format!("{n:040x}"),
        time: at.parse().expect("test timestamps are RFC 3339"),
        author: "dev".into(),
        summary: format!("commit {n}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "clusters/dev/app/values.yaml";

    fn history() -> TagHistory {
        let mut h = TagHistory::new();
        h.record(&commit(1, "2026-01-01T00:00:00Z"), FILE, Some("1.0.0"));
        h.record(&commit(2, "2026-01-02T00:00:00Z"), FILE, Some("1.0.0"));
        h.record(&commit(3, "2026-01-03T00:00:00Z"), FILE, Some("1.1.0"));
        h.record(&commit(4, "2026-01-04T00:00:00Z"), FILE, Some("1.1.0"));
        h
    }

    #[test]
    fn landing_is_the_first_commit_holding_the_current_tag() {
        let h = history();
        assert_eq!(
            h.landing(FILE, &Tag::new("1.1.0")).unwrap().sha,
            commit(3, "2026-01-03T00:00:00Z").sha
        );
        assert_eq!(
            h.landing(FILE, &Tag::new("1.0.0")),
            None,
            "no longer current"
        );
        assert_eq!(
            h.first_landing(FILE, &Tag::new("1.0.0"))
                .unwrap()
                .time
                .to_rfc3339(),
            "2026-01-01T00:00:00+00:00"
        );
        assert_eq!(h.previous_tag(FILE), Some(&Tag::new("1.0.0")));
        assert_eq!(h.stints(FILE).len(), 2);
        assert_eq!(
            h.stints(FILE)[0].until.as_ref().unwrap().sha,
            commit(3, "2026-01-03T00:00:00Z").sha
        );
    }

    #[test]
    fn a_tag_that_comes_back_lands_again() {
        let mut h = history();
        h.record(&commit(5, "2026-01-05T00:00:00Z"), FILE, Some("1.0.0"));
        assert_eq!(
            h.landing(FILE, &Tag::new("1.0.0")).unwrap().sha,
            commit(5, "2026-01-05T00:00:00Z").sha
        );
        assert_eq!(h.previous_tag(FILE), Some(&Tag::new("1.1.0")));
    }

    #[test]
    fn deleted_or_unreadable_files_break_the_stint() {
        let mut h = history();
        h.record(&commit(5, "2026-01-05T00:00:00Z"), FILE, None);
        h.record(&commit(6, "2026-01-06T00:00:00Z"), FILE, Some("1.1.0"));
        assert_eq!(
            h.landing(FILE, &Tag::new("1.1.0")).unwrap().sha,
            commit(6, "2026-01-06T00:00:00Z").sha
        );
    }

    #[test]
    fn unknown_history_knows_nothing() {
        let h = TagHistory::unknown();
        assert!(!h.is_known());
        assert_eq!(h.landing(FILE, &Tag::new("1.0.0")), None);
    }
}
