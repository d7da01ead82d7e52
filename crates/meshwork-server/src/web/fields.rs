//! How CRM fields look on a page and come back from a form: one place that knows each field
//! type's input, its display, and how typed text becomes the JSON the CRM service validates
//! (which then checks it exactly as it checks the API's).

pub use meshwork_crm::typed::{doc_from_form, editable, parse};
use meshwork_crm::{Doc, FieldType, Kind};
use serde_json::Value;
use std::collections::HashMap;

/// What a field is called on a page.
pub fn label(name: &str) -> String {
    let s = match name {
        "emails" => "Email addresses",
        "phones" => "Phone numbers",
        "domains" => "Web domains",
        "external_id" => "External id",
        "close_date" => "Close date",
        "first_name" => "First name",
        "last_name" => "Last name",
        "job_title" => "Job title",
        other => other,
    };
    super::accounts::capitalized(&s.replace('_', " "))
}

/// The HTML input a field is typed in.
#[derive(Debug, Clone)]
pub struct Input {
    pub name: &'static str,
    pub label: String,
    /// `text`, `email`, `date`, `textarea`, `select` or `member`.
    pub control: &'static str,
    pub value: String,
    pub required: bool,
    pub max_len: Option<usize>,
    pub hint: Option<&'static str>,
    pub options: Vec<(String, String)>,
    pub error: Option<String>,
    /// On a stale edit: the value saved meanwhile, when it differs from what was typed.
    pub saved_meanwhile: Option<String>,
    pub inputmode: Option<&'static str>,
}

impl Input {
    /// The ids of the hint, error and saved value that describe the input.
    pub fn described_by(&self) -> String {
        let mut ids = Vec::new();
        if self.hint.is_some() {
            ids.push(format!("f-{}-hint", self.name));
        }
        if self.error.is_some() {
            ids.push(format!("f-{}-error", self.name));
        }
        if self.saved_meanwhile.is_some() {
            ids.push(format!("f-{}-meanwhile", self.name));
        }
        ids.join(" ")
    }

    /// The value as read (a choice's label rather than its id).
    pub fn display(&self) -> String {
        self.options
            .iter()
            .find(|(v, _)| *v == self.value)
            .map(|(_, l)| l.clone())
            .unwrap_or_else(|| self.value.clone())
    }
}

/// A field's value as text in an input (lists joined by commas).
pub fn as_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| as_text(Some(i)))
            .collect::<Vec<_>>()
            .join(", "),
        Some(Value::Bool(b)) => if *b { "Yes" } else { "No" }.into(),
        Some(other) => other.to_string(),
    }
}

/// The inputs of a record's form, filled from `doc`.
pub fn inputs(kind: Kind, doc: &Doc, members: &[(String, String)]) -> Vec<Input> {
    editable(kind)
        .map(|f| {
            let (control, hint, inputmode) = match f.ty {
                FieldType::LongText => ("textarea", None, None),
                FieldType::Emails => ("text", Some("Separate several with commas"), Some("email")),
                FieldType::Phones | FieldType::Domains | FieldType::Texts => {
                    ("text", Some("Separate several with commas"), None)
                }
                FieldType::Date => ("date", None, None),
                FieldType::Amount => ("text", Some("For example 12500.00"), Some("decimal")),
                FieldType::Currency => ("text", Some("Three letters, such as EUR"), None),
                FieldType::Member => ("select", None, None),
                FieldType::Choice(_) => ("select", None, None),
                _ => ("text", None, None),
            };
            let options = match f.ty {
                FieldType::Member => std::iter::once((String::new(), "Nobody".to_string()))
                    .chain(members.iter().cloned())
                    .collect(),
                FieldType::Choice(values) => {
                    values.iter().map(|v| (v.to_string(), label(v))).collect()
                }
                _ => Vec::new(),
            };
            Input {
                name: f.name,
                label: label(f.name),
                control,
                value: as_text(doc.get(f.name)),
                required: f.required,
                max_len: match f.ty {
                    FieldType::Text(n) => Some(n),
                    FieldType::Currency => Some(3),
                    _ => None,
                },
                hint,
                options,
                error: None,
                saved_meanwhile: None,
                inputmode,
            }
        })
        .collect()
}

/// The field errors of a refused write, by field name; errors naming no shown field are
/// returned as one message for the top of the form.
pub fn errors_of(e: &meshwork_app::AppError) -> (HashMap<String, String>, Option<String>) {
    let mut by_field = HashMap::new();
    let list = e
        .details
        .as_ref()
        .and_then(|d| d.get("errors"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for item in &list {
        if let (Some(field), Some(message)) = (
            item.get("field").and_then(Value::as_str),
            item.get("message").and_then(Value::as_str),
        ) {
            by_field.insert(
                field.split(['.', '[']).next().unwrap_or(field).to_string(),
                super::accounts::capitalized(message),
            );
        }
    }
    if list.is_empty() {
        if let (Some(field), message) = super::accounts::field_of(e) {
            by_field.insert(field.to_string(), message);
        }
    }
    let general = by_field
        .is_empty()
        .then(|| super::accounts::capitalized(&e.message));
    (by_field, general)
}

/// A record's name as people read it.
pub fn title(kind: Kind, doc: &Doc) -> String {
    let text = |k: &str| doc.get(k).and_then(Value::as_str).unwrap_or("").trim();
    let t = match kind {
        Kind::Contact => {
            let name = format!("{} {}", text("first_name"), text("last_name"));
            let name = name.trim().to_string();
            if name.is_empty() {
                doc.get("emails")
                    .and_then(|e| e.get(0))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            } else {
                name
            }
        }
        Kind::Activity => text("title").to_string(),
        Kind::Communication => text("subject").to_string(),
        _ => text("name").to_string(),
    };
    if t.is_empty() {
        format!("Unnamed {}", kind.as_str().replace('_', " "))
    } else {
        t
    }
}

/// An amount with its currency, grouped by thousands (`€12,500.00`, `12,500 JPY`).
pub fn money(amount: &str, currency: Option<&str>) -> String {
    let (int, frac) = amount.split_once('.').unwrap_or((amount, ""));
    let (sign, digits) = match int.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", int),
    };
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let decimals = match currency {
        Some("JPY" | "KRW" | "ISK" | "CLP" | "VND") => 0,
        _ => 2,
    };
    let mut frac: String = frac.chars().take(4).collect();
    while frac.len() < decimals {
        frac.push('0');
    }
    while frac.len() > decimals && frac.ends_with('0') {
        frac.pop();
    }
    let number = if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    };
    match currency {
        Some("USD") => format!("${number}"),
        Some("EUR") => format!("€{number}"),
        Some("GBP") => format!("£{number}"),
        Some("JPY") => format!("¥{number}"),
        Some(c) => format!("{number} {c}"),
        None => number,
    }
}

/// A time as people read it (UTC until the person has set a time zone).
pub fn when(ms: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000) {
        Ok(t) => format!(
            "{}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => "unknown".into(),
    }
}

/// A time as RFC 3339, for `<time datetime>` (the page's script shows it in the reader's zone).
pub fn iso(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A size in bytes as people read it (`812 bytes`, `14.2 KiB`, `3.1 MiB`).
pub fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} bytes"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_groups_thousands_and_keeps_cents() {
        assert_eq!(money("12500.5", Some("EUR")), "€12,500.50");
        assert_eq!(money("1234567", Some("USD")), "$1,234,567.00");
        assert_eq!(money("999", Some("JPY")), "¥999");
        assert_eq!(money("-1000.1250", Some("CHF")), "-1,000.125 CHF");
        assert_eq!(money("100", None), "100.00");
    }

    #[test]
    fn lists_split_on_commas_and_empty_removes() {
        assert_eq!(
            parse(FieldType::Emails, " a@x.test, b@x.test ,"),
            serde_json::json!(["a@x.test", "b@x.test"])
        );
        assert_eq!(parse(FieldType::Text(10), "   "), Value::Null);
    }
}
