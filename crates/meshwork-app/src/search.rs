//! Search in the server: one [`SearchIndex`] per workspace under `<data dir>/search/<workspace>`,
//! derived from the change feed (DESIGN.md decision 4).
//!
//! - **Catching up.** Before a search and after every write through the API, the index applies
//!   the changes after its last applied sequence number, so a record is searchable the moment its
//!   creation returns, and a server sharing PostgreSQL with others sees their writes on its next
//!   search. Writers waiting at once are indexed in one commit.
//! - **One process per index.** A lock file keeps a second process (a CLI import beside a running
//!   server) out; that process leaves indexing to the owner, which catches up from the feed.
//! - **Rebuild.** A missing or unreadable index is rebuilt from the feed's entities' current
//!   state; `meshwork reindex` forces it.
//! - **Access.** The searcher's principal set is computed at query time ([`Search::access`]).

use crate::actor::Actor;
use crate::crm::Crm;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use meshwork_crm::{Doc, Kind};
use meshwork_domain::{ErrorCode, Permission, RecordId, Role, WorkspaceId};
use meshwork_keyring::Aad;
use meshwork_search::{
    principal_closure, Access, IndexDoc, IndexOp, SearchIndex, SearchOptions, SearchResults, CRM,
    DOCUMENT_KIND, EVERYONE,
};
use meshwork_store::{ChangeRow, RecordRow, SourceDocRow};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

/// Changes read from the feed per index commit.
const PAGE: i64 = 5_000;

/// A source document as sealed in the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredDocument {
    pub source: String,
    /// The document's id in its source.
    pub external_id: String,
    pub title: String,
    pub body: String,
    pub url: Option<String>,
    pub updated_at: i64,
    /// The principals allowed to read it (`everyone`, `u:…`, `g:…`); empty means nobody.
    pub acl: Vec<String>,
}

struct WsIndex {
    index: SearchIndex,
    /// Held by a catch-up; it holds the index's pending indexing task while it waits on the
    /// store. A catch-up that ended early (an error, a cancelled request) leaves the task
    /// there, and the next one lets it finish before it adds anything.
    catch_up: tokio::sync::Mutex<Option<Indexing>>,
    /// Held for the index's lifetime: the process lock on its directory.
    _lock: File,
}

/// The search indexes of this process.
pub struct Search {
    root: PathBuf,
    open: tokio::sync::Mutex<HashMap<WorkspaceId, Arc<WsIndex>>>,
    /// One helper process (PDF text) at a time in this process.
    helpers: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Search {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Search")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn search_err(e: meshwork_search::SearchError) -> AppError {
    match e {
        meshwork_search::SearchError::Query(q) => {
            let mut err = AppError::new(ErrorCode::InvalidQuery, q.to_string());
            if let Some(s) = q.subject() {
                err = err.with("subject", Value::String(s.to_string()));
            }
            err
        }
        other => AppError::internal(format!("search index: {other}")),
    }
}

fn join_err(e: tokio::task::JoinError) -> AppError {
    AppError::internal(format!("search task: {e}"))
}

impl Search {
    /// The sequence number each index open in this process has applied, by workspace.
    pub async fn applied_seqs(&self) -> Vec<(WorkspaceId, i64)> {
        let open = self.open.lock().await;
        open.iter()
            .map(|(ws, w)| (*ws, w.index.applied_seq()))
            .collect()
    }

    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            open: tokio::sync::Mutex::new(HashMap::new()),
            helpers: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    fn dir(&self, ws: WorkspaceId) -> PathBuf {
        self.root.join(ws.to_string())
    }

    /// The workspace's index, opened (or rebuilt) on first use; `None` while another process
    /// holds it (tried again on the next call, so a server started beside a CLI `reindex`
    /// takes the index over once the CLI is done).
    async fn get(&self, state: &AppState, ws: WorkspaceId) -> AppResult<Option<Arc<WsIndex>>> {
        let mut open = self.open.lock().await;
        if let Some(w) = open.get(&ws) {
            return Ok(Some(w.clone()));
        }
        let dir = self.dir(ws);
        let key = state.workspace_key(ws)?;
        let w = tokio::task::spawn_blocking(move || open_index(&dir, key, ws))
            .await
            .map_err(join_err)??;
        let w = w.map(Arc::new);
        if let Some(w) = &w {
            open.insert(ws, w.clone());
            // Texts a previous process did not get to read before it stopped.
            let w2 = w.clone();
            let pending = tokio::task::spawn_blocking(move || w2.index.pending_texts())
                .await
                .map_err(join_err)?
                .map_err(search_err)?;
            let pending = pending.iter().filter_map(|id| id.parse().ok()).collect();
            drop(open);
            self.read_texts_later(state, ws, w, pending);
        }
        Ok(w)
    }

    /// Reads the text of `files` (formats read by the helper process) one at a time in the
    /// background, and indexes each with it; a catch-up indexes them by name at once, so that
    /// a slow or hostile PDF never holds up the index. Returns when all are scheduled.
    fn read_texts_later(
        &self,
        state: &AppState,
        ws: WorkspaceId,
        w: &Arc<WsIndex>,
        files: Vec<RecordId>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        files
            .into_iter()
            .map(|id| {
                let (state, w, helpers) = (state.clone(), w.clone(), self.helpers.clone());
                tokio::spawn(async move {
                    // A failure here is the store's or the index's (a helper that cannot read
                    // the file is not one): tried again a few times, 1, 2, 4 and 8 s apart, so
                    // a busy moment does not leave the file findable by name only.
                    let mut wait = std::time::Duration::from_secs(1);
                    for attempt in 1..=5 {
                        let result = {
                            let Ok(_permit) = helpers.clone().acquire_owned().await else {
                                return;
                            };
                            index_file_text(&state, ws, &w, id).await
                        };
                        match result {
                            Ok(()) => return,
                            Err(e) if attempt < 5 => {
                                tracing::info!(workspace = %ws, file = %id, error = %e.message, attempt, "indexing a file's text failed; trying again");
                                tokio::time::sleep(wait).await;
                                wait *= 2;
                            }
                            Err(e) => {
                                tracing::warn!(workspace = %ws, file = %id, error = %e.message, "indexing a file's text failed; it stays findable by name until the server restarts");
                            }
                        }
                    }
                })
            })
            .collect()
    }

    /// The workspace's index caught up with the end of its change feed (files whose text the
    /// helper reads are scheduled); an error when another process holds it, saying what to do
    /// `instead`.
    async fn current(
        &self,
        state: &AppState,
        ws: WorkspaceId,
        instead: &str,
    ) -> AppResult<Arc<WsIndex>> {
        let w = self.get(state, ws).await?.ok_or_else(|| {
            AppError::internal(format!(
                "the search index is in use by another meshwork process; {instead}"
            ))
        })?;
        let files = catch_up(state, ws, &w, |_| {}).await?;
        self.read_texts_later(state, ws, &w, files);
        Ok(w)
    }

    /// Brings the workspace's index up to the end of its change feed. A no-op when another
    /// process owns the index.
    pub async fn sync(&self, state: &AppState, ws: WorkspaceId) -> AppResult<()> {
        if let Some(w) = self.get(state, ws).await? {
            let files = catch_up(state, ws, &w, |_| {}).await?;
            self.read_texts_later(state, ws, &w, files);
        }
        Ok(())
    }

    /// Like [`Search::sync`], for callers whose write already succeeded: a failure is logged and
    /// left to the next search to retry.
    pub async fn sync_after_write(&self, state: &AppState, ws: WorkspaceId) {
        if let Err(e) = self.sync(state, ws).await {
            tracing::warn!(workspace = %ws, error = %e.message, "indexing after a write failed; the next search retries");
        }
    }

    /// Empties the index and applies the whole feed again; `progress` gets the sequence reached.
    pub async fn rebuild(
        &self,
        state: &AppState,
        ws: WorkspaceId,
        progress: impl Fn(i64),
    ) -> AppResult<u64> {
        let w = self.get(state, ws).await?.ok_or_else(|| {
            AppError::new(
                ErrorCode::Internal,
                "the search index is in use by another meshwork process (a running server); stop it first",
            )
        })?;
        let w2 = w.clone();
        tokio::task::spawn_blocking(move || w2.index.clear())
            .await
            .map_err(join_err)?
            .map_err(search_err)?;
        let files = catch_up(state, ws, &w, progress).await?;
        // A rebuild (`meshwork reindex`) ends when every file's text is in.
        for h in self.read_texts_later(state, ws, &w, files) {
            let _ = h.await;
        }
        Ok(w.index.len())
    }

    /// Closes and removes the index of a deleted workspace.
    pub async fn forget(&self, ws: WorkspaceId) {
        self.open.lock().await.remove(&ws);
        let _ = std::fs::remove_dir_all(self.dir(ws));
    }

    /// The principals `actor` searches as in `ws` (DESIGN.md decision 5): CRM records when the
    /// role reads the CRM; for a person, `everyone` and the source identities joined to them by
    /// their verified email, with every group containing those, transitively. API keys are not
    /// people: they see CRM records only.
    pub async fn access(
        &self,
        state: &AppState,
        ws: WorkspaceId,
        actor: &Actor,
        role: Role,
    ) -> AppResult<Access> {
        let mut start = Vec::new();
        if role.allows(Permission::CrmRead) {
            start.push(CRM.to_string());
        }
        if let Actor::User { id, .. } = actor {
            start.push(EVERYONE.to_string());
            let user = state
                .store
                .user(*id)
                .await?
                .ok_or_else(|| AppError::internal("a signed-in user without a row"))?;
            if user.email_verified {
                let email = state.open_account_str(*id, "email", &user.email_sealed)?;
                let index = source_email_index(state, ws, &email)?;
                start.extend(state.store.principals_by_email(ws, &index).await?);
            }
        }
        let store = state.store.clone();
        let set = principal_closure(start, |frontier: Vec<String>| {
            let store = store.clone();
            async move { store.groups_containing(ws, &frontier).await }
        })
        .await?;
        Ok(Access::new(set))
    }

    /// Runs the search-box query `q` for `actor`.
    pub async fn search(
        &self,
        state: &AppState,
        ws: WorkspaceId,
        actor: &Actor,
        role: Role,
        q: &str,
        limit: usize,
    ) -> AppResult<SearchResults> {
        let parsed = meshwork_search::query::parse(q).map_err(|e| search_err(e.into()))?;
        state.usage.count(ws, "search");
        let w = self.current(state, ws, "search through the server").await?;
        let access = self.access(state, ws, actor, role).await?;
        let me = match actor {
            Actor::User { id, .. } => Some(id.to_string()),
            Actor::ApiKey { .. } => None,
        };
        let opts = SearchOptions {
            limit,
            me,
            ..Default::default()
        };
        let mut results =
            tokio::task::spawn_blocking(move || w.index.search(&parsed, &access, &opts))
                .await
                .map_err(join_err)?
                .map_err(search_err)?;
        crate::document_marks::apply_to_results(state, ws, actor, &mut results).await?;
        Ok(results)
    }

    /// A page of a CRM list view (see [`meshwork_search::ListQuery`]), after catching up with
    /// the feed so the list shows every write that has returned. Lists are CRM records: a role
    /// that reads the CRM sees them all, and no other role reaches here.
    pub async fn list(
        &self,
        state: &AppState,
        ws: WorkspaceId,
        role: Role,
        query: meshwork_search::ListQuery,
    ) -> AppResult<meshwork_search::ListPage> {
        let w = self.current(state, ws, "list through the server").await?;
        let access = match role.allows(Permission::CrmRead) {
            true => Access::new([CRM.to_string()]),
            false => Access::new(Vec::<String>::new()),
        };
        tokio::task::spawn_blocking(move || w.index.list(&query, &access))
            .await
            .map_err(join_err)?
            .map_err(search_err)
    }

    /// How many CRM records of `kind` there are, as the lists count them (after catching up
    /// with the feed): a workspace's overview.
    pub async fn crm_count(
        &self,
        state: &AppState,
        ws: WorkspaceId,
        role: Role,
        kind: &str,
    ) -> AppResult<u64> {
        let w = self.current(state, ws, "count through the server").await?;
        let access = match role.allows(Permission::CrmRead) {
            true => Access::new([CRM.to_string()]),
            false => Access::new(Vec::<String>::new()),
        };
        let kind = kind.to_string();
        tokio::task::spawn_blocking(move || w.index.count(&kind, &access))
            .await
            .map_err(join_err)?
            .map_err(search_err)
    }

    /// The ids of the CRM records (any type) matching the filter `q`, as a role reading the CRM
    /// sees them: how saved populations are evaluated.
    pub async fn crm_ids(
        &self,
        state: &AppState,
        ws: WorkspaceId,
        q: &str,
    ) -> AppResult<Vec<RecordId>> {
        let parsed = meshwork_search::query::parse(q).map_err(|e| search_err(e.into()))?;
        let w = self
            .current(state, ws, "evaluate populations through the server")
            .await?;
        // Only CRM records (whose ids are UUIDs) carry the CRM principal: their ids come from
        // the index's fast fields, not its document store.
        let access = Access::new([CRM.to_string()]);
        let ids = tokio::task::spawn_blocking(move || {
            w.index
                .matching_uuid_ids(&parsed, &access, &SearchOptions::default())
        })
        .await
        .map_err(join_err)?
        .map_err(search_err)?;
        Ok(ids
            .into_iter()
            .map(|bits| RecordId(uuid::Uuid::from_u128(bits)))
            .collect())
    }
}

/// Opens the index in `dir` with its process lock; rebuilds an unreadable one from scratch.
fn open_index(
    dir: &Path,
    key: Arc<meshwork_keyring::DataKey>,
    ws: WorkspaceId,
) -> AppResult<Option<WsIndex>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| AppError::internal(format!("creating {}: {e}", dir.display())))?;
    let lock_path = dir.with_extension("lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| AppError::internal(format!("opening {}: {e}", lock_path.display())))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(AppError::internal(format!(
                "locking {}: {e}",
                lock_path.display()
            )))
        }
    }
    let scope = ws.to_string();
    let index = match SearchIndex::open(dir, key.clone(), &scope) {
        Ok(i) => i,
        Err(e) if e.needs_rebuild() => {
            tracing::warn!(workspace = %ws, error = %e, "the search index cannot be read; rebuilding it from the store");
            std::fs::remove_dir_all(dir)
                .map_err(|e| AppError::internal(format!("removing {}: {e}", dir.display())))?;
            SearchIndex::open(dir, key, &scope).map_err(search_err)?
        }
        Err(e) => return Err(search_err(e)),
    };
    Ok(Some(WsIndex {
        index,
        catch_up: tokio::sync::Mutex::new(None),
        _lock: lock,
    }))
}

/// An indexing task of a catch-up: the sequence it reached.
type Indexing = tokio::task::JoinHandle<meshwork_search::Result<i64>>;

/// Applies the feed after the index's applied sequence, page by page: each page's entities are
/// read in their current state (a deleted one is removed from the index). The next page is read
/// and decrypted while the index takes the previous one, and a long catch-up (after an import,
/// a rebuild) commits every `COMMIT_EVERY` changes rather than after each page; the last page
/// is always committed, with its last sequence number.
async fn catch_up(
    state: &AppState,
    ws: WorkspaceId,
    w: &Arc<WsIndex>,
    progress: impl Fn(i64),
) -> AppResult<Vec<RecordId>> {
    const COMMIT_EVERY: usize = 100_000;
    let mut indexing = w.catch_up.lock().await;
    if let Some(h) = indexing.take() {
        // Left by a catch-up that stopped early; what it added is re-added below (an upsert
        // replaces), and nothing of it is committed unless this catch-up commits.
        let _ = h.await;
    }
    let mut after = w.index.applied_seq();
    let mut uncommitted = 0usize;
    let mut files = Vec::new();
    loop {
        let changes = state.store.changes_since(ws, after, PAGE).await?;
        let ops = match changes.is_empty() {
            true => Vec::new(),
            false => {
                let (ops, pending) = index_ops(state, ws, &changes).await?;
                files.extend(pending);
                ops
            }
        };
        if let Some(h) = indexing.take() {
            let reached = h.await.map_err(join_err)?.map_err(search_err)?;
            progress(reached);
        }
        let Some(last) = changes.last().map(|c| c.seq) else {
            break;
        };
        let done = (changes.len() as i64) < PAGE;
        uncommitted += changes.len();
        let commit = done || uncommitted >= COMMIT_EVERY;
        if commit {
            uncommitted = 0;
        }
        let w2 = w.clone();
        *indexing = Some(tokio::task::spawn_blocking(move || {
            w2.index.add(&ops)?;
            if commit {
                w2.index.commit_at(last)?;
            }
            Ok(last)
        }));
        after = last;
        if done {
            break;
        }
    }
    if let Some(h) = indexing.take() {
        let reached = h.await.map_err(join_err)?.map_err(search_err)?;
        progress(reached);
    }
    if uncommitted > 0 {
        let w2 = w.clone();
        tokio::task::spawn_blocking(move || w2.index.commit_at(after))
            .await
            .map_err(join_err)?
            .map_err(search_err)?;
    }
    Ok(files)
}

/// The index operations for a page of the feed, and the files among them whose text the helper
/// process reads later ([`Search::read_texts_later`]); those are indexed by name for now.
async fn index_ops(
    state: &AppState,
    ws: WorkspaceId,
    changes: &[ChangeRow],
) -> AppResult<(Vec<IndexOp>, Vec<RecordId>)> {
    let mut records: BTreeSet<RecordId> = BTreeSet::new();
    let mut documents: BTreeSet<String> = BTreeSet::new();
    for c in changes {
        if c.entity == "document" {
            documents.insert(c.entity_id.clone());
        } else if Kind::from_str(&c.entity).is_ok() {
            if let Ok(id) = c.entity_id.parse() {
                records.insert(id);
            }
        }
    }
    let mut ops = Vec::new();
    let mut pending = Vec::new();
    if !records.is_empty() {
        let ids: Vec<RecordId> = records.iter().copied().collect();
        let rows = state.store.crm_records(ws, &ids).await?;
        let crm = Crm::new(state, ws)?;
        let mut docs: Vec<(RecordRow, Doc)> = Vec::with_capacity(rows.len());
        for row in rows {
            let doc = crm.open_doc(&row)?;
            docs.push((row, doc));
        }
        let pipelines = pipelines_of(state, &crm, &docs).await?;
        let mut found = BTreeSet::new();
        for (row, doc) in &docs {
            found.insert(row.id);
            let Ok(kind) = Kind::from_str(&row.kind) else {
                continue;
            };
            let mut d = record_doc(row, kind, doc, &pipelines);
            if kind == Kind::File {
                match file_format(doc) {
                    // Office documents and PDFs are read later, outside the catch-up (which
                    // holds the index): a file is findable by name at once, by its words once
                    // read (a file without content yet is then indexed as it is).
                    Some(f) if f.heavy() => {
                        d.text_pending = true;
                        pending.push(row.id);
                    }
                    Some(f) => d.body.push_str(&file_text(&crm, row.id, f).await?),
                    None => {}
                }
            }
            ops.push(IndexOp::Upsert(Box::new(d)));
        }
        for id in records.difference(&found) {
            ops.push(IndexOp::Delete(id.to_string()));
        }
    }
    if !documents.is_empty() {
        let ids: Vec<String> = documents.iter().cloned().collect();
        let rows = state.store.source_documents(ws, &ids).await?;
        let mut found = BTreeSet::new();
        for row in rows {
            found.insert(row.id.clone());
            let d = open_document(state, ws, &row)?;
            ops.push(IndexOp::Upsert(Box::new(IndexDoc {
                id: row.id.clone(),
                kind: DOCUMENT_KIND.into(),
                title: d.title,
                body: d.body,
                acl: d.acl,
                source: Some(d.source),
                url: d.url,
                updated: d.updated_at,
                ..Default::default()
            })));
        }
        for id in documents.difference(&found) {
            ops.push(IndexOp::Delete(id.clone()));
        }
    }
    Ok((ops, pending))
}

/// Reads a file's text with the helper process and indexes the file with it, unless the file
/// changed or went meanwhile (its next catch-up then schedules it again). The helper runs
/// outside the catch-up lock; the index write is ordered with catch-ups by taking it.
async fn index_file_text(
    state: &AppState,
    ws: WorkspaceId,
    w: &Arc<WsIndex>,
    id: RecordId,
) -> AppResult<()> {
    let crm = Crm::new(state, ws)?;
    let Some(row) = state.store.crm_records(ws, &[id]).await?.into_iter().next() else {
        return Ok(());
    };
    let doc = crm.open_doc(&row)?;
    let Some(format) = file_format(&doc) else {
        return Ok(());
    };
    let text = file_text(&crm, id, format).await?;
    let mut indexing = w.catch_up.lock().await;
    if let Some(h) = indexing.take() {
        let _ = h.await;
    }
    let now = state.store.crm_records(ws, &[id]).await?.into_iter().next();
    if now.as_ref().is_none_or(|n| n.version != row.version) {
        return Ok(());
    }
    let mut d = record_doc(&row, Kind::File, &doc, &BTreeMap::new());
    d.body.push_str(&text);
    let w2 = w.clone();
    tokio::task::spawn_blocking(move || {
        w2.index.add(&[IndexOp::Upsert(Box::new(d))])?;
        w2.index.commit_at(w2.index.applied_seq())
    })
    .await
    .map_err(join_err)?
    .map_err(search_err)
}

/// The format of an uploaded file that `meshwork-extract` reads, by its name or content type.
fn file_format(doc: &Doc) -> Option<meshwork_extract::Format> {
    meshwork_extract::Format::detect(&text(doc.get("name")), &text(doc.get("content_type")))
}

/// The pipelines of the deals in `docs` (id → document), from the batch or the store.
async fn pipelines_of(
    state: &AppState,
    crm: &Crm<'_>,
    docs: &[(RecordRow, Doc)],
) -> AppResult<BTreeMap<String, Doc>> {
    let mut out: BTreeMap<String, Doc> = docs
        .iter()
        .filter(|(r, _)| r.kind == "pipeline")
        .map(|(r, d)| (r.id.to_string(), d.clone()))
        .collect();
    let wanted: Vec<RecordId> = docs
        .iter()
        .filter(|(r, _)| r.kind == "deal")
        .filter_map(|(_, d)| d.get("pipeline").and_then(Value::as_str))
        .filter(|p| !out.contains_key(*p))
        .filter_map(|p| p.parse().ok())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !wanted.is_empty() {
        for row in state.store.crm_records(crm.ws, &wanted).await? {
            out.insert(row.id.to_string(), crm.open_doc(&row)?);
        }
    }
    Ok(out)
}

fn text(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Markup removed from rich text before indexing (the index shows escaped snippets, so this is
/// about matching words, not safety).
fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// What the index holds of a CRM record: a title, the rest of its text, emails and phones for
/// their own matching, and the fields filters use.
pub fn record_doc(
    row: &RecordRow,
    kind: Kind,
    doc: &Doc,
    pipelines: &BTreeMap<String, Doc>,
) -> IndexDoc {
    use meshwork_crm::FieldType;
    let title = match kind {
        Kind::Contact => {
            let name = format!(
                "{} {}",
                text(doc.get("first_name")),
                text(doc.get("last_name"))
            );
            let name = name.trim().to_string();
            if name.is_empty() {
                strings(doc.get("emails"))
                    .into_iter()
                    .next()
                    .unwrap_or_default()
            } else {
                name
            }
        }
        Kind::Activity => text(doc.get("title")),
        Kind::Communication => {
            let s = text(doc.get("subject"));
            if s.is_empty() {
                format!("{} {}", text(doc.get("channel")), text(doc.get("from")))
            } else {
                s
            }
        }
        Kind::Note => String::new(),
        Kind::Field => text(doc.get("label")),
        Kind::FormSubmission => "Form submission".to_string(),
        _ => text(doc.get("name")),
    };
    let mut d = IndexDoc {
        id: row.id.to_string(),
        kind: kind.as_str().to_string(),
        title,
        acl: vec![CRM.to_string()],
        updated: row.updated_at,
        owner: doc.get("owner").and_then(Value::as_str).map(str::to_string),
        tags: strings(doc.get("tags")),
        ..Default::default()
    };
    let mut body: Vec<String> = Vec::new();
    for spec in kind.fields() {
        let v = doc.get(spec.name);
        match spec.ty {
            FieldType::Emails => d.emails = strings(v),
            FieldType::Phones => d.phones = strings(v),
            FieldType::Text(_) | FieldType::Choice(_) | FieldType::Date => {
                let t = text(v);
                if !t.is_empty() && t != d.title {
                    body.push(t);
                }
            }
            FieldType::LongText => body.push(strip_tags(&text(v))),
            FieldType::Texts | FieldType::Domains => body.extend(strings(v)),
            FieldType::Amount => {
                if let Some(a) = v.and_then(Value::as_str) {
                    body.push(a.to_string());
                    d.amount = Some(a.to_string());
                }
            }
            FieldType::Currency => {
                d.currency = v.and_then(Value::as_str).map(str::to_string);
                let t = text(v);
                if !t.is_empty() && t != d.title {
                    body.push(t);
                }
            }
            FieldType::Custom | FieldType::Answers => {
                if let Some(Value::Object(m)) = v {
                    for x in m.values() {
                        match x {
                            Value::String(s) => body.push(s.clone()),
                            Value::Array(a) => {
                                body.extend(a.iter().filter_map(Value::as_str).map(str::to_string))
                            }
                            Value::Number(n) => body.push(n.to_string()),
                            _ => {}
                        }
                    }
                }
            }
            FieldType::Stages => {
                if let Some(Value::Array(stages)) = v {
                    body.extend(
                        stages
                            .iter()
                            .filter_map(|s| s.get("name").and_then(Value::as_str))
                            .map(str::to_string),
                    );
                }
            }
            _ => {}
        }
    }
    if kind == Kind::Deal {
        let stage = text(doc.get("stage"));
        let pipeline = text(doc.get("pipeline"));
        d.pipeline.push(pipeline.clone());
        let mut state = "open";
        if let Some(p) = pipelines.get(&pipeline) {
            d.pipeline.push(text(p.get("name")));
            if let Some(Value::Array(stages)) = p.get("stages") {
                if let Some(s) = stages
                    .iter()
                    .find(|s| s.get("id").and_then(Value::as_str) == Some(stage.as_str()))
                {
                    d.stage.push(text(s.get("name")));
                    if s.get("won").and_then(Value::as_bool) == Some(true) {
                        state = "won";
                    } else if s.get("lost").and_then(Value::as_bool) == Some(true) {
                        state = "lost";
                    }
                }
            }
        }
        d.pipeline_id = Some(pipeline.clone());
        d.stage_id = Some(stage.clone());
        d.stage.push(stage);
        d.stage.push(state.to_string());
    }
    d.fields = meshwork_crm::Filter::index_terms(doc);
    d.body = body.join("\n");
    d
}

/// The text of an uploaded file in `format` (up to 1 MiB of it), for full-text search; empty
/// (and logged) when it cannot be read.
async fn file_text(
    crm: &Crm<'_>,
    id: RecordId,
    format: meshwork_extract::Format,
) -> AppResult<String> {
    let Some(sealed) = crm.state.store.crm_blob(crm.ws, id).await? else {
        return Ok(String::new());
    };
    let helper = match (format.needs_sandbox(), &crm.state.config.file_text_helper) {
        (false, _) => None,
        (true, Some(program)) => Some(meshwork_extract::sandbox::Helper::meshwork(program.clone())),
        (true, None) => {
            tracing::info!(workspace = %crm.ws, file = %id, "file content not indexed: no helper process to read it (run the meshwork binary)");
            return Ok(String::new());
        }
    };
    let bytes = crm.open_bytes(id, "content", &sealed)?;
    // Off the async threads: a large spreadsheet takes a while to read, a PDF is read by a
    // helper process that this thread waits for.
    let extracted = tokio::task::spawn_blocking(move || match helper {
        Some(h) => meshwork_extract::sandbox::run(&h, format, &bytes, Default::default()),
        None => meshwork_extract::extract(format, &bytes),
    })
    .await
    .map_err(join_err)?;
    match extracted {
        Ok(t) => Ok(format!("\n{t}")),
        Err(e) => {
            // The file stays findable by its name; its content is not indexed.
            tracing::info!(workspace = %crm.ws, file = %id, error = %e, "file content not indexed");
            Ok(String::new())
        }
    }
}

/// The blind index joining a source identity's email to a Meshwork account's (mm03).
pub fn source_email_index(state: &AppState, ws: WorkspaceId, email: &str) -> AppResult<[u8; 32]> {
    Ok(state
        .workspace_key(ws)?
        .blind_index("source.email", &email.trim().to_lowercase())
        .0)
}

fn hashed(
    state: &AppState,
    ws: WorkspaceId,
    what: &str,
    source: &str,
    id: &str,
) -> AppResult<[u8; 32]> {
    Ok(state
        .workspace_key(ws)?
        .blind_index(what, &format!("{source}\u{0}{id}"))
        .0)
}

/// A source user's principal: a blind index of the source and the user's id in it.
pub fn source_user(state: &AppState, ws: WorkspaceId, source: &str, id: &str) -> AppResult<String> {
    Ok(meshwork_search::user_principal(&hashed(
        state,
        ws,
        "source.user",
        source,
        id,
    )?))
}

/// A source group's principal.
pub fn source_group(
    state: &AppState,
    ws: WorkspaceId,
    source: &str,
    id: &str,
) -> AppResult<String> {
    Ok(meshwork_search::group_principal(&hashed(
        state,
        ws,
        "source.group",
        source,
        id,
    )?))
}

/// A source document's row id: derived from its source and id, so pushing it again replaces it.
pub fn document_id(state: &AppState, ws: WorkspaceId, source: &str, id: &str) -> AppResult<String> {
    let h = hashed(state, ws, "source.document", source, id)?;
    Ok(format!(
        "d{}",
        h[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ))
}

fn document_aad<'a>(scope: &'a str, id: &'a str) -> Aad<'a> {
    Aad {
        scope,
        record: id,
        field: "document",
    }
}

pub fn seal_document(
    state: &AppState,
    ws: WorkspaceId,
    id: &str,
    d: &StoredDocument,
) -> AppResult<Vec<u8>> {
    let scope = ws.to_string();
    let bytes = serde_json::to_vec(d).map_err(|e| AppError::internal(e.to_string()))?;
    Ok(state
        .workspace_key(ws)?
        .seal(document_aad(&scope, id), &bytes))
}

pub fn open_document(
    state: &AppState,
    ws: WorkspaceId,
    row: &SourceDocRow,
) -> AppResult<StoredDocument> {
    let scope = ws.to_string();
    let bytes = state
        .workspace_key(ws)?
        .open(document_aad(&scope, &row.id), &row.data_sealed)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| AppError::internal(format!("document {} holds invalid JSON: {e}", row.id)))
}
