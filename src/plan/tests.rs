//! The plan on the sample's chain (dev -> qa -> prod): decisions and reasons at chosen
//! instants, with history given as data.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::policy::gate;
use crate::testkit::{self, commit, values_path};

const DEPLOYED: [(&str, &str, &str); 3] = [
    ("dev", "api", "1.3.0"),
    ("qa", "api", "1.2.1"),
    ("prod", "api", "1.2.0"),
];

fn snapshot(deployed: &[(&str, &str, &str)]) -> Snapshot {
    let snapshot = Snapshot::load(&testkit::tree(deployed));
    assert!(snapshot.findings.is_empty(), "{:?}", snapshot.findings);
    snapshot
}

/// History in which each deployed tag landed at the given instant.
fn history(landed: &[(&str, &str, &str, &str)]) -> TagHistory {
    let mut h = TagHistory::new();
    let mut sorted = landed.to_vec();
    sorted.sort_by_key(|l| l.3);
    for (n, (env, service, tag, at)) in sorted.iter().enumerate() {
        h.record(
            &commit(n as u32 + 1, at),
            &values_path(env, service),
            Some(tag),
        );
    }
    h
}

fn standard_history(dev_landed: &str) -> TagHistory {
    history(&[
        ("prod", "api", "1.2.0", "2026-10-01T00:00:00Z"),
        ("qa", "api", "1.2.1", "2026-10-10T00:00:00Z"),
        ("dev", "api", "1.3.0", dev_landed),
    ])
}

fn run(snapshot: &Snapshot, history: &TagHistory, requests: &[Request], now: &str) -> Plan {
    let open = BTreeMap::new();
    plan(
        snapshot,
        Facts::offline(history, &open),
        requests,
        now.parse().unwrap(),
    )
}

fn decision<'a>(plan: &'a Plan, to: &str) -> &'a Decision {
    plan.decision(&ServiceName::new("api"), &EnvName::new(to))
        .unwrap()
}

#[test]
fn a_new_dev_tag_soaks_one_hour_before_qa() {
    let s = snapshot(&DEPLOYED);
    let h = standard_history("2026-11-24T10:00:00Z");
    let early = run(&s, &h, &[], "2026-11-24T10:30:00Z");
    let qa = decision(&early, "qa");
    assert_eq!(qa.decision, Verdict::Blocked);
    assert_eq!(
        qa.reasons,
        [
            "soak: has run 30m in dev, needs 1h (policies/qa.yaml): eligible at 2026-11-24T11:00:00+00:00"
        ]
    );
    assert_eq!(
        (
            qa.current.as_ref().unwrap().as_str(),
            qa.candidate.as_ref().unwrap().as_str()
        ),
        ("1.2.1", "1.3.0")
    );

    let later = run(&s, &h, &[], "2026-11-24T12:00:00Z");
    let qa = decision(&later, "qa");
    assert_eq!(qa.decision, Verdict::Promote);
    assert!(
        qa.reasons
            .contains(&"soak: ran 2h in dev (needs 1h)".to_string()),
        "{:?}",
        qa.reasons
    );
}

#[test]
fn prod_takes_qa_tag_after_a_day() {
    let s = snapshot(&DEPLOYED);
    let h = standard_history("2026-11-24T10:00:00Z");
    let p = run(&s, &h, &[], "2026-11-24T12:00:00Z");
    let prod = decision(&p, "prod");
    assert_eq!(prod.decision, Verdict::Promote, "{:?}", prod.reasons);
    assert_eq!(prod.from, EnvName::new("qa"));
    assert_eq!(prod.candidate, Some(Tag::new("1.2.1")));
}

#[test]
fn equal_tags_are_up_to_date() {
    let s = snapshot(&[
        ("dev", "api", "1.2.0"),
        ("qa", "api", "1.2.0"),
        ("prod", "api", "1.2.0"),
    ]);
    let p = run(&s, &TagHistory::unknown(), &[], "2026-11-24T12:00:00Z");
    assert_eq!(decision(&p, "qa").decision, Verdict::UpToDate);
    assert_eq!(decision(&p, "qa").reasons, ["qa already runs 1.2.0"]);
    assert_eq!(p.promotions.len(), 2, "dev has no upstream: no row");
}

#[test]
fn the_year_end_freeze_blocks_prod_from_its_first_to_its_last_second() {
    let s = snapshot(&DEPLOYED);
    let h = standard_history("2026-11-24T10:00:00Z");
    let verdict = |now: &str| decision(&run(&s, &h, &[], now), "prod").decision;
    assert_eq!(verdict("2026-12-19T23:59:59Z"), Verdict::Promote);
    assert_eq!(verdict("2026-12-20T00:00:00Z"), Verdict::Blocked);
    assert_eq!(verdict("2027-01-03T23:59:59Z"), Verdict::Blocked);
    assert_eq!(verdict("2027-01-04T00:00:00Z"), Verdict::Promote);
    let frozen = run(&s, &h, &[], "2026-12-25T12:00:00Z");
    assert_eq!(
        decision(&frozen, "prod").reasons,
        [
            "freeze: frozen by year-end (every year 12-20 to 01-03, Europe/London) (policies/prod.yaml)"
        ]
    );
    assert_eq!(
        decision(&frozen, "qa").decision,
        Verdict::Promote,
        "the freeze is prod's only"
    );
}

fn request(to: &str, who: &str, reason: Option<&str>) -> Request {
    Request {
        service: ServiceName::new("api"),
        to: EnvName::new(to),
        tag: None,
        requested_by: who.into(),
        reason: reason.map(str::to_string),
        rollback: false,
        requested_at: None,
    }
}

#[test]
fn a_request_does_not_waive_a_freeze_unless_break_glass_with_a_reason() {
    let s = snapshot(&DEPLOYED);
    let h = standard_history("2026-11-24T10:00:00Z");
    let at = "2026-12-25T12:00:00Z";
    assert_eq!(
        decision(
            &run(&s, &h, &[request("prod", "bob", Some("hotfix"))], at),
            "prod"
        )
        .decision,
        Verdict::Blocked
    );
    assert_eq!(
        decision(&run(&s, &h, &[request("prod", "alice", None)], at), "prod").decision,
        Verdict::Blocked
    );
    let glass = run(
        &s,
        &h,
        &[request("prod", "alice", Some("hotfix for INC-42"))],
        at,
    );
    let prod = decision(&glass, "prod");
    assert_eq!(prod.decision, Verdict::Promote);
    assert_eq!(prod.requested_by.as_deref(), Some("alice"));
    assert!(
        prod.reasons
            .iter()
            .any(|r| r.contains("waived by break-glass alice")),
        "{:?}",
        prod.reasons
    );
}

#[test]
fn a_major_bump_needs_an_explicit_request() {
    let s = snapshot(&[
        ("dev", "api", "2.0.0"),
        ("qa", "api", "2.0.0"),
        ("prod", "api", "1.9.0"),
    ]);
    let h = history(&[
        ("prod", "api", "1.9.0", "2026-10-01T00:00:00Z"),
        ("dev", "api", "2.0.0", "2026-10-05T00:00:00Z"),
        ("qa", "api", "2.0.0", "2026-10-10T00:00:00Z"),
    ]);
    let auto = run(&s, &h, &[], "2026-11-24T12:00:00Z");
    assert_eq!(decision(&auto, "prod").decision, Verdict::Blocked);
    assert_eq!(
        decision(&auto, "prod").reasons,
        [
            "semver: major bump (1.9.0 -> 2.0.0) needs an explicit request: the policy allows minor bumps automatically"
        ]
    );
    let asked = run(
        &s,
        &h,
        &[request("prod", "bob", None)],
        "2026-11-24T12:00:00Z",
    );
    assert_eq!(decision(&asked, "prod").decision, Verdict::Promote);
}

#[test]
fn downgrades_are_blocked_and_unknown_landing_blocks_soak() {
    let s = snapshot(&[
        ("dev", "api", "1.0.0"),
        ("qa", "api", "1.1.0"),
        ("prod", "api", "1.1.0"),
    ]);
    let p = run(&s, &TagHistory::unknown(), &[], "2026-11-24T12:00:00Z");
    let qa = decision(&p, "qa");
    assert_eq!(qa.decision, Verdict::Blocked);
    assert!(
        qa.reasons[0].starts_with("order: 1.0.0 is not newer than 1.1.0"),
        "{:?}",
        qa.reasons
    );
    assert!(
        qa.reasons[1].starts_with("soak: soak of 1h in dev cannot be measured"),
        "{:?}",
        qa.reasons
    );
}

#[test]
fn a_service_missing_upstream_or_without_tag_is_blocked_with_reason() {
    let mut tree = testkit::tree(&[("qa", "api", "1.0.0"), ("dev", "web", "")]);
    tree.insert(&values_path("qa", "web"), testkit::values("web", "1.0.0"));
    tree.insert(
        "clusters/qa/apps/web/release.yml",
        testkit::release("web", "1.0.0"),
    );
    let s = Snapshot::load(&tree);
    let p = run(&s, &TagHistory::unknown(), &[], "2026-11-24T12:00:00Z");
    assert_eq!(
        decision(&p, "qa").reasons,
        ["dev has no api to promote from"]
    );
    let web = p
        .decision(&ServiceName::new("web"), &EnvName::new("qa"))
        .unwrap();
    assert_eq!(
        web.reasons,
        ["dev has no tag for web (clusters/dev/apps/web/values.yaml)"]
    );
}

#[test]
fn open_limit_counts_other_open_promotions() {
    let mut tree = testkit::tree(&DEPLOYED);
    tree.insert("policies/limits.yaml", "max_open_promotions: 1\n");
    let s = Snapshot::load(&tree);
    let h = standard_history("2026-11-24T10:00:00Z");
    let mut open = BTreeMap::new();
    open.insert(
        EnvName::new("qa"),
        BTreeSet::from([ServiceName::new("other")]),
    );
    let p = plan(
        &s,
        Facts::offline(&h, &open),
        &[],
        "2026-11-24T12:00:00Z".parse().unwrap(),
    );
    assert_eq!(decision(&p, "qa").decision, Verdict::Blocked);
    open.insert(
        EnvName::new("qa"),
        BTreeSet::from([ServiceName::new("api"), ServiceName::new("other")]),
    );
    let p = plan(
        &s,
        Facts::offline(&h, &open),
        &[],
        "2026-11-24T12:00:00Z".parse().unwrap(),
    );
    assert_eq!(
        decision(&p, "qa").decision,
        Verdict::Promote,
        "its own MR is updated, not added"
    );
}

#[test]
fn json_has_the_fixed_shape() {
    let s = snapshot(&DEPLOYED);
    let h = standard_history("2026-11-24T10:00:00Z");
    let p = run(&s, &h, &[], "2026-11-24T10:30:00Z");
    let v: serde_json::Value = serde_json::from_str(&render::json(&p)).unwrap();
    assert_eq!(v["generated_at"], "2026-11-24T10:30:00Z");
    let first = &v["promotions"][0];
    for key in [
        "service",
        "from",
        "to",
        "current",
        "candidate",
        "decision",
        "reasons",
    ] {
        assert!(first.get(key).is_some(), "{key} missing in {first}");
    }
    assert_eq!(first["decision"], "blocked");
    assert_eq!(first["to"], "qa");
}

#[test]
fn table_groups_by_service_with_ages() {
    let s = snapshot(&DEPLOYED);
    let h = standard_history("2026-11-24T10:00:00Z");
    let p = run(&s, &h, &[], "2026-11-24T12:00:00Z");
    let text = render::table(&p, &s, &h);
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "SERVICE  dev         qa               prod"
    );
    assert_eq!(
        lines.next().unwrap(),
        "api      1.3.0 (2h)  1.2.1 (45d 12h)  1.2.0 (54d 12h)"
    );
    assert!(
        text.contains("api qa <- dev: promote (1.2.1 -> 1.3.0)"),
        "{text}"
    );
}

#[test]
fn a_broken_policy_file_blocks_every_promotion() {
    let mut tree = testkit::tree(&DEPLOYED);
    tree.insert("policies/prod.yaml", "soak: 24h\nfreezes: [oops\n");
    let s = Snapshot::load(&tree);
    let h = standard_history("2026-11-24T10:00:00Z");
    let p = run(&s, &h, &[], "2026-11-24T12:00:00Z");
    for to in ["qa", "prod"] {
        assert_eq!(decision(&p, to).decision, Verdict::Blocked);
        assert_eq!(
            decision(&p, to).reasons,
            [
                "policy: policies/prod.yaml invalid: every promotion waits until it is fixed (run `promoter check`)"
            ]
        );
    }
}

/// The sample with qa's policy `policy` (after `environments: [qa]`) and dev's Flux status
/// named.
fn health_gated(policy: &str) -> Snapshot {
    let mut tree = testkit::tree(&DEPLOYED);
    tree.insert("policies/qa.yaml", format!("environments: [qa]\n{policy}"));
    tree.insert(
        "environments/dev.yaml",
        "name: dev\npath: clusters/dev\nhealth:\n  statuses: [kustomization/apps/dev]\n",
    );
    Snapshot::load(&tree)
}

#[test]
fn health_and_image_gates_use_the_gathered_facts() {
    let s = health_gated("soak: 1h\nrequire_health: true\nrequire_image: true\n");
    assert!(s.findings.is_empty(), "{:?}", s.findings);
    let h = standard_history("2026-11-24T10:00:00Z");
    let open = BTreeMap::new();
    let key = (EnvName::new("qa"), ServiceName::new("api"));
    let image = "registry.example.com/team/api:1.3.0".to_string();
    let at = "2026-11-24T12:00:00Z".parse().unwrap();

    let offline = plan(&s, Facts::offline(&h, &open), &[], at);
    assert_eq!(
        decision(&offline, "qa").decision,
        Verdict::Promote,
        "not checked offline"
    );

    let healthy = BTreeMap::from([(
        key.clone(),
        Health::Healthy {
            sha: "abcdef0123".into(),
            status: "kustomization/apps/dev".into(),
            since: None,
        },
    )]);
    let missing = BTreeMap::from([(image.clone(), ImageFact::Missing)]);
    let facts = Facts {
        health: Some(&healthy),
        images: Some(&missing),
        ..Facts::offline(&h, &open)
    };
    let p = plan(&s, facts, &[], at);
    assert_eq!(decision(&p, "qa").decision, Verdict::Blocked);
    assert_eq!(
        decision(&p, "qa").reasons,
        [
            "image: registry.example.com/team/api:1.3.0 is not in the registry: Flux could not pull it"
        ]
    );

    let present = BTreeMap::from([(image, ImageFact::Present { digest: None })]);
    let failed = BTreeMap::from([(
        key,
        Health::Failed {
            sha: "abcdef0123".into(),
            status: "kustomization/apps/dev".into(),
            description: None,
        },
    )]);
    let facts = Facts {
        health: Some(&failed),
        images: Some(&present),
        ..Facts::offline(&h, &open)
    };
    let p = plan(&s, facts, &[], at);
    assert_eq!(
        decision(&p, "qa").reasons,
        [
            "soak: not soaking: Flux has not reported dev healthy with 1.3.0, and 1h (policies/qa.yaml) counts from its first success [clock: Flux's first success]",
            "health: Flux reports dev failed at abcdef01 (kustomization/apps/dev)"
        ]
    );
    let facts = Facts {
        health: Some(&healthy),
        images: Some(&present),
        ..Facts::offline(&h, &open)
    };
    assert_eq!(
        decision(&plan(&s, facts, &[], at), "qa").decision,
        Verdict::Promote
    );
}

#[test]
fn with_health_required_soak_counts_from_flux_first_success() {
    let s = health_gated("soak: 1h\nrequire_health: true\n");
    // Merged at 10:00, but Flux first reported it healthy at 11:30.
    let h = standard_history("2026-11-24T10:00:00Z");
    let open = BTreeMap::new();
    let key = (EnvName::new("qa"), ServiceName::new("api"));
    let healthy = |since: Option<&str>| {
        BTreeMap::from([(
            key.clone(),
            Health::Healthy {
                sha: "abcdef0123".into(),
                status: "kustomization/apps/dev".into(),
                since: since.map(|t| t.parse().unwrap()),
            },
        )])
    };
    let reported = healthy(Some("2026-11-24T11:30:00Z"));
    let facts = Facts {
        health: Some(&reported),
        ..Facts::offline(&h, &open)
    };
    let noon = plan(&s, facts, &[], "2026-11-24T12:00:00Z".parse().unwrap());
    assert_eq!(decision(&noon, "qa").decision, Verdict::Blocked);
    assert_eq!(
        decision(&noon, "qa").reasons,
        [
            "soak: has run 30m in dev, needs 1h (policies/qa.yaml): eligible at 2026-11-24T12:30:00+00:00 [clock: Flux's first success in dev (abcdef01 is healthy now)]"
        ]
    );
    let later = plan(&s, facts, &[], "2026-11-24T12:31:00Z".parse().unwrap());
    assert_eq!(decision(&later, "qa").decision, Verdict::Promote);

    // Never green: not soaking at all, however long ago the merge was.
    let never = BTreeMap::from([(key.clone(), Health::NotReported { commits: 3 })]);
    let facts = Facts {
        health: Some(&never),
        ..Facts::offline(&h, &open)
    };
    let p = plan(&s, facts, &[], "2026-11-30T12:00:00Z".parse().unwrap());
    assert!(
        decision(&p, "qa").reasons[0]
            .starts_with("soak: not soaking: Flux has not reported dev healthy with 1.3.0"),
        "{:?}",
        decision(&p, "qa").reasons
    );

    // Offline (no facts): the merge clock, and the reason says so.
    let offline = run(&s, &h, &[], "2026-11-24T12:00:00Z");
    let soak = decision(&offline, "qa")
        .gates
        .iter()
        .find(|g| g.gate == gate::Gate::Soak)
        .unwrap();
    assert!(
        soak.message
            .ends_with("[clock: the merge; reconcile counts from Flux's first success]"),
        "{}",
        soak.message
    );
}

#[test]
fn a_hold_blocks_the_held_tag_downstream_too() {
    let mut tree = testkit::tree(&DEPLOYED);
    tree.insert(
        "policies/hold-dev-api.yaml",
        "holds:\n  - service: api\n    env: dev\n    tag: \"1.2.1\"\n    by: \"gitlab:alice\"\n    because: \"bad\"\n    since: 2026-11-20T00:00:00Z\n",
    );
    let s = Snapshot::load(&tree);
    assert!(s.findings.is_empty(), "{:?}", s.findings);
    let h = standard_history("2026-11-01T00:00:00Z");
    let p = run(&s, &h, &[], "2026-11-24T12:00:00Z");
    // qa's candidate 1.3.0 is newer than the held 1.2.1 (held in dev, upstream of qa).
    assert_eq!(decision(&p, "qa").decision, Verdict::Blocked);
    assert!(
        decision(&p, "qa").reasons[0].starts_with(
            "hold: api 1.2.1 held in dev by gitlab:alice since 2026-11-20 00:00 UTC: bad"
        ),
        "{:?}",
        decision(&p, "qa").reasons
    );
    // prod's candidate is qa's 1.2.1: the held tag itself.
    assert!(
        decision(&p, "prod")
            .reasons
            .iter()
            .any(|r| r.starts_with("hold: api 1.2.1 held in dev")),
        "{:?}",
        decision(&p, "prod").reasons
    );
}

#[test]
fn replanning_only_where_policy_reads_outside_facts_equals_planning_everything_again() {
    let s = health_gated("soak: 1h\nrequire_health: true\nrequire_image: true\n");
    let h = standard_history("2026-11-24T10:00:00Z");
    let open = BTreeMap::new();
    let now = "2026-11-30T12:00:00Z".parse().unwrap();
    let requests = [request("prod", "alice", Some("hotfix"))];
    let preliminary = plan(&s, Facts::offline(&h, &open), &requests, now);
    let never = BTreeMap::from([(
        (EnvName::new("qa"), ServiceName::new("api")),
        Health::NotReported { commits: 3 },
    )]);
    let missing = BTreeMap::from([(
        "registry.example.com/api:1.3.0".to_string(),
        ImageFact::Missing,
    )]);
    let facts = Facts {
        health: Some(&never),
        images: Some(&missing),
        ..Facts::offline(&h, &open)
    };
    let whole = plan(&s, facts, &requests, now);
    assert_ne!(
        decision(&whole, "qa"),
        decision(&preliminary, "qa"),
        "the facts change qa's decision"
    );
    assert_eq!(replan(preliminary, &s, facts, &requests, now), whole);
}
