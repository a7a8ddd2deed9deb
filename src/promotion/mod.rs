//! A promotion as file edits: the new tag in the target's `values.yaml` and in every image of
//! the same repository in its `release.yml`, each a format-preserving splice, plus the
//! unified diff a reviewer sees and the branch and commit names. Pure.

pub mod branches;
pub mod describe;
pub mod train;

use similar::TextDiff;

use crate::diagnostic::Diagnostic;
use crate::image::ImageRef;
use crate::model::{EnvName, ServiceName, Tag};
use crate::repo::Tree;
use crate::repo::service::{ImageLocation, Service};
use crate::yaml;

/// One file's content before and after a promotion.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileEdit {
    /// Path from the repository root.
    pub path: String,
    /// The text now.
    pub before: String,
    /// The text after the promotion.
    pub after: String,
}

/// The branch of a promotion: `promoter/<env>/<service>` (see [`branches`]).
pub use branches::promotion as branch;

/// The commit message of a promotion.
pub fn commit_message(
    service: &ServiceName,
    env: &EnvName,
    old: Option<&Tag>,
    new: &Tag,
) -> String {
    format!(
        "promote {service} to {env}: {} -> {new}",
        old.map_or("(none)", Tag::as_str)
    )
}

/// A person's request as promoter records it in the trailers of its commit on the promotion
/// branch, so that later runs keep honouring it (a rollback is not undone by the next resync).
/// Only promoter's own commits are read, those its signature proves: a commit by anyone else
/// makes promoter keep its hands off the branch. The signed `Promotion:` trailer binds the
/// request to its branch, so a genuine commit copied onto another branch asks for nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The promotion branch it was recorded for (`promoter/<env>/<service>`).
    pub promotion: Option<String>,
    /// Who asked.
    pub requested_by: String,
    /// Why.
    pub reason: Option<String>,
    /// The tag asked for, when one was.
    pub tag: Option<Tag>,
    /// A rollback.
    pub rollback: bool,
    /// When it was first asked.
    pub requested_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl RecordedRequest {
    /// The trailers to append to the commit message.
    pub fn trailers(&self) -> String {
        let one_line = |s: &str| s.replace(['\n', '\r'], " ");
        let mut out = format!("\n\nRequested-by: {}", one_line(&self.requested_by));
        if let Some(reason) = &self.reason {
            out.push_str(&format!("\nReason: {}", one_line(reason)));
        }
        if let Some(tag) = &self.tag {
            out.push_str(&format!("\nRequested-tag: {tag}"));
        }
        if self.rollback {
            out.push_str("\nRollback: yes");
        }
        if let Some(at) = self.requested_at {
            out.push_str(&format!("\nRequested-at: {}", at.to_rfc3339()));
        }
        if let Some(promotion) = &self.promotion {
            out.push_str(&format!("\nPromotion: {}", one_line(promotion)));
        }
        out
    }

    /// The request recorded in a commit message, if any.
    pub fn parse(message: &str) -> Option<Self> {
        let trailer = |name: &str| {
            message
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        Some(Self {
            promotion: trailer("Promotion:"),
            requested_by: trailer("Requested-by:")?,
            reason: trailer("Reason:"),
            tag: trailer("Requested-tag:").map(Tag::new),
            rollback: trailer("Rollback:").as_deref() == Some("yes"),
            requested_at: trailer("Requested-at:").and_then(|t| t.parse().ok()),
        })
    }
}

/// The edits that set `service` (in its environment) to `tag`, pinning `digest` when given
/// (the upstream's digest; a digest the target pinned for its old tag is dropped).
pub fn edits(
    tree: &dyn Tree,
    service: &Service,
    tag: &Tag,
    digest: Option<&str>,
) -> Result<Vec<FileEdit>, Diagnostic> {
    let values_file = service.values_file();
    let release_file = service.release_file();
    let read = |path: &str| -> Result<String, Diagnostic> {
        let bytes = tree
            .read(path)
            .map_err(|e| Diagnostic::file(path, format!("cannot read: {e}")))?;
        yaml::decode(&bytes)
            .map(str::to_string)
            .map_err(|e| Diagnostic::from_yaml(path, &e))
    };
    let set = |path: &str, text: &str, doc: usize, at: &yaml::YamlPath, value: &str| {
        yaml::set_scalar(text, doc, at, value)
            .map(|e| e.text)
            .map_err(|e| Diagnostic::from_yaml(path, &e))
    };
    let with_digest = |t: &str| match digest {
        Some(d) => format!("{t}@{d}"),
        None => t.to_string(),
    };

    let values = read(&values_file)?;
    let new_values = match &service.image.location {
        ImageLocation::Tag { tag_path, .. } => set(
            &values_file,
            &values,
            0,
            tag_path,
            &with_digest(tag.as_str()),
        )?,
        ImageLocation::Ref { ref_path } => {
            let current: ImageRef = yaml::get_scalar(&values, 0, ref_path)
                .map_err(|e| Diagnostic::from_yaml(&values_file, &e))?
                .value
                .parse()
                .map_err(|e| Diagnostic::file(&values_file, format!("{e}")))?;
            let new =
                retag(&current, tag, digest).map_err(|e| Diagnostic::file(&values_file, e))?;
            set(&values_file, &values, 0, ref_path, &new.to_string())?
        }
    };

    let release = read(&release_file)?;
    let mut new_release = release.clone();
    for image in &service.release_images {
        let new = retag(&image.image, tag, digest)
            .map_err(|e| Diagnostic::at(&release_file, image.line, None, e))?;
        new_release = set(
            &release_file,
            &new_release,
            image.doc,
            &image.path,
            &new.to_string(),
        )?;
    }
    Ok([
        (values_file, values, new_values),
        (release_file, release, new_release),
    ]
    .into_iter()
    .filter(|(_, before, after)| before != after)
    .map(|(path, before, after)| FileEdit {
        path,
        before,
        after,
    })
    .collect())
}

fn retag(image: &ImageRef, tag: &Tag, digest: Option<&str>) -> Result<ImageRef, String> {
    image
        .with_tag(tag.as_str())
        .and_then(|i| i.with_digest(digest))
        .map_err(|e| e.to_string())
}

/// The edit a rollback adds to its own MR: the hold that keeps the tag it rolled back from out
/// until someone lifts it (written over an earlier hold of the same service and environment).
pub fn hold_edit(tree: &dyn Tree, hold: &crate::policy::hold::Hold) -> FileEdit {
    let before = tree
        .read(&hold.file)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    FileEdit {
        path: hold.file.clone(),
        before,
        after: crate::policy::hold::render(hold),
    }
}

/// The edits as one unified diff, `a/` and `b/` prefixed like `git diff`.
pub fn unified_diff(edits: &[FileEdit]) -> String {
    let mut out = String::new();
    for edit in edits {
        let diff = TextDiff::from_lines(&edit.before, &edit.after);
        out.push_str(&format!("diff --git a/{0} b/{0}\n", edit.path));
        out.push_str(
            &diff
                .unified_diff()
                .context_radius(3)
                .header(&format!("a/{}", edit.path), &format!("b/{}", edit.path))
                .to_string(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::Snapshot;
    use crate::testkit;

    #[test]
    fn a_promotion_changes_exactly_the_tag_lines() {
        let tree = testkit::tree(&[("dev", "api", "1.3.0"), ("qa", "api", "1.2.1")]);
        let snapshot = Snapshot::load(&tree);
        let service = snapshot
            .service(&EnvName::new("qa"), &ServiceName::new("api"))
            .unwrap();
        let edits = edits(&tree, service, &Tag::new("1.3.0"), None).unwrap();
        assert_eq!(edits.len(), 2);
        for edit in &edits {
            let changed: Vec<_> = edit
                .before
                .lines()
                .zip(edit.after.lines())
                .filter(|(a, b)| a != b)
                .collect();
            assert_eq!(changed.len(), 1, "{}", edit.path);
            assert!(changed[0].1.contains("1.3.0") && changed[0].0.contains("1.2.1"));
            assert_eq!(edit.before.len() - edit.after.len(), 0, "same length tags");
        }
        let diff = unified_diff(&edits);
        assert!(diff.contains("-  tag: 1.2.1\n+  tag: 1.3.0\n"), "{diff}");
        assert!(
            diff.contains("+          image: \"registry.example.com/team/api:1.3.0\"\n"),
            "{diff}"
        );
        assert!(diff.starts_with("diff --git a/clusters/qa/apps/api/values.yaml b/clusters/qa/apps/api/values.yaml\n--- a/"));
    }

    #[test]
    fn a_float_looking_tag_stays_a_string_and_digests_are_carried() {
        let tree = testkit::tree(&[("qa", "api", "1.2.1")]);
        let snapshot = Snapshot::load(&tree);
        let service = snapshot
            .service(&EnvName::new("qa"), &ServiceName::new("api"))
            .unwrap();
        let digest = format!("sha256:{}", "a".repeat(64));
        let edits = edits(&tree, service, &Tag::new("2.10"), Some(&digest)).unwrap();
        assert!(
            edits[0].after.contains(&format!("  tag: 2.10@{digest}\n")),
            "{}",
            edits[0].after
        );
        let plain = super::edits(&tree, service, &Tag::new("2.10"), None).unwrap();
        assert!(
            plain[0].after.contains("  tag: \"2.10\"\n"),
            "{}",
            plain[0].after
        );
        assert!(
            plain[1]
                .after
                .contains("registry.example.com/team/api:2.10\""),
            "{}",
            plain[1].after
        );
    }

    #[test]
    fn requests_round_trip_through_commit_trailers() {
        let request = RecordedRequest {
            promotion: Some("promoter/qa/api".into()),
            requested_by: "slack:U1".into(),
            reason: Some("bad release\nsecond line".into()),
            tag: Some(Tag::new("1.2.1")),
            rollback: true,
            requested_at: Some("2026-11-30T20:00:00Z".parse().unwrap()),
        };
        let message = format!("promote api to qa: 1.3.0 -> 1.2.1{}", request.trailers());
        let parsed = RecordedRequest::parse(&message).unwrap();
        assert_eq!(parsed.reason.as_deref(), Some("bad release second line"));
        assert_eq!(
            RecordedRequest {
                reason: Some("bad release second line".into()),
                ..request
            },
            parsed
        );
        assert_eq!(RecordedRequest::parse("promote api to qa: 1 -> 2"), None);
    }

    #[test]
    fn names() {
        let (env, service) = (EnvName::new("qa"), ServiceName::new("api"));
        assert_eq!(branch(&env, &service), "promoter/qa/api");
        assert_eq!(
            commit_message(&service, &env, Some(&Tag::new("1.0.0")), &Tag::new("1.1.0")),
            "promote api to qa: 1.0.0 -> 1.1.0"
        );
    }
}
