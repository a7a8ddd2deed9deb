//! Every image field of the shared corpus (real values.yaml files and manifests from public
//! charts, `../shared/corpus/MANIFEST.tsv`) edited with two new values, one of them `2.10`,
//! which a careless writer turns into a float. Each edit must change only the value (and its
//! quotes) on the row's line, read back as the new string, and leave every other byte alone.
//! (`../shared/tools/corpus-check` checks the same through the binary with PyYAML.)

use std::path::PathBuf;

use promoter::yaml::{self, YamlPath};

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("PROMOTER_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::support::project_root().join("../shared/corpus"));
    if dir.join("MANIFEST.tsv").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must have the corpus at {}",
        dir.display()
    );
    eprintln!(
        "corpus not found at {}: set PROMOTER_CORPUS to run the corpus tests",
        dir.display()
    );
    None
}

struct Row {
    file: String,
    doc: usize,
    path: String,
    kind: String,
    value: String,
    line: usize,
    note: String,
}

fn rows(dir: &std::path::Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let get = |name: &str| f.get(col(name)).copied().unwrap_or("").to_string();
            Row {
                file: get("file"),
                doc: get("doc_index").parse().unwrap(),
                path: get("yaml_path"),
                kind: get("kind"),
                value: get("value"),
                line: get("line").parse().unwrap(),
                note: get("note"),
            }
        })
        .collect()
}

fn new_value(row: &Row, tag: &str) -> String {
    if row.kind == "tag" {
        return tag.to_string();
    }
    let base = row.value.split('@').next().unwrap();
    let repo = match base.rsplit_once(':') {
        Some((repo, t)) if !t.contains('/') => repo,
        _ => base,
    };
    format!("{repo}:{tag}")
}

#[test]
fn every_corpus_image_field_is_edited_exactly() {
    let Some(dir) = corpus() else { return };
    let rows = rows(&dir);
    assert!(rows.len() > 300, "the corpus has {} rows", rows.len());
    let mut failures = Vec::new();
    let mut edits = 0;
    for row in &rows {
        let bytes = std::fs::read(dir.join(&row.file)).unwrap();
        let src = yaml::decode(&bytes).unwrap();
        let path: YamlPath = row.path.parse().unwrap();
        for tag in ["9.8.7-promoted", "2.10"] {
            let value = new_value(row, tag);
            let result = yaml::set_scalar(src, row.doc, &path, &value);
            if row.note.contains("alias") {
                match result {
                    Err(e)
                        if e.to_string().contains("alias") || e.to_string().contains("anchor") => {}
                    other => {
                        failures.push(format!("{}: alias row not refused: {other:?}", row.file))
                    }
                }
                continue;
            }
            let edit = match result {
                Ok(edit) => edit,
                Err(e) => {
                    failures.push(format!("{} {}: {e}", row.file, row.path));
                    continue;
                }
            };
            edits += 1;
            let (old, new): (Vec<&str>, Vec<&str>) =
                (src.split('\n').collect(), edit.text.split('\n').collect());
            if old.len() != new.len() {
                failures.push(format!("{} {}: line count changed", row.file, row.path));
                continue;
            }
            let changed: Vec<usize> = (0..old.len()).filter(|&i| old[i] != new[i]).collect();
            if changed.iter().any(|&i| i + 1 != row.line) {
                failures.push(format!(
                    "{} {}: lines {changed:?} changed, expected {}",
                    row.file, row.path, row.line
                ));
            }
            let after = yaml::get_scalar(&edit.text, row.doc, &path).unwrap();
            if after.value != value {
                failures.push(format!(
                    "{} {}: reads back {:?}",
                    row.file, row.path, after.value
                ));
            }
            if after.style == yaml::ScalarStyle::Plain
                && yaml::quote::resolves_to_non_string(&value)
            {
                failures.push(format!("{} {}: {value} left plain", row.file, row.path));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {edits} edits failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn unparseable_corpus_files_are_refused_with_a_position_or_reason() {
    let Some(dir) = corpus() else { return };
    let broken = dir.join("files-unparseable");
    let mut seen = 0;
    for entry in walk(&broken) {
        seen += 1;
        let bytes = std::fs::read(&entry).unwrap();
        let result = yaml::decode(&bytes)
            .and_then(|src| yaml::set_scalar(src, 0, &"image.tag".parse().unwrap(), "1.0.0"));
        let err = result.expect_err(&entry.display().to_string());
        assert!(
            matches!(
                err,
                yaml::Error::NotUtf8 { .. } | yaml::Error::Syntax { .. }
            ),
            "{}: {err}",
            entry.display()
        );
    }
    assert!(seen >= 2);
}

#[test]
fn every_corpus_file_parses_and_an_unchanged_value_is_no_edit() {
    let Some(dir) = corpus() else { return };
    for file in walk(&dir.join("files")) {
        let bytes = std::fs::read(&file).unwrap();
        let src = yaml::decode(&bytes).unwrap();
        yaml::validate(src).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
    for row in rows(&dir).iter().filter(|r| r.note.is_empty()) {
        let bytes = std::fs::read(dir.join(&row.file)).unwrap();
        let src = yaml::decode(&bytes).unwrap();
        let scalar = yaml::get_scalar(src, row.doc, &row.path.parse().unwrap()).unwrap();
        assert_eq!(scalar.line, row.line, "{} {}", row.file, row.path);
    }
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}
