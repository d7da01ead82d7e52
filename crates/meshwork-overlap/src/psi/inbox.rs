//! Reassembly of one chunked message.

use std::collections::HashMap;

use crate::wire::{Message, MessageKind};

use super::{ChunkReceipt, PsiError};

/// How many points a message must or may hold.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Expect {
    /// An echo of our own list: exactly this many points.
    Exactly(usize),
    /// The peer's own list: at most this many points (the cap).
    AtMost(usize),
}

/// Collects the chunks of one message in any order.
///
/// Memory grows only with points actually received (bounded by the cap), never with a count a
/// peer claims.
#[derive(Debug)]
pub(crate) struct Inbox {
    kind: MessageKind,
    expect: Expect,
    total_chunks: Option<u32>,
    chunks: HashMap<u32, Vec<[u8; 32]>>,
    points: usize,
}

/// A complete message: its points in chunk order, and where each chunk starts.
#[derive(Debug)]
pub(crate) struct Assembled {
    pub(crate) points: Vec<[u8; 32]>,
    pub(crate) chunk_starts: Vec<usize>,
}

impl Inbox {
    pub(crate) fn new(kind: MessageKind, expect: Expect) -> Self {
        Inbox {
            kind,
            expect,
            total_chunks: None,
            chunks: HashMap::new(),
            points: 0,
        }
    }

    fn limit(&self) -> usize {
        match self.expect {
            Expect::Exactly(n) | Expect::AtMost(n) => n,
        }
    }

    fn too_many(&self, at_least: usize) -> PsiError {
        match self.expect {
            Expect::Exactly(expected) => PsiError::EchoLengthMismatch {
                kind: self.kind,
                expected,
                got: at_least,
            },
            Expect::AtMost(max) => PsiError::PeerSetTooLarge {
                kind: self.kind,
                points: at_least,
                max,
            },
        }
    }

    /// Adds a chunk. The caller has checked run id, mode and kind.
    pub(crate) fn accept(&mut self, msg: Message) -> Result<ChunkReceipt, PsiError> {
        let total = msg.total_chunks();
        let index = msg.chunk_index();
        match self.total_chunks {
            Some(t) if t != total => {
                return Err(PsiError::InconsistentTotalChunks {
                    kind: self.kind,
                    expected: t,
                    got: total,
                })
            }
            Some(_) => {}
            None => {
                // Every chunk holds at least one point, so more chunks than allowed points
                // can never be a valid message.
                if total as usize > self.limit() {
                    return Err(self.too_many(total as usize));
                }
                self.total_chunks = Some(total);
            }
        }
        let duplicate = match self.chunks.get(&index) {
            Some(existing) if existing.as_slice() == msg.points() => true,
            Some(_) => {
                return Err(PsiError::ConflictingChunk {
                    kind: self.kind,
                    chunk_index: index,
                })
            }
            None => {
                let points = self.points + msg.points().len();
                if points > self.limit() {
                    return Err(self.too_many(points));
                }
                self.points = points;
                self.chunks.insert(index, msg.into_points());
                false
            }
        };
        let received = self.chunks.len() as u32;
        let complete = received == total;
        if complete {
            if let Expect::Exactly(expected) = self.expect {
                if self.points != expected {
                    return Err(PsiError::EchoLengthMismatch {
                        kind: self.kind,
                        expected,
                        got: self.points,
                    });
                }
            }
        }
        Ok(ChunkReceipt {
            kind: self.kind,
            chunk_index: index,
            total_chunks: total,
            received_chunks: received,
            duplicate,
            message_complete: complete,
        })
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.total_chunks
            .is_some_and(|t| self.chunks.len() as u32 == t)
    }

    /// The message, once complete.
    pub(crate) fn assemble(mut self) -> Option<Assembled> {
        let total = self.total_chunks?;
        if self.chunks.len() as u32 != total {
            return None;
        }
        let mut points = Vec::with_capacity(self.points);
        let mut chunk_starts = Vec::with_capacity(total as usize);
        for i in 0..total {
            chunk_starts.push(points.len());
            points.extend_from_slice(&self.chunks.remove(&i)?);
        }
        Some(Assembled {
            points,
            chunk_starts,
        })
    }
}
