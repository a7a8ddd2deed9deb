//! `promote <service> [to <env>] [tag] [because ...]` and `rollback <service> in <env> [to
//! <tag>] because ...`: authorized against the environment's `requesters`, then run in the
//! loop's turn as a reconcile of just that promotion; the answer names the MR by the values
//! the reconcile returned (its number and address).

use super::status::is_due;
use super::{Asked, Handled, Handlers, render};
use crate::chatops::reply::{self, Accepted, Flavor, Refused};
use crate::daemon::Asker;
use crate::dashboard::DashboardData;
use crate::model::{EnvName, ServiceName, Tag};
use crate::plan::Request;
use crate::policy::access;
use crate::reconcile::{ActionKind, Scope};

/// A promotion into `to`, or when no environment is named, into the first one after the
/// first whose upstream tag differs.
pub fn promote(
    asked: &Asked<'_>,
    service: ServiceName,
    to: Option<EnvName>,
    tag: Option<Tag>,
    reason: Option<String>,
) -> Handled {
    let Some(env) = to.or_else(|| next_env(asked.latest, &service)) else {
        return Handled::Answer(format!(
            "nothing to promote for {}: say `to <env>`",
            reply::escape(asked.flavor, service.as_str())
        ));
    };
    request(asked, service, env, tag, reason, false)
}

/// A rollback of `service` in `env` (to `to`, else the tag before).
pub fn rollback(
    asked: &Asked<'_>,
    service: ServiceName,
    env: EnvName,
    to: Option<Tag>,
    reason: Option<String>,
) -> Handled {
    request(asked, service, env, to, reason, true)
}

/// The request to run, when the environment promotes from another and the asker is one of
/// its requesters.
fn request(
    asked: &Asked<'_>,
    service: ServiceName,
    env: EnvName,
    tag: Option<Tag>,
    reason: Option<String>,
    rollback: bool,
) -> Handled {
    let what = format!(
        "{} {service} {} {env}",
        if rollback { "rollback" } else { "promote" },
        if rollback { "in" } else { "to" }
    );
    let Some(target) = asked.snapshot.environment(&env) else {
        return Handled::Answer(format!(
            "no environment {}",
            reply::escape(asked.flavor, env.as_str())
        ));
    };
    if target.promotes_from.is_none() {
        return Handled::Answer(format!(
            "{env} is the first environment: its tags come from CI"
        ));
    }
    let policy = asked.snapshot.policies.for_env(&env);
    let asker = asked.asker;
    let who = match access::authorize(&policy, &env, &asker.identities) {
        Ok(who) => who.to_string(),
        Err(refusal) => {
            tracing::info!(asker = %asker.identities[0], %env, rule = refusal.rule, "chat-ops request refused");
            let refused = Refused {
                what,
                rule: refusal.rule,
                message: refusal.message,
            };
            return asked.render(asked.handlers.replies.refused(asked.flavor, &refused));
        }
    };
    let reason = Some(match reason {
        Some(reason) => format!("{reason} (asked in {})", asker.place),
        None => format!("asked in {}", asker.place),
    });
    Handled::Run(Box::new(Request {
        service,
        to: env,
        tag,
        requested_by: who,
        reason,
        rollback,
        requested_at: None,
    }))
}

/// The first environment after the first where the service's upstream tag differs.
fn next_env(latest: Option<&DashboardData>, service: &ServiceName) -> Option<EnvName> {
    let data = latest?;
    let row = data.rows.iter().find(|r| r.service == service.as_str())?;
    row.cells
        .iter()
        .zip(&data.environments)
        .skip(1)
        .find(|(c, _)| is_due(c))
        .map(|(_, e)| EnvName::new(e.as_str()))
}

/// Runs the request as a reconcile of that one promotion; the answer for the channel.
pub async fn run(handlers: &Handlers, flavor: Flavor, request: Request, asker: &Asker) -> String {
    let verb = if request.rollback {
        "rollback"
    } else {
        "promote"
    };
    let what = format!("{verb} {} {}", request.service, request.to);
    let refused = |rule: &str, message: String| {
        let refused = Refused {
            what: what.clone(),
            rule: rule.into(),
            message,
        };
        render(handlers.replies.refused(flavor, &refused))
    };
    let scope = Scope {
        only: Some(request.to.clone()),
        service: Some(request.service.clone()),
        ..Scope::all()
    };
    let branch = crate::promotion::branch(&request.to, &request.service);
    let now = handlers.clock.now();
    let outcome = handlers
        .reconciler
        .run_once(&scope, std::slice::from_ref(&request), now)
        .await;
    let outcome = match outcome {
        Ok(outcome) => {
            if let Some(after) = &handlers.after {
                after.after_request(&outcome);
            }
            outcome
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "chat-ops reconcile failed");
            let message = "the reconcile failed; see promoter's log".to_string();
            return refused("promoter", message);
        }
    };
    let Some(action) = outcome.actions.iter().find(|a| a.branch == branch) else {
        return refused("plan", "the plan has no such promotion".into());
    };
    let done = matches!(
        action.kind,
        ActionKind::Opened | ActionKind::Updated | ActionKind::Unchanged | ActionKind::Merged
    );
    let Some(url) = action.url.clone().filter(|_| done) else {
        // A failed action's detail may quote GitLab's answer: no secret goes to chat.
        return refused("gates", crate::redact::redact(&action.detail));
    };
    tracing::info!(asker = %asker.identities[0], branch, detail = action.detail, "chat-ops request done");
    let accepted = Accepted {
        action: if request.rollback {
            reply::Action::Rollback
        } else {
            reply::Action::Promotion
        },
        service: request.service.to_string(),
        env: request.to.to_string(),
        from_tag: None,
        to_tag: request
            .tag
            .as_ref()
            .map_or_else(|| "the upstream tag".to_string(), ToString::to_string),
        mr_url: url,
        mr_iid: action.iid,
        requested_by: request.requested_by.clone(),
        reason: request.reason.clone(),
    };
    render(handlers.replies.accepted(flavor, &accepted))
}
