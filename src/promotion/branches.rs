//! The names of the branches promoter writes, a fixed interface (DESIGN.md): one promotion's
//! `promoter/<env>/<service>`, an environment's release train `promoter/<env>/train`, and the
//! policy changes asked for in chat, `promoter-policy/...`. Every name is made and read here.

use crate::model::{EnvName, ServiceName};

/// The prefix of every promotion and train branch.
pub const PREFIX: &str = "promoter/";

/// Every promotion and train branch as the mirror holds them (a reference glob).
pub const REMOTE_GLOB: &str = "refs/remotes/origin/promoter/*";

/// The prefix of every policy-change branch (freeze, unfreeze, unhold).
pub const POLICY_PREFIX: &str = "promoter-policy/";

/// The word in a train's branch name where a service's name would be.
pub const TRAIN: &str = "train";

/// `promoter/<env>/<service>`: the branch of one promotion.
pub fn promotion(env: &EnvName, service: &ServiceName) -> String {
    format!("{PREFIX}{env}/{service}")
}

/// `promoter/<env>/train`: the branch of `env`'s release train.
pub fn train(env: &EnvName) -> String {
    format!("{PREFIX}{env}/{TRAIN}")
}

/// `promoter/<env>/<service>` -> (env, service); a train's branch reads as the service
/// `train`. `None` for any other branch.
pub fn parse(branch: &str) -> Option<(EnvName, ServiceName)> {
    let rest = branch.strip_prefix(PREFIX)?;
    let (env, service) = rest.split_once('/')?;
    (!service.contains('/')).then(|| (EnvName::new(env), ServiceName::new(service)))
}

/// `promoter-policy/freeze-<scope>`: the change freezing `scope` (an environment or `all`).
pub fn freeze(scope: &str) -> String {
    format!("{POLICY_PREFIX}freeze-{scope}")
}

/// `promoter-policy/unfreeze-<scope>`: the change lifting `scope`'s freeze.
pub fn unfreeze(scope: &str) -> String {
    format!("{POLICY_PREFIX}unfreeze-{scope}")
}

/// `promoter-policy/unhold-<env>-<service>`: the change lifting a rollback's hold.
pub fn unhold(env: &EnvName, service: &ServiceName) -> String {
    format!("{POLICY_PREFIX}unhold-{env}-{service}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_and_read_back() {
        let (qa, api) = (EnvName::new("qa"), ServiceName::new("maths-api"));
        assert_eq!(promotion(&qa, &api), "promoter/qa/maths-api");
        assert_eq!(
            parse(&promotion(&qa, &api)),
            Some((qa.clone(), api.clone()))
        );
        assert_eq!(train(&qa), "promoter/qa/train");
        assert_eq!(
            parse(&train(&qa)),
            Some((qa.clone(), ServiceName::new(TRAIN)))
        );
        assert_eq!(parse("feature/x"), None);
        assert_eq!(parse("promoter/qa/a/b"), None);
        assert_eq!(REMOTE_GLOB, format!("refs/remotes/origin/{PREFIX}*"));
        assert_eq!(freeze("all"), "promoter-policy/freeze-all");
        assert_eq!(unfreeze("qa"), "promoter-policy/unfreeze-qa");
        assert_eq!(unhold(&qa, &api), "promoter-policy/unhold-qa-maths-api");
    }
}
