//! The rules of `promoter check` that need nothing but the snapshot: every problem found while
//! loading (which includes services whose `release.yml` runs another tag than their
//! `values.yaml`), plus the disagreements of services loaded without a tag. (Rendering each
//! environment with `kubectl kustomize` is an edge's job, done by the CLI.)

use super::{Snapshot, Tree};
use crate::diagnostic::Diagnostic;

/// Every problem in the snapshot, sorted by file and line.
pub fn check(snapshot: &Snapshot, tree: &dyn Tree) -> Vec<Diagnostic> {
    let mut problems = snapshot.findings.clone();
    for env in &snapshot.environments {
        if tree.list(&env.path).map(|e| e.is_empty()).unwrap_or(true) {
            problems.push(Diagnostic::file(
                &env.file,
                format!("path `{}` is missing or empty", env.path),
            ));
        }
    }
    for service in snapshot.services.values().flat_map(|s| s.values()) {
        let release = service.release_file();
        if service.release_images.is_empty() {
            problems.push(Diagnostic::file(
                &release,
                format!(
                    "no image of {} (the repository in {}): render the chart again",
                    service.image.repository,
                    service.values_file()
                ),
            ));
        }
        problems.extend(super::service::disagreements(service));
    }
    problems.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    problems.dedup();
    problems
}
