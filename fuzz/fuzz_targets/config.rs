//! The configuration file parser: any text gives a config or a clear error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(config) = meshwork_config::Config::from_toml_str(text) {
        let _ = config.validate();
    }
});
