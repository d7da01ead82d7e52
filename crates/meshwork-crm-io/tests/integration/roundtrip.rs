//! Any cells written by the `csv` crate read back as the same trimmed values.

use meshwork_crm_io::{CsvRows, Layout, Mapping, ReaderOptions, RecordKind};
use proptest::prelude::*;

fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ]{0,12}",
        "[\",;\t|\r\n a-zé€😀=+-@]{0,12}",
        any::<String>().prop_map(|s| s.chars().filter(|&c| c != '\0').take(20).collect()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn cells_written_by_the_csv_crate_read_back_trimmed(
        rows in prop::collection::vec(prop::collection::vec(cell(), 3), 1..8),
        delimiter in prop::sample::select(vec![b',', b';', b'\t', b'|']),
    ) {
        let header = ["custom.a", "custom.b", "custom.c"];
        let mut w = csv::WriterBuilder::new().delimiter(delimiter).from_writer(Vec::new());
        w.write_record(header).unwrap();
        for row in &rows {
            w.write_record(row).unwrap();
        }
        let bytes = w.into_inner().unwrap();
        let layout = Layout::Generic(Mapping::default());
        let options = ReaderOptions { delimiter: Some(delimiter), ..ReaderOptions::default() };
        let got: Vec<_> = CsvRows::open(&bytes[..], RecordKind::Contact, &layout, &options).unwrap().collect();
        let want: Vec<Vec<(String, String)>> = rows
            .iter()
            .filter(|row| !row.iter().all(|c| c.trim().is_empty()))
            .map(|row| {
                header
                    .iter()
                    .zip(row)
                    .filter(|(_, c)| !c.trim().is_empty())
                    .map(|(h, c)| (h.to_string(), c.trim().to_string()))
                    .collect()
            })
            .collect();
        let got: Vec<Vec<(String, String)>> = got
            .into_iter()
            .map(|r| r.unwrap().fields.into_iter().map(|f| (f.target, f.value)).collect())
            .collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_readers(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let options = ReaderOptions { max_record_bytes: 64, ..ReaderOptions::default() };
        if let Ok(rows) = CsvRows::open(&bytes[..], RecordKind::Contact, &Layout::Generic(Mapping::default()), &options) {
            for _ in rows {}
        }
        if let Ok(cards) = meshwork_crm_io::read_vcards(&bytes[..], &options) {
            for _ in cards {}
        }
    }
}
