//! Release trains, the rules: an environment whose policy says `group: train` gets one merge
//! request per schedule, `promoter/<env>/train`, carrying every service due there (people's
//! explicit requests keep their own MRs). Who rides, the train's table and notes, and the
//! riders' record in its description (so a restart changes nothing) are decided here; the
//! wiring that opens and updates the MR is `reconcile/train.rs`. Names, tags and reasons in the
//! table and notes go through [`crate::text::markdown`].

use std::collections::{BTreeMap, BTreeSet};

use super::FileEdit;
pub use super::branches::{TRAIN, train as branch};
use super::describe::{MAX_TEXT, MAX_TITLE, RiderRow, Templates, TrainText, truncate};
use crate::model::EnvName;
use crate::plan::{Decision, Plan, Verdict};
use crate::repo::{Environment, Snapshot};

const MARKER: &str = "<!-- promoter-train: ";

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

/// The environments of `snapshot` whose promotions ride a train (policies read once, not
/// per promotion).
pub fn train_envs(snapshot: &Snapshot) -> BTreeSet<&EnvName> {
    snapshot
        .environments
        .iter()
        .map(|e| &e.name)
        .filter(|name| is_train_env(snapshot, name))
        .collect()
}

/// True when `decision` rides a train rather than having its own MR; `trains` are
/// [`train_envs`].
pub fn rides(trains: &BTreeSet<&EnvName>, decision: &Decision) -> bool {
    decision.decision == Verdict::Promote
        && decision.requested_by.is_none()
        && trains.contains(&decision.to)
}

/// Every rider's edits, one after the other (each service's files are its own).
pub fn edits(riders: &[&Decision], per_branch: &BTreeMap<String, Vec<FileEdit>>) -> Vec<FileEdit> {
    riders
        .iter()
        .filter_map(|d| per_branch.get(&super::branch(&d.to, &d.service)))
        .flatten()
        .cloned()
        .collect()
}

/// Which service rides with which candidate: the record in the MR's description.
pub type Cars = BTreeMap<String, String>;

/// The record of who rides with which candidate.
pub fn cars(riders: &[&Decision]) -> Cars {
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

/// The riders an earlier run recorded in `description`.
pub fn read_cars(description: Option<&str>) -> Option<Cars> {
    let description = description?;
    let rest = &description[description.rfind(MARKER)? + MARKER.len()..];
    serde_json::from_str(rest.split(" -->").next()?).ok()
}

/// The train MR's description: the overridable `train.md.hbs` template (values made inert
/// before it sees them), then the riders' record.
pub fn describe(
    templates: &Templates,
    env: &Environment,
    riders: &[&Decision],
) -> Result<String, super::describe::Error> {
    let shown = |tag: Option<&crate::model::Tag>| tag.map(ToString::to_string);
    let text = TrainText {
        env: env.name.to_string(),
        auto_merge: env.auto_merge,
        riders: riders
            .iter()
            .map(|d| RiderRow {
                service: d.service.to_string(),
                old: shown(d.current.as_ref()).unwrap_or_else(|| "(none)".to_string()),
                new: shown(d.candidate.as_ref()).unwrap_or_default(),
                gates: d
                    .gates
                    .iter()
                    .map(|g| format!("{} {}", if g.passed { "✅" } else { "❌" }, g.gate.name()))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
            .collect(),
    };
    let out = templates.train(&text)? + "\n";
    let text = truncate(&out, MAX_TEXT - 2_000);
    Ok(format!(
        "{text}\n{MARKER}{} -->",
        // `>` only occurs inside JSON strings here: as `\u003e` no name can close the comment.
        serde_json::to_string(&cars(riders))
            .expect("plain data")
            .replace('>', "\\u003e")
    ))
}

/// The commit message of a train carrying `riders` into `env`.
pub fn commit_message(env: &EnvName, riders: &[&Decision]) -> String {
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
    format!(
        "promote {} service(s) to {} (train)\n\n{}",
        riders.len(),
        env,
        lines.join("\n")
    )
}

/// The train MR's title: how many ride, and who.
pub fn title(env: &EnvName, riders: &[&Decision]) -> String {
    truncate(
        &format!(
            "promote {} service(s) to {} (train): {}",
            riders.len(),
            env,
            riders
                .iter()
                .map(|d| d.service.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        MAX_TITLE,
    )
}

/// The labels of a train MR into `env`, after `label` (the label of every promotion MR).
pub fn labels(label: &str, env: &EnvName) -> Vec<String> {
    vec![label.to_string(), format!("env:{env}"), TRAIN.to_string()]
}

/// The note on a train whose riders changed: who left (and why), who joined, who moved on.
pub fn changes_note(plan: &Plan, env: &EnvName, before: &Cars, now: &Cars) -> String {
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
    use chrono::{DateTime, Utc};

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
            generated_at: DateTime::<Utc>::default(),
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
        let text = describe(&Templates::built_in(), &env, &[&rider]).unwrap();
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
            generated_at: DateTime::<Utc>::default(),
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
