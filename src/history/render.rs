//! The history as people and programs read it: a table of deployments by service and
//! environment, then lead times and deployment frequency; or JSON
//! `{"generated_at", "deployments", "lead_times"}`.

use std::fmt::Write;

use super::{Report, Span};

/// The report as JSON.
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("the history is plain data")
}

/// Rows as columns aligned on the widest cell, two spaces apart.
fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

fn cells(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| t.to_string()).collect()
}

/// A median and how many tags it is over, or `-` when there are none.
fn median(span: Option<Span>, samples: usize) -> String {
    match span {
        None => "-".to_string(),
        Some(span) => {
            let noun = if samples == 1 { "tag" } else { "tags" };
            format!("{} ({samples} {noun})", span.human())
        }
    }
}

/// The report as a table.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    if report.deployments.is_empty() {
        out.push_str("no deployments\n");
    } else {
        let mut rows = vec![cells(&[
            "SERVICE", "ENV", "TAG", "LANDED", "COMMIT", "MR", "STAYED",
        ])];
        for d in &report.deployments {
            let stayed = match d.left {
                Some(_) => d.duration.human(),
                None => format!("{}, current", d.duration.human()),
            };
            rows.push(vec![
                d.service.to_string(),
                d.env.to_string(),
                d.tag.to_string(),
                d.landed.time.format("%Y-%m-%d %H:%M").to_string(),
                d.landed.short_sha().to_string(),
                d.mr.map_or("-".to_string(), |n| format!("!{n}")),
                stayed,
            ]);
        }
        out.push_str(&aligned(&rows));
    }
    let lead = &report.lead_times;
    if !lead.pairs.is_empty() {
        out.push('\n');
        let mut rows = vec![cells(&[
            "LEAD TIME (MEDIAN)",
            "LAST 30 DAYS",
            "LAST 90 DAYS",
        ])];
        for p in &lead.pairs {
            rows.push(vec![
                format!("{} -> {}", p.from, p.to),
                median(p.median_30d, p.samples_30d),
                median(p.median_90d, p.samples_90d),
            ]);
        }
        out.push_str(&aligned(&rows));
    }
    if !lead.frequency.is_empty() {
        out.push('\n');
        let mut rows = vec![cells(&[
            "DEPLOYMENTS",
            "LAST 30 DAYS",
            "LAST 90 DAYS",
            "PER WEEK (30 DAYS)",
        ])];
        for f in &lead.frequency {
            rows.push(vec![
                f.env.to_string(),
                f.landings_30d.to_string(),
                f.landings_90d.to_string(),
                format!("{:.2}", f.per_week_30d),
            ]);
        }
        out.push_str(&aligned(&rows));
    }
    let _ = write!(out, "\nhistory as of {}", report.generated_at.to_rfc3339());
    if !report.history_known {
        out.push_str("; no git history here, so no deployments are known");
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeDelta, Utc};

    use super::*;
    use crate::history::{Deployment, EnvFrequency, LeadTimes, PairStats};
    use crate::model::{Commit, CommitInfo};

    fn t(at: &str) -> DateTime<Utc> {
        at.parse().unwrap()
    }

    fn report() -> Report {
        let commit = |n: u32, at: &str| {
            Commit::from(CommitInfo {
                sha: format!("{n:040x}"),
                time: t(at),
                author: "dev".into(),
                summary: format!("commit {n}"),
            })
        };
        let deployment = |env: &str, tag: &str, landed: Commit, left: Option<Commit>, mr| {
            let end = left.as_ref().map_or(t("2026-11-10T00:00:00Z"), |c| c.time);
            Deployment {
                service: "maths-api".into(),
                env: env.into(),
                tag: tag.into(),
                duration: Span(end - landed.time),
                landed,
                left,
                mr,
            }
        };
        Report {
            generated_at: t("2026-11-10T00:00:00Z"),
            deployments: vec![
                deployment(
                    "dev",
                    "1.3.0",
                    commit(1, "2026-11-01T00:00:00Z"),
                    Some(commit(2, "2026-11-02T06:00:00Z")),
                    None,
                ),
                deployment(
                    "dev",
                    "1.4.0",
                    commit(2, "2026-11-02T06:00:00Z"),
                    None,
                    None,
                ),
                deployment(
                    "qa",
                    "1.4.0",
                    commit(3, "2026-11-03T06:00:00Z"),
                    None,
                    Some(12),
                ),
            ],
            lead_times: LeadTimes {
                pairs: vec![
                    PairStats {
                        from: "dev".into(),
                        to: "qa".into(),
                        median_30d: Some(Span(TimeDelta::days(1))),
                        median_90d: Some(Span(TimeDelta::days(1))),
                        samples_30d: 1,
                        samples_90d: 2,
                    },
                    PairStats {
                        from: "qa".into(),
                        to: "prod".into(),
                        median_30d: None,
                        median_90d: None,
                        samples_30d: 0,
                        samples_90d: 0,
                    },
                ],
                frequency: vec![EnvFrequency {
                    env: "dev".into(),
                    landings_30d: 2,
                    landings_90d: 2,
                    per_week_30d: 0.47,
                }],
            },
            history_known: true,
        }
    }

    #[test]
    fn table_lists_deployments_then_statistics() {
        assert_eq!(
            table(&report()),
            "\
SERVICE    ENV  TAG    LANDED            COMMIT    MR   STAYED
maths-api  dev  1.3.0  2026-11-01 00:00  00000000  -    1d 6h
maths-api  dev  1.4.0  2026-11-02 06:00  00000000  -    7d 18h, current
maths-api  qa   1.4.0  2026-11-03 06:00  00000000  !12  6d 18h, current

LEAD TIME (MEDIAN)  LAST 30 DAYS  LAST 90 DAYS
dev -> qa           1d (1 tag)    1d (2 tags)
qa -> prod          -             -

DEPLOYMENTS  LAST 30 DAYS  LAST 90 DAYS  PER WEEK (30 DAYS)
dev          2             2             0.47

history as of 2026-11-10T00:00:00+00:00
"
        );
    }

    #[test]
    fn table_says_when_there_is_nothing() {
        let mut empty = report();
        empty.deployments.clear();
        empty.lead_times = LeadTimes {
            pairs: vec![],
            frequency: vec![],
        };
        empty.history_known = false;
        assert_eq!(
            table(&empty),
            "no deployments\n\nhistory as of 2026-11-10T00:00:00+00:00; no git history here, so no deployments are known\n"
        );
    }

    #[test]
    fn json_has_the_documented_shape() {
        let value: serde_json::Value = serde_json::from_str(&json(&report())).unwrap();
        let mut keys: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["deployments", "generated_at", "lead_times"]);
        assert_eq!(value["generated_at"], "2026-11-10T00:00:00Z");
        let qa = &value["deployments"][2];
        assert_eq!(qa["env"], "qa");
        assert_eq!(qa["mr"], 12);
        assert_eq!(qa["left"], serde_json::Value::Null);
        assert_eq!(qa["landed"]["time"], "2026-11-03T06:00:00Z");
        assert_eq!(qa["duration"]["seconds"], 6 * 86_400 + 18 * 3600);
        let pair = &value["lead_times"]["pairs"][0];
        assert_eq!(pair["median_30d"]["human"], "1d");
        assert_eq!(pair["median_30d"]["seconds"], 86_400);
        assert_eq!(
            value["lead_times"]["pairs"][1]["median_90d"],
            serde_json::Value::Null
        );
        assert_eq!(value["lead_times"]["frequency"][0]["per_week_30d"], 0.47);
    }
}
