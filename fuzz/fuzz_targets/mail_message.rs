//! Mail messages read from IMAP servers: any bytes give a subject, text and date, or an error
//! naming what is wrong, never a panic; the text kept is within its limit.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = meshwork_connectors::imap::read_message(data, 4096) {
        assert!(m.body.len() <= 4096);
        assert!(m.mail.to.iter().chain(&m.mail.cc).all(|a| a.contains('@')));
    }
});
