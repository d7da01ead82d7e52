//! `meshwork-server`: the one process behind Meshwork's API. It opens the keyring (proving the
//! master key before anything is read or written), then the store (SQLite by default, PostgreSQL
//! when given `postgres://…`), and serves the routes in [`http`] over plain HTTP or TLS (rustls).
//!
//! Only this crate knows HTTP. Handlers seal and open values with the keyring; the store below
//! sees only sealed bytes and blind indexes.

pub mod accounts;
pub mod audit;
pub mod auth;
pub use meshwork_config as config;
pub mod crm;
pub mod error;
pub mod export;
pub mod forms;
pub mod http;
pub mod import;
pub mod key_cache;
pub mod mail;
pub mod overlap;
pub mod pseudonyms;
pub mod remote;
pub mod search;
pub mod state;
pub mod upload;

pub use config::{Config, DEFAULT_CONFIG};
pub use state::AppState;

use anyhow::Context;
use meshwork_keyring::{Keyring, MasterKey};
use meshwork_store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Opens the keyring and the store named by `config`. A wrong master key fails here, before the
/// database is opened, so nothing is written with it.
pub async fn open_state(config: Config) -> anyhow::Result<AppState> {
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
    AppState::new(store, Arc::new(keyring), config)
}

/// Picks the backend from the URL scheme.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.database_url.as_str();
    if url.is_empty() || url.starts_with("sqlite:") {
        let path = match url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            Some(p) if !p.is_empty() => std::path::PathBuf::from(p),
            _ => config.data_dir.join("meshwork.db"),
        };
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

fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

/// A server running in this process.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    pub tls: bool,
    handle: axum_server::Handle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Graceful shutdown: stop accepting, finish requests in flight (up to 10 s), close the store.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.handle.graceful_shutdown(Some(Duration::from_secs(10)));
        self.task.await.context("server task")??;
        self.state.store.close().await;
        Ok(())
    }
}

/// Opens everything and starts serving on `config.listen` (port 0 picks a free port).
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let listen = config.listen;
    let tls_files =
        (!config.tls_cert.is_empty()).then(|| (config.tls_cert.clone(), config.tls_key.clone()));
    let state = open_state(config).await?;
    // Imports uploaded through the API that a stop or a crash interrupted go on.
    import::background::resume_all(&state)
        .await
        .map_err(|e| anyhow::anyhow!("resuming imports: {}", e.message))?;
    let (router, _) = http::router(state.clone());
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    let listener =
        std::net::TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let handle = axum_server::Handle::new();
    let task = match &tls_files {
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .with_context(|| format!("loading TLS certificate {cert} and key {key}"))?;
            let server = axum_server::from_tcp_rustls(listener, tls).handle(handle.clone());
            tokio::spawn(server.serve(app))
        }
        None => {
            let server = axum_server::from_tcp(listener).handle(handle.clone());
            tokio::spawn(server.serve(app))
        }
    };
    tracing::info!(%addr, tls = tls_files.is_some(), backend = ?state.store.backend(), "meshwork is listening");
    Ok(Running {
        addr,
        state,
        tls: tls_files.is_some(),
        handle,
        task,
    })
}

/// Runs until Ctrl-C or SIGTERM, then shuts down gracefully.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let running = start(config).await?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.stop().await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
