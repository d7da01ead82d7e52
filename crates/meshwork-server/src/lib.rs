//! `meshwork-server`: the one process behind Meshwork's API and pages. [`start`] opens the state
//! (`meshwork_app::open_state`: the keyring, proving the master key before anything is read or
//! written, then the store, SQLite by default or PostgreSQL), starts the job runner, and serves
//! the routes in [`http`] and the pages in [`web`] over plain HTTP or TLS (rustls).
//!
//! Only this crate knows HTTP: it is the edge over `meshwork-app`, whose services every handler
//! calls. It owns the routes, the extractors that authenticate and authorise, the OpenAPI
//! document, TLS, and the mapping of the app's errors to HTTP answers.

pub mod auth;
pub mod client;
pub mod download;
pub mod error;
pub mod http;
pub mod metrics;
pub mod refusals;
pub mod web;

pub use meshwork_app::config;
pub use meshwork_app::{open_store, AppState, Config, DEFAULT_CONFIG};

use anyhow::Context;
use meshwork_app::import;
use std::net::SocketAddr;
use std::time::Duration;

/// A server running in this process.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    pub tls: bool,
    /// `metrics.listen`'s address, when it is set.
    pub metrics_addr: Option<SocketAddr>,
    handle: axum_server::Handle,
    metrics_task: Option<(
        axum_server::Handle,
        tokio::task::JoinHandle<std::io::Result<()>>,
    )>,
    runner: meshwork_app::jobs::Runner,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Graceful shutdown: stop accepting, finish requests in flight (up to 10 s), close the store.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.handle.graceful_shutdown(Some(Duration::from_secs(10)));
        self.task.await.context("server task")??;
        if let Some((handle, task)) = self.metrics_task {
            handle.graceful_shutdown(Some(Duration::from_secs(1)));
            task.await.context("metrics server task")??;
        }
        self.runner.stop(Duration::from_secs(10)).await;
        self.state.store.close().await;
        Ok(())
    }
}

/// Opens everything and starts serving on `config.listen` (port 0 picks a free port).
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let listen = config.listen;
    let tls_files =
        (!config.tls_cert.is_empty()).then(|| (config.tls_cert.clone(), config.tls_key.clone()));
    let peers = meshwork_peer_client::HttpsPeers::shared(&config)?;
    let state = meshwork_app::open_state(config, peers).await?;
    state.plug_connector_http(
        meshwork_connector_http::ConnectorHttp::shared(state.connector_addresses.clone())
            .map_err(anyhow::Error::msg)?,
    );
    // Imports uploaded through the API that a stop or a crash interrupted go on.
    import::background::resume_all(&state)
        .await
        .map_err(|e| anyhow::anyhow!("resuming imports: {e}"))?;
    match &state.mailer {
        Some(m) => tracing::info!(server = %m.describe, "mail goes out through the configured SMTP server"),
        None => tracing::warn!("no SMTP server is configured (smtp.host): mail waits in the outbox until one is; `meshwork users verify-email EMAIL` verifies an account without mail"),
    }
    let runner = meshwork_app::jobs::Runner::start(&state)
        .await
        .map_err(|e| anyhow::anyhow!("starting the job runner: {e}"))?;
    let (router, _, metrics) = http::router(state.clone());
    let metrics_task = match state.config.metrics.listen_addr() {
        Some(at) => {
            let listener = std::net::TcpListener::bind(at)
                .with_context(|| format!("binding {at} (metrics.listen)"))?;
            listener.set_nonblocking(true)?;
            let bound = listener.local_addr()?;
            let handle = axum_server::Handle::new();
            let app = metrics::own_router(state.clone(), metrics.clone()).into_make_service();
            let task = tokio::spawn(
                axum_server::from_tcp(listener)
                    .handle(handle.clone())
                    .serve(app),
            );
            tracing::info!(addr = %bound, "metrics are served at /metrics");
            Some((bound, handle, task))
        }
        None => None,
    };
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
    let (metrics_addr, metrics_task) = match metrics_task {
        Some((a, h, t)) => (Some(a), Some((h, t))),
        None => (None, None),
    };
    Ok(Running {
        addr,
        state,
        tls: tls_files.is_some(),
        metrics_addr,
        handle,
        metrics_task,
        runner,
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
