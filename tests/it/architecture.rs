//! The dependency rule of STYLE.md: the pure core (model, image, yaml, repo, policy, plan,
//! promotion, history, dashboard, the chat command parser, text) uses no async runtime, git, HTTP or process crates and never reads the clock.

use std::path::Path;

const CORE: [&str; 11] = [
    "src/model.rs",
    "src/image.rs",
    "src/yaml",
    "src/repo",
    "src/policy",
    "src/plan",
    "src/promotion",
    "src/history",
    "src/dashboard",
    "src/chatops/command.rs",
    "src/text",
];
const FORBIDDEN: [&str; 9] = [
    "tokio",
    "git2",
    "reqwest",
    "axum",
    "gitlab::",
    "std::process",
    "Utc::now",
    "SystemTime::now",
    "Instant::now",
];

fn rust_files(path: &Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            rust_files(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

#[test]
fn the_core_does_no_io_but_reading_a_tree() {
    let root = crate::support::project_root();
    let mut files = Vec::new();
    for part in CORE {
        rust_files(&root.join(part), &mut files);
    }
    assert!(files.len() > 10, "the core is where it should be");
    let mut violations = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN {
                if code.contains(word) {
                    violations.push(format!(
                        "{}:{}: {word}",
                        file.strip_prefix(&root).unwrap().display(),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "core files use edge crates or the clock:\n{}",
        violations.join("\n")
    );
}
