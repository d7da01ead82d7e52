//! Reading contacts from vCard files (versions 2.1, 3.0 and 4.0), one card at a time.
//!
//! Each card becomes a [`MappedRow`] of contact fields: `FN` → `full_name`, `N` → `last_name`
//! and `first_name`, `EMAIL` → `email` (each one), `TEL` → `phone`, `ORG` → `company_name`,
//! `TITLE` → `title`, `UID` → `external_id`, `CATEGORIES` → `tags` (one per category). Other
//! properties (`NOTE`, `ADR`, `PHOTO`, ...) are ignored.
//!
//! Handled: line folding (RFC 6350 §3.2: a line starting with a space or tab continues the
//! previous one), property groups (`item1.EMAIL`), quoted parameter values, text escapes
//! (`\n`, `\,`, `\;`, `\\`), `tel:` URIs, and 2.1/3.0 `QUOTED-PRINTABLE` values with soft line
//! breaks and a `CHARSET` parameter. A card missing `END:VCARD`, holding a line that is not a
//! property, or larger than [`ReaderOptions::max_record_bytes`] becomes a [`RowError`] and
//! reading goes on with the next card. Text outside cards is skipped.

use std::io::{self, Read};

use encoding_rs::{Encoding, UTF_8};

use crate::csv_rows::ReaderOptions;
use crate::decode::{read_retrying, Utf8Stream};
use crate::row::{human_size, Field, FileError, MappedRow, RowError};

/// Reads physical lines (without their `\n` or `\r\n`) in bounded memory.
struct LineReader<R> {
    src: R,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    eof: bool,
    /// The number of the last line returned.
    line: u64,
}

impl<R: Read> LineReader<R> {
    /// Puts the next line into `out`; `Some(false)` when it was longer than `limit` (then `out`
    /// is empty), `None` at the end of the input.
    fn next_line(&mut self, out: &mut Vec<u8>, limit: usize) -> io::Result<Option<bool>> {
        out.clear();
        let (mut any, mut too_long) = (false, false);
        loop {
            if self.pos == self.len {
                if self.eof {
                    break;
                }
                self.len = read_retrying(&mut self.src, &mut self.buf)?;
                self.pos = 0;
                self.eof = self.len == 0;
                continue;
            }
            any = true;
            let chunk = &self.buf[self.pos..self.len];
            let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (&chunk[..i], true),
                None => (chunk, false),
            };
            if !too_long {
                if out.len() + take.len() > limit {
                    too_long = true;
                    out.clear();
                } else {
                    out.extend_from_slice(take);
                }
            }
            self.pos += take.len() + usize::from(done);
            if done {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        if out.last() == Some(&b'\r') {
            out.pop();
        }
        self.line += 1;
        Ok(Some(!too_long))
    }
}

/// The contacts of a vCard file; see [`read_vcards`].
pub struct VcardRows<R: Read> {
    lines: LineReader<Utf8Stream<R>>,
    encoding: &'static Encoding,
    max_bytes: usize,
    card: u64,
    /// The line of a `BEGIN:VCARD` already read, which starts the next card.
    pending_begin: Option<u64>,
    done: bool,
    scratch: Vec<u8>,
}

impl<R: Read> std::fmt::Debug for VcardRows<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VcardRows")
            .field("encoding", &self.encoding.name())
            .field("card", &self.card)
            .finish_non_exhaustive()
    }
}

/// Opens a vCard file of contacts. Each item is one card: `row` is the card's 1-based number,
/// `line` the line of its `BEGIN:VCARD`, and `raw` one cell holding the card's text.
/// `options.delimiter` is not used. Errors as in [`crate::CsvRows`]: a `RowError` with `fatal`
/// set ends the iteration.
pub fn read_vcards<R: Read>(reader: R, options: &ReaderOptions) -> Result<VcardRows<R>, FileError> {
    let (stream, raw_len) = Utf8Stream::open(reader, options.encoding)?;
    if raw_len == 0 {
        return Err(FileError::Empty);
    }
    let encoding = stream.encoding();
    let max_bytes = options.max_record_bytes.max(1);
    let mut lines = LineReader {
        src: stream,
        buf: vec![0; 64 * 1024].into_boxed_slice(),
        pos: 0,
        len: 0,
        eof: false,
        line: 0,
    };
    let mut scratch = Vec::new();
    loop {
        match lines.next_line(&mut scratch, max_bytes)? {
            None => return Err(FileError::NoCards),
            Some(fits) => {
                let text = String::from_utf8_lossy(&scratch);
                let text = text.trim().trim_start_matches('\u{feff}');
                if fits && text.is_empty() {
                    continue;
                }
                if fits && text.eq_ignore_ascii_case("BEGIN:VCARD") {
                    break;
                }
                let mut shown: String = text.chars().take(60).collect();
                if !fits {
                    shown = format!("longer than {}", human_size(max_bytes));
                }
                return Err(FileError::NotVcard {
                    line: lines.line,
                    text: shown,
                });
            }
        }
    }
    let pending_begin = Some(lines.line);
    Ok(VcardRows {
        lines,
        encoding,
        max_bytes,
        card: 0,
        pending_begin,
        done: false,
        scratch,
    })
}

/// A card as read: its logical (unfolded) lines and its text.
struct RawCard {
    line: u64,
    properties: Vec<(u64, String)>,
    text: String,
    problem: Option<String>,
}

impl<R: Read> VcardRows<R> {
    /// Finds the next `BEGIN:VCARD`; its line number, or `None` at the end.
    fn find_begin(&mut self) -> io::Result<Option<u64>> {
        if let Some(line) = self.pending_begin.take() {
            return Ok(Some(line));
        }
        while let Some(fits) = self.lines.next_line(&mut self.scratch, self.max_bytes)? {
            if fits && trimmed(&self.scratch).eq_ignore_ascii_case(b"BEGIN:VCARD") {
                return Ok(Some(self.lines.line));
            }
        }
        Ok(None)
    }

    /// Reads the lines of a card up to its `END:VCARD`.
    fn read_card(&mut self, begin: u64) -> io::Result<RawCard> {
        let mut card = RawCard {
            line: begin,
            properties: Vec::new(),
            text: "BEGIN:VCARD\n".to_string(),
            problem: None,
        };
        let mut too_large = false;
        let mut qp_continues = false;
        loop {
            let Some(fits) = self.lines.next_line(&mut self.scratch, self.max_bytes)? else {
                card.problem.get_or_insert_with(|| {
                    "the card has no END:VCARD: the file ends first".to_string()
                });
                break;
            };
            let line_no = self.lines.line;
            if fits && trimmed(&self.scratch).eq_ignore_ascii_case(b"END:VCARD") {
                if !too_large {
                    card.text.push_str("END:VCARD\n");
                }
                break;
            }
            if fits && trimmed(&self.scratch).eq_ignore_ascii_case(b"BEGIN:VCARD") {
                self.pending_begin = Some(line_no);
                card.problem.get_or_insert_with(|| {
                    format!("the card has no END:VCARD: a new card begins on line {line_no}")
                });
                break;
            }
            if too_large {
                continue;
            }
            if !fits || card.text.len() + self.scratch.len() + 1 > self.max_bytes {
                too_large = true;
                card.properties.clear();
                card.text.clear();
                card.problem = Some(format!(
                    "the card is larger than {} and was skipped",
                    human_size(self.max_bytes)
                ));
                continue;
            }
            let Ok(text) = std::str::from_utf8(&self.scratch) else {
                card.problem.get_or_insert_with(|| {
                    format!("line {line_no} is not valid {} text", self.encoding.name())
                });
                card.text.push_str(&String::from_utf8_lossy(&self.scratch));
                card.text.push('\n');
                continue;
            };
            card.text.push_str(text);
            card.text.push('\n');
            let folded = text.starts_with([' ', '\t']);
            match card.properties.last_mut() {
                Some((_, previous)) if folded => previous.push_str(&text[1..]),
                Some((_, previous)) if qp_continues => {
                    previous.pop(); // the soft line break's '='
                    previous.push_str(text);
                }
                _ if text.trim().is_empty() => {}
                _ => card.properties.push((line_no, text.to_string())),
            }
            qp_continues = card
                .properties
                .last()
                .is_some_and(|(_, p)| p.ends_with('=') && is_quoted_printable(p));
        }
        Ok(card)
    }

    fn map_card(&self, card: RawCard) -> Result<MappedRow, RowError> {
        let row = self.card;
        let raw = if card.text.is_empty() {
            Vec::new()
        } else {
            vec![card.text]
        };
        let error = |column: Option<String>, reason: String, raw: Vec<String>| RowError {
            row,
            line: card.line,
            column,
            reason,
            raw,
            fatal: false,
        };
        if let Some(problem) = card.problem {
            return Err(error(None, problem, raw));
        }
        let mut fields = Vec::new();
        for (line, text) in &card.properties {
            let property = match Property::parse(text) {
                Ok(p) => p,
                Err(reason) => return Err(error(None, format!("line {line}: {reason}"), raw)),
            };
            let name = property.name.to_ascii_uppercase();
            let value = match property.value() {
                Ok(v) => v,
                Err(reason) => {
                    return Err(error(Some(name), format!("line {line}: {reason}"), raw))
                }
            };
            let mut push = |target: &str, value: &str| {
                let value = value.trim();
                if !value.is_empty() {
                    fields.push(Field {
                        target: target.to_string(),
                        column: name.clone(),
                        value: value.to_string(),
                    });
                }
            };
            match name.as_str() {
                "VERSION" if !matches!(value.trim(), "2.1" | "3.0" | "4.0") => {
                    let reason = format!(
                        "line {line}: vCard version {:?} is not supported (2.1, 3.0 and 4.0 are)",
                        value.trim()
                    );
                    return Err(error(Some(name), reason, raw));
                }
                "FN" => push("full_name", &unescape(&value)),
                "N" => {
                    let parts = split_unescaped(&value, ';');
                    let join = |s: &String| {
                        split_unescaped(s, ',')
                            .iter()
                            .map(|p| unescape(p))
                            .collect::<Vec<_>>()
                            .join(" ")
                    };
                    if let Some(family) = parts.first() {
                        push("last_name", &join(family));
                    }
                    if let Some(given) = parts.get(1) {
                        push("first_name", &join(given));
                    }
                }
                "EMAIL" => push("email", &unescape(&value)),
                "TEL" => {
                    let v = unescape(&value);
                    let v = v.trim();
                    let number = match v.get(..4) {
                        Some(scheme) if scheme.eq_ignore_ascii_case("tel:") => &v[4..],
                        _ => v,
                    };
                    push("phone", number);
                }
                "ORG" => {
                    if let Some(org) = split_unescaped(&value, ';').first() {
                        push("company_name", &unescape(org));
                    }
                }
                "TITLE" => push("title", &unescape(&value)),
                "UID" => push("external_id", &unescape(&value)),
                "CATEGORIES" => {
                    for tag in split_unescaped(&value, ',') {
                        push("tags", &unescape(&tag));
                    }
                }
                _ => {}
            }
        }
        Ok(MappedRow {
            row,
            line: card.line,
            fields,
            raw,
        })
    }
}

impl<R: Read> Iterator for VcardRows<R> {
    type Item = Result<MappedRow, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let card = self.find_begin().and_then(|begin| match begin {
            Some(begin) => self.read_card(begin).map(Some),
            None => Ok(None),
        });
        match card {
            Ok(Some(card)) => {
                self.card += 1;
                Some(self.map_card(card))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(RowError {
                    row: self.card + 1,
                    line: self.lines.line,
                    column: None,
                    reason: format!("error reading the file: {e}"),
                    raw: Vec::new(),
                    fatal: true,
                }))
            }
        }
    }
}

fn trimmed(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// A content line: `[group.]name *(;param) : value`.
struct Property<'a> {
    name: &'a str,
    params: Vec<&'a str>,
    raw_value: &'a str,
}

impl<'a> Property<'a> {
    fn parse(line: &'a str) -> Result<Self, String> {
        // The value starts at the first ':' outside a quoted parameter value.
        let mut in_quotes = false;
        let colon = line.char_indices().find_map(|(i, c)| match c {
            '"' => {
                in_quotes = !in_quotes;
                None
            }
            ':' if !in_quotes => Some(i),
            _ => None,
        });
        let shown: String = line.chars().take(60).collect();
        let colon = colon.ok_or_else(|| format!("{shown:?} is not a vCard property (no \":\")"))?;
        let (head, raw_value) = (&line[..colon], &line[colon + 1..]);
        let mut parts = split_outside_quotes(head, ';').into_iter();
        let name_with_group = parts.next().unwrap_or_default();
        let name = name_with_group
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(format!(
                "{shown:?} is not a vCard property (bad name {name:?})"
            ));
        }
        Ok(Property {
            name,
            params: parts.collect(),
            raw_value,
        })
    }

    fn param(&self, key: &str) -> Option<&'a str> {
        self.params.iter().find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case(key)
                .then(|| v.trim().trim_matches('"'))
        })
    }

    /// The value with any quoted-printable encoding undone.
    fn value(&self) -> Result<String, String> {
        let qp = self.params.iter().any(|p| {
            let p = p.trim();
            p.eq_ignore_ascii_case("QUOTED-PRINTABLE")
                || p.split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("ENCODING")
                        && v.trim().eq_ignore_ascii_case("QUOTED-PRINTABLE")
                })
        });
        if !qp {
            return Ok(self.raw_value.to_string());
        }
        let bytes = decode_quoted_printable(self.raw_value);
        let charset = match self.param("CHARSET") {
            Some(label) => Encoding::for_label(label.as_bytes())
                .ok_or_else(|| format!("charset {label:?} is not known"))?,
            None => UTF_8,
        };
        let (text, had_errors) = charset.decode_without_bom_handling(&bytes);
        if had_errors {
            return Err(format!(
                "the quoted-printable value is not valid {} text",
                charset.name()
            ));
        }
        Ok(text.into_owned())
    }
}

fn is_quoted_printable(line: &str) -> bool {
    Property::parse(line).is_ok_and(|p| {
        p.params
            .iter()
            .any(|param| param.to_ascii_uppercase().contains("QUOTED-PRINTABLE"))
    })
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut in_quotes) = (0, false);
    for (i, c) in s.char_indices() {
        if c == '"' {
            in_quotes = !in_quotes;
        } else if c == sep && !in_quotes {
            out.push(&s[start..i]);
            start = i + 1;
        }
    }
    out.push(&s[start..]);
    out
}

/// Splits a structured value at `sep` characters not escaped by a backslash.
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let last = out.last_mut().expect("never empty");
                last.push('\\');
                if let Some(next) = chars.next() {
                    last.push(next);
                }
            }
            c if c == sep => out.push(String::new()),
            c => out.last_mut().expect("never empty").push(c),
        }
    }
    out
}

/// Undoes the text escapes of RFC 6350 §3.4.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn decode_quoted_printable(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
            if i + 1 == bytes.len() {
                break; // a trailing soft line break
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_values_split_only_at_unescaped_separators() {
        assert_eq!(
            split_unescaped(r"Doe\;Smith;Jane;;", ';'),
            vec![r"Doe\;Smith", "Jane", "", ""]
        );
        assert_eq!(unescape(r"a\,b\nc\\d"), "a,b\nc\\d");
    }

    #[test]
    fn quoted_printable_decodes_hex_escapes_and_drops_a_soft_break() {
        assert_eq!(decode_quoted_printable("M=C3=BCller="), "Müller".as_bytes());
        assert_eq!(decode_quoted_printable("a=3Db=ZZ"), b"a=b=ZZ");
    }

    #[test]
    fn property_names_lose_their_group_and_params_keep_quotes() {
        let p = Property::parse(r#"item1.EMAIL;TYPE="work,pref":jane@example.com"#).unwrap();
        assert_eq!(p.name, "EMAIL");
        assert_eq!(p.raw_value, "jane@example.com");
        assert_eq!(p.param("type"), Some("work,pref"));
        assert!(Property::parse("just text").is_err());
    }
}
