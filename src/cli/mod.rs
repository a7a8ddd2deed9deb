//! The command line of DESIGN.md §3: argument parsing and wiring only. This is the one place
//! that turns errors into messages and exit codes: 0 success, 1 problems found or the command
//! failed (usage errors exit 2, as clap reports them).

mod adapters;
mod cycle;
mod offline;
mod online;
mod projects;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Moves container image tags through GitOps environments with GitLab merge requests.
#[derive(Debug, Parser)]
#[command(name = "promoter", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (default: promoter.yaml in the working directory, if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
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
    /// Request one promotion now (opens or updates its MR); with --dry-run print the diff.
    Promote {
        /// The service to promote.
        service: String,
        /// The environment to promote into.
        #[arg(long)]
        to: String,
        /// The tag to promote (default: the upstream environment's tag).
        #[arg(long)]
        tag: Option<String>,
        /// Why (recorded in the MR; required for a break-glass request).
        #[arg(long)]
        because: Option<String>,
        /// Print the gates' verdicts and the unified diff from a checkout; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: the repository checkout to read.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Evaluate time-based gates at this instant (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<String>,
    },
    /// Run one full cycle against GitLab and git now, then exit.
    Reconcile {
        /// Run once and exit (the only mode; the daemon runs continuously).
        #[arg(long, required = true)]
        once: bool,
        /// Only promotions into this environment.
        #[arg(long)]
        env: Option<String>,
        /// Evaluate time-based gates at this instant (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<String>,
    },
    /// Every tag each environment ran, per service, with lead times and deployment frequency.
    History {
        /// Only this service.
        service: Option<String>,
        /// Only this environment.
        #[arg(long)]
        env: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        output: Output,
        /// The repository checkout to read.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Read the history as of this instant (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<String>,
    },
    /// Write the promotion dashboard (services x environments, lead times) as one HTML page.
    Dashboard {
        /// The repository checkout to read.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// The HTML file to write (replaced atomically).
        #[arg(long)]
        out: PathBuf,
        /// Evaluate time-based gates and ages at this instant (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<String>,
    },
    /// Scheduler and HTTP server: schedules, webhooks, resync, health.
    Daemon,
    /// Open an MR that rolls SERVICE in ENV back to the tag it ran before (or TAG).
    Rollback {
        /// The service.
        service: String,
        /// The environment.
        #[arg(long)]
        env: String,
        /// The tag to go back to (default: the one the environment ran before, from history).
        #[arg(long)]
        to: Option<String>,
        /// Why (recorded in the MR).
        #[arg(long)]
        because: String,
    },
    /// Open an MR that lifts the hold a rollback left on SERVICE in ENV.
    Unhold {
        /// The service.
        service: String,
        /// The environment the rollback was made in.
        #[arg(long)]
        env: String,
    },
    /// Open an MR that freezes promotions into ENV (or every environment) until merged away.
    Freeze {
        /// The environment (or --all).
        env: Option<String>,
        /// Freeze every environment: stop the line.
        #[arg(long, conflicts_with = "env")]
        all: bool,
        /// When the freeze ends (RFC 3339); default: until `unfreeze`.
        #[arg(long)]
        until: Option<String>,
        /// Why (required; recorded in the policy file and the MR).
        #[arg(long)]
        because: String,
    },
    /// Open an MR that lifts a freeze made by `freeze` (deleting its policy file).
    Unfreeze {
        /// The environment (or --all).
        env: Option<String>,
        /// Lift the freeze of every environment.
        #[arg(long, conflicts_with = "env")]
        all: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Parses the command line, runs the command and returns its exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = cli.log_format;
    init_tracing(format);
    match run(cli) {
        Ok(code) => code,
        // `promoter plan | head`: the reader went away; nothing to report.
        Err(error)
            if error
                .chain()
                .filter_map(|e| e.downcast_ref::<std::io::Error>())
                .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(error) => {
            // The whole chain, with every configured secret masked (GitLab or a proxy may
            // quote the request back), in the log format asked for.
            let message = crate::redact::redact(&format!("{error:#}"));
            match format {
                LogFormat::Text => eprintln!("promoter: {message}"),
                LogFormat::Json => tracing::error!(error = %message, "promoter failed"),
            }
            ExitCode::from(1)
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,promoter=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::redact::Stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.config;
    match cli.command {
        Command::Edit {
            file,
            path,
            doc,
            value,
            write,
        } => offline::edit(file, &path, doc, &value, write),
        Command::Plan { repo, at, output } => offline::plan(&repo, at.as_deref(), output),
        Command::Check { repo } => offline::check(&repo),
        Command::Promote {
            service,
            to,
            tag,
            because,
            dry_run: true,
            repo,
            at,
        } => offline::promote_dry_run(&repo, &service, &to, tag, because, at.as_deref()),
        Command::Promote {
            service,
            to,
            tag,
            because,
            dry_run: false,
            at,
            ..
        } => online::runtime()?.block_on(online::promote(
            config.as_deref(),
            &service,
            &to,
            tag,
            because,
            at.as_deref(),
        )),
        Command::Reconcile { env, at, .. } => online::runtime()?.block_on(online::reconcile_once(
            config.as_deref(),
            env,
            at.as_deref(),
        )),
        Command::History {
            service,
            env,
            output,
            repo,
            at,
        } => offline::history(&repo, service, env, at.as_deref(), output),
        Command::Dashboard { repo, out, at } => offline::dashboard(&repo, &out, at.as_deref()),
        Command::Daemon => online::runtime()?.block_on(online::daemon(config.as_deref())),
        Command::Rollback {
            service,
            env,
            to,
            because,
        } => online::runtime()?.block_on(online::rollback(
            config.as_deref(),
            &service,
            &env,
            to,
            because,
        )),
        Command::Unhold { service, env } => {
            online::runtime()?.block_on(online::unhold(config.as_deref(), &service, &env))
        }
        Command::Freeze {
            env,
            all,
            until,
            because,
        } => online::runtime()?.block_on(online::freeze(
            config.as_deref(),
            env,
            all,
            until.as_deref(),
            Some(because),
        )),
        Command::Unfreeze { env, all } => {
            online::runtime()?.block_on(online::freeze(config.as_deref(), env, all, None, None))
        }
    }
}
