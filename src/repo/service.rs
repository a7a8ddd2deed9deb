//! Services of one environment: discovered as folders under the environment's path that hold a
//! `values.yaml` (each must have a `release.yml` beside it), with where the image tag lives in
//! `values.yaml` and every image of the same repository in `release.yml`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Tree;
use super::environment::{Environment, ServiceOverride, is_valid_name};
use crate::diagnostic::Diagnostic;
use crate::image::ImageRef;
use crate::model::{EnvName, ServiceName, Tag};
use crate::yaml::{self, Segment, YamlPath};

/// The file holding an environment's values for a service.
pub const VALUES: &str = "values.yaml";
/// The chart rendered with those values: what Flux applies.
pub const RELEASE: &str = "release.yml";
/// Folders never searched for services.
const SKIPPED_DIRS: [&str; 2] = ["flux-system", ".git"];
/// How deep under an environment's path services are looked for.
const MAX_DEPTH: usize = 6;

/// Where the image tag is written in `values.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageLocation {
    /// A tag scalar of its own (`image.tag`), the repository elsewhere.
    Tag {
        tag_path: YamlPath,
        repository_path: Option<YamlPath>,
    },
    /// One `repository:tag` string (`image: repo:tag`).
    Ref { ref_path: YamlPath },
}

/// The image a service runs in one environment, per its `values.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValuesImage {
    /// The repository as written (registry included), without tag.
    pub repository: String,
    /// The tag; `None` when empty or null.
    pub tag: Option<Tag>,
    /// A digest pinned beside the tag (`1.2.3@sha256:...`).
    pub digest: Option<String>,
    /// Where it is written.
    pub location: ImageLocation,
    /// Line of the tag (or of the reference) in `values.yaml`.
    pub line: usize,
}

/// An image reference in `release.yml` of the service's repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseImage {
    /// Document index in `release.yml`.
    pub doc: usize,
    /// Path in that document.
    pub path: YamlPath,
    /// The reference.
    pub image: ImageRef,
    /// Line in `release.yml`.
    pub line: usize,
}

/// One service in one environment.
#[derive(Debug, Clone)]
pub struct Service {
    /// Its name: the folder's name.
    pub name: ServiceName,
    /// The environment.
    pub env: EnvName,
    /// The folder, e.g. `clusters/qa/calculator/maths-api`.
    pub dir: String,
    /// The image per `values.yaml`.
    pub image: ValuesImage,
    /// The images of that repository in `release.yml`.
    pub release_images: Vec<ReleaseImage>,
}

impl Service {
    /// Path of its `values.yaml`.
    pub fn values_file(&self) -> String {
        format!("{}/{VALUES}", self.dir)
    }

    /// Path of its `release.yml`.
    pub fn release_file(&self) -> String {
        format!("{}/{RELEASE}", self.dir)
    }
}

/// Finds the services of `env`; a service with a problem is left out and reported.
pub fn discover(tree: &dyn Tree, env: &Environment) -> (Vec<Arc<Service>>, Vec<Diagnostic>) {
    discover_with(
        tree,
        env,
        &mut |tree, env, name, dir| read_service(tree, env, name, dir).map(Arc::new),
        None,
    )
}

/// What finding the service folders under one folder gave: the folder's tree id, the service
/// folders under it and the problems met.
#[derive(Debug, Clone, Default)]
pub struct Found {
    id: String,
    dirs: Vec<String>,
    problems: Vec<Diagnostic>,
}

/// The service-folder search of one environment, by folder path: what the last search found
/// (`last`), and what this one finds (`now`). A folder whose tree id is the one searched last
/// time holds the same service folders (git ids are content addresses), so it is not listed
/// again: after one release only the folders above the released service are.
#[derive(Debug, Clone, Default)]
pub struct FoundDirs {
    pub(crate) last: std::collections::HashMap<String, Found>,
    pub(crate) now: std::collections::HashMap<String, Found>,
}

/// Reads one service folder: `(tree, env, name, dir)` to the service or its problems.
pub type ReadFolder<'a> =
    dyn FnMut(&dyn Tree, &Environment, &str, &str) -> Result<Arc<Service>, Vec<Diagnostic>> + 'a;

/// [`discover`], with `read(tree, env, name, dir)` reading each service folder (the loader
/// that reuses what an earlier read found passes its own; [`read_service`] reads it).
pub fn discover_with(
    tree: &dyn Tree,
    env: &Environment,
    read: &mut ReadFolder<'_>,
    found: Option<&mut FoundDirs>,
) -> (Vec<Arc<Service>>, Vec<Diagnostic>) {
    let mut dirs = Vec::new();
    let mut problems = Vec::new();
    let mut search = Search {
        tree,
        found,
        dirs: &mut dirs,
        problems: &mut problems,
    };
    search.under(&env.path, 0);
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for dir in dirs {
        let name = dir.rsplit('/').next().unwrap_or(&dir).to_string();
        by_name.entry(name).or_default().push(dir);
    }
    let mut services = Vec::new();
    for (name, dirs) in by_name {
        if dirs.len() > 1 {
            problems.push(Diagnostic::file(
                format!("{}/{VALUES}", dirs[1]),
                format!(
                    "service `{name}` is also at {}: service folder names must be unique within {}",
                    dirs[0], env.name
                ),
            ));
            continue;
        }
        let dir = &dirs[0];
        if !is_valid_name(&name) {
            problems.push(Diagnostic::file(
                format!("{dir}/{VALUES}"),
                format!(
                    "`{}` is not a valid service name: rename the folder with lowercase letters, digits, `-`, `_` or `.` (starting and ending with a letter or digit)",
                    name.escape_debug()
                ),
            ));
            continue;
        }
        match read(tree, env, &name, dir) {
            Ok(service) => services.push(service),
            Err(found) => problems.extend(found),
        }
    }
    (services, problems)
}

/// The service in folder `dir` of `env`, or the problems that keep it out of the plan. Reads
/// only files inside `dir`: the same folder (same tree id) in the same environment is the same
/// service.
pub fn read_service(
    tree: &dyn Tree,
    env: &Environment,
    name: &str,
    dir: &str,
) -> Result<Service, Vec<Diagnostic>> {
    let service = load_service(tree, env, name, dir).map_err(|problem| vec![problem])?;
    // A release.yml that runs another tag than values.yaml says: which one has run, and for
    // how long, is unknown, so the service waits until they agree. (Without a tag there is
    // nothing to promote from yet; check reports it.)
    let disagree = match service.image.tag {
        Some(_) => disagreements(&service),
        None => Vec::new(),
    };
    if disagree.is_empty() {
        Ok(service)
    } else {
        Err(disagree)
    }
}

/// The search for service folders under an environment's folder.
struct Search<'a> {
    tree: &'a dyn Tree,
    found: Option<&'a mut FoundDirs>,
    dirs: &'a mut Vec<String>,
    problems: &'a mut Vec<Diagnostic>,
}

impl Search<'_> {
    /// The service folders under `dir` (`depth` folders below the environment's): a folder
    /// holding `values.yaml` is one, and is not searched further.
    fn under(&mut self, dir: &str, depth: usize) {
        let id = match self.found.as_deref() {
            Some(_) if depth > 0 => self.tree.dir_id(dir),
            _ => None,
        };
        if let (Some(id), Some(found)) = (&id, self.found.as_deref_mut())
            && let Some(known) = found.last.remove(dir).filter(|k| k.id == *id)
        {
            self.dirs.extend(known.dirs.iter().cloned());
            self.problems.extend(known.problems.iter().cloned());
            found.now.insert(dir.to_string(), known);
            return;
        }
        let (first_dir, first_problem) = (self.dirs.len(), self.problems.len());
        self.search(dir, depth);
        if let (Some(id), Some(found)) = (id, self.found.as_deref_mut()) {
            found.now.insert(
                dir.to_string(),
                Found {
                    id,
                    dirs: self.dirs[first_dir..].to_vec(),
                    problems: self.problems[first_problem..].to_vec(),
                },
            );
        }
    }

    fn search(&mut self, dir: &str, depth: usize) {
        let entries = match self.tree.list(dir) {
            Ok(entries) => entries,
            Err(e) => {
                self.problems
                    .push(Diagnostic::file(dir, format!("cannot list: {e}")));
                return;
            }
        };
        if depth > 0 && entries.iter().any(|e| !e.is_dir && e.name == VALUES) {
            self.dirs.push(dir.to_string());
            return;
        }
        if depth >= MAX_DEPTH {
            return;
        }
        for entry in entries
            .iter()
            .filter(|e| e.is_dir && !SKIPPED_DIRS.contains(&e.name.as_str()))
        {
            self.under(&format!("{dir}/{}", entry.name), depth + 1);
        }
    }
}

fn load_service(
    tree: &dyn Tree,
    env: &Environment,
    name: &str,
    dir: &str,
) -> Result<Service, Diagnostic> {
    let values_file = format!("{dir}/{VALUES}");
    let release_file = format!("{dir}/{RELEASE}");
    let values = read_text(tree, &values_file)?;
    let image = values_image(&values, env.services.get(name)).map_err(|e| match e {
        ImageError::Yaml(e) => Diagnostic::from_yaml(&values_file, &e),
        ImageError::Other(line, message) => Diagnostic::at(&values_file, line, None, message),
        ImageError::NotFound(message) => Diagnostic::file(
            &values_file,
            format!(
                "{message} (environments/{}.yaml services.{name} can say where it is)",
                env.name
            ),
        ),
    })?;
    if !tree.is_file(&release_file) {
        return Err(Diagnostic::file(
            &values_file,
            format!(
                "no {RELEASE} beside it: render the chart with these values into {release_file}"
            ),
        ));
    }
    let release = read_text(tree, &release_file)?;
    let release_images = release_images(&release, &image.repository)
        .map_err(|e| Diagnostic::from_yaml(&release_file, &e))?;
    Ok(Service {
        name: ServiceName::new(name),
        env: env.name.clone(),
        dir: dir.to_string(),
        image,
        release_images,
    })
}

fn read_text(tree: &dyn Tree, path: &str) -> Result<String, Diagnostic> {
    let bytes = tree
        .read(path)
        .map_err(|e| Diagnostic::file(path, format!("cannot read: {e}")))?;
    yaml::decode(&bytes)
        .map(str::to_string)
        .map_err(|e| Diagnostic::from_yaml(path, &e))
}

/// Why the image could not be found in a values file.
#[derive(Debug)]
pub enum ImageError {
    /// The file is not valid YAML, or a configured path is wrong.
    Yaml(yaml::Error),
    /// Something is wrong at a line.
    Other(usize, String),
    /// No image where images usually are.
    NotFound(String),
}

fn path(text: &str) -> YamlPath {
    text.parse().expect("built-in paths are valid")
}

/// Finds the image in a values file: the configured location, else `image.tag` with
/// `image.name` or `image.repository` (and `image.registry`), else `image: repo:tag`.
pub fn values_image(
    values: &str,
    configured: Option<&ServiceOverride>,
) -> Result<ValuesImage, ImageError> {
    let get = |p: &YamlPath| yaml::get_scalar(values, 0, p);
    if let Some(o) = configured {
        if let Some(ref_path) = &o.ref_path {
            let ref_path: YamlPath = ref_path
                .parse()
                .map_err(|e: yaml::PathError| ImageError::NotFound(e.to_string()))?;
            let scalar = get(&ref_path).map_err(ImageError::Yaml)?;
            return from_ref(scalar, ref_path);
        }
        if let Some(tag_path) = &o.tag_path {
            let tag_path: YamlPath = tag_path
                .parse()
                .map_err(|e: yaml::PathError| ImageError::NotFound(e.to_string()))?;
            let tag = get(&tag_path).map_err(ImageError::Yaml)?;
            let repository_path = o
                .repository_path
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|e: yaml::PathError| ImageError::NotFound(e.to_string()))?;
            let repository = match &repository_path {
                Some(p) => get(p).map_err(ImageError::Yaml)?.value,
                None => String::new(),
            };
            return from_tag(tag, tag_path, repository, repository_path);
        }
    }
    // The usual layouts, read in one pass over the file.
    let keys = [
        "image",
        "image.tag",
        "image.name",
        "image.repository",
        "image.registry",
    ]
    .map(path);
    let mut found: [Option<yaml::Scalar>; 5] = Default::default();
    for scalar in yaml::find_scalars(values, |doc, p| {
        doc == 0 && keys.iter().any(|k| k.segments() == p)
    })
    .map_err(ImageError::Yaml)?
    {
        if let Some(i) = keys.iter().position(|k| *k == scalar.path) {
            found[i].get_or_insert(scalar);
        }
    }
    let [image, tag, name, repository, registry] = found;
    if let Some(tag) = tag {
        if let Some(name) = name {
            return from_tag(tag, path("image.tag"), name.value, Some(path("image.name")));
        }
        if let Some(repository) = repository {
            let full = match registry.filter(|r| !r.value.is_empty()) {
                Some(registry) => format!(
                    "{}/{}",
                    registry.value.trim_end_matches('/'),
                    repository.value
                ),
                None => repository.value,
            };
            return from_tag(tag, path("image.tag"), full, Some(path("image.repository")));
        }
        return Err(ImageError::Other(
            tag.line,
            "image.tag has no image.name or image.repository beside it".into(),
        ));
    }
    if let Some(image) = image {
        return from_ref(image, path("image"));
    }
    Err(ImageError::NotFound("no image found: expected image.tag with image.name or image.repository, or image: repository:tag".into()))
}

fn split_digest(tag: &str) -> (Option<Tag>, Option<String>) {
    let (tag, digest) = match tag.split_once('@') {
        Some((t, d)) => (t, Some(d.to_string())),
        None => (tag, None),
    };
    ((!tag.is_empty()).then(|| Tag::new(tag)), digest)
}

fn from_tag(
    tag: yaml::Scalar,
    tag_path: YamlPath,
    repository: String,
    repository_path: Option<YamlPath>,
) -> Result<ValuesImage, ImageError> {
    let (tag_value, digest) = split_digest(&tag.value);
    if let Some(t) = &tag_value
        && !crate::image::is_valid_tag(t.as_str())
    {
        return Err(ImageError::Other(
            tag.line,
            format!("`{t}` is not a valid image tag"),
        ));
    }
    if !repository.is_empty()
        && let Err(e) = repository.parse::<ImageRef>()
    {
        return Err(ImageError::Other(
            tag.line,
            format!("the image repository is not valid: {e}"),
        ));
    }
    Ok(ValuesImage {
        repository,
        tag: tag_value,
        digest,
        location: ImageLocation::Tag {
            tag_path,
            repository_path,
        },
        line: tag.line,
    })
}

fn from_ref(scalar: yaml::Scalar, ref_path: YamlPath) -> Result<ValuesImage, ImageError> {
    let image: ImageRef = scalar.value.parse().map_err(|e| {
        ImageError::Other(
            scalar.line,
            format!("`{}` is not an image reference: {e}", ref_path),
        )
    })?;
    Ok(ValuesImage {
        repository: image.name(),
        tag: image.tag().map(Tag::new),
        digest: image.digest().map(str::to_string),
        location: ImageLocation::Ref { ref_path },
        line: scalar.line,
    })
}

/// Where the service's `release.yml` runs another tag (or digest) than its `values.yaml`
/// says: one diagnostic per image, at its line in `release.yml`.
pub fn disagreements(service: &Service) -> Vec<Diagnostic> {
    let release = service.release_file();
    let want = service.image.tag.as_ref().map(|t| t.to_string());
    let mut problems = Vec::new();
    for image in &service.release_images {
        let tag = image.image.tag().map(str::to_string);
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
    problems
}

/// Every scalar at a key named `image` in `release.yml` (any document) that is a reference to
/// `repository`.
pub fn release_images(release: &str, repository: &str) -> Result<Vec<ReleaseImage>, yaml::Error> {
    let Ok(wanted) = repository.parse::<ImageRef>() else {
        return Ok(Vec::new());
    };
    let found = yaml::find_scalars(
        release,
        |_, p| matches!(p.last(), Some(Segment::Key(k)) if k == "image"),
    )?;
    Ok(found
        .into_iter()
        .filter_map(|s| {
            let image: ImageRef = s.value.parse().ok()?;
            image.same_repository(&wanted).then_some(ReleaseImage {
                doc: s.doc,
                path: s.path,
                image,
                line: s.line,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::tree::MemTree;

    fn env() -> Environment {
        Environment {
            name: EnvName::new("qa"),
            path: "clusters/qa".into(),
            promotes_from: Some(EnvName::new("dev")),
            schedule: None,
            schedule_text: None,
            timezone: chrono_tz::UTC,
            auto_merge: false,
            approvals_required: 0,
            services: BTreeMap::new(),
            health: Default::default(),
            file: "environments/qa.yaml".into(),
        }
    }

    const RELEASE_YML: &str = "---\n# Source: a/templates/deployment.yaml\nkind: Deployment\nspec:\n  template:\n    spec:\n      initContainers:\n      - image: \"reg.io/team/app:1.0.0\"\n      containers:\n      - image: \"reg.io/team/app:1.0.0\"\n      - image: \"busybox:1.36\"\n";

    #[test]
    fn finds_the_tag_in_each_supported_layout() {
        let cases: &[(&str, &str, Option<&str>, &str)] = &[
            (
                "image:\n  name: reg.io/team/app\n  tag: 1.0.0\n",
                "reg.io/team/app",
                Some("1.0.0"),
                "image.tag",
            ),
            (
                "image:\n  repository: team/app\n  registry: reg.io\n  tag: \"1.0.0\"\n",
                "reg.io/team/app",
                Some("1.0.0"),
                "image.tag",
            ),
            (
                "image:\n  repository: team/app\n  tag: \"\"\n",
                "team/app",
                None,
                "image.tag",
            ),
            (
                "image: reg.io/team/app:1.0.0\n",
                "reg.io/team/app",
                Some("1.0.0"),
                "image",
            ),
            (
                "image:\n  repository: team/app\n  tag: 1.0.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
                "team/app",
                Some("1.0.0"),
                "image.tag",
            ),
        ];
        for (values, repository, tag, at) in cases {
            let image = values_image(values, None).unwrap_or_else(|e| panic!("{values}: {e:?}"));
            assert_eq!(image.repository, *repository, "{values}");
            assert_eq!(image.tag.as_ref().map(Tag::as_str), *tag, "{values}");
            let written = match &image.location {
                ImageLocation::Tag { tag_path, .. } => tag_path.to_string(),
                ImageLocation::Ref { ref_path } => ref_path.to_string(),
            };
            assert_eq!(written, *at);
        }
    }

    #[test]
    fn configured_paths_win() {
        let o = ServiceOverride {
            tag_path: Some("app.version".into()),
            repository_path: Some("app.repo".into()),
            ref_path: None,
        };
        let image = values_image(
            "app:\n  repo: reg.io/x\n  version: 2.0.0\nimage:\n  tag: 1\n",
            Some(&o),
        )
        .unwrap();
        assert_eq!(
            (image.repository.as_str(), image.tag.unwrap().as_str()),
            ("reg.io/x", "2.0.0")
        );
    }

    #[test]
    fn values_without_an_image_are_explained() {
        let err = values_image("replicaCount: 1\n", None).unwrap_err();
        assert!(
            matches!(err, ImageError::NotFound(ref m) if m.contains("no image found")),
            "{err:?}"
        );
        let err = values_image("image:\n  tag: 1.0.0\n", None).unwrap_err();
        assert!(
            matches!(err, ImageError::Other(2, ref m) if m.contains("no image.name")),
            "{err:?}"
        );
    }

    #[test]
    fn release_images_of_the_repository_only() {
        let found = release_images(RELEASE_YML, "reg.io/team/app").unwrap();
        let paths: Vec<_> = found
            .iter()
            .map(|i| (i.doc, i.path.to_string(), i.line))
            .collect();
        assert_eq!(
            paths,
            [
                (
                    0,
                    "spec.template.spec.initContainers[0].image".to_string(),
                    8
                ),
                (0, "spec.template.spec.containers[0].image".to_string(), 10)
            ]
        );
    }

    #[test]
    fn discovers_services_and_reports_broken_ones() {
        let mut tree = MemTree::new();
        tree.insert(
            "clusters/qa/apps/app/values.yaml",
            "image:\n  name: reg.io/team/app\n  tag: 1.0.0\n",
        )
        .insert("clusters/qa/apps/app/release.yml", RELEASE_YML)
        .insert(
            "clusters/qa/apps/norelease/values.yaml",
            "image:\n  name: reg.io/x\n  tag: 1\n",
        )
        .insert("clusters/qa/apps/broken/values.yaml", "image: [\n")
        .insert("clusters/qa/apps/broken/release.yml", "")
        .insert("clusters/qa/apps/Bad Name/values.yaml", "image: x:1\n")
        .insert("clusters/qa/flux-system/skip/values.yaml", "image: x:1\n");
        let (services, problems) = discover(&tree, &env());
        assert_eq!(
            services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["app"]
        );
        assert_eq!(services[0].release_images.len(), 2);
        let text: Vec<_> = problems.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|p| p.starts_with("clusters/qa/apps/broken/values.yaml:2:1: invalid YAML")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|p| p
                .starts_with("clusters/qa/apps/norelease/values.yaml: no release.yml beside it")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|p| p.contains("`Bad Name` is not a valid service name")),
            "{text:?}"
        );
        assert_eq!(text.len(), 3, "{text:?}");
    }
}
