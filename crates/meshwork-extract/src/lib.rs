//! The searchable text of uploaded files: Office Open XML (`.docx`, `.xlsx`, `.pptx`),
//! OpenDocument (`.odt`, `.ods`, `.odp`) and plain text.
//!
//! Uploaded files are outside input: every read is bounded. A document's parts are inflated
//! under [`Limits`] (security finding 5): at most [`MAX_PART`] bytes per part, at most
//! `max_inflated` bytes in all, at most `max_ratio` times a part's compressed size, within a
//! deadline; reading stops at the first limit reached and keeps the text read so far. The number
//! of parts read is capped, and the text kept is cut at [`MAX_TEXT`] bytes. A file that is not what its
//! name says gives an error naming what is wrong; the caller indexes the file by its name only.
//!
//! PDF is read too, but never in the caller's process: see [`sandbox`].
//!
//! Not extracted (yet): the legacy binary Office formats (`.doc`, `.xls`, `.ppt`), images.

pub mod sandbox;

use std::io::{Cursor, Read};

/// Text kept per file (bytes of UTF-8); the rest is not indexed.
pub const MAX_TEXT: usize = 1 << 20;
/// Uncompressed bytes read from one part of a document.
pub const MAX_PART: u64 = 32 << 20;
/// Parts (slides, sheets) read from one document.
pub const MAX_PARTS: usize = 1000;

/// How much work reading one document may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Uncompressed bytes inflated from all of a document's parts together.
    pub max_inflated: u64,
    /// How many times its compressed size a part may inflate to (real XML stays far below
    /// 100; a zip bomb is thousands)…
    pub max_ratio: u64,
    /// …or this many bytes, whichever is more (a tiny part may compress well).
    pub min_allowance: u64,
    /// Wall-clock time for the whole document.
    pub deadline: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_inflated: 64 << 20,
            max_ratio: 100,
            min_allowance: 1 << 20,
            deadline: std::time::Duration::from_secs(20),
        }
    }
}

/// The formats this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Docx,
    Xlsx,
    Pptx,
    /// OpenDocument text, spreadsheet or presentation: one `content.xml`.
    OpenDocument,
    /// Read only in a helper process ([`sandbox::run`]).
    Pdf,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExtractError {
    #[error("not a readable {format} document: {reason}")]
    Malformed {
        format: &'static str,
        reason: String,
    },
}

fn malformed(format: Format, reason: impl std::fmt::Display) -> ExtractError {
    ExtractError::Malformed {
        format: format.name(),
        reason: reason.to_string(),
    }
}

impl Format {
    /// The format of a file by its name (extension) or content type; `None` when this crate
    /// does not read it.
    pub fn detect(name: &str, content_type: &str) -> Option<Format> {
        let name = name.to_ascii_lowercase();
        let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
        let ct = content_type.to_ascii_lowercase();
        let by_type = match ct.split(';').next().unwrap_or_default().trim() {
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
                Some(Format::Docx)
            }
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => {
                Some(Format::Xlsx)
            }
            "application/vnd.openxmlformats-officedocument.presentationml.presentation" => {
                Some(Format::Pptx)
            }
            "application/vnd.oasis.opendocument.text"
            | "application/vnd.oasis.opendocument.spreadsheet"
            | "application/vnd.oasis.opendocument.presentation" => Some(Format::OpenDocument),
            "application/pdf" => Some(Format::Pdf),
            t if t.starts_with("text/") => Some(Format::Text),
            _ => None,
        };
        by_type.or(match ext {
            "docx" | "docm" => Some(Format::Docx),
            "xlsx" | "xlsm" => Some(Format::Xlsx),
            "pptx" | "pptm" => Some(Format::Pptx),
            "odt" | "ods" | "odp" => Some(Format::OpenDocument),
            "pdf" => Some(Format::Pdf),
            "txt" | "md" | "csv" | "log" | "json" | "tsv" => Some(Format::Text),
            _ => None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Docx => "Word (.docx)",
            Format::Xlsx => "Excel (.xlsx)",
            Format::Pptx => "PowerPoint (.pptx)",
            Format::OpenDocument => "OpenDocument",
            Format::Pdf => "PDF",
        }
    }
}

/// At most [`MAX_TEXT`] bytes of `bytes` as text (invalid UTF-8 replaced).
pub(crate) fn cut_text(bytes: &[u8]) -> String {
    let cut = bytes.len().min(MAX_TEXT);
    let mut text = String::from_utf8_lossy(&bytes[..cut]).into_owned();
    // A cut may split the last character; lossy decoding then ends in U+FFFD.
    if cut < bytes.len() && text.ends_with('\u{FFFD}') {
        text.pop();
    }
    text
}

/// The text of a file in `format`, at most [`MAX_TEXT`] bytes, words separated by spaces and
/// paragraphs, cells and slides by newlines.
///
/// For a format that [`Format::needs_sandbox`], this parses in the calling process: only the
/// helper process calls it so ([`sandbox`]); everyone else goes through [`sandbox::run`].
pub fn extract(format: Format, bytes: &[u8]) -> Result<String, ExtractError> {
    extract_with(format, bytes, &Limits::default())
}

/// [`extract`] under the given limits.
pub fn extract_with(format: Format, bytes: &[u8], limits: &Limits) -> Result<String, ExtractError> {
    match format {
        Format::Text => Ok(cut_text(bytes)),
        Format::Pdf => pdf_text(bytes),
        Format::Docx => zip_text(format, bytes, limits, |n| n == "word/document.xml"),
        Format::Xlsx => zip_text(format, bytes, limits, |n| {
            n == "xl/sharedStrings.xml"
                || (n.starts_with("xl/worksheets/sheet") && n.ends_with(".xml"))
        }),
        Format::Pptx => zip_text(format, bytes, limits, |n| {
            n.starts_with("ppt/slides/slide") && n.ends_with(".xml")
        }),
        Format::OpenDocument => zip_text(format, bytes, limits, |n| n == "content.xml"),
    }
}

/// The text of the parts of a zip package that `wanted` names, in the package's order (slide
/// and sheet numbers sorted numerically).
fn zip_text(
    format: Format,
    bytes: &[u8],
    limits: &Limits,
    wanted: impl Fn(&str) -> bool,
) -> Result<String, ExtractError> {
    let started = std::time::Instant::now();
    let mut inflated = 0u64;
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| malformed(format, e))?;
    let mut parts: Vec<(String, usize)> = (0..zip.len())
        .filter_map(|i| {
            let name = zip.name_for_index(i)?.to_string();
            wanted(&name).then_some((name, i))
        })
        .collect();
    if parts.is_empty() {
        return Err(malformed(
            format,
            "it holds none of the format's text parts",
        ));
    }
    parts.sort_by_key(|(name, _)| part_order(name));
    let mut out = Text::default();
    for (name, i) in parts.into_iter().take(MAX_PARTS) {
        if out.full() || inflated >= limits.max_inflated || started.elapsed() > limits.deadline {
            break;
        }
        let entry = zip.by_index(i).map_err(|e| malformed(format, e))?;
        let allowance = (entry.compressed_size().saturating_mul(limits.max_ratio))
            .max(limits.min_allowance)
            .min(MAX_PART)
            .min(limits.max_inflated - inflated);
        let mut xml = Vec::new();
        Deadline {
            inner: entry.take(allowance),
            until: started + limits.deadline,
        }
        .read_to_end(&mut xml)
        .map_err(|e| malformed(format, format!("{name}: {e}")))?;
        inflated += xml.len() as u64;
        let cut = xml.len() as u64 == allowance;
        match xml_text(format, &xml, &mut out) {
            Ok(()) => {}
            // A part cut at a limit ends mid-element: keep what was read before.
            Err(_) if cut => {}
            Err(e) => return Err(malformed(format, format!("{name}: {e}"))),
        }
        out.newline();
        if cut {
            break;
        }
    }
    Ok(out.finish())
}

/// A reader that fails once its deadline has passed.
struct Deadline<R> {
    inner: R,
    until: std::time::Instant,
}

impl<R: Read> Read for Deadline<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if std::time::Instant::now() > self.until {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "reading it took too long",
            ));
        }
        self.inner.read(buf)
    }
}

/// A PDF's text, page by page, read by `pdf-extract`. Its panics on malformed files become
/// errors; its time and memory are bounded by the helper process it runs in.
fn pdf_text(bytes: &[u8]) -> Result<String, ExtractError> {
    if !bytes.starts_with(b"%PDF-") {
        return Err(malformed(Format::Pdf, "it does not start with %PDF-"));
    }
    let pages = std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem_by_pages(bytes))
        .map_err(|_| malformed(Format::Pdf, "the PDF reader gave up on it"))?
        .map_err(|e| malformed(Format::Pdf, e))?;
    let mut out = Text::default();
    for page in pages {
        if out.full() {
            break;
        }
        for line in page.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if !words.is_empty() {
                out.push(&words.join(" "));
                out.newline();
            }
        }
    }
    Ok(out.finish())
}

/// Sorts `…/slide10.xml` after `…/slide9.xml`.
fn part_order(name: &str) -> (String, u64) {
    let stem = name.trim_end_matches(".xml");
    let digits = stem.len() - stem.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (prefix, number) = stem.split_at(stem.len() - digits);
    (prefix.to_string(), number.parse().unwrap_or(0))
}

/// Text gathered up to [`MAX_TEXT`] bytes.
#[derive(Default)]
struct Text {
    s: String,
}

impl Text {
    fn full(&self) -> bool {
        self.s.len() >= MAX_TEXT
    }

    fn push(&mut self, t: &str) {
        let room = MAX_TEXT.saturating_sub(self.s.len());
        if t.len() <= room {
            self.s.push_str(t);
        } else {
            let mut cut = room;
            while !t.is_char_boundary(cut) {
                cut -= 1;
            }
            self.s.push_str(&t[..cut]);
        }
    }

    fn separate(&mut self, sep: char) {
        if !self.s.is_empty() && !self.s.ends_with(['\n', ' ']) && !self.full() {
            self.s.push(sep);
        }
    }

    fn newline(&mut self) {
        if self.s.ends_with(' ') {
            self.s.pop();
        }
        self.separate('\n');
    }

    fn finish(mut self) -> String {
        let trimmed = self.s.trim_end().len();
        self.s.truncate(trimmed);
        self.s
    }
}

/// Appends the text of one XML part. Office Open XML keeps text in `t` elements (`w:t`, `a:t`,
/// a sheet's `t`); OpenDocument in every text node of its body. Paragraphs, rows, cells and
/// line breaks become separators.
fn xml_text(format: Format, xml: &[u8], out: &mut Text) -> Result<(), quick_xml::Error> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    // Depth inside a `t` element (Office Open XML).
    let mut in_t = 0usize;
    let all_text = format == Format::OpenDocument;
    loop {
        match reader.read_event_into(&mut buf)? {
            Event::Start(e) if e.local_name().as_ref() == b"t" => in_t += 1,
            Event::End(e) => match e.local_name().as_ref() {
                b"t" => in_t = in_t.saturating_sub(1),
                // Paragraphs (w:p, a:p, text:p), headings, rows; cells get a space.
                b"p" | b"h" | b"row" | b"table-row" | b"list-item" => out.newline(),
                b"c" | b"table-cell" | b"tc" | b"si" => out.separate(' '),
                _ => {}
            },
            Event::Empty(e) => match e.local_name().as_ref() {
                b"br" | b"line-break" | b"cr" => out.newline(),
                b"tab" | b"s" => out.separate(' '),
                _ => {}
            },
            Event::Text(t) if in_t > 0 || all_text => {
                let text = t
                    .xml10_content()
                    .unwrap_or_else(|_| String::from_utf8_lossy(&t).into_owned().into());
                out.push(&text);
            }
            // `&amp;`, `&#252;`: the reader hands entity references over apart from the text.
            Event::GeneralRef(r) if in_t > 0 || all_text => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    out.push(c.encode_utf8(&mut [0; 4]));
                } else if let Ok(name) = r.decode() {
                    if let Some(v) = quick_xml::escape::resolve_predefined_entity(&name) {
                        out.push(v);
                    }
                }
            }
            Event::CData(t) if in_t > 0 || all_text => {
                out.push(&String::from_utf8_lossy(&t));
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
        if out.full() {
            return Ok(());
        }
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_pdf_gives_its_text_and_a_broken_one_an_error() {
        let pdf =
            meshwork_testkit::pdf::with_text(&["Heliosphere boundary survey", "Budget for 2027"]);
        assert_eq!(Format::detect("Brief.PDF", ""), Some(Format::Pdf));
        assert_eq!(
            Format::detect("brief", "application/pdf"),
            Some(Format::Pdf)
        );
        let text = extract(Format::Pdf, &pdf).unwrap();
        assert!(text.contains("Heliosphere boundary survey"), "{text:?}");
        assert!(text.contains("Budget for 2027"), "{text:?}");
        let err = extract(Format::Pdf, b"PK not a pdf").unwrap_err();
        assert!(err.to_string().contains("%PDF-"), "{err}");
        // Cut anywhere, a PDF is an error or (what was kept) text, never a panic.
        for cut in [6, 20, pdf.len() / 2, pdf.len() - 10] {
            let _ = extract(Format::Pdf, &pdf[..cut]);
        }
    }

    /// A zip package with the given parts (stored, as any zip writer may).
    fn package(parts: &[(&str, &str)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, body) in parts {
            w.start_file(
                *name,
                zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated),
            )
            .unwrap();
            w.write_all(body.as_bytes()).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    const DOCX: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>
<w:p><w:r><w:t>Quarterly</w:t></w:r><w:r><w:t xml:space="preserve"> renewal for Acme &amp; Co</w:t></w:r></w:p>
<w:p><w:r><w:t>Zürich</w:t></w:r><w:r><w:br/></w:r><w:r><w:t>second line</w:t></w:r></w:p>
<w:p><w:r><w:instrText>HYPERLINK hidden</w:instrText></w:r></w:p>
</w:body></w:document>"#;

    #[test]
    fn a_word_document_gives_its_paragraphs() {
        let bytes = package(&[
            ("[Content_Types].xml", "<Types/>"),
            ("word/document.xml", DOCX),
        ]);
        let text = extract(Format::Docx, &bytes).unwrap();
        assert_eq!(text, "Quarterly renewal for Acme & Co\nZürich\nsecond line");
    }

    #[test]
    fn a_workbook_gives_its_shared_and_inline_strings() {
        let shared = r#"<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>Customer</t></si><si><t>Globex</t></si></sst>"#;
        let sheet = r#"<worksheet><sheetData><row><c t="inlineStr"><is><t>Inline note</t></is></c><c><v>42</v></c></row></sheetData></worksheet>"#;
        let bytes = package(&[
            ("xl/sharedStrings.xml", shared),
            ("xl/worksheets/sheet1.xml", sheet),
        ]);
        let text = extract(Format::Xlsx, &bytes).unwrap();
        assert!(text.contains("Customer Globex"), "{text:?}");
        assert!(text.contains("Inline note"), "{text:?}");
        assert!(!text.contains("42"), "numbers are not words: {text:?}");
    }

    #[test]
    fn slides_come_in_their_numeric_order() {
        let slide = |t: &str| {
            format!(
                r#"<p:sld xmlns:a="a" xmlns:p="p"><p:txBody><a:p><a:r><a:t>{t}</a:t></a:r></a:p></p:txBody></p:sld>"#
            )
        };
        let (s1, s2, s10) = (slide("one"), slide("two"), slide("ten"));
        let bytes = package(&[
            ("ppt/slides/slide10.xml", &s10),
            ("ppt/slides/slide2.xml", &s2),
            ("ppt/slides/slide1.xml", &s1),
        ]);
        assert_eq!(extract(Format::Pptx, &bytes).unwrap(), "one\ntwo\nten");
    }

    #[test]
    fn an_opendocument_gives_all_its_text() {
        let content = r#"<office:document-content xmlns:office="o" xmlns:text="t"><office:body><office:text><text:h>Title</text:h><text:p>Body<text:s/>text</text:p></office:text></office:body></office:document-content>"#;
        let bytes = package(&[
            ("mimetype", "application/vnd.oasis.opendocument.text"),
            ("content.xml", content),
        ]);
        assert_eq!(
            extract(Format::OpenDocument, &bytes).unwrap(),
            "Title\nBody text"
        );
    }

    #[test]
    fn a_file_that_is_not_its_format_is_refused_with_the_reason() {
        let err = extract(Format::Docx, b"plain text, not a zip").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("not a readable Word (.docx) document"),
            "{err}"
        );
        let err = extract(Format::Docx, &package(&[("other.xml", "<a/>")])).unwrap_err();
        assert!(
            err.to_string().contains("none of the format's text parts"),
            "{err}"
        );
        let err = extract(
            Format::Docx,
            &package(&[("word/document.xml", "<w:t>unclosed")]),
        );
        // Malformed XML either errors or yields what was read before the fault; never panics.
        if let Ok(t) = err {
            assert!(t.len() <= MAX_TEXT);
        }
    }

    #[test]
    fn a_zip_bomb_stops_at_the_text_cap() {
        // 64 MiB of one repeated word compresses to a few dozen KiB.
        let mut body = String::from("<w:document><w:body><w:p><w:r><w:t>");
        body.push_str(&"spam ".repeat(64 << 20 >> 3));
        body.push_str("</w:t></w:r></w:p></w:body></w:document>");
        let bytes = package(&[("word/document.xml", &body)]);
        assert!(
            bytes.len() < 2 << 20,
            "the package is small: {}",
            bytes.len()
        );
        let text = extract(Format::Docx, &bytes).unwrap();
        assert!(
            text.len() <= MAX_TEXT && text.len() > MAX_TEXT - 16,
            "{}",
            text.len()
        );
    }

    /// Security finding 5: all parts together inflate at most `max_inflated` bytes; the parts
    /// after the cap are not read at all.
    #[test]
    fn office_files_inflate_at_most_the_total_cap() {
        // Ten slides of 256 KiB each, mostly markup with no text, barely compressible.
        let mut parts = Vec::new();
        for n in 0..10 {
            let mut xml = format!("<p:sld><a:t>slide{n}marker</a:t>");
            let mut x: u64 = n + 1;
            while xml.len() < 256 << 10 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                xml.push_str(&format!("<a:off x=\"{x:016x}\"/>"));
            }
            xml.push_str("</p:sld>");
            parts.push((format!("ppt/slides/slide{n}.xml"), xml));
        }
        let named: Vec<(&str, &str)> = parts
            .iter()
            .map(|(n, x)| (n.as_str(), x.as_str()))
            .collect();
        let bytes = package(&named);
        let limits = Limits {
            max_inflated: 1 << 20,
            ..Limits::default()
        };
        let text = extract_with(Format::Pptx, &bytes, &limits).unwrap();
        assert!(
            text.contains("slide0marker") && text.contains("slide3marker"),
            "{text}"
        );
        assert!(!text.contains("slide4marker"), "read past the cap: {text}");
        // Without the cap every slide is read.
        assert!(extract(Format::Pptx, &bytes)
            .unwrap()
            .contains("slide9marker"));
    }

    /// Security finding 5: a part inflates at most `max_ratio` times its compressed size.
    #[test]
    fn a_part_compressed_beyond_the_ratio_stops_early() {
        let mut body = String::from("<w:document><w:body><w:p><w:r><w:t>");
        body.push_str(&"spam ".repeat(8 << 20 >> 3));
        body.push_str("</w:t></w:r></w:p></w:body></w:document>");
        let bytes = package(&[("word/document.xml", &body)]);
        let limits = Limits {
            max_ratio: 10,
            min_allowance: 64 << 10,
            ..Limits::default()
        };
        let text = extract_with(Format::Docx, &bytes, &limits).unwrap();
        let allowed = (bytes.len() as u64 * 10).max(64 << 10) as usize;
        assert!(
            !text.is_empty() && text.len() <= allowed,
            "{} > {allowed}",
            text.len()
        );
        // The default ratio lets it read to the text cap.
        assert!(extract(Format::Docx, &bytes).unwrap().len() > allowed);
    }

    #[test]
    fn formats_are_known_by_type_or_name() {
        assert_eq!(Format::detect("Report.DOCX", ""), Some(Format::Docx));
        assert_eq!(
            Format::detect("x", "application/vnd.oasis.opendocument.spreadsheet"),
            Some(Format::OpenDocument)
        );
        assert_eq!(
            Format::detect("notes", "text/plain; charset=utf-8"),
            Some(Format::Text)
        );
        assert_eq!(Format::detect("photo.png", "image/png"), None);
        assert_eq!(Format::detect("old.doc", "application/msword"), None);
    }

    proptest::proptest! {
        /// Any bytes, any format: an answer or an error, never a panic, never more than the cap.
        #[test]
        fn any_input_is_safe(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096), f in 0usize..5) {
            let format = [Format::Text, Format::Docx, Format::Xlsx, Format::Pptx, Format::OpenDocument][f];
            if let Ok(t) = extract(format, &bytes) {
                proptest::prop_assert!(t.len() <= MAX_TEXT);
            }
        }
    }
}
