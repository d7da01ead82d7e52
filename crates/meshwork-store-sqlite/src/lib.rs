//! The SQLite backend: the default store, one file in the data directory.
//!
//! WAL mode (readers never block the writer), a busy timeout, foreign keys on, and two pools: a
//! single-connection writer pool, so write transactions queue in-process instead of failing with
//! `SQLITE_BUSY`, and a reader pool for concurrent reads. Queries come from `meshwork-store-sql`;
//! the schema is this crate's `migrations/`. Reads of many records by id go through
//! [`bulk`]'s plain connections instead of sqlx's worker thread.

mod bulk;
pub mod snapshot;

use meshwork_store::{Backend, StoreError};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A store in one SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    reader: SqlitePool,
    writer: SqlitePool,
    bulk: Arc<bulk::BulkReader>,
}

fn open_error(path: &Path, e: sqlx::Error) -> StoreError {
    let text = e.to_string();
    if text.contains("not a database") || text.contains("malformed") || text.contains("corrupt") {
        StoreError::Corrupt(format!(
            "{} is not a readable SQLite database ({text}); restore it from a backup or move it away to start empty",
            path.display()
        ))
    } else {
        StoreError::Database(
            format!("cannot open SQLite database {}: {text}", path.display()).into(),
        )
    }
}

impl SqliteStore {
    /// Opens (creating if absent) the database at `path` and runs pending migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("temp_store", "memory");
        // Page caches (SQLite's default is 2 MiB): the dedup keys' index is written at random
        // places, and a large import would otherwise re-read its pages from the OS at each
        // batch. They fill only as far as they are used. The writer checkpoints the WAL every
        // 256 MiB rather than every 4 MiB: a page written by many transactions (an import's
        // dedup keys land all over their index) is copied back to the database once per
        // checkpoint, not once per transaction. After a checkpoint the WAL file is cut back
        // to 64 MiB.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(
                options
                    .clone()
                    .pragma("cache_size", "-131072")
                    .pragma("wal_autocheckpoint", "65536")
                    .pragma("journal_size_limit", "67108864")
                    // Deleted rows are overwritten with zeros, not left in free pages until
                    // reused: a deleted workspace or account leaves the file itself (cl14).
                    .pragma("secure_delete", "on"),
            )
            .await
            .map_err(|e| open_error(path, e))?;
        MIGRATOR.run(&writer).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => open_error(path, e),
            other => meshwork_store_sql::migrate_err(&path.display().to_string(), other),
        })?;
        let readers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(2) as u32
            * 2;
        let reader = SqlitePoolOptions::new()
            .max_connections(readers)
            .connect_with(options.read_only(true).pragma("cache_size", "-16384"))
            .await
            .map_err(|e| open_error(path, e))?;
        tracing::info!(path = %path.display(), "opened SQLite store");
        Ok(Self {
            path: path.to_path_buf(),
            reader,
            writer,
            bulk: Arc::new(bulk::BulkReader::new(path.to_path_buf(), readers as usize)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// Reads many records by id on a blocking thread through [`bulk::BulkReader`]; a few ids
    /// (`None`) go through sqlx.
    async fn bulk_crm_records(
        &self,
        ws: meshwork_domain::WorkspaceId,
        ids: &[meshwork_domain::RecordId],
    ) -> Result<Option<Vec<meshwork_store::RecordRow>>, StoreError> {
        if ids.len() < bulk::MIN_IDS {
            return Ok(None);
        }
        self.bulk.read(ws, ids).await.map(Some)
    }
}

meshwork_store_sql::impl_sql_store!(SqliteStore, sqlx::Sqlite, Backend::Sqlite);
