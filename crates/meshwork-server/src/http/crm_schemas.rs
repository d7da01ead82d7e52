//! The JSON Schemas of CRM records, per type, made from the field table the server validates
//! with (`meshwork_crm::Kind::fields`): which fields a type has, which a creation requires, and
//! each field's form. They replace the free-form bodies of the record routes in the OpenAPI
//! document (`contract.rs`), so that a client or a fuzzer knows what each type takes.
//!
//! Each schema describes values the server accepts as they are (trimmed text, canonical
//! numbers, `YYYY-MM-DD` dates); the server also accepts looser forms (it trims, reads
//! `"true"` as a boolean, amounts with separators), which the field descriptions mention.
//! Links must name existing records of the right type, and custom fields must be defined in the
//! workspace: those are checked against the data, not the schema.

use meshwork_crm::{FieldType, Kind};
use serde_json::{json, Map, Value};

/// Control characters the server refuses, except line breaks and tabs in long text.
const NO_CONTROL: &str = "\\u0000-\\u001f\\u007f-\\u009f";
const NO_CONTROL_MULTILINE: &str = "\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f";

/// A single-line text: no surrounding space, no control characters, at most `max` characters;
/// `required` also rules out the empty text (which clears an optional field).
fn text(max: usize, required: bool, multiline: bool) -> Value {
    let inner = if multiline {
        NO_CONTROL_MULTILINE
    } else {
        NO_CONTROL
    };
    let body = format!("[^\\s{NO_CONTROL}]([^{inner}]*[^\\s{NO_CONTROL}])?");
    let pattern = if required {
        format!("^{body}$")
    } else {
        format!("^({body})?$")
    };
    json!({"type": "string", "maxLength": max, "pattern": pattern})
}

fn uuid() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn list(items: Value, description: &str) -> Value {
    json!({"type": "array", "items": items, "maxItems": 100, "description": description})
}

/// One field's schema.
fn field(ty: FieldType, required: bool) -> Value {
    use FieldType::*;
    match ty {
        Text(max) => text(max, required, false),
        LongText => text(1024 * 1024, required, true),
        Emails => list(
            json!({"type": "string", "maxLength": 254, "pattern": "^[A-Za-z0-9_%+-]{1,32}(\\.[A-Za-z0-9_%+-]{1,16})?@([A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?\\.){1,4}[A-Za-z]{2,12}$"}),
            "Email addresses; the first is the primary one. Duplicates are dropped.",
        ),
        Phones => list(
            json!({"type": "string", "pattern": "^\\+?[0-9]{5,15}$"}),
            "Phone numbers as written (spaces, dashes, brackets and dots are accepted too); matched by their digits.",
        ),
        Domains => list(
            json!({"type": "string", "pattern": "^([a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\\.){1,3}(com|org|net|io|de|fr|nl|co\\.uk)$"}),
            "Web domains or URLs; each is stored as its registrable domain (`www.acme.co.uk` is `acme.co.uk`).",
        ),
        Texts => list(text(320, false, false), "Short texts; duplicates are dropped."),
        Amount => json!({"type": "string", "pattern": "^-?[0-9]{1,12}(\\.[0-9]{1,2})?$", "description": "A decimal amount as text (`1234.50`); separators and currency signs are accepted too."}),
        Currency => json!({"type": "string", "pattern": "^[A-Za-z]{3}$", "description": "An ISO 4217 code, stored upper-case."}),
        Date => json!({"type": "string", "pattern": "^(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$", "description": "`YYYY-MM-DD` (also `MM/DD/YYYY` and `DD.MM.YYYY`)."}),
        DateTime => json!({"type": "integer", "minimum": 0, "maximum": 4_102_444_800_000_i64, "description": "Milliseconds since the epoch (RFC 3339 text is accepted too)."}),
        Count => json!({"type": "integer", "minimum": 0, "maximum": 9_007_199_254_740_991_i64}),
        Bool => json!({"type": "boolean"}),
        Choice(options) => json!({"type": "string", "enum": options}),
        Refs(kinds, _) => list(uuid(), &format!("Ids of existing records ({}).", kinds_text(kinds))),
        Ref(kinds, _) => {
            let mut v = uuid();
            v["description"] = Value::String(format!("The id of an existing {}.", kinds_text(kinds)));
            v
        }
        Member => json!({"type": "string", "format": "uuid", "description": "The user id of a workspace member."}),
        Custom => json!({"type": "object", "description": "Values of the workspace's custom fields for this type, by key (`GET …/custom_fields`)."}),
        Stages => json!({
            "type": "array", "minItems": 1, "maxItems": 50,
            "description": "The pipeline's stages in order; each stage's id is made from its name unless given, and ids must differ.",
            "items": {"type": "object", "required": ["name"], "properties": {
                "id": {"type": "string", "pattern": "^[a-z0-9_]{1,40}$"},
                "name": text(100, true, false),
                "won": {"type": "boolean"},
                "lost": {"type": "boolean"}
            }}
        }),
        FormFields => json!({
            "type": "array", "minItems": 1, "maxItems": 100,
            "description": "The form's questions; names must differ.",
            "items": {"type": "object", "required": ["name", "label"], "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9_]{1,64}$"},
                "label": text(200, true, false),
                "target": {"type": "string", "enum": meshwork_crm::FORM_TARGETS},
                "required": {"type": "boolean"}
            }}
        }),
        Answers => json!({"type": "object", "additionalProperties": text(10_000, false, true), "description": "Answers by question name."}),
        Options => list(text(200, false, false), "The choices of a select field."),
    }
}

fn kinds_text(kinds: &[Kind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The schema name of a type's creation body (`ContactCreate`) and of its changes.
pub fn names(kind: Kind) -> (String, String) {
    let base: String = kind
        .as_str()
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    (format!("{base}Create"), format!("{base}Fields"))
}

/// A type's record: every field, the required ones required (`create`), nothing else.
pub fn record(kind: Kind, create: bool) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for spec in kind.fields() {
        let mut schema = field(spec.ty, create && spec.required);
        if !create {
            // A change may remove a field: `null`.
            schema = json!({"anyOf": [schema, {"type": "null"}]});
        }
        properties.insert(spec.name.to_string(), schema);
        if create && spec.required {
            required.push(spec.name);
        }
    }
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
        "required": required,
        "description": format!("The fields of a {}.", kind.as_str()),
    })
}

/// A filter over a type's records: `q` and field names (or `custom.<key>`) to values. The
/// names are listed in the description, not as `propertyNames`: generators read that keyword
/// poorly (Schemathesis 4.32 moves the names onto the enclosing object).
pub fn filter(kind: Kind) -> Value {
    let names: Vec<&str> = std::iter::once("q")
        .chain(
            kind.fields()
                .iter()
                .filter(|s| !matches!(s.ty, FieldType::Custom))
                .map(|s| s.name),
        )
        .collect();
    json!({
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": format!(
            "`{{field: value}}` terms that must all match (case-insensitive), and `q` for search-box text. Names: {}, or `custom.<key>`.",
            names.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_camel_case() {
        assert_eq!(names(Kind::FormSubmission).0, "FormSubmissionCreate");
        assert_eq!(names(Kind::Contact).1, "ContactFields");
    }
}
