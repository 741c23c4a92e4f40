#![no_main]
//! See `layer_cake::fuzz::session`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| layer_cake::fuzz::session(data));
