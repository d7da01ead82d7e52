//! Server configuration, layered: documented defaults, then a TOML file, then `MESHWORK_*`
//! environment variables, then command-line flags (applied by the CLI on the result).
//!
//! `DEFAULT_CONFIG` is the commented TOML that `meshwork default-config` prints; a test checks that
//! it parses to exactly `Config::default()`, so the documentation cannot drift from the code.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Empty: SQLite in the data directory. `postgres://…`: PostgreSQL.
    pub database_url: String,
    /// Empty: `<data_dir>/master.key`, created on first run.
    pub master_key_file: String,
    /// Empty: `<data_dir>/keyring`.
    pub keyring_dir: String,
    /// The address people use to reach this server, for links in emails.
    pub public_url: String,
    /// Where security researchers report vulnerabilities (`/.well-known/security.txt`).
    pub security_contact: String,
    /// The operator's privacy notice, linked from the sign-up page (OWASP ASVS 8.3.3); empty:
    /// no link.
    pub privacy_url: String,
    /// PEM files; both set turns on TLS.
    pub tls_cert: String,
    pub tls_key: String,
    /// The ClamAV daemon that scans every attached file before it is stored (OWASP ASVS
    /// 12.4.2): `host:port`, or a Unix socket's absolute path (`/run/clamav/clamd.ctl`). A
    /// file it finds malware in is refused, and so is every file while it does not answer.
    /// Empty: files are not scanned.
    pub clamd: String,
    /// `text` or `json`.
    pub log_format: String,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` header names the
    /// client. Empty: the connection's address is the client's, and the header is ignored.
    pub trusted_proxies: Vec<String>,
    pub auth: AuthConfig,
    pub overlap: OverlapConfig,
    pub smtp: SmtpConfig,
    pub jobs: JobsConfig,
    pub connectors: ConnectorsConfig,
    pub backup: BackupConfig,
    pub retention: RetentionConfig,
    pub quotas: QuotasConfig,
    pub metrics: MetricsConfig,
    /// The program that reads PDF text in a child process (`<program> extract-text`); the CLI
    /// sets its own executable. Not a setting of the file: `None` indexes PDFs by name only.
    #[serde(skip)]
    pub file_text_helper: Option<PathBuf>,
}

/// Storage each workspace may take (OWASP ASVS 12.1.3), so that whoever may sign up cannot fill
/// the server's disk. 0 lifts a limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotasConfig {
    /// Bytes of attached files per workspace, counted as stored (sealed).
    pub workspace_file_bytes: u64,
    /// Attached files per workspace.
    pub workspace_files: u64,
    /// Bytes of import uploads a workspace holds on disk at once: files being imported, and
    /// files uploaded on the import page and not imported yet (each kept a day).
    pub workspace_upload_bytes: u64,
}

impl Default for QuotasConfig {
    fn default() -> Self {
        Self {
            workspace_file_bytes: 10 << 30,
            workspace_files: 100_000,
            workspace_upload_bytes: 4 << 30,
        }
    }
}

/// Partner overlap with workspaces on other Meshwork servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OverlapConfig {
    /// A PEM file of certificates to trust, besides the public roots, when calling partner
    /// servers (a private CA, or a partner's self-signed certificate).
    pub peer_ca_file: String,
    /// Runs a partner server may start against this one per partnership and hour.
    pub peer_runs_per_hour: u32,
    /// Days an invitation to a partner on another server stays valid.
    pub invitation_days: u32,
    /// Whether partner servers may be at loopback, private or link-local addresses (off: an
    /// invitation cannot aim this server at its own network).
    pub allow_private_peers: bool,
    /// Partner server host names (or address literals) allowed at loopback, private or other
    /// special-purpose addresses, when `allow_private_peers` is off: the explicit way to let a
    /// partner on a shared private network in.
    pub private_peers: Vec<String>,
    /// Records whose overlap pseudonyms (what a same-server run compares) are kept in memory
    /// between runs, over all workspaces, about 100 bytes each; 0 keeps none, so every run
    /// reads and opens every record of its populations.
    pub cache_records: usize,
}

impl Default for OverlapConfig {
    fn default() -> Self {
        Self {
            peer_ca_file: String::new(),
            peer_runs_per_hour: 12,
            invitation_days: 7,
            allow_private_peers: false,
            private_peers: Vec::new(),
            cache_records: 1 << 21,
        }
    }
}

/// Outgoing mail over the operator's SMTP server (cl09). With no `host`, mail waits in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// Empty: no mail is sent; it stays queued until a server is configured.
    pub host: String,
    pub port: u16,
    /// `starttls` (upgrade on the submission port), `tls` (implicit TLS, port 465) or `none`
    /// (plain text, refused unless the host is a loopback address).
    pub tls: String,
    /// Empty: no authentication.
    pub username: String,
    /// A file holding the password (its first line). `MESHWORK_SMTP_PASSWORD` works too; the
    /// password is never part of the configuration that is printed or logged.
    pub password_file: String,
    /// The sender: `Meshwork <meshwork@example.com>` or a bare address.
    pub from: String,
    /// A PEM file of certificates to trust, besides the public roots, for the SMTP server.
    pub ca_file: String,
    /// Seconds a connection or a command may take before the attempt counts as a temporary
    /// failure.
    pub timeout_seconds: u32,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 587,
            tls: "starttls".into(),
            username: String::new(),
            password_file: String::new(),
            from: String::new(),
            ca_file: String::new(),
            timeout_seconds: 30,
        }
    }
}

/// Connectors (`docs/connectors.md`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectorsConfig {
    /// Folders the folder connector may read, with everything under them. Empty: no folder
    /// connector can be added. A workspace's admin chooses the folder; only the operator chooses
    /// where folders may be, so no workspace can read the server's own files.
    pub folder_roots: Vec<PathBuf>,
    /// Internal servers connectors may connect to (security finding 19): host names
    /// (`ldap.corp.example`, or `*.corp.example` for every name under it), addresses
    /// (`10.0.0.5`) and ranges (`10.0.0.0/8`). A connector's host at a loopback, private or
    /// other special-purpose address is refused unless listed; link-local and cloud metadata
    /// addresses are refused whatever is listed; public addresses need no listing.
    pub private_hosts: Vec<String>,
}

impl ConnectorsConfig {
    /// `private_hosts` parsed: the names (lower case) and the addresses and ranges.
    pub fn private_host_rules(&self) -> Result<(Vec<String>, Vec<ipnet::IpNet>), ConfigError> {
        let mut names = Vec::new();
        let mut nets = Vec::new();
        for (i, raw) in self.private_hosts.iter().enumerate() {
            let entry = raw.trim().trim_start_matches('[').trim_end_matches(']');
            let bad = |why: &str| {
                ConfigError::Invalid(format!("connectors.private_hosts[{i}] is {raw:?}: {why}"))
            };
            if let Ok(net) = entry.parse::<ipnet::IpNet>() {
                nets.push(net);
            } else if let Ok(ip) = entry.parse::<std::net::IpAddr>() {
                nets.push(ipnet::IpNet::from(ip));
            } else if entry.contains('/') {
                return Err(bad("expected a range such as \"10.0.0.0/8\""));
            } else {
                let name = entry
                    .strip_prefix("*.")
                    .unwrap_or(entry)
                    .trim_end_matches('.');
                let label_ok = |l: &str| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                };
                if name.is_empty() || !name.split('.').all(label_ok) {
                    return Err(bad("expected a host name (ldap.corp.example, *.corp.example), an address or a range"));
                }
                names.push(entry.to_ascii_lowercase());
            }
        }
        Ok((names, nets))
    }
}

/// The durable job runner (DESIGN.md decision 8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Jobs this server runs at once.
    pub concurrency: u32,
    /// How long a claimed job stays this server's without a renewal; a server that dies holds
    /// its jobs this long before another takes them over. Renewed every third of it.
    pub lease_seconds: u32,
    /// How often an idle runner looks for due jobs (new jobs of this server wake it at once).
    pub poll_millis: u32,
    /// The first retry's delay after a temporary failure; each next one doubles, up to
    /// `retry_max_seconds`.
    pub retry_base_seconds: u32,
    pub retry_max_seconds: u32,
    /// Days finished jobs are kept for `meshwork jobs`.
    pub keep_days: u32,
    /// How often the housekeeping job (deleting finished jobs past `keep_days`) runs, once
    /// across all servers sharing the database.
    pub housekeeping_seconds: u32,
    /// When in each period it runs: `HH:MM` UTC (a time of day for the daily default).
    pub housekeeping_at: String,
    /// How often connectors due for a sync are looked for (each connector has its own
    /// interval, 5 minutes by default).
    pub connectors_check_seconds: u32,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            concurrency: 2,
            lease_seconds: 60,
            poll_millis: 1000,
            retry_base_seconds: 30,
            retry_max_seconds: 3600,
            keep_days: 7,
            housekeeping_seconds: 86400,
            housekeeping_at: "03:30".into(),
            connectors_check_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub session_ttl_hours: u32,
    /// A session unused this long ends (its absolute end is `session_ttl_hours`).
    pub session_idle_hours: u32,
    pub login_attempts_per_minute: u32,
    /// Sign-ups allowed per client address (an IPv6 /64) per hour.
    pub signups_per_hour: u32,
    /// Whether anyone may sign up. Off, sign-up is by invitation only: the server's first
    /// account, and addresses with a pending workspace invitation.
    pub open_signup: bool,
    /// How long a verified API key is remembered in memory (0: look it up on every request).
    pub api_key_cache_seconds: u32,
    /// API requests allowed per person (a session) or per API key per minute, in bursts of up
    /// to as many (then 429 `rate_limited`): one runaway script cannot take the whole server.
    pub api_requests_per_minute: u32,
    pub lockout_threshold: u32,
    pub lockout_minutes: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./meshwork-data"),
            listen: "127.0.0.1:8080".parse().expect("valid default address"),
            database_url: String::new(),
            master_key_file: String::new(),
            keyring_dir: String::new(),
            public_url: "http://127.0.0.1:8080".into(),
            security_contact: "mailto:security@example.invalid".into(),
            privacy_url: String::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
            clamd: String::new(),
            log_format: "text".into(),
            trusted_proxies: Vec::new(),
            auth: AuthConfig::default(),
            overlap: OverlapConfig::default(),
            smtp: SmtpConfig::default(),
            jobs: JobsConfig::default(),
            connectors: ConnectorsConfig::default(),
            backup: BackupConfig::default(),
            retention: RetentionConfig::default(),
            quotas: QuotasConfig::default(),
            metrics: MetricsConfig::default(),
            file_text_helper: None,
        }
    }
}

/// Scheduled backups of the database (`docs/backups.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    /// Whether the server takes a backup every day (once across all servers).
    pub enabled: bool,
    /// Empty: `<data_dir>/backups`.
    pub dir: String,
    /// Backups older than this many days are deleted (mm10, mm16).
    pub keep_days: u32,
    /// When the daily backup runs: `HH:MM` UTC.
    pub at: String,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: String::new(),
            keep_days: 7,
            at: "02:30".into(),
        }
    }
}

/// Prometheus metrics (`GET /metrics`, `docs/deploy.md`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// An address of its own serving only `/metrics` (e.g. `127.0.0.1:9464`); empty: none.
    pub listen: String,
    /// A bearer token scrapers present (`Authorization: Bearer …`), at least 24 characters.
    /// Set, `/metrics` is also served on the main listener to holders of it; empty, the main
    /// listener has no `/metrics`.
    pub token: String,
}

impl MetricsConfig {
    /// `listen`, parsed (validation has checked it).
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }
}

/// Deleting what is no longer needed (`docs/privacy.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Accounts nobody signed in to for this many months are deleted (mm13); 0 keeps them.
    pub inactive_months: u32,
    /// Days before that deletion when the account's owner is warned by email.
    pub warn_days: Vec<u32>,
    /// Audit entries (with the client addresses and user agents they hold) are deleted after
    /// this many months of 30 days, by the daily housekeeping; 0 keeps them forever.
    pub audit_months: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            inactive_months: 12,
            warn_days: vec![30, 7, 1],
            audit_months: 24,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_ttl_hours: 24 * 14,
            session_idle_hours: 12,
            login_attempts_per_minute: 10,
            signups_per_hour: 20,
            open_signup: true,
            api_key_cache_seconds: 2,
            api_requests_per_minute: 3000,
            lockout_threshold: 5,
            lockout_minutes: 15,
        }
    }
}

/// The documented defaults, as `meshwork default-config` prints them.
pub const DEFAULT_CONFIG: &str = r#"# Meshwork configuration. Every key is optional; these are the defaults.
# Layers, later wins: these defaults, this file (--config FILE), MESHWORK_* environment
# variables (MESHWORK_DATA_DIR, MESHWORK_AUTH__LOCKOUT_THRESHOLD, …), command-line flags.

# Where the SQLite database, the master key and the keyring live.
data_dir = "./meshwork-data"
# Address to listen on. Loopback by default: expose it deliberately (mm06).
listen = "127.0.0.1:8080"
# Empty: SQLite in data_dir. For several servers on one database: "postgres://user@host/db".
database_url = ""
# Empty: <data_dir>/master.key, created with mode 0600 on first run. Keep a copy apart from
# backups: without it nothing stored can be read.
master_key_file = ""
# Empty: <data_dir>/keyring. The wrapped per-workspace keys; keep it out of database backups.
keyring_dir = ""
# The address people use to reach this server, used in links sent by email.
public_url = "http://127.0.0.1:8080"
# Contact for vulnerability reports, served at /.well-known/security.txt.
security_contact = "mailto:security@example.invalid"
# Your privacy notice (what you collect and why), linked from the sign-up page. Empty: no link.
privacy_url = ""
# PEM certificate chain and private key; set both to serve HTTPS (rustls).
tls_cert = ""
tls_key = ""
# The ClamAV daemon that scans every attached file before it is stored: "127.0.0.1:3310" or a
# Unix socket's path ("/run/clamav/clamd.ctl"). Malware is refused, and every file is refused
# while the daemon does not answer. Set its StreamMaxLength to at least 26M (files are up to
# 25 MiB). Empty: files are not scanned.
clamd = ""
# Log format: "text" or "json". The level comes from MESHWORK_LOG (e.g. "info,meshwork=debug").
log_format = "text"
# Reverse proxies in front of this server (addresses or CIDR ranges, e.g. ["127.0.0.1",
# "10.0.0.0/8"]). A request from one of them is counted (rate limits, audit log) under the
# client address its X-Forwarded-For header names; from anywhere else the header is ignored.
trusted_proxies = []

[auth]
# How long a sign-in lasts.
session_ttl_hours = 336
# A sign-in unused this long ends too (OWASP ASVS level 2 asks for at most 12 hours).
session_idle_hours = 12
# Sign-in attempts allowed per client address per minute (then 429 rate_limited).
login_attempts_per_minute = 10
# Sign-ups allowed per client address per hour (then 429 rate_limited). Each runs argon2id and
# sends a mail, so a burst from one address is refused. IPv6 clients count per /64.
signups_per_hour = 20
# Whether anyone who reaches the server may sign up. Off, sign-up is by invitation only: the
# server's first account, and addresses with a pending workspace invitation.
open_signup = true
# How long a verified API key is remembered in memory, sparing a database look-up per request.
# Revoking a key, or changing its creator's role, takes effect at once on the server that did it;
# other servers sharing a PostgreSQL database notice within this many seconds. 0 turns it off.
api_key_cache_seconds = 2
# API requests allowed per person (signed in) or per API key per minute, refilled steadily and
# in bursts of up to as many; then 429 rate_limited. One runaway script cannot take the server.
api_requests_per_minute = 3000
# Consecutive failed sign-ins that lock an account, and for how long.
lockout_threshold = 5
lockout_minutes = 15

[overlap]
# Partner overlap with workspaces on other Meshwork servers (docs/overlap.md). Partners reach
# this server at public_url, which must then be https://.
# A PEM file of certificates to trust, besides the public roots, when calling partner servers.
peer_ca_file = ""
# Runs a partner server may start against this one, per partnership and hour (against probing).
peer_runs_per_hour = 12
# Days an invitation to a partner on another server stays valid.
invitation_days = 7
# Whether partner servers may be at loopback, private or link-local addresses. Off, an invitation
# cannot aim this server at its own network; turn it on when both servers share a private one.
allow_private_peers = false
# Partner server host names allowed at private addresses when allow_private_peers is off, for
# example ["partner.internal"]: the narrow way to let one partner on a private network in.
private_peers = []
# Records whose overlap pseudonyms (keyed hashes, never identifiers) are kept in memory between
# same-server runs, over all workspaces, about 100 bytes each. A run then reads only the records
# written since the last one. 0 keeps none.
cache_records = 2097152

[smtp]
# Outgoing mail (verification, password resets, invitations, sign-in alerts) through your SMTP
# server. With no host, mail waits in the outbox and the server says so at start-up; verify the
# first account with `meshwork users verify-email EMAIL`.
host = ""
port = 587
# "starttls" (port 587), "tls" (implicit TLS, port 465), or "none" (only to a loopback host).
tls = "starttls"
# Empty: no authentication. The password comes from password_file (its first line) or the
# MESHWORK_SMTP_PASSWORD environment variable, and is never printed or logged.
username = ""
password_file = ""
# The sender, e.g. "Meshwork <meshwork@example.com>". Required when host is set.
from = ""
# A PEM file of certificates to trust, besides the public roots, for the SMTP server.
ca_file = ""
# Seconds a connection or command may take; a timeout is a temporary failure, retried.
timeout_seconds = 30

[jobs]
# Background jobs (mail, imports, housekeeping) this server runs at once.
concurrency = 2
# Seconds a claimed job stays with this server without renewal (renewed every third of it); a
# server that dies keeps its jobs this long before another server takes them over.
lease_seconds = 60
# How often an idle runner looks for due jobs; jobs queued by this server start at once.
poll_millis = 1000
# After a temporary failure a job runs again after retry_base_seconds, doubling up to
# retry_max_seconds, until its attempts are used up (mail: 12).
retry_base_seconds = 30
retry_max_seconds = 3600
# Days finished jobs are kept for `meshwork jobs`.
keep_days = 7
# How often housekeeping (deleting finished jobs past keep_days) runs: once per period across all
# servers sharing the database.
housekeeping_seconds = 86400
# When it runs: HH:MM, UTC (with the daily default, the time of day).
housekeeping_at = "03:30"
# How often connectors due for a sync are looked for (each has its own interval, 5 minutes by
# default, set when it is added).
connectors_check_seconds = 30

[connectors]
# Folders the folder connector may read, with everything under them (absolute paths; in the
# environment, comma-separated: MESHWORK_CONNECTORS__FOLDER_ROOTS=/srv/share,/mnt/docs). Empty:
# no folder connector can be added. A workspace's admin chooses the folder; only you choose
# where folders may be, so no workspace can read this server's own files.
folder_roots = []
# Internal servers connectors may connect to: host names ("ldap.corp.example", or
# "*.corp.example" for every name under it), addresses ("10.0.0.5") and ranges ("10.0.0.0/8").
# A connector whose host is at a loopback, private or other internal address is refused unless
# listed here, so a workspace admin cannot aim this server at your internal network; link-local
# and cloud metadata addresses (169.254.169.254) are refused whatever is listed. Public
# addresses need no listing. In the environment, comma-separated.
private_hosts = []

[backup]
# A backup of the database every day, sealed with a key derived from the master key (so a backup
# alone reveals nothing), once across all servers sharing the database. PostgreSQL backups run
# pg_dump, which must be installed. The keyring is written to a separate file beside each one.
enabled = true
# Empty: <data_dir>/backups. Better: a disk apart from the data.
dir = ""
# Backups older than this many days are deleted, so deleted data leaves them within this window.
keep_days = 7
# When the daily backup runs: HH:MM, UTC.
at = "02:30"

[retention]
# Accounts nobody signed in to for this many months are deleted with everything only they own;
# 0 keeps them forever.
inactive_months = 12
# Days before that deletion when the account's owner is warned by email.
warn_days = [30, 7, 1]
# Audit entries (sign-ins, changes, exports, with the client addresses and user agents they
# hold) are deleted after this many months; 0 keeps them forever.
audit_months = 24

[quotas]
# Storage each workspace may take, so that whoever may sign up cannot fill this server's disk;
# past a limit, 413 quota_exceeded naming it. 0 lifts a limit.
# Bytes of attached files per workspace (10 GiB), counted as stored.
workspace_file_bytes = 10737418240
# Attached files per workspace.
workspace_files = 100000
# Bytes of import uploads a workspace holds on disk at once (4 GiB): files being imported, and
# files uploaded on the import page and not imported yet (each kept a day).
workspace_upload_bytes = 4294967296

[metrics]
# Prometheus metrics (requests, latencies, jobs, search index lag, outbox backlog).
# An address of its own that serves only /metrics, e.g. "127.0.0.1:9464"; empty: none. An
# address other than loopback needs the token.
listen = ""
# A bearer token scrapers present (Authorization: Bearer ...), at least 24 characters; set, the
# main listener serves /metrics too, to holders of it. Prefer MESHWORK_METRICS__TOKEN.
token = ""
"#;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("error reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("error in config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, then `file` (if any), then the `MESHWORK_*` variables of `env`.
    /// Parses the text of a configuration file on top of the defaults (no environment).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let mut value = toml::Value::try_from(Config::default()).expect("config serializes");
        let parse_err = |e: &dyn std::fmt::Display| ConfigError::Parse {
            path: PathBuf::from("<text>"),
            message: e.to_string(),
        };
        let layer: toml::Value = toml::from_str(text).map_err(|e| parse_err(&e))?;
        merge(&mut value, layer);
        value.try_into::<Config>().map_err(|e| parse_err(&e))
    }

    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut value = toml::Value::try_from(Config::default()).expect("config serializes");
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.into(),
                source,
            })?;
            let layer: toml::Value = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.into(),
                message: e.to_string(),
            })?;
            merge(&mut value, layer);
            // Re-parse now so an unknown key is reported against the file, not the env.
            value
                .clone()
                .try_into::<Config>()
                .map_err(|e| ConfigError::Parse {
                    path: path.into(),
                    message: e.to_string(),
                })?;
        }
        for (var, raw) in env {
            let Some(key) = var.strip_prefix("MESHWORK_") else {
                continue;
            };
            if matches!(
                key,
                "LOG" | "MASTER_KEY_FILE_CONTENT" | "SMTP_PASSWORD" | "FAULT"
            ) || key.starts_with("TEST_")
                || key == "CONFIG"
            {
                continue;
            }
            let path: Vec<String> = key.to_lowercase().split("__").map(str::to_string).collect();
            set_path(&mut value, &path, &raw).map_err(|message| ConfigError::Env {
                var: var.clone(),
                message,
            })?;
        }
        let config: Config = value
            .try_into()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// `trusted_proxies` parsed: an address alone is a range of one.
    pub fn trusted_proxy_nets(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.trusted_proxies
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let p = p.trim();
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        ConfigError::Invalid(format!(
                            "trusted_proxies[{i}] is {p:?}: expected an IP address or a CIDR range such as \"10.0.0.0/8\""
                        ))
                    })
            })
            .collect()
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(ConfigError::Invalid(format!(
                "log_format is {:?}, expected \"text\" or \"json\"",
                self.log_format
            )));
        }
        self.trusted_proxy_nets()?;
        self.connectors.private_host_rules()?;
        let url = &self.privacy_url;
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ConfigError::Invalid(format!(
                "privacy_url is {:?}: it must be an http:// or https:// address, or empty",
                self.privacy_url
            )));
        }
        let clamd = self.clamd.trim();
        if !(clamd.is_empty()
            || clamd.starts_with('/')
            || clamd.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
            }))
        {
            return Err(ConfigError::Invalid(format!(
                "clamd is {:?}: give the ClamAV daemon as host:port (127.0.0.1:3310) or a Unix socket's absolute path (/run/clamav/clamd.ctl), or leave it empty",
                self.clamd
            )));
        }
        if self.tls_cert.is_empty() != self.tls_key.is_empty() {
            return Err(ConfigError::Invalid(
                "tls_cert and tls_key must be set together".into(),
            ));
        }
        if !self.database_url.is_empty()
            && !self.database_url.starts_with("postgres://")
            && !self.database_url.starts_with("postgresql://")
            && !self.database_url.starts_with("sqlite:")
        {
            return Err(ConfigError::Invalid(format!(
                "database_url {:?} is not supported: use postgres://… (or leave it empty for SQLite in the data directory)",
                redact_url(&self.database_url)
            )));
        }
        if self.auth.lockout_threshold == 0
            || self.auth.login_attempts_per_minute == 0
            || self.auth.api_requests_per_minute == 0
            || self.auth.signups_per_hour == 0
            || self.auth.session_ttl_hours == 0
            || self.auth.session_idle_hours == 0
        {
            return Err(ConfigError::Invalid(
                "auth settings must be greater than zero".into(),
            ));
        }
        if self.overlap.peer_runs_per_hour == 0 || self.overlap.invitation_days == 0 {
            return Err(ConfigError::Invalid(
                "overlap.peer_runs_per_hour and overlap.invitation_days must be greater than zero"
                    .into(),
            ));
        }
        if !self.smtp.host.is_empty() {
            if !matches!(self.smtp.tls.as_str(), "starttls" | "tls" | "none") {
                return Err(ConfigError::Invalid(format!(
                    "smtp.tls is {:?}, expected \"starttls\", \"tls\" or \"none\"",
                    self.smtp.tls
                )));
            }
            if self.smtp.tls == "none" && !is_loopback_host(&self.smtp.host) {
                return Err(ConfigError::Invalid(format!(
                    "smtp.tls = \"none\" sends mail and passwords in clear text; it is allowed only to a loopback host, not {:?}",
                    self.smtp.host
                )));
            }
            if self.smtp.from.trim().is_empty() {
                return Err(ConfigError::Invalid(
                    "smtp.from is empty: set the sender address mail goes out from".into(),
                ));
            }
            if self.smtp.port == 0 || self.smtp.timeout_seconds == 0 {
                return Err(ConfigError::Invalid(
                    "smtp.port and smtp.timeout_seconds must be greater than zero".into(),
                ));
            }
        }
        if time_of_day_seconds(&self.backup.at).is_none() {
            return Err(ConfigError::Invalid(format!(
                "backup.at is {:?}, expected a time of day as HH:MM (UTC)",
                self.backup.at
            )));
        }
        if self.backup.keep_days == 0 {
            return Err(ConfigError::Invalid(
                "backup.keep_days is 0: keep backups at least a day (set backup.enabled = false to take none)".into(),
            ));
        }
        if !self.metrics.token.is_empty() && self.metrics.token.chars().count() < 24 {
            return Err(ConfigError::Invalid(
                "metrics.token is shorter than 24 characters: use a long random value (openssl rand -hex 24)".into(),
            ));
        }
        if !self.metrics.listen.is_empty() {
            let Ok(addr) = self.metrics.listen.parse::<SocketAddr>() else {
                return Err(ConfigError::Invalid(format!(
                    "metrics.listen is {:?}, expected an address and port such as 127.0.0.1:9464",
                    self.metrics.listen
                )));
            };
            if !addr.ip().is_loopback() && self.metrics.token.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "metrics.listen is {addr}, not a loopback address: set metrics.token so only scrapers holding it read the metrics"
                )));
            }
        }
        if self.retention.audit_months == 1 || self.retention.audit_months > 1200 {
            return Err(ConfigError::Invalid(format!(
                "retention.audit_months is {}: 2 to 1200 (the last 30 days are never deleted), or 0 to keep the audit log forever",
                self.retention.audit_months
            )));
        }
        if self.retention.warn_days.iter().any(|&d| d == 0 || d > 365) {
            return Err(ConfigError::Invalid(format!(
                "retention.warn_days is {:?}: each must be between 1 and 365",
                self.retention.warn_days
            )));
        }
        if time_of_day_seconds(&self.jobs.housekeeping_at).is_none() {
            return Err(ConfigError::Invalid(format!(
                "jobs.housekeeping_at is {:?}, expected a time of day as HH:MM (UTC)",
                self.jobs.housekeeping_at
            )));
        }
        if self.jobs.concurrency == 0
            || self.jobs.lease_seconds < 3
            || self.jobs.poll_millis == 0
            || self.jobs.retry_base_seconds == 0
            || self.jobs.housekeeping_seconds == 0
            || self.jobs.connectors_check_seconds == 0
            || self.jobs.retry_max_seconds < self.jobs.retry_base_seconds
        {
            return Err(ConfigError::Invalid(
                "jobs settings: concurrency, poll_millis, retry_base_seconds, housekeeping_seconds and connectors_check_seconds must be greater than zero, lease_seconds at least 3, retry_max_seconds at least retry_base_seconds".into(),
            ));
        }
        Ok(())
    }

    pub fn master_key_path(&self) -> PathBuf {
        if self.master_key_file.is_empty() {
            self.data_dir.join("master.key")
        } else {
            PathBuf::from(&self.master_key_file)
        }
    }

    pub fn backup_path(&self) -> PathBuf {
        if self.backup.dir.is_empty() {
            self.data_dir.join("backups")
        } else {
            PathBuf::from(&self.backup.dir)
        }
    }

    pub fn keyring_path(&self) -> PathBuf {
        if self.keyring_dir.is_empty() {
            self.data_dir.join("keyring")
        } else {
            PathBuf::from(&self.keyring_dir)
        }
    }
}

/// Seconds after midnight of a `HH:MM` time of day, or `None` when it is not one.
pub fn time_of_day_seconds(text: &str) -> Option<u32> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && text.trim().len() == 5).then_some(h * 3600 + m * 60)
}

/// Whether `host` names this machine's loopback interface.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A database URL with any password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn merge(base: &mut toml::Value, layer: toml::Value) {
    match (base, layer) {
        (toml::Value::Table(b), toml::Value::Table(l)) => {
            for (k, v) in l {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, l) => *b = l,
    }
}

fn set_path(value: &mut toml::Value, path: &[String], raw: &str) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut cur = value;
    for p in parents {
        cur = cur
            .get_mut(p.as_str())
            .filter(|v| v.is_table())
            .ok_or_else(|| format!("unknown setting section {p:?}"))?;
    }
    let table = cur.as_table_mut().ok_or("not a table")?;
    let slot = table
        .get_mut(last.as_str())
        .ok_or_else(|| format!("unknown setting {last:?} (see `meshwork default-config`)"))?;
    *slot = match slot {
        toml::Value::Integer(_) => toml::Value::Integer(
            raw.trim()
                .parse()
                .map_err(|_| format!("{raw:?} is not a whole number"))?,
        ),
        toml::Value::Boolean(_) => toml::Value::Boolean(
            raw.trim()
                .parse()
                .map_err(|_| format!("{raw:?} is not true or false"))?,
        ),
        toml::Value::Table(_) => return Err("is a section, set its keys instead".into()),
        // A list: comma-separated values.
        toml::Value::Array(items) => {
            let numbers = matches!(items.first(), Some(toml::Value::Integer(_)));
            toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| match numbers {
                        true => v
                            .parse()
                            .map(toml::Value::Integer)
                            .map_err(|_| format!("{v:?} is not a whole number")),
                        false => Ok(toml::Value::String(v.to_string())),
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        _ => toml::Value::String(raw.to_string()),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_defaults_are_the_defaults() {
        let parsed: Config = toml::from_str(DEFAULT_CONFIG).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\n[auth]\nlockout_threshold = 7\n",
        )
        .unwrap();
        let env = [
            (
                "MESHWORK_AUTH__LOCKOUT_THRESHOLD".to_string(),
                "9".to_string(),
            ),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let c = Config::load(Some(&file), env).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.auth.lockout_threshold, 9);
        assert_eq!(c.auth.lockout_minutes, 15);
    }

    #[test]
    fn bad_layers_name_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.toml");
        std::fs::write(&file, "listn = \"x\"\n").unwrap();
        let e = Config::load(Some(&file), []).unwrap_err().to_string();
        assert!(e.contains("m.toml") && e.contains("listn"), "{e}");
        let e = Config::load(
            None,
            [("MESHWORK_AUTH__LOCKOUT_MINUTES".into(), "soon".into())],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("MESHWORK_AUTH__LOCKOUT_MINUTES") && e.contains("whole number"),
            "{e}"
        );
        let e = Config::load(
            None,
            [("MESHWORK_DATABASE_URL".into(), "mysql://u:pw@h/db".into())],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not supported") && !e.contains("pw"), "{e}");
    }

    #[test]
    fn metrics_off_loopback_need_a_long_token() {
        let load = |env: &[(&str, &str)]| {
            Config::load(
                None,
                env.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        let c = load(&[("MESHWORK_METRICS__LISTEN", "127.0.0.1:9464")]).unwrap();
        assert_eq!(c.metrics.listen_addr().unwrap().port(), 9464);
        let e = load(&[("MESHWORK_METRICS__LISTEN", "0.0.0.0:9464")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("metrics.listen") && e.contains("metrics.token"),
            "{e}"
        );
        let e = load(&[("MESHWORK_METRICS__TOKEN", "short")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("metrics.token") && e.contains("24"), "{e}");
        let e = load(&[("MESHWORK_METRICS__LISTEN", "localhost")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("metrics.listen") && e.contains("localhost"),
            "{e}"
        );
        load(&[
            ("MESHWORK_METRICS__LISTEN", "0.0.0.0:9464"),
            ("MESHWORK_METRICS__TOKEN", "0123456789abcdef01234567"),
        ])
        .unwrap();
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }
}
