//! Files uploaded for a background job (an import through the API), kept on disk sealed with the
//! workspace key so that no plaintext reaches the data directory, and read back through a
//! decrypting reader.
//!
//! Format: a sequence of frames, each a 4-byte big-endian length and one sealed chunk of at most
//! [`CHUNK`] plaintext bytes. Chunk `n` is sealed with the associated data
//! `(workspace, upload id, "upload/n")`, the last one with `"upload/n/last"`, so chunks cannot be
//! reordered, moved between uploads, dropped or truncated without the reader noticing.

use meshwork_domain::WorkspaceId;
use meshwork_keyring::{Aad, DataKey};
use std::io::{self, BufReader, Read, Write};
use std::path::Path;
use std::sync::Arc;

/// Plaintext bytes per sealed chunk.
pub const CHUNK: usize = 1 << 20;
/// Largest sealed frame accepted when reading (a chunk plus the AEAD overhead, with room).
const MAX_FRAME: usize = CHUNK + 1024;

fn field(index: u64, last: bool) -> String {
    if last {
        format!("upload/{index}/last")
    } else {
        format!("upload/{index}")
    }
}

/// Writes an upload, sealing it chunk by chunk.
pub struct SealedWriter {
    out: io::BufWriter<std::fs::File>,
    key: Arc<DataKey>,
    scope: String,
    id: String,
    index: u64,
    buf: Vec<u8>,
    len: u64,
}

impl std::fmt::Debug for SealedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedWriter")
            .field("id", &self.id)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl SealedWriter {
    pub fn create(path: &Path, key: Arc<DataKey>, ws: WorkspaceId, id: &str) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        Ok(Self {
            out: io::BufWriter::new(std::fs::File::create(path)?),
            key,
            scope: ws.to_string(),
            id: id.to_string(),
            index: 0,
            buf: Vec::with_capacity(CHUNK),
            len: 0,
        })
    }

    fn frame(&mut self, last: bool) -> io::Result<()> {
        let field = field(self.index, last);
        let sealed = self.key.seal(
            Aad {
                scope: &self.scope,
                record: &self.id,
                field: &field,
            },
            &self.buf,
        );
        self.out.write_all(&(sealed.len() as u32).to_be_bytes())?;
        self.out.write_all(&sealed)?;
        self.buf.clear();
        self.index += 1;
        Ok(())
    }

    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.len += data.len() as u64;
        while !data.is_empty() {
            let room = CHUNK - self.buf.len();
            let (now, rest) = data.split_at(room.min(data.len()));
            self.buf.extend_from_slice(now);
            data = rest;
            if self.buf.len() == CHUNK {
                self.frame(false)?;
            }
        }
        Ok(())
    }

    /// Seals the last chunk and flushes the file to disk; answers the plaintext length.
    pub fn finish(mut self) -> io::Result<u64> {
        self.frame(true)?;
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        Ok(self.len)
    }
}

/// Reads an upload back, checking every chunk and that the last one was reached.
pub struct SealedReader {
    input: BufReader<std::fs::File>,
    key: Arc<DataKey>,
    scope: String,
    id: String,
    index: u64,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl std::fmt::Debug for SealedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedReader")
            .field("id", &self.id)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

fn damaged(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the stored upload is damaged: {why}"),
    )
}

impl SealedReader {
    pub fn open(path: &Path, key: Arc<DataKey>, ws: WorkspaceId, id: &str) -> io::Result<Self> {
        Ok(Self {
            input: BufReader::new(std::fs::File::open(path)?),
            key,
            scope: ws.to_string(),
            id: id.to_string(),
            index: 0,
            buf: Vec::new(),
            pos: 0,
            done: false,
        })
    }

    /// Loads the next chunk; false at the end.
    fn next_chunk(&mut self) -> io::Result<bool> {
        if self.done {
            return Ok(false);
        }
        let mut len = [0u8; 4];
        match self.input.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(damaged("it ends before its last chunk"))
            }
            Err(e) => return Err(e),
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(damaged("a chunk is too long"));
        }
        let mut sealed = vec![0u8; len];
        self.input
            .read_exact(&mut sealed)
            .map_err(|_| damaged("a chunk is cut short"))?;
        let open = |last: bool| {
            let field = field(self.index, last);
            self.key.open(
                Aad {
                    scope: &self.scope,
                    record: &self.id,
                    field: &field,
                },
                &sealed,
            )
        };
        let (plain, last) = match open(false) {
            Ok(p) => (p, false),
            Err(_) => (
                open(true)
                    .map_err(|_| damaged("a chunk does not open (wrong key, order or upload)"))?,
                true,
            ),
        };
        self.index += 1;
        if last {
            self.done = true;
            let mut rest = [0u8; 1];
            if self.input.read(&mut rest)? != 0 {
                return Err(damaged("bytes follow its last chunk"));
            }
        }
        self.buf = plain;
        self.pos = 0;
        Ok(true)
    }
}

impl Read for SealedReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            if !self.next_chunk()? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshwork_keyring::{Keyring, MasterKey};

    fn key() -> (tempfile::TempDir, Arc<DataKey>, WorkspaceId) {
        let dir = tempfile::tempdir().unwrap();
        let (master, _) = MasterKey::load_or_create(&dir.path().join("master.key"), true).unwrap();
        let ring = Keyring::open(&dir.path().join("keyring"), master).unwrap();
        let ws = WorkspaceId::new();
        let key = ring.create_workspace_key(ws.as_uuid()).unwrap();
        (dir, key, ws)
    }

    #[test]
    fn an_upload_reads_back_whole_and_holds_no_plaintext() {
        let (dir, key, ws) = key();
        let path = dir.path().join("up.sealed");
        let data: Vec<u8> = (0..(2 * CHUNK + 123))
            .map(|i| b"email,name\nsecret@example.com,Ada\n"[i % 34])
            .collect();
        let mut w = SealedWriter::create(&path, key.clone(), ws, "job1").unwrap();
        for part in data.chunks(70_001) {
            w.write(part).unwrap();
        }
        assert_eq!(w.finish().unwrap(), data.len() as u64);
        let raw = std::fs::read(&path).unwrap();
        assert!(!raw.windows(6).any(|w| w == b"secret"));
        let mut back = Vec::new();
        SealedReader::open(&path, key.clone(), ws, "job1")
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        // Another upload id, a truncated file or appended bytes are refused.
        let mut out = Vec::new();
        assert!(SealedReader::open(&path, key.clone(), ws, "job2")
            .unwrap()
            .read_to_end(&mut out)
            .is_err());
        let cut = dir.path().join("cut.sealed");
        let first_frame = 4 + u32::from_be_bytes(raw[..4].try_into().unwrap()) as usize;
        std::fs::write(&cut, &raw[..first_frame]).unwrap();
        let e = SealedReader::open(&cut, key.clone(), ws, "job1")
            .unwrap()
            .read_to_end(&mut out)
            .unwrap_err();
        assert!(e.to_string().contains("before its last chunk"), "{e}");
        let long = dir.path().join("long.sealed");
        std::fs::write(&long, [raw.as_slice(), b"x"].concat()).unwrap();
        assert!(SealedReader::open(&long, key, ws, "job1")
            .unwrap()
            .read_to_end(&mut out)
            .is_err());
    }
}
