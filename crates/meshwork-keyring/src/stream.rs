//! Sealed files of any size (backups): the STREAM construction (Hoang, Reyhanitabar, Rogaway and
//! Vizár, "Online Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", 2015) over
//! AES-256-GCM, as the `aead` crate implements it (`stream::EncryptorBE32`). Nothing here is new
//! cryptography: this module only frames the chunks. `docs/backups.md` describes the format.
//!
//! A file is the magic line, a header (JSON, its length first), then chunks of at most
//! [`CHUNK`] bytes of plaintext, each framed as a flag byte (`0` more follow, `1` the last), the
//! ciphertext's length (u32, big-endian) and the ciphertext. Every chunk is sealed with a nonce
//! made of a random 7-byte prefix (in the header), its 32-bit counter and a last-chunk bit, and
//! authenticates the whole header as associated data. So:
//! - a changed byte anywhere (header, frame or chunk) fails the chunk it is in;
//! - chunks cannot be reordered, dropped or repeated (the counter is in the nonce);
//! - a file cut short fails: its last chunk is either missing or was not sealed as the last;
//! - a wrong key fails the first chunk.

use aes_gcm::aead::stream::{DecryptorBE32, EncryptorBE32};
use aes_gcm::aead::{generic_array::GenericArray, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use std::io::{Read, Write};

use crate::SecretKey;

/// The first line of every sealed file.
pub const MAGIC: &[u8; 16] = b"MESHWORK-SEALED\n";
/// Plaintext bytes per chunk.
pub const CHUNK: usize = 1 << 20;
/// The largest header accepted when reading.
const MAX_HEADER: u32 = 64 * 1024;
const PREFIX_LEN: usize = 7;

/// Why a sealed file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("not a Meshwork sealed file (its first bytes are not the format's magic line)")]
    NotSealed,
    #[error("the file is cut short: it ends {0}")]
    Truncated(&'static str),
    #[error("chunk {0} does not open: the file was changed, or it was sealed with another key (another master key)")]
    Tampered(u64),
    #[error("the header is invalid: {0}")]
    BadHeader(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Seals everything `input` yields into `out`, with `header` in the clear but authenticated.
/// Answers the number of plaintext bytes.
pub fn seal(
    key: &SecretKey,
    header: &[u8],
    input: &mut impl Read,
    out: &mut impl Write,
) -> Result<u64, StreamError> {
    let prefix = crate::random_bytes::<PREFIX_LEN>();
    let head = framed_header(&prefix, header);
    out.write_all(&head)?;
    let cipher = Aes256Gcm::new(GenericArray::from_slice(key.dangerously_expose()));
    let mut enc = EncryptorBE32::from_aead(cipher, GenericArray::from_slice(&prefix));
    let mut total = 0u64;
    let mut chunk = read_chunk(input)?;
    loop {
        let next = if chunk.len() == CHUNK {
            read_chunk(input)?
        } else {
            Vec::new()
        };
        total += chunk.len() as u64;
        let payload = Payload {
            msg: &chunk,
            aad: &head,
        };
        if next.is_empty() {
            let ct = enc
                .encrypt_last(payload)
                .map_err(|_| StreamError::BadHeader("sealing failed".into()))?;
            write_frame(out, 1, &ct)?;
            return Ok(total);
        }
        let ct = enc
            .encrypt_next(payload)
            .map_err(|_| StreamError::BadHeader("too many chunks".into()))?;
        write_frame(out, 0, &ct)?;
        chunk = next;
    }
}

/// Reads the header of a sealed file, leaving `input` at its first chunk. Answers the header
/// and the bytes the chunks authenticate.
pub fn read_header(input: &mut impl Read) -> Result<(Vec<u8>, Vec<u8>), StreamError> {
    let mut magic = [0u8; 16];
    read_exact(input, &mut magic, "inside its magic line").map_err(|e| match e {
        StreamError::Truncated(_) => StreamError::NotSealed,
        e => e,
    })?;
    if &magic != MAGIC {
        return Err(StreamError::NotSealed);
    }
    let mut prefix = [0u8; PREFIX_LEN];
    read_exact(input, &mut prefix, "inside its header")?;
    let mut len = [0u8; 4];
    read_exact(input, &mut len, "inside its header")?;
    let len = u32::from_be_bytes(len);
    if len > MAX_HEADER {
        return Err(StreamError::BadHeader(format!(
            "it claims {len} bytes (at most {MAX_HEADER})"
        )));
    }
    let mut header = vec![0u8; len as usize];
    read_exact(input, &mut header, "inside its header")?;
    let head = framed_header(&prefix, &header);
    Ok((header, head))
}

/// Opens a sealed file whose header [`read_header`] read, writing the plaintext to `out` as
/// each chunk is verified. The caller must discard what was written if this fails.
pub fn open(
    key: &SecretKey,
    head: &[u8],
    input: &mut impl Read,
    out: &mut impl Write,
) -> Result<u64, StreamError> {
    let prefix = &head[MAGIC.len()..MAGIC.len() + PREFIX_LEN];
    let cipher = Aes256Gcm::new(GenericArray::from_slice(key.dangerously_expose()));
    let mut dec = DecryptorBE32::from_aead(cipher, GenericArray::from_slice(prefix));
    let mut total = 0u64;
    let mut index = 0u64;
    loop {
        let mut frame = [0u8; 5];
        read_exact(input, &mut frame, "before its last chunk")?;
        let len = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize;
        if len > CHUNK + 16 {
            return Err(StreamError::Tampered(index));
        }
        let mut ct = vec![0u8; len];
        read_exact(input, &mut ct, "inside a chunk")?;
        let payload = Payload {
            msg: &ct,
            aad: head,
        };
        match frame[0] {
            0 => {
                let pt = dec
                    .decrypt_next(payload)
                    .map_err(|_| StreamError::Tampered(index))?;
                total += pt.len() as u64;
                out.write_all(&pt)?;
            }
            1 => {
                let pt = dec
                    .decrypt_last(payload)
                    .map_err(|_| StreamError::Tampered(index))?;
                total += pt.len() as u64;
                out.write_all(&pt)?;
                // Anything after the last chunk was not sealed with it.
                let mut extra = [0u8; 1];
                if input.read(&mut extra)? != 0 {
                    return Err(StreamError::Tampered(index + 1));
                }
                return Ok(total);
            }
            _ => return Err(StreamError::Tampered(index)),
        }
        index += 1;
    }
}

fn framed_header(prefix: &[u8], header: &[u8]) -> Vec<u8> {
    let mut head = Vec::with_capacity(MAGIC.len() + PREFIX_LEN + 4 + header.len());
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(prefix);
    head.extend_from_slice(&(header.len() as u32).to_be_bytes());
    head.extend_from_slice(header);
    head
}

fn write_frame(out: &mut impl Write, flag: u8, ct: &[u8]) -> std::io::Result<()> {
    out.write_all(&[flag])?;
    out.write_all(&(ct.len() as u32).to_be_bytes())?;
    out.write_all(ct)
}

fn read_chunk(input: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(CHUNK);
    input.take(CHUNK as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

fn read_exact(
    input: &mut impl Read,
    buf: &mut [u8],
    where_: &'static str,
) -> Result<(), StreamError> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => StreamError::Truncated(where_),
        _ => StreamError::Io(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sealed(key: &SecretKey, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        seal(key, b"{\"kind\":\"test\"}", &mut &data[..], &mut out).unwrap();
        out
    }

    fn opened(key: &SecretKey, file: &[u8]) -> Result<Vec<u8>, StreamError> {
        let mut input = file;
        let (header, head) = read_header(&mut input)?;
        assert_eq!(header, b"{\"kind\":\"test\"}");
        let mut out = Vec::new();
        open(key, &head, &mut input, &mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trips_empty_small_and_multi_chunk_files() {
        let key = SecretKey::generate();
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 7] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            assert_eq!(opened(&key, &sealed(&key, &data)).unwrap(), data, "{len}");
        }
    }

    #[test]
    fn a_file_cut_anywhere_is_refused() {
        let key = SecretKey::generate();
        let data = vec![7u8; CHUNK + 100];
        let file = sealed(&key, &data);
        // Cut at the end of the first chunk (a whole chunk, not the last) and inside each part.
        let first_chunk_end = MAGIC.len() + PREFIX_LEN + 4 + 15 + 5 + CHUNK + 16;
        for cut in [
            0,
            10,
            30,
            40,
            first_chunk_end,
            first_chunk_end + 3,
            file.len() - 1,
        ] {
            assert!(opened(&key, &file[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn a_wrong_key_is_refused() {
        let file = sealed(&SecretKey::generate(), b"hello");
        assert!(matches!(
            opened(&SecretKey::generate(), &file),
            Err(StreamError::Tampered(0))
        ));
    }

    #[test]
    fn the_plaintext_is_not_in_the_file() {
        let key = SecretKey::generate();
        let file = sealed(&key, b"canary-7f3a canary-7f3a canary-7f3a");
        assert!(!file.windows(11).any(|w| w == b"canary-7f3a"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any one changed byte, anywhere, is refused (never silently opened into other bytes).
        #[test]
        fn any_changed_byte_is_refused(data in proptest::collection::vec(any::<u8>(), 0..300), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let key = SecretKey::generate();
            let mut file = sealed(&key, &data);
            let i = at.index(file.len());
            file[i] ^= 1 << bit;
            prop_assert!(opened_any_header(&key, &file).is_err());
        }
    }

    fn opened_any_header(key: &SecretKey, file: &[u8]) -> Result<Vec<u8>, StreamError> {
        let mut input = file;
        let (_, head) = read_header(&mut input)?;
        let mut out = Vec::new();
        open(key, &head, &mut input, &mut out)?;
        Ok(out)
    }
}
