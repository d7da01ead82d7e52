//! The LDAP directory connector: people and groups (`groupOfNames` and `groupOfUniqueNames`,
//! nested), read with the paged-results control (RFC 2696) so that no server-side size limit
//! cuts a listing short, and bound with a read-only account.
//!
//! A person's id is their `uid` (configurable), their email their `mail`; a group's id is its
//! `cn`. Members are DNs: a DN that names a person or group read in the same pass becomes that
//! member; any other (outside the base, or not matched by the filters) is skipped and counted.

use crate::address::AddressPolicy;
use crate::{ConnectorError, Directory, Group, Listing, Member, Principal, Result, Scope};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
/// An entry as read from the directory (for [`directory_from`]).
pub use ldap3::SearchEntry;
use ldap3::{LdapConnAsync, LdapConnSettings, LdapError, StdStream};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

pub const SCOPES: &[Scope] = &[
    Scope {
        name: "directory:read",
        description: "Search people and groups under the base DN (bind as a read-only account)",
    },
    Scope {
        name: "attributes:read",
        description: "Read each person's id and email, and each group's name and members; no passwords or other attributes",
    },
];

fn default_user_filter() -> String {
    "(|(objectClass=inetOrgPerson)(objectClass=posixAccount))".into()
}
fn default_user_id() -> String {
    "uid".into()
}
fn default_email() -> String {
    "mail".into()
}
fn default_group_filter() -> String {
    "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))".into()
}
fn default_group_id() -> String {
    "cn".into()
}
fn default_page_size() -> i32 {
    500
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapSettings {
    /// `ldap://host:389` or `ldaps://host:636`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS.
    #[serde(default)]
    pub starttls: bool,
    /// The read-only account to bind as.
    pub bind_dn: String,
    pub password: String,
    /// Where people and groups are searched.
    pub base_dn: String,
    #[serde(default = "default_user_filter")]
    pub user_filter: String,
    #[serde(default = "default_user_id")]
    pub user_id_attribute: String,
    #[serde(default = "default_email")]
    pub email_attribute: String,
    #[serde(default = "default_group_filter")]
    pub group_filter: String,
    #[serde(default = "default_group_id")]
    pub group_id_attribute: String,
    /// Entries per page of a paged search.
    #[serde(default = "default_page_size")]
    pub page_size: i32,
}

impl std::fmt::Debug for LdapSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapSettings")
            .field("url", &self.url)
            .field("bind_dn", &self.bind_dn)
            .field("password", &"********")
            .field("base_dn", &self.base_dn)
            .finish_non_exhaustive()
    }
}

impl LdapSettings {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(self.url.starts_with("ldap://") || self.url.starts_with("ldaps://")) {
            return Err(format!(
                "field `url`: {:?} must start with ldap:// or ldaps://",
                self.url
            ));
        }
        if self.starttls && self.url.starts_with("ldaps://") {
            return Err("field `starttls`: an ldaps:// connection is already encrypted".into());
        }
        for (field, v) in [("bind_dn", &self.bind_dn), ("base_dn", &self.base_dn)] {
            if v.trim().is_empty() || !v.contains('=') {
                return Err(format!("field `{field}`: {v:?} is not a DN"));
            }
        }
        for (field, v) in [
            ("user_filter", &self.user_filter),
            ("group_filter", &self.group_filter),
        ] {
            if !(v.starts_with('(') && v.ends_with(')')) {
                return Err(format!(
                    "field `{field}`: {v:?} is not an LDAP filter (it must be in parentheses)"
                ));
            }
        }
        if !(1..=10_000).contains(&self.page_size) {
            return Err("field `page_size`: must be 1 to 10000".into());
        }
        Ok(())
    }
}

/// The connector.
#[derive(Debug)]
pub struct Ldap {
    settings: LdapSettings,
    addresses: AddressPolicy,
}

impl Ldap {
    pub fn new(settings: LdapSettings, addresses: AddressPolicy) -> Self {
        Self {
            settings,
            addresses,
        }
    }

    async fn bind(&self) -> Result<ldap3::Ldap> {
        let s = &self.settings;
        // The connection is opened here, to an address the policy allows, and handed to ldap3
        // (which would otherwise connect wherever the URL's name resolves).
        let url = url::Url::parse(&s.url)
            .map_err(|e| ConnectorError::Settings(format!("field `url`: {e}")))?;
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| {
            ConnectorError::Settings(format!("field `url`: {:?} names no host", s.url))
        })?;
        let port = url
            .port()
            .unwrap_or(if url.scheme() == "ldaps" { 636 } else { 389 });
        let tcp = self
            .addresses
            .connect(host, port, Duration::from_secs(10))
            .await?
            .into_std()
            .map_err(|e| ConnectorError::Unreachable(format!("{}: {e}", s.url)))?;
        let conn_settings = LdapConnSettings::new()
            .set_conn_timeout(Duration::from_secs(10))
            .set_starttls(s.starttls)
            .set_std_stream(StdStream::Tcp(tcp));
        let (conn, mut ldap) = LdapConnAsync::with_settings(conn_settings, &s.url)
            .await
            .map_err(|e| error(&s.url, e))?;
        ldap3::drive!(conn);
        ldap.with_timeout(Duration::from_secs(30))
            .simple_bind(&s.bind_dn, &s.password)
            .await
            .map_err(|e| error(&s.url, e))?
            .success()
            .map_err(|e| error(&s.url, e))?;
        Ok(ldap)
    }

    /// Every entry under the base matching `filter`, page by page.
    async fn search(
        &self,
        ldap: &mut ldap3::Ldap,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<SearchEntry>> {
        let s = &self.settings;
        let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(s.page_size)),
        ];
        let mut stream = ldap
            .streaming_search_with(
                adapters,
                &s.base_dn,
                ldap3::Scope::Subtree,
                filter,
                attrs.to_vec(),
            )
            .await
            .map_err(|e| error(&s.url, e))?;
        let mut out = Vec::new();
        while let Some(entry) = stream.next().await.map_err(|e| error(&s.url, e))? {
            out.push(SearchEntry::construct(entry));
        }
        stream
            .finish()
            .await
            .success()
            .map_err(|e| error(&s.url, e))?;
        Ok(out)
    }
}

/// A POSIX account of the directory (`posixAccount`), with every group it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosixAccount {
    pub name: String,
    pub uid: u32,
    pub gids: Vec<u32>,
    pub email: Option<String>,
}

impl Ldap {
    /// The directory's POSIX accounts (`uidNumber` at least `min_uid`) with their primary
    /// `gidNumber` and the `posixGroup`s whose `memberUid` names them: the accounts a folder on
    /// a machine that logs in through this directory is owned by.
    pub async fn posix_accounts(&self, min_uid: u32) -> Result<Vec<PosixAccount>> {
        let s = &self.settings;
        let mut ldap = self.bind().await?;
        let people = self
            .search(
                &mut ldap,
                "(objectClass=posixAccount)",
                &[
                    &s.user_id_attribute,
                    "uidNumber",
                    "gidNumber",
                    &s.email_attribute,
                ],
            )
            .await?;
        let groups = self
            .search(
                &mut ldap,
                "(objectClass=posixGroup)",
                &["gidNumber", "memberUid"],
            )
            .await?;
        let _ = ldap.unbind().await;
        let mut extra: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for g in &groups {
            let Some(gid) = first(g, "gidNumber").and_then(|v| v.parse::<u32>().ok()) else {
                continue;
            };
            for m in all(g, "memberUid") {
                extra.entry(m.clone()).or_default().push(gid);
            }
        }
        let mut out = Vec::new();
        for p in &people {
            let (Some(name), Some(uid), Some(gid)) = (
                first(p, &s.user_id_attribute),
                first(p, "uidNumber").and_then(|v| v.parse::<u32>().ok()),
                first(p, "gidNumber").and_then(|v| v.parse::<u32>().ok()),
            ) else {
                continue;
            };
            if uid < min_uid || uid == 65534 {
                continue;
            }
            let mut gids = vec![gid];
            gids.extend(extra.get(name).into_iter().flatten().copied());
            out.push(PosixAccount {
                name: name.to_string(),
                uid,
                gids,
                email: first(p, &s.email_attribute).map(str::to_string),
            });
        }
        Ok(out)
    }
}

/// What went wrong, in words a person setting it up can act on.
fn error(url: &str, e: LdapError) -> ConnectorError {
    match e {
        LdapError::LdapResult { result } => match result.rc {
            49 => ConnectorError::Credentials(format!("{url}: invalid bind DN or password")),
            32 => ConnectorError::Settings(format!(
                "field `base_dn`: no such entry on {url} ({})",
                result.text
            )),
            50 => ConnectorError::Credentials(format!(
                "{url}: the bind account may not read this ({})",
                result.text
            )),
            51..=53 | 80 => ConnectorError::Unreachable(format!(
                "{url}: the server is busy or unavailable (code {}: {})",
                result.rc, result.text
            )),
            87 => {
                ConnectorError::Settings(format!("an LDAP filter is not valid ({})", result.text))
            }
            rc => ConnectorError::Protocol(format!("{url}: code {rc}: {}", result.text)),
        },
        LdapError::FilterParsing => ConnectorError::Settings(
            "field `user_filter` or `group_filter`: not a valid LDAP filter".into(),
        ),
        LdapError::Timeout { .. } => ConnectorError::Unreachable(format!("{url}: timed out")),
        LdapError::Io { source } => ConnectorError::Unreachable(format!("{url}: {source}")),
        LdapError::EndOfStream => {
            ConnectorError::Unreachable(format!("{url}: the server closed the connection"))
        }
        other => ConnectorError::Unreachable(format!("{url}: {other}")),
    }
}

/// The directory the entries read under the base make (`s` names the attributes): people by
/// their id attribute; groups by their `cn`, or by their whole DN when another group has the
/// same `cn` (never merged); members resolved by DN, nested groups included; and each entry
/// skipped, in `problems`. Pure, so the fuzz target `ldap_entries` feeds it any entries.
pub fn directory_from(
    s: &LdapSettings,
    users: &[SearchEntry],
    groups: &[SearchEntry],
) -> Directory {
    let mut dir = Directory::default();
    let mut by_dn: HashMap<String, Member> = HashMap::new();
    for u in users {
        let Some(id) = first(u, &s.user_id_attribute) else {
            dir.problems
                .push(format!("{}: no `{}`; skipped", u.dn, s.user_id_attribute));
            continue;
        };
        by_dn.insert(norm_dn(&u.dn), Member::User(id.to_string()));
        dir.principals.push(Principal {
            id: id.to_string(),
            email: first(u, &s.email_attribute).map(str::to_string),
        });
    }
    // A group is named by its `cn` (what pushed documents and people use); two groups with
    // one `cn` in different branches are told apart by their whole DN, never merged.
    let mut cns: HashMap<String, usize> = HashMap::new();
    for g in groups {
        if let Some(id) = first(g, &s.group_id_attribute) {
            *cns.entry(id.to_string()).or_default() += 1;
        }
    }
    let mut named = Vec::new();
    for g in groups {
        let Some(cn) = first(g, &s.group_id_attribute) else {
            dir.problems
                .push(format!("{}: no `{}`; skipped", g.dn, s.group_id_attribute));
            continue;
        };
        let id = if cns.get(cn).copied().unwrap_or(0) > 1 {
            dir.problems.push(format!(
                "{}: another group is also named {cn:?}; this one is named by its DN",
                g.dn
            ));
            norm_dn(&g.dn)
        } else {
            cn.to_string()
        };
        by_dn.insert(norm_dn(&g.dn), Member::Group(id.clone()));
        named.push((id, g));
    }
    for (id, g) in named {
        let mut members = Vec::new();
        let mut unknown = 0usize;
        for dn in all(g, "member").chain(all(g, "uniqueMember")) {
            // `uniqueMember` may carry `#'0101'B` after the DN.
            let dn = dn.split('#').next().unwrap_or(dn);
            match by_dn.get(&norm_dn(dn)) {
                Some(m) => members.push(m.clone()),
                None => unknown += 1,
            }
        }
        if unknown > 0 {
            dir.problems.push(format!(
                "group {id}: {unknown} members are not people or groups under the base; left out"
            ));
        }
        members.sort();
        members.dedup();
        dir.groups.push(Group { id, members });
    }
    dir
}

/// A DN in one spelling: lower case, no spaces around separators.
fn norm_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| {
            let (a, v) = rdn.split_once('=').unwrap_or((rdn, ""));
            format!(
                "{}={}",
                a.trim().to_ascii_lowercase(),
                v.trim().to_lowercase()
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn first<'a>(e: &'a SearchEntry, attr: &str) -> Option<&'a str> {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .and_then(|(_, v)| v.first())
        .map(String::as_str)
}

fn all<'a>(e: &'a SearchEntry, attr: &'a str) -> impl Iterator<Item = &'a String> {
    e.attrs
        .iter()
        .filter(move |(k, _)| k.eq_ignore_ascii_case(attr))
        .flat_map(|(_, v)| v.iter())
}

#[async_trait::async_trait]
impl crate::Connector for Ldap {
    fn scopes(&self) -> &'static [Scope] {
        SCOPES
    }

    fn has_documents(&self) -> bool {
        false
    }

    async fn check(&self) -> Result<String> {
        let mut ldap = self.bind().await?;
        let s = &self.settings;
        let (entries, _) = ldap
            .with_timeout(Duration::from_secs(30))
            .search(
                &s.base_dn,
                ldap3::Scope::Base,
                "(objectClass=*)",
                vec!["1.1"],
            )
            .await
            .map_err(|e| error(&s.url, e))?
            .success()
            .map_err(|e| error(&s.url, e))?;
        let _ = ldap.unbind().await;
        if entries.is_empty() {
            return Err(ConnectorError::Settings(format!(
                "field `base_dn`: {} is not readable",
                s.base_dn
            )));
        }
        Ok(format!("bound as {} and read {}", s.bind_dn, s.base_dn))
    }

    async fn directory(&self) -> Result<Directory> {
        let s = self.settings.clone();
        let mut ldap = self.bind().await?;
        let users = self
            .search(
                &mut ldap,
                &s.user_filter,
                &[&s.user_id_attribute, &s.email_attribute],
            )
            .await?;
        let groups = self
            .search(
                &mut ldap,
                &s.group_filter,
                &[&s.group_id_attribute, "member", "uniqueMember"],
            )
            .await?;
        let _ = ldap.unbind().await;
        Ok(directory_from(&s, &users, &groups))
    }

    async fn list(&self) -> Result<Listing> {
        Ok(Listing {
            complete: false,
            ..Default::default()
        })
    }

    async fn fetch(
        &self,
        _ids: &[String],
    ) -> Result<Vec<std::result::Result<crate::Document, crate::ItemError>>> {
        Ok(vec![])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_compare_in_one_spelling() {
        assert_eq!(
            norm_dn("CN=Eng, OU=Groups ,dc=Example,dc=org"),
            "cn=eng,ou=groups,dc=example,dc=org"
        );
    }

    #[test]
    fn settings_name_the_wrong_field() {
        let mut s: LdapSettings = serde_json::from_value(serde_json::json!({
            "url": "ldap://127.0.0.1:389", "bind_dn": "cn=reader,dc=x", "password": "p", "base_dn": "dc=x"
        })).unwrap();
        assert_eq!(s.validate(), Ok(()));
        s.url = "http://x".into();
        assert!(s.validate().unwrap_err().contains("field `url`"));
        s.url = "ldap://x".into();
        s.group_filter = "objectClass=group".into();
        assert!(s.validate().unwrap_err().contains("field `group_filter`"));
        assert!(!format!("{s:?}").contains("\"p\""));
    }
}
