//! The plan as people and programs read it: a table grouped by service with one column per
//! environment (tag and how long it has been there), then each decision with its reasons; or
//! JSON in the shape DESIGN.md fixes.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::{Plan, Verdict};
use crate::policy::gate::human;
use crate::repo::{Snapshot, TagHistory};

/// The plan as JSON: `{"generated_at", "promotions": [{"service", "from", "to", "current",
/// "candidate", "decision", "reasons", ...}]}`.
pub fn json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).expect("the plan is plain data")
}

/// How long ago `time` was, for the table.
fn age(now: DateTime<Utc>, time: DateTime<Utc>) -> String {
    human((now - time).to_std().unwrap_or_default())
}

/// The plan as a table.
pub fn table(plan: &Plan, snapshot: &Snapshot, history: &TagHistory) -> String {
    let now = plan.generated_at;
    let envs: Vec<_> = snapshot.environments.iter().map(|e| &e.name).collect();
    let mut rows: Vec<Vec<String>> = vec![
        std::iter::once("SERVICE".to_string())
            .chain(envs.iter().map(|e| e.to_string()))
            .collect(),
    ];
    for service in snapshot.service_names() {
        let mut row = vec![service.to_string()];
        for env in &envs {
            let cell = match snapshot.service(env, service) {
                None => "-".to_string(),
                Some(s) => match &s.image.tag {
                    None => "(no tag)".to_string(),
                    Some(tag) => match history.landing(&s.values_file(), tag) {
                        Some(c) => format!("{tag} ({})", age(now, c.time)),
                        None => tag.to_string(),
                    },
                },
            };
            row.push(cell);
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out.push('\n');
    for d in &plan.promotions {
        let tags = format!(
            "{} -> {}",
            d.current.as_ref().map_or("(none)", |t| t.as_str()),
            d.candidate.as_ref().map_or("(none)", |t| t.as_str())
        );
        let marker = match d.decision {
            Verdict::Promote if d.train => "promote on the train",
            Verdict::Promote => "promote",
            Verdict::Blocked => "BLOCKED",
            Verdict::UpToDate => "up to date",
        };
        let _ = writeln!(
            out,
            "{} {} <- {}: {marker} ({tags})",
            d.service, d.to, d.from
        );
        for reason in &d.reasons {
            let _ = writeln!(out, "    {reason}");
        }
    }
    let _ = write!(out, "\nevaluated at {}", now.to_rfc3339());
    if !history.is_known() {
        out.push_str("; no git history here, so soak and landing times are unknown");
    }
    out.push('\n');
    out
}
