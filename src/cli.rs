//! The command line of DESIGN.md §3: argument parsing and wiring only. This is the one place
//! that turns errors into messages and exit codes: 0 success, 1 problems found or the command
//! failed, 2 a command that is not built yet (or a usage error, as clap reports them).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::diagnostic::Diagnostic;
use crate::yaml::{self, YamlPath};

/// Moves container image tags through GitOps environments with GitLab merge requests.
#[derive(Debug, Parser)]
#[command(name = "promoter", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show, for every service and environment, whether the upstream tag should be promoted.
    Plan {
        /// The repository checkout to read.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Evaluate time-based gates at this instant (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Validate environments, policies and clusters; print one `path:line: message` per problem.
    Check {
        /// The repository checkout to read.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
    },
    /// Set one scalar in a YAML file, keeping every other byte (the promotion edit primitive).
    Edit {
        /// The YAML file.
        file: PathBuf,
        /// Path to the scalar: `a.b[0].c`, `["key.with.dots"]`.
        #[arg(long)]
        path: String,
        /// Document number in a multi-document file, from 0 (empty documents count).
        #[arg(long, default_value_t = 0)]
        doc: usize,
        /// The new value (always written as a string).
        #[arg(long)]
        value: String,
        /// Replace the file atomically instead of printing the result.
        #[arg(long)]
        write: bool,
    },
    /// Request one promotion; with --dry-run print the diff it would commit.
    Promote {
        /// The service to promote.
        service: String,
        /// The environment to promote into.
        #[arg(long)]
        to: String,
        /// The tag to promote (default: the upstream environment's tag).
        #[arg(long)]
        tag: Option<String>,
        /// Print the unified diff and the gates' verdicts; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Run one full cycle against GitLab and git now, then exit (not built yet).
    Reconcile {
        /// Run once and exit (the only mode; the daemon runs continuously).
        #[arg(long)]
        once: bool,
        /// Only promotions into this environment.
        #[arg(long)]
        env: Option<String>,
    },
    /// Scheduler and HTTP server: webhooks, chat-ops, health, metrics, dashboard (not built yet).
    Daemon,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Output {
    Table,
    Json,
}

/// Parses the command line, runs the command and returns its exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("promoter: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Edit { file, path, doc, value, write } => edit(file, &path, doc, &value, write),
        Command::Plan { .. } => not_built("plan"),
        Command::Check { .. } => not_built("check"),
        Command::Promote { .. } => not_built("promote"),
        Command::Reconcile { .. } => not_built("reconcile"),
        Command::Daemon => not_built("daemon"),
    }
}

fn not_built(command: &str) -> anyhow::Result<ExitCode> {
    eprintln!("promoter {command}: not built yet (see the Status section of README.md)");
    Ok(ExitCode::from(2))
}

/// Prints problems, one per line, and returns exit code 1.
fn report(problems: &[Diagnostic]) -> ExitCode {
    let mut err = std::io::stderr().lock();
    for problem in problems {
        let _ = writeln!(err, "{problem}");
    }
    ExitCode::from(1)
}

fn edit(file: PathBuf, path: &str, doc: usize, value: &str, write: bool) -> anyhow::Result<ExitCode> {
    let path: YamlPath = match path.parse() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("promoter edit: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let edited = yaml::decode(&bytes).and_then(|src| yaml::set_scalar(src, doc, &path, value));
    let edit = match edited {
        Ok(edit) => edit,
        Err(e) => return Ok(report(&[Diagnostic::from_yaml(&file, &e)])),
    };
    if write {
        if edit.changed {
            crate::atomic_file::replace(&file, edit.text.as_bytes())
                .with_context(|| format!("cannot write {}", file.display()))?;
        }
    } else {
        std::io::stdout().lock().write_all(edit.text.as_bytes()).context("cannot write to stdout")?;
    }
    Ok(ExitCode::SUCCESS)
}
