//! GitLab webhook payload parsing.
//! The property is in `properties/webhook_payload.rs`, shared with `tests/it/fuzz_regressions.rs`.
#![no_main]

#[path = "../properties/webhook_payload.rs"]
mod property;

libfuzzer_sys::fuzz_target!(|data: &[u8]| property::check(data));
