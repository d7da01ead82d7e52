//! The IMAP mail connector: several people's mailboxes, each message a document readable by
//! exactly who may read its mailbox, by the mailbox's ACL (RFC 4314).
//!
//! Each account is read with its own login. Every mailbox an account owns (its personal
//! namespace; shared ones are read once, from their owner) becomes a group of the source,
//! `mailbox:<owner>/<name>`, whose members are the identifiers its ACL gives the `r` right:
//! people, `anyone`/`authenticated` (everyone), less negative rights (`-name`). A message's
//! readers are its mailbox's group, so an ACL change is a membership change at the next sync,
//! with no message read again. A mailbox whose ACL cannot be read has no members (fail closed).
//!
//! Mailboxes are opened with EXAMINE and messages fetched with `BODY.PEEK[]`: reading changes
//! nothing, not even the `\Seen` flag. A message's id is its owner, mailbox, UIDVALIDITY and UID,
//! so a renumbered mailbox is read again and the old ids pruned.

use crate::address::AddressPolicy;
use crate::{
    fingerprint, Access, ConnectorError, Directory, Document, Group, ItemError, Listed, Listing,
    MailMeta, Member, Principal, Result, Scope,
};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Mutex;

pub const SCOPES: &[Scope] = &[
    Scope {
        name: "mail:read",
        description: "Open each account's mailboxes read-only (EXAMINE) and read its messages without marking them seen",
    },
    Scope {
        name: "acl:read",
        description: "Read each mailbox's access control list (GETACL)",
    },
];

fn default_port() -> u16 {
    993
}
fn default_security() -> Security {
    Security::Tls
}
/// Message bytes fetched in one command.
const FETCH_BYTES: u64 = 64 << 20;

fn default_max_message_bytes() -> u64 {
    25 << 20
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// TLS from the start (port 993), the server's certificate checked against the system's
    /// roots.
    Tls,
    /// No encryption: for a server on the same machine or network only.
    None,
}

/// An account to read, with its own password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapAccount {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for ImapAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapAccount")
            .field("user", &self.user)
            .field("password", &"********")
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapSettings {
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default = "default_security")]
    pub security: Security,
    pub accounts: Vec<ImapAccount>,
    /// A login that is not an address gets `@email_domain` as its email.
    #[serde(default)]
    pub email_domain: Option<String>,
    /// Larger messages are found by their subject and addresses only.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: u64,
    /// Also log each message to or from a CRM contact's address on that contact's timeline (a
    /// communication, seen by everyone who may see the contact). Off unless asked for.
    #[serde(default)]
    pub log_to_crm: bool,
}

impl ImapSettings {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.host.trim().is_empty() || self.host.contains(['/', ' ']) {
            return Err(format!("field `host`: {:?} is not a host name", self.host));
        }
        if self.accounts.is_empty() {
            return Err("field `accounts`: at least one account to read".into());
        }
        for (i, a) in self.accounts.iter().enumerate() {
            if a.user.is_empty() || a.user.chars().any(|c| c.is_control() || c == '"') {
                return Err(format!(
                    "field `accounts[{i}].user`: {:?} is not a login",
                    a.user
                ));
            }
        }
        Ok(())
    }

    fn email_of(&self, user: &str) -> Option<String> {
        if user.contains('@') {
            Some(user.to_string())
        } else {
            self.email_domain.as_ref().map(|d| format!("{user}@{d}"))
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}
type Session = async_imap::Session<Box<dyn Io>>;

/// An account's open session and the mailbox it has open (EXAMINE reads a mailbox's state
/// again, a real cost for a large one: it is done once per mailbox, not per batch).
struct Conn {
    s: Session,
    selected: Option<String>,
}

/// A mailbox an account owns.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Mailbox {
    owner: String,
    name: String,
}

impl Mailbox {
    fn group(&self) -> String {
        format!("mailbox:{}/{}", self.owner, self.name)
    }
}

/// The connector. Sessions are kept open between calls of one sync.
pub struct Imap {
    settings: ImapSettings,
    /// Where the server may be.
    addresses: AddressPolicy,
    sessions: Mutex<BTreeMap<String, Conn>>,
    /// Each listed message's mailbox and UID, from the listing.
    listed: Mutex<BTreeMap<String, (Mailbox, u32)>>,
}

impl std::fmt::Debug for Imap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imap")
            .field("host", &self.settings.host)
            .finish_non_exhaustive()
    }
}

fn err(host: &str, e: async_imap::error::Error) -> ConnectorError {
    use async_imap::error::Error as E;
    match e {
        E::Io(e) => ConnectorError::Unreachable(format!("{host}: {e}")),
        E::ConnectionLost => {
            ConnectorError::Unreachable(format!("{host}: the server closed the connection"))
        }
        E::No(m) => ConnectorError::Protocol(format!("{host} refused: {m}")),
        E::Bad(m) => ConnectorError::Protocol(format!("{host} did not understand: {m}")),
        other => ConnectorError::Protocol(format!("{host}: {other}")),
    }
}

/// An IMAP quoted string.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Imap {
    pub fn new(settings: ImapSettings, addresses: AddressPolicy) -> Self {
        Self {
            settings,
            addresses,
            sessions: Mutex::new(BTreeMap::new()),
            listed: Mutex::new(BTreeMap::new()),
        }
    }

    async fn connect(&self, account: &ImapAccount) -> Result<Session> {
        let s = &self.settings;
        let host = s.host.as_str();
        let tcp = self
            .addresses
            .connect(host, s.port, Duration::from_secs(10))
            .await?;
        let stream: Box<dyn Io> = match s.security {
            Security::None => Box::new(tcp),
            Security::Tls => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
                let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map_err(|e| ConnectorError::Settings(format!("TLS: {e}")))?
                .with_root_certificates(roots)
                .with_no_client_auth();
                let name = rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| ConnectorError::Settings(format!("field `host`: {e}")))?;
                let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                    .connect(name, tcp)
                    .await
                    .map_err(|e| ConnectorError::Unreachable(format!("{host}: TLS: {e}")))?;
                Box::new(tls)
            }
        };
        let mut client = async_imap::Client::new(stream);
        client
            .read_response()
            .await
            .map_err(|e| ConnectorError::Unreachable(format!("{host}: {e}")))?
            .ok_or_else(|| ConnectorError::Unreachable(format!("{host}: no greeting")))?;
        client
            .login(&account.user, &account.password)
            .await
            .map_err(|(e, _)| match e {
                async_imap::error::Error::No(_) => ConnectorError::Credentials(format!(
                    "{host}: login of {} refused",
                    account.user
                )),
                e => err(host, e),
            })
    }

    /// The account's session, opened when needed.
    async fn session<'a>(
        &self,
        sessions: &'a mut BTreeMap<String, Conn>,
        account: &ImapAccount,
    ) -> Result<&'a mut Conn> {
        if !sessions.contains_key(&account.user) {
            let s = self.connect(account).await?;
            sessions.insert(account.user.clone(), Conn { s, selected: None });
        }
        Ok(sessions.get_mut(&account.user).expect("just inserted"))
    }

    fn account(&self, user: &str) -> Option<&ImapAccount> {
        self.settings.accounts.iter().find(|a| a.user == user)
    }

    /// The mailboxes an account owns (its personal namespace).
    async fn own_mailboxes(&self, account: &ImapAccount) -> Result<Vec<Mailbox>> {
        let host = self.settings.host.clone();
        let mut sessions = self.sessions.lock().await;
        let s = &mut self.session(&mut sessions, account).await?.s;
        let out = async {
            let names: Vec<async_imap::types::Name> = s
                .list(Some(""), Some("*"))
                .await
                .map_err(|e| err(&host, e))?
                .try_collect()
                .await
                .map_err(|e| err(&host, e))?;
            let mut out: Vec<Mailbox> = names
                .iter()
                .filter(|n| {
                    !n.attributes()
                        .iter()
                        .any(|a| matches!(a, async_imap::types::NameAttribute::NoSelect))
                })
                .map(|n| n.name().to_string())
                // Other people's mailboxes shared with this account are read from their owner.
                .filter(|n| !n.starts_with("shared/") && n != "shared")
                .map(|name| Mailbox {
                    owner: account.user.clone(),
                    name,
                })
                .collect();
            out.sort();
            Ok(out)
        }
        .await;
        forget_if_lost(&mut sessions, account, out)
    }

    /// Who may read a mailbox, from its ACL (`None`: it could not be read).
    async fn readers(
        &self,
        account: &ImapAccount,
        mailbox: &str,
    ) -> Result<std::result::Result<Vec<Member>, String>> {
        let host = self.settings.host.clone();
        let known: BTreeSet<String> = self
            .settings
            .accounts
            .iter()
            .map(|a| a.user.clone())
            .collect();
        let owner = account.user.clone();
        let mut sessions = self.sessions.lock().await;
        let s = &mut self.session(&mut sessions, account).await?.s;
        let out = async {
            let tag = s.run_command(format!("GETACL {}", quote(mailbox))).await.map_err(|e| err(&host, e))?;
            let mut entries: Vec<(String, bool)> = Vec::new();
            let mut failed = None;
            loop {
                let Some(resp) = s.read_response().await.map_err(|e| ConnectorError::Unreachable(format!("{host}: {e}")))? else {
                    return Err(ConnectorError::Unreachable(format!("{host}: the server closed the connection")));
                };
                match resp.parsed() {
                    imap_proto::Response::Acl(acl) => {
                        for e in &acl.acls {
                            let read = e.rights.contains(&imap_proto::rfc4314::AclRight::Read);
                            entries.push((e.identifier.to_string(), read));
                        }
                    }
                    imap_proto::Response::Done { tag: t, status, outcome } if *t == tag => {
                        if *status != imap_proto::Status::Ok {
                            failed = Some(outcome.information.as_deref().unwrap_or("refused").to_string());
                        }
                        break;
                    }
                    _ => {}
                }
            }
            if let Some(why) = failed {
                return Ok(Err(format!("mailbox {owner}/{mailbox}: its ACL cannot be read ({why}); nobody can find its messages")));
            }
            Ok(members(&owner, &entries, &known).map_err(|why| {
                format!("mailbox {owner}/{mailbox}: its ACL {why}; nobody can find its messages")
            }))
        }
        .await;
        forget_if_lost(&mut sessions, account, out)
    }
}

/// A session whose connection was lost is dropped, so the next call opens a new one.
fn forget_if_lost<T>(
    sessions: &mut BTreeMap<String, Conn>,
    account: &ImapAccount,
    r: Result<T>,
) -> Result<T> {
    if matches!(r, Err(ConnectorError::Unreachable(_))) {
        sessions.remove(&account.user);
    }
    r
}

/// The members an ACL's `r` right gives: people by login (the owner as `owner`), everyone for
/// `anyone`/`authenticated`; negative rights (`-name`) take it away again (from everyone: then
/// only the known accounts not taken away).
fn members(
    owner: &str,
    entries: &[(String, bool)],
    known: &BTreeSet<String>,
) -> std::result::Result<Vec<Member>, String> {
    // A person by login (`name` or `user=name`); anything else (`$group`, `group=…`, `#global`)
    // names people this connector cannot enumerate.
    let person = |id: &str| -> Option<String> {
        let name = id.strip_prefix("user=").unwrap_or(id);
        let plain = !name.is_empty()
            && !name.starts_with(['$', '!', '#'])
            && !name.contains('=')
            && !matches!(name, "anyone" | "authenticated" | "owner");
        plain.then(|| name.to_string())
    };
    let mut denied = BTreeSet::new();
    let mut everyone_denied = false;
    for (id, read) in entries {
        let Some(neg) = id.strip_prefix('-') else {
            continue;
        };
        if !read {
            continue;
        }
        match neg {
            "anyone" | "authenticated" => everyone_denied = true,
            "owner" => {
                denied.insert(owner.to_string());
            }
            other => match person(other) {
                Some(p) => {
                    denied.insert(p);
                }
                // Read taken from a group: who is in it cannot be known here, so nobody reads
                // (fail closed).
                None => {
                    return Err(format!(
                        "takes the read right from {other:?}, which is not a person"
                    ))
                }
            },
        }
    }
    let mut people = BTreeSet::new();
    let mut everyone = false;
    for (id, read) in entries {
        if !read || id.starts_with('-') {
            continue;
        }
        match id.as_str() {
            "anyone" | "authenticated" => everyone = true,
            "owner" => {
                people.insert(owner.to_string());
            }
            // Groups and global entries grant nothing here (who is in them is not known).
            other => {
                if let Some(p) = person(other) {
                    people.insert(p);
                }
            }
        }
    }
    if everyone_denied {
        return Ok(vec![]);
    }
    let mut out: Vec<Member> = Vec::new();
    if everyone && denied.is_empty() {
        out.push(Member::Everyone);
    } else if everyone {
        people.extend(known.iter().cloned());
    }
    out.extend(
        people
            .into_iter()
            .filter(|p| !denied.contains(p))
            .map(Member::User),
    );
    Ok(out)
}

/// A message's searchable text: its subject, its addresses and text parts (plain text when
/// there is some, HTML without its tags otherwise; attachments left out) cut at `max_text`
/// bytes, and its date (ms); or why it cannot be read.
pub fn read_message(raw: &[u8], max_text: usize) -> std::result::Result<Message, String> {
    let parsed = mailparse::parse_mail(raw).map_err(|e| format!("not a readable message: {e}"))?;
    use mailparse::MailHeaderMap;
    let h = parsed.get_headers();
    let subject = h.get_first_value("Subject").unwrap_or_default();
    let addresses = |name: &str| -> Vec<String> {
        let mut out = Vec::new();
        for header in h.get_all_headers(name) {
            if let Ok(list) = mailparse::addrparse_header(header) {
                for a in list.iter() {
                    match a {
                        mailparse::MailAddr::Single(s) => out.push(s.addr.clone()),
                        mailparse::MailAddr::Group(g) => {
                            out.extend(g.addrs.iter().map(|s| s.addr.clone()))
                        }
                    }
                }
            }
        }
        out.retain(|a| a.contains('@') && a.len() <= 320);
        out
    };
    let mail = MailMeta {
        message_id: h
            .get_first_value("Message-ID")
            .map(|v| {
                v.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
            .filter(|v| !v.is_empty() && v.len() <= 998),
        from: addresses("From").into_iter().next(),
        to: addresses("To"),
        cc: addresses("Cc"),
        outbound: false,
    };
    let mut body = String::new();
    for name in ["From", "To", "Cc"] {
        if let Some(v) = h.get_first_value(name) {
            body.push_str(&format!("{name}: {v}\n"));
        }
    }
    let date = h
        .get_first_value("Date")
        .and_then(|d| mailparse::dateparse(&d).ok())
        .map(|s| s * 1000);
    let mut parts = vec![&parsed];
    let mut texts = Vec::new();
    while let Some(p) = parts.pop() {
        if p.subparts.is_empty() {
            let ct = p.ctype.mimetype.to_ascii_lowercase();
            let attachment =
                p.get_content_disposition().disposition == mailparse::DispositionType::Attachment;
            if !attachment && (ct == "text/plain" || ct == "text/html") {
                if let Ok(t) = p.get_body() {
                    texts.push((ct == "text/plain", t));
                }
            }
        } else {
            parts.extend(p.subparts.iter().rev());
        }
    }
    // Plain text when there is some; HTML with its tags dropped otherwise.
    let plain: Vec<_> = texts.iter().filter(|(p, _)| *p).collect();
    if plain.is_empty() {
        for (_, t) in &texts {
            body.push_str(&strip_tags(t));
            body.push('\n');
        }
    } else {
        for (_, t) in plain {
            body.push_str(t);
            body.push('\n');
        }
    }
    if body.len() > max_text {
        let mut end = max_text;
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        body.truncate(end);
    }
    Ok(Message {
        subject,
        body,
        date,
        mail,
    })
}

/// A message as read: its subject, its text (headers first), its date, and who it involves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub body: String,
    /// From its `Date` header (ms since the epoch).
    pub date: Option<i64>,
    pub mail: MailMeta,
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

fn message_id(m: &Mailbox, uidvalidity: u32, uid: u32) -> String {
    format!("{}/{}/{uidvalidity}/{uid}", m.owner, m.name)
}

#[async_trait::async_trait]
impl crate::Connector for Imap {
    fn scopes(&self) -> &'static [Scope] {
        SCOPES
    }

    async fn check(&self) -> Result<String> {
        let mut boxes = 0;
        for a in &self.settings.accounts {
            boxes += self.own_mailboxes(a).await?.len();
        }
        Ok(format!(
            "{} accounts signed in; {boxes} mailboxes found",
            self.settings.accounts.len()
        ))
    }

    async fn directory(&self) -> Result<Directory> {
        let mut dir = Directory::default();
        for a in &self.settings.accounts {
            dir.principals.push(Principal {
                id: a.user.clone(),
                email: self.settings.email_of(&a.user),
            });
            for m in self.own_mailboxes(a).await? {
                let members = match self.readers(a, &m.name).await? {
                    Ok(members) => members,
                    Err(problem) => {
                        dir.problems.push(problem);
                        vec![]
                    }
                };
                dir.groups.push(Group {
                    id: m.group(),
                    members,
                });
            }
        }
        Ok(dir)
    }

    async fn list(&self) -> Result<Listing> {
        let host = self.settings.host.clone();
        let mut listing = Listing {
            complete: true,
            ..Default::default()
        };
        let mut listed = BTreeMap::new();
        for a in &self.settings.accounts {
            for m in self.own_mailboxes(a).await? {
                let mut sessions = self.sessions.lock().await;
                let Conn { s, selected } = self.session(&mut sessions, a).await?;
                let got = async {
                    *selected = None;
                    let mb = match s.examine(&m.name).await {
                        Ok(mb) => {
                            *selected = Some(m.name.clone());
                            mb
                        }
                        Err(async_imap::error::Error::No(why)) => return Ok(Err(why)),
                        Err(e) => return Err(err(&host, e)),
                    };
                    let uids = s.uid_search("ALL").await.map_err(|e| err(&host, e))?;
                    Ok(Ok((mb.uid_validity.unwrap_or(0), uids)))
                }
                .await;
                let got = forget_if_lost(&mut sessions, a, got)?;
                drop(sessions);
                match got {
                    Ok((validity, uids)) => {
                        let mut uids: Vec<u32> = uids.into_iter().collect();
                        uids.sort_unstable();
                        for uid in uids {
                            let id = message_id(&m, validity, uid);
                            listing.items.push(Listed {
                                fingerprint: fingerprint(&[id.as_bytes()]),
                                id: id.clone(),
                            });
                            listed.insert(id, (m.clone(), uid));
                        }
                    }
                    Err(why) => {
                        listing.complete = false;
                        listing.problems.push(format!(
                            "mailbox {}/{}: cannot be opened ({why})",
                            m.owner, m.name
                        ));
                    }
                }
            }
        }
        *self.listed.lock().await = listed;
        Ok(listing)
    }

    async fn fetch(&self, ids: &[String]) -> Result<Vec<std::result::Result<Document, ItemError>>> {
        let host = self.settings.host.clone();
        let max = self.settings.max_message_bytes;
        let mut by_box: BTreeMap<Mailbox, Vec<(String, u32)>> = BTreeMap::new();
        {
            let listed = self.listed.lock().await;
            for id in ids {
                if let Some((m, uid)) = listed.get(id) {
                    by_box
                        .entry(m.clone())
                        .or_default()
                        .push((id.clone(), *uid));
                }
            }
        }
        let mut out = Vec::new();
        for (m, wanted) in by_box {
            let Some(account) = self.account(&m.owner).cloned() else {
                continue;
            };
            let set: Vec<String> = wanted.iter().map(|(_, u)| u.to_string()).collect();
            let mut sessions = self.sessions.lock().await;
            let Conn { s, selected } = self.session(&mut sessions, &account).await?;
            let fetched = async {
                if selected.as_deref() != Some(m.name.as_str()) {
                    *selected = None;
                    match s.examine(&m.name).await {
                        Ok(_) => *selected = Some(m.name.clone()),
                        // Gone or closed since the listing: each of its messages is an error
                        // of its own (and leaves search), the rest of the sync goes on.
                        Err(async_imap::error::Error::No(why)) => return Ok(Err(why)),
                        Err(e) => return Err(err(&host, e)),
                    }
                }
                let sizes: Vec<async_imap::types::Fetch> = s
                    .uid_fetch(set.join(","), "(UID RFC822.SIZE)")
                    .await
                    .map_err(|e| err(&host, e))?
                    .try_collect()
                    .await
                    .map_err(|e| err(&host, e))?;
                let small: Vec<String> = sizes
                    .iter()
                    .filter(|f| f.size.is_some_and(|n| (n as u64) <= max))
                    .filter_map(|f| f.uid.map(|u| u.to_string()))
                    .collect();
                let mut bodies: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
                // Bodies in pieces of at most FETCH_BYTES (or one message), so a batch of
                // large messages is never held whole.
                let size_of: BTreeMap<String, u64> = sizes
                    .iter()
                    .filter_map(|f| Some((f.uid?.to_string(), f.size? as u64)))
                    .collect();
                let mut pieces: Vec<Vec<String>> = vec![];
                let mut bytes = 0u64;
                for uid in small {
                    let n = size_of.get(&uid).copied().unwrap_or(0);
                    if pieces.is_empty() || bytes + n > FETCH_BYTES {
                        pieces.push(vec![]);
                        bytes = 0;
                    }
                    bytes += n;
                    pieces.last_mut().expect("pushed").push(uid);
                }
                for piece in pieces {
                    let fetches: Vec<async_imap::types::Fetch> = s
                        .uid_fetch(piece.join(","), "(UID BODY.PEEK[])")
                        .await
                        .map_err(|e| err(&host, e))?
                        .try_collect()
                        .await
                        .map_err(|e| err(&host, e))?;
                    for f in fetches {
                        if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                            bodies.insert(uid, body.to_vec());
                        }
                    }
                }
                let sizes: BTreeMap<u32, u32> = sizes
                    .iter()
                    .filter_map(|f| Some((f.uid?, f.size?)))
                    .collect();
                Ok(Ok((bodies, sizes)))
            }
            .await;
            let fetched = forget_if_lost(&mut sessions, &account, fetched)?;
            drop(sessions);
            let (bodies, sizes) = match fetched {
                Ok(f) => f,
                Err(why) => {
                    for (id, _) in wanted {
                        out.push(Err(ItemError {
                            error: format!(
                                "its mailbox {}/{} cannot be opened ({why})",
                                m.owner, m.name
                            ),
                            id,
                        }));
                    }
                    continue;
                }
            };
            for (id, uid) in wanted {
                let fp = fingerprint(&[id.as_bytes()]);
                let access = Access {
                    everyone: false,
                    users: vec![],
                    groups: vec![m.group()],
                };
                match (bodies.get(&uid), sizes.get(&uid)) {
                    (Some(raw), _) => match read_message(raw, crate::MAX_TEXT) {
                        Ok(mut msg) => {
                            let own = self.settings.email_of(&m.owner);
                            msg.mail.outbound = msg.mail.from.as_ref().is_some_and(|f| {
                                own.as_ref().is_some_and(|o| o.eq_ignore_ascii_case(f))
                            });
                            out.push(Ok(Document {
                                title: if msg.subject.trim().is_empty() { "(no subject)".into() } else { msg.subject },
                                id,
                                body: msg.body,
                                url: None,
                                updated_at: msg.date.unwrap_or(0),
                                access,
                                fingerprint: fp,
                                warning: None,
                                mail: Some(msg.mail),
                            }))
                        }
                        Err(e) => out.push(Err(ItemError { id, error: e })),
                    },
                    (None, Some(size)) => out.push(Ok(Document {
                        title: "(message too large to read)".into(),
                        body: String::new(),
                        url: None,
                        updated_at: 0,
                        access,
                        fingerprint: fp,
                        warning: Some(format!("{id}: {size} bytes, over the {max}-byte limit: its text is not indexed")),
                        id,
                        mail: None,
                    })),
                    (None, None) => {} // expunged since the listing
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> BTreeSet<String> {
        ["alice", "bob", "carol"]
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn the_read_right_makes_members_and_negative_rights_take_it_away() {
        let e = |v: &[(&str, bool)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), *b))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            members(
                "alice",
                &e(&[("owner", true), ("bob", true), ("carol", false)]),
                &known()
            ),
            Ok(vec![
                Member::User("alice".into()),
                Member::User("bob".into())
            ])
        );
        assert_eq!(
            members("alice", &e(&[("anyone", true)]), &known()),
            Ok(vec![Member::Everyone])
        );
        // Everyone but bob: only the known accounts, less bob (fail closed for the rest).
        assert_eq!(
            members("alice", &e(&[("anyone", true), ("-bob", true)]), &known()),
            Ok(vec![
                Member::User("alice".into()),
                Member::User("carol".into())
            ])
        );
        assert_eq!(
            members(
                "alice",
                &e(&[
                    ("user=bob", true),
                    ("group=staff", true),
                    ("$interns", true)
                ]),
                &known()
            ),
            Ok(vec![Member::User("bob".into())])
        );
        // Read taken from a group (Dovecot writes `$group`, `group=…`, `#global`): nobody.
        for neg in ["-$interns", "-group=interns", "-#bob"] {
            assert!(
                members("alice", &e(&[("anyone", true), (neg, true)]), &known()).is_err(),
                "{neg}"
            );
        }
        assert_eq!(
            members(
                "alice",
                &e(&[("anyone", true), ("-anyone", true)]),
                &known()
            ),
            Ok(vec![])
        );
    }

    #[test]
    fn a_message_gives_its_subject_addresses_and_plain_text() {
        let raw = b"From: Ann <ann@x.test>\r\nTo: bob@y.test, Team: cy@z.test, dee@z.test;\r\nCc: \"Lee, Eve\" <eve@w.test>\r\nMessage-ID: <m1@x.test>\r\nSubject: =?utf-8?q?Caf=C3=A9?=\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello plain\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>hello html</p>\r\n--b--\r\n";
        let Message {
            subject,
            body,
            date,
            mail,
        } = read_message(raw, 1 << 20).unwrap();
        assert_eq!(subject, "Café");
        assert_eq!(mail.from.as_deref(), Some("ann@x.test"));
        assert_eq!(mail.to, ["bob@y.test", "cy@z.test", "dee@z.test"]);
        assert_eq!(mail.cc, ["eve@w.test"]);
        assert_eq!(mail.message_id.as_deref(), Some("m1@x.test"));
        assert!(
            body.contains("From: Ann <ann@x.test>")
                && body.contains("hello plain")
                && !body.contains("hello html"),
            "{body}"
        );
        assert_eq!(date, Some(1_796_119_200_000));
    }
}
