//! A person's own marks on source documents: pinned, and a private note. They live apart from
//! the documents (`document_marks`), which syncs rewrite, so a re-sync never resets them (the
//! issue's "user-side state"); archiving a document keeps them for when it is restored; they go
//! with the document's source when it is disconnected or deleted.
//!
//! A person marks only documents they may open (a document they may not is "not found", as if
//! it did not exist), and sees only their own marks. In search, their pinned documents come first
//! among the documents found, each hit with its note.

use crate::actor::{Actor, InWorkspace};
use crate::error::{AppError, AppResult};
use crate::search::open_document;
use crate::state::{now_millis, AppState};
use meshwork_domain::{ErrorCode, UserId, WorkspaceId};
use meshwork_keyring::Aad;
use meshwork_search::SearchResults;
use meshwork_store::DocumentMarkRow;
use serde::{Deserialize, Serialize};

/// The longest note.
pub const MAX_NOTE: usize = 10_000;

/// A change to a mark: fields left out stay as they are; `note: null` or `""` removes the note.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MarkChange {
    pub pinned: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub note: Option<Option<String>>,
}

/// A field that is present: `null` is `Some(None)`, absent is `None` (by `default`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A person's mark on a document, with the document's title and source.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MarkView {
    pub document: String,
    pub source: String,
    pub title: String,
    pub pinned: bool,
    pub note: Option<String>,
    pub updated_at: i64,
}

/// The person marking. An API key is not a person: it sees no source documents in search, so
/// it has no marks and finds none to mark.
fn person(auth: &impl InWorkspace) -> Option<UserId> {
    match auth.actor() {
        Actor::User { id, .. } => Some(*id),
        Actor::ApiKey { .. } => None,
    }
}

fn aad<'a>(user: &'a str, document: &'a str) -> Aad<'a> {
    Aad {
        scope: user,
        record: document,
        field: "document_note",
    }
}

fn not_found(document: &str) -> AppError {
    AppError::new(
        ErrorCode::SourceItemNotFound,
        format!("no document {document} that you may open"),
    )
}

fn note_of(state: &AppState, row: &DocumentMarkRow) -> AppResult<Option<String>> {
    row.note_sealed
        .as_ref()
        .map(|sealed| {
            let bytes = state
                .workspace_key(row.workspace_id)?
                .open(aad(&row.user_id.to_string(), &row.document_id), sealed)?;
            String::from_utf8(bytes).map_err(AppError::internal)
        })
        .transpose()
}

/// The document, if `auth` may open it: its source and title.
async fn visible(
    state: &AppState,
    auth: &impl InWorkspace,
    document: &str,
) -> AppResult<(String, String)> {
    let ws = auth.workspace();
    let Some(row) = state
        .store
        .source_documents(ws, &[document.to_string()])
        .await?
        .into_iter()
        .next()
    else {
        return Err(not_found(document));
    };
    let doc = open_document(state, ws, &row)?;
    let access = state
        .search
        .access(state, ws, auth.actor(), auth.role())
        .await?;
    if !doc.acl.iter().any(|p| access.contains(p)) {
        return Err(not_found(document));
    }
    Ok((doc.source, doc.title))
}

/// Pins or unpins a document, or writes or removes one's note on it.
pub async fn mark(
    state: &AppState,
    auth: &impl InWorkspace,
    document: &str,
    change: MarkChange,
) -> AppResult<MarkView> {
    let Some(user) = person(auth) else {
        return Err(not_found(document));
    };
    let ws = auth.workspace();
    let (source, title) = visible(state, auth, document).await?;
    let old = state
        .store
        .document_marks(ws, user, Some(&[document.to_string()]))
        .await?
        .into_iter()
        .next();
    let pinned = change
        .pinned
        .unwrap_or_else(|| old.as_ref().is_some_and(|o| o.pinned));
    let note = match change.note {
        None => match &old {
            Some(o) => note_of(state, o)?,
            None => None,
        },
        Some(n) => n.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()),
    };
    if let Some(n) = &note {
        if n.chars().count() > MAX_NOTE {
            return Err(AppError::new(
                ErrorCode::InvalidField,
                format!("field `note`: at most {MAX_NOTE} characters"),
            ));
        }
    }
    let now = now_millis();
    if !pinned && note.is_none() {
        state.store.document_mark_delete(ws, user, document).await?;
    } else {
        let note_sealed = note.as_ref().map(|n| {
            state
                .workspace_key(ws)
                .map(|k| k.seal(aad(&user.to_string(), document), n.as_bytes()))
        });
        state
            .store
            .document_mark_put(&DocumentMarkRow {
                workspace_id: ws,
                user_id: user,
                document_id: document.to_string(),
                source: source.clone(),
                pinned,
                note_sealed: note_sealed.transpose()?,
                updated_at: now,
            })
            .await?;
    }
    Ok(MarkView {
        document: document.to_string(),
        source,
        title,
        pinned,
        note,
        updated_at: now,
    })
}

/// One's marks on documents one may still open, newest first.
pub async fn list(state: &AppState, auth: &impl InWorkspace) -> AppResult<Vec<MarkView>> {
    let Some(user) = person(auth) else {
        return Ok(Vec::new());
    };
    let ws = auth.workspace();
    let marks = state.store.document_marks(ws, user, None).await?;
    let mut out = Vec::with_capacity(marks.len());
    for m in marks {
        // A document gone (archived, or its access changed) is left out until it is back.
        if let Ok((source, title)) = visible(state, auth, &m.document_id).await {
            out.push(MarkView {
                note: note_of(state, &m)?,
                document: m.document_id,
                source,
                title,
                pinned: m.pinned,
                updated_at: m.updated_at,
            });
        }
    }
    Ok(out)
}

/// Puts the searcher's pinned documents first among the documents found, and gives each
/// marked hit its pin and note.
pub async fn apply_to_results(
    state: &AppState,
    ws: WorkspaceId,
    actor: &Actor,
    results: &mut SearchResults,
) -> AppResult<()> {
    let Actor::User { id, .. } = actor else {
        return Ok(());
    };
    let ids: Vec<String> = results
        .hits()
        .filter(|h| h.kind == "document")
        .map(|h| h.id.clone())
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let marks = state.store.document_marks(ws, *id, Some(&ids)).await?;
    if marks.is_empty() {
        return Ok(());
    }
    for group in results.groups.iter_mut().filter(|g| g.kind == "document") {
        for hit in group.hits.iter_mut() {
            if let Some(m) = marks.iter().find(|m| m.document_id == hit.id) {
                hit.pinned = m.pinned;
                hit.note = note_of(state, m)?;
            }
        }
        // Stable: pinned first, each part in its own order.
        group.hits.sort_by_key(|h| !h.pinned);
    }
    Ok(())
}
