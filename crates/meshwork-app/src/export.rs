//! Workspace export: every record type as JSON (one document per type, relations by id, file
//! contents in base64, timeline events in `events.json`) and as CSV (one file per type, lists
//! joined with `; `, cells that a spreadsheet would run as a formula escaped). The importer
//! reads the JSON form back (`import::import_export_dir`), so an export restores into an empty
//! workspace.

use crate::crm::Crm;
use crate::error::{AppError, AppResult};
use base64::Engine;
use meshwork_crm::{FieldType, Kind};
use meshwork_domain::ErrorCode;
use meshwork_store::TimelineEntry;
use serde_json::{json, Value};
use std::collections::HashMap;

pub const FORMAT_VERSION: &str = "meshwork-export/1";

/// The file names an export consists of.
pub fn file_names() -> Vec<String> {
    let mut out: Vec<String> = Kind::ALL
        .iter()
        .flat_map(|k| {
            [
                format!("{}.json", k.plural()),
                format!("{}.csv", k.plural()),
            ]
        })
        .collect();
    out.push("events.json".into());
    out
}

/// One export file's bytes.
pub async fn file(crm: &Crm<'_>, name: &str) -> AppResult<(Vec<u8>, &'static str)> {
    crm.state.usage.count(crm.ws, "export");
    if name == "events.json" {
        return Ok((
            serde_json::to_vec_pretty(&events(crm).await?).map_err(AppError::internal)?,
            "application/json",
        ));
    }
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    let kind: Kind = Kind::ALL
        .into_iter()
        .find(|k| k.plural() == stem)
        .ok_or_else(|| not_found(name))?;
    match ext {
        "json" => Ok((
            serde_json::to_vec_pretty(&json_records(crm, kind).await?)
                .map_err(AppError::internal)?,
            "application/json",
        )),
        "csv" => Ok((csv(crm, kind).await?, "text/csv; charset=utf-8")),
        _ => Err(not_found(name)),
    }
}

fn not_found(name: &str) -> AppError {
    AppError::new(
        ErrorCode::RouteNotFound,
        format!("no export file {name:?}; the files are listed at GET …/export"),
    )
}

pub async fn json_records(crm: &Crm<'_>, kind: Kind) -> AppResult<Value> {
    let rows = crm.all(kind).await?;
    let ids: Vec<_> = rows.iter().map(|(r, _)| r.id).collect();
    let mut links: HashMap<_, Vec<Value>> = HashMap::new();
    for l in crm.state.store.crm_links_from(crm.ws, &ids).await? {
        links
            .entry(l.from)
            .or_default()
            .push(json!({"to": l.to, "role": l.role}));
    }
    let mut out = Vec::with_capacity(rows.len());
    for (row, doc) in rows {
        let mut v = json!({
            "id": row.id, "type": row.kind, "version": row.version, "created_at": row.created_at,
            "updated_at": row.updated_at, "occurred_at": row.occurred_at, "fields": doc,
            "links": links.remove(&row.id).unwrap_or_default(),
        });
        if kind == Kind::File {
            if let Some(sealed) = crm.state.store.crm_blob(crm.ws, row.id).await? {
                let bytes = crm.open_bytes(row.id, "content", &sealed)?;
                v["content_base64"] =
                    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
            }
        }
        out.push(v);
    }
    Ok(json!({"format": FORMAT_VERSION, "type": kind.as_str(), "records": out}))
}

async fn events(crm: &Crm<'_>) -> AppResult<Value> {
    let mut out = Vec::new();
    for kind in Kind::ALL.into_iter().filter(|k| k.has_timeline()) {
        for (row, _) in crm.all(kind).await? {
            let mut before = None;
            loop {
                let page = crm
                    .state
                    .store
                    .crm_timeline(crm.ws, row.id, before, 500)
                    .await?;
                let Some(last) = page.last() else { break };
                before = Some(last.position());
                for e in page {
                    if let TimelineEntry::Event(e) = e {
                        let details =
                            crm.open_value(&e.id.to_string(), "details", &e.details_sealed)?;
                        out.push(json!({"id": e.id, "subject": e.subject, "type": e.kind, "at": e.at, "details": details}));
                    }
                }
            }
        }
    }
    Ok(json!({"format": FORMAT_VERSION, "events": out}))
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) if a.iter().all(|x| x.is_string() || x.is_number()) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join("; "),
        Some(other) => other.to_string(),
    }
}

pub async fn csv(crm: &Crm<'_>, kind: Kind) -> AppResult<Vec<u8>> {
    let customs: Vec<String> = crm
        .customs()
        .await?
        .into_iter()
        .filter(|d| d.object == kind)
        .map(|d| d.key)
        .collect();
    let fields: Vec<&str> = kind
        .fields()
        .iter()
        .filter(|f| f.ty != FieldType::Custom)
        .map(|f| f.name)
        .collect();
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let mut header = vec![
        "id".to_string(),
        "created_at".into(),
        "updated_at".into(),
        "occurred_at".into(),
    ];
    header.extend(fields.iter().map(|f| f.to_string()));
    header.extend(customs.iter().map(|c| format!("custom.{c}")));
    w.write_record(&header).map_err(AppError::internal)?;
    for (row, doc) in crm.all(kind).await? {
        let mut rec = vec![
            row.id.to_string(),
            row.created_at.to_string(),
            row.updated_at.to_string(),
            row.occurred_at.to_string(),
        ];
        rec.extend(fields.iter().map(|f| cell(doc.get(*f))));
        rec.extend(
            customs
                .iter()
                .map(|c| cell(doc.get("custom").and_then(|o| o.get(c)))),
        );
        w.write_record(
            rec.iter()
                .map(|c| meshwork_crm_io::escape_formula(c).into_owned()),
        )
        .map_err(AppError::internal)?;
    }
    w.into_inner()
        .map_err(|e| AppError::internal(e.to_string()))
}

/// Writes every export file into `dir` (created if missing); returns the files written.
pub async fn write_dir(
    crm: &Crm<'_>,
    dir: &std::path::Path,
    json: bool,
    csv: bool,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for name in file_names() {
        let wanted = (json && name.ends_with(".json")) || (csv && name.ends_with(".csv"));
        if !wanted {
            continue;
        }
        let (bytes, _) = file(crm, &name)
            .await
            .map_err(|e| anyhow::anyhow!("exporting {name}: {}", e.message))?;
        let path = dir.join(&name);
        std::fs::write(&path, bytes)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
