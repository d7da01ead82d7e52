//! Validation of a record document against its kind, custom fields, and the operations on
//! validated documents: merge, diff and filter.

use crate::kind::{FieldType, Kind};
use crate::normalize::{
    is_free_mail, parse_amount, parse_date, parse_datetime, phone_digits, registrable_domain,
};
use crate::Doc;
use meshwork_domain::{EmailAddress, ErrorCode, FieldError, RecordId, UserId};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const LONG_TEXT_MAX: usize = 1024 * 1024;

/// The type of a custom field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustomType {
    Text,
    Number,
    Date,
    Select,
    MultiSelect,
    Boolean,
}

/// A custom field of one kind of record, as defined by a `field` record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomFieldDef {
    pub object: Kind,
    pub key: String,
    pub label: String,
    pub ty: CustomType,
    pub options: Vec<String>,
}

impl CustomFieldDef {
    /// Reads a validated `field` record.
    pub fn from_doc(doc: &Doc) -> Option<Self> {
        let s = |k: &str| doc.get(k).and_then(Value::as_str);
        Some(Self {
            object: s("object")?.parse().ok()?,
            key: s("key")?.to_string(),
            label: s("label")?.to_string(),
            ty: match s("type")? {
                "text" => CustomType::Text,
                "number" => CustomType::Number,
                "date" => CustomType::Date,
                "select" => CustomType::Select,
                "multi_select" => CustomType::MultiSelect,
                "boolean" => CustomType::Boolean,
                _ => return None,
            },
            options: doc
                .get("options")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// A link a record makes to another, checked by the caller to exist and be of one of `kinds`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkSpec {
    pub field: &'static str,
    pub to: RecordId,
    pub role: &'static str,
    pub kinds: &'static [Kind],
}

/// A document that passed validation, in canonical form, with what it implies.
#[derive(Clone, Debug, PartialEq)]
pub struct Validated {
    pub doc: Doc,
    pub links: Vec<LinkSpec>,
    /// Dedup keys as `(key kind, normalised value)`, e.g. `("email", "bob@example.com")`.
    pub keys: Vec<(&'static str, String)>,
    /// Members the record names (its owner), for the caller to check.
    pub members: Vec<UserId>,
    /// When the record's event happened, if it says.
    pub occurred_at: Option<i64>,
}

/// Every problem found in a document, each naming its field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct ValidationErrors(pub Vec<FieldError>);

fn invalid(field: &str, message: impl Into<String>) -> FieldError {
    FieldError::new(ErrorCode::InvalidField, field, message)
}

fn short(s: &str) -> String {
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s.to_string()
    }
}

/// A value given as one item or a list of them.
fn items(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    }
}

fn text(field: &str, v: &Value, max: usize, multiline: bool) -> Result<Option<String>, FieldError> {
    let s = match v {
        Value::String(s) => s.trim(),
        Value::Number(n) => return Ok(Some(n.to_string())),
        _ => return Err(invalid(field, "must be text")),
    };
    if s.is_empty() {
        return Ok(None);
    }
    if s.chars().count() > max {
        return Err(invalid(
            field,
            format!(
                "is {} characters long; the limit is {max}",
                s.chars().count()
            ),
        ));
    }
    if s.chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\r' || c == '\t')))
    {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(Some(s.to_string()))
}

fn bool_value(field: &str, v: &Value) -> Result<bool, FieldError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.trim().to_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(true),
            "false" | "no" | "0" => Ok(false),
            other => Err(invalid(field, format!("{other:?} is not true or false"))),
        },
        Value::Number(n) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => {
            Ok(n.as_i64() == Some(1))
        }
        _ => Err(invalid(field, "must be true or false")),
    }
}

fn as_str_lossy(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

struct Checker<'a> {
    kind: Kind,
    customs: &'a [CustomFieldDef],
    out: Validated,
    errors: Vec<FieldError>,
}

impl Checker<'_> {
    fn field(
        &mut self,
        name: &'static str,
        ty: FieldType,
        v: &Value,
    ) -> Result<Option<Value>, FieldError> {
        use FieldType::*;
        Ok(match ty {
            Text(max) => text(name, v, max, name == "address")?.map(Value::String),
            LongText => text(name, v, LONG_TEXT_MAX, true)?.map(Value::String),
            Emails => {
                let mut seen = BTreeSet::new();
                let mut list = Vec::new();
                for (i, item) in items(v).into_iter().enumerate() {
                    let Some(s) = as_str_lossy(item) else {
                        return Err(invalid(&format!("{name}[{i}]"), "must be text"));
                    };
                    if s.trim().is_empty() {
                        continue;
                    }
                    let e = EmailAddress::parse(&format!("{name}[{i}]"), &s)?;
                    if seen.insert(e.normalized()) {
                        self.out.keys.push(("email", e.normalized()));
                        list.push(Value::String(e.as_str().to_string()));
                    }
                }
                (!list.is_empty()).then_some(Value::Array(list))
            }
            Phones => {
                let mut seen = BTreeSet::new();
                let mut list = Vec::new();
                for (i, item) in items(v).into_iter().enumerate() {
                    let Some(s) = as_str_lossy(item) else {
                        return Err(invalid(&format!("{name}[{i}]"), "must be text"));
                    };
                    if s.trim().is_empty() {
                        continue;
                    }
                    let digits = phone_digits(&s).ok_or_else(|| {
                        invalid(
                            &format!("{name}[{i}]"),
                            format!("{:?} is not a phone number", short(&s)),
                        )
                    })?;
                    if seen.insert(digits) {
                        list.push(Value::String(s.trim().to_string()));
                    }
                }
                (!list.is_empty()).then_some(Value::Array(list))
            }
            Domains => {
                let mut list = Vec::new();
                for (i, item) in items(v).into_iter().enumerate() {
                    let Some(s) = as_str_lossy(item) else {
                        return Err(invalid(&format!("{name}[{i}]"), "must be text"));
                    };
                    if s.trim().is_empty() {
                        continue;
                    }
                    let d = registrable_domain(&s).ok_or_else(|| {
                        invalid(
                            &format!("{name}[{i}]"),
                            format!("{:?} is not a web domain", short(&s)),
                        )
                    })?;
                    let d = Value::String(d);
                    if !list.contains(&d) {
                        list.push(d);
                    }
                }
                for d in &list {
                    let d = d.as_str().unwrap_or_default();
                    if !is_free_mail(d) {
                        self.out.keys.push(("domain", d.to_string()));
                    }
                }
                (!list.is_empty()).then_some(Value::Array(list))
            }
            Texts => {
                let mut list = Vec::new();
                for (i, item) in items(v).into_iter().enumerate() {
                    if let Some(s) = text(&format!("{name}[{i}]"), item, 320, false)? {
                        let s = Value::String(s);
                        if !list.contains(&s) {
                            list.push(s);
                        }
                    }
                }
                (!list.is_empty()).then_some(Value::Array(list))
            }
            Amount => {
                let s = as_str_lossy(v).ok_or_else(|| invalid(name, "must be a decimal amount"))?;
                if s.trim().is_empty() {
                    return Ok(None);
                }
                Some(Value::String(parse_amount(&s).ok_or_else(|| {
                    invalid(
                        name,
                        format!("{:?} is not an amount (like 1234.50)", short(&s)),
                    )
                })?))
            }
            Currency => {
                let s = v
                    .as_str()
                    .ok_or_else(|| invalid(name, "must be a currency code"))?
                    .trim();
                if s.is_empty() {
                    return Ok(None);
                }
                if s.len() != 3 || !s.chars().all(|c| c.is_ascii_alphabetic()) {
                    return Err(invalid(
                        name,
                        format!("{:?} is not an ISO 4217 currency code (like EUR)", short(s)),
                    ));
                }
                Some(Value::String(s.to_ascii_uppercase()))
            }
            Date => {
                let s = v
                    .as_str()
                    .ok_or_else(|| invalid(name, "must be a date (YYYY-MM-DD)"))?;
                if s.trim().is_empty() {
                    return Ok(None);
                }
                Some(Value::String(parse_date(s).ok_or_else(|| {
                    invalid(name, format!("{:?} is not a date (YYYY-MM-DD)", short(s)))
                })?))
            }
            DateTime => {
                let s = as_str_lossy(v).ok_or_else(|| invalid(name, "must be a time"))?;
                if s.trim().is_empty() {
                    return Ok(None);
                }
                let ms = parse_datetime(&s).ok_or_else(|| {
                    invalid(
                        name,
                        format!(
                            "{:?} is not a time (RFC 3339, like 2024-03-01T10:00:00Z)",
                            short(&s)
                        ),
                    )
                })?;
                Some(json!(ms))
            }
            Count => {
                let n = match v {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.trim().parse::<u64>().ok(),
                    _ => None,
                };
                Some(json!(n.ok_or_else(|| invalid(
                    name,
                    "must be a whole number, zero or more"
                ))?))
            }
            Bool => Some(Value::Bool(bool_value(name, v)?)),
            Choice(options) => {
                let s = v
                    .as_str()
                    .ok_or_else(|| invalid(name, "must be text"))?
                    .trim()
                    .to_lowercase();
                if s.is_empty() {
                    return Ok(None);
                }
                if !options.contains(&s.as_str()) {
                    return Err(invalid(
                        name,
                        format!("{s:?} is not one of: {}", options.join(", ")),
                    ));
                }
                Some(Value::String(s))
            }
            Refs(kinds, role) => {
                let mut list = Vec::new();
                for (i, item) in items(v).into_iter().enumerate() {
                    let id = item
                        .as_str()
                        .and_then(|s| s.trim().parse::<RecordId>().ok())
                        .ok_or_else(|| invalid(&format!("{name}[{i}]"), "must be a record id"))?;
                    let s = Value::String(id.to_string());
                    if !list.contains(&s) {
                        list.push(s);
                        self.out.links.push(LinkSpec {
                            field: name,
                            to: id,
                            role,
                            kinds,
                        });
                    }
                }
                (!list.is_empty()).then_some(Value::Array(list))
            }
            Ref(kinds, role) => {
                let id = v
                    .as_str()
                    .and_then(|s| s.trim().parse::<RecordId>().ok())
                    .ok_or_else(|| invalid(name, "must be a record id"))?;
                self.out.links.push(LinkSpec {
                    field: name,
                    to: id,
                    role,
                    kinds,
                });
                Some(Value::String(id.to_string()))
            }
            Member => {
                let id = v
                    .as_str()
                    .and_then(|s| s.trim().parse::<uuid::Uuid>().ok())
                    .ok_or_else(|| invalid(name, "must be the user id of a workspace member"))?;
                self.out.members.push(UserId(id));
                Some(Value::String(id.to_string()))
            }
            Custom => {
                let obj = v
                    .as_object()
                    .ok_or_else(|| invalid(name, "must be an object of custom field values"))?;
                let mut out = Doc::new();
                for (key, value) in obj {
                    if value.is_null() {
                        continue;
                    }
                    let path = format!("custom.{key}");
                    let Some(def) = self
                        .customs
                        .iter()
                        .find(|d| d.object == self.kind && &d.key == key)
                    else {
                        let known: Vec<_> = self
                            .customs
                            .iter()
                            .filter(|d| d.object == self.kind)
                            .map(|d| d.key.as_str())
                            .collect();
                        return Err(invalid(
                            &path,
                            format!(
                                "no custom field {key:?} is defined for {}s (defined: {})",
                                self.kind,
                                if known.is_empty() {
                                    "none".to_string()
                                } else {
                                    known.join(", ")
                                }
                            ),
                        ));
                    };
                    if let Some(v) = custom_value(&path, def, value)? {
                        out.insert(key.clone(), v);
                    }
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
            Stages => Some(stages(name, v)?),
            FormFields => Some(form_fields(name, v)?),
            Answers => {
                let obj = v
                    .as_object()
                    .ok_or_else(|| invalid(name, "must be an object of answers"))?;
                let mut out = Doc::new();
                for (k, a) in obj {
                    if let Some(s) = text(&format!("{name}.{k}"), a, 10_000, true)? {
                        out.insert(k.clone(), Value::String(s));
                    }
                }
                Some(Value::Object(out))
            }
            Options => {
                let mut list = Vec::new();
                for (i, item) in items(v).into_iter().enumerate() {
                    if let Some(s) = text(&format!("{name}[{i}]"), item, 200, false)? {
                        let s = Value::String(s);
                        if !list.contains(&s) {
                            list.push(s);
                        }
                    }
                }
                (!list.is_empty()).then_some(Value::Array(list))
            }
        })
    }
}

fn custom_value(path: &str, def: &CustomFieldDef, v: &Value) -> Result<Option<Value>, FieldError> {
    let option = |s: &str| -> Result<Value, FieldError> {
        def.options
            .iter()
            .find(|o| o.eq_ignore_ascii_case(s.trim()))
            .map(|o| Value::String(o.clone()))
            .ok_or_else(|| {
                invalid(
                    path,
                    format!("{:?} is not one of: {}", short(s), def.options.join(", ")),
                )
            })
    };
    Ok(match def.ty {
        CustomType::Text => text(path, v, 1000, true)?.map(Value::String),
        CustomType::Number => {
            let s = as_str_lossy(v).ok_or_else(|| invalid(path, "must be a number"))?;
            if s.trim().is_empty() {
                return Ok(None);
            }
            if let Ok(i) = s.trim().parse::<i64>() {
                return Ok(Some(json!(i)));
            }
            let n: f64 = s
                .trim()
                .parse()
                .map_err(|_| invalid(path, format!("{:?} is not a number", short(&s))))?;
            Some(
                serde_json::Number::from_f64(n)
                    .map(Value::Number)
                    .ok_or_else(|| invalid(path, "must be a finite number"))?,
            )
        }
        CustomType::Date => {
            let s = v.as_str().ok_or_else(|| invalid(path, "must be a date"))?;
            if s.trim().is_empty() {
                return Ok(None);
            }
            Some(Value::String(parse_date(s).ok_or_else(|| {
                invalid(path, format!("{:?} is not a date (YYYY-MM-DD)", short(s)))
            })?))
        }
        CustomType::Boolean => Some(Value::Bool(bool_value(path, v)?)),
        CustomType::Select => {
            let s = v
                .as_str()
                .ok_or_else(|| invalid(path, "must be one option"))?;
            if s.trim().is_empty() {
                return Ok(None);
            }
            Some(option(s)?)
        }
        CustomType::MultiSelect => {
            let list = match v {
                Value::String(s) => s.split(';').map(&option).collect::<Result<Vec<_>, _>>()?,
                Value::Array(a) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .ok_or_else(|| invalid(path, "options must be text"))
                            .and_then(option)
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                _ => return Err(invalid(path, "must be a list of options")),
            };
            (!list.is_empty()).then_some(Value::Array(list))
        }
    })
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.trim().to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

fn stages(name: &str, v: &Value) -> Result<Value, FieldError> {
    let list = v
        .as_array()
        .ok_or_else(|| invalid(name, "must be a list of stages"))?;
    if list.is_empty() || list.len() > 50 {
        return Err(invalid(name, "a pipeline has 1 to 50 stages"));
    }
    let mut ids = BTreeSet::new();
    let mut out = Vec::new();
    for (i, s) in list.iter().enumerate() {
        let at = format!("{name}[{i}]");
        let o = s
            .as_object()
            .ok_or_else(|| invalid(&at, "must be an object {id, name, won, lost}"))?;
        let label = text(
            &format!("{at}.name"),
            o.get("name").unwrap_or(&Value::Null),
            100,
            false,
        )
        .ok()
        .flatten()
        .ok_or_else(|| invalid(&format!("{at}.name"), "is required"))?;
        let id = match o.get("id").and_then(Value::as_str) {
            Some(id) if !slug(id).is_empty() => slug(id),
            _ => slug(&label),
        };
        if id.is_empty() || !ids.insert(id.clone()) {
            return Err(invalid(
                &format!("{at}.id"),
                format!("stage id {id:?} is empty or used twice"),
            ));
        }
        let flag = |k: &str| {
            o.get(k)
                .map(|v| bool_value(&format!("{at}.{k}"), v))
                .transpose()
                .map(|b| b.unwrap_or(false))
        };
        let (won, lost) = (flag("won")?, flag("lost")?);
        if won && lost {
            return Err(invalid(&at, "a stage cannot be both won and lost"));
        }
        out.push(json!({"id": id, "name": label, "won": won, "lost": lost}));
    }
    Ok(Value::Array(out))
}

/// The contact fields a form question may fill.
pub const FORM_TARGETS: &[&str] = &["first_name", "last_name", "email", "phone", "title"];

fn form_fields(name: &str, v: &Value) -> Result<Value, FieldError> {
    let list = v
        .as_array()
        .ok_or_else(|| invalid(name, "must be a list of questions"))?;
    if list.is_empty() || list.len() > 100 {
        return Err(invalid(name, "a form has 1 to 100 questions"));
    }
    let mut names = BTreeSet::new();
    let mut has_email = false;
    let mut out = Vec::new();
    for (i, q) in list.iter().enumerate() {
        let at = format!("{name}[{i}]");
        let o = q
            .as_object()
            .ok_or_else(|| invalid(&at, "must be an object {name, label, target, required}"))?;
        let qname = o
            .get("name")
            .and_then(Value::as_str)
            .map(slug)
            .unwrap_or_default();
        if qname.is_empty() || !names.insert(qname.clone()) {
            return Err(invalid(
                &format!("{at}.name"),
                "is required and unique (letters, digits, _)",
            ));
        }
        let label = o
            .get("label")
            .and_then(Value::as_str)
            .unwrap_or(&qname)
            .trim()
            .to_string();
        let target = match o.get("target").and_then(Value::as_str) {
            None | Some("") => Value::Null,
            Some(t) if FORM_TARGETS.contains(&t) => Value::String(t.to_string()),
            Some(t) => {
                return Err(invalid(
                    &format!("{at}.target"),
                    format!("{t:?} is not one of: {}", FORM_TARGETS.join(", ")),
                ))
            }
        };
        has_email |= target == "email";
        let required = o
            .get("required")
            .map(|v| bool_value(&format!("{at}.required"), v))
            .transpose()?
            .unwrap_or(false);
        out.push(json!({"name": qname, "label": label, "target": target, "required": required}));
    }
    if !has_email {
        return Err(invalid(name, "one question must have target \"email\": submissions create or update the contact with that email"));
    }
    Ok(Value::Array(out))
}

impl Validated {
    /// Validates a whole document of `kind`. `customs` are the workspace's custom-field
    /// definitions. Every problem is reported, each naming its field.
    pub fn check(
        kind: Kind,
        input: &Doc,
        customs: &[CustomFieldDef],
    ) -> Result<Self, ValidationErrors> {
        let mut c = Checker {
            kind,
            customs,
            out: Validated {
                doc: Doc::new(),
                links: Vec::new(),
                keys: Vec::new(),
                members: Vec::new(),
                occurred_at: None,
            },
            errors: Vec::new(),
        };
        for (name, _) in input.iter().filter(|(n, _)| kind.field(n).is_none()) {
            c.errors.push(invalid(
                name,
                format!(
                    "{} has no field {name:?} (fields: {})",
                    kind,
                    kind.fields()
                        .iter()
                        .map(|f| f.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        for spec in kind.fields() {
            match input.get(spec.name).filter(|v| !v.is_null()) {
                Some(v) => match c.field(spec.name, spec.ty, v) {
                    Ok(Some(v)) => {
                        c.out.doc.insert(spec.name.to_string(), v);
                    }
                    Ok(None) if spec.required => c.errors.push(invalid(spec.name, "is required")),
                    Ok(None) => {}
                    Err(e) => c.errors.push(e),
                },
                None if spec.required => c.errors.push(invalid(spec.name, "is required")),
                None => {}
            }
        }
        let doc = &c.out.doc;
        if kind == Kind::Contact
            && !["first_name", "last_name", "emails"]
                .iter()
                .any(|f| doc.contains_key(*f))
        {
            c.errors
                .push(invalid("first_name", "a contact needs a name or an email"));
        }
        if kind == Kind::Field {
            if let Some(key) = doc.get("key").and_then(Value::as_str) {
                if key != slug(key) || key.starts_with(|ch: char| ch.is_ascii_digit()) {
                    c.errors.push(invalid(
                        "key",
                        format!(
                            "{key:?} must be lower-case letters, digits and _ (like {:?})",
                            slug(key)
                        ),
                    ));
                }
            }
            let select = matches!(
                doc.get("type").and_then(Value::as_str),
                Some("select" | "multi_select")
            );
            if select != doc.contains_key("options") {
                c.errors.push(invalid(
                    "options",
                    "select fields need options; other fields take none",
                ));
            }
        }
        if let Some(ext) = doc.get("external_id").and_then(Value::as_str) {
            c.out.keys.push(("external_id", ext.to_string()));
        }
        c.out.occurred_at = match kind {
            Kind::Activity => doc.get("due_at").and_then(Value::as_i64),
            Kind::Communication => doc.get("occurred_at").and_then(Value::as_i64),
            _ => None,
        };
        if c.errors.is_empty() {
            Ok(c.out)
        } else {
            Err(ValidationErrors(c.errors))
        }
    }
}

fn is_list(kind: Kind, field: &str) -> bool {
    use FieldType::*;
    matches!(
        kind.field(field).map(|f| f.ty),
        Some(Emails | Phones | Domains | Texts | Refs(..))
    )
}

/// The merge of two records of `kind`: the survivor's values win; what it lacks comes from the
/// other; lists (emails, phones, domains, tags, links) are united, the survivor's first.
pub fn merge(kind: Kind, survivor: &Doc, other: &Doc) -> Doc {
    let mut out = survivor.clone();
    for (k, v) in other {
        match out.get_mut(k) {
            None => {
                out.insert(k.clone(), v.clone());
            }
            Some(Value::Array(mine)) if is_list(kind, k) => {
                for item in v.as_array().into_iter().flatten() {
                    if !mine.contains(item) {
                        mine.push(item.clone());
                    }
                }
            }
            Some(Value::Object(mine)) if k == "custom" => {
                for (ck, cv) in v.as_object().into_iter().flatten() {
                    mine.entry(ck.clone()).or_insert_with(|| cv.clone());
                }
            }
            Some(_) => {}
        }
    }
    out
}

/// The fields that differ between two versions, as `[{field, before, after}]` (custom fields
/// as `custom.<key>`).
pub fn diff(before: &Doc, after: &Doc) -> Vec<Value> {
    fn flat(d: &Doc) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for (k, v) in d {
            match v {
                Value::Object(o) if k == "custom" => out.extend(
                    o.iter()
                        .map(|(ck, cv)| (format!("custom.{ck}"), cv.clone())),
                ),
                v => out.push((k.clone(), v.clone())),
            }
        }
        out
    }
    let (b, a) = (flat(before), flat(after));
    let mut names: BTreeSet<&String> = b.iter().map(|(k, _)| k).collect();
    names.extend(a.iter().map(|(k, _)| k));
    let get = |l: &[(String, Value)], k: &str| {
        l.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Null)
    };
    names
        .into_iter()
        .filter_map(|k| {
            let (x, y) = (get(&b, k), get(&a, k));
            (x != y).then(|| json!({"field": k, "before": x, "after": y}))
        })
        .collect()
}

/// A list filter: field terms (all must match) and a free-text `q`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub terms: Vec<(String, String)>,
    pub q: Option<String>,
}

impl Filter {
    /// Parses `field=value` pairs for `kind`. `q` searches every text; other names must be
    /// fields of the kind or `custom.<key>`.
    pub fn parse<'a>(
        kind: Kind,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, FieldError> {
        let mut f = Filter::default();
        for (k, v) in pairs {
            if k == "q" {
                f.q = Some(v.trim().to_lowercase()).filter(|q| !q.is_empty());
                continue;
            }
            let known = kind
                .field(k)
                .is_some_and(|s| !matches!(s.ty, FieldType::Custom))
                || k.strip_prefix("custom.").is_some_and(|c| !c.is_empty());
            if !known {
                return Err(FieldError::new(
                    ErrorCode::InvalidFilter,
                    k,
                    format!(
                        "{kind}s cannot be filtered by {k:?} (filters: q, {}, custom.<key>)",
                        kind.fields()
                            .iter()
                            .filter(|s| s.name != "custom")
                            .map(|s| s.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            f.terms.push((k.to_string(), v.trim().to_lowercase()));
        }
        Ok(f)
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty() && self.q.is_none()
    }

    /// Whether a document matches: text compares case-insensitively; a list matches when one
    /// of its items does; `q` matches a substring of any value.
    pub fn matches(&self, doc: &Doc) -> bool {
        fn eq(v: &Value, want: &str) -> bool {
            match v {
                Value::Array(a) => a.iter().any(|x| eq(x, want)),
                Value::String(s) => s.to_lowercase() == want,
                Value::Bool(b) => b.to_string() == want,
                Value::Number(n) => n.to_string() == want,
                _ => false,
            }
        }
        fn contains(v: &Value, q: &str) -> bool {
            match v {
                Value::Array(a) => a.iter().any(|x| contains(x, q)),
                Value::Object(o) => o.values().any(|x| contains(x, q)),
                Value::String(s) => s.to_lowercase().contains(q),
                Value::Number(n) => n.to_string().contains(q),
                _ => false,
            }
        }
        let terms_ok = self.terms.iter().all(|(k, want)| {
            let v = match k.strip_prefix("custom.") {
                Some(c) => doc.get("custom").and_then(|o| o.get(c)),
                None => doc.get(k),
            };
            match v {
                Some(v) => eq(v, want),
                None => want.is_empty(),
            }
        });
        terms_ok
            && self
                .q
                .as_ref()
                .is_none_or(|q| doc.values().any(|v| contains(v, q)))
    }
}

/// One clause of a [`Filter`] as an index answers it: the document must carry `term`, or, when
/// `or_absent` is set, lack that presence term (an empty wanted value matches a missing field).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TermClause {
    pub term: String,
    pub or_absent: Option<String>,
}

/// Values longer than this are indexed by their SHA-256, so a term stays small whatever the
/// field holds (a note's body is up to 1 MiB).
const LONG_VALUE: usize = 128;

fn value_term(key: &str, lowered: &str) -> String {
    if lowered.len() > LONG_VALUE {
        use sha2::Digest;
        let h = sha2::Sha256::digest(lowered.as_bytes());
        format!("v\u{1f}{key}\u{1f}#{}", hex::encode(h))
    } else {
        format!("v\u{1f}{key}\u{1f}={lowered}")
    }
}

fn presence_term(key: &str) -> String {
    format!("p\u{1f}{key}")
}

impl Filter {
    /// The terms `doc` is indexed under so that an index answers [`Filter::matches`] for the
    /// field terms (not `q`) by term look-ups: one per value a filter can equal (lists give one
    /// per item), and one marking each field present. [`Filter::clauses`] builds the other half.
    pub fn index_terms(doc: &Doc) -> Vec<String> {
        fn walk(key: &str, v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Array(a) => a.iter().for_each(|x| walk(key, x, out)),
                Value::String(s) => out.push(value_term(key, &s.to_lowercase())),
                Value::Bool(b) => out.push(value_term(key, &b.to_string())),
                Value::Number(n) => out.push(value_term(key, &n.to_string())),
                Value::Object(_) | Value::Null => {}
            }
        }
        let mut out = Vec::new();
        for (k, v) in doc {
            if k == "custom" {
                if let Value::Object(custom) = v {
                    for (ck, cv) in custom {
                        let key = format!("custom.{ck}");
                        out.push(presence_term(&key));
                        walk(&key, cv, &mut out);
                    }
                }
                continue;
            }
            out.push(presence_term(k));
            walk(k, v, &mut out);
        }
        out.sort();
        out.dedup();
        out
    }

    /// The field terms as index clauses, all of which must hold (see [`Filter::index_terms`]).
    pub fn clauses(&self) -> Vec<TermClause> {
        self.terms
            .iter()
            .map(|(k, want)| TermClause {
                term: value_term(k, want),
                or_absent: want.is_empty().then(|| presence_term(k)),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(v: Value) -> Doc {
        v.as_object().unwrap().clone()
    }

    mod index_terms {
        use super::*;
        use proptest::prelude::*;

        fn scalar() -> impl Strategy<Value = Value> {
            prop_oneof![
                prop::sample::select(vec!["", "Ada", "ada", "ADA ", "Zoë", "zoË", "b"])
                    .prop_map(|s| Value::String(s.to_string())),
                "[a-c]{130,140}".prop_map(Value::String),
                any::<bool>().prop_map(Value::Bool),
                (0u8..3).prop_map(|n| json!(n)),
                Just(Value::Null),
                Just(json!({"a": "ada"})),
            ]
        }

        fn value() -> impl Strategy<Value = Value> {
            prop_oneof![
                3 => scalar(),
                1 => prop::collection::vec(scalar(), 0..3).prop_map(Value::Array),
            ]
        }

        fn keys() -> impl Strategy<Value = String> {
            prop::sample::select(vec!["name", "tags", "done", "custom.tier", "custom.n"])
                .prop_map(str::to_string)
        }

        fn document() -> impl Strategy<Value = Doc> {
            prop::collection::vec((keys(), value()), 0..5).prop_map(|pairs| {
                let mut d = Doc::new();
                let mut custom = Doc::new();
                for (k, v) in pairs {
                    match k.strip_prefix("custom.") {
                        Some(c) => {
                            custom.insert(c.to_string(), v);
                        }
                        None => {
                            d.insert(k, v);
                        }
                    }
                }
                if !custom.is_empty() {
                    d.insert("custom".into(), Value::Object(custom));
                }
                d
            })
        }

        fn wanted() -> impl Strategy<Value = String> {
            prop_oneof![
                prop::sample::select(vec!["", "ada", "zoë", "b", "true", "false", "0", "1", "2"])
                    .prop_map(str::to_string),
                "[a-c]{130,140}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4000))]
            /// The index answers a filter exactly as `matches` does: the oracle is `matches`
            /// itself, the answer is term membership.
            #[test]
            fn term_lookups_agree_with_matches(
                doc in document(),
                terms in prop::collection::vec((keys(), wanted()), 1..3),
            ) {
                let filter = Filter { terms, q: None };
                let indexed: std::collections::BTreeSet<String> =
                    Filter::index_terms(&doc).into_iter().collect();
                let by_terms = filter.clauses().iter().all(|c| {
                    indexed.contains(&c.term)
                        || c.or_absent.as_ref().is_some_and(|p| !indexed.contains(p))
                });
                prop_assert_eq!(by_terms, filter.matches(&doc), "doc {:?}", doc);
            }
        }
    }

    #[test]
    fn a_contact_is_normalised_and_keyed() {
        let company = RecordId::new();
        let v = Validated::check(
            Kind::Contact,
            &doc(json!({"first_name": " Ada ", "emails": ["Ada@Example.COM", "ada@example.com", ""], "phones": "+44 20 7946 0958", "companies": [company.to_string()], "external_id": "hs-1"})),
            &[],
        )
        .unwrap();
        assert_eq!(v.doc["first_name"], "Ada");
        assert_eq!(v.doc["emails"], json!(["Ada@example.com"]));
        assert_eq!(
            v.keys,
            vec![
                ("email", "ada@example.com".to_string()),
                ("external_id", "hs-1".to_string())
            ]
        );
        assert_eq!(v.links.len(), 1);
        assert_eq!(v.links[0].role, "company");
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let err = Validated::check(
            Kind::Deal,
            &doc(json!({"amount": "lots", "close_date": "31/02/2024", "colour": "red", "currency": "EURO"})),
            &[],
        )
        .unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "colour",
            "name",
            "amount",
            "currency",
            "pipeline",
            "stage",
            "close_date",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn company_domains_are_registrable_and_free_mail_is_not_a_key() {
        let v = Validated::check(
            Kind::Company,
            &doc(json!({"name": "Acme", "domains": ["https://www.acme.co.uk", "acme.co.uk", "gmail.com"]})),
            &[],
        )
        .unwrap();
        assert_eq!(v.doc["domains"], json!(["acme.co.uk", "gmail.com"]));
        assert_eq!(v.keys, vec![("domain", "acme.co.uk".to_string())]);
    }

    #[test]
    fn custom_fields_follow_their_definitions() {
        let defs = vec![CustomFieldDef {
            object: Kind::Contact,
            key: "tier".into(),
            label: "Tier".into(),
            ty: CustomType::Select,
            options: vec!["Gold".into(), "Silver".into()],
        }];
        let ok = Validated::check(
            Kind::Contact,
            &doc(json!({"first_name": "A", "custom": {"tier": "gold"}})),
            &defs,
        )
        .unwrap();
        assert_eq!(ok.doc["custom"]["tier"], "Gold");
        let err = Validated::check(
            Kind::Contact,
            &doc(json!({"first_name": "A", "custom": {"tier": "bronze", "x": 1}})),
            &defs,
        )
        .unwrap_err();
        assert_eq!(err.0[0].field, "custom.tier");
        let err = Validated::check(
            Kind::Contact,
            &doc(json!({"first_name": "A", "custom": {"x": 1}})),
            &defs,
        )
        .unwrap_err();
        assert!(
            err.0[0].message.contains("no custom field \"x\""),
            "{}",
            err.0[0].message
        );
    }

    #[test]
    fn pipelines_have_unique_stage_ids() {
        let v = Validated::check(Kind::Pipeline, &doc(json!({"name": "Sales", "stages": [{"name": "New lead"}, {"name": "Won", "won": true}]})), &[]).unwrap();
        assert_eq!(v.doc["stages"][0]["id"], "new_lead");
        assert!(Validated::check(
            Kind::Pipeline,
            &doc(json!({"name": "S", "stages": [{"name": "A"}, {"name": "a"}]})),
            &[]
        )
        .is_err());
    }

    #[test]
    fn merge_unites_lists_and_keeps_the_survivors_values() {
        let a =
            doc(json!({"first_name": "Ada", "emails": ["a@x.com"], "custom": {"tier": "Gold"}}));
        let b = doc(
            json!({"first_name": "Ada L.", "last_name": "Lovelace", "emails": ["b@x.com", "a@x.com"], "custom": {"tier": "Silver", "size": 3}}),
        );
        let m = merge(Kind::Contact, &a, &b);
        assert_eq!(m["first_name"], "Ada");
        assert_eq!(m["last_name"], "Lovelace");
        assert_eq!(m["emails"], json!(["a@x.com", "b@x.com"]));
        assert_eq!(m["custom"], json!({"tier": "Gold", "size": 3}));
    }

    #[test]
    fn diff_names_changed_fields() {
        let a = doc(json!({"first_name": "Ada", "custom": {"tier": "Gold"}}));
        let b = doc(json!({"first_name": "Ada", "title": "CTO", "custom": {"tier": "Silver"}}));
        let d = diff(&a, &b);
        let fields: Vec<_> = d.iter().map(|c| c["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["custom.tier", "title"]);
    }

    #[test]
    fn filters_name_unknown_fields_and_match_lists() {
        assert_eq!(
            Filter::parse(Kind::Contact, [("colour", "red")])
                .unwrap_err()
                .code,
            ErrorCode::InvalidFilter
        );
        let f = Filter::parse(Kind::Contact, [("emails", "A@X.com"), ("q", "lov")]).unwrap();
        assert!(f.matches(&doc(
            json!({"emails": ["a@x.com"], "last_name": "Lovelace"})
        )));
        assert!(!f.matches(&doc(
            json!({"emails": ["b@x.com"], "last_name": "Lovelace"})
        )));
    }
}
