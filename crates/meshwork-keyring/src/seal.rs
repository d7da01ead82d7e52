//! Sealing content fields and computing blind indexes with one data key.
//!
//! Sealed format, version 1 (pinned by `sealed_format_is_stable`):
//! `0x01 ‖ nonce (12 bytes, random) ‖ AES-256-GCM ciphertext ‖ tag (16 bytes)`.
//! The associated data binds the ciphertext to where it belongs:
//! `"meshwork:v1" ‖ len(scope) ‖ scope ‖ len(record) ‖ record ‖ len(field) ‖ field`, lengths as
//! 4-byte big-endian, so a value copied to another workspace, record or field fails to open.
//!
//! Sub-keys come from the data key by HKDF-SHA256 with distinct `info` strings, so the sealing
//! key and the blind-index key are independent.

use crate::secret::SecretKey;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// The first byte of every sealed value.
pub const SEAL_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Where a sealed value belongs: the associated data of the seal.
#[derive(Debug, Clone, Copy)]
pub struct Aad<'a> {
    /// A workspace id, or `"accounts"` for account data.
    pub scope: &'a str,
    /// The record's id.
    pub record: &'a str,
    /// The field's name.
    pub field: &'a str,
}

impl Aad<'_> {
    fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(11 + 12 + self.scope.len() + self.record.len() + self.field.len());
        out.extend_from_slice(b"meshwork:v1");
        for part in [self.scope, self.record, self.field] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }
}

/// A sealed value failed to open: wrong key, wrong place, tampered, or not a sealed value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("sealed value is {0} bytes, too short to be valid")]
    TooShort(usize),
    #[error("sealed value has format version {0}, this build reads version {SEAL_VERSION}")]
    UnknownVersion(u8),
    #[error(
        "sealed value failed authentication (wrong key, moved to another record, or tampered)"
    )]
    Authentication,
    #[error("sealed value is not UTF-8 text")]
    NotText,
}

/// A keyed, one-way equality index of a normalised value (HMAC-SHA256).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlindIndex(pub [u8; 32]);

impl BlindIndex {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlindIndex({}…)", hex::encode(&self.0[..4]))
    }
}

/// One data key (a workspace's, or the account key), ready to seal, open and index.
pub struct DataKey {
    cipher: Aes256Gcm,
    blind: SecretKey,
    root: SecretKey,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(***)")
    }
}

fn hkdf(root: &SecretKey, info: &[u8]) -> SecretKey {
    let hk = Hkdf::<Sha256>::new(None, root.dangerously_expose());
    let mut out = [0u8; 32];
    hk.expand(info, &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    SecretKey::from_bytes(out)
}

impl DataKey {
    pub fn from_root(root: SecretKey) -> Self {
        let content = hkdf(&root, b"meshwork/v1/content");
        let blind = hkdf(&root, b"meshwork/v1/blind-index");
        let cipher = Aes256Gcm::new_from_slice(content.dangerously_expose())
            .expect("AES-256 key is 32 bytes");
        Self {
            cipher,
            blind,
            root,
        }
    }

    /// An independent key for another purpose (CSRF tokens, partnership keys…), derived so that
    /// it reveals nothing about this key or its other sub-keys.
    pub fn derive(&self, purpose: &str) -> SecretKey {
        hkdf(
            &self.root,
            format!("meshwork/v1/derived/{purpose}").as_bytes(),
        )
    }

    pub fn seal(&self, aad: Aad<'_>, plaintext: &[u8]) -> Vec<u8> {
        self.seal_with_nonce(aad, plaintext, crate::random_bytes::<NONCE_LEN>())
    }

    fn seal_with_nonce(&self, aad: Aad<'_>, plaintext: &[u8], nonce: [u8; NONCE_LEN]) -> Vec<u8> {
        let aad = aad.encode();
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encryption cannot fail for inputs under 64 GiB");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn seal_str(&self, aad: Aad<'_>, plaintext: &str) -> Vec<u8> {
        self.seal(aad, plaintext.as_bytes())
    }

    pub fn open(&self, aad: Aad<'_>, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN {
            return Err(OpenError::TooShort(sealed.len()));
        }
        if sealed[0] != SEAL_VERSION {
            return Err(OpenError::UnknownVersion(sealed[0]));
        }
        let (nonce, ct) = sealed[1..].split_at(NONCE_LEN);
        let aad = aad.encode();
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| OpenError::Authentication)
    }

    pub fn open_str(&self, aad: Aad<'_>, sealed: &[u8]) -> Result<String, OpenError> {
        String::from_utf8(self.open(aad, sealed)?).map_err(|_| OpenError::NotText)
    }

    /// The blind index of `normalized` for `field`. Callers normalise first (e.g. lower-cased
    /// email); the field name is bound in so equal values in different fields do not collide.
    pub fn blind_index(&self, field: &str, normalized: &str) -> BlindIndex {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.blind.dangerously_expose())
            .expect("HMAC accepts any key length");
        mac.update(&(field.len() as u32).to_be_bytes());
        mac.update(field.as_bytes());
        mac.update(normalized.as_bytes());
        BlindIndex(mac.finalize().into_bytes().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Security finding 14: the AES key schedules inside every cipher are wiped when dropped
    /// (this does not compile without the `zeroize` features).
    #[test]
    fn aes_key_schedules_are_wiped_on_drop() {
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wiped_on_drop::<aes::Aes256>();
        wiped_on_drop::<aes::Aes256Enc>();
    }
    use proptest::prelude::*;

    fn key(b: u8) -> DataKey {
        DataKey::from_root(SecretKey::from_bytes([b; 32]))
    }

    const AAD: Aad<'static> = Aad {
        scope: "ws-1",
        record: "rec-1",
        field: "name",
    };

    /// Stored data must stay readable across versions: this pins the exact bytes of a seal and of
    /// a blind index. If this test fails, you changed the format; add a new version instead.
    #[test]
    fn sealed_format_is_stable() {
        let k = key(0x42);
        let sealed = k.seal_with_nonce(AAD, b"Ada Lovelace", [9; 12]);
        assert_eq!(
            hex::encode(&sealed),
            PINNED_SEAL,
            "the sealed format changed"
        );
        assert_eq!(
            k.open_str(AAD, &hex::decode(PINNED_SEAL).unwrap()).unwrap(),
            "Ada Lovelace"
        );
        assert_eq!(
            hex::encode(k.blind_index("email", "ada@example.com").0),
            PINNED_BLIND,
            "the blind index changed"
        );
    }
    const PINNED_SEAL: &str =
        "01090909090909090909090909470cf99c5212a381b62f1ab3c73dc1777d70fb1dae12b924fed6d27e";
    const PINNED_BLIND: &str = "0da2ebac761483e6098c17a20243309a38ac6a6f17a0d33b6b87da96aa538cc6";

    #[test]
    fn a_seal_moved_to_another_place_does_not_open() {
        let k = key(1);
        let sealed = k.seal(AAD, b"secret");
        for other in [
            Aad {
                scope: "ws-2",
                ..AAD
            },
            Aad {
                record: "rec-2",
                ..AAD
            },
            Aad {
                field: "email",
                ..AAD
            },
        ] {
            assert_eq!(k.open(other, &sealed), Err(OpenError::Authentication));
        }
        assert_eq!(key(2).open(AAD, &sealed), Err(OpenError::Authentication));
    }

    #[test]
    fn tampering_and_garbage_are_rejected() {
        let k = key(1);
        let mut sealed = k.seal(AAD, b"secret");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(k.open(AAD, &sealed), Err(OpenError::Authentication));
        assert_eq!(k.open(AAD, b"short"), Err(OpenError::TooShort(5)));
        let mut v2 = k.seal(AAD, b"x");
        v2[0] = 2;
        assert_eq!(k.open(AAD, &v2), Err(OpenError::UnknownVersion(2)));
    }

    #[test]
    fn blind_indexes_separate_fields_and_keys() {
        let k = key(1);
        assert_eq!(
            k.blind_index("email", "a@b.c"),
            k.blind_index("email", "a@b.c")
        );
        assert_ne!(
            k.blind_index("email", "a@b.c"),
            k.blind_index("domain", "a@b.c")
        );
        assert_ne!(
            k.blind_index("email", "a@b.c"),
            key(2).blind_index("email", "a@b.c")
        );
    }

    proptest! {
        #[test]
        fn seal_then_open_round_trips(data in proptest::collection::vec(any::<u8>(), 0..512), field in "[a-z]{1,8}") {
            let k = key(3);
            let aad = Aad { scope: "s", record: "r", field: &field };
            let sealed = k.seal(aad, &data);
            prop_assert_eq!(k.open(aad, &sealed).unwrap(), data);
        }
    }
}
