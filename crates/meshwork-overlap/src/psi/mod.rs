//! Two-party private set intersection (ECDH-PSI over ristretto255), as pure state machines.
//!
//! Two Meshwork servers, the **initiator** (set `X`, secret exponent `a`) and the **responder**
//! (set `Y`, secret exponent `b`), each learn which of *their own* identifiers are in both sets
//! (or, in counts-only mode, only how many), plus the other side's padded set size. Nothing
//! here does IO: the caller moves the encoded chunks (see [`crate::wire`]) over its transport.
//! `docs/overlap-protocol.md` has the full description and the security argument.
//!
//! # Items
//!
//! The items are normalised [`Identifier`]s. Duplicates in the input are merged first (each
//! distinct identifier is sent once; the outcome names every input index that holds a shared
//! identifier). Each is hashed to the group as
//!
//! `H(x) = ristretto255_from_uniform_bytes(SHA-512("meshwork-psi-v1" ‖ run_id ‖ kind_tag ‖ 0x00 ‖ value))`
//!
//! so a point from one run or protocol version is useless in another.
//!
//! # Messages
//!
//! | # | from → to | [`MessageKind`] | content | order |
//! | --- | --- | --- | --- | --- |
//! | 1 | I → R | `InitiatorBlinded` | `a·H(x)` for I's padded list | I's random shuffle |
//! | 2 | R → I | `ResponderBlinded` | `b·H(y)` for R's padded list | R's random shuffle |
//! | 3 | R → I | `ResponderEcho` | `b·(a·H(x))` for every point of message 1 | message 1's order (full) or shuffled (counts only) |
//! | 4 | I → R | `InitiatorEcho` | `a·(b·H(y))` for every point of message 2 | message 2's order (full) or shuffled (counts only) |
//!
//! Message 2 depends on nothing from the initiator, so the responder may send it as soon as it
//! is created. The initiator finishes once it holds messages 2 and 3: `abH(x_i)` is shared
//! exactly when it equals some `abH(y_j)`. The responder finishes with message 4, comparing it
//! against the message-3 points it computed. In counts-only mode the echoes are shuffled, so the
//! receiver can count equal points but cannot tell which of its own they are.
//!
//! # State machines
//!
//! ```text
//! Initiator::new ──► Initiator (send query(); receive() msgs 2 and 3) ──finish()──► (outcome, msg 4)
//! Responder::new ──► Responder (send own_points(); receive() msg 1) ──respond()──►
//!     ResponderAwaitingFinal (send echo(); receive() msg 4) ──finish()──► outcome
//! ```
//!
//! Any error aborts the run: the state machine refuses further input ([`PsiError::Aborted`])
//! and yields no outcome; start a fresh run (new run id, new secrets). The one exception is
//! [`PsiError::StaleMessage`], a late copy of a message already consumed, which the transport
//! may ignore. Receiving an identical chunk twice is harmless; a different chunk under the same
//! index is [`PsiError::ConflictingChunk`].
//!
//! # Example
//!
//! Both parties in one process; a server would carry each chunk over HTTPS instead.
//!
//! ```
//! use meshwork_overlap::psi::{Full, Initiator, PsiConfig, Responder};
//! use meshwork_overlap::{Identifier, RunId};
//!
//! let ours = [Identifier::email("Jane.Doe@gmail.com")?, Identifier::company_domain("acme.com")?];
//! let theirs = [Identifier::email("janedoe@googlemail.com")?];
//! let config = PsiConfig::default();
//! let run_id = RunId::random(); // agreed when the run is set up
//!
//! let mut initiator = Initiator::<Full>::new(&config, run_id, &ours)?;
//! let mut responder = Responder::<Full>::new(&config, run_id, &theirs)?;
//! for chunk in initiator.query().chunks() {
//!     responder.receive(&chunk)?; // message 1
//! }
//! for chunk in responder.own_points().chunks() {
//!     initiator.receive(&chunk)?; // message 2
//! }
//! let mut responder = responder.respond()?;
//! for chunk in responder.echo().chunks() {
//!     initiator.receive(&chunk)?; // message 3
//! }
//! let (mine, last) = initiator.finish()?;
//! for chunk in last.chunks() {
//!     responder.receive(&chunk)?; // message 4
//! }
//! let theirs_outcome = responder.finish()?;
//!
//! assert_eq!(mine.shared, vec![0]); // Jane is shared; acme.com is not
//! assert_eq!(theirs_outcome.shared, vec![0]);
//! assert_eq!(mine.peer_set_size_padded, 1024); // all either side learns of the other's size
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Cost
//!
//! Per side and item: one hash-to-group (a SHA-512 and two Elligator maps, each an inverse
//! square root), two constant-time variable-base scalar multiplications, one point
//! decompression (another inverse square root), and two batched encodings (one field inversion
//! shared by 512 points). Scalar multiplications dominate; hash-to-group is the largest of the
//! rest (`benches/psi.rs` measures each against the floor). All of it runs on rayon's pool.

mod group;
mod inbox;

use std::collections::{HashMap, HashSet};

use crate::set32::Set32;
use std::fmt;
use std::marker::PhantomData;

use rand::seq::SliceRandom;
use rand::RngCore;
use thiserror::Error;

use crate::normalize::Identifier;
use crate::wire::{self, Message, MessageKind, Mode, RunId, WireError, MAX_POINTS_PER_CHUNK};

pub use group::HASH_DOMAIN;
use group::{SecretKey, Slot};
use inbox::{Expect, Inbox};

/// Default cap on a party's own set: 2^20 identifiers.
pub const DEFAULT_MAX_SET_SIZE: usize = 1 << 20;
/// Largest cap a configuration may set (2^26 identifiers, 2 GiB of points per message).
pub const MAX_SET_SIZE_LIMIT: usize = 1 << 26;
/// Default chunk size: 4096 points, 128 KiB per chunk.
pub const DEFAULT_CHUNK_POINTS: usize = 4096;

/// How a party pads its set before sending, so the peer learns only a bucket, not the size.
///
/// Padding items are random and never match anything (see `docs/overlap-protocol.md`); they
/// cost as much as real items, so the work, like the message, reveals only the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// Round up to the next power of two, and to at least `min`. Reveals about `log2` of the
    /// size; costs up to twice the work.
    PowerOfTwo {
        /// The smallest padded size.
        min: usize,
    },
    /// Round up to the next multiple of `step` (at least one step). Reveals the size to within
    /// `step`. `MultipleOf { step: 1 }` pads nothing, which is only for tests.
    MultipleOf {
        /// The bucket width (0 counts as 1).
        step: usize,
    },
}

impl Default for Padding {
    fn default() -> Self {
        Padding::PowerOfTwo { min: 1024 }
    }
}

impl Padding {
    /// The padded size for `n` items (never zero).
    pub fn padded_len(&self, n: usize) -> usize {
        match *self {
            Padding::PowerOfTwo { min } => n.max(1).next_power_of_two().max(min),
            Padding::MultipleOf { step } => {
                let step = step.max(1);
                n.max(1).div_ceil(step) * step
            }
        }
    }
}

/// Limits and sizes of a run. Both servers should use the same values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsiConfig {
    /// Most identifiers this side may put in a run ([`PsiError::SetTooLarge`] beyond).
    pub max_set_size: usize,
    /// Most points the peer's set may have once padded ([`PsiError::PeerSetTooLarge`] beyond).
    pub max_peer_points: usize,
    /// How this side pads its own set.
    pub padding: Padding,
    /// Points per outgoing chunk (1..=[`wire::MAX_POINTS_PER_CHUNK`]).
    pub chunk_points: usize,
}

impl Default for PsiConfig {
    fn default() -> Self {
        PsiConfig::new(DEFAULT_MAX_SET_SIZE)
    }
}

impl PsiConfig {
    /// A configuration capping both sides at `max_set_size` identifiers, with default padding
    /// and chunk size; the peer cap is `max_set_size` padded.
    pub fn new(max_set_size: usize) -> Self {
        let padding = Padding::default();
        PsiConfig {
            max_set_size,
            max_peer_points: padding.padded_len(max_set_size),
            padding,
            chunk_points: DEFAULT_CHUNK_POINTS,
        }
    }

    /// Checks the values are usable.
    pub fn validate(&self) -> Result<(), PsiError> {
        let bad = |what: &'static str| Err(PsiError::InvalidConfig(what));
        if self.max_set_size > MAX_SET_SIZE_LIMIT {
            return bad("max_set_size is above MAX_SET_SIZE_LIMIT");
        }
        if self.max_peer_points == 0 || self.max_peer_points > 2 * MAX_SET_SIZE_LIMIT {
            return bad("max_peer_points must be between 1 and 2 × MAX_SET_SIZE_LIMIT");
        }
        if self.chunk_points == 0 || self.chunk_points > MAX_POINTS_PER_CHUNK as usize {
            return bad("chunk_points must be between 1 and wire::MAX_POINTS_PER_CHUNK");
        }
        if self.padding.padded_len(self.max_set_size) > 2 * MAX_SET_SIZE_LIMIT {
            return bad("padding makes the largest set too large");
        }
        Ok(())
    }
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PsiError {
    /// The configuration is unusable.
    #[error("invalid PSI configuration: {0}")]
    InvalidConfig(&'static str),
    /// This side's set is over the cap.
    #[error("set of {size} identifiers is over the cap of {max}")]
    SetTooLarge {
        /// Identifiers given.
        size: usize,
        /// The cap ([`PsiConfig::max_set_size`]).
        max: usize,
    },
    /// The peer's message holds more points than the cap allows.
    #[error(
        "peer's {kind} message has at least {points} points (or chunks), over the cap of {max}"
    )]
    PeerSetTooLarge {
        /// The message.
        kind: MessageKind,
        /// Points (or chunks) seen so far.
        points: usize,
        /// The cap ([`PsiConfig::max_peer_points`]).
        max: usize,
    },
    /// An echo does not have one point per point we sent.
    #[error("peer's {kind} message has {got} points (or chunks) where {expected} were expected")]
    EchoLengthMismatch {
        /// The message.
        kind: MessageKind,
        /// Points we sent.
        expected: usize,
        /// Points (or chunks) received.
        got: usize,
    },
    /// The bytes are not a well-formed chunk.
    #[error("malformed chunk: {0}")]
    Malformed(#[from] WireError),
    /// The chunk belongs to another run.
    #[error("chunk belongs to run {got}, this is run {expected}")]
    WrongRunId {
        /// This run.
        expected: RunId,
        /// The chunk's run.
        got: RunId,
    },
    /// The chunk's mode differs from this run's.
    #[error("chunk is for a {got} run, this run is {expected}")]
    ModeMismatch {
        /// This run's mode.
        expected: Mode,
        /// The chunk's mode.
        got: Mode,
    },
    /// This party never receives this kind of message, or not in this state.
    #[error("unexpected {kind} message: {state}")]
    UnexpectedMessage {
        /// The message.
        kind: MessageKind,
        /// What this party was waiting for.
        state: &'static str,
    },
    /// A late copy of a message this party has already consumed; harmless, and the run goes on.
    #[error("late copy of the {kind} message, already processed")]
    StaleMessage {
        /// The message.
        kind: MessageKind,
    },
    /// Two different chunks arrived under the same index.
    #[error("chunk {chunk_index} of the {kind} message arrived twice with different contents")]
    ConflictingChunk {
        /// The message.
        kind: MessageKind,
        /// The index.
        chunk_index: u32,
    },
    /// Chunks of one message disagree on how many chunks it has.
    #[error("chunks of the {kind} message disagree on the total: {expected} then {got}")]
    InconsistentTotalChunks {
        /// The message.
        kind: MessageKind,
        /// The total first seen.
        expected: u32,
        /// The total now seen.
        got: u32,
    },
    /// A point the protocol must use is not a valid group element.
    #[error("point {index} of chunk {chunk_index} of the {kind} message is invalid: {reason}")]
    InvalidPoint {
        /// The message.
        kind: MessageKind,
        /// The chunk.
        chunk_index: u32,
        /// Index within the chunk.
        index: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// `finish` or `respond` was called before every chunk arrived.
    #[error("not ready: the {0} message is incomplete")]
    NotReady(MessageKind),
    /// An earlier error aborted this run.
    #[error("the run was aborted by an earlier error; start a new run")]
    Aborted,
}

/// What [`Initiator::receive`] and the responder's `receive` report for an accepted chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkReceipt {
    /// The message the chunk belongs to.
    pub kind: MessageKind,
    /// The chunk's index.
    pub chunk_index: u32,
    /// The message's chunk count.
    pub total_chunks: u32,
    /// Distinct chunks of the message received so far.
    pub received_chunks: u32,
    /// The chunk had already been received (identical); nothing changed.
    pub duplicate: bool,
    /// Every chunk of the message is now present.
    pub message_complete: bool,
}

/// The full-mode result: which of this side's identifiers are shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedOutcome {
    /// Indices into this side's input slice whose identifier is in both sets, ascending.
    /// Duplicated inputs are all listed.
    pub shared: Vec<usize>,
    /// The peer's set size after padding: all it learned about the peer's size.
    pub peer_set_size_padded: usize,
}

/// The counts-only result: how many identifiers are shared, and nothing about which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountOutcome {
    /// Distinct identifiers in both sets.
    pub count: usize,
    /// The peer's set size after padding.
    pub peer_set_size_padded: usize,
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Full {}
    impl Sealed for super::CountsOnly {}
}

/// The run's mode at the type level, which fixes the outcome type: a counts-only run cannot
/// produce indices. Implemented by [`Full`] and [`CountsOnly`] only.
///
/// ```compile_fail
/// # use meshwork_overlap::psi::*;
/// # fn f(r: ResponderAwaitingFinal<CountsOnly>) {
/// let outcome = r.finish().unwrap();
/// let which = outcome.shared; // no such field: a CountOutcome holds only a count
/// # }
/// ```
pub trait PsiMode: sealed::Sealed + fmt::Debug + Send + Sync + 'static {
    /// The mode on the wire.
    const MODE: Mode;
    /// What a finished run yields.
    type Outcome: fmt::Debug + Clone + PartialEq + Eq + Send;
    #[doc(hidden)]
    fn build_outcome(
        shared_distinct: Vec<bool>,
        count: usize,
        inputs: &[u32],
        peer_set_size_padded: usize,
    ) -> Self::Outcome;
}

/// Full mode: each side learns which of its own identifiers are shared.
#[derive(Debug, Clone, Copy)]
pub struct Full;

/// Counts-only mode: each side learns only the number of shared identifiers.
#[derive(Debug, Clone, Copy)]
pub struct CountsOnly;

impl PsiMode for Full {
    const MODE: Mode = Mode::Full;
    type Outcome = SharedOutcome;
    fn build_outcome(
        shared_distinct: Vec<bool>,
        _count: usize,
        inputs: &[u32],
        peer_set_size_padded: usize,
    ) -> SharedOutcome {
        let shared = inputs
            .iter()
            .enumerate()
            .filter(|(_, d)| shared_distinct[**d as usize])
            .map(|(i, _)| i)
            .collect();
        SharedOutcome {
            shared,
            peer_set_size_padded,
        }
    }
}

impl PsiMode for CountsOnly {
    const MODE: Mode = Mode::CountsOnly;
    type Outcome = CountOutcome;
    fn build_outcome(
        _shared_distinct: Vec<bool>,
        count: usize,
        _inputs: &[u32],
        peer_set_size_padded: usize,
    ) -> CountOutcome {
        CountOutcome {
            count,
            peer_set_size_padded,
        }
    }
}

/// A message ready to send, chunk by chunk. Any chunk can be re-encoded at any time, so the
/// transport can resume by resending only the chunks the peer lacks.
#[derive(Clone)]
pub struct Outgoing {
    kind: MessageKind,
    mode: Mode,
    run_id: RunId,
    points: Vec<[u8; 32]>,
    chunk_points: usize,
}

impl fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outgoing")
            .field("kind", &self.kind)
            .field("mode", &self.mode)
            .field("run_id", &self.run_id)
            .field("points", &self.points.len())
            .field("chunk_points", &self.chunk_points)
            .finish()
    }
}

impl Outgoing {
    /// Which message this is.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// Points in the whole message.
    pub fn total_points(&self) -> usize {
        self.points.len()
    }

    /// Number of chunks.
    pub fn total_chunks(&self) -> u32 {
        // points <= 2 × MAX_SET_SIZE_LIMIT (validated config), so this fits a u32.
        self.points.len().div_ceil(self.chunk_points) as u32
    }

    /// Chunk `index` as a [`Message`], or `None` past the end.
    pub fn message(&self, index: u32) -> Option<Message> {
        let points = self.chunk_slice(index)?;
        Message::new(
            self.kind,
            self.mode,
            self.run_id,
            index,
            self.total_chunks(),
            points.to_vec(),
        )
        .ok()
    }

    /// Chunk `index`, encoded for the wire, or `None` past the end.
    pub fn chunk(&self, index: u32) -> Option<Vec<u8>> {
        let points = self.chunk_slice(index)?;
        let mut out = Vec::new();
        wire::encode_parts(
            &mut out,
            self.kind,
            self.mode,
            self.run_id,
            index,
            self.total_chunks(),
            points,
        );
        Some(out)
    }

    /// Every chunk, encoded, in order.
    pub fn chunks(&self) -> impl ExactSizeIterator<Item = Vec<u8>> + '_ {
        (0..self.total_chunks()).map(|i| self.chunk(i).expect("index below total"))
    }

    fn chunk_slice(&self, index: u32) -> Option<&[[u8; 32]]> {
        let start = (index as usize).checked_mul(self.chunk_points)?;
        if start >= self.points.len() {
            return None;
        }
        let end = (start + self.chunk_points).min(self.points.len());
        Some(&self.points[start..end])
    }
}

/// A party's own set, deduplicated, padded and shuffled.
#[derive(Debug)]
struct OwnSet {
    /// For each input index, its distinct identifier's index.
    inputs: Vec<u32>,
    /// Number of distinct identifiers.
    distinct: usize,
    /// The padded list in sent order.
    slots: Vec<Slot>,
}

impl OwnSet {
    /// Deduplicates, pads and shuffles `items`, and blinds them with `key`.
    fn build(
        config: &PsiConfig,
        run_id: &RunId,
        key: &SecretKey,
        items: &[Identifier],
    ) -> Result<(OwnSet, Vec<[u8; 32]>), PsiError> {
        config.validate()?;
        if items.len() > config.max_set_size {
            return Err(PsiError::SetTooLarge {
                size: items.len(),
                max: config.max_set_size,
            });
        }
        let mut index: HashMap<&Identifier, u32> = HashMap::with_capacity(items.len());
        let mut distinct: Vec<&Identifier> = Vec::with_capacity(items.len());
        let inputs: Vec<u32> = items
            .iter()
            .map(|id| {
                *index.entry(id).or_insert_with(|| {
                    distinct.push(id);
                    (distinct.len() - 1) as u32
                })
            })
            .collect();
        drop(index);
        let padded = config.padding.padded_len(distinct.len());
        let mut rng = rand::thread_rng();
        let mut slots: Vec<Slot> = (0..distinct.len() as u32).map(Slot::Real).collect();
        slots.extend((distinct.len()..padded).map(|_| {
            let mut seed = [0u8; 32];
            rng.fill_bytes(&mut seed);
            Slot::Dummy(seed)
        }));
        slots.shuffle(&mut rng);
        let blinded = group::blind_own(key, run_id, &slots, &distinct);
        let set = OwnSet {
            inputs,
            distinct: distinct.len(),
            slots,
        };
        Ok((set, blinded))
    }

    /// The outcome, given for each of our slots (in sent order) whether its doubly-blinded point
    /// is among the peer's.
    fn conclude<M: PsiMode>(
        &self,
        mine: &[[u8; 32]],
        theirs: &Set32,
        peer_set_size_padded: usize,
    ) -> M::Outcome {
        match M::MODE {
            Mode::Full => {
                let mut shared = vec![false; self.distinct];
                for (slot, point) in self.slots.iter().zip(mine) {
                    if let Slot::Real(d) = slot {
                        if theirs.contains(point) {
                            shared[*d as usize] = true;
                        }
                    }
                }
                M::build_outcome(shared, 0, &self.inputs, peer_set_size_padded)
            }
            Mode::CountsOnly => {
                // `mine` is shuffled here. Count distinct matching values, capped at our own
                // distinct count, so repeated points in an echo cannot inflate the count.
                let matched: HashSet<&[u8; 32]> =
                    mine.iter().filter(|p| theirs.contains(p)).collect();
                let count = matched.len().min(self.distinct);
                M::build_outcome(Vec::new(), count, &self.inputs, peer_set_size_padded)
            }
        }
    }
}

fn shuffled_if_counts<M: PsiMode>(mut points: Vec<[u8; 32]>) -> Vec<[u8; 32]> {
    if M::MODE == Mode::CountsOnly {
        points.shuffle(&mut rand::thread_rng());
    }
    points
}

/// Decodes a chunk and checks it belongs to this run.
fn decode_for<M: PsiMode>(run_id: RunId, bytes: &[u8]) -> Result<Message, PsiError> {
    let msg = wire::decode(bytes)?;
    if msg.run_id() != run_id {
        return Err(PsiError::WrongRunId {
            expected: run_id,
            got: msg.run_id(),
        });
    }
    if msg.mode() != M::MODE {
        return Err(PsiError::ModeMismatch {
            expected: M::MODE,
            got: msg.mode(),
        });
    }
    Ok(msg)
}

/// Runs `f` unless the run is aborted; aborts it if `f` fails (except for a stale message).
fn guarded<T>(aborted: &mut bool, f: impl FnOnce() -> Result<T, PsiError>) -> Result<T, PsiError> {
    if *aborted {
        return Err(PsiError::Aborted);
    }
    let result = f();
    if let Err(e) = &result {
        if !matches!(e, PsiError::StaleMessage { .. }) {
            *aborted = true;
        }
    }
    result
}

fn outgoing<M: PsiMode>(
    config: &PsiConfig,
    run_id: RunId,
    kind: MessageKind,
    points: Vec<[u8; 32]>,
) -> Outgoing {
    Outgoing {
        kind,
        mode: M::MODE,
        run_id,
        points,
        chunk_points: config.chunk_points,
    }
}

/// The party that starts a run. See the [module documentation](self) for the flow.
pub struct Initiator<M: PsiMode> {
    run_id: RunId,
    key: SecretKey,
    own: OwnSet,
    query: Outgoing,
    echo: Inbox,
    peer: Peer,
    config: PsiConfig,
    aborted: bool,
    _mode: PhantomData<M>,
}

/// The initiator's copy of message 2: collecting its chunks, then re-blinded under our secret.
enum Peer {
    Collecting(Inbox),
    Reblinded {
        /// The responder's points under both secrets, in the order they were sent.
        points: Vec<[u8; 32]>,
        set: Set32,
        padded: usize,
    },
}

impl Peer {
    fn is_complete(&self) -> bool {
        match self {
            Peer::Collecting(inbox) => inbox.is_complete(),
            Peer::Reblinded { .. } => true,
        }
    }
}

impl<M: PsiMode> fmt::Debug for Initiator<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Initiator")
            .field("mode", &M::MODE)
            .field("run_id", &self.run_id)
            .field("padded", &self.own.slots.len())
            .field("echo_complete", &self.echo.is_complete())
            .field("peer_complete", &self.peer.is_complete())
            .field(
                "peer_reblinded",
                &matches!(self.peer, Peer::Reblinded { .. }),
            )
            .field("aborted", &self.aborted)
            .finish()
    }
}

impl<M: PsiMode> Initiator<M> {
    /// Starts a run: draws a fresh secret, then deduplicates, pads, shuffles and blinds `items`
    /// into message 1 ([`Initiator::query`]). This is the expensive step (one hash-to-group and
    /// one scalar multiplication per padded item).
    pub fn new(config: &PsiConfig, run_id: RunId, items: &[Identifier]) -> Result<Self, PsiError> {
        let key = SecretKey::random();
        let (own, blinded) = OwnSet::build(config, &run_id, &key, items)?;
        let padded = own.slots.len();
        Ok(Initiator {
            run_id,
            key,
            own,
            query: outgoing::<M>(config, run_id, MessageKind::InitiatorBlinded, blinded),
            echo: Inbox::new(MessageKind::ResponderEcho, Expect::Exactly(padded)),
            peer: Peer::Collecting(Inbox::new(
                MessageKind::ResponderBlinded,
                Expect::AtMost(config.max_peer_points),
            )),
            config: config.clone(),
            aborted: false,
            _mode: PhantomData,
        })
    }

    /// The run id.
    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    /// Message 1, to send to the responder.
    pub fn query(&self) -> &Outgoing {
        &self.query
    }

    /// Takes one chunk of message 2 (`ResponderBlinded`) or 3 (`ResponderEcho`), in any order.
    pub fn receive(&mut self, chunk: &[u8]) -> Result<ChunkReceipt, PsiError> {
        let run_id = self.run_id;
        let (echo, peer) = (&mut self.echo, &mut self.peer);
        guarded(&mut self.aborted, || {
            let msg = decode_for::<M>(run_id, chunk)?;
            match (msg.kind(), peer) {
                (MessageKind::ResponderEcho, _) => echo.accept(msg),
                (MessageKind::ResponderBlinded, Peer::Collecting(inbox)) => inbox.accept(msg),
                // A resent chunk of message 2 after it was re-blinded: nothing to do.
                (MessageKind::ResponderBlinded, Peer::Reblinded { .. }) => {
                    Err(PsiError::StaleMessage { kind: msg.kind() })
                }
                (kind, _) => Err(PsiError::UnexpectedMessage {
                    kind,
                    state: "the initiator receives only the responder's messages",
                }),
            }
        })
    }

    /// Whether messages 2 and 3 are complete, so [`Initiator::finish`] can run.
    pub fn is_ready(&self) -> bool {
        !self.aborted && self.echo.is_complete() && self.peer.is_complete()
    }

    /// Re-blinds the responder's points (message 2, complete) under this side's secret,
    /// checking each is a valid group element, before the echo (message 3) is in. The
    /// responder computes the echo from message 1 meanwhile, so calling this while it does
    /// overlaps the two sides' largest steps. [`Initiator::finish`] does it itself otherwise.
    ///
    /// Calling it again does nothing; an error (including [`PsiError::NotReady`]) ends the run.
    pub fn reblind_peer(&mut self) -> Result<(), PsiError> {
        let key = &self.key;
        let peer = &mut self.peer;
        guarded(&mut self.aborted, || {
            let inbox = match peer {
                Peer::Reblinded { .. } => return Ok(()),
                Peer::Collecting(inbox) if !inbox.is_complete() => {
                    return Err(PsiError::NotReady(MessageKind::ResponderBlinded))
                }
                Peer::Collecting(inbox) => std::mem::replace(
                    inbox,
                    Inbox::new(MessageKind::ResponderBlinded, Expect::AtMost(0)),
                ),
            };
            let assembled = inbox
                .assemble()
                .ok_or(PsiError::NotReady(MessageKind::ResponderBlinded))?;
            let padded = assembled.points.len();
            let points = group::reblind_peer(
                key,
                MessageKind::ResponderBlinded,
                &assembled.points,
                &assembled.chunk_starts,
            )?;
            drop(assembled);
            let set = Set32::from_values(points.iter());
            *peer = Peer::Reblinded {
                points,
                set,
                padded,
            };
            Ok(())
        })
    }

    /// Computes this side's outcome and message 4 (to send to the responder): re-blinds the
    /// responder's points if [`Initiator::reblind_peer`] has not, and compares.
    ///
    /// Consumes the initiator: call it once [`Initiator::is_ready`] is true, as an error here
    /// (including [`PsiError::NotReady`]) ends the run.
    pub fn finish(mut self) -> Result<(M::Outcome, Outgoing), PsiError> {
        if self.aborted {
            return Err(PsiError::Aborted);
        }
        if !self.echo.is_complete() {
            return Err(PsiError::NotReady(MessageKind::ResponderEcho));
        }
        self.reblind_peer()?;
        let Peer::Reblinded {
            points: theirs_ab,
            set,
            padded: peer_set_size_padded,
        } = self.peer
        else {
            return Err(PsiError::NotReady(MessageKind::ResponderBlinded));
        };
        let echo = self
            .echo
            .assemble()
            .ok_or(PsiError::NotReady(MessageKind::ResponderEcho))?;
        let outcome = self
            .own
            .conclude::<M>(&echo.points, &set, peer_set_size_padded);
        drop(set);
        let reply = outgoing::<M>(
            &self.config,
            self.run_id,
            MessageKind::InitiatorEcho,
            shuffled_if_counts::<M>(theirs_ab),
        );
        Ok((outcome, reply))
    }
}

/// The party that answers a run, before message 1 is complete. See the
/// [module documentation](self) for the flow.
pub struct Responder<M: PsiMode> {
    run_id: RunId,
    key: SecretKey,
    own: OwnSet,
    own_points: Outgoing,
    query: Inbox,
    config: PsiConfig,
    aborted: bool,
    _mode: PhantomData<M>,
}

impl<M: PsiMode> fmt::Debug for Responder<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("mode", &M::MODE)
            .field("run_id", &self.run_id)
            .field("padded", &self.own.slots.len())
            .field("query_complete", &self.query.is_complete())
            .field("aborted", &self.aborted)
            .finish()
    }
}

impl<M: PsiMode> Responder<M> {
    /// Joins run `run_id`: draws a fresh secret, then deduplicates, pads, shuffles and blinds
    /// `items` into message 2 ([`Responder::own_points`]), which can be sent at once.
    pub fn new(config: &PsiConfig, run_id: RunId, items: &[Identifier]) -> Result<Self, PsiError> {
        let key = SecretKey::random();
        let (own, blinded) = OwnSet::build(config, &run_id, &key, items)?;
        Ok(Responder {
            run_id,
            key,
            own,
            own_points: outgoing::<M>(config, run_id, MessageKind::ResponderBlinded, blinded),
            query: Inbox::new(
                MessageKind::InitiatorBlinded,
                Expect::AtMost(config.max_peer_points),
            ),
            config: config.clone(),
            aborted: false,
            _mode: PhantomData,
        })
    }

    /// The run id.
    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    /// Message 2, to send to the initiator.
    pub fn own_points(&self) -> &Outgoing {
        &self.own_points
    }

    /// Takes one chunk of message 1 (`InitiatorBlinded`), in any order.
    pub fn receive(&mut self, chunk: &[u8]) -> Result<ChunkReceipt, PsiError> {
        let run_id = self.run_id;
        let query = &mut self.query;
        guarded(&mut self.aborted, || {
            let msg = decode_for::<M>(run_id, chunk)?;
            match msg.kind() {
                MessageKind::InitiatorBlinded => query.accept(msg),
                kind => Err(PsiError::UnexpectedMessage {
                    kind,
                    state: "the responder is waiting for the initiator's blinded set",
                }),
            }
        })
    }

    /// Whether message 1 is complete, so [`Responder::respond`] can run.
    pub fn is_ready(&self) -> bool {
        !self.aborted && self.query.is_complete()
    }

    /// Re-blinds the initiator's points (checking each is a valid group element) into message 3
    /// and moves on to wait for message 4.
    ///
    /// Consumes the responder, whose secret is then dropped and zeroized: call it once
    /// [`Responder::is_ready`] is true, as an error here (including [`PsiError::NotReady`]) ends
    /// the run.
    pub fn respond(self) -> Result<ResponderAwaitingFinal<M>, PsiError> {
        if self.aborted {
            return Err(PsiError::Aborted);
        }
        let query = self
            .query
            .assemble()
            .ok_or(PsiError::NotReady(MessageKind::InitiatorBlinded))?;
        let peer_set_size_padded = query.points.len();
        let echo = group::reblind_peer(
            &self.key,
            MessageKind::InitiatorBlinded,
            &query.points,
            &query.chunk_starts,
        )?;
        drop(query);
        let padded = self.own.slots.len();
        Ok(ResponderAwaitingFinal {
            run_id: self.run_id,
            own: self.own,
            own_points: self.own_points,
            echo: outgoing::<M>(
                &self.config,
                self.run_id,
                MessageKind::ResponderEcho,
                shuffled_if_counts::<M>(echo),
            ),
            last: Inbox::new(MessageKind::InitiatorEcho, Expect::Exactly(padded)),
            peer_set_size_padded,
            aborted: false,
            _mode: PhantomData,
        })
    }
}

/// The responder after message 3, waiting for message 4. Its secret is already dropped
/// (zeroized): nothing left to compute needs it.
pub struct ResponderAwaitingFinal<M: PsiMode> {
    run_id: RunId,
    own: OwnSet,
    own_points: Outgoing,
    echo: Outgoing,
    last: Inbox,
    peer_set_size_padded: usize,
    aborted: bool,
    _mode: PhantomData<M>,
}

impl<M: PsiMode> fmt::Debug for ResponderAwaitingFinal<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponderAwaitingFinal")
            .field("mode", &M::MODE)
            .field("run_id", &self.run_id)
            .field("final_complete", &self.last.is_complete())
            .field("aborted", &self.aborted)
            .finish()
    }
}

impl<M: PsiMode> ResponderAwaitingFinal<M> {
    /// The run id.
    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    /// Message 2 again, for resending chunks the initiator lacks.
    pub fn own_points(&self) -> &Outgoing {
        &self.own_points
    }

    /// Message 3, to send to the initiator.
    pub fn echo(&self) -> &Outgoing {
        &self.echo
    }

    /// Takes one chunk of message 4 (`InitiatorEcho`), in any order. A late chunk of message 1
    /// gives [`PsiError::StaleMessage`], which does not abort the run.
    pub fn receive(&mut self, chunk: &[u8]) -> Result<ChunkReceipt, PsiError> {
        let run_id = self.run_id;
        let last = &mut self.last;
        guarded(&mut self.aborted, || {
            let msg = decode_for::<M>(run_id, chunk)?;
            match msg.kind() {
                MessageKind::InitiatorEcho => last.accept(msg),
                MessageKind::InitiatorBlinded => Err(PsiError::StaleMessage { kind: msg.kind() }),
                kind => Err(PsiError::UnexpectedMessage {
                    kind,
                    state: "the responder is waiting for the initiator's echo",
                }),
            }
        })
    }

    /// Whether message 4 is complete, so [`ResponderAwaitingFinal::finish`] can run.
    pub fn is_ready(&self) -> bool {
        !self.aborted && self.last.is_complete()
    }

    /// Compares message 4 with message 3 and yields this side's outcome. Call it once
    /// [`ResponderAwaitingFinal::is_ready`] is true; an error here ends the run.
    pub fn finish(self) -> Result<M::Outcome, PsiError> {
        if self.aborted {
            return Err(PsiError::Aborted);
        }
        let last = self
            .last
            .assemble()
            .ok_or(PsiError::NotReady(MessageKind::InitiatorEcho))?;
        let set = Set32::from_values(self.echo.points.iter());
        Ok(self
            .own
            .conclude::<M>(&last.points, &set, self.peer_set_size_padded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_are_shuffled_only_in_counts_only_mode() {
        let points: Vec<[u8; 32]> = (0..64u8).map(|i| [i; 32]).collect();
        assert_eq!(shuffled_if_counts::<Full>(points.clone()), points);
        // A shuffle of 64 distinct points keeps their order with probability 1/64!.
        let shuffled = shuffled_if_counts::<CountsOnly>(points.clone());
        assert_ne!(shuffled, points);
        let mut sorted = shuffled;
        sorted.sort();
        assert_eq!(sorted, points);
    }

    #[test]
    fn padding_rules() {
        let p = Padding::PowerOfTwo { min: 1024 };
        assert_eq!(p.padded_len(0), 1024);
        assert_eq!(p.padded_len(1025), 2048);
        assert_eq!(p.padded_len(1 << 20), 1 << 20);
        let m = Padding::MultipleOf { step: 1000 };
        assert_eq!(m.padded_len(0), 1000);
        assert_eq!(m.padded_len(1000), 1000);
        assert_eq!(m.padded_len(1001), 2000);
        assert_eq!(Padding::MultipleOf { step: 0 }.padded_len(3), 3);
        assert_eq!(PsiConfig::new(1 << 20).max_peer_points, 1 << 20);
        assert!(PsiConfig::default().validate().is_ok());
    }
}
