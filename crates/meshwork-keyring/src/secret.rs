//! `SecretKey`: 32 bytes that never leave by accident. No `Clone`, no `Serialize`, zeroized on
//! drop, `Debug` prints `***`; reading the bytes takes a call named `dangerously_expose`.

use std::fmt;
use zeroize::Zeroizing;

pub struct SecretKey(Zeroizing<[u8; 32]>);

impl SecretKey {
    pub fn generate() -> Self {
        Self(Zeroizing::new(crate::random_bytes::<32>()))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The raw key bytes. Every caller is a place where a key could leak; keep them few.
    pub fn dangerously_expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_is_redacted() {
        let k = super::SecretKey::from_bytes([7; 32]);
        assert_eq!(format!("{k:?}"), "SecretKey(***)");
    }
}
