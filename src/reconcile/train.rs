//! Release trains: an environment whose policy says `group: train` gets one merge request per
//! schedule, `promoter/<env>/train`, carrying every service due there (people's explicit
//! requests keep their own MRs). The train MR is updated in place: a service whose gate fails
//! leaves at the next update with a note, a newly due one joins; it is never duplicated. Which
//! services ride it is recorded in its description, so a restart changes nothing. Names, tags
//! and reasons in its table and notes go through [`crate::text::markdown`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::act::{self, action};
use super::observe::Observed;
use super::{ActionKind, BRANCH_PREFIX, Error, Reconciler, Scope};
use crate::forge::{Forge, MergeRequest, MrUpdate, NewMergeRequest};
use crate::model::EnvName;
use crate::plan::{Decision, Plan, Verdict};
use crate::promotion::FileEdit;
use crate::promotion::describe::{MAX_TEXT, MAX_TITLE, truncate};
use crate::repo::{Environment, Snapshot};

/// The word in a train's branch name where a service's name would be.
pub const TRAIN: &str = "train";

const MARKER: &str = "<!-- promoter-train: ";

/// `promoter/<env>/train`.
pub fn branch(env: &EnvName) -> String {
    format!("{BRANCH_PREFIX}{env}/{TRAIN}")
}

/// True when promotions into `env` ride a train.
pub fn is_train_env(snapshot: &Snapshot, env: &EnvName) -> bool {
    snapshot.policies.for_env(env).train
}

/// The promotions that ride `env`'s train: those due by the plan alone, not a person's request.
pub fn riders<'a>(plan: &'a Plan, env: &EnvName) -> Vec<&'a Decision> {
    plan.promotions
        .iter()
        .filter(|d| d.to == *env && d.decision == Verdict::Promote && d.requested_by.is_none())
        .collect()
}

/// True when `decision` rides a train rather than having its own MR.
pub fn rides(snapshot: &Snapshot, decision: &Decision) -> bool {
    decision.decision == Verdict::Promote
        && decision.requested_by.is_none()
        && is_train_env(snapshot, &decision.to)
}

/// Every rider's edits, one after the other (each service's files are its own).
pub fn edits(riders: &[&Decision], per_branch: &BTreeMap<String, Vec<FileEdit>>) -> Vec<FileEdit> {
    riders
        .iter()
        .filter_map(|d| per_branch.get(&crate::promotion::branch(&d.to, &d.service)))
        .flatten()
        .cloned()
        .collect()
}

/// Which service rides with which candidate: the record in the MR's description.
type Cars = BTreeMap<String, String>;

fn cars(riders: &[&Decision]) -> Cars {
    riders
        .iter()
        .map(|d| {
            (
                d.service.to_string(),
                d.candidate
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            )
        })
        .collect()
}

fn read_cars(description: Option<&str>) -> Option<Cars> {
    let description = description?;
    let rest = &description[description.rfind(MARKER)? + MARKER.len()..];
    serde_json::from_str(rest.split(" -->").next()?).ok()
}

fn describe(env: &Environment, riders: &[&Decision]) -> String {
    use crate::text::markdown::{literal, table_cell};
    let mut out = format!(
        "Release train into **{}**: {} service(s) due at this schedule, in one merge request.\n\n| service | tag | gates |\n|---|---|---|\n",
        literal(env.name.as_str()),
        riders.len()
    );
    for d in riders {
        let gates: Vec<String> = d
            .gates
            .iter()
            .map(|g| format!("{} {}", if g.passed { "✅" } else { "❌" }, g.gate.name()))
            .collect();
        out.push_str(&format!(
            "| {} | `{}` → `{}` | {} |\n",
            table_cell(d.service.as_str()),
            literal(
                &d.current
                    .as_ref()
                    .map_or("(none)".to_string(), ToString::to_string)
            ),
            literal(
                &d.candidate
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ),
            table_cell(&gates.join(", "))
        ));
    }
    out.push_str(if env.auto_merge {
        "\npromoter merges this once it is approved and GitLab says it is mergeable. A service whose gate fails leaves the train at the next update.\n"
    } else {
        "\nMerge by hand once approved. A service whose gate fails leaves the train at the next update.\n"
    });
    let text = truncate(&out, MAX_TEXT - 2_000);
    format!(
        "{text}\n{MARKER}{} -->",
        // `>` only occurs inside JSON strings here: as `\u003e` no name can close the comment.
        serde_json::to_string(&cars(riders))
            .expect("plain data")
            .replace('>', "\\u003e")
    )
}

/// Keeps `env`'s train MR in line with its riders: opened at the schedule, updated in place,
/// merged where allowed, closed when nobody rides.
pub(super) async fn ensure<F: Forge>(
    r: &Reconciler<F>,
    scope: &Scope,
    observed: &Observed,
    env: &Environment,
    mr: Option<MergeRequest>,
    now: DateTime<Utc>,
) -> Result<super::Action, Error> {
    let branch = branch(&env.name);
    let riders = riders(&observed.plan, &env.name);
    let state = observed.branches.get(&branch);
    if let Some(who) = state.and_then(|s| s.foreign.clone()) {
        return act::hands_off(r, &branch, mr.as_ref(), &who).await;
    }
    let edits = observed.edits.get(&branch).cloned().unwrap_or_default();
    if riders.is_empty() || edits.is_empty() {
        let reasons = ["no service is due for this train any more".to_string()];
        return act::retire(r, observed, &branch, mr, &reasons).await;
    }
    let tip = state.and_then(|s| s.tip);
    if mr.is_none() && tip.is_none() && !scope.may_open(&env.name, env.schedule.is_some()) {
        return Ok(action(
            &branch,
            ActionKind::Waiting,
            format!(
                "{} service(s) due; the train leaves at the schedule of {}",
                riders.len(),
                env.name
            ),
        ));
    }
    let mut changed = Vec::new();
    let mut pushed_at = state.and_then(|s| s.pushed_at);
    let sha = match tip {
        Some(tip) if state.is_some_and(|s| s.up_to_date) => tip,
        _ => {
            let lines: Vec<String> = riders
                .iter()
                .map(|d| {
                    format!(
                        "- {}: {} -> {}",
                        d.service,
                        d.current
                            .as_ref()
                            .map_or("(none)".to_string(), ToString::to_string),
                        d.candidate
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default()
                    )
                })
                .collect();
            let message = format!(
                "promote {} service(s) to {} (train)\n\n{}",
                riders.len(),
                env.name,
                lines.join("\n")
            );
            let pushed =
                act::commit_and_push(r, observed.head, edits, message, &branch, tip, now).await?;
            changed.push(format!("pushed {}", &pushed.to_string()[..8]));
            pushed_at = Some(now);
            pushed
        }
    };
    let sha = sha.to_string();
    let title = truncate(
        &format!(
            "promote {} service(s) to {} (train): {}",
            riders.len(),
            env.name,
            riders
                .iter()
                .map(|d| d.service.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        MAX_TITLE,
    );
    let description = describe(env, &riders);
    let labels = vec![
        super::LABEL.to_string(),
        format!("env:{}", env.name),
        "train".to_string(),
    ];
    let mut opened = false;
    let mr = match mr {
        Some(mr) => mr,
        None => {
            let new = NewMergeRequest {
                source_branch: branch.clone(),
                target_branch: r.config.branch.clone(),
                title: title.clone(),
                description: description.clone(),
                labels: labels.clone(),
            };
            let (mr, new_now) = act::open_or_adopt(r, &new).await?;
            opened = new_now;
            mr
        }
    };
    if !opened {
        let before = read_cars(mr.description.as_deref()).unwrap_or_default();
        let now_riding = cars(&riders);
        if before != now_riding {
            r.forge
                .update_merge_request(
                    mr.iid,
                    &MrUpdate {
                        title: Some(title.clone()),
                        description: Some(description.clone()),
                        labels: Some(labels.clone()),
                        close: false,
                    },
                )
                .await?;
            let note = changes_note(&observed.plan, &env.name, &before, &now_riding);
            r.forge.add_note(mr.iid, &truncate(&note, MAX_TEXT)).await?;
            changed.push("riders changed".to_string());
        }
    }
    if env.auto_merge
        && let Some(merged) = act::try_merge(
            r,
            &observed.snapshot,
            riders[0],
            &mr,
            &sha,
            pushed_at,
            env.approvals_required,
        )
        .await?
    {
        return Ok(super::Action {
            url: Some(mr.web_url.clone()),
            iid: Some(mr.iid),
            ..action(&branch, ActionKind::Merged, format!("!{} {merged}", mr.iid))
        });
    }
    let kind = if opened {
        ActionKind::Opened
    } else if changed.is_empty() {
        ActionKind::Unchanged
    } else {
        ActionKind::Updated
    };
    Ok(super::Action {
        url: Some(mr.web_url.clone()),
        iid: Some(mr.iid),
        ..action(
            &branch,
            kind,
            format!(
                "!{} {} rider(s) {}",
                mr.iid,
                riders.len(),
                changed.join(", ")
            ),
        )
    })
}

/// The note on a train whose riders changed: who left (and why), who joined, who moved on.
fn changes_note(plan: &Plan, env: &EnvName, before: &Cars, now: &Cars) -> String {
    use crate::text::markdown::{inline, literal};
    let mut lines = vec!["The train changed:".to_string()];
    for (service, tag) in before {
        match now.get(service) {
            None => {
                let why = plan
                    .promotions
                    .iter()
                    .find(|d| d.to == *env && d.service.as_str() == service)
                    .map(|d| d.reasons.join("; "))
                    .unwrap_or_else(|| "no longer in the plan".to_string());
                lines.push(format!(
                    "- **{}** `{}` left the train: {}",
                    inline(service),
                    literal(tag),
                    inline(&why)
                ));
            }
            Some(new) if new != tag => {
                lines.push(format!(
                    "- **{}** now carries `{}` instead of `{}`",
                    inline(service),
                    literal(new),
                    literal(tag)
                ));
            }
            Some(_) => {}
        }
    }
    for (service, tag) in now.iter().filter(|(s, _)| !before.contains_key(*s)) {
        lines.push(format!(
            "- **{}** `{}` joined the train",
            inline(service),
            literal(tag)
        ));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_riders_read_back_from_the_description() {
        let cars = Cars::from([("api".to_string(), "1.3.0".to_string())]);
        let text = format!(
            "table\n{MARKER}{} -->",
            serde_json::to_string(&cars).unwrap()
        );
        assert_eq!(read_cars(Some(&text)), Some(cars));
        assert_eq!(read_cars(Some("nothing")), None);
    }

    #[test]
    fn names_tags_and_reasons_in_notes_and_tables_are_inert() {
        let attack = "@all <!-- <img src=x> [x](https://evil.example) | /merge";
        let plan = Plan {
            generated_at: Utc::now(),
            promotions: Vec::new(),
        };
        let before = Cars::from([(attack.to_string(), attack.to_string())]);
        let note = changes_note(&plan, &EnvName::new("qa"), &before, &Cars::new());
        assert!(
            !note.contains("@all") && !note.contains("https://"),
            "{note}"
        );
        for live in ["<!--", "<img", "[x]"] {
            assert!(
                note.match_indices(live)
                    .all(|(i, _)| note[..i].ends_with('\\')),
                "{note}"
            );
        }
        // The table line keeps its three cells.
        let line = note.lines().nth(1).unwrap();
        assert_eq!(
            line.matches('|').count(),
            line.matches("\\|").count(),
            "{note}"
        );
        // The riders' record cannot be closed early by a name.
        let cars = Cars::from([("api".to_string(), "1.0-->x".to_string())]);
        let text = format!(
            "{MARKER}{} -->",
            serde_json::to_string(&cars)
                .unwrap()
                .replace('>', "\\u003e")
        );
        assert_eq!(text.matches("-->").count(), 1, "{text}");
        assert_eq!(read_cars(Some(&text)), Some(cars));
    }

    #[test]
    fn the_train_table_keeps_its_cells_and_shows_names_inert() {
        let attack = "@all <!-- <img src=x> [x](https://evil.example) | /merge";
        let env = Environment {
            name: EnvName::new("qa"),
            path: "clusters/qa".into(),
            promotes_from: Some(EnvName::new("dev")),
            schedule: None,
            schedule_text: None,
            timezone: chrono_tz::UTC,
            auto_merge: true,
            approvals_required: 1,
            services: BTreeMap::new(),
            health: Default::default(),
            file: "environments/qa.yaml".into(),
        };
        let rider = Decision {
            service: crate::model::ServiceName::new(attack),
            from: EnvName::new("dev"),
            to: EnvName::new("qa"),
            current: Some(crate::model::Tag::new(attack)),
            candidate: Some(crate::model::Tag::new("1.4.0`|<b>")),
            candidate_digest: None,
            decision: Verdict::Promote,
            reasons: vec![attack.into()],
            gates: Vec::new(),
            requested_by: None,
            request_reason: None,
            break_glass: false,
            rollback: false,
            requested_tag: None,
            requested_at: None,
            train: true,
        };
        let text = describe(&env, &[&rider]);
        let row = text
            .lines()
            .find(|l| l.starts_with("| ") && !l.starts_with("| service"))
            .unwrap();
        assert_eq!(row.replace("\\|", "").matches('|').count(), 4, "{row}");
        let body = &text[..text.find(MARKER).unwrap()];
        assert!(
            !body.contains("@all") && !body.contains("https://"),
            "{body}"
        );
        assert!(!body.contains("<!--") && !body.contains("<b>"), "{body}");
        assert!(
            body.match_indices("<img")
                .all(|(i, _)| body[..i].ends_with('\\')),
            "{body}"
        );
        assert_eq!(read_cars(Some(&text)), Some(cars(&[&rider])));
    }

    #[test]
    fn the_note_names_who_left_joined_and_moved() {
        let plan = Plan {
            generated_at: Utc::now(),
            promotions: Vec::new(),
        };
        let before = Cars::from([
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "1".to_string()),
        ]);
        let now = Cars::from([
            ("b".to_string(), "2".to_string()),
            ("c".to_string(), "1".to_string()),
        ]);
        assert_eq!(
            changes_note(&plan, &EnvName::new("qa"), &before, &now),
            "The train changed:\n- **a** `1` left the train: no longer in the plan\n- **b** now carries `2` instead of `1`\n- **c** `1` joined the train"
        );
    }
}
