//! Text from people stays inert on its way out, against the GitLab double and a real bare
//! repository: a hostile reason in a request's MR description and in a freeze's stop-the-line
//! note mentions no one, embeds nothing, links nowhere, opens no HTML comment that would hide
//! the gate table, and runs no quick action; a Mattermost channel name carrying a Unicode line
//! separator, written into a freeze's policy file by the real chat route, adds no key.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request as HttpRequest, StatusCode};
use chrono::Utc;
use promoter::model::{EnvName, ServiceName};
use promoter::plan::Request;
use promoter::reconcile::Scope;
use tower::ServiceExt;

use crate::support::Origin;
use crate::support::chat::{Chats, MATTERMOST_TOKEN};
use crate::support::world::World;

/// Every trick at once: a mention of everyone, an HTML comment left open (it would hide the
/// rest of the description), a remote image, raw HTML, a script link and a quick action.
const ATTACK: &str =
    "@all <!-- ![x](https://evil.example/a.png) <img src=x> [click](javascript:alert(1)) /merge";

/// Whether every occurrence of `pattern` in `text` starts with a backslash-escaped character.
fn only_escaped(text: &str, pattern: &str) -> bool {
    text.match_indices(pattern).all(|(i, _)| {
        let backslashes = text[..i].chars().rev().take_while(|c| *c == '\\').count();
        backslashes % 2 == 1
    })
}

/// Nothing of [`ATTACK`] is live in `text`.
fn assert_inert(text: &str) {
    assert!(!text.contains("@all"), "a live @all in {text}");
    for live in ["<!--", "<img", "![", "[click]("] {
        assert!(only_escaped(text, live), "a live {live} in {text}");
    }
    assert!(!text.contains("https://evil"), "an autolink in {text}");
    // The one quick action is promoter's own (`/assign_reviewer` of the policy's reviewers).
    assert!(
        !text
            .lines()
            .any(|l| l.trim_start().starts_with('/') && !l.starts_with("/assign_reviewer @")),
        "a quick action in {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_reason_is_inert_in_the_description_and_the_stop_the_line_note() {
    let w = World::new(crate::support::origin_with_new_dev_tag(
        "2026-11-24T10:00:00Z",
    ))
    .await;
    let request = Request {
        service: ServiceName::new("maths-api"),
        to: EnvName::new("qa"),
        tag: None,
        requested_by: "gitlab:mallory".into(),
        reason: Some(ATTACK.into()),
        rollback: false,
        requested_at: None,
    };
    w.run_with(&[request], "2026-11-24T12:00:00Z").await;
    let mr = w.open_mr("promoter/qa/maths-api");
    let description = &mr.description;
    assert!(
        description.contains("Requested by **gitlab:mallory**: "),
        "{description}"
    );
    // The gate table comes before promoter's own marker comment: nothing hides it.
    let table = description
        .find("| gate | verdict |")
        .expect("a gate table");
    let comment = description.find("<!--").unwrap_or(description.len());
    assert!(
        table < comment,
        "the gate table is inside a comment:\n{description}"
    );
    assert!(description.contains("| soak | ✅"), "{description}");
    assert_inert(&description[..comment]);

    // A freeze whose reason (from a policy file) carries the same tricks stops the line: the
    // note says why, inert.
    let reason = serde_json::to_string(ATTACK).unwrap();
    let freeze = format!(
        "freezes:\n  - name: incident\n    reason: {reason}\n    start: 2026-11-24T12:30:00Z\n    end: 2030-01-01T00:00:00Z\n"
    );
    w.origin.write(
        &[("policies/freeze-all.yaml", Some(&freeze))],
        "freeze all",
        "2026-11-24T12:30:00Z",
    );
    w.approve(mr.iid, "alice");
    w.run("2026-11-24T13:00:00Z").await;
    let notes = w.mr(mr.iid).notes;
    let stop = notes
        .iter()
        .find(|n| n.starts_with("**Stop the line.**"))
        .unwrap_or_else(|| panic!("no stop-the-line note: {notes:#?}"));
    assert!(stop.contains("evil.example"), "the reason is shown: {stop}");
    assert_inert(stop);
}

/// A Mattermost slash command from `bob` in a channel called `channel`.
fn mattermost(text: &str, channel: &str) -> HttpRequest<Body> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("team_id", "t1")
        .append_pair("channel_id", "c1")
        .append_pair("channel_name", channel)
        .append_pair("response_url", "http://127.0.0.1:9/hooks/commands/x")
        .append_pair("command", "/promoter")
        .append_pair("text", text)
        .append_pair("user_id", "u1")
        .append_pair("user_name", "bob")
        .finish();
    HttpRequest::post("/chatops/mattermost")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", format!("Token {MATTERMOST_TOKEN}"))
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_separator_in_a_channel_name_adds_no_key_to_the_policy_file() {
    let origin = Origin::new("2026-11-01T00:00:00Z", |s| {
        s.without_network_gates();
        s.replace(
            "policies/qa.yaml",
            "soak: 1h\n",
            "soak: 1h\nrequesters: [\"mattermost:bob\"]\n",
        );
    });
    let w = World::new(origin).await;
    let first = w
        .reconciler
        .run_once(&Scope::all(), &[], Utc::now())
        .await
        .unwrap();
    let stack = w.chat_stack(
        &first,
        Chats {
            mattermost: true,
            ..Chats::default()
        },
    );
    let app = stack.app.clone();
    let (origin, fake) = (&w.origin, &w.fake);

    // Each separator YAML readers may take for a line break, then a key granting eve the
    // right to request, then a `#` that comments out the rest of the original line.
    let grant = "requesters: [\"mattermost:eve\"]";
    let channel = format!("town\u{2028}{grant}\u{2029}{grant}\u{85}{grant}\r{grant}\u{2028}#");
    let reason = format!("calm\u{2028}{grant}");
    let response = app
        .clone()
        .oneshot(mattermost(&format!("freeze qa because {reason}"), &channel))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let freeze = loop {
        if let Some(mr) = fake
            .merge_requests()
            .into_iter()
            .find(|m| m.source_branch == "promoter-policy/freeze-qa")
        {
            break mr;
        }
        assert!(std::time::Instant::now() < deadline, "no freeze MR");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let file = origin.read("promoter-policy/freeze-qa", "policies/freeze-qa.yaml");
    for c in ['\u{2028}', '\u{2029}', '\u{85}', '\r'] {
        assert!(!file.contains(c), "a raw {c:?} in\n{file}");
    }

    // serde_yaml sees exactly the two keys promoter writes.
    let value: serde_yaml::Value = serde_yaml::from_str(&file).unwrap();
    let keys: Vec<&str> = value
        .as_mapping()
        .unwrap()
        .keys()
        .filter_map(|k| k.as_str())
        .collect();
    assert_eq!(keys, ["environments", "freezes"], "{file}");
    // The policy loader grants no one anything, and keeps the reason as typed.
    let known = ["dev", "qa", "prod"]
        .into_iter()
        .map(EnvName::new)
        .collect();
    let policy = promoter::policy::parse("policies/freeze-qa.yaml", file.as_bytes(), &known)
        .unwrap_or_else(|e| panic!("{e:?}\n{file}"));
    assert!(policy.requesters.is_empty(), "{file}");
    assert_eq!(policy.freezes[0].reason.as_deref(), Some(reason.as_str()));
    // The MR shows the channel on one line, inert.
    assert!(
        !freeze.description.contains('\u{2028}'),
        "{}",
        freeze.description
    );
    assert!(
        !freeze
            .description
            .lines()
            .any(|l| l.starts_with("requesters")),
        "{}",
        freeze.description
    );
}
