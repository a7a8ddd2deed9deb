//! Reading the MR templates the configuration points at (`templates_dir`): each
//! `<name>.hbs` there replaces the built-in template of that name. The files are read here, in
//! the wiring; [`describe::Templates`] only ever sees their text.

use std::collections::BTreeMap;
use std::path::Path;

use crate::promotion::describe::{self, Templates};

/// The built-in templates, each replaced by `<dir>/<name>.hbs` when that file exists.
pub fn read(dir: Option<&Path>) -> Result<Templates, describe::Error> {
    let mut overrides = BTreeMap::new();
    for name in describe::NAMES {
        let Some(path) = dir.map(|d| d.join(format!("{name}.hbs"))) else {
            continue;
        };
        if !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| describe::Error::Template {
            name: path.display().to_string(),
            message: e.to_string(),
        })?;
        overrides.insert(name.to_string(), text);
    }
    Templates::with_overrides(&overrides)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_in_the_directory_replaces_its_template_and_typos_are_caught() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("title.hbs"), "[{{to}}] {{service}}").unwrap();
        std::fs::write(dir.path().join("closed.hbs"), "{{#if}}").unwrap();
        let error = read(Some(dir.path())).unwrap_err().to_string();
        assert!(error.starts_with("template closed:"), "{error}");
        std::fs::remove_file(dir.path().join("closed.hbs")).unwrap();
        let templates = read(Some(dir.path())).unwrap();
        assert_eq!(
            templates.closed(&["gone".to_string()]).unwrap(),
            Templates::built_in().closed(&["gone".to_string()]).unwrap(),
            "the others stay built in"
        );
        assert!(read(None).is_ok());
    }
}
