//! The PostgreSQL backend: for deployments where several `meshwork serve` processes share one
//! database. Queries come from `meshwork-store-sql`; the schema is this crate's `migrations/`.
//! Migrations take PostgreSQL's advisory lock (sqlx does this), so servers starting together
//! migrate once.

pub mod snapshot;

use meshwork_store::{Backend, StoreError};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A store in a PostgreSQL database.
#[derive(Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://…`) and runs pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Database(format!("invalid PostgreSQL URL: {e}").into()))?
            .application_name("meshwork");
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| {
                StoreError::Database(format!("cannot connect to PostgreSQL: {e}").into())
            })?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| meshwork_store_sql::migrate_err("the PostgreSQL database", e))?;
        tracing::info!("opened PostgreSQL store");
        Ok(Self { pool })
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    /// No bulk path: sqlx's PostgreSQL driver decodes rows straight off the socket, so the
    /// shared statement is as fast as any.
    async fn bulk_crm_records(
        &self,
        _ws: meshwork_domain::WorkspaceId,
        _ids: &[meshwork_domain::RecordId],
    ) -> Result<Option<Vec<meshwork_store::RecordRow>>, StoreError> {
        Ok(None)
    }
}

meshwork_store_sql::impl_sql_store!(PostgresStore, sqlx::Postgres, Backend::Postgres);
