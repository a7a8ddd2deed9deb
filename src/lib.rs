//! promoter moves container image tags through GitOps environments (dev -> qa -> prod) by
//! opening GitLab merge requests that change exactly the tag, and lets Flux apply each merge.
//!
//! # Layout
//! The pure core takes facts as data and returns decisions as data; it does no I/O beyond
//! reading a directory tree through [`repo::Tree`] and never reads the clock:
//! - [`model`]: environment and service names, tags, commits.
//! - [`yaml`]: format-preserving scalar edits and YAML paths.
//! - [`image`]: OCI image references.
//! - [`repo`]: environments, services, tag history and `check` rules from a [`repo::Tree`].
//! - [`policy`]: policy files and gate evaluation.
//! - [`plan`]: the decisions for every service and environment.
//! - [`promotion`]: a promotion as file edits, diff, branch and commit message.
//! - [`history`]: every tag each environment ran, lead times and deployment frequency.
//! - [`dashboard`]: the promotion dashboard as data and as one self-contained HTML page.
//! - [`diagnostic`]: `path:line:col: message` problems.
//! - [`text`]: text from people kept inert in Markdown and the chat formats; bounded excerpts of
//!   long answers.
//!
//! The edges do the I/O:
//! - [`atomic_file`]: replacing a file atomically.
//! - [`checkout`]: a directory's snapshot plus the git history around it.
//! - [`kustomize`]: rendering an environment with `kubectl kustomize`.
//! - [`cli`]: argument parsing and wiring; the only place that maps errors to exit codes.
//! - [`git`]: reading commits, trees and first-parent history with git2.
//! - [`forge`]: merge requests on GitLab, behind the `Forge` trait.
//! - [`registry`]: whether an image tag or digest exists, one manifest HEAD per candidate,
//!   behind the `Registry` trait.
//! - [`reconcile`]: one cycle: observe, plan, converge GitLab (single flight in the daemon).
//! - [`config`]: `Settings` layered from defaults, `promoter.yaml` and `PROMOTER__*` variables.
//! - [`daemon`]: the one loop every trigger goes through (reconciles and people's commands, one
//!   at a time), its vocabulary (triggers, chat requests, the clock), cron schedules, resync
//!   ticker, signals.
//! - [`handlers`]: the chat commands' use cases (one handler per command family) and the
//!   loop's reconcile, run by the daemon's loop.
//! - [`server`]: HTTP routes that only verify and decode: GitLab webhooks and chat commands
//!   become triggers for the loop; health/readiness probes.
//! - [`chatops`]: Slack/Mattermost slash commands and MR-comment commands: verification, the
//!   command language, escaped replies, posting to `response_url`.
//! - [`redact`]: secrets masked in every log line and printed error.
//! - [`announce`]: one line per promotion event, posted to Slack, Mattermost and Teams
//!   incoming webhooks (deriving and formatting the lines is pure, posting is the edge).
//! - [`metrics`]: Prometheus metrics, `GET /metrics` and the dashboard's `GET /`.

pub mod announce;
pub mod atomic_file;
pub mod chatops;
pub mod checkout;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod dashboard;
pub mod diagnostic;
pub mod forge;
pub mod git;
pub mod handlers;
pub mod history;
pub mod image;
pub mod kustomize;
pub mod metrics;
pub mod model;
pub mod plan;
pub mod policy;
pub mod promotion;
pub mod reconcile;
pub mod redact;
pub mod registry;
pub mod repo;
pub mod server;
#[cfg(test)]
mod testkit;
pub mod text;
pub mod yaml;
