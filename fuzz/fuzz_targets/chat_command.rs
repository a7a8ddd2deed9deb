//! The chat command parser and the replies that repeat its input.
//! The property is in `properties/chat_command.rs`, shared with `tests/it/fuzz_regressions.rs`.
#![no_main]

#[path = "../properties/chat_command.rs"]
mod property;

libfuzzer_sys::fuzz_target!(|data: &[u8]| property::check(data));
