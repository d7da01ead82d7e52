//! Vendor layouts map their real export headers; the generic layout follows its mapping file.

use meshwork_crm_io::{FileError, Layout, Mapping, MappingError, RecordKind};

use crate::{ok_rows, open, pairs, read};

#[test]
fn hubspot_contact_export_maps_its_headers() {
    let file = "Record ID,First Name,Last Name,Email,Additional email addresses,Phone Number,Mobile Phone Number,\
Job Title,Company Name,Company Domain Name,Contact owner,Lifecycle Stage,Create Date\n\
51,Anna,Müller,anna@acme.com,a.mueller@acme.de;anna@gmail.com,+49 30 1234567,,CEO,Acme GmbH,acme.com,sarah@meshwork.example,lead,2024-01-02 10:00\n";
    let rows = open(file.as_bytes(), RecordKind::Contact, &Layout::HubSpot).unwrap();
    assert_eq!(rows.ignored_columns(), ["Lifecycle Stage", "Create Date"]);
    let rows = ok_rows(rows.collect());
    assert_eq!(
        pairs(&rows[0]),
        [
            ("external_id", "51"),
            ("first_name", "Anna"),
            ("last_name", "Müller"),
            ("email", "anna@acme.com"),
            ("email", "a.mueller@acme.de"),
            ("email", "anna@gmail.com"),
            ("phone", "+49 30 1234567"),
            ("title", "CEO"),
            ("company_name", "Acme GmbH"),
            ("company_domain", "acme.com"),
            ("owner_email", "sarah@meshwork.example"),
        ]
    );
    assert_eq!(rows[0].fields[4].column, "Additional email addresses");
}

#[test]
fn hubspot_company_and_deal_exports_map_their_headers() {
    let companies = "Record ID,Company name,Company Domain Name,Industry,Number of Employees,Street Address,City,Country/Region,Company owner,Website URL\n\
7,Acme,acme.com,RETAIL,120,Main St 1,Berlin,Germany,tom@meshwork.example,https://www.acme.com\n";
    let rows = ok_rows(read(
        companies.as_bytes(),
        RecordKind::Company,
        &Layout::HubSpot,
    ));
    assert_eq!(
        pairs(&rows[0]),
        [
            ("external_id", "7"),
            ("name", "Acme"),
            ("domain", "acme.com"),
            ("industry", "RETAIL"),
            ("size", "120"),
            ("address", "Main St 1"),
            ("address", "Berlin"),
            ("address", "Germany"),
            ("owner_email", "tom@meshwork.example"),
        ]
    );
    let deals = "Record ID,Deal Name,Amount,Deal currency code,Pipeline,Deal Stage,Close Date,Associated Company,Deal owner\n\
9,Acme renewal,1200.50,EUR,Sales Pipeline,closedwon,2025-03-31,Acme,tom@meshwork.example\n";
    let rows = ok_rows(read(deals.as_bytes(), RecordKind::Deal, &Layout::HubSpot));
    assert_eq!(
        pairs(&rows[0]),
        [
            ("external_id", "9"),
            ("name", "Acme renewal"),
            ("amount", "1200.50"),
            ("currency", "EUR"),
            ("pipeline", "Sales Pipeline"),
            ("stage", "closedwon"),
            ("close_date", "2025-03-31"),
            ("company_name", "Acme"),
            ("owner_email", "tom@meshwork.example"),
        ]
    );
}

#[test]
fn salesforce_report_and_data_loader_headers_both_map() {
    let report = "Contact ID,First Name,Last Name,Title,Email,Phone,Mobile,Account Name,Account ID,Contact Owner\n\
0035g00000AbCdE,Jean,Dupont,CFO,jean@exemple.fr,+33 1 23 45 67 89,06 12 34 56 78,Exemple SA,0015g00000XyZ,owner@meshwork.example\n";
    let rows = open(report.as_bytes(), RecordKind::Contact, &Layout::Salesforce).unwrap();
    assert_eq!(rows.ignored_columns(), ["Account ID"]);
    let rows = ok_rows(rows.collect());
    assert_eq!(
        pairs(&rows[0]),
        [
            ("external_id", "0035g00000AbCdE"),
            ("first_name", "Jean"),
            ("last_name", "Dupont"),
            ("title", "CFO"),
            ("email", "jean@exemple.fr"),
            ("phone", "+33 1 23 45 67 89"),
            ("phone", "06 12 34 56 78"),
            ("company_name", "Exemple SA"),
            ("owner_email", "owner@meshwork.example"),
        ]
    );
    let loader =
        "\"Id\",\"Name\",\"StageName\",\"Amount\",\"CloseDate\",\"CurrencyIsoCode\",\"OwnerId\"\n\
\"0065g000001\",\"Big deal\",\"Prospecting\",\"5000\",\"2025-06-30\",\"USD\",\"0055g000009\"\n";
    let rows = ok_rows(read(
        loader.as_bytes(),
        RecordKind::Deal,
        &Layout::Salesforce,
    ));
    assert_eq!(
        pairs(&rows[0]),
        [
            ("external_id", "0065g000001"),
            ("name", "Big deal"),
            ("stage", "Prospecting"),
            ("amount", "5000"),
            ("close_date", "2025-06-30"),
            ("currency", "USD"),
        ]
    );
    let accounts =
        "Account Name,Website,Industry,Employees,Billing City,Billing Country,Account Owner\n\
Globex,globex.com,Energy,5000,Springfield,USA,hank@meshwork.example\n";
    let rows = ok_rows(read(
        accounts.as_bytes(),
        RecordKind::Company,
        &Layout::Salesforce,
    ));
    assert_eq!(
        rows[0].get_all("address").collect::<Vec<_>>(),
        ["Springfield", "USA"]
    );
    assert_eq!(rows[0].get("domain"), Some("globex.com"));
}

#[test]
fn pipedrive_prefixed_and_plain_exports_map_and_split_email_lists() {
    let people = "Person - ID,Person - Name,Person - Email - Work,Person - Email - Home,Person - Phone - Work,Person - Organization,Person - Owner,Person - Labels\n\
12,Ola Nordmann,\"ola@firma.no, ola.n@firma.no\",ola@hjem.no,+47 22 33 44 55,Firma AS,owner@meshwork.example,Hot lead\n";
    let rows = ok_rows(read(
        people.as_bytes(),
        RecordKind::Contact,
        &Layout::Pipedrive,
    ));
    assert_eq!(
        pairs(&rows[0]),
        [
            ("external_id", "12"),
            ("full_name", "Ola Nordmann"),
            ("email", "ola@firma.no"),
            ("email", "ola.n@firma.no"),
            ("email", "ola@hjem.no"),
            ("phone", "+47 22 33 44 55"),
            ("company_name", "Firma AS"),
            ("owner_email", "owner@meshwork.example"),
            ("tags", "Hot lead"),
        ]
    );
    let plain = "Name,Email - Work,Phone - Mobile,Organization\nKari,kari@firma.no,+47 912 34 567,Firma AS\n";
    let rows = ok_rows(read(
        plain.as_bytes(),
        RecordKind::Contact,
        &Layout::Pipedrive,
    ));
    assert_eq!(
        pairs(&rows[0]),
        [
            ("full_name", "Kari"),
            ("email", "kari@firma.no"),
            ("phone", "+47 912 34 567"),
            ("company_name", "Firma AS")
        ]
    );
    let deals = "Deal - ID,Deal - Title,Deal - Value,Deal - Currency,Deal - Pipeline,Deal - Stage,Deal - Expected close date,Deal - Organization,Person - Email,Deal - Owner\n\
3,Firma deal,990,NOK,Default,Qualified,2025-09-01,Firma AS,kari@firma.no,owner@meshwork.example\n";
    let rows = ok_rows(read(deals.as_bytes(), RecordKind::Deal, &Layout::Pipedrive));
    assert_eq!(
        pairs(&rows[0]),
        [
            ("external_id", "3"),
            ("name", "Firma deal"),
            ("amount", "990"),
            ("currency", "NOK"),
            ("pipeline", "Default"),
            ("stage", "Qualified"),
            ("close_date", "2025-09-01"),
            ("company_name", "Firma AS"),
            ("contact_email", "kari@firma.no"),
            ("owner_email", "owner@meshwork.example"),
        ]
    );
    let orgs = "Organization - Name,Organization - Address,Organization - Labels\nFirma AS,\"Karl Johans gate 1, Oslo\",Customer\n";
    let rows = ok_rows(read(
        orgs.as_bytes(),
        RecordKind::Company,
        &Layout::Pipedrive,
    ));
    assert_eq!(
        pairs(&rows[0]),
        [
            ("name", "Firma AS"),
            ("address", "Karl Johans gate 1, Oslo"),
            ("tags", "Customer")
        ]
    );
}

#[test]
fn header_matching_ignores_case_spaces_and_a_bom() {
    let file = "\u{feff}  first   name ,EMAIL\nAnna,anna@acme.com\n";
    let rows = ok_rows(read(file.as_bytes(), RecordKind::Contact, &Layout::HubSpot));
    assert_eq!(
        pairs(&rows[0]),
        [("first_name", "Anna"), ("email", "anna@acme.com")]
    );
}

const MAPPING: &str = r#"
[columns]
"E-mail address" = "email"
"Firma" = "company_name"
"Lieblingsfarbe" = "custom.favourite_colour"
"#;

#[test]
fn generic_mapping_maps_named_columns_custom_fields_and_field_named_columns() {
    let mapping = Mapping::from_toml_str(MAPPING).unwrap();
    let file =
        "Firma;e-mail ADDRESS;Lieblingsfarbe;Notiz;phone\nMüller AG;m@mueller.de;grün;egal;+49 1\n";
    let rows = open(
        file.as_bytes(),
        RecordKind::Contact,
        &Layout::Generic(mapping),
    )
    .unwrap();
    assert_eq!(rows.delimiter(), b';');
    assert_eq!(rows.ignored_columns(), ["Notiz"]);
    let rows = ok_rows(rows.collect());
    assert_eq!(
        pairs(&rows[0]),
        [
            ("company_name", "Müller AG"),
            ("email", "m@mueller.de"),
            ("custom.favourite_colour", "grün"),
            ("phone", "+49 1"),
        ]
    );
    assert_eq!(rows[0].fields[1].column, "e-mail ADDRESS");
}

#[test]
fn a_mapping_target_that_is_no_field_is_an_error_listing_the_valid_ones() {
    let err = Mapping::from_toml_str("[columns]\n\"Firma\" = \"compnay_name\"\n").unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, MappingError::UnknownTarget { .. }));
    assert!(message.contains("\"compnay_name\""), "{message}");
    assert!(
        message.contains("company_name") && message.contains("custom.<key>"),
        "{message}"
    );

    // Valid for some kind, but not for the one imported.
    let mapping = Mapping::from_toml_str("[columns]\n\"Betrag\" = \"amount\"\n").unwrap();
    let err = open(
        b"Betrag\n5\n",
        RecordKind::Contact,
        &Layout::Generic(mapping),
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("\"amount\" is not a contact field"),
        "{message}"
    );
    assert!(message.contains("first_name"), "{message}");

    for bad in ["custom.Colour", "custom.", "custom.a-b"] {
        let text = format!("[columns]\n\"X\" = \"{bad}\"\n");
        assert!(
            Mapping::from_toml_str(&text).is_err(),
            "{bad} must be refused"
        );
    }
    assert!(matches!(
        Mapping::from_toml_str("x = 1"),
        Err(MappingError::Syntax(_))
    ));
    assert!(matches!(
        Mapping::from_toml_str(""),
        Err(MappingError::NoColumns)
    ));
    assert!(matches!(
        Mapping::from_toml_str("[columns]\n\"Mail\" = \"email\"\n\" mail \" = \"email\"\n"),
        Err(MappingError::DuplicateColumn { .. })
    ));
}

#[test]
fn a_mapping_naming_a_column_the_file_lacks_is_a_file_error() {
    let mapping = Mapping::from_toml_str(MAPPING).unwrap();
    let err = open(
        b"Firma,Email\nAcme,a@acme.com\n",
        RecordKind::Contact,
        &Layout::Generic(mapping),
    )
    .unwrap_err();
    assert!(
        matches!(&err, FileError::MissingColumn { column, .. } if column == "E-mail address"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(r#"the header has: "Firma", "Email""#),
        "{err}"
    );
}

#[test]
fn a_mapped_column_appearing_twice_is_a_file_error() {
    let mapping = Mapping::from_pairs([("Mail", "email")], RecordKind::Contact).unwrap();
    let err = open(
        b"Mail,Name,mail\na,b,c\n",
        RecordKind::Contact,
        &Layout::Generic(mapping),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "header: column \"Mail\" appears twice (columns 1 and 3) and the mapping names it; rename one of them"
    );
}

#[test]
fn a_file_in_the_wrong_layout_is_a_file_error_naming_its_header() {
    let err = open(b"foo,bar\n1,2\n", RecordKind::Contact, &Layout::HubSpot).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(
            "no column of the header is known to the hubspot layout for contact records"
        ),
        "{message}"
    );
    assert!(message.contains(r#""foo", "bar""#), "{message}");
}

#[test]
fn blank_header_cells_are_reported_as_ignored() {
    let rows = open(
        b"Email,,Name\na@b.c,x,\n",
        RecordKind::Contact,
        &Layout::Salesforce,
    )
    .unwrap();
    assert_eq!(rows.ignored_columns(), ["(blank header, column 2)"]);
}

#[test]
fn docs_import_md_lists_every_vendor_header_and_field() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/import.md");
    let doc = std::fs::read_to_string(path).expect("docs/import.md exists");
    for layout in [Layout::HubSpot, Layout::Salesforce, Layout::Pipedrive] {
        for kind in RecordKind::ALL {
            for (header, target) in meshwork_crm_io::vendor_columns(&layout, kind) {
                assert!(
                    doc.contains(&format!("`{header}`")),
                    "docs/import.md lacks {layout} header {header:?}"
                );
                assert!(
                    doc.contains(&format!("`{target}`")),
                    "docs/import.md lacks field {target:?}"
                );
            }
        }
    }
}
