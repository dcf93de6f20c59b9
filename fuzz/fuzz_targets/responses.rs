//! Feeds arbitrary bytes to every parser of server input: createSession and
//! sessionInfoResource bodies, operation bodies, error bodies, `Retry-After` values, and the
//! URLs a server sends back. The first byte picks the parser; the rest is the input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use workbook_session::fuzzing;

fuzz_target!(|data: &[u8]| {
    let Some((selector, input)) = data.split_first() else {
        return;
    };
    match selector % 5 {
        0 => fuzzing::session_info(input),
        1 => fuzzing::operation(input),
        2 => fuzzing::error_body(input),
        3 => fuzzing::retry_after(input),
        _ => {
            if let Ok(text) = std::str::from_utf8(input) {
                fuzzing::urls(text);
            }
        }
    }
});
