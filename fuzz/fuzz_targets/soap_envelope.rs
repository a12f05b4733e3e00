//! Fuzz target: the SOAP envelope parser must answer Ok or a ParseError for any bytes, never
//! panic, and a successful parse must have the structure the adapter relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polyport::adapters::soap::envelope::{self, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_bytes: 64 * 1024, ..Limits::default() };
    if let Ok(env) = envelope::parse_with(data, &limits) {
        assert!(!env.body.name.is_empty());
        let mut canonical = Vec::new();
        env.body.canonical(&mut canonical);
    }
});
