//! `freeze <env>|all [until ...] because ...` and `unfreeze <env>|all`: an MR adding or
//! deleting the chat freeze's policy file, proposed in the loop's turn; a person merges it.

use super::{Asked, Handled, Handlers};
use crate::chatops::command::{Scope, Until};
use crate::chatops::reply::{self, Flavor, Refused};
use crate::model::EnvName;
use crate::policy::access;
use crate::reconcile::policy_change::{
    PolicyChange, freeze_change, freeze_file, scope_name, unfreeze_change,
};

/// Proposes the freeze, when the asker may request promotions into every frozen environment.
pub fn freeze(asked: &Asked<'_>, scope: &Scope, until: Option<Until>, reason: &str) -> Handled {
    match authorize_scope(asked, scope, "freeze") {
        Err(refused) => asked.render(asked.handlers.replies.refused(asked.flavor, &refused)),
        Ok(who) => Handled::Propose(Box::new(freeze_change(
            scope,
            until,
            reason,
            &who,
            &asked.asker.place,
            asked.now,
        ))),
    }
}

/// Proposes lifting a chat freeze (one written in another policy file is not promoter's).
pub fn unfreeze(asked: &Asked<'_>, scope: &Scope) -> Handled {
    if let Err(refused) = authorize_scope(asked, scope, "unfreeze") {
        return asked.render(asked.handlers.replies.refused(asked.flavor, &refused));
    }
    let file = freeze_file(scope);
    if !asked.snapshot.policies.files.iter().any(|p| p.file == file) {
        return Handled::Answer(format!(
            "there is no chat freeze in {file}; a freeze written in another policy file is lifted by editing that file"
        ));
    }
    Handled::Propose(Box::new(unfreeze_change(scope, &asked.asker.place)))
}

/// Freezing an environment takes being a requester of it; freezing all, of every one. The
/// identity that was allowed, or the refusal.
pub(super) fn authorize_scope(
    asked: &Asked<'_>,
    scope: &Scope,
    what: &str,
) -> Result<String, Refused> {
    let snapshot = asked.snapshot;
    let envs: Vec<EnvName> = match scope {
        Scope::Env(env) => vec![env.clone()],
        Scope::All => snapshot
            .environments
            .iter()
            .filter(|e| e.promotes_from.is_some())
            .map(|e| e.name.clone())
            .collect(),
    };
    let mut who = String::new();
    for env in envs {
        let policy = snapshot.policies.for_env(&env);
        match access::authorize(&policy, &env, &asked.asker.identities) {
            Ok(id) => who = id.to_string(),
            Err(refusal) => {
                return Err(Refused {
                    what: format!("{what} {}", scope_name(scope)),
                    rule: refusal.rule,
                    message: refusal.message,
                });
            }
        }
    }
    Ok(who)
}

/// Opens the MR of a policy change (freeze, unfreeze, unhold); the answer for the channel.
pub async fn propose(handlers: &Handlers, flavor: Flavor, change: PolicyChange) -> String {
    let title = change.title.clone();
    let result = handlers
        .reconciler
        .propose_policy_change(change, handlers.clock.now())
        .await;
    match result {
        // The title holds the reason as typed: shown as code, escaped for the chat.
        Ok(mr) => format!(
            "Proposed {}: {} — it takes effect when merged.",
            reply::code(flavor, &title),
            mr.web_url
        ),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot propose the policy change");
            "promoter could not open the merge request; see its log.".to_string()
        }
    }
}
