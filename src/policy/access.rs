//! Who may ask for what through chat-ops. An identity is `<channel>:<user>` (`slack:U024BE7LH`,
//! `mattermost:bob`, `gitlab:alice`); policies list them under `requesters` for the
//! environments they gate. Nobody is allowed by default. Pure.

use super::Effective;
use crate::model::EnvName;

/// Why someone may not ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The rule that refused: the policy files naming requesters, or where to add some.
    pub rule: String,
    /// A sentence for the person.
    pub message: String,
}

/// May any of `identities` (the same person, e.g. by id and by name) request promotions into
/// `env`? Returns the identity that matched.
pub fn authorize<'a>(
    policy: &Effective,
    env: &EnvName,
    identities: &'a [String],
) -> Result<&'a str, Refusal> {
    if policy.requesters.is_empty() {
        return Err(Refusal {
            rule: format!("no `requesters` for {env} in policies/"),
            message: format!(
                "nobody may request promotions into {env} through chat; a policy file for {env} must list requesters"
            ),
        });
    }
    identities
        .iter()
        .find(|i| policy.requesters.contains(*i))
        .map(String::as_str)
        .ok_or_else(|| Refusal {
            rule: format!("requesters of {}", policy.requester_files.join(", ")),
            message: format!(
                "{} may not request promotions into {env}",
                identities.first().map_or("this user", String::as_str)
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(requesters: &[&str]) -> Effective {
        Effective {
            requesters: requesters.iter().map(|r| r.to_string()).collect(),
            requester_files: vec!["policies/prod.yaml".into()],
            ..Effective::default()
        }
    }

    #[test]
    fn listed_identities_may_ask_and_others_are_refused_with_the_rule() {
        let prod = EnvName::new("prod");
        let ids = vec!["slack:U1".to_string(), "slack:alice".to_string()];
        assert_eq!(
            authorize(&policy(&["slack:alice"]), &prod, &ids),
            Ok("slack:alice")
        );
        let refused = authorize(&policy(&["gitlab:alice"]), &prod, &ids).unwrap_err();
        assert_eq!(refused.rule, "requesters of policies/prod.yaml");
        assert_eq!(
            refused.message,
            "slack:U1 may not request promotions into prod"
        );
        let nobody = authorize(&Effective::default(), &prod, &ids).unwrap_err();
        assert!(
            nobody.rule.contains("no `requesters` for prod"),
            "{nobody:?}"
        );
    }
}
