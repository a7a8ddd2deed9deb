//! Rendering an environment with `kubectl kustomize`, as Flux would build it: the edge behind
//! `promoter check`'s "every environment renders" rule.

use std::path::Path;
use std::process::Command;

/// The outcome of rendering one folder.
#[derive(Debug, PartialEq, Eq)]
pub enum Render {
    /// It rendered.
    Ok,
    /// kubectl is not installed: nothing was checked.
    NoKubectl,
    /// It failed, with kubectl's message.
    Failed(String),
}

/// Renders `dir` with `kubectl kustomize`.
pub fn render(dir: &Path) -> Render {
    match Command::new("kubectl").arg("kustomize").arg(dir).output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Render::NoKubectl,
        Err(e) => Render::Failed(format!("cannot run kubectl: {e}")),
        Ok(out) if out.status.success() => Render::Ok,
        Ok(out) => {
            let message = String::from_utf8_lossy(&out.stderr);
            Render::Failed(
                message
                    .trim()
                    .lines()
                    .last()
                    .unwrap_or("kubectl kustomize failed")
                    .to_string(),
            )
        }
    }
}
