//! `unhold <service> in <env>`: an MR deleting the hold a rollback left, proposed in the
//! loop's turn; a person merges it.

use super::freeze::authorize_scope;
use super::{Asked, Handled};
use crate::chatops::command::Scope;
use crate::model::{EnvName, ServiceName};
use crate::reconcile::policy_change::unhold_change;

/// Proposes deleting the hold of `service` in `env`, when the asker may request promotions
/// into `env` and the hold exists.
pub fn unhold(asked: &Asked<'_>, service: &ServiceName, env: &EnvName) -> Handled {
    let scope = Scope::Env(env.clone());
    let who = match authorize_scope(asked, &scope, &format!("unhold {service} in")) {
        Err(refused) => {
            return asked.render(asked.handlers.replies.refused(asked.flavor, &refused));
        }
        Ok(who) => who,
    };
    let file = crate::policy::hold::file(env, service);
    if !asked.snapshot.policies.holds().any(|h| h.file == file) {
        return Handled::Answer(format!(
            "{service} is not held in {env}: there is no {file} on the branch"
        ));
    }
    Handled::Propose(Box::new(unhold_change(
        env,
        service,
        &who,
        &asked.asker.place,
    )))
}
