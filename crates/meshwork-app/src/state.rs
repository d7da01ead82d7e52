//! `AppState`: what every service shares (the store, the keyring, the configuration, the rate
//! limiters and the API-key cache, the search indexes, the overlap state and caches, the mailer,
//! the job runner's name and wake-up), and the small sealing helpers that decide which key and
//! associated data each kind of value is sealed with.

use crate::config::Config;
use crate::error::{AppError, AppResult};
use governor::{DefaultKeyedRateLimiter, Quota};
use meshwork_domain::{Millis, UserId, WorkspaceId};
use meshwork_keyring::{Aad, DataKey, Keyring};
use meshwork_store::Store;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub inner: Arc<Inner>,
}

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub keyring: Arc<Keyring>,
    pub config: Config,
    pub login_limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Public form submissions per client address (30 a minute).
    pub form_limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Sign-ups per client address (`auth.signups_per_hour`).
    pub signup_limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// API requests per person or per API key (`auth.api_requests_per_minute`).
    pub caller_limiter: DefaultKeyedRateLimiter<crate::actor::CallerKey>,
    pub key_cache: crate::key_cache::KeyCache,
    /// A precomputed hash verified when an email is unknown, so a sign-in takes as long whether
    /// or not the account exists.
    pub dummy_password_hash: String,
    /// The password pepper (`accounts::hash_password`): a server secret derived from the master
    /// key, never stored.
    pub password_pepper: Arc<meshwork_keyring::SecretKey>,
    /// The search indexes of this process (one per workspace, opened on first use).
    pub search: crate::search::Search,
    /// Overlap with partner servers: the HTTPS client, served runs, run progress.
    pub remote: crate::remote::RemoteState,
    /// One lock per import job running in this process: a job runs once at a time, and a
    /// resumed run waits for the write its stopped run left in flight.
    pub job_locks: crate::import::JobLocks,
    /// What each workspace's records stand for in same-server overlap runs (kinds and identity
    /// pseudonyms), kept between runs and caught up from the change feed.
    pub pseudonyms: crate::pseudonyms::Pseudonyms,
    /// Usage counts not yet written (aggregates only: `usage.rs`).
    pub usage: crate::usage::Usage,
    /// How this process's job runs ended, by kind (`/metrics`).
    pub job_runs: crate::operations::JobRuns,
    /// The operator's SMTP server; `None` keeps mail queued.
    pub mailer: Option<crate::mail::Mailer>,
    /// This process's name as a job runner: its process id and a random part (each claim's lease
    /// holder adds a claim number).
    pub runner_id: String,
    /// Wakes this process's job runner when it queues a job.
    pub jobs_wake: tokio::sync::Notify,
    /// `trusted_proxies`, parsed: whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `connectors.private_hosts`, parsed: where connectors may connect (security finding 19).
    pub connector_addresses: meshwork_connectors::address::AddressPolicy,
    /// The HTTP transport of connectors that speak HTTP (CardDAV), plugged in by the binary
    /// ([`AppState::plug_connector_http`]); without one, such connectors fail saying so.
    connector_http: std::sync::OnceLock<Arc<dyn meshwork_connectors::HttpTransport>>,
    /// The WebAuthn relying party, built from `public_url` on first use (`security_keys`).
    pub(crate) webauthn: std::sync::OnceLock<webauthn_rs::prelude::Webauthn>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("backend", &self.inner.store.backend())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("keyring", &self.keyring)
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl AppState {
    /// `peers` carries requests to partner servers (two-server overlap).
    pub fn new(
        store: Arc<dyn Store>,
        keyring: Arc<Keyring>,
        config: Config,
        peers: Arc<dyn crate::remote::link::PeerTransport>,
    ) -> anyhow::Result<Self> {
        let per_minute =
            NonZeroU32::new(config.auth.login_attempts_per_minute).unwrap_or(NonZeroU32::MIN);
        let password_pepper = Arc::new(keyring.server_key(crate::accounts::PEPPER_PURPOSE));
        let dummy_password_hash = crate::accounts::hash_password_blocking(
            password_pepper.dangerously_expose(),
            "meshwork-dummy-password-for-timing",
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                keyring,
                login_limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_minute)),
                signup_limiter: DefaultKeyedRateLimiter::keyed(Quota::per_hour(
                    NonZeroU32::new(config.auth.signups_per_hour).unwrap_or(NonZeroU32::MIN),
                )),
                caller_limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(
                    NonZeroU32::new(config.auth.api_requests_per_minute).unwrap_or(NonZeroU32::MIN),
                )),
                form_limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(
                    NonZeroU32::new(30).expect("30 is not zero"),
                )),
                key_cache: crate::key_cache::KeyCache::new(std::time::Duration::from_secs(
                    config.auth.api_key_cache_seconds as u64,
                )),
                trusted_proxies: config.trusted_proxy_nets()?,
                connector_addresses: {
                    let (names, nets) = config.connectors.private_host_rules()?;
                    meshwork_connectors::address::AddressPolicy::new(names, nets)
                },
                search: crate::search::Search::new(config.data_dir.join("search")),
                remote: crate::remote::RemoteState::new(&config, peers)?,
                job_locks: Default::default(),
                pseudonyms: Default::default(),
                usage: Default::default(),
                job_runs: Default::default(),
                mailer: crate::mail::Mailer::from_config(&config.smtp)?,
                runner_id: format!(
                    "{}-{}",
                    std::process::id(),
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                ),
                jobs_wake: tokio::sync::Notify::new(),
                connector_http: std::sync::OnceLock::new(),
                webauthn: std::sync::OnceLock::new(),
                config,
                dummy_password_hash,
                password_pepper,
            }),
        })
    }

    /// Plugs in the HTTP transport of connectors (`meshwork-connector-http`); the first one
    /// plugged in stays.
    pub fn plug_connector_http(&self, transport: Arc<dyn meshwork_connectors::HttpTransport>) {
        let _ = self.connector_http.set(transport);
    }

    /// The HTTP transport of connectors, if one was plugged in.
    pub fn connector_http(&self) -> Option<Arc<dyn meshwork_connectors::HttpTransport>> {
        self.connector_http.get().cloned()
    }

    /// Forgets the rate limiters' addresses whose limits have refilled (they would otherwise
    /// keep every address ever seen). The job runner calls it every minute.
    pub fn prune_rate_limiters(&self) {
        for limiter in [
            &self.login_limiter,
            &self.form_limiter,
            &self.signup_limiter,
        ] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        self.caller_limiter.retain_recent();
        self.caller_limiter.shrink_to_fit();
    }

    pub fn account_key(&self) -> AppResult<Arc<DataKey>> {
        Ok(self.keyring.account_key()?)
    }

    /// False for a workspace whose key is gone (a deletion that stopped between destroying the
    /// key and removing the rows): lists skip it instead of failing.
    pub fn workspace_readable(&self, ws: WorkspaceId) -> bool {
        !matches!(
            self.keyring.workspace_key(ws.as_uuid()),
            Err(meshwork_keyring::KeyringError::MissingWorkspaceKey(_))
        )
    }

    pub fn workspace_key(&self, ws: WorkspaceId) -> AppResult<Arc<DataKey>> {
        Ok(self.keyring.workspace_key(ws.as_uuid())?)
    }

    /// Seals an account field of `user` (names, email, profile, TOTP secret, picture).
    pub fn seal_account(&self, user: UserId, field: &str, value: &[u8]) -> AppResult<Vec<u8>> {
        let record = user.to_string();
        Ok(self.account_key()?.seal(
            Aad {
                scope: "accounts",
                record: &record,
                field,
            },
            value,
        ))
    }

    pub fn open_account(&self, user: UserId, field: &str, sealed: &[u8]) -> AppResult<Vec<u8>> {
        let record = user.to_string();
        Ok(self.account_key()?.open(
            Aad {
                scope: "accounts",
                record: &record,
                field,
            },
            sealed,
        )?)
    }

    pub fn open_account_str(&self, user: UserId, field: &str, sealed: &[u8]) -> AppResult<String> {
        String::from_utf8(self.open_account(user, field, sealed)?)
            .map_err(|_| AppError::internal("sealed account text is not UTF-8"))
    }

    /// The blind index of a normalised email, for sign-in look-ups and invitations.
    pub fn email_index(&self, normalized_email: &str) -> AppResult<[u8; 32]> {
        Ok(self.account_key()?.blind_index("email", normalized_email).0)
    }

    /// Seals a workspace field (workspace name, API key names…).
    pub fn seal_workspace(
        &self,
        ws: WorkspaceId,
        record: &str,
        field: &str,
        value: &str,
    ) -> AppResult<Vec<u8>> {
        let scope = ws.to_string();
        Ok(self.workspace_key(ws)?.seal(
            Aad {
                scope: &scope,
                record,
                field,
            },
            value.as_bytes(),
        ))
    }

    pub fn open_workspace(
        &self,
        ws: WorkspaceId,
        record: &str,
        field: &str,
        sealed: &[u8],
    ) -> AppResult<String> {
        let scope = ws.to_string();
        Ok(self.workspace_key(ws)?.open_str(
            Aad {
                scope: &scope,
                record,
                field,
            },
            sealed,
        )?)
    }
}

pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// 32 random bytes as URL-safe base64 (43 characters): session tokens, API keys, link tokens.
pub fn random_token() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(meshwork_keyring::random_bytes::<32>())
}

/// SHA-256 of a high-entropy token. Tokens carry 256 random bits, so a fast unsalted hash is the
/// right tool: nothing can be guessed, and look-up by hash stays a single index probe.
pub fn token_hash(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}
