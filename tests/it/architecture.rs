//! The floors of STYLE.md and docs/architecture.md, kept by tests: the pure core (model,
//! image, yaml, repo, policy, plan, promotion, history, dashboard, the chat command parser,
//! text) uses no edge or wiring, no async runtime, git, HTTP, file system (outside repo's
//! directory reader), process or clock; edges use no wiring; no two files use each other in a
//! circle. The checker is [`imports`]; its own tests run it on a small synthetic tree.

mod imports;

use std::collections::BTreeMap;

use imports::{cycles, floor_violations, imports, io_violations, read_src, server_violations};

fn src() -> BTreeMap<String, String> {
    read_src(&crate::support::project_root().join("src"))
}

#[test]
fn the_core_does_no_io_but_reading_a_tree() {
    let files = src();
    assert!(files.len() > 50, "the sources are where they should be");
    let violations = io_violations(&files);
    assert!(
        violations.is_empty(),
        "core files use I/O, edge crates or the clock:\n{}",
        violations.join("\n")
    );
}

#[test]
fn imports_go_down_the_floors_only() {
    let violations = floor_violations(&imports(&src()));
    assert!(
        violations.is_empty(),
        "imports against the floors (tests/it/architecture/imports.rs has the table):\n{}",
        violations.join("\n")
    );
}

#[test]
fn no_two_files_use_each_other_in_a_circle() {
    let circles = cycles(&imports(&src()));
    assert!(
        circles.is_empty(),
        "files that use each other in a circle:\n{}",
        circles.join("\n")
    );
}

/// The server only verifies and decodes: every trigger goes through the daemon's one loop.
#[test]
fn the_server_uses_no_reconcile_forge_git_registry_or_cli() {
    let violations = server_violations(&imports(&src()));
    assert!(
        violations.is_empty(),
        "the server reaches past its floor:\n{}",
        violations.join("\n")
    );
}

/// A small tree with one of each violation, and what the checker says about it.
mod checker {
    use std::collections::BTreeMap;

    use super::imports::{
        Floor, cycles, floor_of, floor_violations, imports, io_violations, server_violations,
    };

    fn tree(files: &[(&str, &str)]) -> BTreeMap<String, String> {
        files
            .iter()
            .map(|(f, t)| (f.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn paths_resolve_to_files_through_groups_super_and_code() {
        let files = tree(&[
            ("lib.rs", "pub mod plan;\npub mod repo;\npub mod model;\n"),
            ("model.rs", ""),
            ("repo/mod.rs", "pub mod tree;\n"),
            ("repo/tree.rs", ""),
            (
                "plan/mod.rs",
                "use crate::{model::Tag, repo::{self, tree::Tree}};\nfn f() { super::super::x(); }\n",
            ),
            (
                "plan/render.rs",
                "use super::{\n    Plan,\n};\n// crate::reconcile in a comment\nfn g() { crate::repo::tree::read(); }\n#[cfg(test)]\nmod tests { use crate::model; }\n",
            ),
        ]);
        let graph = imports(&files);
        let used = |f: &str| graph[f].iter().cloned().collect::<Vec<_>>();
        assert_eq!(
            used("plan/mod.rs"),
            ["model.rs", "repo/mod.rs", "repo/tree.rs"]
        );
        assert_eq!(used("plan/render.rs"), ["plan/mod.rs", "repo/tree.rs"]);
        assert_eq!(floor_of("chatops/command.rs"), Some(Floor::Core));
        assert_eq!(floor_of("chatops/slack.rs"), Some(Floor::Edge));
    }

    #[test]
    fn each_rule_catches_its_violation() {
        let files = tree(&[
            ("lib.rs", ""),
            (
                "plan/mod.rs",
                "use crate::reconcile::Outcome;\nuse crate::git;\n",
            ),
            ("reconcile/mod.rs", ""),
            ("reconcile/act.rs", "use super::train::ensure;\n"),
            ("reconcile/train.rs", "use super::act::action;\n"),
            ("git/mod.rs", "use crate::cli::run;\n"),
            ("cli/mod.rs", ""),
            ("server/chat.rs", "use crate::reconcile::Reconciler;\n"),
            ("repo/tree.rs", "fn read() { std::fs::read(\"x\"); }\n"),
            (
                "policy/gate.rs",
                "fn f() { let _ = std::fs::read(\"x\"); let _ = Utc::now(); }\n",
            ),
        ]);
        let graph = imports(&files);
        assert_eq!(
            floor_violations(&graph),
            [
                "git/mod.rs (Edge) uses cli/mod.rs (Some(Wiring))",
                "plan/mod.rs (Core) uses git/mod.rs (Some(Edge))",
                "plan/mod.rs (Core) uses reconcile/mod.rs (Some(Wiring))",
            ]
        );
        assert_eq!(
            cycles(&graph),
            ["reconcile/act.rs -> reconcile/train.rs, reconcile/train.rs -> reconcile/act.rs"]
        );
        assert_eq!(
            server_violations(&graph),
            ["server/chat.rs uses reconcile/mod.rs"]
        );
        assert_eq!(
            io_violations(&files),
            ["policy/gate.rs:1: std::fs", "policy/gate.rs:1: Utc::now"]
        );
    }

    #[test]
    fn a_file_on_no_floor_is_named() {
        let files = tree(&[("lib.rs", ""), ("newpart/mod.rs", "")]);
        assert_eq!(
            floor_violations(&imports(&files)),
            ["newpart/mod.rs: on no floor; add it to FLOORS"]
        );
    }
}
