//! Consistent copies of the database file while the server runs, for backups: SQLite's online
//! backup API (`sqlite3_backup_*`), which copies the pages a few at a time and restarts when a
//! writer changes one, so the copy is a single moment of the database without stopping writes.

use std::path::Path;
use std::time::Duration;

/// Copies the live database at `src` into a new file at `dest` (which must not exist).
/// Blocking: call it from a blocking thread.
pub fn online_backup(src: &Path, dest: &Path) -> Result<(), String> {
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(src, flags)
        .map_err(|e| format!("opening {}: {e}", src.display()))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let mut to = rusqlite::Connection::open(dest)
        .map_err(|e| format!("creating {}: {e}", dest.display()))?;
    {
        let backup = rusqlite::backup::Backup::new(&conn, &mut to)
            .map_err(|e| format!("starting the backup: {e}"))?;
        // 1,024 pages (4 MiB) a step, pausing briefly between steps so writers get their turn.
        backup
            .run_to_completion(1024, Duration::from_millis(5), None)
            .map_err(|e| format!("copying {}: {e}", src.display()))?;
    }
    // The copy is self-contained: no WAL beside it.
    to.pragma_update(None, "journal_mode", "DELETE")
        .map_err(|e| format!("finishing {}: {e}", dest.display()))?;
    Ok(())
}

/// Checks a database file for damage (`PRAGMA integrity_check`) and that it is a Meshwork
/// database (it has the migrations table and a workspaces table). Answers its workspace count
/// and the newest migration applied.
pub fn check(path: &Path) -> Result<(i64, i64), String> {
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(path, flags)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| format!("not a SQLite database: {e}"))?;
    if ok != "ok" {
        return Err(format!("the database is damaged: {ok}"));
    }
    let workspaces: i64 = conn
        .query_row("SELECT count(*) FROM workspaces", [], |r| r.get(0))
        .map_err(|e| format!("not a Meshwork database (no workspaces table): {e}"))?;
    let migration: i64 = conn
        .query_row(
            "SELECT coalesce(max(version), 0) FROM _sqlx_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(|e| format!("not a Meshwork database (no migrations table): {e}"))?;
    Ok((workspaces, migration))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_copy_taken_while_writing_is_whole_and_checks() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("meshwork.db");
        let store = crate::SqliteStore::open(&src).await.unwrap();
        let dest = dir.path().join("copy.db");
        let (src2, dest2) = (src.clone(), dest.clone());
        tokio::task::spawn_blocking(move || online_backup(&src2, &dest2))
            .await
            .unwrap()
            .unwrap();
        drop(store);
        let (workspaces, migration) = check(&dest).unwrap();
        assert_eq!(workspaces, 0);
        assert!(migration > 0);
        std::fs::write(dir.path().join("junk.db"), b"not a database at all, no").unwrap();
        assert!(check(&dir.path().join("junk.db")).is_err());
    }
}
