//! The folder connector: a directory tree's files as documents, readable in search by exactly
//! the accounts that can open them on the machine.
//!
//! Who can open a file is the kernel's answer, worked out for each account: search permission on
//! every directory from `/` down to the file, then read permission on the file, through owners,
//! mode bits and POSIX ACLs ([`crate::posix_acl`]). Accounts and groups come from a `passwd` and
//! a `group` file (the system's by default), so a group change there changes access too. A file
//! every account can read, and anyone else too, is readable by everyone in the workspace.
//!
//! Symbolic links are never followed, so nothing outside the folder is read. Text comes from
//! the app's extractors; a file too large or unreadable is still found by its name.

use crate::address::AddressPolicy;
use crate::posix_acl::{Acl, EXECUTE, READ};
use crate::{
    fingerprint, Access, ConnectorError, Directory, Document, ItemError, Listed, Principal, Result,
    Scope, TextReader,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub const SCOPES: &[Scope] = &[
    Scope {
        name: "files:read",
        description: "Read the files under the folder, their names and their text",
    },
    Scope {
        name: "permissions:read",
        description: "Read each file's and folder's owner, group, mode and POSIX ACL",
    },
    Scope {
        name: "accounts:read",
        description:
            "Read the accounts and groups files (names, ids and group members; never passwords)",
    },
];

fn default_passwd() -> String {
    "/etc/passwd".into()
}
fn default_group() -> String {
    "/etc/group".into()
}
fn default_min_uid() -> u32 {
    1000
}
fn default_max_file_bytes() -> u64 {
    100 << 20
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderSettings {
    /// The folder to read (absolute).
    pub path: String,
    /// Accounts: `name:x:uid:gid:…` lines.
    #[serde(default = "default_passwd")]
    pub passwd_file: String,
    /// Groups: `name:x:gid:member,member` lines.
    #[serde(default = "default_group")]
    pub group_file: String,
    /// Accounts' emails are `name@email_domain` (without it, accounts join nobody in Meshwork).
    #[serde(default)]
    pub email_domain: Option<String>,
    /// Accounts with a lower uid (system accounts) are not people.
    #[serde(default = "default_min_uid")]
    pub min_uid: u32,
    /// Larger files are found by their name only.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Accounts and groups from an LDAP directory (`posixAccount`, `posixGroup`) instead of the
    /// `passwd`/`group` files: for a machine whose logins come from that directory. Emails are
    /// the directory's (`email_domain` for accounts without one).
    #[serde(default)]
    pub ldap: Option<crate::ldap::LdapSettings>,
}

impl FolderSettings {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !self.path.starts_with('/') {
            return Err(format!(
                "field `path`: {:?} is not an absolute path",
                self.path
            ));
        }
        for (field, v) in [
            ("passwd_file", &self.passwd_file),
            ("group_file", &self.group_file),
        ] {
            if !v.starts_with('/') {
                return Err(format!("field `{field}`: {v:?} is not an absolute path"));
            }
        }
        if let Some(l) = &self.ldap {
            l.validate()
                .map_err(|e| e.replacen("field `", "field `ldap.", 1))?;
        }
        if let Some(d) = &self.email_domain {
            let ok = !d.is_empty()
                && d.len() <= 253
                && d.split('.').all(|l| {
                    !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if !ok {
                return Err(format!("field `email_domain`: {d:?} is not a domain name"));
            }
        }
        Ok(())
    }
}

/// An account of the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Account {
    name: String,
    uid: u32,
    gids: Vec<u32>,
    /// From the directory, when accounts come from one.
    email: Option<String>,
}

/// Accounts (people only: `min_uid` and up, not `nobody`) with every group they are in: from
/// the LDAP directory when the settings name one, else from the files.
async fn load_accounts(s: &FolderSettings, addresses: &AddressPolicy) -> Result<Vec<Account>> {
    match &s.ldap {
        Some(l) => Ok(crate::ldap::Ldap::new(l.clone(), addresses.clone())
            .posix_accounts(s.min_uid)
            .await?
            .into_iter()
            .map(|a| Account {
                name: a.name,
                uid: a.uid,
                gids: a.gids,
                email: a.email,
            })
            .collect()),
        None => {
            let s = s.clone();
            blocking(move || accounts(&s)).await
        }
    }
}

fn accounts(s: &FolderSettings) -> Result<Vec<Account>> {
    let read = |field: &str, p: &str| {
        std::fs::read(p)
            .map_err(|e| ConnectorError::Settings(format!("field `{field}`: cannot read {p}: {e}")))
    };
    let passwd = read("passwd_file", &s.passwd_file)?;
    let group = read("group_file", &s.group_file)?;
    Ok(parse_accounts(
        &String::from_utf8_lossy(&passwd),
        &String::from_utf8_lossy(&group),
        s.min_uid,
    ))
}

fn parse_accounts(passwd: &str, group: &str, min_uid: u32) -> Vec<Account> {
    let mut extra: HashMap<&str, Vec<u32>> = HashMap::new();
    for line in group.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 || line.starts_with('#') {
            continue;
        }
        let Ok(gid) = f[2].parse::<u32>() else {
            continue;
        };
        for m in f[3].split(',').filter(|m| !m.is_empty()) {
            extra.entry(m.trim()).or_default().push(gid);
        }
    }
    let mut out = Vec::new();
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 || line.starts_with('#') {
            continue;
        }
        let (Ok(uid), Ok(gid)) = (f[2].parse::<u32>(), f[3].parse::<u32>()) else {
            continue;
        };
        if uid < min_uid || uid == 65534 || f[0].is_empty() {
            continue;
        }
        let mut gids = vec![gid];
        gids.extend(extra.get(f[0]).into_iter().flatten().copied());
        out.push(Account {
            name: f[0].to_string(),
            uid,
            gids,
            email: None,
        });
    }
    out
}

/// The connector.
#[derive(Debug)]
pub struct Folder {
    settings: FolderSettings,
    text: TextReader,
    /// Where its directory (when the settings name one) may be.
    addresses: AddressPolicy,
    /// Each listed file's path and access, kept from the listing for the fetch that follows.
    listed: Arc<Mutex<HashMap<String, Found>>>,
}

impl Folder {
    pub fn new(settings: FolderSettings, text: TextReader, addresses: AddressPolicy) -> Self {
        Self {
            settings,
            text,
            addresses,
            listed: Default::default(),
        }
    }
}

/// A file's or folder's access facts.
struct Perms {
    owner: u32,
    group: u32,
    acl: Acl,
}

fn perms(path: &Path, meta: &std::fs::Metadata) -> std::result::Result<Perms, String> {
    let acl = match xattr::get(path, "system.posix_acl_access") {
        Ok(Some(bytes)) => {
            Acl::parse(&bytes).map_err(|e| format!("its ACL cannot be read: {e}"))?
        }
        Ok(None) => Acl::from_mode(meta.mode()),
        // Filesystems without ACL support answer "not supported": the mode is the access.
        Err(e) if e.raw_os_error() == Some(95) => Acl::from_mode(meta.mode()),
        Err(e) => return Err(format!("its ACL cannot be read: {e}")),
    };
    Ok(Perms {
        owner: meta.uid(),
        group: meta.gid(),
        acl,
    })
}

/// Who may pass through or read: each account's answer, and whether anyone else may.
#[derive(Clone)]
struct Reach {
    /// Indexes into the accounts.
    accounts: Vec<bool>,
    others: bool,
}

impl Reach {
    fn through(&self, p: &Perms, accounts: &[Account], want: u16) -> Reach {
        Reach {
            accounts: accounts
                .iter()
                .zip(&self.accounts)
                .map(|(a, ok)| *ok && p.acl.permits(p.owner, p.group, a.uid, &a.gids, want))
                .collect(),
            others: self.others && p.acl.everyone_gets(want),
        }
    }

    fn access(&self, accounts: &[Account]) -> Access {
        if self.others && self.accounts.iter().all(|ok| *ok) {
            return Access {
                everyone: true,
                users: vec![],
                groups: vec![],
            };
        }
        Access {
            everyone: false,
            users: accounts
                .iter()
                .zip(&self.accounts)
                .filter(|(_, ok)| **ok)
                .map(|(a, _)| a.name.clone())
                .collect(),
            groups: vec![],
        }
    }
}

/// A file's id: its path under the folder; bytes that are not UTF-8 are kept as `%XX` so two
/// such names never share an id.
fn file_id(rel: &Path) -> (String, bool) {
    let bytes = rel.as_os_str().as_bytes();
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.contains('%') => (s.to_string(), true),
        _ => {
            let mut out = String::new();
            let mut valid = true;
            for chunk in bytes.utf8_chunks() {
                out.push_str(&chunk.valid().replace('%', "%25"));
                for b in chunk.invalid() {
                    valid = false;
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            (out, valid)
        }
    }
}

/// A file found by the listing: where it is, who may read it, its fingerprint.
#[derive(Debug, Clone)]
struct Found {
    path: PathBuf,
    access: Access,
    fingerprint: String,
}

/// The listing: every regular file under the root with its access, and what could not be read.
struct Walk {
    files: Vec<(String, Found)>,
    /// Every folder was listed (otherwise nothing is pruned).
    complete: bool,
    problems: Vec<String>,
}

fn walk(s: &FolderSettings, accounts: &[Account]) -> Result<Walk> {
    // The real folder, every link resolved: its real parents are what a person passes through.
    let root = std::fs::canonicalize(&s.path).map_err(|e| {
        ConnectorError::Settings(format!("field `path`: cannot read {}: {e}", s.path))
    })?;
    let meta = std::fs::symlink_metadata(&root).map_err(|e| {
        ConnectorError::Settings(format!("field `path`: cannot read {}: {e}", s.path))
    })?;
    if !meta.is_dir() {
        return Err(ConnectorError::Settings(format!(
            "field `path`: {} is not a folder",
            s.path
        )));
    }
    // Passing from `/` down to the root.
    let mut reach = Reach {
        accounts: vec![true; accounts.len()],
        others: true,
    };
    let mut ancestors: Vec<&Path> = root.ancestors().collect();
    ancestors.reverse();
    for dir in ancestors {
        let m = std::fs::metadata(dir)
            .map_err(|e| ConnectorError::Settings(format!("cannot read {}: {e}", dir.display())))?;
        let p = perms(dir, &m)
            .map_err(|e| ConnectorError::Settings(format!("{}: {e}", dir.display())))?;
        reach = reach.through(&p, accounts, EXECUTE);
    }
    let mut out = Walk {
        files: vec![],
        complete: true,
        problems: vec![],
    };
    let mut stack = vec![(root.clone(), reach)];
    while let Some((dir, reach)) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                out.problems
                    .push(format!("{}: cannot list: {e}", dir.display()));
                out.complete = false;
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    out.problems
                        .push(format!("{}: cannot list: {e}", dir.display()));
                    out.complete = false;
                    continue;
                }
            };
            let path = entry.path();
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) => {
                    out.problems.push(format!("{}: {e}", path.display()));
                    out.complete = false;
                    continue;
                }
            };
            let ft = meta.file_type();
            if !(ft.is_dir() || ft.is_file()) {
                continue; // links, sockets, devices
            }
            let p = match perms(&path, &meta) {
                Ok(p) => p,
                Err(e) if ft.is_file() => {
                    // Fail closed: stored, readable by nobody.
                    out.problems.push(format!(
                        "{}: {e}; nobody can find it until it can be read",
                        path.display()
                    ));
                    let rel = path.strip_prefix(&root).unwrap_or(&path);
                    let (id, _) = file_id(rel);
                    let fp = fingerprint(&[
                        id.as_bytes(),
                        b"unreadable-acl",
                        &meta.mtime().to_le_bytes(),
                        &meta.ctime().to_le_bytes(),
                    ]);
                    out.files.push((
                        id,
                        Found {
                            path: path.clone(),
                            access: Access::nobody(),
                            fingerprint: fp,
                        },
                    ));
                    continue;
                }
                Err(e) => {
                    out.problems
                        .push(format!("{}: {e}; its files are skipped", path.display()));
                    out.complete = false;
                    continue;
                }
            };
            if ft.is_dir() {
                let inner = reach.through(&p, accounts, EXECUTE);
                stack.push((path, inner));
                continue;
            }
            let access = reach.through(&p, accounts, READ).access(accounts);
            let rel = path.strip_prefix(&root).unwrap_or(&path);
            let (id, _) = file_id(rel);
            let mut who = access.users.join(",");
            if access.everyone {
                who = "*".into();
            }
            let fp = fingerprint(&[
                id.as_bytes(),
                &meta.len().to_le_bytes(),
                &meta.mtime().to_le_bytes(),
                &meta.mtime_nsec().to_le_bytes(),
                &meta.ctime().to_le_bytes(),
                &meta.ctime_nsec().to_le_bytes(),
                who.as_bytes(),
            ]);
            out.files.push((
                id,
                Found {
                    path,
                    access,
                    fingerprint: fp,
                },
            ));
        }
    }
    out.files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ConnectorError::Protocol(format!("the reader stopped: {e}")))?
}

#[async_trait::async_trait]
impl crate::Connector for Folder {
    fn scopes(&self) -> &'static [Scope] {
        SCOPES
    }

    async fn check(&self) -> Result<String> {
        let accounts = load_accounts(&self.settings, &self.addresses).await?;
        let s = self.settings.clone();
        blocking(move || {
            let w = walk(&s, &accounts)?;
            Ok(format!(
                "{} files and {} accounts found",
                w.files.len(),
                accounts.len()
            ))
        })
        .await
    }

    async fn directory(&self) -> Result<Directory> {
        let s = &self.settings;
        let principals = load_accounts(s, &self.addresses)
            .await?
            .into_iter()
            .map(|a| Principal {
                email: a
                    .email
                    .or_else(|| s.email_domain.as_ref().map(|d| format!("{}@{d}", a.name))),
                id: a.name,
            })
            .collect();
        Ok(Directory {
            principals,
            groups: vec![],
            problems: vec![],
        })
    }

    async fn list(&self) -> Result<crate::Listing> {
        let accounts = load_accounts(&self.settings, &self.addresses).await?;
        let s = self.settings.clone();
        let w = blocking(move || walk(&s, &accounts)).await?;
        let mut listed = self.listed.lock().unwrap_or_else(|e| e.into_inner());
        listed.clear();
        let mut items = Vec::with_capacity(w.files.len());
        for (id, found) in w.files {
            items.push(Listed {
                id: id.clone(),
                fingerprint: found.fingerprint.clone(),
            });
            listed.insert(id, found);
        }
        Ok(crate::Listing {
            complete: w.complete,
            items,
            problems: w.problems,
        })
    }

    async fn fetch(&self, ids: &[String]) -> Result<Vec<std::result::Result<Document, ItemError>>> {
        let wanted: Vec<(String, Found)> = {
            let listed = self.listed.lock().unwrap_or_else(|e| e.into_inner());
            ids.iter()
                .filter_map(|id| listed.get(id).map(|f| (id.clone(), f.clone())))
                .collect()
        };
        let max = self.settings.max_file_bytes;
        let text = self.text.clone();
        blocking(move || {
            Ok(wanted
                .into_iter()
                .filter_map(|(id, f)| read_file(&id, f, max, &text).transpose())
                .collect())
        })
        .await
    }
}

/// One file as a document; `None` when it is gone since the listing.
fn read_file(
    id: &str,
    found: Found,
    max: u64,
    text: &TextReader,
) -> std::result::Result<Option<Document>, ItemError> {
    let Found {
        path,
        access,
        fingerprint: fp,
    } = found;
    let path = path.as_path();
    let err = |e: String| ItemError {
        id: id.to_string(),
        error: e,
    };
    // Opened without following a link and without waiting on a FIFO, then checked as opened:
    // a file swapped for a link or something else since the listing is not read.
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(err("it became a link since it was listed; not read".into()))
        }
        Err(e) => return Err(err(format!("cannot read it: {e}"))),
    };
    let meta = file
        .metadata()
        .map_err(|e| err(format!("cannot read it: {e}")))?;
    if !meta.is_file() {
        return Err(err("it is no longer a regular file; not read".into()));
    }
    let name_bytes = path.file_name().map(|n| n.as_bytes()).unwrap_or_default();
    let title = String::from_utf8_lossy(name_bytes).into_owned();
    let mut warnings = Vec::new();
    if std::str::from_utf8(name_bytes).is_err() {
        warnings
            .push("its name is not valid UTF-8 (shown with replacement characters)".to_string());
    }
    let body = if meta.len() > max {
        warnings.push(format!(
            "{} bytes, over the {max}-byte limit: found by its name only",
            meta.len()
        ));
        String::new()
    } else {
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        std::io::Read::read_to_end(&mut std::io::Read::take(file, max), &mut bytes)
            .map_err(|e| err(format!("cannot read it: {e}")))?;
        match text.read(&title, &bytes) {
            Ok(t) => t,
            Err(e) => {
                if meta::is_searchable_name(&title) {
                    warnings.push(format!(
                        "its text cannot be read ({e}): found by its name only"
                    ));
                }
                String::new()
            }
        }
    };
    Ok(Some(Document {
        id: id.to_string(),
        title,
        body,
        url: None,
        updated_at: meta.mtime() * 1000 + meta.mtime_nsec() / 1_000_000,
        access,
        fingerprint: fp,
        warning: (!warnings.is_empty()).then(|| format!("{id}: {}", warnings.join("; "))),
        mail: None,
    }))
}

mod meta {
    /// Whether a file's name says it has text we read (so failing to read it is worth a warning).
    pub fn is_searchable_name(name: &str) -> bool {
        meshwork_extract::Format::detect(name, "").is_some()
    }
}

/// Users who may read, by name, sorted (for tests and the history).
pub fn readers(a: &Access) -> BTreeSet<String> {
    a.users.iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_take_their_primary_and_listed_groups_and_skip_system_accounts() {
        let passwd = "root:x:0:0::/root:/bin/sh\nalice:x:1001:100::/h:/bin/sh\nbob:x:1002:1002::/h:/bin/sh\nnobody:x:65534:65534::/:/x\nbroken line\n";
        let group = "users:x:100:\neng:x:2000:bob,alice\n";
        let a = parse_accounts(passwd, group, 1000);
        assert_eq!(
            a,
            vec![
                Account {
                    name: "alice".into(),
                    uid: 1001,
                    gids: vec![100, 2000],
                    email: None,
                },
                Account {
                    name: "bob".into(),
                    uid: 1002,
                    gids: vec![1002, 2000],
                    email: None,
                },
            ]
        );
    }

    #[test]
    fn names_that_are_not_utf8_get_distinct_ids() {
        let a = file_id(Path::new(std::ffi::OsStr::from_bytes(b"r\xe9sum\xe9.txt")));
        let b = file_id(Path::new(std::ffi::OsStr::from_bytes(b"r\xe8sum\xe9.txt")));
        assert_ne!(a.0, b.0);
        assert!(!a.1);
        assert_eq!(file_id(Path::new("plain/100%.txt")).0, "plain/100%25.txt");
        assert_eq!(
            file_id(Path::new("plain/a.txt")),
            ("plain/a.txt".into(), true)
        );
    }
}
