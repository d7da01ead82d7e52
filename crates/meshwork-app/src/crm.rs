//! The CRM service: records of every kind, sealed per workspace, with dedup by blind index,
//! links checked to exist, timelines, merge and bulk changes (export is `crate::export`). The
//! HTTP handlers, the importer (`import`) and the CLI all go through here, so a record is
//! validated and sealed the same way whichever door it came in by.

use crate::error::{AppError, AppResult};
use crate::state::{now_millis, AppState};
use meshwork_crm::{CustomFieldDef, Doc, Filter, Kind, Validated};
use meshwork_domain::{ErrorCode, RecordId, UserId, WorkspaceId};
use meshwork_keyring::{Aad, DataKey};
use meshwork_store::{
    CrmBatch, CrmOp, EventRow, Hash32, KeyEntry, LinkRow, RecordRow, TimelineEntry,
};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// A record as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordView {
    pub id: uuid::Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    /// Send it back with an update to refuse overwriting someone else's change.
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the thing happened (timelines are ordered by it).
    pub occurred_at: i64,
    /// The record's fields (see the record type's schema in docs/crm.md).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub fields: Doc,
}

/// One timeline entry: a record about the subject, or a change to it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineItem {
    /// `note`, `activity`, `communication`, `file`, `form_submission`, `field_change` or `merge`.
    #[serde(rename = "type")]
    pub kind: String,
    pub at: i64,
    pub id: uuid::Uuid,
    /// The record, for record entries.
    pub record: Option<RecordView>,
    /// What changed, for change entries.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub details: Option<Value>,
}

/// The outcome (or, for a dry run, the preview) of a merge.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MergeResult {
    pub dry_run: bool,
    pub survivor: RecordView,
    pub merged_id: uuid::Uuid,
    /// How many links and timeline entries move to the survivor.
    pub relations_moved: usize,
}

/// A page of records.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordPage {
    pub records: Vec<RecordView>,
    /// Pass as `cursor` (with the same `sort`) for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// How many records match, on every page.
    pub total: u64,
    /// Deals only: per pipeline, stage and currency, how many match and the sum of their
    /// amounts.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<StageTotalView>>))]
    pub stage_totals: Option<Vec<meshwork_search::StageTotal>>,
}

/// The deals of one stage of one pipeline in one currency (the OpenAPI shape of
/// `stage_totals` items).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StageTotalView {
    pub pipeline: String,
    /// The stage's id (unique within its pipeline).
    pub stage: String,
    /// Absent for deals without a currency.
    pub currency: Option<String>,
    pub count: u64,
    /// The sum of their amounts, exact, as a decimal string (`"1234.50"`).
    pub amount: String,
}

/// A filter's field terms as the index's clauses (`meshwork-search` knows no CRM types).
fn index_clauses(filter: &Filter) -> Vec<meshwork_search::FieldClause> {
    filter
        .clauses()
        .into_iter()
        .map(|c| meshwork_search::FieldClause {
            term: c.term,
            or_absent: c.or_absent,
        })
        .collect()
}

/// A list request, checked at the edge.
#[derive(Debug, Clone)]
pub struct RecordList {
    pub kind: Kind,
    pub filter: Filter,
    /// Search-box text narrowing the list (`q`).
    pub text: Option<meshwork_search::ParsedQuery>,
    pub sort: meshwork_search::SortOrder,
    pub cursor: Option<meshwork_search::ListCursor>,
    pub limit: usize,
    pub linked_to: Option<RecordId>,
}

impl RecordList {
    /// A list request from query parameters, as the API and the pages take them: `limit` (1 to
    /// 500, 50 by default), `sort`, `cursor`, `linked_to`, `q` (search-box text) and
    /// `field=value` terms.
    pub fn from_params(kind: Kind, params: &HashMap<String, String>) -> AppResult<Self> {
        let limit = match params.get("limit") {
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=500).contains(l))
                .ok_or_else(|| invalid("limit", "must be 1 to 500"))?,
            None => 50,
        };
        let sort: meshwork_search::SortOrder = match params.get("sort") {
            Some(s) => s
                .parse()
                .map_err(|e: meshwork_search::UnknownSort| invalid("sort", e.to_string()))?,
            None => meshwork_search::SortOrder::default(),
        };
        let cursor = params
            .get("cursor")
            .map(|c| {
                meshwork_search::ListCursor::parse(c, sort)
                    .map_err(|e| invalid("cursor", e.to_string()))
            })
            .transpose()?;
        let linked_to = params
            .get("linked_to")
            .map(|c| {
                c.parse::<RecordId>()
                    .map_err(|_| invalid("linked_to", "must be a record id"))
            })
            .transpose()?;
        Ok(Self {
            kind,
            text: text_of(params)?,
            filter: filter_of(kind, params, &["limit", "cursor", "linked_to", "sort"])?,
            sort,
            cursor,
            limit,
            linked_to,
        })
    }
}

/// The `field=value` terms of a list or bulk filter (leaving out `reserved` parameters and `q`).
pub fn filter_of(
    kind: Kind,
    params: &HashMap<String, String>,
    reserved: &[&str],
) -> AppResult<Filter> {
    Ok(Filter::parse(
        kind,
        params
            .iter()
            .filter(|(k, _)| !reserved.contains(&k.as_str()))
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )?)
}

/// The search-box text `q` of a list or bulk filter, parsed as the search box parses it.
pub fn text_of(
    params: &HashMap<String, String>,
) -> AppResult<Option<meshwork_search::ParsedQuery>> {
    let Some(q) = params.get("q").map(|q| q.trim()).filter(|q| !q.is_empty()) else {
        return Ok(None);
    };
    meshwork_search::query::parse(q).map(Some).map_err(|e| {
        let mut err = AppError::new(ErrorCode::InvalidQuery, format!("`q`: {e}"));
        if let Some(s) = e.subject() {
            err = err.with("subject", Value::String(s.to_string()));
        }
        err
    })
}

/// The largest file a record holds (an attachment, an uploaded file's content).
pub const MAX_FILE_BYTES: usize = 25 * 1024 * 1024;

pub fn invalid(field: &str, message: impl Into<String>) -> AppError {
    AppError::new(
        ErrorCode::InvalidField,
        format!("field `{field}`: {}", message.into()),
    )
}

fn validation_error(e: meshwork_crm::ValidationErrors) -> AppError {
    let list: Vec<Value> =
        e.0.iter()
            .map(|f| json!({"field": f.field, "code": f.code.as_str(), "message": f.message}))
            .collect();
    let first = e.0[0].clone();
    let more = if e.0.len() > 1 {
        format!(" (and {} more problems; see `errors`)", e.0.len() - 1)
    } else {
        String::new()
    };
    AppError::new(
        first.code,
        format!("field `{}`: {}{more}", first.field, first.message),
    )
    .with("errors", Value::Array(list))
}

/// CRM operations in one workspace.
pub struct Crm<'a> {
    pub state: &'a AppState,
    pub ws: WorkspaceId,
    key: Arc<DataKey>,
    scope: String,
}

impl std::fmt::Debug for Crm<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crm")
            .field("ws", &self.ws)
            .finish_non_exhaustive()
    }
}

/// Records that pass validation and the checks against the store, ready to write.
#[derive(Debug)]
pub struct Prepared {
    pub validated: Validated,
    pub keys: Vec<KeyEntry>,
    pub links: Vec<LinkRow>,
}

impl<'a> Crm<'a> {
    pub fn new(state: &'a AppState, ws: WorkspaceId) -> AppResult<Self> {
        Ok(Self {
            state,
            ws,
            key: state.workspace_key(ws)?,
            scope: ws.to_string(),
        })
    }

    pub fn seal_doc(&self, id: RecordId, doc: &Doc) -> Vec<u8> {
        let record = id.to_string();
        let bytes = serde_json::to_vec(doc).expect("a JSON map serializes");
        self.key.seal(
            Aad {
                scope: &self.scope,
                record: &record,
                field: "data",
            },
            &bytes,
        )
    }

    pub fn open_doc(&self, row: &RecordRow) -> AppResult<Doc> {
        self.open_as(row)
    }

    /// Opens a record's document into `T`: a [`Doc`], or a type that reads only some fields.
    pub fn open_as<T: serde::de::DeserializeOwned>(&self, row: &RecordRow) -> AppResult<T> {
        let record = row.id.to_string();
        let bytes = self.key.open(
            Aad {
                scope: &self.scope,
                record: &record,
                field: "data",
            },
            &row.data_sealed,
        )?;
        serde_json::from_slice(&bytes)
            .map_err(|e| AppError::internal(format!("record {} holds invalid JSON: {e}", row.id)))
    }

    pub fn seal_value(&self, record: &str, field: &str, value: &Value) -> Vec<u8> {
        let bytes = serde_json::to_vec(value).expect("JSON serializes");
        self.key.seal(
            Aad {
                scope: &self.scope,
                record,
                field,
            },
            &bytes,
        )
    }

    pub fn open_value(&self, record: &str, field: &str, sealed: &[u8]) -> AppResult<Value> {
        let bytes = self.key.open(
            Aad {
                scope: &self.scope,
                record,
                field,
            },
            sealed,
        )?;
        serde_json::from_slice(&bytes)
            .map_err(|e| AppError::internal(format!("sealed {field} of {record} is not JSON: {e}")))
    }

    pub fn seal_bytes(&self, record: RecordId, field: &str, bytes: &[u8]) -> Vec<u8> {
        let record = record.to_string();
        self.key.seal(
            Aad {
                scope: &self.scope,
                record: &record,
                field,
            },
            bytes,
        )
    }

    pub fn open_bytes(&self, record: RecordId, field: &str, sealed: &[u8]) -> AppResult<Vec<u8>> {
        let record = record.to_string();
        Ok(self.key.open(
            Aad {
                scope: &self.scope,
                record: &record,
                field,
            },
            sealed,
        )?)
    }

    /// The store's key kind for a dedup key of `kind` (`contact.email`).
    pub fn key_kind(kind: Kind, key: &str) -> String {
        format!("{kind}.{key}")
    }

    pub fn key_index(&self, kind: Kind, key: &str, value: &str) -> Hash32 {
        self.key.blind_index(&Self::key_kind(kind, key), value).0
    }

    /// The store's dedup keys of a validated record (blind indexes, without repeats).
    pub fn key_entries(&self, kind: Kind, validated: &Validated) -> Vec<KeyEntry> {
        let mut keys: Vec<KeyEntry> = Vec::with_capacity(validated.keys.len());
        for (key, value) in &validated.keys {
            let entry = KeyEntry {
                kind: Self::key_kind(kind, key),
                index: self.key_index(kind, key, value),
            };
            if !keys.contains(&entry) {
                keys.push(entry);
            }
        }
        keys
    }

    /// The record's dedup keys, after checking that no record but `owners` holds one; a taken
    /// key answers `409 duplicate_record` naming its holder.
    pub async fn free_keys(
        &self,
        kind: Kind,
        validated: &Validated,
        owners: &[RecordId],
    ) -> AppResult<Vec<KeyEntry>> {
        let keys = self.key_entries(kind, validated);
        for entry in &keys {
            let holders = self
                .state
                .store
                .crm_find_keys(self.ws, &entry.kind, &[entry.index])
                .await?;
            if let Some((_, existing)) = holders.into_iter().find(|(_, h)| !owners.contains(h)) {
                let key = entry.kind.rsplit('.').next().unwrap_or(&entry.kind);
                return Err(AppError::new(
                    ErrorCode::DuplicateRecord,
                    format!("a {kind} with this {key} already exists: {existing} (merge the two, or update that one)"),
                )
                .with("existing", json!({"id": existing, "type": kind.as_str(), "key": key})));
            }
        }
        Ok(keys)
    }

    pub fn view(&self, row: &RecordRow) -> AppResult<RecordView> {
        Ok(Self::view_of(row, self.open_doc(row)?))
    }

    /// The view of a record whose document is already open.
    fn view_of(row: &RecordRow, fields: Doc) -> RecordView {
        RecordView {
            id: row.id.as_uuid(),
            kind: row.kind.clone(),
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            occurred_at: row.occurred_at,
            fields,
        }
    }

    /// Every record of `kind`, decrypted, in creation order.
    pub async fn all(&self, kind: Kind) -> AppResult<Vec<(RecordRow, Doc)>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .state
                .store
                .crm_list(self.ws, kind.as_str(), after, 1000)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            for row in page {
                let doc = self.open_doc(&row)?;
                out.push((row, doc));
            }
        }
        Ok(out)
    }

    pub async fn customs(&self) -> AppResult<Vec<CustomFieldDef>> {
        Ok(self
            .all(Kind::Field)
            .await?
            .iter()
            .filter_map(|(_, d)| CustomFieldDef::from_doc(d))
            .collect())
    }

    pub async fn record(&self, kind: Kind, id: RecordId) -> AppResult<RecordRow> {
        self.state
            .store
            .crm_record(self.ws, id)
            .await?
            .filter(|r| r.kind == kind.as_str())
            .ok_or_else(|| {
                AppError::new(
                    ErrorCode::RecordNotFound,
                    format!("no {kind} with id {id} in this workspace"),
                )
            })
    }

    /// Validates `doc` as a `kind` record (with id `id`) and checks it against the store: the
    /// records it links to exist and have the right kind, its owner is a member, a deal's stage
    /// is in its pipeline, and no other record holds its dedup keys.
    pub async fn prepare(
        &self,
        kind: Kind,
        id: RecordId,
        doc: &Doc,
        customs: &[CustomFieldDef],
    ) -> AppResult<Prepared> {
        let validated = Validated::check(kind, doc, customs).map_err(validation_error)?;
        let ids: Vec<RecordId> = validated.links.iter().map(|l| l.to).collect();
        let found: HashMap<RecordId, RecordRow> = if ids.is_empty() {
            HashMap::new()
        } else {
            self.state
                .store
                .crm_records(self.ws, &ids)
                .await?
                .into_iter()
                .map(|r| (r.id, r))
                .collect()
        };
        for (i, l) in validated.links.iter().enumerate() {
            let ok = found
                .get(&l.to)
                .is_some_and(|r| l.kinds.iter().any(|k| k.as_str() == r.kind));
            if !ok || l.to == id {
                let kinds: Vec<_> = l.kinds.iter().map(|k| k.as_str()).collect();
                return Err(invalid(
                    l.field,
                    format!(
                        "link {i}: no {} with id {} in this workspace",
                        kinds.join(" or "),
                        l.to
                    ),
                ));
            }
        }
        for m in &validated.members {
            if self.state.store.role_of(self.ws, *m).await?.is_none() {
                return Err(invalid(
                    "owner",
                    format!("{} is not a member of this workspace", m.0),
                ));
            }
        }
        if kind == Kind::Deal {
            let pipeline = validated
                .links
                .iter()
                .find(|l| l.role == "pipeline")
                .and_then(|l| found.get(&l.to));
            if let Some(p) = pipeline {
                let pdoc = self.open_doc(p)?;
                let stage = validated
                    .doc
                    .get("stage")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let stages = pdoc
                    .get("stages")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if !stages.iter().any(|s| s["id"] == stage) {
                    let ids: Vec<_> = stages.iter().filter_map(|s| s["id"].as_str()).collect();
                    return Err(invalid(
                        "stage",
                        format!(
                            "{stage:?} is not a stage of this pipeline (stages: {})",
                            ids.join(", ")
                        ),
                    ));
                }
            }
        }
        let keys = self.free_keys(kind, &validated, &[id]).await?;
        let links = validated
            .links
            .iter()
            .map(|l| LinkRow {
                from: id,
                to: l.to,
                role: l.role.to_string(),
            })
            .collect();
        Ok(Prepared {
            validated,
            keys,
            links,
        })
    }

    fn occurred(v: &Validated, fallback: i64) -> i64 {
        v.occurred_at.unwrap_or(fallback)
    }

    pub async fn create(&self, kind: Kind, doc: &Doc) -> AppResult<RecordView> {
        self.create_with_id(kind, RecordId::new(), doc, Vec::new())
            .await
    }

    /// Creates the record under `id`, chosen when the form that creates it was shown: the same
    /// form submitted twice (a double click, a resent request) finds the record the first
    /// submit made and creates nothing. Answers the record and whether this call created it.
    pub async fn create_once(
        &self,
        kind: Kind,
        id: RecordId,
        doc: &Doc,
    ) -> AppResult<(RecordView, bool)> {
        self.create_once_with(kind, id, doc, Vec::new()).await
    }

    /// [`Crm::create_once`], writing `extra` (a file's content) in the same batch.
    async fn create_once_with(
        &self,
        kind: Kind,
        id: RecordId,
        doc: &Doc,
        extra: Vec<CrmOp>,
    ) -> AppResult<(RecordView, bool)> {
        let existing = |rows: Vec<RecordRow>| -> AppResult<Option<RecordView>> {
            match rows.into_iter().next() {
                Some(row) if row.kind == kind.as_str() => Ok(Some(self.view(&row)?)),
                Some(_) => Err(invalid(
                    "form_id",
                    "this form was already used for something else; reload the page",
                )),
                None => Ok(None),
            }
        };
        if let Some(view) = existing(self.state.store.crm_records(self.ws, &[id]).await?)? {
            return Ok((view, false));
        }
        match self.create_with_id(kind, id, doc, extra).await {
            Ok(view) => Ok((view, true)),
            // Two submits at once: the one that lost the race answers the winner's record.
            Err(e) => match existing(self.state.store.crm_records(self.ws, &[id]).await?)? {
                Some(view) => Ok((view, false)),
                None => Err(e),
            },
        }
    }

    /// Attaches a file to the record `about` (a contact, company or deal): one file record
    /// with its content, written together, so a refused or interrupted upload leaves nothing
    /// half-written. `id` was chosen when the form was shown, as for [`Crm::create_once`]: the
    /// same upload sent twice stores one file. Answers the file and whether this call stored it.
    pub async fn attach_file(
        &self,
        id: RecordId,
        about: RecordId,
        name: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> AppResult<(RecordView, bool)> {
        let name = name.trim();
        if name.is_empty() {
            return Err(invalid("file", "choose a file to attach"));
        }
        if bytes.len() > MAX_FILE_BYTES {
            return Err(AppError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "{name} is {:.1} MiB; a file is at most {} MiB",
                    bytes.len() as f64 / (1024.0 * 1024.0),
                    MAX_FILE_BYTES / 1024 / 1024
                ),
            ));
        }
        self.check_file_quota(id, name, bytes.len() as u64).await?;
        crate::antivirus::check(self.state, name, bytes).await?;
        let mut doc = Doc::new();
        doc.insert(
            "name".into(),
            Value::String(name.chars().take(255).collect()),
        );
        if let Some(content_type) = file_type(content_type, bytes) {
            doc.insert("content_type".into(), Value::String(content_type));
        }
        doc.insert("size".into(), Value::from(bytes.len() as u64));
        doc.insert(
            "about".into(),
            Value::Array(vec![Value::String(about.to_string())]),
        );
        self.create_once_with(
            Kind::File,
            id,
            &doc,
            vec![CrmOp::Blob {
                record: id,
                content_sealed: self.seal_bytes(id, "content", bytes),
            }],
        )
        .await
    }

    /// Replaces a file record's content (and its `size`), in one transaction.
    pub async fn put_file_content(&self, id: RecordId, bytes: &[u8]) -> AppResult<RecordView> {
        let row = self.record(Kind::File, id).await?;
        let before = self.open_doc(&row)?;
        let name = before
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("the file")
            .to_string();
        self.check_file_quota(id, &name, bytes.len() as u64).await?;
        crate::antivirus::check(self.state, &name, bytes).await?;
        let mut patch = Doc::new();
        patch.insert("size".into(), Value::from(bytes.len() as u64));
        // The type the new bytes show, or the one the record had (ASVS 12.2.1).
        let declared = before
            .get("content_type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some(t) = file_type(declared, bytes).filter(|t| t != declared) {
            patch.insert("content_type".into(), Value::String(t));
        }
        let customs = self.customs().await?;
        let doc = Self::patched(&before, &patch, &customs, Kind::File);
        let p = self.prepare(Kind::File, id, &doc, &customs).await?;
        let now = now_millis();
        let (mut ops, next) = self.update_ops(&row, &before, p, now, "field_change");
        ops.push(CrmOp::Blob {
            record: id,
            content_sealed: self.seal_bytes(id, "content", bytes),
        });
        self.apply(&meshwork_store::CrmBatch { ops }, now).await?;
        self.view(&next)
    }

    /// Refuses content of `size` bytes for the file `id` that would take the workspace past its
    /// quotas (`quotas.workspace_files`, `quotas.workspace_file_bytes`; ASVS 12.1.3); the file's
    /// own present content, when it is being replaced, does not count. Two uploads at once may
    /// both pass the check, so a workspace can end over its byte quota by the files in flight.
    async fn check_file_quota(&self, id: RecordId, name: &str, size: u64) -> AppResult<()> {
        let q = &self.state.config.quotas;
        if q.workspace_files == 0 && q.workspace_file_bytes == 0 {
            return Ok(());
        }
        let (files, used) = self.state.store.crm_blob_usage(self.ws, id).await?;
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        if q.workspace_files > 0 && files >= q.workspace_files {
            return Err(AppError::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "this workspace holds {files} files, as many as this server allows one (quotas.workspace_files); delete some before attaching {name}"
                ),
            ));
        }
        if q.workspace_file_bytes > 0 && used + size > q.workspace_file_bytes {
            return Err(AppError::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "{name} ({:.1} MiB) would take this workspace's files past the {:.1} MiB this server allows one (quotas.workspace_file_bytes); they take {:.1} MiB now",
                    mib(size),
                    mib(q.workspace_file_bytes),
                    mib(used)
                ),
            ));
        }
        Ok(())
    }

    /// A file record's name, content type and content, for a download.
    pub async fn file_content(&self, id: RecordId) -> AppResult<(String, String, Vec<u8>)> {
        let row = self.record(Kind::File, id).await?;
        let doc = self.open_doc(&row)?;
        let sealed = self
            .state
            .store
            .crm_blob(self.ws, id)
            .await?
            .ok_or_else(|| {
                AppError::new(
                    ErrorCode::RecordNotFound,
                    "this file has no content yet; upload it (PUT …/files/{id}/content, or attach it from a record's page)",
                )
            })?;
        let text = |k: &str| {
            doc.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Ok((
            text("name"),
            text("content_type"),
            self.open_bytes(id, "content", &sealed)?,
        ))
    }

    async fn create_with_id(
        &self,
        kind: Kind,
        id: RecordId,
        doc: &Doc,
        extra: Vec<CrmOp>,
    ) -> AppResult<RecordView> {
        let customs = self.customs().await?;
        let p = self.prepare(kind, id, doc, &customs).await?;
        let now = now_millis();
        let row = RecordRow {
            id,
            workspace_id: self.ws,
            kind: kind.as_str().into(),
            data_sealed: self.seal_doc(id, &p.validated.doc),
            occurred_at: Self::occurred(&p.validated, now),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let mut ops = vec![CrmOp::Put {
            record: row.clone(),
            expected_version: None,
            keys: p.keys,
            links: Some(p.links),
        }];
        ops.extend(extra);
        let batch = CrmBatch { ops };
        self.apply(&batch, now).await?;
        self.view(&row)
    }

    /// Applies a batch, answering a lost race on a dedup key or a version as a conflict.
    pub async fn apply(&self, batch: &CrmBatch, now: i64) -> AppResult<()> {
        self.apply_unindexed(batch, now).await?;
        // A crash test's cut: the write is committed, the index not yet caught up.
        crate::faults::hit("crm.apply.committed");
        self.state.usage.count(self.ws, "crm.write");
        // Searchable when the write returns.
        self.state
            .search
            .sync_after_write(self.state, self.ws)
            .await;
        Ok(())
    }

    /// [`Crm::apply`] without waiting for the search index: for bulk writers (imports) that
    /// let the index catch up beside them and wait for it once at the end.
    pub async fn apply_unindexed(&self, batch: &CrmBatch, now: i64) -> AppResult<()> {
        match self.state.store.crm_apply(self.ws, batch, now).await {
            Ok(()) => Ok(()),
            Err(meshwork_store::StoreError::Conflict("crm_keys")) => Err(AppError::new(
                ErrorCode::DuplicateRecord,
                "another record with the same email, domain or external id was saved at the same time; reload and retry",
            )),
            Err(meshwork_store::StoreError::Conflict("crm_suppressed")) => Err(AppError::new(
                ErrorCode::Suppressed,
                "this person was erased from the workspace at their request: their email or phone cannot be added again",
            )),
            Err(meshwork_store::StoreError::Conflict("crm_records.version")) => Err(AppError::new(
                ErrorCode::ConcurrentChange,
                "the record changed since you read it; reload it and apply your change again",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Applies a patch: fields given replace the stored ones, `null` removes a field, and
    /// `custom` is patched key by key.
    pub fn patched(current: &Doc, patch: &Doc, customs: &[CustomFieldDef], kind: Kind) -> Doc {
        let mut doc = current.clone();
        // Values of custom fields whose definition was deleted are dropped, not re-validated.
        if let Some(Value::Object(c)) = doc.get_mut("custom") {
            c.retain(|k, _| customs.iter().any(|d| d.object == kind && &d.key == k));
        }
        for (k, v) in patch {
            match (k.as_str(), v) {
                (_, Value::Null) => {
                    doc.remove(k);
                }
                ("custom", Value::Object(p)) => {
                    let entry = doc
                        .entry("custom")
                        .or_insert_with(|| Value::Object(Doc::new()));
                    if let Value::Object(c) = entry {
                        for (ck, cv) in p {
                            if cv.is_null() {
                                c.remove(ck);
                            } else {
                                c.insert(ck.clone(), cv.clone());
                            }
                        }
                    }
                }
                _ => {
                    doc.insert(k.clone(), v.clone());
                }
            }
        }
        doc
    }

    /// Builds the ops that replace a record's document, with a field-change timeline event.
    pub fn update_ops(
        &self,
        row: &RecordRow,
        before: &Doc,
        p: Prepared,
        now: i64,
        event_kind: &str,
    ) -> (Vec<CrmOp>, RecordRow) {
        let mut ops = Vec::new();
        let changes = meshwork_crm::diff(before, &p.validated.doc);
        let next = RecordRow {
            data_sealed: self.seal_doc(row.id, &p.validated.doc),
            occurred_at: p.validated.occurred_at.unwrap_or(row.created_at),
            updated_at: now,
            version: row.version + 1,
            ..row.clone()
        };
        ops.push(CrmOp::Put {
            record: next.clone(),
            expected_version: Some(row.version),
            keys: p.keys,
            links: Some(p.links),
        });
        if !changes.is_empty()
            && Kind::ALL
                .iter()
                .any(|k| k.as_str() == row.kind && k.has_timeline())
        {
            let id = uuid::Uuid::now_v7();
            ops.push(CrmOp::Event(EventRow {
                id,
                subject: row.id,
                kind: event_kind.into(),
                details_sealed: self.seal_value(
                    &id.to_string(),
                    "details",
                    &json!({"changes": changes}),
                ),
                at: now,
            }));
        }
        (ops, next)
    }

    pub async fn update(
        &self,
        kind: Kind,
        id: RecordId,
        patch: &Doc,
        expected: Option<i64>,
    ) -> AppResult<RecordView> {
        // Without a version the caller asked for no conflict check: a change that lands between
        // this read and the write is not a reason to refuse (finding 22), so the patch is
        // applied again to the record as it now is. Each refusal means another change landed,
        // so ten tries see through ten writers at once.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.update_once(kind, id, patch, expected).await {
                Err(e)
                    if e.code == ErrorCode::ConcurrentChange
                        && expected.is_none()
                        && attempt < 10 =>
                {
                    continue
                }
                done => return done,
            }
        }
    }

    async fn update_once(
        &self,
        kind: Kind,
        id: RecordId,
        patch: &Doc,
        expected: Option<i64>,
    ) -> AppResult<RecordView> {
        let row = self.record(kind, id).await?;
        // A race test's window: another change may land between this read and the write.
        crate::faults::pause("crm.update.read").await;
        if let Some(v) = expected {
            if v != row.version {
                return Err(AppError::new(ErrorCode::ConcurrentChange, format!("the record is at version {}, not {v}; reload it and apply your change again", row.version)));
            }
        }
        let customs = self.customs().await?;
        let before = self.open_doc(&row)?;
        let doc = Self::patched(&before, patch, &customs, kind);
        let p = self.prepare(kind, id, &doc, &customs).await?;
        if kind == Kind::Pipeline {
            self.removed_stages_are_empty(id, &before, &p.validated.doc)
                .await?;
        }
        let now = now_millis();
        let (ops, next) = self.update_ops(&row, &before, p, now, "field_change");
        self.apply(&CrmBatch { ops }, now).await?;
        self.view(&next)
    }

    /// A pipeline's stage is removed only once no deal is in it: a deal is never left in a
    /// stage its pipeline no longer has.
    async fn removed_stages_are_empty(
        &self,
        pipeline: RecordId,
        before: &Doc,
        after: &Doc,
    ) -> AppResult<()> {
        let stages = |d: &Doc| -> Vec<(String, String)> {
            d.get("stages")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|s| {
                            let id = s.get("id")?.as_str()?.to_string();
                            let name = s.get("name").and_then(Value::as_str).unwrap_or(&id);
                            Some((id.clone(), name.to_string()))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let kept: BTreeSet<String> = stages(after).into_iter().map(|(id, _)| id).collect();
        let removed: BTreeMap<String, String> = stages(before)
            .into_iter()
            .filter(|(id, _)| !kept.contains(id))
            .collect();
        if removed.is_empty() {
            return Ok(());
        }
        let deals: Vec<RecordId> = self
            .state
            .store
            .crm_links_to(self.ws, pipeline, Some("pipeline"))
            .await?
            .into_iter()
            .map(|l| l.from)
            .collect();
        let mut held: BTreeMap<&str, usize> = BTreeMap::new();
        for chunk in deals.chunks(500) {
            for row in self.state.store.crm_records(self.ws, chunk).await? {
                let doc = self.open_doc(&row)?;
                if let Some(stage) = doc.get("stage").and_then(Value::as_str) {
                    if let Some((id, _)) = removed.get_key_value(stage) {
                        *held.entry(id.as_str()).or_default() += 1;
                    }
                }
            }
        }
        match held.iter().next() {
            None => Ok(()),
            Some((id, n)) => Err(AppError::new(
                ErrorCode::RecordInUse,
                format!(
                    "{n} {} in the stage “{}”; move {} to another stage before removing it",
                    if *n == 1 { "deal is" } else { "deals are" },
                    removed[*id],
                    if *n == 1 { "it" } else { "them" }
                ),
            )),
        }
    }

    /// Why a record cannot be deleted yet, if it cannot.
    async fn in_use(&self, kind: Kind, id: RecordId) -> AppResult<Option<String>> {
        let role = match kind {
            Kind::Pipeline => "pipeline",
            Kind::Form => "form",
            _ => return Ok(None),
        };
        let n = self
            .state
            .store
            .crm_links_to(self.ws, id, Some(role))
            .await?
            .len();
        Ok((n > 0).then(|| {
            let what = if role == "pipeline" {
                "deal"
            } else {
                "submission"
            };
            match n {
                1 => format!("1 {what} uses this {kind}; move or delete it first"),
                _ => format!("{n} {what}s use this {kind}; move or delete them first"),
            }
        }))
    }

    pub async fn delete(&self, kind: Kind, id: RecordId) -> AppResult<()> {
        self.record(kind, id).await?;
        if let Some(why) = self.in_use(kind, id).await? {
            return Err(AppError::new(ErrorCode::RecordInUse, why));
        }
        self.apply(
            &CrmBatch {
                ops: vec![CrmOp::Delete {
                    id,
                    kind: kind.as_str().into(),
                }],
            },
            now_millis(),
        )
        .await
    }

    /// A page of records of `kind` matching `list`, served by the search index (DESIGN.md
    /// decision 4): the index answers the filter, the order, the page, the count and the deal
    /// totals; the page's records are then read from the store, so what is shown is the stored
    /// record. `linked_to` is read from the store's links and handed to the index as an id set.
    pub async fn list(
        &self,
        actor: &crate::actor::Actor,
        role: meshwork_domain::Role,
        list: RecordList,
    ) -> AppResult<RecordPage> {
        let ids = match list.linked_to {
            Some(target) => Some(
                self.state
                    .store
                    .crm_links_to(self.ws, target, None)
                    .await?
                    .into_iter()
                    .map(|l| l.from.to_string())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
            ),
            None => None,
        };
        let me = match actor {
            crate::actor::Actor::User { id, .. } => Some(id.to_string()),
            crate::actor::Actor::ApiKey { .. } => None,
        };
        let query = meshwork_search::ListQuery {
            kind: list.kind.as_str().to_string(),
            clauses: index_clauses(&list.filter),
            text: list.text,
            ids,
            sort: list.sort,
            after: list.cursor,
            limit: list.limit,
            me,
        };
        let page = self
            .state
            .search
            .list(self.state, self.ws, role, query)
            .await?;
        let wanted: Vec<RecordId> = page.ids.iter().filter_map(|i| i.parse().ok()).collect();
        let mut rows: HashMap<RecordId, RecordRow> = self
            .state
            .store
            .crm_records(self.ws, &wanted)
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        let mut records = Vec::with_capacity(wanted.len());
        for id in &wanted {
            // A record deleted since the index was read is left out of the page.
            if let Some(row) = rows.remove(id) {
                records.push(self.view(&row)?);
            }
        }
        Ok(RecordPage {
            records,
            next_cursor: page.next.map(|c| c.to_string()),
            total: page.total,
            stage_totals: (list.kind == Kind::Deal).then_some(page.stages),
        })
    }

    pub async fn timeline(
        &self,
        kind: Kind,
        id: RecordId,
        before: Option<(i64, uuid::Uuid)>,
        limit: i64,
    ) -> AppResult<Vec<TimelineItem>> {
        self.record(kind, id).await?;
        let entries = self
            .state
            .store
            .crm_timeline(self.ws, id, before, limit)
            .await?;
        entries
            .iter()
            .map(|e| {
                Ok(match e {
                    TimelineEntry::Item(r) => TimelineItem {
                        kind: r.kind.clone(),
                        at: r.occurred_at,
                        id: r.id.as_uuid(),
                        record: Some(self.view(r)?),
                        details: None,
                    },
                    TimelineEntry::Event(ev) => TimelineItem {
                        kind: ev.kind.clone(),
                        at: ev.at,
                        id: ev.id,
                        record: None,
                        details: Some(self.open_value(
                            &ev.id.to_string(),
                            "details",
                            &ev.details_sealed,
                        )?),
                    },
                })
            })
            .collect()
    }

    /// Merges `other` into `survivor`: the survivor's fields win, lists are united, and every
    /// link and timeline entry of `other` moves to the survivor; `other` is deleted. A dry run
    /// computes the same result and writes nothing.
    pub async fn merge(
        &self,
        kind: Kind,
        survivor: RecordId,
        other: RecordId,
        dry_run: bool,
    ) -> AppResult<MergeResult> {
        if survivor == other {
            return Err(invalid("merge_id", "a record cannot be merged into itself"));
        }
        let keep = self.record(kind, survivor).await?;
        let lose = self.record(kind, other).await?;
        let (keep_doc, lose_doc) = (self.open_doc(&keep)?, self.open_doc(&lose)?);
        let mut merged = meshwork_crm::merge(kind, &keep_doc, &lose_doc);
        // Links from the survivor to the merged record would point at nothing.
        for v in merged.values_mut() {
            if let Value::Array(a) = v {
                a.retain(|x| x.as_str() != Some(&other.to_string()));
            }
        }
        let customs = self.customs().await?;
        let merged = Self::patched(&merged, &Doc::new(), &customs, kind);
        // The other record's keys leave with it, so only the survivor's and the merged lists' keys
        // are checked (against records other than these two).
        let validated = Validated::check(kind, &merged, &customs).map_err(validation_error)?;
        // The other record's keys leave with it, so they may be held by either of the two.
        let keys = self.free_keys(kind, &validated, &[survivor, other]).await?;
        let incoming = self.state.store.crm_links_to(self.ws, other, None).await?;
        let events = self
            .state
            .store
            .crm_timeline(self.ws, other, None, 10_000)
            .await?
            .into_iter()
            .filter(|e| matches!(e, TimelineEntry::Event(_)))
            .count();
        let relations_moved = incoming.len() + events;
        let now = now_millis();
        let links = validated
            .links
            .iter()
            .map(|l| LinkRow {
                from: survivor,
                to: l.to,
                role: l.role.to_string(),
            })
            .collect();
        let prepared = Prepared {
            validated,
            keys,
            links,
        };
        let (mut put, next) = self.update_ops(&keep, &keep_doc, prepared, now, "merge");
        if dry_run {
            return Ok(MergeResult {
                dry_run,
                survivor: self.view(&next)?,
                merged_id: other.as_uuid(),
                relations_moved,
            });
        }
        // Order matters: move the relations, delete the other record (freeing its keys), then
        // write the survivor with the united keys.
        let mut ops = vec![
            CrmOp::Repoint {
                from: other,
                to: survivor,
            },
            CrmOp::Delete {
                id: other,
                kind: kind.as_str().into(),
            },
        ];
        ops.append(&mut put);
        if !ops.iter().any(|o| matches!(o, CrmOp::Event(_))) && kind.has_timeline() {
            let id = uuid::Uuid::now_v7();
            ops.push(CrmOp::Event(EventRow {
                id,
                subject: survivor,
                kind: "merge".into(),
                details_sealed: self.seal_value(
                    &id.to_string(),
                    "details",
                    &json!({"merged": other, "changes": []}),
                ),
                at: now,
            }));
        }
        self.apply(&CrmBatch { ops }, now).await?;
        Ok(MergeResult {
            dry_run,
            survivor: self.view(&next)?,
            merged_id: other.as_uuid(),
            relations_moved,
        })
    }

    /// Applies `set` to every record of `kind` matching `filter`; returns how many changed.
    /// Each record is validated as if edited alone; the first invalid one stops the bulk change
    /// before anything is written.
    /// The records of `kind` a list with `filter` and `text` shows (every page), read from the
    /// store: the set a bulk change acts on. Each is checked against the field terms again
    /// once decrypted, so a record changed since the index answered is left alone.
    async fn selected(
        &self,
        role: meshwork_domain::Role,
        kind: Kind,
        sel: &Selection,
    ) -> AppResult<Vec<(RecordRow, Doc)>> {
        let (filter, text) = (&sel.filter, &sel.text);
        const PAGE: usize = 500;
        let mut ids: Vec<RecordId> = Vec::new();
        let mut after = None;
        loop {
            let query = meshwork_search::ListQuery {
                kind: kind.as_str().to_string(),
                clauses: index_clauses(filter),
                text: text.clone(),
                ids: sel
                    .ids
                    .as_ref()
                    .map(|ids| ids.iter().map(RecordId::to_string).collect()),
                sort: meshwork_search::SortOrder::default(),
                after,
                limit: PAGE,
                me: None,
            };
            let page = self
                .state
                .search
                .list(self.state, self.ws, role, query)
                .await?;
            ids.extend(page.ids.iter().filter_map(|i| i.parse::<RecordId>().ok()));
            match page.next {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        let terms = Filter {
            terms: filter.terms.clone(),
            q: None,
        };
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(PAGE) {
            for row in self.state.store.crm_records(self.ws, chunk).await? {
                if row.kind != kind.as_str() {
                    continue;
                }
                let doc = self.open_doc(&row)?;
                if terms.matches(&doc) {
                    out.push((row, doc));
                }
            }
        }
        Ok(out)
    }

    pub async fn bulk_update(
        &self,
        role: meshwork_domain::Role,
        kind: Kind,
        sel: &Selection,
        set: &Doc,
    ) -> AppResult<usize> {
        let customs = self.customs().await?;
        let now = now_millis();
        let mut ops = Vec::new();
        for (row, doc) in self.selected(role, kind, sel).await? {
            let next = Self::patched(&doc, set, &customs, kind);
            let p = self
                .prepare(kind, row.id, &next, &customs)
                .await
                .map_err(|e| AppError {
                    message: format!("record {}: {}", row.id, e.message),
                    ..e
                })?;
            ops.extend(self.update_ops(&row, &doc, p, now, "field_change").0);
        }
        let n = ops
            .iter()
            .filter(|o| matches!(o, CrmOp::Put { .. }))
            .count();
        // One transaction (security finding 16): a bulk change cut short by a crash or a
        // conflict leaves every record as it was, never half of them changed.
        self.apply(&CrmBatch { ops }, now).await?;
        Ok(n)
    }

    pub async fn bulk_delete(
        &self,
        role: meshwork_domain::Role,
        kind: Kind,
        sel: &Selection,
    ) -> AppResult<usize> {
        let mut ops = Vec::new();
        for (row, _) in self.selected(role, kind, sel).await? {
            if let Some(why) = self.in_use(kind, row.id).await? {
                return Err(AppError::new(
                    ErrorCode::RecordInUse,
                    format!("record {}: {why}", row.id),
                ));
            }
            ops.push(CrmOp::Delete {
                id: row.id,
                kind: kind.as_str().into(),
            });
        }
        // One transaction, as for a bulk update (finding 16).
        let n = ops.len();
        self.apply(&CrmBatch { ops }, now_millis()).await?;
        Ok(n)
    }
}

/// The records a bulk change applies to: those a list with this filter and search-box text
/// shows, narrowed to `ids` when given (rows ticked one by one).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub filter: Filter,
    pub text: Option<meshwork_search::ParsedQuery>,
    pub ids: Option<Vec<RecordId>>,
}

/// A file's name, content type and content, for a download by a member or an API key: audited
/// as `file.downloaded` with the file's id and size, never its name or content (OWASP ASVS
/// 8.3.5). The API and the pages both come here.
pub async fn download_file(
    state: &AppState,
    client: &crate::actor::ClientInfo,
    auth: &impl crate::actor::InWorkspace,
    id: RecordId,
) -> AppResult<(String, String, Vec<u8>)> {
    let file = Crm::new(state, auth.workspace())?.file_content(id).await?;
    crate::audit::workspace_event(
        state,
        client,
        "file.downloaded",
        auth,
        None,
        json!({"file": id, "bytes": file.2.len()}),
    )
    .await?;
    Ok(file)
}

/// Sets `set` on every selected record of `kind` (validated record by record: one invalid
/// result changes nothing). Audited. The API and the pages both come here.
pub async fn bulk_update(
    state: &AppState,
    client: &crate::actor::ClientInfo,
    auth: &impl crate::actor::InWorkspace,
    kind: Kind,
    sel: &Selection,
    set: &Doc,
) -> AppResult<usize> {
    let affected = Crm::new(state, auth.workspace())?
        .bulk_update(auth.role(), kind, sel, set)
        .await?;
    crate::audit::workspace_event(
        state,
        client,
        "crm.bulk_updated",
        auth,
        None,
        json!({"type": kind.as_str(), "affected": affected, "fields": set.keys().collect::<Vec<_>>()}),
    )
    .await?;
    Ok(affected)
}

/// Merges `other` into `survivor` (see [`Crm::merge`]); a dry run writes nothing, a merge is
/// audited. The API and the pages both come here.
pub async fn merge(
    state: &AppState,
    client: &crate::actor::ClientInfo,
    auth: &impl crate::actor::InWorkspace,
    kind: Kind,
    survivor: RecordId,
    other: RecordId,
    dry_run: bool,
) -> AppResult<MergeResult> {
    let result = Crm::new(state, auth.workspace())?
        .merge(kind, survivor, other, dry_run)
        .await?;
    if !dry_run {
        crate::audit::workspace_event(
            state,
            client,
            "crm.merged",
            auth,
            None,
            json!({"type": kind.as_str(), "survivor": survivor.to_string(), "merged": other.to_string(), "relations_moved": result.relations_moved}),
        )
        .await?;
    }
    Ok(result)
}

/// Deletes every selected record of `kind` (none if one of them is still in use). Audited.
pub async fn bulk_delete(
    state: &AppState,
    client: &crate::actor::ClientInfo,
    auth: &impl crate::actor::InWorkspace,
    kind: Kind,
    sel: &Selection,
) -> AppResult<usize> {
    let affected = Crm::new(state, auth.workspace())?
        .bulk_delete(auth.role(), kind, sel)
        .await?;
    crate::audit::workspace_event(
        state,
        client,
        "crm.bulk_deleted",
        auth,
        None,
        json!({"type": kind.as_str(), "affected": affected}),
    )
    .await?;
    Ok(affected)
}

/// The user id of each workspace member by normalised email (for imports naming owners).
pub async fn members_by_email(
    state: &AppState,
    ws: WorkspaceId,
) -> AppResult<HashMap<String, UserId>> {
    let mut out = HashMap::new();
    for m in state.store.members(ws).await? {
        if let Some(u) = state.store.user(m.user_id).await? {
            let email = state.open_account_str(u.id, "email", &u.email_sealed)?;
            out.insert(email.to_lowercase(), u.id);
        }
    }
    Ok(out)
}

/// How much of a file its type is read from: every signature `infer` knows sits well within it.
const TYPE_HEAD: usize = 64 * 1024;

/// A file's content type, read from its bytes (OWASP ASVS 12.2.1), with `declared` (what the
/// client said, or what the record had) as the fallback:
/// - text declared as text (valid UTF-8) keeps its declared type: a CSV that starts "BMW," is
///   not a bitmap, and text is served as text or as a download whatever it holds;
/// - bytes with a known signature are that type: a program sent as `image/png` is recorded as a
///   program, a page sent as a PDF as a page;
/// - a declared type that has a signature the bytes lack is not believed:
///   `application/octet-stream`;
/// - otherwise the declared type (formats without a signature), or none.
pub fn file_type(declared: &str, bytes: &[u8]) -> Option<String> {
    let declared = declared.trim();
    let head = &bytes[..bytes.len().min(TYPE_HEAD)];
    // Valid UTF-8, but for a character cut at the end of the head.
    let text = std::str::from_utf8(head).map_or_else(|e| e.error_len().is_none(), |_| true);
    if text && declared.starts_with("text/") {
        return Some(declared.chars().take(200).collect());
    }
    if let Some(t) = infer::get(head) {
        return Some(t.mime_type().to_string());
    }
    if infer::is_mime_supported(declared) {
        return Some("application/octet-stream".into());
    }
    (!declared.is_empty()).then(|| declared.chars().take(200).collect())
}
