#![no_main]
//! See `layer_cake::fuzz::http_query`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| layer_cake::fuzz::http_query(data));
