//! Entries read from an LDAP directory, made into people and groups
//! (`meshwork_connectors::ldap::directory_from`): any entries give a directory, never a panic,
//! and every member of every group is a person or a group of that directory.
//!
//! Input: text, one entry a line: `u` (a person) or `g` (a group), then tab-separated fields,
//! the first the DN and each next one `attribute=value` (`uid`, `mail`, `cn`, `member`,
//! `uniqueMember`, or any other).
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork_connectors::ldap::{directory_from, LdapSettings, SearchEntry};
use meshwork_connectors::Member;
use std::collections::{HashMap, HashSet};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (mut users, mut groups) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let mut fields = line.split('\t');
        let (Some(kind), Some(dn)) = (fields.next(), fields.next()) else {
            continue;
        };
        let mut attrs: HashMap<String, Vec<String>> = HashMap::new();
        for f in fields {
            let (k, v) = f.split_once('=').unwrap_or((f, ""));
            attrs.entry(k.to_string()).or_default().push(v.to_string());
        }
        let entry = SearchEntry {
            dn: dn.to_string(),
            attrs,
            bin_attrs: HashMap::new(),
        };
        match kind {
            "u" => users.push(entry),
            "g" => groups.push(entry),
            _ => {}
        }
    }
    let settings = LdapSettings {
        url: "ldap://directory.example".into(),
        starttls: false,
        bind_dn: "cn=reader,dc=example".into(),
        password: String::new(),
        base_dn: "dc=example".into(),
        user_filter: "(objectClass=person)".into(),
        user_id_attribute: "uid".into(),
        email_attribute: "mail".into(),
        group_filter: "(objectClass=groupOfNames)".into(),
        group_id_attribute: "cn".into(),
        page_size: 500,
    };
    let dir = directory_from(&settings, &users, &groups);
    let people: HashSet<&str> = dir.principals.iter().map(|p| p.id.as_str()).collect();
    let named: HashSet<&str> = dir.groups.iter().map(|g| g.id.as_str()).collect();
    for g in &dir.groups {
        for m in &g.members {
            match m {
                Member::User(id) => assert!(people.contains(id.as_str()), "{id} is no person"),
                Member::Group(id) => assert!(named.contains(id.as_str()), "{id} is no group"),
                Member::Everyone => panic!("a directory group has everyone in it"),
            }
        }
    }
});
