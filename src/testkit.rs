//! Builders for tests of the pure core: a repository tree in memory shaped like the sample
//! (dev -> qa -> prod with the sample's policies), services at given tags, and history.

use crate::model::Commit;
use crate::repo::tree::MemTree;

/// The sample's environments and policies (see environments/ and policies/ at the root).
pub const ENVIRONMENTS: [(&str, &str); 3] = [
    (
        "environments/dev.yaml",
        "name: dev\npath: clusters/dev\ntimezone: Europe/London\n",
    ),
    (
        "environments/qa.yaml",
        "name: qa\npath: clusters/qa\npromotes_from: dev\nschedule: \"0 0 2 * * *\"\ntimezone: Europe/London\nauto_merge: true\napprovals_required: 1\n",
    ),
    (
        "environments/prod.yaml",
        "name: prod\npath: clusters/prod\npromotes_from: qa\nschedule: \"0 0 9 * * Tue,Thu\"\ntimezone: Europe/London\nauto_merge: false\napprovals_required: 2\n",
    ),
];

/// Policies of the sample.
pub const POLICIES: [(&str, &str); 2] = [
    ("policies/qa.yaml", "environments: [qa]\nsoak: 1h\n"),
    (
        "policies/prod.yaml",
        "environments: [prod]\nsoak: 24h\nsemver: {max_bump: minor}\nfreezes:\n  - name: year-end\n    yearly: {from: \"12-20\", to: \"01-03\"}\nbreak_glass: [alice]\n",
    ),
];

/// The image repository of a test service.
pub fn repository(service: &str) -> String {
    format!("registry.example.com/team/{service}")
}

/// A values.yaml in the sample's layout.
pub fn values(service: &str, tag: &str) -> String {
    format!(
        "appName: {service}\nreplicaCount: 1\nimage:\n  name: {}\n  tag: {tag}\n",
        repository(service)
    )
}

/// A release.yml as `helm template` writes it.
pub fn release(service: &str, tag: &str) -> String {
    format!(
        "---\n# Source: {service}/templates/service.yaml\nkind: Service\nmetadata:\n  name: {service}\n---\n# Source: {service}/templates/deployment.yaml\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: {service}\n          image: \"{}:{tag}\"\n",
        repository(service)
    )
}

/// The path of a service's values.yaml in an environment.
pub fn values_path(env: &str, service: &str) -> String {
    format!("clusters/{env}/apps/{service}/values.yaml")
}

/// A sample tree with `(env, service, tag)` deployed.
pub fn tree(deployed: &[(&str, &str, &str)]) -> MemTree {
    let mut tree = MemTree::new();
    for (path, text) in ENVIRONMENTS.iter().chain(POLICIES.iter()) {
        tree.insert(path, *text);
    }
    for (env, service, tag) in deployed {
        tree.insert(&values_path(env, service), values(service, tag));
        tree.insert(
            &format!("clusters/{env}/apps/{service}/release.yml"),
            release(service, tag),
        );
    }
    tree
}

/// A commit at an RFC 3339 instant.
pub fn commit(n: u32, at: &str) -> Commit {
    crate::repo::history::commit(n, at)
}
