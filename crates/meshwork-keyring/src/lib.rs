//! The keyring: Meshwork's encryption at rest (DESIGN.md decisions 2 and 3).
//!
//! - A **master key** lives in a file outside the database (created 0600 on first run, or given by
//!   the operator). It never enters the database and only wraps other keys.
//! - The **keyring** is a directory of data keys, each wrapped by the master key: one per
//!   workspace and one for account data. It is kept apart from the database and its backups, so
//!   deleting a key makes every copy of that workspace's data unreadable (crypto-shredding).
//! - A **data key** seals content fields with AES-256-GCM, binding scope, record and field as
//!   associated data, and computes **blind indexes** (HMAC-SHA256) for equality look-ups.
//!
//! The formats are pinned by tests (`sealed_format_is_stable`); `docs/encryption.md` explains the
//! scheme and its reasoning.

mod keyring;
mod seal;
mod secret;
pub mod stream;

pub use keyring::{Keyring, KeyringError, MasterKey};
pub use seal::{Aad, BlindIndex, DataKey, OpenError, SEAL_VERSION};
pub use secret::SecretKey;

/// Random bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use rand::RngCore;
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}
