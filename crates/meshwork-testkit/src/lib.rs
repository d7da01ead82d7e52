//! Test support shared by the crates' test suites: one story, two databases, a real SMTP server
//! (`smtp`) and PDFs made on the fly (`pdf`).
//!
//! `TestBackend::Sqlite` gives a store in a fresh temporary directory. `TestBackend::Postgres`
//! creates a uniquely-named database on the server named by `MESHWORK_TEST_POSTGRES_URL` (for
//! example `postgres://postgres@127.0.0.1:5432/test`) and drops it when the test ends, even when
//! it fails. When the variable is unset the PostgreSQL half is skipped with a message, unless
//! `MESHWORK_TEST_POSTGRES_REQUIRED=1` (set by `scripts/test`), which turns the skip into a failure.

pub mod pdf;
pub mod smtp;

use meshwork_store::Store;
use sqlx::Connection;
use std::sync::Arc;

pub const POSTGRES_URL_VAR: &str = "MESHWORK_TEST_POSTGRES_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server to test against, or `None` (after printing why) to skip.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("MESHWORK_TEST_POSTGRES_REQUIRED").as_deref() == Ok("1") {
                panic!("{POSTGRES_URL_VAR} is not set but MESHWORK_TEST_POSTGRES_REQUIRED=1");
            }
            eprintln!("skipping the PostgreSQL half: set {POSTGRES_URL_VAR} to run it");
            None
        }
    }
}

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    pub backend: TestBackend,
    /// The temporary data directory (SQLite keeps its file here; tests put keyrings here too).
    pub dir: tempfile::TempDir,
    /// `Some` for PostgreSQL: the URL of the fresh database.
    pub url: Option<String>,
    admin_url: Option<String>,
    name: Option<String>,
}

impl TestDatabase {
    /// A fresh database, or `None` when the PostgreSQL half is skipped.
    pub async fn new(backend: TestBackend) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            TestBackend::Sqlite => Some(Self {
                backend,
                dir,
                url: None,
                admin_url: None,
                name: None,
            }),
            TestBackend::Postgres => {
                let admin_url = postgres_admin_url()?;
                let name = format!("meshwork_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_URL_VAR}: {e}"));
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let url = replace_db(&admin_url, &name);
                Some(Self {
                    backend,
                    dir,
                    url: Some(url),
                    admin_url: Some(admin_url),
                    name: Some(name),
                })
            }
        }
    }

    /// Opens the store on this database.
    pub async fn open_store(&self) -> Arc<dyn Store> {
        match &self.url {
            None => Arc::new(
                meshwork_store_sqlite::SqliteStore::open(&self.dir.path().join("meshwork.db"))
                    .await
                    .expect("open sqlite"),
            ),
            Some(url) => Arc::new(
                meshwork_store_postgres::PostgresStore::open(url)
                    .await
                    .expect("open postgres"),
            ),
        }
    }

    /// Everything PostgreSQL holds for this database, as `pg_dump` prints it (for canary scans).
    pub fn pg_dump(&self) -> Option<Vec<u8>> {
        let url = self.url.as_ref()?;
        let out = std::process::Command::new("pg_dump")
            .arg("--data-only")
            .arg("--inserts")
            .arg(url)
            .output()
            .expect("run pg_dump (install postgresql-client)");
        assert!(
            out.status.success(),
            "pg_dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Recent pg_dump versions wrap the dump in `\restrict <random key>` lines; drop them so
        // two dumps of the same data compare equal.
        let text = String::from_utf8_lossy(&out.stdout);
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .collect();
        Some(kept.join("\n").into_bytes())
    }
}

fn replace_db(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let cut = base
        .rfind('/')
        .filter(|&i| i > "postgres://".len())
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..cut]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (Some(admin), Some(name)) = (self.admin_url.clone(), self.name.clone()) else {
            return;
        };
        // Drop runs inside the test's runtime; use a thread with its own runtime to block safely.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// Runs an async test body on both backends: `both_backends!(name, |db: TestDatabase| async move {…})`
/// expands to `name_sqlite` and `name_postgres` tests.
#[macro_export]
macro_rules! both_backends {
    ($(#[$m:meta])* $name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(#[$m])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::TestDatabase::new($crate::TestBackend::Sqlite).await.unwrap();
                ($body)(db).await;
            }
            $(#[$m])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = $crate::TestDatabase::new($crate::TestBackend::Postgres).await else { return };
                ($body)(db).await;
            }
        }
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_is_replaced_in_urls() {
        assert_eq!(
            super::replace_db("postgres://u@h:5432/test", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            super::replace_db("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(super::replace_db("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
