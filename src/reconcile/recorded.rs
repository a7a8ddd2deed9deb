//! Whether a request recorded on a promotion branch still counts in this run. The commit it
//! was read from is promoter's (its signature was checked before any trailer was read); what
//! is left to decide is whether that genuine request belongs to this merge request and to
//! today's policy:
//! - only on a merge request promoter opened itself (GitLab's `author` is promoter's user), so
//!   a person's MR from a promotion branch carries no request;
//! - only when it was asked no earlier than [`SLACK`] before the MR was opened, so last
//!   month's signed break-glass commit pushed again onto the branch of a new MR asks for
//!   nothing;
//! - only while its requester may still ask: a chat identity (`slack:`, `mattermost:`,
//!   `gitlab:`) must still be among the environment's `requesters` (a break-glass waiver is
//!   re-derived from today's `break_glass` by the plan anyway).
//!
//! A request that no longer counts lapses: one note on the MR (the label [`LAPSED_LABEL`]
//! records that it was said), and the promotion follows the plan without it.

use chrono::{DateTime, Utc};

use crate::forge::MergeRequest;
use crate::plan::Request;
use crate::policy::Effective;

/// The label on an MR whose recorded request lapsed (the lapse note was said).
pub const LAPSED_LABEL: &str = "promoter:request-lapsed";

/// How much earlier than its MR a request may have been asked: promoter records the request
/// in the commit it pushes, then opens the MR (a GitLab outage or a crash in between delays
/// the MR; a request older than this lapses, failing safe).
pub const SLACK: chrono::Duration = chrono::Duration::minutes(15);

/// The chat channels whose identities `requesters` lists.
const CHANNELS: [&str; 3] = ["slack:", "mattermost:", "gitlab:"];

/// Why a recorded request does not count, as a sentence for the MR; `None` when it counts.
pub fn lapsed(
    request: &Request,
    mr: &MergeRequest,
    own_username: Option<&str>,
    policy: &Effective,
) -> Option<String> {
    // Fail safe: a merge request whose author or opening time is unknown is not promoter's.
    match (own_username, mr.author.as_deref()) {
        (Some(own), Some(author)) if own == author => {}
        (_, Some(author)) => {
            return Some(format!(
                "this merge request was opened by {}, not by promoter; a request recorded on its branch counts only on promoter's own merge request",
                crate::text::markdown::code(author)
            ));
        }
        (_, None) => {
            return Some(
                "GitLab did not say who opened this merge request; a request recorded on its branch counts only on promoter's own merge request".to_string(),
            );
        }
    }
    let Some(asked) = request.requested_at else {
        return Some("the recorded request carries no time (`Requested-at:`)".to_string());
    };
    let Some(opened) = mr.created_at else {
        return Some("GitLab did not say when this merge request was opened".to_string());
    };
    if asked < opened - SLACK {
        return Some(format!(
            "it was asked at {}, before this merge request was opened ({}); a request does not carry over to a new merge request",
            stamp(asked),
            stamp(opened)
        ));
    }
    let who = &request.requested_by;
    if CHANNELS.iter().any(|c| who.starts_with(c)) && !policy.requesters.contains(who) {
        return Some(format!(
            "{who} may no longer request promotions into {} (not among the `requesters` of its policies)",
            request.to
        ));
    }
    None
}

fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The note on an MR whose recorded request lapsed.
pub fn note(request: &Request, why: &str) -> String {
    let what = if request.rollback {
        "rollback"
    } else {
        "request"
    };
    format!(
        "The {what} recorded on this branch by {} no longer counts: {why}. promoter follows the plan without it from here; ask again if it is still wanted.",
        crate::text::markdown::inline(&request.requested_by)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EnvName, ServiceName};

    fn request(who: &str, at: &str) -> Request {
        Request {
            service: ServiceName::new("client"),
            to: EnvName::new("prod"),
            tag: None,
            requested_by: who.into(),
            reason: Some("incident".into()),
            rollback: false,
            requested_at: Some(at.parse().unwrap()),
        }
    }

    fn mr(author: &str, created: &str) -> MergeRequest {
        MergeRequest {
            iid: 1,
            title: String::new(),
            description: None,
            source_branch: "promoter/prod/client".into(),
            target_branch: "main".into(),
            state: crate::forge::MrState::Opened,
            labels: Vec::new(),
            sha: None,
            merge_commit_sha: None,
            detailed_merge_status: None,
            web_url: String::new(),
            head_pipeline: None,
            author: Some(author.into()),
            created_at: Some(created.parse().unwrap()),
            updated_at: None,
            from_fork: false,
        }
    }

    fn policy(requesters: &[&str]) -> Effective {
        Effective {
            requesters: requesters.iter().map(|r| r.to_string()).collect(),
            ..Effective::default()
        }
    }

    #[test]
    fn a_request_counts_on_promoters_mr_opened_after_it_while_its_requester_may_ask() {
        let fresh = request("slack:U1", "2026-12-01T10:00:00Z");
        let ours = mr("promoter-bot", "2026-12-01T10:00:05Z");
        let allowed = policy(&["slack:U1"]);
        assert_eq!(lapsed(&fresh, &ours, Some("promoter-bot"), &allowed), None);
        // Asked on an MR open for days: fine.
        let later = request("slack:U1", "2026-12-05T10:00:00Z");
        assert_eq!(lapsed(&later, &ours, Some("promoter-bot"), &allowed), None);

        let theirs = mr("mallory", "2026-12-01T10:00:05Z");
        let why = lapsed(&fresh, &theirs, Some("promoter-bot"), &allowed).unwrap();
        assert!(
            why.contains("opened by `mallory`, not by promoter"),
            "{why}"
        );
        // Unknown author or own user: not promoter's.
        let anonymous = MergeRequest {
            author: None,
            ..ours.clone()
        };
        assert!(lapsed(&fresh, &anonymous, Some("promoter-bot"), &allowed).is_some());
        assert!(lapsed(&fresh, &ours, None, &allowed).is_some());
        let undated = MergeRequest {
            created_at: None,
            ..ours.clone()
        };
        assert!(lapsed(&fresh, &undated, Some("promoter-bot"), &allowed).is_some());

        let replayed = request("slack:U1", "2026-11-01T10:00:00Z");
        let why = lapsed(&replayed, &ours, Some("promoter-bot"), &allowed).unwrap();
        assert!(
            why.contains("2026-11-01T10:00:00Z, before this merge request was opened"),
            "{why}"
        );

        let removed = lapsed(&fresh, &ours, Some("promoter-bot"), &policy(&["slack:U2"])).unwrap();
        assert!(
            removed.starts_with("slack:U1 may no longer request promotions into prod"),
            "{removed}"
        );
        // A CLI operator's name is not a chat identity: the token and key already trust it.
        let cli = request("alice", "2026-12-01T10:00:00Z");
        assert_eq!(
            lapsed(&cli, &ours, Some("promoter-bot"), &policy(&[])),
            None
        );
    }
}
