//! Which services a new head changed, against the snapshot read at the head before it: what
//! lets the daemon bring its deployments and dashboard rows to a new head by redoing only
//! those services. Pure: it compares two snapshots and takes the values files whose tag
//! history the commits between the two heads recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{Service, Snapshot};
use crate::model::{EnvName, ServiceName};

/// What changed between two reads of the same branch: the snapshot read before (identified by
/// its allocation, which the holder keeps alive) and the services that differ.
#[derive(Debug, Clone)]
pub struct ChangedSince {
    /// The snapshot of the head before.
    pub before: std::sync::Weak<Snapshot>,
    /// Every service whose folder or tag history may differ (a superset: redoing a service
    /// that did not change gives what it gave before).
    pub services: Arc<BTreeSet<ServiceName>>,
}

impl ChangedSince {
    /// True when `before` is the snapshot this change starts from. (A weak pointer keeps its
    /// allocation, so an address held by one is never another snapshot's.)
    pub fn starts_from(&self, before: &std::sync::Weak<Snapshot>) -> bool {
        self.before.ptr_eq(before)
    }
}

/// The services of `before` and `after` whose folders differ (another folder read, or a
/// service in one and not the other), plus the owners of `files`, the values files whose tag
/// history changed. `None` when the environments differ: then anything may have changed.
///
/// A folder is the same when it is the same [`Arc`]: the reusing load hands on the service of a
/// folder whose tree id did not change, so pointer equality is cheap and never says "same" for
/// a service read again (at worst a service read again with the same content counts as
/// changed).
pub fn changed_services(
    before: &Snapshot,
    after: &Snapshot,
    files: &[String],
) -> Option<BTreeSet<ServiceName>> {
    if !same_chain(before, after) {
        return None;
    }
    let mut changed = BTreeSet::new();
    let empty = BTreeMap::new();
    let envs: BTreeSet<&EnvName> = before
        .services
        .keys()
        .chain(after.services.keys())
        .collect();
    for env in envs {
        let old = before.services.get(env).unwrap_or(&empty);
        let new = after.services.get(env).unwrap_or(&empty);
        differing(old, new, &mut changed);
    }
    for file in files {
        if let Some((_, name)) = after.owner_of(file).or_else(|| before.owner_of(file)) {
            changed.insert(ServiceName::new(name));
        }
    }
    Some(changed)
}

/// True when both snapshots have the same environments in the same order, at the same paths,
/// promoting from the same ones: what the deployments and the dashboard's columns are made of.
/// (The daemon compares changes only between snapshots whose `environments/` tree ids are
/// equal, so the definitions are the same in every other respect too.)
fn same_chain(before: &Snapshot, after: &Snapshot) -> bool {
    before.environments.len() == after.environments.len()
        && before
            .environments
            .iter()
            .zip(&after.environments)
            .all(|(a, b)| {
                a.name == b.name
                    && a.path == b.path
                    && a.promotes_from == b.promotes_from
                    && a.file == b.file
            })
}

/// Adds to `out` the services in only one of `old` and `new`, or held as different services:
/// one merge walk of the two sorted maps.
fn differing(
    old: &BTreeMap<ServiceName, Arc<Service>>,
    new: &BTreeMap<ServiceName, Arc<Service>>,
    out: &mut BTreeSet<ServiceName>,
) {
    let (mut old, mut new) = (old.iter().peekable(), new.iter().peekable());
    loop {
        match (old.peek(), new.peek()) {
            (None, None) => return,
            (Some((name, _)), None) => {
                out.insert((*name).clone());
                old.next();
            }
            (None, Some((name, _))) => {
                out.insert((*name).clone());
                new.next();
            }
            (Some((a, was)), Some((b, is))) => match a.cmp(b) {
                std::cmp::Ordering::Less => {
                    out.insert((*a).clone());
                    old.next();
                }
                std::cmp::Ordering::Greater => {
                    out.insert((*b).clone());
                    new.next();
                }
                std::cmp::Ordering::Equal => {
                    if !Arc::ptr_eq(was, is) {
                        out.insert((*a).clone());
                    }
                    old.next();
                    new.next();
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    fn names(set: &BTreeSet<ServiceName>) -> Vec<&str> {
        set.iter().map(|n| n.as_str()).collect()
    }

    #[test]
    fn the_same_snapshot_changes_nothing_but_the_owners_of_changed_files() {
        let snapshot = Snapshot::load(&testkit::tree(&[
            ("dev", "api", "1.0.0"),
            ("dev", "web", "1.0.0"),
        ]));
        let none = changed_services(&snapshot, &snapshot, &[]).unwrap();
        assert!(none.is_empty());
        let file = testkit::values_path("dev", "web");
        let web = changed_services(&snapshot, &snapshot, &[file]).unwrap();
        assert_eq!(names(&web), ["web"]);
    }

    #[test]
    fn a_folder_read_again_added_or_removed_is_a_changed_service() {
        let before = Snapshot::load(&testkit::tree(&[
            ("dev", "api", "1.0.0"),
            ("dev", "web", "1.0.0"),
            ("qa", "api", "1.0.0"),
        ]));
        let mut after = before.clone();
        // `api` read again in dev (another Arc, even with equal content), `web` gone from dev,
        // `db` new in qa.
        let dev = after.services.get_mut(&EnvName::new("dev")).unwrap();
        let api = dev.get(&ServiceName::new("api")).unwrap().as_ref().clone();
        dev.insert(ServiceName::new("api"), Arc::new(api));
        dev.remove(&ServiceName::new("web"));
        let qa = after.services.get_mut(&EnvName::new("qa")).unwrap();
        let db = qa.get(&ServiceName::new("api")).unwrap().as_ref().clone();
        qa.insert(ServiceName::new("db"), Arc::new(db));
        let changed = changed_services(&before, &after, &[]).unwrap();
        assert_eq!(names(&changed), ["api", "db", "web"]);
    }

    #[test]
    fn other_environments_may_change_anything() {
        let before = Snapshot::load(&testkit::tree(&[("dev", "api", "1.0.0")]));
        let mut after = before.clone();
        after.environments[0].path = "elsewhere".to_string();
        assert_eq!(changed_services(&before, &after, &[]), None);
    }
}
