//! The nouns of promoter's domain as small types: environment and service names, image tags
//! with their ordering, commits. Pure data; no I/O.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Shared text: a clone is a pointer (plans, dashboards and histories copy names and
        /// tags by the tens of thousands per cycle).
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps a name.
            pub fn new(name: impl Into<String>) -> Self {
                Self(Arc::from(name.into()))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(name: &str) -> Self {
                Self(Arc::from(name))
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                &*self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                &*self.0 == *other
            }
        }
    };
}

name_type!(
    /// An environment's name, such as `qa`.
    EnvName
);
name_type!(
    /// A service's name: the folder under an environment that holds its `values.yaml`.
    ServiceName
);
name_type!(
    /// An image tag, such as `1.3.0` or `v2.0.1-rc.1`.
    Tag
);

impl Tag {
    /// The tag as a semantic version, accepting a leading `v` (`v1.2.3`).
    pub fn semver(&self) -> Option<semver::Version> {
        let text = self.0.strip_prefix('v').unwrap_or(&self.0);
        semver::Version::parse(text).ok()
    }
}

/// How two tags compare when both are semantic versions.
pub fn compare_semver(a: &Tag, b: &Tag) -> Option<Ordering> {
    Some(a.semver()?.cmp(&b.semver()?))
}

/// A commit on the first-parent history of the environments' branch. Shared: a clone is a
/// pointer, so the tag history and the deployments hold each commit once however many stints
/// it starts or ends (tens of thousands at 10,000 services).
#[derive(Clone, PartialEq, Eq)]
pub struct Commit(Arc<CommitInfo>);

/// What promoter knows of a commit.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct CommitInfo {
    /// Full hex id.
    pub sha: String,
    /// When it landed on the branch (committer time: for a merge, the merge).
    pub time: DateTime<Utc>,
    /// Author name.
    pub author: String,
    /// First line of the message.
    pub summary: String,
}

impl From<CommitInfo> for Commit {
    fn from(info: CommitInfo) -> Self {
        Self(Arc::new(info))
    }
}

impl std::ops::Deref for Commit {
    type Target = CommitInfo;

    fn deref(&self) -> &CommitInfo {
        &self.0
    }
}

impl fmt::Debug for Commit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Commit {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl CommitInfo {
    /// The short form of the id.
    pub fn short_sha(&self) -> &str {
        &self.sha[..self.sha.len().min(8)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_tags_order_by_precedence_and_accept_v() {
        let t = |s: &str| Tag::new(s);
        assert_eq!(
            compare_semver(&t("1.10.0"), &t("1.9.0")),
            Some(Ordering::Greater)
        );
        assert_eq!(
            compare_semver(&t("v2.0.0"), &t("2.0.0")),
            Some(Ordering::Equal)
        );
        assert_eq!(
            compare_semver(&t("1.0.0-rc.1"), &t("1.0.0")),
            Some(Ordering::Less)
        );
        assert_eq!(compare_semver(&t("latest"), &t("1.0.0")), None);
        assert_eq!(compare_semver(&t("1.2"), &t("1.0.0")), None);
    }
}
