//! Finding and reading `policies/*.yaml` in a [`Tree`]: the repository's part of policies.
//! What a file means (parsing, merging, gates) is [`crate::policy`]'s, which never sees a tree.

use std::collections::BTreeSet;

use super::Tree;
use super::environment::is_yaml;
use crate::diagnostic::Diagnostic;
use crate::model::EnvName;
use crate::policy::{self, DIR, Policies};

/// Reads every `policies/*.yaml`; `known` environments are used to catch typos.
pub fn load(tree: &dyn Tree, known: &BTreeSet<EnvName>) -> (Policies, Vec<Diagnostic>) {
    let mut policies = Policies::default();
    let mut problems = Vec::new();
    let entries = match tree.list(DIR) {
        Ok(entries) => entries,
        Err(e) => {
            return (
                policies,
                vec![Diagnostic::file(DIR, format!("cannot list: {e}"))],
            );
        }
    };
    for entry in entries.iter().filter(|e| !e.is_dir && is_yaml(&e.name)) {
        let file = format!("{DIR}/{}", entry.name);
        let bytes = match tree.read(&file) {
            Ok(bytes) => bytes,
            Err(e) => {
                problems.push(Diagnostic::file(&file, format!("cannot read: {e}")));
                policies.broken.push(file);
                continue;
            }
        };
        match policy::parse(&file, &bytes, known) {
            Ok(policy) => policies.files.push(policy),
            Err(mut found) => {
                policies.broken.push(file);
                problems.append(&mut found);
            }
        }
    }
    (policies, problems)
}
