//! CRM rows and the one write primitive, [`CrmBatch`]: every CRM write (a single edit, a merge, a
//! bulk update, an import batch with its checkpoint) is a list of [`CrmOp`]s applied in one
//! transaction, each record change appending to the change feed. A batch either lands whole or
//! not at all, which is what lets an import resume after a kill without duplicating or losing a
//! row.
//!
//! Records hold their fields in one sealed document (`data_sealed`); the store sees only the
//! record kind, timestamps, a version for optimistic concurrency, blind-index keys for dedup and
//! the links between records.

use crate::Hash32;
use meshwork_domain::{JobId, Millis, RecordId, UserId, WorkspaceId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    pub id: RecordId,
    pub workspace_id: WorkspaceId,
    /// `company`, `contact`, `deal`, `pipeline`, `note`, `activity`, `communication`, `file`,
    /// `form`, `form_submission` or `field`.
    pub kind: String,
    pub data_sealed: Vec<u8>,
    /// When the thing happened (a call's time, an email's date); orders timelines.
    pub occurred_at: Millis,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// Starts at 1 and grows with each update; updates name the version they replace.
    pub version: i64,
}

/// A blind index that must be unique in the workspace, per key kind (`email`, `domain`,
/// `external_id`…): the dedup rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyEntry {
    pub kind: String,
    pub index: Hash32,
}

/// A relation from one record to another. `role` says what the target is to the source:
/// `company` (a contact's or deal's company), `contact` (a deal's contact), `about` (a note,
/// activity, communication, file or submission about a contact, company or deal), `pipeline`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LinkRow {
    pub from: RecordId,
    pub to: RecordId,
    pub role: String,
}

/// A timeline event of a record that is not itself a record (a field change, a merge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub id: uuid::Uuid,
    pub subject: RecordId,
    pub kind: String,
    pub details_sealed: Vec<u8>,
    pub at: Millis,
}

/// One timeline entry: a record about the subject, or an event of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimelineEntry {
    Item(RecordRow),
    Event(EventRow),
}

impl TimelineEntry {
    /// The ordering key, newest first: (time, id).
    pub fn position(&self) -> (Millis, uuid::Uuid) {
        match self {
            TimelineEntry::Item(r) => (r.occurred_at, r.id.as_uuid()),
            TimelineEntry::Event(e) => (e.at, e.id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub id: JobId,
    pub workspace_id: WorkspaceId,
    /// `import`.
    pub kind: String,
    /// `running`, `done`, `failed` or `reverted`.
    pub state: String,
    /// What to do (file, layout, mode…), sealed.
    pub spec_sealed: Vec<u8>,
    /// Counters and per-row errors so far, sealed.
    pub progress_sealed: Vec<u8>,
    /// How far the job got (for an import: the last data row applied).
    pub cursor: i64,
    pub created_by: UserId,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// What an import did to one record, so the import can be reverted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportItemRow {
    pub job: JobId,
    pub record: RecordId,
    /// `created` or `updated`.
    pub action: String,
    /// For `updated`: the record's state before the import (sealed by the caller).
    pub previous_sealed: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub enum CrmOp {
    /// Inserts (`expected_version: None`) or updates a record whose version is still
    /// `expected_version` (else the batch fails with `Conflict("crm_records.version")`).
    /// `keys` replaces the record's dedup keys (a taken key fails the batch with
    /// `Conflict("crm_keys")`); `links: Some` replaces its outgoing links.
    Put {
        record: RecordRow,
        expected_version: Option<i64>,
        keys: Vec<KeyEntry>,
        links: Option<Vec<LinkRow>>,
    },
    /// Deletes a record with its keys, its links both ways, its events and its file content.
    Delete {
        id: RecordId,
        kind: String,
    },
    /// Moves every link to or from `from`, and its events, onto `to` (a merge; `from` is then
    /// deleted by a following `Delete`).
    Repoint {
        from: RecordId,
        to: RecordId,
    },
    Event(EventRow),
    /// Stores (replaces) a file record's content.
    Blob {
        record: RecordId,
        content_sealed: Vec<u8>,
    },
    ImportItem(ImportItemRow),
    /// Advances a job: its state, cursor and progress, in the same transaction as its work.
    Job {
        id: JobId,
        state: String,
        cursor: i64,
        progress_sealed: Vec<u8>,
    },
}

/// Operations applied together, atomically.
#[derive(Debug, Clone, Default)]
pub struct CrmBatch {
    pub ops: Vec<CrmOp>,
}

/// A saved view of a list: its name and query, sealed with the workspace key; shared with the
/// workspace, or seen only by the member who saved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedViewRow {
    pub id: String,
    pub workspace_id: WorkspaceId,
    /// Who saved it.
    pub user_id: UserId,
    pub shared: bool,
    /// The record type of its list (`contact`, `company`, `deal`).
    pub kind: String,
    pub data_sealed: Vec<u8>,
    pub created_at: Millis,
}
