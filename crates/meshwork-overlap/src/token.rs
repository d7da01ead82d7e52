//! Same-server match tokens: when both partners' data lives on one Meshwork server.
//!
//! A match token is `HMAC-SHA256(partnership_key, kind_tag ‖ 0x00 ‖ normalised_value)`:
//!
//! - `partnership_key` is a 32-byte secret per partnership, held by the server and never shown to
//!   either workspace. Keying by partnership means a token says nothing outside its
//!   partnership: the same e-mail gives unrelated tokens in two partnerships, and a leaked token
//!   list cannot be dictionary-attacked without the key (which a plain SHA-256 list could be in
//!   seconds).
//! - `kind_tag` is [`Identifier::kind_tag`] (`email`, `domain`, `phone`). The tags hold no
//!   `0x00` and none is a prefix of another, so the first `0x00` always ends the tag and the
//!   message decodes back to exactly one `(kind, value)`: an e-mail can never produce the token
//!   of a domain or phone number whatever bytes the values hold.
//! - `normalised_value` is the UTF-8 value from [`crate::normalize`].
//!
//! Tokens are computed on demand for one comparison and discarded; they are not stored.
//!
//! A server that must keep identifiers between runs without keeping them raw (a match-only
//! import) keeps *pseudonyms* instead: the token of the identifier under a server-wide identity
//! key (`Tokenizer::new(identity_key).token(id)`), and derives the partnership's token from the
//! pseudonym with [`Tokenizer::token_of`]. Both partners' records then go through the same two
//! steps, so equal identifiers still give equal tokens.

use hmac::{Hmac, Mac};
use rayon::prelude::*;
use sha2::Sha256;

use crate::normalize::Identifier;
use crate::set32::Set32;

type HmacSha256 = Hmac<Sha256>;

/// A 32-byte match token.
pub type MatchToken = [u8; 32];

/// The match token of one identifier: `HMAC-SHA256(partnership_key, kind_tag ‖ 0x00 ‖ value)`.
pub fn match_token(partnership_key: &[u8; 32], id: &Identifier) -> MatchToken {
    Tokenizer::new(partnership_key).token(id)
}

/// Computes many tokens under one key, keeping the keyed HMAC state so each token costs only
/// the message blocks (two SHA-256 compressions for a short identifier instead of four).
///
/// The keyed state is derived from the partnership key and is as secret as the key; it lives
/// only as long as the tokenizer (the `hmac` crate does not zeroize it on drop).
#[derive(Clone)]
pub struct Tokenizer {
    keyed: HmacSha256,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokenizer { .. }")
    }
}

impl Tokenizer {
    /// Keys a tokenizer with the partnership key.
    pub fn new(partnership_key: &[u8; 32]) -> Self {
        let keyed = <HmacSha256 as Mac>::new_from_slice(partnership_key)
            .expect("HMAC accepts keys of any length");
        Tokenizer { keyed }
    }

    /// The match token of one identifier.
    pub fn token(&self, id: &Identifier) -> MatchToken {
        let mut mac = self.keyed.clone();
        mac.update(id.kind_tag());
        mac.update(&[0x00]);
        mac.update(id.value().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The token of a value that is already a keyed hash (a pseudonym, see below):
    /// `HMAC-SHA256(key, pseudonym)`.
    pub fn token_of(&self, pseudonym: &MatchToken) -> MatchToken {
        let mut mac = self.keyed.clone();
        mac.update(pseudonym);
        mac.finalize().into_bytes().into()
    }

    /// The tokens of many identifiers, in order, computed in parallel.
    pub fn tokens(&self, ids: &[Identifier]) -> Vec<MatchToken> {
        ids.par_iter().map(|id| self.token(id)).collect()
    }
}

/// The tokens of many identifiers under one partnership key, in order, computed in parallel.
pub fn match_tokens(partnership_key: &[u8; 32], ids: &[Identifier]) -> Vec<MatchToken> {
    Tokenizer::new(partnership_key).tokens(ids)
}

/// Indices into `ours` whose token also appears in `theirs`, ascending.
///
/// Builds a hash set of `theirs` and probes it with `ours` in parallel. Tokens are HMAC outputs
/// under a key no workspace holds, so the set can key its buckets on their leading bytes
/// without any hash-flooding risk.
pub fn shared_indices(ours: &[MatchToken], theirs: &[MatchToken]) -> Vec<usize> {
    let set = Set32::from_values(theirs.iter());
    ours.par_iter()
        .enumerate()
        .filter(|(_, t)| set.contains(t))
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer() {
        // HMAC-SHA256(key = 0x00..0x1f, "email\0jane@example.com"), computed independently with
        // Python's hmac module.
        let key: [u8; 32] = std::array::from_fn(|i| i as u8);
        let token = match_token(&key, &Identifier::Email("jane@example.com".into()));
        let hex: String = token.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex, "82ddaac7535824dd05d2113901269cea8233f9d0301ad5b258badc0675c65fef",
            "the token format is pinned: changing it breaks every stored comparison"
        );
    }

    #[test]
    fn kinds_never_collide() {
        let key = [7u8; 32];
        let v = "a@b.co".to_string();
        let e = match_token(&key, &Identifier::Email(v.clone()));
        let d = match_token(&key, &Identifier::Domain(v.clone()));
        let p = match_token(&key, &Identifier::Phone(v));
        assert_ne!(e, d);
        assert_ne!(e, p);
        assert_ne!(d, p);
    }

    #[test]
    fn keys_separate_partnerships() {
        let id = Identifier::Domain("acme.com".into());
        assert_ne!(match_token(&[1; 32], &id), match_token(&[2; 32], &id));
        assert_eq!(match_token(&[1; 32], &id), match_token(&[1; 32], &id));
    }

    #[test]
    fn tokenizer_matches_one_shot() {
        let key = [9u8; 32];
        let ids: Vec<Identifier> = (0..50)
            .map(|i| Identifier::Domain(format!("c{i}.com")))
            .collect();
        let batch = match_tokens(&key, &ids);
        for (id, t) in ids.iter().zip(&batch) {
            assert_eq!(*t, match_token(&key, id));
        }
    }

    #[test]
    fn intersects() {
        let key = [3u8; 32];
        let a: Vec<Identifier> = ["a.com", "b.com", "c.com"]
            .iter()
            .map(|d| Identifier::Domain(d.to_string()))
            .collect();
        let b: Vec<Identifier> = ["c.com", "x.com", "a.com"]
            .iter()
            .map(|d| Identifier::Domain(d.to_string()))
            .collect();
        let shared = shared_indices(&match_tokens(&key, &a), &match_tokens(&key, &b));
        assert_eq!(shared, vec![0, 2]);
    }
}
