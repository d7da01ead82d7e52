//! The record kinds and their fields: one table, read by validation, import, export and the API
//! documentation alike.

use std::fmt;
use std::str::FromStr;

/// A kind of CRM record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Company,
    Contact,
    Deal,
    Pipeline,
    Note,
    Activity,
    Communication,
    File,
    Form,
    FormSubmission,
    /// A custom-field definition.
    Field,
}

/// How a field is validated and stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// One line of text, at most this many characters.
    Text(usize),
    /// Rich text (HTML or Markdown as given), at most 1 MiB.
    LongText,
    /// A list of email addresses; the first is the primary one.
    Emails,
    /// A list of phone numbers as written; searchable by their digits.
    Phones,
    /// A list of web domains, stored as their registrable domain (`www.acme.co.uk` → `acme.co.uk`).
    Domains,
    /// A list of short texts (email recipients, tags).
    Texts,
    /// A decimal amount as a string (`"1234.50"`), never a float.
    Amount,
    /// An ISO 4217 currency code (`EUR`).
    Currency,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// A point in time, as milliseconds since the epoch (RFC 3339 text is accepted).
    DateTime,
    /// A whole number, at least zero.
    Count,
    Bool,
    /// One of a fixed set of values.
    Choice(&'static [&'static str]),
    /// Links to records of these kinds, stored as a list of record ids, with this link role.
    Refs(&'static [Kind], &'static str),
    /// One link, stored as a record id.
    Ref(&'static [Kind], &'static str),
    /// The id of a workspace member.
    Member,
    /// Custom fields, checked against the workspace's definitions.
    Custom,
    /// A pipeline's ordered stages: `[{id, name, won, lost}]`.
    Stages,
    /// A form's fields: `[{name, label, target, required}]`.
    FormFields,
    /// A form submission's answers: `{name: text}`.
    Answers,
    /// The options of a select custom field.
    Options,
}

#[derive(Clone, Copy, Debug)]
pub struct FieldSpec {
    pub name: &'static str,
    pub ty: FieldType,
    pub required: bool,
}

const fn f(name: &'static str, ty: FieldType) -> FieldSpec {
    FieldSpec {
        name,
        ty,
        required: false,
    }
}

const fn req(name: &'static str, ty: FieldType) -> FieldSpec {
    FieldSpec {
        name,
        ty,
        required: true,
    }
}

use FieldType::*;

const SUBJECTS: &[Kind] = &[Kind::Contact, Kind::Company, Kind::Deal];

const COMPANY: &[FieldSpec] = &[
    req("name", Text(300)),
    f("domains", Domains),
    f("industry", Text(200)),
    f("size", Text(50)),
    f("address", Text(1000)),
    f("owner", Member),
    f("tags", Texts),
    f("external_id", Text(200)),
    f("custom", Custom),
];
const CONTACT: &[FieldSpec] = &[
    f("first_name", Text(200)),
    f("last_name", Text(200)),
    f("emails", Emails),
    f("phones", Phones),
    f("title", Text(300)),
    f("companies", Refs(&[Kind::Company], "company")),
    f("owner", Member),
    f("tags", Texts),
    f("external_id", Text(200)),
    f("custom", Custom),
];
const DEAL: &[FieldSpec] = &[
    req("name", Text(300)),
    f("amount", Amount),
    f("currency", Currency),
    req("pipeline", Ref(&[Kind::Pipeline], "pipeline")),
    req("stage", Text(100)),
    f("close_date", Date),
    f("owner", Member),
    f("contacts", Refs(&[Kind::Contact], "contact")),
    f("companies", Refs(&[Kind::Company], "company")),
    f("tags", Texts),
    f("external_id", Text(200)),
    f("custom", Custom),
];
const PIPELINE: &[FieldSpec] = &[req("name", Text(200)), req("stages", Stages)];
const NOTE: &[FieldSpec] = &[req("body", LongText), f("about", Refs(SUBJECTS, "about"))];
const ACTIVITY: &[FieldSpec] = &[
    req("type", Choice(&["task", "meeting", "call"])),
    req("title", Text(300)),
    f("description", LongText),
    f("due_at", DateTime),
    f("done", Bool),
    f("owner", Member),
    f("about", Refs(SUBJECTS, "about")),
];
const COMMUNICATION: &[FieldSpec] = &[
    req("channel", Choice(&["email", "sms", "call"])),
    f("direction", Choice(&["inbound", "outbound"])),
    f("from", Text(320)),
    f("to", Texts),
    f("cc", Texts),
    f("subject", Text(1000)),
    f("body", LongText),
    f("duration_seconds", Count),
    f("outcome", Text(200)),
    f("occurred_at", DateTime),
    f("about", Refs(SUBJECTS, "about")),
];
const FILE: &[FieldSpec] = &[
    req("name", Text(255)),
    f("content_type", Text(200)),
    f("size", Count),
    f("about", Refs(SUBJECTS, "about")),
];
const FORM: &[FieldSpec] = &[
    req("name", Text(200)),
    req("fields", FormFields),
    f("published", Bool),
];
const FORM_SUBMISSION: &[FieldSpec] = &[
    req("form", Ref(&[Kind::Form], "form")),
    req("answers", Answers),
    f("about", Refs(&[Kind::Contact], "about")),
];
const FIELD: &[FieldSpec] = &[
    req("object", Choice(&["company", "contact", "deal"])),
    req("key", Text(64)),
    req("label", Text(200)),
    req(
        "type",
        Choice(&[
            "text",
            "number",
            "date",
            "select",
            "multi_select",
            "boolean",
        ]),
    ),
    f("options", Options),
];

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Company,
        Kind::Contact,
        Kind::Deal,
        Kind::Pipeline,
        Kind::Note,
        Kind::Activity,
        Kind::Communication,
        Kind::File,
        Kind::Form,
        Kind::FormSubmission,
        Kind::Field,
    ];

    /// The name stored with each record and used in the change feed and exports.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Company => "company",
            Kind::Contact => "contact",
            Kind::Deal => "deal",
            Kind::Pipeline => "pipeline",
            Kind::Note => "note",
            Kind::Activity => "activity",
            Kind::Communication => "communication",
            Kind::File => "file",
            Kind::Form => "form",
            Kind::FormSubmission => "form_submission",
            Kind::Field => "field",
        }
    }

    /// The path segment of its API routes (`/companies`).
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Company => "companies",
            Kind::Contact => "contacts",
            Kind::Deal => "deals",
            Kind::Pipeline => "pipelines",
            Kind::Note => "notes",
            Kind::Activity => "activities",
            Kind::Communication => "communications",
            Kind::File => "files",
            Kind::Form => "forms",
            Kind::FormSubmission => "form_submissions",
            Kind::Field => "custom_fields",
        }
    }

    pub fn fields(self) -> &'static [FieldSpec] {
        match self {
            Kind::Company => COMPANY,
            Kind::Contact => CONTACT,
            Kind::Deal => DEAL,
            Kind::Pipeline => PIPELINE,
            Kind::Note => NOTE,
            Kind::Activity => ACTIVITY,
            Kind::Communication => COMMUNICATION,
            Kind::File => FILE,
            Kind::Form => FORM,
            Kind::FormSubmission => FORM_SUBMISSION,
            Kind::Field => FIELD,
        }
    }

    pub fn field(self, name: &str) -> Option<&'static FieldSpec> {
        self.fields().iter().find(|f| f.name == name)
    }

    /// Contacts, companies and deals have a timeline.
    pub fn has_timeline(self) -> bool {
        SUBJECTS.contains(&self)
    }

    /// Kinds whose definitions shape the workspace (`crm.schema` to change them).
    pub fn is_schema(self) -> bool {
        matches!(self, Kind::Pipeline | Kind::Form | Kind::Field)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s || k.plural() == s)
            .ok_or_else(|| {
                format!(
                    "{s:?} is not a record type (expected one of: {})",
                    Kind::ALL.map(Kind::as_str).join(", ")
                )
            })
    }
}
