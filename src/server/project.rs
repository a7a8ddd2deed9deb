//! Which project a webhook event is about, checked against `gitlab.project`. A group hook (or a
//! hook copied to another project with the same secret) delivers events of every project in
//! the group; promoter acts only on those of its own project. GitLab's payloads name the project
//! as `project.id` and `project.path_with_namespace` (merge request, pipeline, push and comment
//! events) and as a top-level `project_id` (push and comment events).

use serde_json::Value;

/// The configured project: a numeric id or a `group/name` path, as `gitlab.project` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRef {
    /// `gitlab.project: 42`.
    Id(u64),
    /// `gitlab.project: group/name` (GitLab paths are case-insensitive).
    Path(String),
}

impl ProjectRef {
    /// Reads `gitlab.project` as GitLab does: all digits is an id, anything else a path
    /// (`group%2Fname` decoded).
    pub fn parse(project: &str) -> Self {
        let project = project.trim();
        match project.parse::<u64>() {
            Ok(id) if project.bytes().all(|b| b.is_ascii_digit()) => Self::Id(id),
            _ => Self::Path(project.replace("%2F", "/").replace("%2f", "/")),
        }
    }

    /// Whether `payload` names this project. Every id it carries must match (an event naming
    /// two projects is not ours), and it must carry the one this reference needs.
    pub fn matches(&self, payload: &Value) -> bool {
        let project = payload.get("project");
        match self {
            Self::Id(expected) => {
                let ids: Vec<Option<u64>> =
                    [project.and_then(|p| p.get("id")), payload.get("project_id")]
                        .into_iter()
                        .flatten()
                        .map(Value::as_u64)
                        .collect();
                !ids.is_empty() && ids.iter().all(|id| *id == Some(*expected))
            }
            Self::Path(expected) => project
                .and_then(|p| p.get("path_with_namespace"))
                .and_then(Value::as_str)
                .is_some_and(|path| path.eq_ignore_ascii_case(expected)),
        }
    }
}

impl std::fmt::Display for ProjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Id(id) => write!(f, "{id}"),
            Self::Path(path) => f.write_str(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_ids_and_paths() {
        assert_eq!(ProjectRef::parse("42"), ProjectRef::Id(42));
        assert_eq!(
            ProjectRef::parse("acme/calculator"),
            ProjectRef::Path("acme/calculator".into())
        );
        assert_eq!(
            ProjectRef::parse("acme%2Fcalculator"),
            ProjectRef::Path("acme/calculator".into())
        );
        assert_eq!(ProjectRef::parse("+42"), ProjectRef::Path("+42".into()));
    }

    #[test]
    fn matches_the_project_named_by_the_payload() {
        let ours = json!({"project_id": 14, "project": {"id": 14, "path_with_namespace": "platform/environments"}});
        let theirs = json!({"project_id": 15, "project": {"id": 15, "path_with_namespace": "platform/other"}});
        let mixed = json!({"project_id": 15, "project": {"id": 14, "path_with_namespace": "platform/environments"}});
        let nameless = json!({"object_kind": "note"});
        let by_id = ProjectRef::Id(14);
        let by_path = ProjectRef::Path("Platform/Environments".into());
        assert!(by_id.matches(&ours) && by_path.matches(&ours));
        assert!(!by_id.matches(&theirs) && !by_path.matches(&theirs));
        assert!(
            !by_id.matches(&mixed),
            "two ids, one of them another project's"
        );
        assert!(!by_id.matches(&nameless) && !by_path.matches(&nameless));
        assert!(!by_id.matches(&json!({"project": {"id": "14"}})));
    }
}
