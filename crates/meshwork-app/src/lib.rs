//! `meshwork-app`: the application layer. [`AppState`] holds the store, the keyring, the
//! configuration and the in-process state of the services; the modules below are the services
//! every door calls: the HTTP API and pages (`meshwork-server`), the CLI (`meshwork`) and the
//! background jobs. A service takes domain types and answers [`AppError`], a code from
//! `meshwork-domain`'s table and a message.
//!
//! This crate never sees HTTP: no axum, tower, utoipa or HTTP client (the `openapi` feature only
//! adds schema derives for the API's document, and requests to partner servers go through the
//! [`remote::link::PeerTransport`] the binary plugs in). CI checks the dependency tree.

pub mod accounts;
pub mod actor;
pub mod antivirus;
pub mod audit;
pub mod backup;
pub mod connectors;
pub use meshwork_config as config;
pub mod crm;
pub mod document_marks;
pub mod error;
pub mod export;
pub mod faults;
pub mod forms;
pub mod import;
pub mod jobs;
pub mod key_cache;
pub mod mail;
pub mod notices;
pub mod operations;
pub mod overlap;
pub mod partnerships;
pub mod preferences;
pub mod pseudonyms;
pub mod remote;
pub mod retention;
pub mod rights;
pub mod search;
pub mod security_keys;
pub mod sources;
pub mod state;
pub mod support;
pub mod upload;
pub mod usage;
pub mod views;
pub mod workspaces;

pub use config::{Config, DEFAULT_CONFIG};
pub use error::{AppError, AppResult};
pub use state::AppState;

use anyhow::Context;
use meshwork_keyring::{Keyring, MasterKey};
use meshwork_store::Store;
use std::sync::Arc;

/// Opens the keyring and the store named by `config`. A wrong master key fails here, before the
/// database is opened, so nothing is written with it. `peers` carries requests to partner
/// servers (the binary passes `meshwork-peer-client`'s HTTPS transport).
pub async fn open_state(
    config: Config,
    peers: Arc<dyn remote::link::PeerTransport>,
) -> anyhow::Result<AppState> {
    create_private_dir(&config.data_dir)?;
    let key_path = config.master_key_path();
    let create = config.master_key_file.is_empty();
    let (master, created) = MasterKey::load_or_create(&key_path, create)
        .with_context(|| format!("loading the master key from {}", key_path.display()))?;
    if created {
        tracing::warn!(path = %key_path.display(), "created a new master key: back it up apart from the data; without it nothing stored can be read");
    }
    let keyring = Keyring::open(&config.keyring_path(), master)?;
    let store = open_store(&config).await?;
    AppState::new(store, Arc::new(keyring), config, peers)
}

/// The SQLite database file `config` names, or `None` for PostgreSQL.
pub fn sqlite_path(config: &Config) -> Option<std::path::PathBuf> {
    let url = config.database_url.as_str();
    if !(url.is_empty() || url.starts_with("sqlite:")) {
        return None;
    }
    Some(
        match url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            Some(p) if !p.is_empty() => std::path::PathBuf::from(p),
            _ => config.data_dir.join("meshwork.db"),
        },
    )
}

/// Picks the backend from the URL scheme.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.database_url.as_str();
    if let Some(path) = sqlite_path(config) {
        Ok(Arc::new(
            meshwork_store_sqlite::SqliteStore::open(&path).await?,
        ))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = meshwork_store_postgres::PostgresStore::open(url)
            .await
            .with_context(|| format!("opening PostgreSQL at {}", config::redact_url(url)))?;
        Ok(Arc::new(store))
    } else {
        anyhow::bail!(
            "database URL {:?} is not supported: use postgres://… or leave it empty for SQLite",
            config::redact_url(url)
        )
    }
}

/// Creates the data directory, or makes an existing one private (0700): it holds the master
/// key, the keyring and the database.
fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).with_context(
                || format!("making data directory {} private (0700)", dir.display()),
            )?;
            tracing::warn!(path = %dir.display(), old_mode = format!("{:o}", mode & 0o777), "the data directory was readable by others; it is now private (0700)");
        }
    }
    Ok(())
}
