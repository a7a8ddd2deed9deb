//! The rules of `promoter check` that need nothing but the snapshot: every problem found while
//! loading, plus agreement between each `values.yaml` and its `release.yml`. (Rendering each
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
        for image in &service.release_images {
            let tag = image.image.tag().map(str::to_string);
            let want = service.image.tag.as_ref().map(|t| t.to_string());
            if tag != want {
                problems.push(Diagnostic::at(
                    &release,
                    image.line,
                    None,
                    format!(
                        "{} has tag {} but {} says {} (line {}): render the chart again or fix the tag",
                        image.path,
                        tag.as_deref().unwrap_or("(none)"),
                        service.values_file(),
                        want.as_deref().unwrap_or("(none)"),
                        service.image.line
                    ),
                ));
            } else if let Some(digest) = &service.image.digest
                && image.image.digest() != Some(digest.as_str())
            {
                problems.push(Diagnostic::at(
                    &release,
                    image.line,
                    None,
                    format!(
                        "{} does not pin the digest {digest} that {} pins",
                        image.path,
                        service.values_file()
                    ),
                ));
            }
        }
    }
    problems.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    problems.dedup();
    problems
}
