#![no_main]
//! See `layer_cake::fuzz::handshake`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| layer_cake::fuzz::handshake(data));
