//! The image reference parser against the distribution grammar.
//! The property is in `properties/image_ref.rs`, shared with `tests/it/fuzz_regressions.rs`.
#![no_main]

#[path = "../properties/image_ref.rs"]
mod property;

libfuzzer_sys::fuzz_target!(|data: &[u8]| property::check(data));
