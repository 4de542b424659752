//! The config parser: arbitrary text into `config::parse`. Nothing may panic;
//! a valid result must render.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(cfg) = proxyha::config::parse("fuzz.toml", &text, std::path::Path::new(".")) {
        let _ = cfg.render();
    }
});
