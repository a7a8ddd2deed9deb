//! The git mirror in `state_dir`: a bare clone of `git.url`, cloned once and fetched
//! incrementally, from which every read is served; and the write path: one commit per
//! promotion update, built in memory on the target branch's head, signed with promoter's SSH
//! key ([`crate::git::signing`]), and pushed to the promotion branch with a lease decided on
//! the push connection itself (the push is refused if the remote branch is not what promoter
//! last saw, and the old value it sends makes the server refuse it if the branch moves in
//! between), optionally only while the target branch is still where the commit was built on.
//! Such a push is sent from a view holding only the target branch's history
//! (`git/push_view.rs`), so that it costs the same however many promotion branches are
//! open, and carries up to [`MAX_BRANCHES_PER_PUSH`] branches, each under its own lease, in
//! one connection and one walk of the target's tree. A mirror that cannot be opened, or that
//! lacks objects, is cloned again, atomically: into a sibling directory that replaces it only
//! once complete.

use std::path::{Path, PathBuf};

use git2::{
    Cred, CredentialType, Direction, FetchOptions, Oid, PushOptions, RemoteCallbacks, Repository,
    Signature,
};
use secrecy::{ExposeSecret, SecretString};

use crate::git::push_view::PushBase;
use crate::git::signing::SigningKeys;
use crate::promotion::FileEdit;

/// How to authenticate to the remote.
#[derive(Clone, Default)]
pub enum Credentials {
    /// None (`file://`, or an open server).
    #[default]
    None,
    /// HTTPS with a GitLab token (user `oauth2`).
    Token(SecretString),
    /// SSH with a private key file.
    SshKey(PathBuf),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Token(_) => f.write_str("Token(<redacted>)"),
            Self::SshKey(path) => write!(f, "SshKey({})", path.display()),
        }
    }
}

/// Mirror failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Cloning failed.
    #[error("cannot clone {url} into {path}")]
    Clone {
        url: String,
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
    /// Fetching failed.
    #[error("cannot fetch {url}")]
    Fetch {
        url: String,
        #[source]
        source: git2::Error,
    },
    /// The branch does not exist on the remote.
    #[error("branch `{branch}` does not exist in {url}")]
    NoBranch { url: String, branch: String },
    /// Building a commit failed.
    #[error("cannot build the commit for {branch}")]
    Commit {
        branch: String,
        #[source]
        source: git2::Error,
    },
    /// Signing a commit failed.
    #[error("cannot sign the commit for {branch}")]
    Sign {
        branch: String,
        #[source]
        source: crate::git::signing::SignError,
    },
    /// The remote branch moved since it was read.
    #[error(
        "branch `{branch}` moved on the remote (expected {expected}, found {found}): someone pushed to it"
    )]
    Lease {
        branch: String,
        expected: String,
        found: String,
    },
    /// Pushing failed or was rejected.
    #[error("cannot push {branch} to {url}: {message}")]
    Push {
        url: String,
        branch: String,
        message: String,
    },
    /// Another git failure.
    #[error("{action}")]
    Git {
        action: String,
        #[source]
        source: git2::Error,
    },
    /// The mirror lacks objects it needs (deleted or corrupt files in the state directory).
    #[error("the mirror at {path} is damaged: {detail}")]
    Damaged { path: PathBuf, detail: String },
    /// The target branch moved on the remote since the commit's parent was read from it.
    #[error(
        "branch `{branch}` moved on the remote since it was planned on (planned on {planned}, now {found})"
    )]
    TargetMoved {
        branch: String,
        planned: String,
        found: String,
    },
    /// The state directory cannot be prepared.
    #[error("cannot prepare the state directory {path}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Who authors promoter's commits, and the key that proves a commit is promoter's (the name
/// and email prove nothing: anyone can write them).
#[derive(Debug, Clone)]
pub struct Author {
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
    /// Signs every commit; verifies which commits are promoter's.
    pub keys: SigningKeys,
}

/// The mirror.
pub struct Mirror {
    repo: Repository,
    url: String,
    credentials: Credentials,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("path", &self.repo.path())
            .field("url", &redact(&self.url))
            .finish()
    }
}

/// The most branches one push carries. GitLab creates branch and tag pipelines for at most
/// four refs of one `git push` ("Processing Git pushes" in GitLab's CI documentation; merge
/// request pipelines are not limited): a push of more would leave promotions without the
/// pipeline a `require_pipeline` policy waits for.
pub const MAX_BRANCHES_PER_PUSH: usize = 4;

/// One branch's update in a push: `commit` to `branch`, leased on `expected` (`None`: the
/// branch must not exist on the remote).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchUpdate {
    /// The commit pushed.
    pub commit: Oid,
    /// The remote branch it goes to.
    pub branch: String,
    /// What the remote branch must be for the push to go ahead.
    pub expected: Option<Oid>,
}

/// One refspec of a push and the lease it goes under.
struct Leased {
    refspec: String,
    branch: String,
    expected: Option<Oid>,
}

/// What one push connection did.
enum Attempt {
    /// Nothing sent: these leases (by index of the specs) do not hold.
    Refused(std::collections::BTreeMap<usize, Error>),
    /// Nothing sent, for every branch alike.
    Failed(Failure),
    /// Sent; the server rejected these refs (by index), with its message.
    Sent(std::collections::BTreeMap<usize, String>),
}

/// A failure shared by every branch of one push.
enum Failure {
    TargetMoved {
        target: String,
        planned: String,
        found: String,
    },
    Push(String),
}

/// How a missing branch shows in a lease error.
const NOTHING: &str = "nothing";

fn show(oid: Option<Oid>) -> String {
    oid.map_or(NOTHING.to_string(), |o| o.to_string())
}

/// A URL without any password or token in it.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("REDACTED"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

fn callbacks(credentials: &Credentials) -> RemoteCallbacks<'_> {
    let mut callbacks = RemoteCallbacks::new();
    let mut tries = 0;
    callbacks.credentials(move |_url, username, allowed| {
        tries += 1;
        if tries > 3 {
            return Err(git2::Error::from_str(
                "authentication failed (check the token or key)",
            ));
        }
        match credentials {
            Credentials::Token(token) if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) => {
                Cred::userpass_plaintext("oauth2", token.expose_secret())
            }
            Credentials::SshKey(key) if allowed.contains(CredentialType::SSH_KEY) => {
                Cred::ssh_key(username.unwrap_or("git"), None, key, None)
            }
            _ if allowed.contains(CredentialType::DEFAULT) => Cred::default(),
            _ => Err(git2::Error::from_str(
                "the remote asks for credentials that are not configured",
            )),
        }
    });
    callbacks
}

impl Mirror {
    /// Opens the mirror at `dir`, cloning `url` there first when it does not exist, and
    /// re-cloning when what is there is not a usable repository. A mirror cloned from another
    /// URL is pointed at `url`.
    #[tracing::instrument(skip_all, fields(dir = %dir.display(), url = %redact(url)))]
    pub fn open(dir: &Path, url: &str, credentials: Credentials) -> Result<Self, Error> {
        if dir.exists() {
            match Repository::open_bare(dir) {
                Ok(repo) if repo.find_remote("origin").is_ok() => {
                    let current = repo
                        .find_remote("origin")
                        .ok()
                        .and_then(|r| r.url().ok().map(str::to_owned));
                    if current.as_deref() != Some(url) {
                        repo.remote_set_url("origin", url)
                            .map_err(|source| Error::Git {
                                action: format!("cannot point the mirror at {}", redact(url)),
                                source,
                            })?;
                    }
                    return Ok(Self {
                        repo,
                        url: url.to_string(),
                        credentials,
                    });
                }
                Ok(_) | Err(_) => {
                    tracing::warn!("the mirror is unusable; cloning it again");
                }
            }
        }
        Self::clone(dir, url, credentials)
    }

    /// Where a clone is built before it replaces the mirror.
    fn partial_dir(dir: &Path) -> PathBuf {
        dir.with_extension("partial")
    }

    /// Clones `url` into `dir` atomically: into a sibling directory first, which replaces
    /// `dir` (if any) only once complete. A failed clone leaves `dir` as it was.
    fn clone(dir: &Path, url: &str, credentials: Credentials) -> Result<Self, Error> {
        let state_dir = |path: &Path, source| Error::StateDir {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(|e| state_dir(parent, e))?;
        }
        let clone_error = |source| Error::Clone {
            url: redact(url),
            path: dir.to_path_buf(),
            source,
        };
        let partial = Self::partial_dir(dir);
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(|e| state_dir(&partial, e))?;
        }
        let fetched = (|| {
            let repo = Repository::init_bare(&partial).map_err(clone_error)?;
            repo.remote_with_fetch("origin", url, "+refs/heads/*:refs/remotes/origin/*")
                .map_err(clone_error)?;
            let mirror = Self {
                repo,
                url: url.to_string(),
                credentials: credentials.clone(),
            };
            mirror.fetch_all().map_err(|e| match e {
                Error::Fetch { source, .. } => clone_error(source),
                other => other,
            })
        })();
        if let Err(e) = fetched {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
        let aside = dir.with_extension("broken");
        if dir.exists() {
            if aside.exists() {
                std::fs::remove_dir_all(&aside).map_err(|e| state_dir(&aside, e))?;
            }
            std::fs::rename(dir, &aside).map_err(|e| state_dir(dir, e))?;
        }
        std::fs::rename(&partial, dir).map_err(|e| state_dir(dir, e))?;
        if aside.exists() {
            let _ = std::fs::remove_dir_all(&aside);
        }
        let repo = Repository::open_bare(dir).map_err(clone_error)?;
        Ok(Self {
            repo,
            url: url.to_string(),
            credentials,
        })
    }

    /// Replaces the mirror with a fresh clone (the old one stays if the clone fails).
    pub fn reclone(&mut self) -> Result<(), Error> {
        let dir = self.repo.path().to_path_buf();
        *self = Self::clone(&dir, &self.url, self.credentials.clone())?;
        Ok(())
    }

    fn fetch_all(&self) -> Result<(), Error> {
        let fetch_error = |source| Error::Fetch {
            url: redact(&self.url),
            source,
        };
        let mut remote = self.repo.find_remote("origin").map_err(fetch_error)?;
        let mut options = FetchOptions::new();
        options.remote_callbacks(callbacks(&self.credentials));
        options.prune(git2::FetchPrune::On);
        remote
            .fetch(
                &["+refs/heads/*:refs/remotes/origin/*"],
                Some(&mut options),
                None,
            )
            .map_err(fetch_error)
    }

    /// True when the remote answers (its branches can be listed).
    fn remote_answers(&self) -> bool {
        let Ok(mut remote) = self.repo.find_remote("origin") else {
            return false;
        };
        remote
            .connect_auth(Direction::Fetch, Some(callbacks(&self.credentials)), None)
            .and_then(|connection| connection.list().map(|_| ()))
            .is_ok()
    }

    /// The first object that a remote-tracking branch needs and the mirror lacks: its commit
    /// or that commit's tree.
    fn missing_object(&self) -> Option<String> {
        let references = match self.repo.references_glob("refs/remotes/origin/*") {
            Ok(references) => references,
            Err(e) => return Some(e.message().to_string()),
        };
        for reference in references {
            let reference = match reference {
                Ok(reference) => reference,
                Err(e) => return Some(e.message().to_string()),
            };
            let Some(oid) = reference.target() else {
                continue;
            };
            if let Err(e) = self.repo.find_commit(oid).and_then(|c| c.tree()) {
                return Some(format!("{oid}: {}", e.message()));
            }
        }
        None
    }

    /// Fetches every branch; returns the head of `branch`. A mirror that fails to fetch from
    /// a remote that answers, and lacks objects its branches need, is damaged: it is cloned
    /// again. A remote that does not answer leaves the mirror as it is.
    #[tracing::instrument(skip_all, fields(branch))]
    pub fn fetch(&mut self, branch: &str) -> Result<Oid, Error> {
        if let Err(e) = self.fetch_all() {
            if !self.remote_answers() {
                return Err(e);
            }
            let Some(missing) = self.missing_object() else {
                return Err(e);
            };
            tracing::warn!(error = %e, missing, "the mirror is damaged; cloning it again");
            self.reclone()?;
        }
        self.remote_branch(branch)?.ok_or_else(|| Error::NoBranch {
            url: redact(&self.url),
            branch: branch.to_string(),
        })
    }

    /// Checks that every object of `commit`'s tree is in the mirror (without reading blobs):
    /// reads of a damaged mirror must fail, never quietly leave files out.
    pub fn verify_tree(&self, commit: Oid) -> Result<(), Error> {
        self.verify_tree_since(commit, None)
    }

    /// [`Mirror::verify_tree`], skipping every subtree and file that `verified`'s tree (checked
    /// before) holds at the same path with the same id: git ids are content addresses, so
    /// those objects are the ones already found. After one release at 10,000 services this
    /// checks one service's folder and the trees above it, not 60,000 files. Whole when
    /// `verified` is `None` or cannot be read.
    pub fn verify_tree_since(&self, commit: Oid, verified: Option<Oid>) -> Result<(), Error> {
        let damaged = |detail: String| Error::Damaged {
            path: self.repo.path().to_path_buf(),
            detail,
        };
        let tree = self
            .repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(|e| damaged(format!("{commit}: {}", e.message())))?;
        let before = verified.and_then(|v| self.repo.find_commit(v).and_then(|c| c.tree()).ok());
        if let Some(before) = before {
            let odb = self
                .repo
                .odb()
                .map_err(|e| damaged(e.message().to_string()))?;
            return match missing_since(&self.repo, &odb, "", &tree, Some(&before)) {
                Some(object) => Err(damaged(format!("object {object} is missing"))),
                None => Ok(()),
            };
        }
        let odb = self
            .repo
            .odb()
            .map_err(|e| damaged(e.message().to_string()))?;
        let mut missing = None;
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() == Some(git2::ObjectType::Commit) || odb.exists(entry.id()) {
                return git2::TreeWalkResult::Ok;
            }
            missing = Some(format!(
                "{dir}{} ({})",
                entry.name().unwrap_or("?"),
                entry.id()
            ));
            git2::TreeWalkResult::Abort
        })
        .map_err(|e| damaged(e.message().to_string()))
        .or_else(|e| if missing.is_some() { Ok(()) } else { Err(e) })?;
        match missing {
            Some(object) => Err(damaged(format!("object {object} is missing"))),
            None => Ok(()),
        }
    }

    /// The head of `branch` on the remote as last fetched.
    pub fn remote_branch(&self, branch: &str) -> Result<Option<Oid>, Error> {
        match self
            .repo
            .find_reference(&format!("refs/remotes/origin/{branch}"))
        {
            Ok(r) => Ok(r.target()),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(source) => Err(Error::Git {
                action: format!("cannot read branch {branch}"),
                source,
            }),
        }
    }

    /// The repository, for reading trees and history.
    pub fn repo(&self) -> &Repository {
        &self.repo
    }

    /// Lets go of the objects libgit2 cached while reading: every tree and commit a read parsed
    /// stays in the repository's object cache (about 70 MB after the first read of 10,000
    /// services) for as long as the repository is open, and the daemon keeps the mirror open
    /// between cycles that read only what changed. Reopens the repository; when that fails the
    /// open one (and its cache) is kept.
    pub fn release_object_cache(&mut self) {
        match Repository::open_bare(self.repo.path()) {
            Ok(repo) => self.repo = repo,
            Err(e) => tracing::debug!(error = %e, "kept the mirror's object cache"),
        }
    }

    /// Builds (without pushing) one commit on top of `parent` that writes `edits`, authored
    /// and committed by `author` at `time` (seconds since the epoch).
    pub fn commit_edits(
        &self,
        parent: Oid,
        edits: &[FileEdit],
        message: &str,
        author: &Author,
        time: i64,
    ) -> Result<Oid, Error> {
        let files: Vec<(String, Option<String>)> = edits
            .iter()
            .map(|e| (e.path.clone(), Some(e.after.clone())))
            .collect();
        self.commit_files(parent, &files, message, author, time)
    }

    /// Builds (without pushing) one commit on top of `parent` that writes each `(path, Some(text))`
    /// and deletes each `(path, None)`.
    pub fn commit_files(
        &self,
        parent: Oid,
        files: &[(String, Option<String>)],
        message: &str,
        author: &Author,
        time: i64,
    ) -> Result<Oid, Error> {
        let fail = |source| Error::Commit {
            branch: message.to_string(),
            source,
        };
        let parent = self.repo.find_commit(parent).map_err(fail)?;
        let mut update = git2::build::TreeUpdateBuilder::new();
        for (path, text) in files {
            match text {
                Some(text) => {
                    let blob = self.repo.blob(text.as_bytes()).map_err(fail)?;
                    update.upsert(path.as_str(), blob, git2::FileMode::Blob);
                }
                None => {
                    update.remove(path.as_str());
                }
            }
        }
        let tree = update
            .create_updated(&self.repo, &parent.tree().map_err(fail)?)
            .map_err(fail)?;
        let tree = self.repo.find_tree(tree).map_err(fail)?;
        let signature =
            Signature::new(&author.name, &author.email, &git2::Time::new(time, 0)).map_err(fail)?;
        let buffer = self
            .repo
            .commit_create_buffer(&signature, &signature, message, &tree, &[&parent])
            .map_err(fail)?;
        let content = std::str::from_utf8(&buffer).map_err(|_| {
            fail(git2::Error::from_str(
                "the commit is not UTF-8 (its author or message)",
            ))
        })?;
        let armored = author
            .keys
            .sign(content.as_bytes())
            .map_err(|source| Error::Sign {
                branch: message.to_string(),
                source,
            })?;
        self.repo
            .commit_signed(content, &armored, None)
            .map_err(fail)
    }

    /// Pushes `commit` to `branch`, replacing whatever is there, but only if the remote branch
    /// is still `expected` (`None`: it must not exist), as the push connection itself sees it
    /// ([`Self::leased_push`]).
    #[tracing::instrument(skip_all, fields(branch))]
    pub fn push(&self, commit: Oid, branch: &str, expected: Option<Oid>) -> Result<(), Error> {
        let update = BranchUpdate {
            commit,
            branch: branch.to_string(),
            expected,
        };
        self.push_batch(None, std::slice::from_ref(&update), None)
            .pop()
            .unwrap_or(Ok(()))
    }

    /// [`Self::push`], and only while the remote's `target` branch is still at `base` (what
    /// the commit was built on): [`Error::TargetMoved`] otherwise, nothing pushed.
    #[tracing::instrument(skip_all, fields(branch))]
    pub fn push_onto(
        &self,
        commit: Oid,
        branch: &str,
        expected: Option<Oid>,
        target: &str,
        base: Oid,
    ) -> Result<(), Error> {
        let update = BranchUpdate {
            commit,
            branch: branch.to_string(),
            expected,
        };
        self.push_all_onto(std::slice::from_ref(&update), target, base)
            .pop()
            .unwrap_or(Ok(()))
    }

    /// [`Self::push_onto`] for several branches, [`MAX_BRANCHES_PER_PUSH`] to a push: each
    /// push is one connection and one walk of the target branch's tree, whatever the number
    /// of branches it carries. Each branch keeps its own lease and its own answer (one result
    /// per update, in order): a lease that does not hold, or a branch the server rejects,
    /// fails that branch only. When the target moved, every branch of that push fails with
    /// [`Error::TargetMoved`] and nothing of it is sent.
    #[tracing::instrument(skip_all, fields(branches = updates.len()))]
    pub fn push_all_onto(
        &self,
        updates: &[BranchUpdate],
        target: &str,
        base: Oid,
    ) -> Vec<Result<(), Error>> {
        updates
            .chunks(MAX_BRANCHES_PER_PUSH)
            .flat_map(|chunk| {
                let commits: Vec<Oid> = chunk.iter().map(|u| u.commit).collect();
                // The push goes from a view that holds only the target's history
                // ([`PushBase`]), or from the mirror when the view cannot serve.
                let view = self.push_view(Some((&commits, target, base)));
                self.push_batch(view.as_ref(), chunk, Some((target, base)))
            })
            .collect()
    }

    fn push_error(&self, branch: &str, message: String) -> Error {
        Error::Push {
            url: redact(&self.url),
            branch: branch.to_string(),
            message,
        }
    }

    /// Pushes `updates` from `view` (or the mirror) in one connection, checking on it that
    /// `target` is at its base, and records each branch pushed as the remote's state, as a
    /// fetch would.
    fn push_batch(
        &self,
        view: Option<&Repository>,
        updates: &[BranchUpdate],
        target: Option<(&str, Oid)>,
    ) -> Vec<Result<(), Error>> {
        let results = self.push_from(view, updates, target);
        results
            .into_iter()
            .zip(updates)
            .map(|(result, update)| {
                result?;
                self.repo
                    .reference(
                        &format!("refs/remotes/origin/{}", update.branch),
                        update.commit,
                        true,
                        "promoter: pushed",
                    )
                    .map_err(|e| self.push_error(&update.branch, e.message().to_string()))?;
                Ok(())
            })
            .collect()
    }

    /// The repository to push from ([`PushBase::view`]): `push` is the commits, the target
    /// branch and the commits' parent on it; `None` for a deletion. `None` when the view
    /// cannot serve: the push then goes from the mirror, as correct and slower.
    fn push_view(&self, push: Option<(&[Oid], &str, Oid)>) -> Option<Repository> {
        let base = PushBase::beside(self.repo.path());
        match base.view(
            &self.repo,
            &self.url,
            &|| callbacks(&self.credentials),
            push,
        ) {
            Ok(Some(view)) => Some(view),
            Ok(None) => {
                tracing::info!("the push base cannot serve this push; pushing from the mirror");
                None
            }
            Err(e) => {
                tracing::warn!(
                    error = %crate::redact::redact(e.message()),
                    "the push base failed; pushing from the mirror"
                );
                None
            }
        }
    }

    /// Pushes each update's commit to its branch under its lease, from `view` (or the
    /// mirror), through local refs `refs/promoter/<branch>` that are gone afterwards.
    fn push_from(
        &self,
        view: Option<&Repository>,
        updates: &[BranchUpdate],
        target: Option<(&str, Oid)>,
    ) -> Vec<Result<(), Error>> {
        let repo = view.unwrap_or(&self.repo);
        let mut remote = match self.remote_of(repo) {
            Ok(remote) => remote,
            Err(e) => return self.fail_all(updates, &Failure::Push(e.message().to_string())),
        };
        let mut leased = Vec::with_capacity(updates.len());
        for update in updates {
            let local = format!("refs/promoter/{}", update.branch);
            if let Err(e) = repo.reference(&local, update.commit, true, "promoter: commit to push")
            {
                Self::delete_local(repo, &leased);
                return self.fail_all(updates, &Failure::Push(e.message().to_string()));
            }
            leased.push(Leased {
                refspec: format!("+{local}:refs/heads/{}", update.branch),
                branch: update.branch.clone(),
                expected: update.expected,
            });
        }
        let results = self.leased_push(&mut remote, &leased, target);
        Self::delete_local(repo, &leased);
        results
    }

    /// Removes the local refs [`Self::push_from`] pushed from.
    fn delete_local(repo: &Repository, leased: &[Leased]) {
        for spec in leased {
            let local = format!("refs/promoter/{}", spec.branch);
            let _ = repo.find_reference(&local).and_then(|mut r| r.delete());
        }
    }

    /// `failure` as the answer of every branch of `updates`.
    fn fail_all(&self, updates: &[BranchUpdate], failure: &Failure) -> Vec<Result<(), Error>> {
        updates
            .iter()
            .map(|u| Err(self.failed(&u.branch, failure)))
            .collect()
    }

    /// `failure` as `branch`'s error.
    fn failed(&self, branch: &str, failure: &Failure) -> Error {
        match failure {
            Failure::TargetMoved {
                target,
                planned,
                found,
            } => Error::TargetMoved {
                branch: target.clone(),
                planned: planned.clone(),
                found: found.clone(),
            },
            Failure::Push(message) => self.push_error(branch, message.clone()),
        }
    }

    /// The remote to push to from `repo`: the mirror's `origin`, or the URL itself from a view.
    fn remote_of<'r>(&self, repo: &'r Repository) -> Result<git2::Remote<'r>, git2::Error> {
        if std::ptr::eq(repo, &self.repo) {
            repo.find_remote("origin")
        } else {
            repo.remote_anonymous(&self.url)
        }
    }

    /// Pushes every refspec of `specs` (each updates or deletes `refs/heads/<branch>`) only
    /// if its remote branch is its `expected`, decided on the push connection itself: git2's
    /// push negotiation hands over the value the remote advertised on this connection, and
    /// promoter refuses there when it differs ([`Error::Lease`], nothing sent). That
    /// advertised value is the old id the push sends, so a server whose branch moves after
    /// the advertisement refuses the update itself (receive-pack compares under the ref lock):
    /// the lease is atomic. The push is all or nothing at the negotiation, so the branches
    /// whose lease holds are pushed again, on a new connection, without those whose lease
    /// does not. With `target`, the same connection's advertisement must show it at its base
    /// ([`Error::TargetMoved`] otherwise): the target branch is not pushed, so it can only be
    /// checked before; a commit landing on it in the milliseconds between makes a promotion
    /// one commit stale, never wrong.
    fn leased_push(
        &self,
        remote: &mut git2::Remote<'_>,
        specs: &[Leased],
        target: Option<(&str, Oid)>,
    ) -> Vec<Result<(), Error>> {
        let mut answers: Vec<Option<Result<(), Error>>> = specs.iter().map(|_| None).collect();
        loop {
            let pending: Vec<usize> = (0..specs.len()).filter(|i| answers[*i].is_none()).collect();
            if pending.is_empty() {
                break;
            }
            match self.push_once(remote, specs, &pending, target) {
                Attempt::Refused(leases) => {
                    for (i, lease) in leases {
                        answers[i] = Some(Err(lease));
                    }
                }
                Attempt::Failed(failure) => {
                    for i in pending {
                        answers[i] = Some(Err(self.failed(&specs[i].branch, &failure)));
                    }
                }
                Attempt::Sent(mut rejected) => {
                    for i in pending {
                        answers[i] =
                            Some(match rejected.remove(&i) {
                                Some(message) => Err(self
                                    .push_error(&specs[i].branch, format!("rejected: {message}"))),
                                None => Ok(()),
                            });
                    }
                }
            }
        }
        answers
            .into_iter()
            .map(|answer| answer.unwrap_or(Ok(())))
            .collect()
    }

    /// One connection: the target's check, then the push of the `pending` specs.
    fn push_once(
        &self,
        remote: &mut git2::Remote<'_>,
        specs: &[Leased],
        pending: &[usize],
        target: Option<(&str, Oid)>,
    ) -> Attempt {
        let mut connection =
            match remote.connect_auth(Direction::Push, Some(callbacks(&self.credentials)), None) {
                Ok(connection) => connection,
                Err(e) => return Attempt::Failed(Failure::Push(e.message().to_string())),
            };
        if let Some((target, base)) = target {
            let wanted = format!("refs/heads/{target}");
            let now = match connection.list() {
                Ok(heads) => heads.iter().find(|h| h.name() == wanted).map(|h| h.oid()),
                Err(e) => return Attempt::Failed(Failure::Push(e.message().to_string())),
            };
            if now != Some(base) {
                return Attempt::Failed(Failure::TargetMoved {
                    target: target.to_string(),
                    planned: base.to_string(),
                    found: show(now),
                });
            }
        }
        let by_ref: std::collections::HashMap<String, usize> = pending
            .iter()
            .map(|&i| (format!("refs/heads/{}", specs[i].branch), i))
            .collect();
        let refused = std::cell::RefCell::new(std::collections::BTreeMap::new());
        let rejected = std::cell::RefCell::new(std::collections::BTreeMap::new());
        let result = {
            let mut callbacks = callbacks(&self.credentials);
            callbacks.push_negotiation(|updates| {
                for update in updates {
                    let Some(&i) = update.dst_refname().ok().and_then(|n| by_ref.get(n)) else {
                        continue;
                    };
                    let found = Some(update.src()).filter(|o| !o.is_zero());
                    if found != specs[i].expected {
                        refused.borrow_mut().insert(
                            i,
                            Error::Lease {
                                branch: specs[i].branch.clone(),
                                expected: show(specs[i].expected),
                                found: show(found),
                            },
                        );
                    }
                }
                if refused.borrow().is_empty() {
                    Ok(())
                } else {
                    Err(git2::Error::from_str("the lease does not hold"))
                }
            });
            callbacks.push_update_reference(|name, status| {
                if let (Some(message), Some(&i)) = (status, by_ref.get(name)) {
                    rejected.borrow_mut().insert(i, message.to_string());
                }
                Ok(())
            });
            let mut options = PushOptions::new();
            options.remote_callbacks(callbacks);
            let refspecs: Vec<&str> = pending.iter().map(|&i| specs[i].refspec.as_str()).collect();
            connection.remote().push(&refspecs, Some(&mut options))
        };
        let refused = refused.into_inner();
        if !refused.is_empty() {
            return Attempt::Refused(refused);
        }
        if let Err(e) = result {
            return Attempt::Failed(Failure::Push(e.message().to_string()));
        }
        Attempt::Sent(rejected.into_inner())
    }

    /// Deletes `branch` on the remote, if it still points at `expected` (decided on the push
    /// connection, like every lease).
    #[tracing::instrument(skip_all, fields(branch))]
    pub fn delete_branch(&self, branch: &str, expected: Oid) -> Result<(), Error> {
        let view = self.push_view(None);
        let repo = view.as_ref().unwrap_or(&self.repo);
        let mut remote = self
            .remote_of(repo)
            .map_err(|e| self.push_error(branch, e.message().to_string()))?;
        let deletion = Leased {
            refspec: format!(":refs/heads/{branch}"),
            branch: branch.to_string(),
            expected: Some(expected),
        };
        match self
            .leased_push(&mut remote, std::slice::from_ref(&deletion), None)
            .pop()
            .unwrap_or(Ok(()))
        {
            // Already gone: what deleting wanted.
            Err(Error::Lease { found, .. }) if found == NOTHING => {}
            other => other?,
        }
        if let Ok(mut reference) = self
            .repo
            .find_reference(&format!("refs/remotes/origin/{branch}"))
        {
            let _ = reference.delete();
        }
        Ok(())
    }

    /// True when commits `a` and `b` have the same tree (the same files).
    pub fn same_tree(&self, a: Oid, b: Oid) -> Result<bool, Error> {
        let tree = |oid| {
            self.repo
                .find_commit(oid)
                .and_then(|c| c.tree())
                .map(|t| t.id())
                .map_err(|source| Error::Git {
                    action: format!("cannot read commit {oid}"),
                    source,
                })
        };
        Ok(tree(a)? == tree(b)?)
    }
}

/// The first object under `tree` (at `dir`) missing from `odb`, skipping every entry `before`
/// holds with the same id (see [`Mirror::verify_tree_since`]).
fn missing_since(
    repo: &Repository,
    odb: &git2::Odb<'_>,
    dir: &str,
    tree: &git2::Tree<'_>,
    before: Option<&git2::Tree<'_>>,
) -> Option<String> {
    for entry in tree.iter() {
        let old = before.and_then(|b| b.get_name_bytes(entry.name_bytes()));
        if old.as_ref().is_some_and(|old| old.id() == entry.id()) {
            continue;
        }
        let path = format!("{dir}{}", String::from_utf8_lossy(entry.name_bytes()));
        match entry.kind() {
            Some(git2::ObjectType::Commit) => {}
            Some(git2::ObjectType::Tree) => {
                let Ok(subtree) = repo.find_tree(entry.id()) else {
                    return Some(format!("{path} ({})", entry.id()));
                };
                let old_subtree = old
                    .filter(|o| o.kind() == Some(git2::ObjectType::Tree))
                    .and_then(|o| repo.find_tree(o.id()).ok());
                let found = missing_since(
                    repo,
                    odb,
                    &format!("{path}/"),
                    &subtree,
                    old_subtree.as_ref(),
                );
                if found.is_some() {
                    return found;
                }
            }
            _ if !odb.exists(entry.id()) => return Some(format!("{path} ({})", entry.id())),
            _ => {}
        }
    }
    None
}
