//! Text extraction from uploaded files: any bytes in any format give text within the cap or an
//! error, never a panic. PDF is left out on purpose: its reader is third-party code the server
//! does not trust, which is why it only ever runs in a helper process with capped time and
//! memory (`meshwork_extract::sandbox`, tested with helpers that hang, fail and flood).
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork_extract::{extract, Format, MAX_TEXT};

fuzz_target!(|data: &[u8]| {
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let format = [
        Format::Text,
        Format::Docx,
        Format::Xlsx,
        Format::Pptx,
        Format::OpenDocument,
    ][first as usize % 5];
    if let Ok(text) = extract(format, bytes) {
        assert!(text.len() <= MAX_TEXT);
    }
});
