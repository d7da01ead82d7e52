//! Reads of many CRM records by id through plain SQLite connections (rusqlite), beside sqlx.
//!
//! sqlx's SQLite driver runs each statement on a worker thread and hands every row over a
//! channel to the async side, copying each of its values first: for a read of a million records
//! (a two-server overlap run, a cold same-server run, an export) that costs about three times what
//! SQLite itself spends finding the rows. This reader runs the same statement on a blocking
//! thread and decodes the rows where SQLite produces them. It opens the database read-only (the
//! file is in WAL mode, set by the writer, so it never blocks writes), keeps a few connections
//! for reuse, and lets at most as many reads run at once as the sqlx reader pool has
//! connections. Reads of a few ids stay on sqlx: a thread hop costs more than it saves there.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshwork_domain::{RecordId, WorkspaceId};
use meshwork_store::{RecordRow, Result, StoreError};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

/// Ids per statement (SQLite's limit on parameters is far above it).
const CHUNK: usize = 500;
/// Connections kept for reuse; up to the limit on concurrent reads may be open at once.
const IDLE_MAX: usize = 4;
/// Fewer ids than this are read through sqlx.
pub(crate) const MIN_IDS: usize = 64;

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(Box::new(e))
}

#[derive(Debug)]
pub(crate) struct BulkReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// One permit per read that may run at once (and so per connection that may be open).
    slots: Arc<Semaphore>,
}

impl BulkReader {
    pub(crate) fn new(path: PathBuf, concurrent: usize) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(concurrent.max(1))),
        }
    }

    /// Reads the records of `ws` among `ids` (see [`BulkReader::crm_records`]) on a blocking
    /// thread, once a slot is free.
    pub(crate) async fn read(
        self: &Arc<Self>,
        ws: WorkspaceId,
        ids: &[RecordId],
    ) -> Result<Vec<RecordRow>> {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| StoreError::Database(format!("bulk reader closed: {e}").into()))?;
        let reader = self.clone();
        let ids = ids.to_vec();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            reader.crm_records(ws, &ids)
        })
        .await
        .map_err(|e| StoreError::Database(format!("bulk read task: {e}").into()))?
    }

    fn connection(&self) -> Result<Connection> {
        if let Some(c) = self.idle.lock().expect("idle connections").pop() {
            return Ok(c);
        }
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db)?;
        c.busy_timeout(Duration::from_secs(10)).map_err(db)?;
        c.pragma_update(None, "cache_size", -16384).map_err(db)?;
        Ok(c)
    }

    /// The records of `ws` among `ids`, in no particular order; ids of other workspaces' records
    /// and of no record are skipped.
    pub(crate) fn crm_records(&self, ws: WorkspaceId, ids: &[RecordId]) -> Result<Vec<RecordRow>> {
        let conn = self.connection()?;
        let rows = read(&conn, ws, ids)?;
        // A connection that failed is dropped (the `?` above) rather than reused.
        let mut idle = self.idle.lock().expect("idle connections");
        if idle.len() < IDLE_MAX {
            idle.push(conn);
        }
        Ok(rows)
    }
}

fn read(conn: &Connection, ws: WorkspaceId, ids: &[RecordId]) -> Result<Vec<RecordRow>> {
    let scope = ws.to_string();
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        // `+workspace_id`: the primary key finds each id, and the workspace is checked on the
        // row (see the shared statement in meshwork-store-sql).
        let sql = format!(
            "SELECT id, kind, data_sealed, occurred_at, created_at, updated_at, version \
             FROM crm_records WHERE +workspace_id = ? AND id IN ({})",
            vec!["?"; chunk.len()].join(", ")
        );
        let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
        let params = std::iter::once(scope.clone()).chain(chunk.iter().map(|id| id.to_string()));
        let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(db)?;
        while let Some(r) = rows.next().map_err(db)? {
            let id = r.get_ref(0).map_err(db)?.as_str().map_err(|e| {
                StoreError::Corrupt(format!("column crm_records.id is not text: {e}"))
            })?;
            out.push(RecordRow {
                id: RecordId(meshwork_store_sql::uuid(id, "crm_records.id")?),
                workspace_id: ws,
                kind: r.get(1).map_err(db)?,
                data_sealed: r.get(2).map_err(db)?,
                occurred_at: r.get(3).map_err(db)?,
                created_at: r.get(4).map_err(db)?,
                updated_at: r.get(5).map_err(db)?,
                version: r.get(6).map_err(db)?,
            });
        }
    }
    Ok(out)
}
