//! The command line of DESIGN.md §3: argument parsing and wiring only. This is the one place
//! that turns errors into messages and exit codes: 0 success, 1 problems found or the command
//! failed, 2 a command that is not built yet (or a usage error, as clap reports them).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use chrono::{DateTime, Utc};

use crate::checkout::{self, Checkout};
use crate::diagnostic::Diagnostic;
use crate::model::{EnvName, ServiceName, Tag};
use crate::plan::{self, Facts, Request, Verdict};
use crate::repo::check;
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
        /// The repository checkout to read.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Evaluate time-based gates at this instant (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<String>,
        /// Why (recorded; required for a break-glass request that waives soak or a freeze).
        #[arg(long)]
        because: Option<String>,
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
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Edit {
            file,
            path,
            doc,
            value,
            write,
        } => edit(file, &path, doc, &value, write),
        Command::Plan { repo, at, output } => plan(&repo, at.as_deref(), output),
        Command::Check { repo } => check(&repo),
        Command::Promote {
            service,
            repo,
            at,
            because,
            to,
            tag,
            dry_run,
        } => promote(&repo, &service, &to, tag, because, at.as_deref(), dry_run),
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

fn edit(
    file: PathBuf,
    path: &str,
    doc: usize,
    value: &str,
    write: bool,
) -> anyhow::Result<ExitCode> {
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
        std::io::stdout()
            .lock()
            .write_all(edit.text.as_bytes())
            .context("cannot write to stdout")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn instant(at: Option<&str>) -> anyhow::Result<DateTime<Utc>> {
    match at {
        None => Ok(Utc::now()),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .with_context(|| {
                format!("--at `{text}` is not an RFC 3339 instant such as 2026-11-24T10:00:00Z")
            }),
    }
}

fn read_checkout(repo: &std::path::Path) -> anyhow::Result<Checkout> {
    checkout::read(repo)
        .with_context(|| format!("cannot read the git history of {}", repo.display()))
}

/// Warns on stderr about problems that left services out of the plan.
fn warn_findings(checkout: &Checkout) {
    let count = checkout.snapshot.findings.len();
    if count > 0 {
        eprintln!(
            "promoter: {count} problem(s) left some files out; run `promoter check` for details:"
        );
        for finding in checkout.snapshot.findings.iter().take(5) {
            eprintln!("  {finding}");
        }
    }
}

fn plan(repo: &std::path::Path, at: Option<&str>, output: Output) -> anyhow::Result<ExitCode> {
    let now = instant(at)?;
    let checkout = read_checkout(repo)?;
    warn_findings(&checkout);
    let open = Default::default();
    let plan = plan::plan(
        &checkout.snapshot,
        Facts {
            history: &checkout.history,
            open: &open,
        },
        &[],
        now,
    );
    let text = match output {
        Output::Json => plan::render::json(&plan) + "\n",
        Output::Table => plan::render::table(&plan, &checkout.snapshot, &checkout.history),
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("cannot write to stdout")?;
    Ok(ExitCode::SUCCESS)
}

fn check(repo: &std::path::Path) -> anyhow::Result<ExitCode> {
    let checkout = read_checkout(repo)?;
    let mut problems = check::check(&checkout.snapshot, &checkout.tree);
    for env in &checkout.snapshot.environments {
        match crate::kustomize::render(&repo.join(&env.path)) {
            crate::kustomize::Render::Ok => {}
            crate::kustomize::Render::NoKubectl => {
                eprintln!(
                    "promoter check: kubectl not found, so the environments were not rendered"
                );
                break;
            }
            crate::kustomize::Render::Failed(message) => problems.push(Diagnostic::file(
                &env.path,
                format!("`kubectl kustomize {}` fails: {message}", env.path),
            )),
        }
    }
    if problems.is_empty() {
        let services: usize = checkout.snapshot.services.values().map(|s| s.len()).sum();
        println!(
            "promoter check: {} environments, {} policy files, {services} services: no problems",
            checkout.snapshot.environments.len(),
            checkout.snapshot.policies.files.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    Ok(report(&problems))
}

fn requester() -> String {
    std::env::var("PROMOTER_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "cli".to_string())
}

fn promote(
    repo: &std::path::Path,
    service: &str,
    to: &str,
    tag: Option<String>,
    because: Option<String>,
    at: Option<&str>,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    if !dry_run {
        eprintln!(
            "promoter promote: opening the merge request is not built yet; use --dry-run to see the change"
        );
        return Ok(ExitCode::from(2));
    }
    let now = instant(at)?;
    let checkout = read_checkout(repo)?;
    let snapshot = &checkout.snapshot;
    let (service, to) = (ServiceName::new(service), EnvName::new(to));
    let Some(env) = snapshot.environment(&to) else {
        let known: Vec<_> = snapshot
            .environments
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        anyhow::bail!("no environment `{to}` (known: {})", known.join(", "));
    };
    if env.promotes_from.is_none() {
        anyhow::bail!(
            "`{to}` is the first environment: its tags come from CI, not from promotions"
        );
    }
    let Some(target) = snapshot.service(&to, &service) else {
        warn_findings(&checkout);
        anyhow::bail!(
            "no service `{service}` in {to} (look for a folder under {} holding values.yaml)",
            env.path
        );
    };
    let request = Request {
        service: service.clone(),
        to: to.clone(),
        tag: tag.map(Tag::new),
        requested_by: requester(),
        reason: because,
        rollback: false,
    };
    let open = Default::default();
    let plan = plan::plan(
        snapshot,
        Facts {
            history: &checkout.history,
            open: &open,
        },
        &[request],
        now,
    );
    let decision = plan
        .decision(&service, &to)
        .context("the plan has no row for this promotion")?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{service} {to} <- {}: {} ({} -> {})",
        decision.from,
        decision.decision.as_str(),
        decision.current.as_ref().map_or("(none)", |t| t.as_str()),
        decision.candidate.as_ref().map_or("(none)", |t| t.as_str())
    )?;
    for gate in &decision.gates {
        writeln!(
            out,
            "  {} {}: {}",
            if gate.passed { "pass" } else { "FAIL" },
            gate.gate.name(),
            gate.message
        )?;
    }
    if decision.gates.is_empty() {
        for reason in &decision.reasons {
            writeln!(out, "  {reason}")?;
        }
    }
    let Some(candidate) = &decision.candidate else {
        return Ok(ExitCode::from(1));
    };
    if decision.decision == Verdict::UpToDate {
        return Ok(ExitCode::SUCCESS);
    }
    let edits = crate::promotion::edits(
        &checkout.tree,
        target,
        candidate,
        decision.candidate_digest.as_deref(),
    )
    .map_err(|d| anyhow::anyhow!("{d}"))?;
    writeln!(
        out,
        "\nbranch {}\ncommit \"{}\"\n",
        crate::promotion::branch(&to, &service),
        crate::promotion::commit_message(&service, &to, decision.current.as_ref(), candidate)
    )?;
    out.write_all(crate::promotion::unified_diff(&edits).as_bytes())?;
    Ok(if decision.decision == Verdict::Promote {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
