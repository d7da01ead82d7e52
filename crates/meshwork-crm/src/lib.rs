//! The CRM's record types, as data: which fields each kind of record has, how each field is
//! validated and normalised, which fields are dedup keys (a contact's emails, a company's
//! registrable domains, any record's external id), which fields are links to other records, how
//! two records merge and how a change is described on a timeline. List filters are parsed and
//! evaluated here too.
//!
//! Records travel as JSON objects ([`Doc`]). This crate does no IO and holds no key: the server
//! seals the validated document, blind-indexes the keys and writes links through the store.

mod kind;
mod normalize;
mod record;
pub mod typed;

pub use kind::{FieldSpec, FieldType, Kind};
pub use normalize::{
    email_key, parse_amount, parse_date, parse_datetime, phone_digits, registrable_domain,
};
pub use record::{
    diff, merge, CustomFieldDef, CustomType, Filter, LinkSpec, TermClause, Validated,
    ValidationErrors, FORM_TARGETS,
};

/// A record's fields as a JSON object.
pub type Doc = serde_json::Map<String, serde_json::Value>;
