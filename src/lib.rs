//! promoter moves container image tags through GitOps environments (dev -> qa -> prod) by
//! opening GitLab merge requests that change exactly the tag, and lets Flux apply each merge.
//!
//! # Layout
//! The pure core takes facts as data and returns decisions as data; it does no I/O beyond
//! reading a directory tree through [`repo::Tree`] and never reads the clock:
//! - [`yaml`]: format-preserving scalar edits and YAML paths.
//! - [`diagnostic`]: `path:line:col: message` problems.
//!
//! The edges do the I/O:
//! - [`atomic_file`]: replacing a file atomically.
//! - [`cli`]: argument parsing and wiring; the only place that maps errors to exit codes.

pub mod atomic_file;
pub mod cli;
pub mod diagnostic;
pub mod yaml;
