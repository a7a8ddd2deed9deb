//! Reading a snapshot again after a change without reading what did not change. Git tree ids
//! are content addresses: a service folder whose id is the one read last time, in an
//! environment whose definitions (`environments/`) are the ones read last time, is the same
//! service, and an environment folder whose id did not change holds the same services. What
//! changed is read as [`Snapshot::load`] reads it, so both give the same snapshot. Pure: the
//! ids come from the [`Tree`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::environment::DIR as ENVIRONMENTS;
use super::service::{self, Service};
use super::{Environment, Snapshot, Tree};
use crate::diagnostic::Diagnostic;
use crate::model::EnvName;

/// What reading one environment's service folders gave, by folder: its tree id and the service
/// or its problems.
type Folders = HashMap<String, (String, Result<Arc<Service>, Vec<Diagnostic>>)>;

/// What one environment folder held, by its tree id.
#[derive(Debug, Clone)]
struct EnvRead {
    id: String,
    services: Vec<Arc<Service>>,
    problems: Vec<Diagnostic>,
}

/// What the last read found, by tree id; empty at first (everything is read).
#[derive(Debug, Clone, Default)]
pub struct LoadCache {
    /// The tree id of `environments/` the entries below were read under.
    environments: Option<String>,
    /// Per environment, its folder's last read.
    envs: BTreeMap<EnvName, EnvRead>,
    /// Per environment, per service folder: its tree id and what reading it gave.
    services: BTreeMap<EnvName, Folders>,
    /// Per environment, where its service folders were found, by folder.
    found: BTreeMap<EnvName, service::FoundDirs>,
    /// Service folders read (not reused) by the last load, for logs and tests.
    read_last: usize,
}

impl LoadCache {
    /// How many service folders the last [`Snapshot::load_reusing`] read (not reused).
    pub fn read_last(&self) -> usize {
        self.read_last
    }
}

impl Snapshot {
    /// The snapshot of `tree`, as [`Snapshot::load`] reads it, reusing from `cache` every
    /// environment and service folder whose tree id did not change; `cache` then holds this
    /// read. A tree without ids (a directory) is read whole.
    pub fn load_reusing(tree: &dyn Tree, cache: &mut LoadCache) -> Snapshot {
        let environments = tree.dir_id(ENVIRONMENTS);
        if environments.is_none() || environments != cache.environments {
            // Another service definition may change what a values file means: read all.
            *cache = LoadCache {
                environments,
                ..LoadCache::default()
            };
        }
        cache.read_last = 0;
        let mut envs = BTreeMap::new();
        let mut services = BTreeMap::new();
        let mut found_dirs = BTreeMap::new();
        let snapshot = Snapshot::load_with(tree, &mut |tree, env| {
            let id = tree.dir_id(&env.path);
            if let Some(id) = &id
                && let Some(known) = cache.envs.get(&env.name).filter(|k| k.id == *id)
            {
                if let Some(folders) = cache.services.remove(&env.name) {
                    services.insert(env.name.clone(), folders);
                }
                envs.insert(env.name.clone(), known.clone());
                if let Some(found) = cache.found.remove(&env.name) {
                    found_dirs.insert(env.name.clone(), found);
                }
                return (known.services.clone(), known.problems.clone());
            }
            let mut searched = cache.found.remove(&env.name).unwrap_or_default();
            // What the last search found is `last`; this search fills `now`.
            searched.last = std::mem::take(&mut searched.now);
            let mut known = cache.services.remove(&env.name).unwrap_or_default();
            let mut folders = Folders::new();
            let mut read_last = 0;
            let found = service::discover_with(
                tree,
                env,
                &mut |tree, env, name, dir| {
                    read_folder(
                        tree,
                        env,
                        name,
                        dir,
                        &mut known,
                        &mut folders,
                        &mut read_last,
                    )
                },
                Some(&mut searched),
            );
            cache.read_last += read_last;
            services.insert(env.name.clone(), folders);
            searched.last.clear();
            found_dirs.insert(env.name.clone(), searched);
            if let Some(id) = id {
                envs.insert(
                    env.name.clone(),
                    EnvRead {
                        id,
                        services: found.0.clone(),
                        problems: found.1.clone(),
                    },
                );
            }
            found
        });
        cache.envs = envs;
        cache.services = services;
        cache.found = found_dirs;
        snapshot
    }
}

/// One service folder: what the last read gave (`known`) when its tree id is the same, else
/// read now; either way kept in `into`.
fn read_folder(
    tree: &dyn Tree,
    env: &Environment,
    name: &str,
    dir: &str,
    known: &mut Folders,
    into: &mut Folders,
    read_last: &mut usize,
) -> Result<Arc<Service>, Vec<Diagnostic>> {
    let id = tree.dir_id(dir);
    // A folder read before under another id is dropped: it is read again below.
    if let Some(id) = &id
        && let Some((dir, (was, read))) = known.remove_entry(dir)
        && was == *id
    {
        into.insert(dir, (was, read.clone()));
        return read;
    }
    *read_last += 1;
    let read = service::read_service(tree, env, name, dir).map(Arc::new);
    if let Some(id) = id {
        into.insert(dir.to_string(), (id, read.clone()));
    }
    read
}
