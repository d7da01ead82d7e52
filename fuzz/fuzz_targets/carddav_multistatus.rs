//! WebDAV multistatus answers read from CardDAV servers: any text gives responses or a
//! protocol error, never a panic; every response parsed has its href.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(responses) = meshwork_connectors::carddav::parse_multistatus(text) {
        for r in responses {
            let _ = r.href.len();
        }
    }
});
