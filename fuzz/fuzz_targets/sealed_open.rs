//! Opening stored bytes (a sealed value, a key file, a master key file, a backup file) never
//! panics, and arbitrary bytes never authenticate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork_keyring::{stream, Aad, DataKey, MasterKey, SecretKey};

fuzz_target!(|data: &[u8]| {
    let key = DataKey::from_root(SecretKey::from_bytes([7; 32]));
    let aad = Aad { scope: "s", record: "r", field: "f" };
    assert!(key.open(aad, data).is_err(), "random bytes must not authenticate");
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = MasterKey::from_file_text(text);
    }
    // A backup file (`meshwork restore`): the header is read, no chunk ever opens.
    let mut input = data;
    if let Ok((_, head)) = stream::read_header(&mut input) {
        let mut out = Vec::new();
        let opened = stream::open(&SecretKey::from_bytes([7; 32]), &head, &mut input, &mut out);
        assert!(opened.is_err(), "random bytes must not open as a backup");
        assert!(out.is_empty(), "nothing is written before a chunk authenticates");
    }
});
