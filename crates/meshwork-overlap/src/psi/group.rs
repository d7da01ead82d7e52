//! The group operations of the PSI: hash-to-group, blinding and re-blinding, batched.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use rayon::prelude::*;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use crate::normalize::Identifier;
use crate::wire::{MessageKind, RunId};

use super::PsiError;

/// Domain-separation prefix of the hash-to-group. Part of the protocol: changing it is a new
/// protocol version.
pub const HASH_DOMAIN: &[u8; 15] = b"meshwork-psi-v1";

/// Kind tag of padding items. Prefix-free with the identifier tags (`email`, `domain`,
/// `phone`) and free of `0x00`, so a dummy can never hash like a real identifier.
const DUMMY_TAG: &[u8] = b"dummy";

/// Points per batch: one batched inversion per batch, and the unit of work rayon hands out.
pub(crate) const BATCH: usize = 512;

/// One slot of a party's padded list.
#[derive(Debug, Clone)]
pub(crate) enum Slot {
    /// A real item: index into the party's distinct identifiers.
    Real(u32),
    /// A padding item: a random seed, hashed under the `dummy` tag.
    Dummy([u8; 32]),
}

/// The per-run secret exponent.
///
/// A uniformly random non-zero scalar `k`, drawn from the OS CSPRNG for every run and side and
/// zeroized on drop. The blinding exponent is `a = 2k` (also uniform and non-zero, as 2 is
/// invertible mod the group order ℓ): the factor 2 lets every blinding compute `k·P` and then
/// encode `2·(k·P)` with `RistrettoPoint::double_and_compress_batch`, which shares one field
/// inversion per batch instead of one inverse square root per point.
pub(crate) struct SecretKey(Zeroizing<Scalar>);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    pub(crate) fn random() -> Self {
        loop {
            let k = Zeroizing::new(Scalar::random(&mut rand::rngs::OsRng));
            if *k != Scalar::ZERO {
                return SecretKey(k);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn from_scalar(k: Scalar) -> Self {
        SecretKey(Zeroizing::new(k))
    }
}

/// The SHA-512 state after `HASH_DOMAIN ‖ run_id` (both fixed length, so the framing is
/// unambiguous); each item continues it with `tag ‖ 0x00 ‖ value`.
pub(crate) fn hash_base(run_id: &RunId) -> Sha512 {
    let mut h = Sha512::new();
    h.update(HASH_DOMAIN);
    h.update(run_id.as_bytes());
    h
}

/// `H(x)`: SHA-512 of `HASH_DOMAIN ‖ run_id ‖ kind_tag ‖ 0x00 ‖ value`, mapped to the group with
/// the ristretto255 one-way map (two Elligator maps, added).
pub(crate) fn hash_identifier(base: &Sha512, id: &Identifier) -> RistrettoPoint {
    let mut h = base.clone();
    h.update(id.kind_tag());
    h.update([0x00]);
    h.update(id.value().as_bytes());
    RistrettoPoint::from_hash(h)
}

fn hash_dummy(base: &Sha512, seed: &[u8; 32]) -> RistrettoPoint {
    let mut h = base.clone();
    h.update(DUMMY_TAG);
    h.update([0x00]);
    h.update(seed);
    RistrettoPoint::from_hash(h)
}

/// Writes `enc(2·k·P)` for each `P` of a batch into `out`.
fn double_compress_into(k: &Scalar, points: &mut [RistrettoPoint], out: &mut [[u8; 32]]) {
    for p in points.iter_mut() {
        *p *= k;
    }
    let encoded = RistrettoPoint::double_and_compress_batch(points.iter());
    for (dst, c) in out.iter_mut().zip(encoded) {
        *dst = c.to_bytes();
    }
}

/// Blinds a party's own padded list: `enc(a·H(slot))` for each slot, in slot order.
pub(crate) fn blind_own(
    key: &SecretKey,
    run_id: &RunId,
    slots: &[Slot],
    distinct: &[&Identifier],
) -> Vec<[u8; 32]> {
    let base = hash_base(run_id);
    let mut out = vec![[0u8; 32]; slots.len()];
    out.par_chunks_mut(BATCH)
        .zip(slots.par_chunks(BATCH))
        .for_each(|(out, slots)| {
            let mut points: Vec<RistrettoPoint> = slots
                .iter()
                .map(|slot| match slot {
                    Slot::Real(d) => hash_identifier(&base, distinct[*d as usize]),
                    Slot::Dummy(seed) => hash_dummy(&base, seed),
                })
                .collect();
            double_compress_into(&key.0, &mut points, out);
        });
    out
}

/// Re-blinds the peer's points: `enc(a·Q)` for each received encoding, in order.
///
/// Every encoding must be a canonical ristretto255 point other than the identity; the error
/// names the message, chunk and index of the first bad one found (`chunk_starts[c]` is the
/// flat index of chunk `c`'s first point).
pub(crate) fn reblind_peer(
    key: &SecretKey,
    kind: MessageKind,
    points: &[[u8; 32]],
    chunk_starts: &[usize],
) -> Result<Vec<[u8; 32]>, PsiError> {
    let mut out = vec![[0u8; 32]; points.len()];
    out.par_chunks_mut(BATCH)
        .zip(points.par_chunks(BATCH))
        .enumerate()
        .try_for_each(|(batch, (out, input))| {
            let mut decoded = Vec::with_capacity(input.len());
            for (i, bytes) in input.iter().enumerate() {
                let bad = |reason| {
                    let flat = batch * BATCH + i;
                    let chunk = chunk_starts.partition_point(|&s| s <= flat) - 1;
                    PsiError::InvalidPoint {
                        kind,
                        chunk_index: chunk as u32,
                        index: (flat - chunk_starts[chunk]) as u32,
                        reason,
                    }
                };
                // The identity's only canonical encoding is all zeros.
                if bytes == &[0u8; 32] {
                    return Err(bad("the identity element"));
                }
                match CompressedRistretto(*bytes).decompress() {
                    Some(p) => decoded.push(p),
                    None => return Err(bad("not a canonical ristretto255 encoding")),
                }
            }
            double_compress_into(&key.0, &mut decoded, out);
            Ok(())
        })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;

    #[test]
    fn batched_double_compress_equals_plain_multiplication() {
        let k = Scalar::from(123_456_789u64);
        let key = SecretKey::from_scalar(k);
        let run = RunId([5; 16]);
        let ids: Vec<Identifier> = (0..1100)
            .map(|i| Identifier::Domain(format!("c{i}.com")))
            .collect();
        let refs: Vec<&Identifier> = ids.iter().collect();
        let slots: Vec<Slot> = (0..ids.len() as u32).map(Slot::Real).collect();
        let blinded = blind_own(&key, &run, &slots, &refs);
        let base = hash_base(&run);
        let two_k = k + k;
        for (id, b) in ids.iter().zip(&blinded) {
            assert_eq!(
                (two_k * hash_identifier(&base, id)).compress().to_bytes(),
                *b
            );
        }
        // Re-blinding commutes: a·(b·H(x)) = b·(a·H(x)).
        let other = SecretKey::from_scalar(Scalar::from(987u64));
        let starts = [0usize];
        let ab = reblind_peer(&other, MessageKind::InitiatorBlinded, &blinded, &starts).unwrap();
        let b_first = blind_own(&other, &run, &slots, &refs);
        let ba = reblind_peer(&key, MessageKind::ResponderBlinded, &b_first, &starts).unwrap();
        assert_eq!(ab, ba);
    }

    #[test]
    fn reblind_names_bad_points() {
        let key = SecretKey::from_scalar(Scalar::from(3u64));
        let good = RISTRETTO_BASEPOINT_POINT.compress().to_bytes();
        let mut points = vec![good; 10];
        points[7] = [0xff; 32];
        let err =
            reblind_peer(&key, MessageKind::ResponderBlinded, &points, &[0, 4, 8]).unwrap_err();
        assert_eq!(
            err,
            PsiError::InvalidPoint {
                kind: MessageKind::ResponderBlinded,
                chunk_index: 1,
                index: 3,
                reason: "not a canonical ristretto255 encoding"
            }
        );
        points[7] = good;
        points[9] = [0; 32];
        let err =
            reblind_peer(&key, MessageKind::ResponderBlinded, &points, &[0, 4, 8]).unwrap_err();
        assert!(matches!(
            err,
            PsiError::InvalidPoint {
                chunk_index: 2,
                index: 1,
                ..
            }
        ));
    }
}
