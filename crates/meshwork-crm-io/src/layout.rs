//! Which column of a file feeds which canonical field: the record kinds and their fields, the
//! vendor layouts (HubSpot, Salesforce, Pipedrive exports) and the generic layout driven by a
//! mapping file.
//!
//! Header cells are compared case-insensitively after trimming, dropping a stray BOM and
//! collapsing runs of spaces, so `" first  NAME"` matches `First Name`. A header cell that maps
//! to nothing is not an error: it is reported through `CsvRows::ignored_columns`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// The kind of record a file holds; a file holds one kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Company,
    Contact,
    Deal,
}

impl RecordKind {
    pub const ALL: [RecordKind; 3] = [RecordKind::Company, RecordKind::Contact, RecordKind::Deal];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Company => "company",
            RecordKind::Contact => "contact",
            RecordKind::Deal => "deal",
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`RecordKind`] or a [`Layout`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {given:?} is not known; expected one of: {expected}")]
pub struct UnknownName {
    pub what: &'static str,
    pub given: String,
    pub expected: &'static str,
}

impl FromStr for RecordKind {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "company" => Ok(RecordKind::Company),
            "contact" => Ok(RecordKind::Contact),
            "deal" => Ok(RecordKind::Deal),
            _ => Err(UnknownName {
                what: "record kind",
                given: s.to_string(),
                expected: "company, contact, deal",
            }),
        }
    }
}

const COMPANY_FIELDS: &[&str] = &[
    "external_id",
    "name",
    "domain",
    "industry",
    "size",
    "address",
    "owner_email",
    "tags",
];
const CONTACT_FIELDS: &[&str] = &[
    "external_id",
    "first_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "title",
    "company_name",
    "company_domain",
    "owner_email",
    "tags",
];
const DEAL_FIELDS: &[&str] = &[
    "external_id",
    "name",
    "amount",
    "currency",
    "pipeline",
    "stage",
    "close_date",
    "company_domain",
    "company_name",
    "contact_email",
    "owner_email",
    "tags",
];

/// The canonical target field names of a kind. A generic mapping may also target
/// `custom.<key>` (key: lower-case ASCII letters, digits and `_`).
pub fn canonical_fields(kind: RecordKind) -> &'static [&'static str] {
    match kind {
        RecordKind::Company => COMPANY_FIELDS,
        RecordKind::Contact => CONTACT_FIELDS,
        RecordKind::Deal => DEAL_FIELDS,
    }
}

/// The prefix of custom-field targets in a mapping.
pub const CUSTOM_PREFIX: &str = "custom.";

/// The longest custom-field key accepted.
pub const MAX_CUSTOM_KEY_LEN: usize = 64;

fn is_valid_custom_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_CUSTOM_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Whether `target` is a field a mapping may name for `kind`.
pub fn is_valid_target(kind: RecordKind, target: &str) -> bool {
    match target.strip_prefix(CUSTOM_PREFIX) {
        Some(key) => is_valid_custom_key(key),
        None => canonical_fields(kind).contains(&target),
    }
}

/// The column layout of a CSV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// A HubSpot export ("Record ID", "First Name", "Email", "Deal Stage", ...).
    HubSpot,
    /// A Salesforce report export or Data Loader extract ("Account Name" or "Name", "StageName", ...).
    Salesforce,
    /// A Pipedrive export, with ("Person - Name") or without ("Name") the entity prefix.
    Pipedrive,
    /// Any other file: the mapping says which column feeds which field.
    Generic(Mapping),
}

impl Layout {
    pub fn name(&self) -> &'static str {
        match self {
            Layout::HubSpot => "hubspot",
            Layout::Salesforce => "salesforce",
            Layout::Pipedrive => "pipedrive",
            Layout::Generic(_) => "generic",
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Layout {
    type Err = UnknownName;

    /// Parses a vendor layout name; `generic` is refused because it needs a mapping file.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hubspot" => Ok(Layout::HubSpot),
            "salesforce" => Ok(Layout::Salesforce),
            "pipedrive" => Ok(Layout::Pipedrive),
            "generic" => Err(UnknownName {
                what: "layout",
                given: s.to_string(),
                expected:
                    "hubspot, salesforce, pipedrive (the generic layout needs a mapping file)",
            }),
            _ => Err(UnknownName {
                what: "layout",
                given: s.to_string(),
                expected:
                    "hubspot, salesforce, pipedrive, or a mapping file for the generic layout",
            }),
        }
    }
}

/// Which header cell feeds which target, read from a mapping file:
///
/// ```toml
/// [columns]
/// "E-mail address" = "email"
/// "Firma" = "company_name"
/// "Lieblingsfarbe" = "custom.favourite_colour"
/// ```
///
/// Header cells not named in `[columns]` but spelled like a canonical field of the kind
/// (`email`, `first_name`, `custom.vip`) map to that field, so a file written in Meshwork's own
/// field names needs an empty mapping ([`Mapping::default`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    /// (header cell as written in the mapping file, target), in file order.
    columns: Vec<(String, String)>,
}

/// An invalid mapping file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("mapping file is not valid TOML: {0}")]
    Syntax(String),
    #[error("mapping file has no [columns] table; write one line per column, e.g. \"E-mail address\" = \"email\"")]
    NoColumns,
    #[error("mapping file, [columns]: a column name is blank")]
    BlankColumn,
    #[error("mapping file, [columns]: {first:?} and {second:?} name the same column (names are compared ignoring case and spaces)")]
    DuplicateColumn { first: String, second: String },
    #[error("mapping file, column {column:?}: target {target:?} is not a {kind} field; valid targets are {valid}, or custom.<key> with a key of lower-case letters, digits and _ (at most 64)")]
    UnknownTarget {
        column: String,
        target: String,
        kind: String,
        valid: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    columns: Option<BTreeMap<String, String>>,
}

impl Mapping {
    /// Parses a mapping file, checking each target against the fields of any record kind.
    /// [`crate::CsvRows::open`] checks them again against the kind being imported.
    pub fn from_toml_str(text: &str) -> Result<Mapping, MappingError> {
        let file: MappingFile =
            toml::from_str(text).map_err(|e| MappingError::Syntax(e.message().to_string()))?;
        let raw = file.columns.ok_or(MappingError::NoColumns)?;
        let mut columns: Vec<(String, String)> = Vec::with_capacity(raw.len());
        for (column, target) in raw {
            let key = normalize_header(&column);
            if key.is_empty() {
                return Err(MappingError::BlankColumn);
            }
            if let Some((first, _)) = columns.iter().find(|(c, _)| normalize_header(c) == key) {
                return Err(MappingError::DuplicateColumn {
                    first: first.clone(),
                    second: column,
                });
            }
            let target = target.trim().to_string();
            if !RecordKind::ALL.iter().any(|&k| is_valid_target(k, &target)) {
                let mut all: Vec<&str> = RecordKind::ALL
                    .iter()
                    .flat_map(|&k| canonical_fields(k).iter().copied())
                    .collect();
                all.sort_unstable();
                all.dedup();
                return Err(MappingError::UnknownTarget {
                    column,
                    target,
                    kind: "company, contact or deal".to_string(),
                    valid: all.join(", "),
                });
            }
            columns.push((column, target));
        }
        Ok(Mapping { columns })
    }

    /// Parses a mapping file for one record kind: every target must be a field of `kind`.
    pub fn from_toml_str_for(text: &str, kind: RecordKind) -> Result<Mapping, MappingError> {
        let mapping = Mapping::from_toml_str(text)?;
        mapping.check(kind)?;
        Ok(mapping)
    }

    /// Builds a mapping from (header cell, target) pairs, with the checks of a mapping file.
    pub fn from_pairs<I, C, T>(pairs: I, kind: RecordKind) -> Result<Mapping, MappingError>
    where
        I: IntoIterator<Item = (C, T)>,
        C: Into<String>,
        T: Into<String>,
    {
        let mut columns: Vec<(String, String)> = Vec::new();
        for (column, target) in pairs {
            let column = column.into();
            let key = normalize_header(&column);
            if key.is_empty() {
                return Err(MappingError::BlankColumn);
            }
            if let Some((first, _)) = columns.iter().find(|(c, _)| normalize_header(c) == key) {
                return Err(MappingError::DuplicateColumn {
                    first: first.clone(),
                    second: column,
                });
            }
            columns.push((column, target.into().trim().to_string()));
        }
        let mapping = Mapping { columns };
        mapping.check(kind)?;
        Ok(mapping)
    }

    /// The (header cell, target) pairs, in the order of the file.
    pub fn columns(&self) -> &[(String, String)] {
        &self.columns
    }

    /// The mapping as a mapping file, which [`Mapping::from_toml_str`] reads back.
    pub fn to_toml_string(&self) -> String {
        let mut columns = toml::map::Map::new();
        for (column, target) in &self.columns {
            columns.insert(column.clone(), toml::Value::String(target.clone()));
        }
        let mut file = toml::map::Map::new();
        file.insert("columns".into(), toml::Value::Table(columns));
        // Serialized (not displayed): keys are quoted wherever a column name needs it.
        toml::to_string(&toml::Value::Table(file)).unwrap_or_default()
    }

    /// Checks every target against the fields of `kind`.
    pub fn check(&self, kind: RecordKind) -> Result<(), MappingError> {
        for (column, target) in &self.columns {
            if !is_valid_target(kind, target) {
                return Err(MappingError::UnknownTarget {
                    column: column.clone(),
                    target: target.clone(),
                    kind: kind.to_string(),
                    valid: canonical_fields(kind).join(", "),
                });
            }
        }
        Ok(())
    }
}

/// How a header cell is compared: trimmed, BOM dropped, spaces collapsed, lower case.
pub(crate) fn normalize_header(cell: &str) -> String {
    let cell = cell.trim_start_matches('\u{feff}');
    let mut out = String::with_capacity(cell.len());
    for word in cell.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Where one column's cells go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub name: String,
    /// The cell holds several values separated by `;` or `,` (a list of e-mail addresses).
    pub split: bool,
}

/// One vendor header alias: header cell (as the vendor spells it), target, whether to split.
type Alias = (&'static str, &'static str, bool);

const HUBSPOT_CONTACT: &[Alias] = &[
    ("Record ID", "external_id", false),
    ("Record ID - Contact", "external_id", false),
    ("Contact ID", "external_id", false),
    ("First Name", "first_name", false),
    ("Last Name", "last_name", false),
    ("Email", "email", false),
    ("Additional email addresses", "email", true),
    ("Phone Number", "phone", false),
    ("Mobile Phone Number", "phone", false),
    ("Job Title", "title", false),
    ("Company Name", "company_name", false),
    ("Associated Company", "company_name", false),
    ("Primary Associated Company", "company_name", false),
    ("Company Domain Name", "company_domain", false),
    ("Contact owner", "owner_email", false),
    ("HubSpot Owner", "owner_email", false),
];

const HUBSPOT_COMPANY: &[Alias] = &[
    ("Record ID", "external_id", false),
    ("Record ID - Company", "external_id", false),
    ("Company ID", "external_id", false),
    ("Company name", "name", false),
    ("Name", "name", false),
    ("Company Domain Name", "domain", false),
    ("Industry", "industry", false),
    ("Number of Employees", "size", false),
    ("Street Address", "address", false),
    ("Street Address 2", "address", false),
    ("City", "address", false),
    ("State/Region", "address", false),
    ("Postal Code", "address", false),
    ("Country/Region", "address", false),
    ("Company owner", "owner_email", false),
    ("HubSpot Owner", "owner_email", false),
];

const HUBSPOT_DEAL: &[Alias] = &[
    ("Record ID", "external_id", false),
    ("Record ID - Deal", "external_id", false),
    ("Deal ID", "external_id", false),
    ("Deal Name", "name", false),
    ("Amount", "amount", false),
    ("Currency", "currency", false),
    ("Deal currency code", "currency", false),
    ("Currency code", "currency", false),
    ("Pipeline", "pipeline", false),
    ("Deal Stage", "stage", false),
    ("Close Date", "close_date", false),
    ("Company Domain Name", "company_domain", false),
    ("Associated Company", "company_name", false),
    ("Company Name", "company_name", false),
    ("Associated Contact Email", "contact_email", false),
    ("Contact Email", "contact_email", false),
    ("Deal owner", "owner_email", false),
    ("HubSpot Owner", "owner_email", false),
];

const SALESFORCE_CONTACT: &[Alias] = &[
    ("Contact ID", "external_id", false),
    ("Id", "external_id", false),
    ("First Name", "first_name", false),
    ("FirstName", "first_name", false),
    ("Last Name", "last_name", false),
    ("LastName", "last_name", false),
    ("Name", "full_name", false),
    ("Full Name", "full_name", false),
    ("Email", "email", false),
    ("Phone", "phone", false),
    ("Business Phone", "phone", false),
    ("Mobile", "phone", false),
    ("Mobile Phone", "phone", false),
    ("MobilePhone", "phone", false),
    ("Home Phone", "phone", false),
    ("HomePhone", "phone", false),
    ("Other Phone", "phone", false),
    ("OtherPhone", "phone", false),
    ("Title", "title", false),
    ("Account Name", "company_name", false),
    ("Account.Name", "company_name", false),
    ("Account Website", "company_domain", false),
    ("Account.Website", "company_domain", false),
    ("Contact Owner", "owner_email", false),
    ("Owner", "owner_email", false),
    ("Owner Email", "owner_email", false),
    ("Owner.Email", "owner_email", false),
];

const SALESFORCE_COMPANY: &[Alias] = &[
    ("Account ID", "external_id", false),
    ("Id", "external_id", false),
    ("Account Name", "name", false),
    ("Name", "name", false),
    ("Website", "domain", false),
    ("Industry", "industry", false),
    ("Employees", "size", false),
    ("NumberOfEmployees", "size", false),
    ("Billing Address", "address", false),
    ("Billing Street", "address", false),
    ("Billing City", "address", false),
    ("Billing State/Province", "address", false),
    ("Billing Zip/Postal Code", "address", false),
    ("Billing Country", "address", false),
    ("BillingStreet", "address", false),
    ("BillingCity", "address", false),
    ("BillingState", "address", false),
    ("BillingPostalCode", "address", false),
    ("BillingCountry", "address", false),
    ("Account Owner", "owner_email", false),
    ("Owner", "owner_email", false),
    ("Owner Email", "owner_email", false),
    ("Owner.Email", "owner_email", false),
];

const SALESFORCE_DEAL: &[Alias] = &[
    ("Opportunity ID", "external_id", false),
    ("Id", "external_id", false),
    ("Opportunity Name", "name", false),
    ("Name", "name", false),
    ("Amount", "amount", false),
    ("Opportunity Currency", "currency", false),
    ("Amount Currency", "currency", false),
    ("CurrencyIsoCode", "currency", false),
    ("Stage", "stage", false),
    ("StageName", "stage", false),
    ("Close Date", "close_date", false),
    ("CloseDate", "close_date", false),
    ("Account Name", "company_name", false),
    ("Account.Name", "company_name", false),
    ("Account Website", "company_domain", false),
    ("Account.Website", "company_domain", false),
    ("Contact Email", "contact_email", false),
    ("Opportunity Owner", "owner_email", false),
    ("Owner", "owner_email", false),
    ("Owner Email", "owner_email", false),
    ("Owner.Email", "owner_email", false),
];

const PIPEDRIVE_CONTACT: &[Alias] = &[
    ("Person - ID", "external_id", false),
    ("ID", "external_id", false),
    ("Person - Name", "full_name", false),
    ("Name", "full_name", false),
    ("Person - First name", "first_name", false),
    ("First name", "first_name", false),
    ("Person - Last name", "last_name", false),
    ("Last name", "last_name", false),
    ("Person - Email", "email", true),
    ("Person - Email - Work", "email", true),
    ("Person - Email - Home", "email", true),
    ("Person - Email - Other", "email", true),
    ("Email", "email", true),
    ("Email - Work", "email", true),
    ("Email - Home", "email", true),
    ("Email - Other", "email", true),
    ("Person - Phone", "phone", false),
    ("Person - Phone - Work", "phone", false),
    ("Person - Phone - Mobile", "phone", false),
    ("Person - Phone - Home", "phone", false),
    ("Person - Phone - Other", "phone", false),
    ("Phone", "phone", false),
    ("Phone - Work", "phone", false),
    ("Phone - Mobile", "phone", false),
    ("Phone - Home", "phone", false),
    ("Phone - Other", "phone", false),
    ("Person - Job title", "title", false),
    ("Job title", "title", false),
    ("Person - Organization", "company_name", false),
    ("Organization", "company_name", false),
    ("Organization - Name", "company_name", false),
    ("Organization - Website", "company_domain", false),
    ("Person - Owner", "owner_email", false),
    ("Owner", "owner_email", false),
    ("Person - Labels", "tags", false),
    ("Person - Label", "tags", false),
    ("Labels", "tags", false),
    ("Label", "tags", false),
];

const PIPEDRIVE_COMPANY: &[Alias] = &[
    ("Organization - ID", "external_id", false),
    ("ID", "external_id", false),
    ("Organization - Name", "name", false),
    ("Name", "name", false),
    ("Organization - Website", "domain", false),
    ("Website", "domain", false),
    ("Organization - Industry", "industry", false),
    ("Industry", "industry", false),
    ("Organization - Number of employees", "size", false),
    ("Number of employees", "size", false),
    ("Organization - Address", "address", false),
    ("Address", "address", false),
    ("Organization - Owner", "owner_email", false),
    ("Owner", "owner_email", false),
    ("Organization - Labels", "tags", false),
    ("Organization - Label", "tags", false),
    ("Labels", "tags", false),
    ("Label", "tags", false),
];

const PIPEDRIVE_DEAL: &[Alias] = &[
    ("Deal - ID", "external_id", false),
    ("ID", "external_id", false),
    ("Deal - Title", "name", false),
    ("Title", "name", false),
    ("Deal - Value", "amount", false),
    ("Value", "amount", false),
    ("Deal - Currency", "currency", false),
    ("Deal - Currency of Value", "currency", false),
    ("Currency", "currency", false),
    ("Currency of Value", "currency", false),
    ("Deal - Pipeline", "pipeline", false),
    ("Pipeline", "pipeline", false),
    ("Deal - Stage", "stage", false),
    ("Stage", "stage", false),
    ("Deal - Expected close date", "close_date", false),
    ("Expected close date", "close_date", false),
    ("Deal - Organization", "company_name", false),
    ("Organization", "company_name", false),
    ("Organization - Name", "company_name", false),
    ("Organization - Website", "company_domain", false),
    ("Person - Email", "contact_email", true),
    ("Person - Email - Work", "contact_email", true),
    ("Deal - Owner", "owner_email", false),
    ("Owner", "owner_email", false),
    ("Deal - Labels", "tags", false),
    ("Deal - Label", "tags", false),
    ("Labels", "tags", false),
    ("Label", "tags", false),
];

/// The header aliases a vendor layout recognises for a kind, as (header cell, target) pairs.
/// Empty for [`Layout::Generic`].
pub fn vendor_columns(layout: &Layout, kind: RecordKind) -> Vec<(&'static str, &'static str)> {
    vendor_aliases(layout, kind)
        .iter()
        .map(|&(h, t, _)| (h, t))
        .collect()
}

fn vendor_aliases(layout: &Layout, kind: RecordKind) -> &'static [Alias] {
    use RecordKind::*;
    match (layout, kind) {
        (Layout::HubSpot, Contact) => HUBSPOT_CONTACT,
        (Layout::HubSpot, Company) => HUBSPOT_COMPANY,
        (Layout::HubSpot, Deal) => HUBSPOT_DEAL,
        (Layout::Salesforce, Contact) => SALESFORCE_CONTACT,
        (Layout::Salesforce, Company) => SALESFORCE_COMPANY,
        (Layout::Salesforce, Deal) => SALESFORCE_DEAL,
        (Layout::Pipedrive, Contact) => PIPEDRIVE_CONTACT,
        (Layout::Pipedrive, Company) => PIPEDRIVE_COMPANY,
        (Layout::Pipedrive, Deal) => PIPEDRIVE_DEAL,
        (Layout::Generic(_), _) => &[],
    }
}

/// Why a header cannot be read in a layout.
#[derive(Debug)]
pub(crate) enum ResolveError {
    Mapping(MappingError),
    /// A mapped header cell appears twice: (cell, first column, second column), 1-based.
    Duplicate(String, usize, usize),
    /// A mapping names a header cell the file lacks.
    Missing(String),
    /// No header cell maps to anything.
    NothingKnown,
}

/// Assigns a target (or none) to each header cell.
pub(crate) fn resolve(
    header: &[String],
    kind: RecordKind,
    layout: &Layout,
) -> Result<Vec<Option<Target>>, ResolveError> {
    let normalized: Vec<String> = header.iter().map(|h| normalize_header(h)).collect();
    let mut targets: Vec<Option<Target>> = vec![None; header.len()];
    match layout {
        Layout::Generic(mapping) => {
            mapping.check(kind).map_err(ResolveError::Mapping)?;
            for (column, target) in mapping.columns() {
                let key = normalize_header(column);
                let mut found = normalized
                    .iter()
                    .enumerate()
                    .filter(|(_, h)| **h == key)
                    .map(|(i, _)| i);
                let first = found
                    .next()
                    .ok_or_else(|| ResolveError::Missing(column.clone()))?;
                if let Some(second) = found.next() {
                    return Err(ResolveError::Duplicate(
                        header[first].clone(),
                        first + 1,
                        second + 1,
                    ));
                }
                targets[first] = Some(Target {
                    name: target.clone(),
                    split: false,
                });
            }
            // Columns spelled like a field map to it unless the mapping used them already.
            for (i, h) in normalized.iter().enumerate() {
                if targets[i].is_none() && is_valid_target(kind, h) {
                    let explicit = mapping
                        .columns()
                        .iter()
                        .any(|(c, _)| normalize_header(c) == *h);
                    if !explicit {
                        targets[i] = Some(Target {
                            name: h.clone(),
                            split: false,
                        });
                    }
                }
            }
        }
        vendor => {
            let aliases = vendor_aliases(vendor, kind);
            for (i, h) in normalized.iter().enumerate() {
                if let Some(&(_, target, split)) = aliases
                    .iter()
                    .find(|(alias, _, _)| normalize_header(alias) == *h)
                {
                    targets[i] = Some(Target {
                        name: target.to_string(),
                        split,
                    });
                }
            }
        }
    }
    if !header.is_empty() && targets.iter().all(Option::is_none) {
        return Err(ResolveError::NothingKnown);
    }
    Ok(targets)
}

#[cfg(test)]
mod mapping_file_tests {
    use super::*;

    #[test]
    fn a_mapping_written_as_a_file_reads_back_the_same() {
        let m = Mapping::from_pairs(
            [
                ("E-mail \"work\"", "email"),
                ("Given name", "first_name"),
                ("Région", "custom.region"),
            ],
            RecordKind::Contact,
        )
        .unwrap();
        let back = Mapping::from_toml_str_for(&m.to_toml_string(), RecordKind::Contact).unwrap();
        let mut a = m.columns().to_vec();
        let mut b = back.columns().to_vec();
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_vendor_alias_targets_a_canonical_field_of_its_kind() {
        for layout in [Layout::HubSpot, Layout::Salesforce, Layout::Pipedrive] {
            for kind in RecordKind::ALL {
                for (header, target) in vendor_columns(&layout, kind) {
                    assert!(
                        canonical_fields(kind).contains(&target),
                        "{layout} {kind}: {header:?} -> {target:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn header_cells_compare_ignoring_case_spaces_and_bom() {
        assert_eq!(normalize_header("\u{feff} First   NAME "), "first name");
    }

    #[test]
    fn kinds_and_layouts_parse_from_their_names() {
        assert_eq!(
            "Contact".parse::<RecordKind>().unwrap(),
            RecordKind::Contact
        );
        assert_eq!(RecordKind::Deal.to_string(), "deal");
        assert!("person".parse::<RecordKind>().is_err());
        assert_eq!("HubSpot".parse::<Layout>().unwrap(), Layout::HubSpot);
        let err = "generic".parse::<Layout>().unwrap_err();
        assert!(err.to_string().contains("needs a mapping file"), "{err}");
    }
}
