//! Fuzzes the PSI chunk decoder: it must never panic, and whatever it accepts must re-encode to
//! exactly the input bytes (the format has one encoding per message).

#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork_overlap::wire;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = wire::decode(data) {
        let encoded = message.encode();
        assert_eq!(
            encoded.as_slice(),
            data,
            "decode/encode round trip changed the bytes"
        );
        assert_eq!(message.encoded_len(), data.len());
        assert_eq!(wire::decode(&encoded).as_ref(), Ok(&message));
    }
});
