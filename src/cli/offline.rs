//! The commands that work on a checkout alone, with no GitLab: `edit`, `plan`, `check` and
//! `promote --dry-run`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::Output;
use crate::checkout::{self, Checkout};
use crate::diagnostic::Diagnostic;
use crate::model::{EnvName, ServiceName, Tag};
use crate::plan::{self, Facts, Request, Verdict};
use crate::repo::check;
use crate::yaml::{self, YamlPath};

/// Prints problems, one per line, and returns exit code 1.
pub(super) fn report(problems: &[Diagnostic]) -> ExitCode {
    let mut err = std::io::stderr().lock();
    for problem in problems {
        let _ = writeln!(err, "{problem}");
    }
    ExitCode::from(1)
}

pub(super) fn edit(
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

pub(super) fn instant(at: Option<&str>) -> anyhow::Result<DateTime<Utc>> {
    match at {
        None => Ok(Utc::now()),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .with_context(|| {
                format!("--at `{text}` is not an RFC 3339 instant such as 2026-11-24T10:00:00Z")
            }),
    }
}

fn read_checkout(repo: &Path) -> anyhow::Result<Checkout> {
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

pub(super) fn plan(repo: &Path, at: Option<&str>, output: Output) -> anyhow::Result<ExitCode> {
    let now = instant(at)?;
    let checkout = read_checkout(repo)?;
    warn_findings(&checkout);
    let open = Default::default();
    let plan = plan::plan(
        &checkout.snapshot,
        Facts::offline(&checkout.history, &open),
        &[],
        now,
    );
    let deployments = crate::history::deployments(&checkout.snapshot, &checkout.history, now);
    let lead = crate::history::lead_times(&deployments, &checkout.snapshot.environments, now);
    let text = match output {
        Output::Json => {
            let mut value = serde_json::to_value(&plan).context("cannot serialize the plan")?;
            value["lead_times"] =
                serde_json::to_value(&lead).context("cannot serialize lead times")?;
            serde_json::to_string_pretty(&value).context("cannot serialize the plan")? + "\n"
        }
        Output::Table => {
            let mut text = plan::render::table(&plan, &checkout.snapshot, &checkout.history);
            for pair in &lead.pairs {
                let median = pair
                    .median_30d
                    .as_ref()
                    .map_or("no samples".to_string(), |m| m.human());
                text.push_str(&format!(
                    "lead time {} -> {}: {median} (median of {} tag(s), last 30 days)\n",
                    pair.from, pair.to, pair.samples_30d
                ));
            }
            text
        }
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("cannot write to stdout")?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn check(repo: &Path) -> anyhow::Result<ExitCode> {
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
        let deployments: usize = checkout.snapshot.services.values().map(|s| s.len()).sum();
        println!(
            "promoter check: {} environments, {} policy files, {} services ({deployments} service deployments): no problems",
            checkout.snapshot.environments.len(),
            checkout.snapshot.policies.files.len(),
            checkout.snapshot.service_names().len(),
        );
        return Ok(ExitCode::SUCCESS);
    }
    Ok(report(&problems))
}

pub(super) fn requester() -> String {
    std::env::var("PROMOTER_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "cli".to_string())
}

pub(super) fn promote_dry_run(
    repo: &Path,
    service: &str,
    to: &str,
    tag: Option<String>,
    because: Option<String>,
    at: Option<&str>,
) -> anyhow::Result<ExitCode> {
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
        requested_at: None,
    };
    let open = Default::default();
    let plan = plan::plan(
        snapshot,
        Facts::offline(&checkout.history, &open),
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

pub(super) fn history(
    repo: &Path,
    service: Option<String>,
    env: Option<String>,
    at: Option<&str>,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let now = instant(at)?;
    let checkout = read_checkout(repo)?;
    warn_findings(&checkout);
    let snapshot = &checkout.snapshot;
    let filter = crate::history::Filter {
        service: service.map(ServiceName::new),
        env: env.map(EnvName::new),
    };
    if let Some(env) = &filter.env
        && snapshot.environment(env).is_none()
    {
        let known: Vec<_> = snapshot
            .environments
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        anyhow::bail!("no environment `{env}` (known: {})", known.join(", "));
    }
    if let Some(service) = &filter.service
        && !snapshot.service_names().contains(service)
    {
        anyhow::bail!("no service `{service}` in any environment");
    }
    let report = crate::history::report(snapshot, &checkout.history, &filter, now);
    let text = match output {
        Output::Json => crate::history::render::json(&report) + "\n",
        Output::Table => crate::history::render::table(&report),
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("cannot write to stdout")?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn dashboard(repo: &Path, out: &Path, at: Option<&str>) -> anyhow::Result<ExitCode> {
    let now = instant(at)?;
    let checkout = read_checkout(repo)?;
    warn_findings(&checkout);
    let open = Default::default();
    let plan = plan::plan(
        &checkout.snapshot,
        Facts::offline(&checkout.history, &open),
        &[],
        now,
    );
    let data = crate::dashboard::build(&checkout.snapshot, &plan, &checkout.history, &[], now);
    let page = crate::dashboard::render(&data, None);
    crate::atomic_file::replace(out, page.as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(ExitCode::SUCCESS)
}
