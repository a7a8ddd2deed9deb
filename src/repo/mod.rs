//! The repository as promoter reads it: environments, policies and each environment's services
//! at one point in time (a directory or a git tree, through [`Tree`]), plus tag history.
//! Loading never stops at the first problem: a broken file becomes a [`Diagnostic`] and the
//! rest is still read, so one bad service does not stop the others' promotions.

pub mod changed;
pub mod check;
pub mod environment;
pub mod health;
pub mod history;
pub mod policies;
pub mod reuse;
pub mod service;
pub mod tree;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use environment::Environment;
pub use history::TagHistory;
pub use service::Service;
pub use tree::{DirTree, Tree};

use crate::diagnostic::Diagnostic;
use crate::model::{EnvName, ServiceName};
use crate::policy::Policies;

/// Finds one environment's services in a tree: the services and the problems found.
pub(crate) type FindServices<'a> =
    dyn FnMut(&dyn Tree, &Environment) -> (Vec<Arc<Service>>, Vec<Diagnostic>) + 'a;

/// Everything promoter knows about the repository at one commit.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Valid environments, each after the one it promotes from.
    pub environments: Vec<Environment>,
    /// Services per environment.
    pub services: BTreeMap<EnvName, BTreeMap<ServiceName, Arc<Service>>>,
    /// Valid policy files.
    pub policies: Policies,
    /// Every problem found while reading.
    pub findings: Vec<Diagnostic>,
}

impl Snapshot {
    /// Reads environments, policies and services from `tree`.
    pub fn load(tree: &dyn Tree) -> Self {
        Self::load_with(tree, &mut |tree, env| service::discover(tree, env))
    }

    /// [`Snapshot::load`], with `services(tree, env)` finding each environment's services
    /// (see [`reuse`] for the loader that reuses an earlier read).
    pub(crate) fn load_with(tree: &dyn Tree, services_of: &mut FindServices<'_>) -> Self {
        let (environments, mut findings) = environment::load(tree);
        // Policies may name an environment whose file is broken: that file is the problem
        // reported, not every policy that names it (which would block all promotions).
        let known: BTreeSet<EnvName> = environments
            .iter()
            .map(|e| e.name.clone())
            .chain(environment::file_names(tree).into_iter().map(EnvName::new))
            .collect();
        let (policies, policy_findings) = policies::load(tree, &known);
        findings.extend(policy_findings);
        let mut services = BTreeMap::new();
        for env in &environments {
            let (found, problems) = services_of(tree, env);
            if found.is_empty() && problems.is_empty() {
                findings.push(Diagnostic::file(
                    &env.file,
                    format!("no services under {}: each service is a folder holding values.yaml and release.yml", env.path),
                ));
            }
            findings.extend(problems);
            services.insert(
                env.name.clone(),
                found.into_iter().map(|s| (s.name.clone(), s)).collect(),
            );
        }
        Self {
            environments,
            services,
            policies,
            findings,
        }
    }

    /// The environment named `name`.
    pub fn environment(&self, name: &EnvName) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == *name)
    }

    /// The environments `env` promotes from, nearest first (cycles are cut: a chain with a
    /// cycle is already a finding).
    pub fn upstream_of(&self, env: &EnvName) -> Vec<EnvName> {
        let mut chain: Vec<EnvName> = Vec::new();
        let mut at = self.environment(env).and_then(|e| e.promotes_from.clone());
        while let Some(name) = at {
            if name == *env || chain.contains(&name) {
                break;
            }
            at = self
                .environment(&name)
                .and_then(|e| e.promotes_from.clone());
            chain.push(name);
        }
        chain
    }

    /// The service `service` in environment `env`.
    pub fn service(&self, env: &EnvName, service: &ServiceName) -> Option<&Service> {
        self.services.get(env)?.get(service).map(Arc::as_ref)
    }

    /// The environment whose `path` contains `file`, and the service folder's name, for a
    /// `values.yaml` path; used to read history.
    pub fn owner_of<'a>(&self, file: &'a str) -> Option<(&Environment, &'a str)> {
        let env = self
            .environments
            .iter()
            .find(|e| file.starts_with(&format!("{}/", e.path)))?;
        let dir = file.rsplit_once('/')?.0;
        Some((env, dir.rsplit('/').next()?))
    }

    /// Every service name in any environment, sorted.
    pub fn service_names(&self) -> BTreeSet<&ServiceName> {
        self.services.values().flat_map(|s| s.keys()).collect()
    }
}
