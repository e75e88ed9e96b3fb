#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    iot_anomaly_analytics::fuzzing::config_load(data);
});
