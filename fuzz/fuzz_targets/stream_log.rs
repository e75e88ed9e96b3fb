#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../fuzzing.rs"]
mod fuzzing;

fuzz_target!(|data: &[u8]| {
    fuzzing::stream_log(data);
});
