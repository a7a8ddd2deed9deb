//! The one integration test binary (one link step for every test file).

/// Builders: a copy of the sample repository in a real git repository with dated commits.
mod support;

/// The `promoter` binary: plan, check, edit and promote --dry-run on real repositories.
mod cli;

/// `set_scalar` on every row of the shared corpus of real charts and manifests.
mod yaml_corpus;

/// Reconcile against the GitLab double and a bare repository: open, update, merge, close.
mod reconcile;

/// The real binary: `reconcile --once` from a config file, and `daemon` on webhooks and SIGTERM.
mod daemon;

/// Gates on the outside world in a reconcile: the real registry, Flux's commit statuses.
mod gates;

/// Flux health knows which environment reported: three clusters' statuses on one commit, named
/// from the sample's manifests; `check` refuses a status two environments list.
mod flux_health;

/// Chat-ops: signed Slack commands, authorization, response_url, MR comments.
mod chatops;

/// The real binary against hostile clients: stalled connections closed while /healthz answers,
/// Mattermost results posted only to the configured server.
mod hostile_clients;

/// The text promoter writes for people, pinned with `insta` snapshots (tests/it/snapshots/):
/// MR descriptions, notes, chat replies, the dashboard issue.
mod rendered_text;

/// The pure core imports no I/O crates and never reads the clock.
mod architecture;

/// The GitLab test double answers as GitLab's REST API documents.
mod gitlab_double;

/// The registry edge against the real CNCF distribution registry: tags, digests, the per-cycle
/// cache, htpasswd and token authentication, images pushed with skopeo.
mod registry;

/// `promoter history`: deployments and lead times from a repository with dated commits.
mod history;

/// `promoter dashboard`: the page in real headless Chromium, its matrix read from the DOM, and a
/// screenshot in target/test-output/.
mod dashboard;

/// The "Promotion dashboard" issue against the GitLab double: opened, left alone, updated.
mod dashboard_issue;

/// Steering: rollbacks that hold, stopping the line, release trains, approvals after the last
/// push, deployments recorded in GitLab.
mod steering;

/// Requests and ownership nobody can forge: signed commits, requests bound to their branch and
/// MR and to today's policy, hands off whatever promoter did not sign, an atomic push lease,
/// and real git verifying promoter's signatures.
mod forgery;

/// Issue 16: a promotion's push is sent from a view holding only the target branch's history.
mod push;

/// Proof under faults: the binary killed at every step, a flaky GitLab, two replicas, main moving
/// under a run, an unreachable remote, a full state directory, a corrupt mirror.
mod faults;

/// Bad input never panics, hangs or writes: broken and hostile repository files, a YAML bomb and
/// a 100 MB file, bad webhook bodies, chat commands carrying injection attempts.
mod bad_input;

/// The fuzz targets' properties (fuzz/properties/) replayed on stable over the committed seeds
/// and every input the fuzzer once crashed on, and one test per bug it found.
mod fuzz_regressions;

/// Text from people stays inert: hostile reasons in MR descriptions and notes, a line separator
/// in a channel name written into a policy file.
mod inert_text;

/// Secrets stay secret when GitLab quotes requests back: the real binary's stderr, stdout and
/// daemon logs (text and JSON), userinfo in URLs, megabyte error bodies.
mod secrets;

/// An attacker's try at issue 14's defences: holes found (fixed or ignored with their fix) and
/// probes of each defence's edge.
mod attacks;

/// Announcements: `reconcile --once` posts to local incoming webhooks in Slack's, Mattermost's
/// and a Teams workflow's format; people's text inert; an unreachable webhook changes nothing.
mod announcements;

/// `/metrics` of the real daemon lists every family and its zero series before the first
/// reconcile completes.
mod metrics;

/// The daemon's idle cycle: at most 3 GitLab calls whatever the number of open MRs, and what
/// changed between cycles is still seen.
mod idle;

/// The daemon's incremental read (reused folders, history extended by new commits) plans as
/// a full read does, over random histories with force pushes.
mod incremental;

/// One daemon serving two projects: its own MR each, webhooks routed by project, one
/// `/metrics`, a project that cannot start leaving the other running.
mod projects;
