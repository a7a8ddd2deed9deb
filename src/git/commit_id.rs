//! A commit's id as the wiring holds it: reconcile passes commit ids from git reads to git
//! writes (the head a promotion is built on, a branch's tip to lease on) without naming git2,
//! which stays behind this module.

use std::fmt;

/// The id of one commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitId(git2::Oid);

impl CommitId {
    /// The first 8 hex digits, as logs and action details show a commit.
    pub fn short(&self) -> String {
        self.0.to_string()[..8].to_string()
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<git2::Oid> for CommitId {
    fn from(oid: git2::Oid) -> Self {
        Self(oid)
    }
}

impl From<CommitId> for git2::Oid {
    fn from(id: CommitId) -> Self {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_full_and_the_short_id() {
        let oid = git2::Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap();
        let id = CommitId::from(oid);
        assert_eq!(id.to_string(), "0123456789abcdef0123456789abcdef01234567");
        assert_eq!(id.short(), "01234567");
        assert_eq!(git2::Oid::from(id), oid);
    }
}
