#!/usr/bin/env python3
"""Which jobs of the monorepo's GitLab CI run for the pipelines promoter causes.

Evaluates `workflow:rules` and each job's `rules` (if / changes / when, `extends`
followed) as GitLab documents them, for a handful of pipelines: a promotion branch's
first push, its merge request, a policy branch's merge request, and the ordinary
pipelines that must keep working (a release on main, a feature MR). Only the
expression forms these files use are understood; anything else fails loudly, so a
new rule cannot slip past unchecked. `changes:` on a branch's first push is true for
every pattern, as GitLab evaluates it (gitlab-org/gitlab#293645).

Usage: check-ci-rules.py .gitlab-ci.yml app/*/.gitlab-ci.yml charts/*/.gitlab-ci.yml
"""
import re
import sys

import yaml

RESERVED = {"stages", "include", "workflow", "variables", "default", "image", "services",
            "cache", "before_script", "after_script"}
ALL_CHANGED = object()  # a new branch's first push: every `changes:` pattern matches


def die(message):
    print(f"check-ci-rules: {message}", file=sys.stderr)
    sys.exit(1)


def load(paths):
    config = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
        for key, value in doc.items():
            if key in config and key not in ("stages",):
                die(f"{path}: {key} is defined twice")
            config[key] = value
    return config


def glob_regex(pattern):
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def changed(patterns, files):
    if files is ALL_CHANGED:
        return True
    return any(glob_regex(p).match(f) for p in patterns for f in files)


def term(text, env):
    text = text.strip()
    m = re.fullmatch(r'\$(\w+)\s*(==|!=)\s*(?:"([^"]*)"|\$(\w+))', text)
    if m:
        left = env.get(m.group(1))
        right = m.group(3) if m.group(3) is not None else env.get(m.group(4))
        return (left == right) == (m.group(2) == "==")
    m = re.fullmatch(r"\$(\w+)\s*=~\s*/(.*)/", text)
    if m:
        value = env.get(m.group(1))
        return value is not None and re.search(m.group(2).replace(r"\/", "/"), value) is not None
    m = re.fullmatch(r"\$(\w+)", text)
    if m:
        return bool(env.get(m.group(1)))
    die(f"cannot evaluate the rule expression {text!r}")


def condition(expression, env):
    return all(term(part, env) for part in expression.split("&&"))


def first_match(rules, env, files):
    """The first rule whose `if` and `changes` hold, or None."""
    for rule in rules:
        unknown = set(rule) - {"if", "changes", "when", "variables"}
        if unknown:
            die(f"rule keys {sorted(unknown)} are not understood here")
        if "if" in rule and not condition(rule["if"], env):
            continue
        if "changes" in rule and not changed(rule["changes"], files):
            continue
        return rule
    return None


def rules_of(config, name, seen=()):
    job = config[name]
    if "rules" in job:
        return job["rules"]
    parents = job.get("extends", [])
    for parent in [parents] if isinstance(parents, str) else parents:
        if parent in seen:
            die(f"extends cycle at {name}")
        found = rules_of(config, parent, seen + (name,))
        if found is not None:
            return found
    return None


def pipeline(config, env, files):
    """The names of the jobs in the pipeline, or None when workflow creates none."""
    env = dict(env)
    workflow = config.get("workflow", {}).get("rules")
    if workflow is not None:
        rule = first_match(workflow, env, files)
        if rule is None or rule.get("when") == "never":
            return None
        env.update(rule.get("variables", {}))
    jobs = set()
    for name, job in config.items():
        if name in RESERVED or name.startswith(".") or not isinstance(job, dict):
            continue
        rules = rules_of(config, name)
        if rules is None:
            jobs.add(name)
            continue
        rule = first_match(rules, env, files)
        if rule is not None and rule.get("when", "on_success") != "never":
            jobs.add(name)
    for name in jobs:
        for need in config[name].get("needs", []):
            need = need if isinstance(need, str) else need["job"]
            if need not in jobs:
                die(f"{name} needs {need}, which is not in the same pipeline")
    return jobs


def branch_push(branch, default="main"):
    return {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": branch,
            "CI_DEFAULT_BRANCH": default}


def merge_request(source, default="main"):
    return {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "7",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": source, "CI_DEFAULT_BRANCH": default}


def main(paths):
    config = load(paths)
    promotion = ["clusters/prod/calculator/client/values.yaml",
                 "clusters/prod/calculator/client/release.yml"]
    gitops = {"promoter:check", "clusters:render"}
    builds = {n for n in config if re.search(r":(build|release|test)$", n)}
    cases = [
        ("a promotion branch's first push", branch_push("promoter/prod/client"), ALL_CHANGED, None),
        ("a train branch's first push", branch_push("promoter/qa/train"), ALL_CHANGED, None),
        ("a policy branch's first push", branch_push("promoter-policy/freeze-prod"), ALL_CHANGED, None),
        ("a promotion MR", merge_request("promoter/prod/client"), promotion, gitops),
        ("a policy MR", merge_request("promoter-policy/freeze-prod"), ["policies/freeze-prod.yaml"], gitops),
        ("a promotion MR someone also pushed app code to",
         merge_request("promoter/prod/client"), promotion + ["app/client/src/main.rs"], gitops),
    ]
    failures = []
    for what, env, files, want in cases:
        got = pipeline(config, env, files)
        if got != want:
            failures.append(f"{what}: jobs {sorted(got) if got is not None else 'no pipeline'}, "
                            f"want {sorted(want) if want is not None else 'no pipeline'}")
    # The pipelines that must keep working.
    release = pipeline(config, branch_push("main"), ["app/client/.version", "app/client/src/main.rs"])
    if release is None or not {"client:test", "client:build", "client:release"} <= release:
        failures.append(f"a client release on main: jobs {sorted(release or [])}")
    feature = pipeline(config, merge_request("fix-parser"), ["app/maths/src/lib.rs"])
    if feature is None or not {"maths-api:test", "client:test"} <= feature or feature & {"maths-api:release", "client:release"}:
        failures.append(f"a feature MR: jobs {sorted(feature or [])}")
    if not builds:
        failures.append("no build, test or release job found: are the files right?")
    for failure in failures:
        print(f"check-ci-rules: {failure}", file=sys.stderr)
    if failures:
        sys.exit(1)
    print(f"check-ci-rules: {len(cases) + 2} pipelines as intended ({len(config)} keys read)")


if __name__ == "__main__":
    main(sys.argv[1:])
