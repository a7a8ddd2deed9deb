//! The YAML edit primitive: every scalar set to a new value, checked byte for byte and re-parsed.
//! The property is in `properties/yaml_edit.rs`, shared with `tests/it/fuzz_regressions.rs`.
#![no_main]

#[path = "../properties/yaml_edit.rs"]
mod property;

libfuzzer_sys::fuzz_target!(|data: &[u8]| property::check(data));
