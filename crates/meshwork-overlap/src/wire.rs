//! The binary codec for PSI protocol messages.
//!
//! One encoded chunk is a fixed 31-byte header followed by `count` points, all integers
//! big-endian (network order):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 1 | version, [`WIRE_VERSION`] (1) |
//! | 1 | 1 | message type, [`MessageKind`] (1..=4) |
//! | 2 | 1 | mode, [`Mode`] (0 = full, 1 = counts only) |
//! | 3 | 16 | run id |
//! | 19 | 4 | chunk index, `0 <= index < total` |
//! | 23 | 4 | total chunks, `>= 1` |
//! | 27 | 4 | count, `1 <= count <=` [`MAX_POINTS_PER_CHUNK`] |
//! | 31 | 32 × count | compressed ristretto255 points |
//!
//! The codec checks structure only. Whether the points are valid encodings is checked by the
//! protocol ([`crate::psi`]) where a point is used, so the error can name the chunk and index.
//!
//! [`decode`] never panics and never allocates more than the input's own length: the count is
//! checked against the bytes actually present before anything is allocated.

use std::fmt;

use thiserror::Error;

/// The codec version this crate reads and writes.
pub const WIRE_VERSION: u8 = 1;
/// Size of the fixed header in bytes.
pub const HEADER_LEN: usize = 31;
/// Size of one compressed point in bytes.
pub const POINT_LEN: usize = 32;
/// Most points one chunk may carry (2 MiB of points).
pub const MAX_POINTS_PER_CHUNK: u32 = 1 << 16;
/// Largest encoded chunk: header plus [`MAX_POINTS_PER_CHUNK`] points.
pub const MAX_CHUNK_LEN: usize = HEADER_LEN + POINT_LEN * MAX_POINTS_PER_CHUNK as usize;

/// A 16-byte run identifier, fresh for every PSI run. It is bound into the hash-to-group, so
/// points from one run are useless in another.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(pub [u8; 16]);

impl RunId {
    /// A random run id from the operating system's CSPRNG.
    pub fn random() -> Self {
        use rand::RngCore;
        let mut b = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut b);
        RunId(b)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RunId({self})")
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The four messages of a PSI run (`docs/overlap-protocol.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageKind {
    /// Initiator → responder: the initiator's padded, shuffled set, blinded: `a·H(x)`.
    InitiatorBlinded = 1,
    /// Responder → initiator: the responder's padded, shuffled set, blinded: `b·H(y)`.
    ResponderBlinded = 2,
    /// Responder → initiator: the initiator's points re-blinded, `b·(a·H(x))`, in the order
    /// received (full mode) or shuffled (counts-only mode).
    ResponderEcho = 3,
    /// Initiator → responder: the responder's points re-blinded, `a·(b·H(y))`, in the order
    /// received (full mode) or shuffled (counts-only mode).
    InitiatorEcho = 4,
}

impl MessageKind {
    /// The wire code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The kind for a wire code.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(MessageKind::InitiatorBlinded),
            2 => Some(MessageKind::ResponderBlinded),
            3 => Some(MessageKind::ResponderEcho),
            4 => Some(MessageKind::InitiatorEcho),
            _ => None,
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MessageKind::InitiatorBlinded => "initiator-blinded",
            MessageKind::ResponderBlinded => "responder-blinded",
            MessageKind::ResponderEcho => "responder-echo",
            MessageKind::InitiatorEcho => "initiator-echo",
        })
    }
}

/// What the parties learn: the shared identifiers themselves, or only how many there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Mode {
    /// Each side learns which of its own identifiers are shared.
    Full = 0,
    /// Each side learns only the number of shared identifiers.
    CountsOnly = 1,
}

impl Mode {
    /// The wire code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The mode for a wire code.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Mode::Full),
            1 => Some(Mode::CountsOnly),
            _ => None,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Full => "full",
            Mode::CountsOnly => "counts-only",
        })
    }
}

/// Why bytes are not a well-formed chunk (or why a chunk cannot be built).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    /// Fewer bytes than the fixed header.
    #[error("chunk too short: {len} bytes, the header alone is {HEADER_LEN}")]
    TooShort {
        /// Bytes received.
        len: usize,
    },
    /// A version this crate does not speak.
    #[error("unsupported wire version {0} (this side speaks {WIRE_VERSION})")]
    UnsupportedVersion(u8),
    /// An unknown message type code.
    #[error("unknown message type {0}")]
    UnknownMessageType(u8),
    /// An unknown mode code.
    #[error("unknown mode {0}")]
    UnknownMode(u8),
    /// `total chunks` is zero.
    #[error("total chunks is zero")]
    ZeroTotalChunks,
    /// The chunk index is not below the total.
    #[error("chunk index {index} is out of range for {total} chunks")]
    ChunkIndexOutOfRange {
        /// The index given.
        index: u32,
        /// The total given.
        total: u32,
    },
    /// A chunk with no points.
    #[error("chunk carries no points")]
    EmptyChunk,
    /// More points than one chunk may carry.
    #[error("chunk claims {count} points, at most {MAX_POINTS_PER_CHUNK} are allowed")]
    TooManyPoints {
        /// The count given.
        count: u64,
    },
    /// The byte length does not match the count.
    #[error("chunk claims {count} points ({expected} bytes) but is {actual} bytes long")]
    LengthMismatch {
        /// The count given.
        count: u32,
        /// The length that count implies.
        expected: usize,
        /// The length received.
        actual: usize,
    },
}

/// One chunk of a protocol message. Built only through [`Message::new`] or [`decode`], so every
/// value is well formed and [`Message::encode`] cannot fail.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    kind: MessageKind,
    mode: Mode,
    run_id: RunId,
    chunk_index: u32,
    total_chunks: u32,
    points: Vec<[u8; 32]>,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("kind", &self.kind)
            .field("mode", &self.mode)
            .field("run_id", &self.run_id)
            .field("chunk_index", &self.chunk_index)
            .field("total_chunks", &self.total_chunks)
            .field("points", &self.points.len())
            .finish()
    }
}

impl Message {
    /// Builds a chunk, checking the same rules [`decode`] does.
    pub fn new(
        kind: MessageKind,
        mode: Mode,
        run_id: RunId,
        chunk_index: u32,
        total_chunks: u32,
        points: Vec<[u8; 32]>,
    ) -> Result<Self, WireError> {
        check_indices(chunk_index, total_chunks)?;
        if points.is_empty() {
            return Err(WireError::EmptyChunk);
        }
        if points.len() > MAX_POINTS_PER_CHUNK as usize {
            return Err(WireError::TooManyPoints {
                count: points.len() as u64,
            });
        }
        Ok(Message {
            kind,
            mode,
            run_id,
            chunk_index,
            total_chunks,
            points,
        })
    }

    /// Which message this chunk belongs to.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The run's mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The run id.
    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    /// This chunk's index, below [`Message::total_chunks`].
    pub fn chunk_index(&self) -> u32 {
        self.chunk_index
    }

    /// How many chunks the whole message has.
    pub fn total_chunks(&self) -> u32 {
        self.total_chunks
    }

    /// The compressed points (1..=[`MAX_POINTS_PER_CHUNK`]).
    pub fn points(&self) -> &[[u8; 32]] {
        &self.points
    }

    /// Takes the points out.
    pub fn into_points(self) -> Vec<[u8; 32]> {
        self.points
    }

    /// Length of the encoding in bytes.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + POINT_LEN * self.points.len()
    }

    /// Encodes the chunk (see the module documentation for the layout).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        encode_parts(
            &mut out,
            self.kind,
            self.mode,
            self.run_id,
            self.chunk_index,
            self.total_chunks,
            &self.points,
        );
        out
    }
}

fn check_indices(chunk_index: u32, total_chunks: u32) -> Result<(), WireError> {
    if total_chunks == 0 {
        return Err(WireError::ZeroTotalChunks);
    }
    if chunk_index >= total_chunks {
        return Err(WireError::ChunkIndexOutOfRange {
            index: chunk_index,
            total: total_chunks,
        });
    }
    Ok(())
}

/// Writes a chunk from borrowed points; the caller guarantees the [`Message::new`] rules.
pub(crate) fn encode_parts(
    out: &mut Vec<u8>,
    kind: MessageKind,
    mode: Mode,
    run_id: RunId,
    chunk_index: u32,
    total_chunks: u32,
    points: &[[u8; 32]],
) {
    debug_assert!(!points.is_empty() && points.len() <= MAX_POINTS_PER_CHUNK as usize);
    debug_assert!(chunk_index < total_chunks);
    out.reserve(HEADER_LEN + POINT_LEN * points.len());
    out.push(WIRE_VERSION);
    out.push(kind.code());
    out.push(mode.code());
    out.extend_from_slice(&run_id.0);
    out.extend_from_slice(&chunk_index.to_be_bytes());
    out.extend_from_slice(&total_chunks.to_be_bytes());
    out.extend_from_slice(&(points.len() as u32).to_be_bytes());
    for p in points {
        out.extend_from_slice(p);
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_be_bytes(b)
}

/// Decodes one chunk. Never panics; allocates only after the count has been checked against
/// the bytes present.
pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
    if bytes.len() < HEADER_LEN {
        return Err(WireError::TooShort { len: bytes.len() });
    }
    if bytes[0] != WIRE_VERSION {
        return Err(WireError::UnsupportedVersion(bytes[0]));
    }
    let kind = MessageKind::from_code(bytes[1]).ok_or(WireError::UnknownMessageType(bytes[1]))?;
    let mode = Mode::from_code(bytes[2]).ok_or(WireError::UnknownMode(bytes[2]))?;
    let mut run_id = [0u8; 16];
    run_id.copy_from_slice(&bytes[3..19]);
    let chunk_index = be_u32(bytes, 19);
    let total_chunks = be_u32(bytes, 23);
    check_indices(chunk_index, total_chunks)?;
    let count = be_u32(bytes, 27);
    if count == 0 {
        return Err(WireError::EmptyChunk);
    }
    if count > MAX_POINTS_PER_CHUNK {
        return Err(WireError::TooManyPoints {
            count: u64::from(count),
        });
    }
    // count <= 2^16, so this cannot overflow.
    let expected = HEADER_LEN + POINT_LEN * count as usize;
    if bytes.len() != expected {
        return Err(WireError::LengthMismatch {
            count,
            expected,
            actual: bytes.len(),
        });
    }
    let points = bytes[HEADER_LEN..]
        .chunks_exact(POINT_LEN)
        .map(|c| {
            let mut p = [0u8; 32];
            p.copy_from_slice(c);
            p
        })
        .collect();
    Ok(Message {
        kind,
        mode,
        run_id: RunId(run_id),
        chunk_index,
        total_chunks,
        points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Message {
        Message::new(
            MessageKind::ResponderEcho,
            Mode::CountsOnly,
            RunId([0xab; 16]),
            2,
            5,
            vec![[1; 32], [2; 32], [3; 32]],
        )
        .unwrap()
    }

    #[test]
    fn round_trip_and_layout() {
        let m = sample();
        let bytes = m.encode();
        assert_eq!(bytes.len(), HEADER_LEN + 3 * 32);
        assert_eq!(bytes.len(), m.encoded_len());
        assert_eq!(&bytes[..3], &[1, 3, 1]);
        assert_eq!(&bytes[3..19], &[0xab; 16]);
        assert_eq!(&bytes[19..23], &[0, 0, 0, 2]);
        assert_eq!(&bytes[23..27], &[0, 0, 0, 5]);
        assert_eq!(&bytes[27..31], &[0, 0, 0, 3]);
        assert_eq!(&bytes[31..63], &[1; 32]);
        assert_eq!(decode(&bytes).unwrap(), m);
    }

    #[test]
    fn too_short() {
        let bytes = sample().encode();
        for len in 0..HEADER_LEN {
            assert_eq!(decode(&bytes[..len]), Err(WireError::TooShort { len }));
        }
    }

    #[test]
    fn truncated_points() {
        let bytes = sample().encode();
        let cut = &bytes[..bytes.len() - 1];
        assert_eq!(
            decode(cut),
            Err(WireError::LengthMismatch {
                count: 3,
                expected: HEADER_LEN + 96,
                actual: HEADER_LEN + 95
            })
        );
        // Header only, no points at all.
        assert!(matches!(
            decode(&bytes[..HEADER_LEN]),
            Err(WireError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn trailing_bytes() {
        let mut bytes = sample().encode();
        bytes.push(0);
        assert!(matches!(
            decode(&bytes),
            Err(WireError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn bad_version_type_mode() {
        let mut bytes = sample().encode();
        bytes[0] = 2;
        assert_eq!(decode(&bytes), Err(WireError::UnsupportedVersion(2)));
        let mut bytes = sample().encode();
        bytes[1] = 0;
        assert_eq!(decode(&bytes), Err(WireError::UnknownMessageType(0)));
        bytes[1] = 5;
        assert_eq!(decode(&bytes), Err(WireError::UnknownMessageType(5)));
        let mut bytes = sample().encode();
        bytes[2] = 2;
        assert_eq!(decode(&bytes), Err(WireError::UnknownMode(2)));
    }

    #[test]
    fn bad_chunk_indices() {
        let mut bytes = sample().encode();
        bytes[23..27].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(decode(&bytes), Err(WireError::ZeroTotalChunks));
        let mut bytes = sample().encode();
        bytes[19..23].copy_from_slice(&5u32.to_be_bytes());
        assert_eq!(
            decode(&bytes),
            Err(WireError::ChunkIndexOutOfRange { index: 5, total: 5 })
        );
    }

    #[test]
    fn count_mismatch_and_oversized_counts() {
        let mut bytes = sample().encode();
        bytes[27..31].copy_from_slice(&2u32.to_be_bytes());
        assert!(matches!(
            decode(&bytes),
            Err(WireError::LengthMismatch { count: 2, .. })
        ));
        bytes[27..31].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(decode(&bytes), Err(WireError::EmptyChunk));
        // A huge count on a short buffer is rejected without allocating for it.
        bytes[27..31].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            decode(&bytes),
            Err(WireError::TooManyPoints {
                count: u64::from(u32::MAX)
            })
        );
        bytes[27..31].copy_from_slice(&MAX_POINTS_PER_CHUNK.to_be_bytes());
        assert!(matches!(
            decode(&bytes),
            Err(WireError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn largest_chunk_decodes() {
        let m = Message::new(
            MessageKind::InitiatorBlinded,
            Mode::Full,
            RunId([0; 16]),
            0,
            1,
            vec![[9; 32]; MAX_POINTS_PER_CHUNK as usize],
        )
        .unwrap();
        let bytes = m.encode();
        assert_eq!(bytes.len(), MAX_CHUNK_LEN);
        assert_eq!(decode(&bytes).unwrap(), m);
    }

    #[test]
    fn new_checks_rules() {
        let r = RunId([0; 16]);
        let k = MessageKind::InitiatorEcho;
        assert_eq!(
            Message::new(k, Mode::Full, r, 0, 0, vec![[0; 32]]),
            Err(WireError::ZeroTotalChunks)
        );
        assert!(Message::new(k, Mode::Full, r, 1, 1, vec![[0; 32]]).is_err());
        assert_eq!(
            Message::new(k, Mode::Full, r, 0, 1, vec![]),
            Err(WireError::EmptyChunk)
        );
        assert!(matches!(
            Message::new(
                k,
                Mode::Full,
                r,
                0,
                1,
                vec![[0; 32]; MAX_POINTS_PER_CHUNK as usize + 1]
            ),
            Err(WireError::TooManyPoints { .. })
        ));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap stand-in for the fuzz target: every prefix and single-byte mutation.
        let base = sample().encode();
        for len in 0..=base.len() {
            let _ = decode(&base[..len]);
        }
        for i in 0..base.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut b = base.clone();
                b[i] = v;
                if let Ok(m) = decode(&b) {
                    assert_eq!(m.encode(), b);
                }
            }
        }
    }
}
