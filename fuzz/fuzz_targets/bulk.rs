#![no_main]

// The checks live in the crate's library, so `cargo test` runs them over
// fuzz/regressions/bulk/ too.
libfuzzer_sys::fuzz_target!(|data: &[u8]| muster_fuzz::bulk(data));
