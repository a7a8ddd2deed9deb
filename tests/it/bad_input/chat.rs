//! Chat commands carrying mentions, markdown, links, quotes, backticks and newlines, sent as a
//! signed Slack command, a Mattermost command and a GitLab MR comment (a Note Hook through the
//! webhook route), all on the daemon's real routes in process. Every reply is asserted exactly,
//! and none of these commands writes: the bare remote's refs stay, and the GitLab double
//! records no write but the answering comments.

use std::time::Duration;

use axum::http::StatusCode;
use chrono::Utc;
use promoter::reconcile::Scope;
use tower::ServiceExt;

use super::refs;
use crate::support::Origin;
use crate::support::chat::{
    Chats, MATTERMOST_TOKEN, mattermost, note_hook, reply_text, response_url, slack,
};
use crate::support::fake_gitlab::FakeGitLab;
use crate::support::world::World;

/// The zero-width space that defuses a mention.
const Z: char = '\u{200B}';

fn origin() -> Origin {
    let origin = Origin::new("2026-11-01T00:00:00Z", |s| {
        s.without_network_gates();
        s.replace(
            "policies/qa.yaml",
            "soak: 1h\n",
            "soak: 1h\nrequesters: [\"slack:U1\", \"mattermost:bob\", \"gitlab:alice\"]\n",
        );
        s.replace(
            "policies/prod.yaml",
            "soak: 24h\n",
            "soak: 24h\nrequesters: [\"gitlab:carol\"]\n",
        );
    });
    let released = (Utc::now() - chrono::Duration::hours(3)).to_rfc3339();
    origin.set_tag("dev", "maths-api", "1.3.0", "1.4.0", &released);
    origin
}

async fn nth_note(fake: &FakeGitLab, iid: u64, n: usize) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let notes = fake
            .merge_requests()
            .into_iter()
            .find(|m| m.iid == iid)
            .unwrap()
            .notes;
        if notes.len() >= n {
            return notes[n - 1].clone();
        }
        assert!(std::time::Instant::now() < deadline, "no answer: {notes:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Markdown outside its code spans (whose content is literal), backslash escapes dropped with
/// the character they escape.
fn outside_code(text: &str) -> String {
    let (mut out, mut in_code, mut chars) = (String::new(), false, text.chars());
    while let Some(c) = chars.next() {
        match c {
            '\\' if !in_code => {
                chars.next();
            }
            '`' => in_code = !in_code,
            c if !in_code => out.push(c),
            _ => {}
        }
    }
    assert!(!in_code, "an unclosed code span in {text}");
    out
}

/// No live mention, link, HTML or quick action is left in a reply. Slack: nothing that starts
/// a link or mention anywhere; Markdown: no unescaped `<`, `[`, `]` outside code spans; both:
/// no group mention (defused even in code), no line GitLab would run as a quick action.
fn assert_inert(slack: bool, reply: &str) {
    for mention in ["@here", "@channel", "@everyone", "@all"] {
        assert!(!reply.contains(mention), "{mention} in {reply}");
    }
    if slack {
        for live in ["<!", "<@", "<http", "<#"] {
            assert!(!reply.contains(live), "{live} in {reply}");
        }
    } else {
        let text = outside_code(reply);
        for c in ['<', '>', '[', ']'] {
            assert!(!text.contains(c), "an unescaped {c} in {reply}");
        }
    }
    assert!(
        !reply.lines().any(|l| l.starts_with('/')),
        "a line GitLab would run as a quick action: {reply}"
    );
}

struct Case {
    text: &'static str,
    slack: String,
    mattermost: String,
    gitlab: String,
}

fn cases() -> Vec<Case> {
    let parse_error = |problem: &str, slack_word: &str, md_word: &str| {
        let slack_line = format!(
            ":warning: {problem}{slack_word}.\nTry `/promoter help` for the list of commands."
        );
        let md = |invocation: &str| {
            format!(
                ":warning: {problem}{md_word}.\n\nTry `{invocation} help` for the list of commands."
            )
        };
        (slack_line, md("/promoter"), md("@promoter"))
    };
    let did_you_mean = |(slack, mattermost, gitlab): (String, String, String), word: &str| {
        let did = |t: String| t.replacen(".\n", &format!(". Did you mean `{word}`?\n"), 1);
        (did(slack), did(mattermost), did(gitlab))
    };
    let mut cases = Vec::new();
    let mut add = |text: &'static str, (slack, mattermost, gitlab): (String, String, String)| {
        cases.push(Case {
            text,
            slack,
            mattermost,
            gitlab,
        });
    };
    add(
        "promote <!channel> to qa",
        parse_error("unknown service", ": `&lt;!channel&gt;`", ": `<!channel>`"),
    );
    add(
        "@here promote maths-api",
        parse_error(
            "unknown command",
            &format!(": `@{Z}here`"),
            &format!(": `@{Z}here`"),
        ),
    );
    add(
        "promote maths-api to qa\n/merge",
        parse_error("the command contains a control character", "", ""),
    );
    add(
        "status `maths-api`",
        did_you_mean(
            parse_error(
                "unknown service",
                ": `\u{02CB}maths-api\u{02CB}`",
                ": \\`maths-api\\`",
            ),
            "maths-api",
        ),
    );
    add(
        "promote **maths-api** to qa",
        parse_error("unknown service", ": `**maths-api**`", ": `**maths-api**`"),
    );
    add(
        "help <!everyone>",
        parse_error(
            "unknown command",
            ": `&lt;!everyone&gt;`",
            ": `<!everyone>`",
        ),
    );
    add(
        "plan \"qa\"",
        did_you_mean(
            parse_error("unknown environment", ": `\"qa\"`", ": `\"qa\"`"),
            "qa",
        ),
    );
    // Not a requester of prod: refused, and the reason is not repeated.
    let refused = |what: &str, rule: &str, message: &dyn Fn(&str) -> String| {
        (
            format!(
                ":no_entry: Not done: `{what}`.\nRefused by *{rule}*: {}",
                message("slack:U1")
            ),
            format!(
                ":no_entry: Not done: `{what}`.\n\nRefused by **{rule}**: {}",
                message("mattermost:bob")
            ),
            format!(
                ":no_entry: Not done: `{what}`.\n\nRefused by **{rule}**: {}",
                message("gitlab:alice")
            ),
        )
    };
    add(
        "promote maths-api to prod because <!here> @channel *now* [x](http://evil.example) \"quoted\"",
        refused(
            "promote maths-api to prod",
            "requesters of policies/prod.yaml",
            &|who| format!("{who} may not request promotions into prod"),
        ),
    );
    add(
        "freeze prod because <!channel> 'launch' `now`",
        refused("freeze prod", "requesters of policies/prod.yaml", &|who| {
            format!("{who} may not request promotions into prod")
        }),
    );
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injection_attempts_are_answered_inert_and_write_nothing() {
    let w = World::new(origin()).await;
    // A reconcile of every environment opens the qa promotion: the MR the comments go on.
    let first = w
        .reconciler
        .run_once(&Scope::all(), &[], Utc::now())
        .await
        .unwrap();
    let mr = w.open_mr("promoter/qa/maths-api");
    let stack = w.chat_stack(
        &first,
        Chats {
            slack: true,
            mattermost: true,
            ..Chats::default()
        },
    );
    let app = stack.app.clone();
    let (origin, fake) = (&w.origin, &w.fake);
    let (hook, posted) = response_url().await;

    fake.reset_log();
    let refs_before = refs(&origin.bare);
    let mrs_before = fake.merge_requests().len();
    let notes_before = mr.notes.len();
    let cases = cases();
    for (i, case) in cases.iter().enumerate() {
        let slack_reply = reply_text(&app, slack("U1", case.text, &hook)).await;
        assert_eq!(slack_reply, case.slack, "Slack: {:?}", case.text);
        assert_inert(true, &slack_reply);
        let mattermost_reply =
            reply_text(&app, mattermost(Some(MATTERMOST_TOKEN), case.text)).await;
        assert_eq!(
            mattermost_reply, case.mattermost,
            "Mattermost: {:?}",
            case.text
        );
        assert_inert(false, &mattermost_reply);
        let comment = format!("@promoter {}", case.text);
        let response = app
            .clone()
            .oneshot(note_hook(&comment, mr.iid, "promoter/qa/maths-api"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let gitlab_reply = nth_note(fake, mr.iid, notes_before + i + 1).await;
        assert_eq!(gitlab_reply, case.gitlab, "GitLab: {:?}", case.text);
        assert_inert(false, &gitlab_reply);
    }

    // Nothing was written: no branch moved, no MR opened, and the only GitLab writes are the
    // answering comments.
    assert_eq!(refs(&origin.bare), refs_before);
    assert_eq!(fake.merge_requests().len(), mrs_before);
    let writes: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method != axum::http::Method::GET && r.method != axum::http::Method::HEAD)
        .collect();
    assert_eq!(writes.len(), cases.len(), "{writes:#?}");
    assert!(
        writes.iter().all(|w| w.method == axum::http::Method::POST
            && w.path
                .ends_with(&format!("/merge_requests/{}/notes", mr.iid))),
        "{writes:#?}"
    );
    assert!(posted.lock().unwrap().is_empty(), "nothing posted later");

    // A requester's freeze with the same tricks is a legitimate write: the policy file holds
    // the reason verbatim as data, and the answer and the MR show it inert.
    let reason = "<!channel> @here `rm -rf` *bold* \"quoted\" 'single' [x](http://evil.example)";
    let text = reply_text(
        &app,
        slack("U1", &format!("freeze qa because {reason}"), &hook),
    )
    .await;
    assert_eq!(
        text,
        "Working on it: the merge request follows in this channel."
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while posted.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no answer posted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let freeze = fake
        .merge_requests()
        .into_iter()
        .find(|m| m.source_branch == "promoter-policy/freeze-qa")
        .expect("the freeze MR");
    let answer = posted.lock().unwrap()[0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        answer,
        format!(
            "Proposed `freeze qa: &lt;!channel&gt; @{Z}here \u{02CB}rm -rf\u{02CB} *bold* \"quoted\" 'single' [x](http://evil.example)`: {}/acme/calculator/-/merge_requests/{} — it takes effect when merged.",
            fake.url(),
            freeze.iid
        )
    );
    assert_inert(true, &answer);
    assert!(
        freeze.description.contains(&format!(
            "\\<\\!channel\\> @{Z}here \\`rm -rf\\` \\*bold\\* \"quoted\" 'single' \\[x\\](http{Z}://evil.example)"
        )),
        "{}",
        freeze.description
    );
    let file = origin.read("promoter-policy/freeze-qa", "policies/freeze-qa.yaml");
    let known = ["dev", "qa", "prod"]
        .into_iter()
        .map(promoter::model::EnvName::new)
        .collect();
    let policy = promoter::policy::parse("policies/freeze-qa.yaml", file.as_bytes(), &known)
        .unwrap_or_else(|e| panic!("{e:?}\n{file}"));
    assert_eq!(policy.freezes[0].reason.as_deref(), Some(reason));
    assert_eq!(policy.environments.unwrap().len(), 1, "{file}");
}
