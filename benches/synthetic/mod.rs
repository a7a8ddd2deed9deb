#![allow(dead_code)] // each benchmark uses part of the builder
//! The synthetic monorepo the benchmarks measure: dev -> qa -> prod like the sample, N
//! services per environment, C commits of tag history one day apart (CI releases 5% of the
//! services into dev per commit; trains promote into qa and prod), built with git2.

use std::io::Write;
use std::path::Path;

use git2::{IndexAddOption, Oid, Repository, Signature};

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The first commit's time: Monday 2025-01-06 10:00 UTC, after the year-end freeze.
pub const START: i64 = 1_736_157_600;
/// A day in seconds.
pub const DAY: i64 = 86_400;
/// The environments, in promotion order.
pub const ENVS: [&str; 3] = ["dev", "qa", "prod"];

// ---------------------------------------------------------------------------------------------
// The synthetic repository

const ENVIRONMENT_FILES: [(&str, &str); 3] = [
    (
        "environments/dev.yaml",
        "# dev: the first environment. Its tags come from CI: releasing a service's .version\n\
         # builds the image and sets the tag in clusters/dev/apps/<service>/.\n\
         name: dev\npath: clusters/dev\ntimezone: Europe/London\nauto_merge: false\napprovals_required: 0\n",
    ),
    (
        "environments/qa.yaml",
        "# qa takes dev's tags every night at 02:00 London time, once they have soaked an hour\n\
         # (policies/qa.yaml); one approval and promoter merges the MR itself.\n\
         name: qa\npath: clusters/qa\npromotes_from: dev\nschedule: \"0 0 2 * * *\"\ntimezone: Europe/London\n\
         auto_merge: true\napprovals_required: 1\n",
    ),
    (
        "environments/prod.yaml",
        "# prod takes qa's tags on Tuesday and Thursday mornings, after a day in qa\n\
         # (policies/prod.yaml); two approvals, and a person merges.\n\
         name: prod\npath: clusters/prod\npromotes_from: qa\nschedule: \"0 0 9 * * Tue,Thu\"\ntimezone: Europe/London\n\
         auto_merge: false\napprovals_required: 2\n",
    ),
];

const POLICY_FILES: [(&str, &str); 2] = [
    (
        "policies/qa.yaml",
        "# Gates for promotions into qa.\nenvironments: [qa]\n\
         # A tag must have run in dev for an hour before it moves to qa.\nsoak: 1h\n",
    ),
    (
        "policies/prod.yaml",
        "# Gates for promotions into prod.\nenvironments: [prod]\n# A tag must have run in qa for a day.\nsoak: 24h\n\
         # Major version bumps only when a person asks for them.\nsemver:\n  max_bump: minor\n\
         # No promotions over the holidays (whole days, prod's time zone).\nfreezes:\n  - name: year-end\n\
         \x20   reason: reduced staffing over the holidays\n    yearly:\n      from: \"12-20\"\n      to: \"01-03\"\n\
         # May waive soak and freezes for an explicit request that gives a reason.\nbreak_glass: [oncall-lead]\n",
    ),
];

/// The sample's `clusters/qa/calculator/maths-api/values.yaml`, renamed.
const VALUES_TEMPLATE: &str = "\
# @NAME@ in @ENV@: values for charts/@NAME@ (same keys as its values.yaml).
# release.yml next to this file is rendered from it by scripts/render-releases;
# promotions change image.tag here and the image in release.yml.
appName: @NAME@
port: @PORT@
replicaCount: 2
namespace: apps
resources:
  requests:
    cpu: 50m
    memory: 32Mi
  limits:
    cpu: 250m
    memory: 128Mi
configmap:
  name: @NAME@-config
  data:
    APP_PORT: \":@PORT@\"
image:
  name: @IMAGE@
  tag: @TAG@
";

/// The sample's `release.yml` (helm template output, three documents), renamed.
const RELEASE_TEMPLATE: &str = "\
---
# Source: @NAME@/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: @NAME@-config
  namespace: apps
  labels:
    app.kubernetes.io/name: @NAME@
    app.kubernetes.io/instance: @NAME@
    app.kubernetes.io/part-of: platform
    app.kubernetes.io/managed-by: Helm
    helm.sh/chart: @NAME@-0.1.0
data:
  APP_PORT: \":@PORT@\"

---
# Source: @NAME@/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: @NAME@
  namespace: apps
  labels:
    app.kubernetes.io/name: @NAME@
    app.kubernetes.io/instance: @NAME@
    app.kubernetes.io/part-of: platform
    app.kubernetes.io/managed-by: Helm
    helm.sh/chart: @NAME@-0.1.0
spec:
  type: ClusterIP
  selector:
    app.kubernetes.io/name: @NAME@
    app.kubernetes.io/instance: @NAME@
  ports:
    - name: http
      protocol: TCP
      port: @PORT@
      targetPort: http

---
# Source: @NAME@/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: @NAME@
  namespace: apps
  labels:
    app.kubernetes.io/name: @NAME@
    app.kubernetes.io/instance: @NAME@
    app.kubernetes.io/part-of: platform
    app.kubernetes.io/managed-by: Helm
    helm.sh/chart: @NAME@-0.1.0
spec:
  replicas: 2
  selector:
    matchLabels:
      app.kubernetes.io/name: @NAME@
      app.kubernetes.io/instance: @NAME@
  template:
    metadata:
      labels:
        app.kubernetes.io/name: @NAME@
        app.kubernetes.io/instance: @NAME@
        app.kubernetes.io/part-of: platform
        app.kubernetes.io/managed-by: Helm
        helm.sh/chart: @NAME@-0.1.0
    spec:
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: @NAME@
          image: \"@IMAGE@:@TAG@\"
          imagePullPolicy: IfNotPresent
          ports:
            - name: http
              containerPort: @PORT@
              protocol: TCP
          envFrom:
            - configMapRef:
                name: @NAME@-config
          readinessProbe:
            httpGet:
              path: /health
              port: http
            initialDelaySeconds: 2
            periodSeconds: 5
          livenessProbe:
            httpGet:
              path: /health
              port: http
            initialDelaySeconds: 5
            periodSeconds: 10
          resources:
            limits:
              cpu: 250m
              memory: 128Mi
            requests:
              cpu: 50m
              memory: 32Mi
          securityContext:
            runAsNonRoot: true
            runAsUser: 10001
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop:
                - ALL
";

/// A 64-bit LCG (Knuth's MMIX constants): deterministic and dependency-free.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version(u32, u32, u32);

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

pub fn name(i: usize) -> String {
    format!("svc-{i:04}")
}

pub fn service_dir(env: &str, i: usize) -> String {
    format!("clusters/{env}/apps/{}", name(i))
}

fn render(template: &str, env: &str, i: usize, tag: Version) -> String {
    let name = name(i);
    template
        .replace("@NAME@", &name)
        .replace("@ENV@", env)
        .replace("@PORT@", &(8000 + i % 1000).to_string())
        .replace(
            "@IMAGE@",
            &format!("registry.example.com/acme/platform/{name}"),
        )
        .replace("@TAG@", &tag.to_string())
}

/// Writes a service's two files in one environment; returns their paths.
fn write_service(root: &Path, env: &str, i: usize, tag: Version) -> Result<[String; 2]> {
    let dir = service_dir(env, i);
    std::fs::create_dir_all(root.join(&dir))?;
    let values = format!("{dir}/values.yaml");
    let release = format!("{dir}/release.yml");
    std::fs::write(root.join(&values), render(VALUES_TEMPLATE, env, i, tag))?;
    std::fs::write(root.join(&release), render(RELEASE_TEMPLATE, env, i, tag))?;
    Ok([values, release])
}

pub struct Built {
    pub files: usize,
    pub history_writes: usize,
    pub objects: usize,
    pub pack_bytes: usize,
}

/// Builds the repository: the first commit imports every file, each later commit (one day
/// apart) bumps 5% of the services in dev and promotes some tags into qa and prod. Only the
/// changed files are written and re-added to the index, so each commit's tree is built once.
/// Objects go to an in-memory object database and land as one pack at the end, as a clone
/// would have them (tens of thousands of loose object files are slow to create and delete).
pub fn build(root: &Path, services: usize, commits: usize) -> Result<Built> {
    let repo = Repository::init(root)?;
    let odb = repo.odb()?;
    let mempack = odb.add_new_mempack_backend(1000)?;
    let mut rng = Lcg(0x5eed_2025);
    // tags[env][service]
    let mut tags: Vec<Vec<Version>> = vec![
        (0..services)
            .map(|i| Version(1 + (i % 3) as u32, (i % 7) as u32, 0))
            .collect();
        ENVS.len()
    ];

    let mut files = 0;
    for (path, text) in ENVIRONMENT_FILES.iter().chain(POLICY_FILES.iter()) {
        std::fs::create_dir_all(root.join(path).parent().expect("files live in folders"))?;
        std::fs::write(root.join(path), text)?;
        files += 1;
    }
    for (env, env_tags) in ENVS.iter().zip(&tags) {
        for (i, tag) in env_tags.iter().enumerate() {
            write_service(root, env, i, *tag)?;
            files += 2;
        }
        // Flux's entry point for the environment: every release.yml.
        let mut kustomization = String::from(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n",
        );
        for i in 0..services {
            kustomization.push_str(&format!("  - {}/release.yml\n", name(i)));
        }
        std::fs::write(
            root.join(format!("clusters/{env}/apps/kustomization.yaml")),
            kustomization,
        )?;
        files += 1;
    }

    let mut index = repo.index()?;
    index.add_all(["*"], IndexAddOption::DEFAULT, None)?;
    let mut parent: Option<Oid> = None;
    let mut history_writes = 0;
    for c in 0..commits {
        let mut summary = String::from("import the platform's services");
        if c > 0 {
            let mut changed: Vec<String> = Vec::new();
            // CI releases 5% of the services into dev.
            let bumps = (services / 20).max(1);
            let mut picked = vec![false; services];
            let mut n = 0;
            while n < bumps {
                let i = rng.below(services);
                if std::mem::replace(&mut picked[i], true) {
                    continue;
                }
                n += 1;
                let Version(major, minor, patch) = tags[0][i];
                tags[0][i] = match rng.below(100) {
                    0..=2 => Version(major + 1, 0, 0),
                    3..=17 => Version(major, minor + 1, 0),
                    _ => Version(major, minor, patch + 1),
                };
                changed.extend(write_service(root, ENVS[0], i, tags[0][i])?);
            }
            // The nightly qa train takes most of what soaked; prod takes half of qa's news on
            // Tuesdays and Thursdays (every third or fourth day here).
            let mut promoted = [0usize; 3];
            for e in 1..ENVS.len() {
                let (train, percent) = if e == 1 {
                    (true, 70)
                } else {
                    (c % 7 == 1 || c % 7 == 3, 50)
                };
                if !train {
                    continue;
                }
                let (upstream, target) = tags.split_at_mut(e);
                let upstream = &upstream[e - 1];
                for (i, tag) in target[0].iter_mut().enumerate() {
                    if *tag != upstream[i] && rng.chance(percent) {
                        *tag = upstream[i];
                        changed.extend(write_service(root, ENVS[e], i, *tag)?);
                        promoted[e] += 1;
                    }
                }
            }
            for path in &changed {
                index.add_path(Path::new(path))?;
            }
            history_writes += changed.len();
            summary = format!(
                "release {bumps} services to dev; promote {} to qa, {} to prod",
                promoted[1], promoted[2]
            );
        }
        let tree = repo.find_tree(index.write_tree()?)?;
        let signature = Signature::new(
            "Release Bot",
            "release-bot@example.com",
            &git2::Time::new(START + c as i64 * DAY, 0),
        )?;
        let parents: Vec<git2::Commit<'_>> = parent
            .map(|p| repo.find_commit(p))
            .transpose()?
            .into_iter()
            .collect();
        let parent_refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        parent = Some(repo.commit(
            Some("HEAD"),
            &signature,
            &signature,
            &summary,
            &tree,
            &parent_refs,
        )?);
    }
    index.write()?;

    // (The mempack backend has no `foreach`: count the objects from the pack's header.)
    let mut pack = git2::Buf::new();
    mempack.dump(&repo, &mut pack)?;
    let objects = u32::from_be_bytes(pack[8..12].try_into()?) as usize;
    let mut writer = odb.packwriter()?;
    writer.write_all(&pack)?;
    writer.commit()?;
    Ok(Built {
        files,
        history_writes,
        objects,
        pack_bytes: pack.len(),
    })
}

// ---------------------------------------------------------------------------------------------
// A cache of built repositories, shared by the benchmarks

/// The repository for `services` x `commits`, built once under `target/bench-repos/` and
/// reused while the generator's source (this file above this section) is unchanged: its hash
/// is part of the folder name. Benchmarks only read it (they clone it before writing), so
/// reuse is safe. `fresh` rebuilds.
pub fn cached(services: usize, commits: usize, fresh: bool) -> Result<std::path::PathBuf> {
    use sha2::Digest;
    let source = include_str!("mod.rs");
    let generator = source
        .split("// A cache of built repositories")
        .next()
        .unwrap_or(source);
    let digest = sha2::Sha256::digest(generator.as_bytes());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("bench-repos").join(format!(
        "synthetic-{services}x{commits}-{}",
        hex::encode(&digest[..6])
    ));
    let done = dir.join(".built");
    if fresh && dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    if done.exists() {
        return Ok(dir);
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?; // a build that did not finish
    }
    std::fs::create_dir_all(&dir)?;
    let started = std::time::Instant::now();
    let built = build(&dir, services, commits)?;
    eprintln!(
        "   built {services} services x {commits} commits in {:.1} s ({} files, {} objects, {:.1} MB pack) at {}",
        started.elapsed().as_secs_f64(),
        built.files,
        built.objects,
        built.pack_bytes as f64 / 1e6,
        dir.display()
    );
    std::fs::write(&done, format!("{}\n", built.files))?;
    Ok(dir)
}

/// A bare clone of `work` at `bare` (the "origin" the benchmarks fetch from and push to).
pub fn bare_origin(work: &Path, bare: &Path) -> Result<()> {
    // git's own clone, in its own process: libgit2's would build a pack of the whole
    // repository inside the benchmark's process (150 MB at 10,000 services), memory the
    // process then keeps and that no daemon ever holds.
    let status = std::process::Command::new("git")
        .args(["clone", "--bare", "--quiet"])
        .arg(work)
        .arg(bare)
        .status()?;
    if !status.success() {
        return Err(format!("git clone --bare {} failed: {status}", work.display()).into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// New commits on a bare origin

/// `tag: X.Y.Z` / `:X.Y.Z"` with the major version set to `major` (the first match only).
pub fn bump_tag(text: &str, major: u32) -> Option<String> {
    let re = regex::Regex::new(r#"(tag: |:)(\d+)\.(\d+)\.(\d+)("?)"#).ok()?;
    let found = re.captures(text)?;
    let whole = found.get(0)?;
    let replaced = format!(
        "{}{major}.{}.{}{}",
        &found[1], &found[3], &found[4], &found[5]
    );
    Some(format!(
        "{}{replaced}{}",
        &text[..whole.start()],
        &text[whole.end()..]
    ))
}

/// One commit on the bare repository's default branch, at time `at`, that sets the major
/// version of the image tag to `major` in `values.yaml` and `release.yml` of every service
/// folder in `dirs` (CI releasing those services into their environment). Returns the commit.
pub fn release(bare: &Path, dirs: &[String], major: u32, at: i64) -> Result<Oid> {
    let repo = Repository::open_bare(bare)?;
    let head = repo.head()?.peel_to_commit()?;
    let tree = head.tree()?;
    let mut builder = git2::build::TreeUpdateBuilder::new();
    for dir in dirs {
        for file in ["values.yaml", "release.yml"] {
            let path = format!("{dir}/{file}");
            let blob = tree
                .get_path(Path::new(&path))?
                .to_object(&repo)?
                .peel_to_blob()?;
            let text = std::str::from_utf8(blob.content())?;
            let bumped = bump_tag(text, major).ok_or_else(|| format!("no tag in {path}"))?;
            builder.upsert(&path, repo.blob(bumped.as_bytes())?, git2::FileMode::Blob);
        }
    }
    let new_tree = repo.find_tree(builder.create_updated(&repo, &tree)?)?;
    let sig = Signature::new("ci", "ci@example.com", &git2::Time::new(at, 0))?;
    let branch = repo.head()?.name()?.to_string();
    let message = format!("release {} services", dirs.len());
    Ok(repo.commit(Some(&branch), &sig, &sig, &message, &new_tree, &[&head])?)
}

/// The dev folders of 5% of `services` (at least one): every 20th service from the second.
pub fn five_percent(services: usize) -> Vec<String> {
    let picked: Vec<usize> = (0..services).filter(|i| i % 20 == 1).collect();
    let picked = if picked.is_empty() { vec![0] } else { picked };
    picked
        .into_iter()
        .map(|i| service_dir(ENVS[0], i))
        .collect()
}

/// Creates `count` promotion branches `promoter/qa/svc-NNNN` on the bare repository, each one
/// commit on the default branch's head that changes that service's qa `values.yaml` tag (as
/// open promotion MRs have them). Services from `first` on.
pub fn promotion_branches(bare: &Path, first: usize, count: usize, at: i64) -> Result<()> {
    let repo = Repository::open_bare(bare)?;
    let head = repo.head()?.peel_to_commit()?;
    let tree = head.tree()?;
    let sig = Signature::new("promoter", "p@example.com", &git2::Time::new(at, 0))?;
    for i in first..first + count {
        let path = format!("{}/values.yaml", service_dir("qa", i));
        let blob = tree
            .get_path(Path::new(&path))?
            .to_object(&repo)?
            .peel_to_blob()?;
        let text = std::str::from_utf8(blob.content())?;
        let bumped = bump_tag(text, 97).ok_or_else(|| format!("no tag in {path}"))?;
        let mut builder = git2::build::TreeUpdateBuilder::new();
        builder.upsert(&path, repo.blob(bumped.as_bytes())?, git2::FileMode::Blob);
        let new_tree = repo.find_tree(builder.create_updated(&repo, &tree)?)?;
        let commit = repo.commit(None, &sig, &sig, "promote", &new_tree, &[&head])?;
        repo.reference(
            &format!("refs/heads/promoter/qa/{}", name(i)),
            commit,
            true,
            "bench",
        )?;
    }
    Ok(())
}
