//! What a reconcile did, as [`Announcement`]s: pure, from the run's actions, its plan and the
//! freezes in force, plus the [`Memory`] of what blocks and freezes were already announced.
//!
//! - Opened, updated, merged, closed: from the actions (an update that only put a frozen MR on
//!   hold is left to the freeze's own line; a rollback MR opened is a `rollback`).
//! - Blocked: a due promotion stopped by a gate a person can act on ([`ACTIONABLE`]), once when
//!   it starts and again only when the reason changes.
//! - Freezes: a freeze in force that was not before starts, one that no longer is ends.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Announcement, Event};
use crate::dashboard::Control;
use crate::plan::{Decision, Plan, Verdict};
use crate::policy::gate::Gate;
use crate::reconcile::{Action, ActionKind, parse_branch};

/// The word a release train's branch has where a service's name would be
/// (`promoter/<env>/train`, DESIGN.md).
const TRAIN: &str = "train";

/// The gates a person can act on when they stop a promotion: a version step to request by
/// hand, a policy file to fix, an upstream to make healthy, an image to push. Soak, windows,
/// schedules and the open limit pass with time; freezes and holds have lines of their own.
pub const ACTIONABLE: [Gate; 4] = [Gate::Semver, Gate::Policy, Gate::Health, Gate::Image];

/// What was already announced, kept between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// Blocked promotions by branch, with the reason announced.
    #[serde(default)]
    pub blocked: BTreeMap<String, String>,
    /// Freezes in force as (environment, what it says).
    #[serde(default)]
    pub freezes: BTreeSet<(String, String)>,
}

/// What a run did and what holds now.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The run's actions.
    pub actions: &'a [Action],
    /// The run's plan, when it got that far.
    pub plan: Option<&'a Plan>,
    /// Holds, freezes and trains in force (only freezes are read).
    pub controls: &'a [Control],
}

/// The announcements of a run, and the memory to keep for the next one.
pub fn announcements(input: Input<'_>, memory: &Memory) -> (Vec<Announcement>, Memory) {
    let mut out: Vec<Announcement> = input
        .actions
        .iter()
        .filter_map(|a| of_action(a, input.plan))
        .collect();
    let mut next = memory.clone();
    if let Some(plan) = input.plan {
        next.blocked = blocked(plan);
        for (branch, reason) in &next.blocked {
            if memory.blocked.get(branch) == Some(reason) {
                continue;
            }
            if let Some(d) = decision(Some(plan), branch) {
                out.push(Announcement {
                    event: Event::Blocked,
                    env: d.to.to_string(),
                    service: Some(d.service.to_string()),
                    tag: d.candidate.as_ref().map(ToString::to_string),
                    reason: Some(reason.clone()),
                    url: None,
                });
            }
        }
    }
    next.freezes = input
        .controls
        .iter()
        .filter(|c| c.kind == "freeze")
        .map(|c| (c.env.clone(), c.text.clone()))
        .collect();
    let freeze = |event, (env, text): &(String, String)| Announcement {
        event,
        env: env.clone(),
        service: None,
        tag: None,
        reason: Some(text.clone()),
        url: None,
    };
    out.extend(
        next.freezes
            .difference(&memory.freezes)
            .map(|f| freeze(Event::FreezeStarted, f)),
    );
    out.extend(
        memory
            .freezes
            .difference(&next.freezes)
            .map(|f| freeze(Event::FreezeEnded, f)),
    );
    (out, next)
}

/// Due promotions stopped by an actionable gate, by branch, with the failing gates' messages.
fn blocked(plan: &Plan) -> BTreeMap<String, String> {
    plan.promotions
        .iter()
        .filter(|d| d.decision == Verdict::Blocked)
        .filter_map(|d| {
            let reasons: Vec<&str> = d
                .gates
                .iter()
                .filter(|g| !g.passed && ACTIONABLE.contains(&g.gate))
                .map(|g| g.message.as_str())
                .collect();
            (!reasons.is_empty()).then(|| {
                (
                    crate::promotion::branch(&d.to, &d.service),
                    reasons.join("; "),
                )
            })
        })
        .collect()
}

fn decision<'a>(plan: Option<&'a Plan>, branch: &str) -> Option<&'a Decision> {
    plan?
        .promotions
        .iter()
        .find(|d| crate::promotion::branch(&d.to, &d.service) == branch)
}

/// The line for one action, when it is one people want to hear about.
fn of_action(action: &Action, plan: Option<&Plan>) -> Option<Announcement> {
    let (env, service) = parse_branch(&action.branch)?;
    let is_train = service.as_str() == TRAIN;
    let decision = (!is_train)
        .then(|| decision(plan, &action.branch))
        .flatten();
    let rollback = decision.is_some_and(|d| d.rollback);
    let event = match action.kind {
        ActionKind::Opened if rollback => Event::Rollback,
        ActionKind::Opened => Event::Opened,
        // An update of a promotion that is not going ahead only put its MR on hold (a freeze):
        // the freeze has its own line.
        ActionKind::Updated if decision.is_some_and(|d| d.decision != Verdict::Promote) => {
            return None;
        }
        ActionKind::Updated => Event::Updated,
        ActionKind::Merged => Event::Merged,
        ActionKind::Closed => Event::Closed,
        _ => return None,
    };
    let tag = decision.and_then(|d| {
        d.requested_tag
            .as_ref()
            .filter(|_| d.rollback)
            .or(d.candidate.as_ref())
            .map(ToString::to_string)
    });
    let reason = match event {
        // `!<iid>: <reasons>`.
        Event::Closed => action
            .detail
            .split_once(": ")
            .map(|(_, why)| why.to_string()),
        Event::Rollback => decision.and_then(|d| d.request_reason.clone()),
        _ => None,
    };
    Some(Announcement {
        event,
        env: env.to_string(),
        service: (!is_train).then(|| service.to_string()),
        tag,
        reason,
        url: action.url.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EnvName, ServiceName, Tag};
    use crate::policy::gate::Outcome as GateOutcome;

    fn decision(service: &str, to: &str, verdict: Verdict, gates: Vec<GateOutcome>) -> Decision {
        Decision {
            service: ServiceName::new(service),
            from: EnvName::new("dev"),
            to: EnvName::new(to),
            current: Some(Tag::new("1.2.0")),
            candidate: Some(Tag::new("1.4.0")),
            candidate_digest: None,
            decision: verdict,
            reasons: Vec::new(),
            gates,
            requested_by: None,
            request_reason: None,
            break_glass: false,
            rollback: false,
            requested_tag: None,
            requested_at: None,
            train: false,
        }
    }

    fn gate(gate: Gate, passed: bool, message: &str) -> GateOutcome {
        GateOutcome {
            gate,
            passed,
            message: message.into(),
        }
    }

    fn plan(promotions: Vec<Decision>) -> Plan {
        Plan {
            generated_at: "2026-11-24T10:00:00Z".parse().unwrap(),
            promotions,
        }
    }

    fn action(branch: &str, kind: ActionKind, detail: &str) -> Action {
        Action {
            branch: branch.into(),
            kind,
            detail: detail.into(),
            url: Some("https://gitlab.example.com/acme/calculator/-/merge_requests/1".into()),
            iid: Some(1),
        }
    }

    #[test]
    fn actions_become_lines_with_their_tag_and_link() {
        let plan = plan(vec![decision("maths-api", "qa", Verdict::Promote, vec![])]);
        let actions = [
            action("promoter/qa/maths-api", ActionKind::Opened, "!1"),
            action(
                "promoter/prod/client",
                ActionKind::Closed,
                "!2: not due: up to date",
            ),
            action("promoter/qa/train", ActionKind::Merged, "!3"),
            action("promoter/qa/other", ActionKind::Unchanged, ""),
            action("promoter/qa/failing", ActionKind::Failed, "boom"),
        ];
        let input = Input {
            actions: &actions,
            plan: Some(&plan),
            controls: &[],
        };
        let (lines, _) = announcements(input, &Memory::default());
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0].event, Event::Opened);
        assert_eq!(lines[0].tag.as_deref(), Some("1.4.0"));
        assert!(lines[0].url.as_deref().unwrap().ends_with("/1"));
        assert_eq!(lines[1].event, Event::Closed);
        assert_eq!(lines[1].reason.as_deref(), Some("not due: up to date"));
        assert_eq!(
            (lines[2].event, lines[2].service.clone()),
            (Event::Merged, None)
        );
    }

    #[test]
    fn a_rollback_is_announced_as_one_and_a_freeze_hold_is_not_an_update() {
        let mut back = decision("maths-api", "prod", Verdict::Promote, vec![]);
        back.rollback = true;
        back.requested_tag = Some(Tag::new("1.1.0"));
        let frozen = decision(
            "client",
            "prod",
            Verdict::Blocked,
            vec![gate(Gate::Freeze, false, "frozen")],
        );
        let plan = plan(vec![back, frozen]);
        let actions = [
            action("promoter/prod/maths-api", ActionKind::Opened, "!1"),
            action("promoter/prod/client", ActionKind::Updated, "!2 frozen: x"),
        ];
        let input = Input {
            actions: &actions,
            plan: Some(&plan),
            controls: &[],
        };
        let (lines, _) = announcements(input, &Memory::default());
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0].event, Event::Rollback);
        assert_eq!(lines[0].tag.as_deref(), Some("1.1.0"));
    }

    #[test]
    fn a_block_is_announced_when_it_starts_and_when_its_reason_changes() {
        let blocked = |message: &str| {
            plan(vec![
                decision(
                    "maths-api",
                    "qa",
                    Verdict::Blocked,
                    vec![
                        gate(Gate::Image, false, message),
                        gate(Gate::Soak, false, "soak"),
                    ],
                ),
                // Only time stops this one: nobody can act on it.
                decision(
                    "client",
                    "qa",
                    Verdict::Blocked,
                    vec![gate(Gate::Soak, false, "soak")],
                ),
            ])
        };
        let run = |plan: &Plan, memory: &Memory| {
            announcements(
                Input {
                    actions: &[],
                    plan: Some(plan),
                    controls: &[],
                },
                memory,
            )
        };
        let (first, memory) = run(&blocked("no image 1.4.0"), &Memory::default());
        assert_eq!(first.len(), 1, "{first:?}");
        assert_eq!(first[0].event, Event::Blocked);
        assert_eq!(first[0].reason.as_deref(), Some("no image 1.4.0"));
        let (again, memory) = run(&blocked("no image 1.4.0"), &memory);
        assert!(again.is_empty(), "once, not every cycle: {again:?}");
        let (changed, memory) = run(&blocked("registry says 401"), &memory);
        assert_eq!(changed.len(), 1);
        let (cleared, memory) = run(&plan(vec![]), &memory);
        assert!(cleared.is_empty() && memory.blocked.is_empty());
        let (back, _) = run(&blocked("registry says 401"), &memory);
        assert_eq!(back.len(), 1, "a block that comes back is news again");
    }

    #[test]
    fn freezes_start_and_end_once() {
        let freeze = Control {
            kind: "freeze",
            env: "prod".into(),
            text: "stop the line by alice: incident".into(),
        };
        let run = |controls: &[Control], memory: &Memory| {
            announcements(
                Input {
                    actions: &[],
                    plan: None,
                    controls,
                },
                memory,
            )
        };
        let (started, memory) = run(std::slice::from_ref(&freeze), &Memory::default());
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].event, Event::FreezeStarted);
        let (still, memory) = run(std::slice::from_ref(&freeze), &memory);
        assert!(still.is_empty());
        let (ended, memory) = run(&[], &memory);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].event, Event::FreezeEnded);
        assert!(memory.freezes.is_empty());
    }
}
