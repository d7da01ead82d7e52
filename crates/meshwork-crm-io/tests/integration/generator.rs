//! The generator is deterministic, realistic and readable by the HubSpot layout.

use std::collections::HashSet;
use std::time::Instant;

use meshwork_crm_io::{
    generate_hubspot_companies, generate_hubspot_contacts, generate_hubspot_deals, Layout,
    RecordKind,
};

use crate::{ok_rows, open};

fn contacts(seed: u64, rows: u64) -> Vec<u8> {
    let mut out = Vec::new();
    generate_hubspot_contacts(seed, rows, &mut out).unwrap();
    out
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_another_seed_other_bytes() {
    assert_eq!(contacts(7, 500), contacts(7, 500));
    assert_ne!(contacts(7, 500), contacts(8, 500));
    let (mut a, mut b) = (Vec::new(), Vec::new());
    generate_hubspot_deals(3, 100, &mut a).unwrap();
    generate_hubspot_deals(3, 100, &mut b).unwrap();
    assert_eq!(a, b);
}

#[test]
fn generated_contacts_parse_with_the_hubspot_layout_with_no_row_errors() {
    let bytes = contacts(42, 20_000);
    let rows = open(&bytes, RecordKind::Contact, &Layout::HubSpot).unwrap();
    assert_eq!(
        rows.ignored_columns(),
        ["Lifecycle Stage", "Create Date", "City", "Country/Region"]
    );
    let rows = ok_rows(rows.collect());
    assert_eq!(rows.len(), 20_000);
    assert_eq!(rows.last().unwrap().row, 20_000);
    let mut seen = HashSet::new();
    let mut case_duplicates = 0;
    let mut non_ascii = 0;
    let mut phone_shapes = HashSet::new();
    for row in &rows {
        let email = row.get("email").expect("every contact has an email");
        assert!(email.contains('@'));
        if !seen.insert(email.to_lowercase()) {
            case_duplicates += 1;
            assert!(
                !rows
                    .iter()
                    .take(row.row as usize - 1)
                    .any(|r| r.get("email") == Some(email)),
                "exact repeat of {email}"
            );
        }
        non_ascii += usize::from(
            !row.get("last_name").unwrap().is_ascii() || !row.get("first_name").unwrap().is_ascii(),
        );
        if let Some(phone) = row.get("phone") {
            phone_shapes.insert(
                phone
                    .chars()
                    .map(|c| if c.is_ascii_digit() { '9' } else { c })
                    .collect::<String>(),
            );
        }
        assert!(row.get("company_name").is_some() && row.get("company_domain").is_some());
    }
    // About 1% of rows repeat an earlier address in other letter case.
    assert!(
        (100..=300).contains(&case_duplicates),
        "{case_duplicates} duplicates"
    );
    assert!(non_ascii > 2_000, "{non_ascii} non-ASCII names");
    assert!(phone_shapes.len() >= 5, "{phone_shapes:?}");
}

#[test]
fn generated_companies_and_deals_parse_with_the_hubspot_layout() {
    let mut out = Vec::new();
    generate_hubspot_companies(1, 2_000, &mut out).unwrap();
    let rows = ok_rows(
        open(&out, RecordKind::Company, &Layout::HubSpot)
            .unwrap()
            .collect(),
    );
    assert_eq!(rows.len(), 2_000);
    let domains: HashSet<&str> = rows.iter().map(|r| r.get("domain").unwrap()).collect();
    assert_eq!(domains.len(), 2_000);
    let mut out = Vec::new();
    generate_hubspot_deals(1, 2_000, &mut out).unwrap();
    let open = open(&out, RecordKind::Deal, &Layout::HubSpot).unwrap();
    assert!(open.ignored_columns().is_empty());
    let rows = ok_rows(open.collect());
    assert_eq!(rows.len(), 2_000);
    assert!(rows
        .iter()
        .all(|r| r.get("name").is_some() && r.get("stage").is_some()));
}

#[test]
fn a_million_rows_stream_out_quickly() {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let start = Instant::now();
    let mut sink = Count(0);
    generate_hubspot_contacts(9, 1 << 20, &mut sink).unwrap();
    let took = start.elapsed();
    assert!(sink.0 > 100 << 20, "{} bytes", sink.0);
    // Generous for debug builds on a small machine; release takes a fraction of this.
    assert!(took.as_secs() < 60, "took {took:?}");
}
