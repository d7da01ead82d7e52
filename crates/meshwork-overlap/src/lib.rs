//! PartnerMesh overlap: how two companies learn which accounts and contacts they share without
//! seeing each other's raw data.
//!
//! This crate owns the pure parts of that, with no IO and no async:
//!
//! - [`normalize`]: turning raw e-mail addresses, company URLs or domains, and phone numbers
//!   into canonical [`Identifier`]s, so that equal things compare equal;
//! - [`token`]: same-server matching, `HMAC-SHA256(partnership key, kind tag ‖ 0x00 ‖ value)`
//!   match tokens, computed on demand and discarded;
//! - [`psi`]: two-server matching, an ECDH private set intersection over ristretto255 as
//!   explicit state machines (initiator and responder), in full or counts-only mode, with
//!   padding, caps and chunked, resumable messages;
//! - [`wire`]: the binary codec of the PSI messages.
//!
//! Moving the chunks (HTTPS, retries, resumption), authenticating the peer server, dual opt-in,
//! rate limits and audit belong to the server. `docs/overlap-protocol.md` describes the schemes
//! and their security argument.

#![forbid(unsafe_code)]

pub mod normalize;
pub mod psi;
mod set32;
pub mod token;
pub mod wire;

pub use normalize::{Identifier, NormalizeError};
pub use psi::{
    ChunkReceipt, CountOutcome, CountsOnly, Full, Initiator, Outgoing, Padding, PsiConfig,
    PsiError, PsiMode, Responder, ResponderAwaitingFinal, SharedOutcome,
};
pub use token::{match_token, MatchToken, Tokenizer};
pub use wire::{Message, MessageKind, Mode, RunId, WireError};
