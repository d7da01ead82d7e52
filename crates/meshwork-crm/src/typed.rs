//! How the text a person types into a web form becomes a record document: which fields a page
//! lets them edit, how a list is typed (comma-separated), and which posted fields make a
//! document. The result goes through [`crate::Validated::check`] like any API write. Pure, so
//! the page's form handling can be fuzzed (`fuzz/fuzz_targets/web_form.rs`).

use crate::{Doc, FieldSpec, FieldType, Kind};
use serde_json::Value;
use std::collections::HashMap;

/// The fields a person edits on a page, in order. Links to other records are edited through
/// the related lists, custom fields in their own section, and the owner as a member.
pub fn editable(kind: Kind) -> impl Iterator<Item = &'static FieldSpec> {
    kind.fields().iter().filter(move |f| {
        let linked = matches!(f.ty, FieldType::Refs(..) | FieldType::Custom);
        let staged = kind == Kind::Deal && matches!(f.name, "pipeline" | "stage");
        !linked && !staged
    })
}

/// Fields that hold a list, typed as comma-separated text.
pub fn is_list(ty: FieldType) -> bool {
    matches!(
        ty,
        FieldType::Emails | FieldType::Phones | FieldType::Domains | FieldType::Texts
    )
}

/// The typed text of one field as the JSON value the CRM takes: lists split on commas,
/// semicolons and line breaks; an empty input is `null` (the field is removed).
pub fn parse(ty: FieldType, typed: &str) -> Value {
    let t = typed.trim();
    if t.is_empty() {
        return Value::Null;
    }
    if is_list(ty) {
        return Value::Array(
            t.split([',', '\n', ';'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        );
    }
    match ty {
        FieldType::LongText => Value::String(typed.replace("\r\n", "\n")),
        _ => Value::String(t.to_string()),
    }
}

/// The fields of `kind` present in a posted form, as a patch (an update) or, leaving out the
/// empty ones, a new record's document (`create`).
pub fn doc_from_form(kind: Kind, form: &HashMap<String, String>, create: bool) -> Doc {
    let mut doc = Doc::new();
    for f in editable(kind) {
        if let Some(typed) = form.get(f.name) {
            let v = parse(f.ty, typed);
            if !(create && v.is_null()) {
                doc.insert(f.name.to_string(), v);
            }
        }
    }
    if kind == Kind::Deal {
        // Pipeline and stage come as one choice, `pipeline-id/stage-id`.
        if let Some((pipeline, stage)) = form.get("pipeline_stage").and_then(|p| p.split_once('/'))
        {
            doc.insert("pipeline".into(), Value::String(pipeline.into()));
            doc.insert("stage".into(), Value::String(stage.into()));
        }
    }
    doc
}
