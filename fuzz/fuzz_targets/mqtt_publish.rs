#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| c2d_fuzz::run("mqtt_publish", data));
