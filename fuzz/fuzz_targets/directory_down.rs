#![no_main]
//! See `layer_cake::fuzz::directory_down`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| layer_cake::fuzz::directory_down(data));
