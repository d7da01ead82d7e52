//! Turning the bytes of an uploaded file into a stream of UTF-8 bytes, in bounded memory.
//!
//! Detection looks only at the first [`SNIFF_BYTES`]: a byte-order mark wins; then UTF-16 without a
//! mark when every other byte is NUL; then UTF-8 if that prefix is valid UTF-8 (a character cut in
//! two at the end of the prefix is allowed); otherwise windows-1252, the superset of Latin-1 that
//! Excel writes on Western European systems.
//!
//! UTF-8 input is passed through unchanged, not validated here: the CSV and vCard readers check
//! each record, so one bad byte on row 90,000 rejects that row instead of the whole file or,
//! worse, silently becoming U+FFFD. Other encodings are transcoded; a malformed sequence there
//! (an unpaired UTF-16 surrogate) is written out as the byte 0xFF, which can never occur in
//! UTF-8, so the same per-record check catches it and names the encoding.

use std::io::{self, Read};

use encoding_rs::{Decoder, DecoderResult, Encoding, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252};

/// How much of the file's start is examined to choose an encoding.
pub(crate) const SNIFF_BYTES: usize = 64 * 1024;

/// The UTF-8 stream of a file, and the encoding it was read in.
pub(crate) struct Utf8Stream<R> {
    encoding: &'static Encoding,
    source: Source<R>,
}

impl<R> std::fmt::Debug for Utf8Stream<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Utf8Stream")
            .field("encoding", &self.encoding.name())
            .finish()
    }
}

enum Source<R> {
    /// UTF-8: the (BOM-less) prefix, then the rest of the reader, unchanged.
    Plain(io::Chain<io::Cursor<Vec<u8>>, R>),
    Transcoded(Box<Transcoder<io::Chain<io::Cursor<Vec<u8>>, R>>>),
}

impl<R: Read> Utf8Stream<R> {
    /// Reads the start of `reader`, chooses an encoding (or uses `forced`), and returns the
    /// stream. Returns the number of raw bytes seen in the prefix too, so callers can tell an
    /// empty file apart.
    pub(crate) fn open(
        mut reader: R,
        forced: Option<&'static Encoding>,
    ) -> io::Result<(Self, usize)> {
        let mut prefix = Vec::with_capacity(SNIFF_BYTES);
        (&mut reader)
            .take(SNIFF_BYTES as u64)
            .read_to_end(&mut prefix)?;
        let prefix_len = prefix.len();
        let at_eof = prefix_len < SNIFF_BYTES;
        let (encoding, bom_len) = match forced {
            Some(enc) => {
                let bom = match Encoding::for_bom(&prefix) {
                    Some((bom_enc, len)) if bom_enc == enc => len,
                    _ => 0,
                };
                (enc, bom)
            }
            None => detect(&prefix, at_eof),
        };
        prefix.drain(..bom_len);
        let chained = io::Cursor::new(prefix).chain(reader);
        let source = if encoding == UTF_8 {
            Source::Plain(chained)
        } else {
            Source::Transcoded(Box::new(Transcoder::new(chained, encoding)))
        };
        Ok((Utf8Stream { encoding, source }, prefix_len))
    }

    pub(crate) fn encoding(&self) -> &'static Encoding {
        self.encoding
    }
}

impl<R: Read> Read for Utf8Stream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.source {
            Source::Plain(r) => r.read(buf),
            Source::Transcoded(t) => t.read(buf),
        }
    }
}

/// Chooses the encoding of a file from its first bytes; returns it and the length of its BOM.
pub(crate) fn detect(prefix: &[u8], at_eof: bool) -> (&'static Encoding, usize) {
    if let Some((enc, len)) = Encoding::for_bom(prefix) {
        return (enc, len);
    }
    if let Some(enc) = utf16_without_bom(prefix) {
        return (enc, 0);
    }
    match std::str::from_utf8(prefix) {
        Ok(_) => (UTF_8, 0),
        // The prefix ends inside a character: only acceptable where we cut the file ourselves.
        Err(e) if e.error_len().is_none() && !at_eof => (UTF_8, 0),
        Err(_) => (WINDOWS_1252, 0),
    }
}

/// UTF-16 text of mostly ASCII characters has a NUL in every other byte; nothing else does.
fn utf16_without_bom(prefix: &[u8]) -> Option<&'static Encoding> {
    let pairs = prefix.len() / 2;
    if pairs < 2 {
        return None;
    }
    let (mut even_nul, mut odd_nul) = (0usize, 0usize);
    for pair in prefix.chunks_exact(2) {
        even_nul += usize::from(pair[0] == 0);
        odd_nul += usize::from(pair[1] == 0);
    }
    // At least 40% of characters are ASCII and no NUL on the other side.
    if odd_nul * 10 >= pairs * 4 && even_nul == 0 {
        Some(UTF_16LE)
    } else if even_nul * 10 >= pairs * 4 && odd_nul == 0 {
        Some(UTF_16BE)
    } else {
        None
    }
}

/// A streaming decoder from any encoding_rs encoding to UTF-8 bytes.
struct Transcoder<R> {
    inner: R,
    decoder: Decoder,
    input: Box<[u8]>,
    in_start: usize,
    in_end: usize,
    input_done: bool,
    output: Box<[u8]>,
    out_start: usize,
    out_end: usize,
    finished: bool,
}

impl<R: Read> Transcoder<R> {
    fn new(inner: R, encoding: &'static Encoding) -> Self {
        Transcoder {
            inner,
            decoder: encoding.new_decoder_without_bom_handling(),
            input: vec![0; 16 * 1024].into_boxed_slice(),
            in_start: 0,
            in_end: 0,
            input_done: false,
            // Any single character decodes to at most 4 bytes; a malformed marker is 1.
            output: vec![0; 48 * 1024].into_boxed_slice(),
            out_start: 0,
            out_end: 0,
            finished: false,
        }
    }

    /// Decodes more input into `output`, which must be empty.
    fn decode_more(&mut self) -> io::Result<()> {
        self.out_start = 0;
        self.out_end = 0;
        while self.out_end == 0 && !self.finished {
            if self.in_start == self.in_end && !self.input_done {
                let n = read_retrying(&mut self.inner, &mut self.input)?;
                self.in_start = 0;
                self.in_end = n;
                self.input_done = n == 0;
            }
            let last = self.input_done;
            // Leave room for the 0xFF marker after a malformed sequence.
            let room = self.output.len() - 1;
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                &self.input[self.in_start..self.in_end],
                &mut self.output[self.out_end..room],
                last,
            );
            self.in_start += read;
            self.out_end += written;
            match result {
                DecoderResult::InputEmpty => self.finished = last,
                DecoderResult::OutputFull => {}
                DecoderResult::Malformed(_, _) => {
                    self.output[self.out_end] = 0xFF;
                    self.out_end += 1;
                }
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Transcoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.out_start == self.out_end {
            self.decode_more()?;
        }
        let n = buf.len().min(self.out_end - self.out_start);
        buf[..n].copy_from_slice(&self.output[self.out_start..self.out_start + n]);
        self.out_start += n;
        Ok(n)
    }
}

/// `Read::read`, retried on `Interrupted`.
pub(crate) fn read_retrying<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Fills `buf` as far as the reader allows; returns how much was read (short only at the end).
pub(crate) fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = read_retrying(reader, &mut buf[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> (String, &'static str) {
        let (mut s, _) = Utf8Stream::open(bytes, None).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        (
            String::from_utf8_lossy(&out).into_owned(),
            s.encoding().name(),
        )
    }

    #[test]
    fn a_utf8_character_cut_at_the_sniff_boundary_is_still_utf8() {
        let mut bytes = vec![b'a'; SNIFF_BYTES - 1];
        bytes.extend_from_slice("ü and more".as_bytes());
        let (text, enc) = decode_all(&bytes);
        assert_eq!(enc, "UTF-8");
        assert!(text.ends_with("ü and more"));
    }

    #[test]
    fn utf16_without_bom_is_recognised_by_its_nul_bytes() {
        let le: Vec<u8> = "Name,Email\n"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        let be: Vec<u8> = "Name,Email\n"
            .encode_utf16()
            .flat_map(|u| u.to_be_bytes())
            .collect();
        assert_eq!(decode_all(&le), ("Name,Email\n".to_string(), "UTF-16LE"));
        assert_eq!(decode_all(&be), ("Name,Email\n".to_string(), "UTF-16BE"));
    }

    #[test]
    fn an_unpaired_surrogate_becomes_the_invalid_byte_marker() {
        // "a", lone high surrogate D800, "b" in UTF-16LE with a BOM.
        let bytes = [0xFF, 0xFE, b'a', 0, 0x00, 0xD8, b'b', 0];
        let (mut s, _) = Utf8Stream::open(&bytes[..], None).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        assert_eq!(out, [b'a', 0xFF, b'b']);
    }

    #[test]
    fn a_long_latin1_file_is_transcoded_across_buffer_boundaries() {
        let mut bytes = Vec::new();
        for _ in 0..20_000 {
            bytes.extend_from_slice(b"M\xfcller;");
        }
        let (text, enc) = decode_all(&bytes);
        assert_eq!(enc, "windows-1252");
        assert_eq!(text, "Müller;".repeat(20_000));
    }
}
