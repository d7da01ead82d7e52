//! Connectors: read-only clients of the tools a team already runs (mm04). Each one reads, from
//! its source, the people (with the email that joins them to a Meshwork account, mm03), the
//! groups (which may hold groups), and the documents with exactly who may read them (mm01).
//!
//! This crate owns the clients and nothing else: it never touches the store. The sync service
//! (`meshwork_app::connectors`) drives a connector through the [`Connector`] trait:
//!
//! 1. [`Connector::directory`]: every person and group, read whole (paged where the source
//!    pages), so what disappeared at the source can be swept;
//! 2. [`Connector::list`]: every document's id with a fingerprint that changes whenever its
//!    content *or who may read it* changes; documents whose fingerprint the store already holds
//!    are skipped (incremental), documents missing from the listing are pruned;
//! 3. [`Connector::fetch`]: the changed documents, each with its content and its readers, or an
//!    error of its own that leaves the rest of the sync going.
//!
//! A document whose readers cannot be read is given none ([`Access::nobody`]): it is stored and
//! searchable by nobody (fail closed).

pub mod address;
pub mod carddav;
pub mod folder;
pub mod imap;
pub mod ldap;
pub mod posix_acl;

use serde::{Deserialize, Serialize};

/// One read-only permission a connector asks of its source, shown before connecting (mm04).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Scope {
    pub name: &'static str,
    pub description: &'static str,
}

/// A person in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Stable id in the source (an LDAP `uid`, a user name).
    pub id: String,
    /// Their email in the source: a Meshwork account with this verified email searches as them.
    pub email: Option<String>,
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Member {
    User(String),
    Group(String),
    /// Everyone in the organisation (an IMAP ACL's `anyone`).
    Everyone,
}

/// A group with its direct members (groups may contain groups, even themselves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub members: Vec<Member>,
}

/// Everyone and every group a source knows, read whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    pub principals: Vec<Principal>,
    pub groups: Vec<Group>,
    /// Entries that could not be read (each named), skipped.
    pub problems: Vec<String>,
}

/// Who may read a document in its source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// Anyone in the organisation.
    pub everyone: bool,
    /// Source user ids.
    pub users: Vec<String>,
    /// Source group ids.
    pub groups: Vec<String>,
}

impl Access {
    /// Nobody: a document whose access could not be read.
    pub fn nobody() -> Self {
        Self::default()
    }
}

/// A document's id in a listing, with the fingerprint of its content and access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    /// Changes whenever the document's content or readers change (a hash: never the data).
    pub fingerprint: String,
}

/// Every document of a source, as far as it could be listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub items: Vec<Listed>,
    /// What could not be listed (each named).
    pub problems: Vec<String>,
    /// Whether every part of the source was listed; only a complete listing prunes what is
    /// missing from it (a folder that could not be read this time is not taken as deleted).
    pub complete: bool,
}

/// A document read from its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub id: String,
    pub title: String,
    pub body: String,
    pub url: Option<String>,
    /// Last change in the source (ms since the epoch).
    pub updated_at: i64,
    pub access: Access,
    /// As in the listing, read again with the document.
    pub fingerprint: String,
    /// Something about the document went wrong but it is still stored (its text could not be
    /// read, its readers could not be read): said in the sync history.
    pub warning: Option<String>,
    /// A mail message's addresses (IMAP), for the CRM's timeline.
    pub mail: Option<MailMeta>,
}

/// Who a mail message involves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailMeta {
    /// Its `Message-ID`, without the angle brackets.
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// Sent by the mailbox's owner.
    pub outbound: bool,
}

/// Why a connector, or one item of it, could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// The source cannot be reached (refused, timed out, dropped the connection): worth trying
    /// again later.
    #[error("cannot reach the source: {0}")]
    Unreachable(String),
    /// The source refused the credentials.
    #[error("the source refused the credentials: {0}")]
    Credentials(String),
    /// The settings are wrong (a missing folder, a bad base DN).
    #[error("{0}")]
    Settings(String),
    /// The source answered something that cannot be read.
    #[error("the source's answer cannot be read: {0}")]
    Protocol(String),
}

impl ConnectorError {
    /// Worth another attempt later.
    pub fn temporary(&self) -> bool {
        matches!(self, ConnectorError::Unreachable(_))
    }
}

pub type Result<T> = std::result::Result<T, ConnectorError>;

/// One document that could not be read, named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    pub id: String,
    pub error: String,
}

/// How a connector reads text out of the files it finds (the app's extractors; PDF in a helper
/// process).
#[derive(Debug, Clone, Default)]
pub struct TextReader {
    /// The helper for formats read outside the process (PDF); without one they are indexed by
    /// name only.
    pub helper: Option<meshwork_extract::sandbox::Helper>,
}

impl TextReader {
    /// The text of a file, or why it could not be read (the file is then found by its name).
    pub fn read(&self, name: &str, bytes: &[u8]) -> std::result::Result<String, String> {
        let Some(format) = meshwork_extract::Format::detect(name, "") else {
            return Err("not a format whose text is read".into());
        };
        let text = if format.needs_sandbox() {
            match &self.helper {
                Some(h) => meshwork_extract::sandbox::run(h, format, bytes, Default::default()),
                None => return Err("no helper process to read it".into()),
            }
        } else {
            meshwork_extract::extract(format, bytes)
        };
        text.map_err(|e| e.to_string())
    }
}

/// One HTTP request of a connector that speaks HTTP (CardDAV).
#[derive(Debug, Clone)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    pub url: &'a url::Url,
    pub headers: Vec<(&'static str, String)>,
    /// Basic authentication: user and password.
    pub basic_auth: Option<(&'a str, &'a str)>,
    pub body: String,
    /// The most bytes of the answer read; a larger answer is an error.
    pub max_answer: usize,
}

/// An HTTP answer: its status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why an HTTP request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// Refused, timed out, dropped, or a TLS failure (the message says which).
    #[error("{0}")]
    Unreachable(String),
    /// The answer was larger than the request's `max_answer`.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    /// The address (or a redirect's) is one the [`address::AddressPolicy`] refuses.
    #[error("{0}")]
    Refused(String),
}

/// Carries connectors' HTTP requests. This crate knows no HTTP client (the application layer
/// above it must not): the server and the CLI plug in `meshwork-connector-http` (reqwest over
/// rustls, certificates checked against the system's roots).
#[async_trait::async_trait]
pub trait HttpTransport: Send + Sync + std::fmt::Debug {
    async fn send(&self, request: HttpRequest<'_>) -> std::result::Result<HttpAnswer, HttpError>;
}

/// What connectors use to read: text extraction and, for HTTP sources, a transport.
#[derive(Debug, Clone)]
pub struct Clients {
    pub text: TextReader,
    /// `None` in a process that plugged in none: HTTP sources then fail, saying so.
    pub http: Option<std::sync::Arc<dyn HttpTransport>>,
    /// Where connectors that open their own connections (LDAP, IMAP) may connect; the HTTP
    /// transport applies the same policy itself.
    pub addresses: address::AddressPolicy,
}

/// A connector: read-only access to one source.
#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    /// What it reads, shown before connecting.
    fn scopes(&self) -> &'static [Scope];
    /// Whether it reads documents (a directory alone does not: its listing is never used to
    /// prune documents pushed to its source by other means).
    fn has_documents(&self) -> bool {
        true
    }
    /// Connects and reads the least that proves the settings work; says what it found.
    async fn check(&self) -> Result<String>;
    /// Everyone and every group (empty for sources without a directory).
    async fn directory(&self) -> Result<Directory>;
    /// Every document's id and fingerprint.
    async fn list(&self) -> Result<Listing>;
    /// The documents with these ids (from the listing), in any order; one that cannot be read
    /// is an [`ItemError`], and one gone since the listing is left out.
    async fn fetch(&self, ids: &[String]) -> Result<Vec<std::result::Result<Document, ItemError>>>;
}

/// A fingerprint: the hex of a SHA-256 over the parts, each length-prefixed.
pub fn fingerprint(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(&h.finalize()[..16])
}

/// The settings fields that hold secrets (at any depth): sealed, never shown again.
pub const SECRETS: &[&str] = &["password"];
/// What a secret reads as when settings are shown, and what keeps it when sent back.
pub const HIDDEN: &str = "********";
/// Text kept per document.
pub const MAX_TEXT: usize = meshwork_extract::MAX_TEXT;

fn redact(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, v) in o.iter_mut() {
                if SECRETS.contains(&k.as_str()) {
                    *v = serde_json::Value::String(HIDDEN.into());
                } else {
                    redact(v);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(redact),
        _ => {}
    }
}

/// Settings sent back by a person, with each secret left out, `null` or [`HIDDEN`] taken from
/// `old` at the same place (an account of a list is matched by its `user`).
///
/// Secrets are kept only while the server and account they are for stay the same (every
/// [`ENDPOINT`] field equal): sent to another host, a stored password would go where its owner
/// never meant it to.
pub fn keep_secrets(new: &mut serde_json::Value, old: &serde_json::Value) {
    let same_endpoint = ENDPOINT.iter().all(|k| new.get(*k) == old.get(*k));
    if same_endpoint {
        keep(new, old);
    }
}

/// The settings that say where secrets go.
pub const ENDPOINT: &[&str] = &[
    "kind", "url", "host", "port", "security", "starttls", "bind_dn", "user",
];

/// The first secret still reading [`HIDDEN`] (not kept: its endpoint changed), by its path.
pub fn hidden_secret(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Object(o) => o.iter().find_map(|(k, v)| {
            if SECRETS.contains(&k.as_str()) && v.as_str() == Some(HIDDEN) {
                Some(k.clone())
            } else {
                hidden_secret(v).map(|inner| format!("{k}.{inner}"))
            }
        }),
        serde_json::Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| hidden_secret(v).map(|inner| format!("[{i}].{inner}"))),
        _ => None,
    }
}

fn keep(new: &mut serde_json::Value, old: &serde_json::Value) {
    match (new, old) {
        (serde_json::Value::Object(n), serde_json::Value::Object(o)) => {
            // A nested server (a folder's LDAP directory) keeps its secret only while it is the
            // same server and account too.
            if !ENDPOINT.iter().all(|k| n.get(*k) == o.get(*k)) {
                return;
            }
            for secret in SECRETS {
                let keep = match n.get(*secret) {
                    None | Some(serde_json::Value::Null) => true,
                    Some(v) => v.as_str() == Some(HIDDEN),
                };
                if keep {
                    if let Some(v) = o.get(*secret) {
                        n.insert(secret.to_string(), v.clone());
                    }
                }
            }
            for (k, v) in n.iter_mut() {
                if let Some(ov) = o.get(k) {
                    keep(v, ov);
                }
            }
        }
        (serde_json::Value::Array(n), serde_json::Value::Array(o)) => {
            for item in n.iter_mut() {
                let user = item.get("user").cloned();
                if let Some(ov) = o
                    .iter()
                    .find(|x| user.is_some() && x.get("user") == user.as_ref())
                {
                    keep(item, ov);
                }
            }
        }
        _ => {}
    }
}

/// The settings of each kind of connector (credentials included; the app seals them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Settings {
    Ldap(ldap::LdapSettings),
    Folder(folder::FolderSettings),
    Imap(imap::ImapSettings),
    Carddav(carddav::CardDavSettings),
}

/// What a connector reads: documents (with people and groups) into search, or contacts into
/// the CRM.
pub enum Source {
    Documents(Box<dyn Connector>),
    Contacts(carddav::CardDav),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Documents(_) => f.write_str("Source::Documents"),
            Source::Contacts(c) => f.debug_tuple("Source::Contacts").field(c).finish(),
        }
    }
}

impl Source {
    /// Connects and reads the least that proves the settings work; says what it found.
    pub async fn check(&self) -> Result<String> {
        match self {
            Source::Documents(c) => c.check().await,
            Source::Contacts(c) => c.check().await,
        }
    }
}

impl Settings {
    pub fn kind(&self) -> &'static str {
        match self {
            Settings::Ldap(_) => "ldap",
            Settings::Folder(_) => "folder",
            Settings::Imap(_) => "imap",
            Settings::Carddav(_) => "carddav",
        }
    }

    /// The scopes a connector of this kind asks for.
    pub fn scopes(&self) -> &'static [Scope] {
        match self {
            Settings::Ldap(_) => ldap::SCOPES,
            Settings::Folder(_) => folder::SCOPES,
            Settings::Imap(_) => imap::SCOPES,
            Settings::Carddav(_) => carddav::SCOPES,
        }
    }

    /// Checks the settings without connecting: each problem names its field.
    pub fn validate(&self) -> std::result::Result<(), String> {
        match self {
            Settings::Ldap(s) => s.validate(),
            Settings::Folder(s) => s.validate(),
            Settings::Imap(s) => s.validate(),
            Settings::Carddav(s) => s.validate(),
        }
    }

    /// The settings as shown back to people: every secret (a [`SECRETS`] field, at any depth)
    /// replaced by [`HIDDEN`].
    pub fn redacted(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        redact(&mut v);
        v
    }

    /// The connector these settings describe.
    pub fn source(&self, clients: Clients) -> Source {
        match self {
            Settings::Ldap(s) => {
                Source::Documents(Box::new(ldap::Ldap::new(s.clone(), clients.addresses)))
            }
            Settings::Folder(s) => Source::Documents(Box::new(folder::Folder::new(
                s.clone(),
                clients.text,
                clients.addresses,
            ))),
            Settings::Imap(s) => {
                Source::Documents(Box::new(imap::Imap::new(s.clone(), clients.addresses)))
            }
            Settings::Carddav(s) => {
                Source::Contacts(carddav::CardDav::new(s.clone(), clients.http))
            }
        }
    }
}

/// All kinds and their scopes (for the page that adds a connector).
pub const KINDS: &[(&str, &str, &[Scope])] = &[
    ("ldap", "LDAP directory: people and groups", ldap::SCOPES),
    (
        "folder",
        "Folder: files with their owners, modes and ACLs",
        folder::SCOPES,
    ),
    (
        "imap",
        "IMAP mail: messages, readable as their mailbox's ACL says",
        imap::SCOPES,
    ),
    (
        "carddav",
        "CardDAV address book: cards become CRM contacts",
        carddav::SCOPES,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_nested_servers_password_is_kept_only_for_the_same_server_and_account() {
        let old = json!({"kind": "folder", "path": "/srv", "ldap": {"url": "ldap://a", "bind_dn": "cn=r", "password": "pw"}});
        let mut same = json!({"kind": "folder", "path": "/srv/x", "ldap": {"url": "ldap://a", "bind_dn": "cn=r", "password": HIDDEN}});
        keep_secrets(&mut same, &old);
        assert_eq!(same["ldap"]["password"], "pw");
        for (field, value) in [("url", "ldap://elsewhere"), ("bind_dn", "cn=other")] {
            let mut moved = json!({"kind": "folder", "path": "/srv", "ldap": {"url": "ldap://a", "bind_dn": "cn=r", "password": HIDDEN}});
            moved["ldap"][field] = json!(value);
            keep_secrets(&mut moved, &old);
            assert_eq!(moved["ldap"]["password"], HIDDEN, "{field}");
            assert_eq!(hidden_secret(&moved).as_deref(), Some("ldap.password"));
        }
    }
}
