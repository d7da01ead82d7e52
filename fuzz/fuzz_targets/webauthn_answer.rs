//! A security key's answer, as the server reads it from a browser (`security_keys.rs`): the
//! bytes as the JSON of a registration answer and of a sign-in answer, checked by webauthn-rs
//! against a registration and a sign-in it started (the CBOR attestation object, the
//! authenticator data, the client data, the signature). No input may panic.
//!
//! The two ceremonies (`fuzz/fixtures/webauthn`) and the seeds (`fuzz/seeds/webauthn_answer`)
//! were made together by webauthn-authenticator-rs's software authenticator for the relying
//! party crm.example.com, so the seeds are answers that pass, and their mutations reach every
//! check behind the parsing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use webauthn_rs::prelude::*;

struct Ceremonies {
    webauthn: Webauthn,
    registration: SecurityKeyRegistration,
    authentication: SecurityKeyAuthentication,
}

static CEREMONIES: LazyLock<Ceremonies> = LazyLock::new(|| {
    let origin = Url::parse("https://crm.example.com").unwrap();
    Ceremonies {
        webauthn: WebauthnBuilder::new("crm.example.com", &origin)
            .unwrap()
            .build()
            .unwrap(),
        registration: serde_json::from_str(include_str!(
            "../fixtures/webauthn/registration_state.json"
        ))
        .unwrap(),
        authentication: serde_json::from_str(include_str!(
            "../fixtures/webauthn/authentication_state.json"
        ))
        .unwrap(),
    }
});

fuzz_target!(|data: &[u8]| {
    let c = &*CEREMONIES;
    if let Ok(answer) = serde_json::from_slice::<RegisterPublicKeyCredential>(data) {
        let _ = c
            .webauthn
            .finish_securitykey_registration(&answer, &c.registration);
    }
    if let Ok(answer) = serde_json::from_slice::<PublicKeyCredential>(data) {
        if let Ok(result) = c
            .webauthn
            .finish_securitykey_authentication(&answer, &c.authentication)
        {
            // Only the registered credential can pass.
            assert_eq!(&result.cred_id()[..], answer.raw_id.as_slice());
        }
    }
});
