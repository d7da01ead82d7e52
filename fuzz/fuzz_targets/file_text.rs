//! Text extraction from uploaded files: any bytes in any format give text within the cap or an
//! error, never a panic.
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
