//! Contacts connectors (CardDAV): an address book's cards as CRM contacts.
//!
//! Each card is read with the vCard reader that import uses and becomes a contact's
//! `first_name`, `last_name`, `title`, `emails`, `phones` and `tags` (its `CATEGORIES`)
//! ([`FIELDS`]). Per card, a row in
//! `connector_records` keeps which contact it is, whether the connector created it, the card's
//! ETag hash, and (sealed) the values the connector last wrote: the base of a three-way merge.
//!
//! - **A new card** updates the contact that has one of its emails (filling only what that
//!   contact lacks: a person's values win), or else creates one. The created contact's id is a
//!   keyed hash of the connector and the card, so a sync killed after writing it finds it again
//!   and never creates it twice.
//! - **A changed card** writes each field it changed, unless the contact's value was changed
//!   in Meshwork too: then Meshwork's value is kept and the run's history says so.
//! - **A card gone** (from a complete listing) removes its contact only if the connector
//!   created it and nobody changed it in Meshwork since (its version is the one the connector
//!   wrote, and no note, deal or activity names it). Otherwise the contact is kept, and said.
//! - **A contact deleted in Meshwork** stays deleted: its card's row remains as a tombstone.
//! - **Disconnecting** removes the contacts the connector created and nobody changed, keeps the
//!   others, and says how many of each.

use super::{save_run, Report, SyncError, BATCH};
use crate::crm::Crm;
use crate::error::{AppError, AppResult};
use crate::state::{now_millis, AppState};
use meshwork_connectors::carddav::{Card, CardDav, ListedCard};
use meshwork_crm::{Doc, Kind, Validated};
use meshwork_domain::{RecordId, WorkspaceId};
use meshwork_keyring::Aad;
use meshwork_store::{ConnectorRecordRow, ConnectorRow, ConnectorRunRow};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The contact fields a card sets; every other field belongs to Meshwork alone.
pub const FIELDS: &[&str] = &[
    "first_name",
    "last_name",
    "title",
    "emails",
    "phones",
    "tags",
];

/// What is kept, sealed, per item (a card, or a logged message).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct ItemState {
    /// The item's name at the source (a card's href, a message's id).
    pub(super) href: String,
    /// The [`FIELDS`] values last written (normalised as stored).
    pub(super) base: Doc,
    /// Seen changed in Meshwork since the connector wrote it.
    #[serde(default)]
    pub(super) edited: bool,
}

fn aad<'a>(connector: &'a str, card: &'a str) -> Aad<'a> {
    Aad {
        scope: connector,
        record: card,
        field: "connector_record",
    }
}

pub(super) fn item_key(
    state: &AppState,
    ws: WorkspaceId,
    connector: &str,
    href: &str,
) -> AppResult<String> {
    let index = state
        .workspace_key(ws)?
        .blind_index("connector.item", &format!("{connector}\n{href}"));
    Ok(hex::encode(index.0))
}

/// The id of the contact a card creates: a keyed hash of the connector and the card.
pub(super) fn created_id(
    state: &AppState,
    ws: WorkspaceId,
    connector: &str,
    href: &str,
) -> AppResult<RecordId> {
    let index = state
        .workspace_key(ws)?
        .blind_index("connector.contact", &format!("{connector}\n{href}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&index.0[..16]);
    Ok(RecordId(
        uuid::Builder::from_random_bytes(bytes).into_uuid(),
    ))
}

fn etag_fingerprint(etag: &str) -> String {
    meshwork_connectors::fingerprint(&[etag.as_bytes()])
}

pub(super) fn seal_state(
    state: &AppState,
    row: &ConnectorRecordRow,
    s: &ItemState,
) -> AppResult<Vec<u8>> {
    Ok(state.workspace_key(row.workspace_id)?.seal(
        aad(&row.connector_id, &row.item),
        &serde_json::to_vec(s).map_err(AppError::internal)?,
    ))
}

fn open_state(state: &AppState, row: &ConnectorRecordRow) -> AppResult<ItemState> {
    let bytes = state
        .workspace_key(row.workspace_id)?
        .open(aad(&row.connector_id, &row.item), &row.state_sealed)
        .map_err(AppError::internal)?;
    serde_json::from_slice(&bytes).map_err(AppError::internal)
}

/// A card's contact fields, validated and normalised as a stored contact's are.
pub fn card_fields(vcard: &str) -> Result<Doc, String> {
    let options = meshwork_crm_io::ReaderOptions::default();
    let mut rows = meshwork_crm_io::read_vcards(std::io::Cursor::new(vcard.as_bytes()), &options)
        .map_err(|e| e.to_string())?;
    let row = match rows.next() {
        Some(Ok(r)) => r,
        Some(Err(e)) => return Err(e.reason),
        None => return Err("no card in it".into()),
    };
    let mut doc = Doc::new();
    let has_parts = row
        .fields
        .iter()
        .any(|f| f.target == "first_name" || f.target == "last_name");
    for f in &row.fields {
        let v = f.value.trim();
        if v.is_empty() {
            continue;
        }
        match f.target.as_str() {
            t @ ("first_name" | "last_name" | "title") => {
                doc.entry(t).or_insert_with(|| json!(v));
            }
            "full_name" if !has_parts => match v.rsplit_once(' ') {
                Some((first, last)) => {
                    doc.insert("first_name".into(), json!(first.trim()));
                    doc.insert("last_name".into(), json!(last.trim()));
                }
                None => {
                    doc.insert("first_name".into(), json!(v));
                }
            },
            "email" | "phone" | "tags" => {
                let field = match f.target.as_str() {
                    "email" => "emails",
                    "phone" => "phones",
                    _ => "tags",
                };
                if let Value::Array(a) = doc.entry(field).or_insert_with(|| json!([])) {
                    if !a.iter().any(|x| x.as_str() == Some(v)) {
                        a.push(json!(v));
                    }
                }
            }
            _ => {} // company, uid: not synced
        }
    }
    Validated::check(Kind::Contact, &doc, &[])
        .map(|v| v.doc)
        .map_err(|e| e.to_string())
}

fn synced(doc: &Doc) -> Doc {
    FIELDS
        .iter()
        .filter_map(|f| doc.get(*f).map(|v| (f.to_string(), v.clone())))
        .collect()
}

fn name_of(doc: &Doc) -> String {
    let name = ["first_name", "last_name"]
        .iter()
        .filter_map(|f| doc.get(*f).and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    if !name.is_empty() {
        return name;
    }
    doc.get("emails")
        .and_then(|e| e.get(0))
        .and_then(Value::as_str)
        .unwrap_or("(no name)")
        .to_string()
}

/// What the connector's cards left behind when removed: contacts removed and kept.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removal {
    pub removed: u64,
    pub kept: u64,
}

/// Removes an item's row and, when the connector created its record and nobody changed it in
/// Meshwork, the record (a card's contact, a message's communication); says in `problems` why a
/// record was kept.
async fn remove_item(
    state: &AppState,
    crm: &Crm<'_>,
    row: &ConnectorRecordRow,
    why: &str,
    problems: &mut Vec<String>,
) -> AppResult<Removal> {
    let mut out = Removal::default();
    let item = open_state(state, row)?;
    let record = state
        .store
        .crm_record(row.workspace_id, row.record_id)
        .await?;
    if let (true, Some(record)) = (row.created, record) {
        let kind: Kind = record.kind.parse().map_err(AppError::internal)?;
        let doc = crm.open_doc(&record)?;
        let linked = !state
            .store
            .crm_links_to(row.workspace_id, row.record_id, None)
            .await?
            .is_empty();
        if record.version == row.version && !item.edited && !linked {
            crm.delete(kind, row.record_id).await?;
            out.removed += 1;
        } else {
            out.kept += 1;
            let name = match kind {
                Kind::Contact => name_of(&doc),
                _ => doc
                    .get("subject")
                    .and_then(Value::as_str)
                    .unwrap_or("(no subject)")
                    .to_string(),
            };
            problems.push(format!(
                "{kind} {name} ({}) was kept though {why}: {}",
                row.record_id,
                if linked {
                    "notes, deals or activities in Meshwork name it"
                } else {
                    "it was changed in Meshwork"
                }
            ));
        }
    }
    state
        .store
        .connector_record_delete(row.workspace_id, &row.connector_id, &row.item)
        .await?;
    Ok(out)
}

/// Removes every record the connector brought that may be removed (disconnecting): the
/// contacts and communications it created and nobody changed; answers the counts and what was
/// kept, each named.
pub async fn remove_all(
    state: &AppState,
    ws: WorkspaceId,
    connector: &str,
) -> AppResult<(Removal, Vec<String>)> {
    let crm = Crm::new(state, ws)?;
    let mut total = Removal::default();
    let mut problems = Vec::new();
    for row in state.store.connector_records(ws, connector).await? {
        let r = remove_item(
            state,
            &crm,
            &row,
            "its connector was disconnected",
            &mut problems,
        )
        .await?;
        total.removed += r.removed;
        total.kept += r.kept;
    }
    Ok((total, problems))
}

/// One sync of a contacts connector.
pub(super) async fn sync(
    state: &AppState,
    c: &ConnectorRow,
    run: &ConnectorRunRow,
    report: &mut Report,
    dav: &CardDav,
) -> Result<(), SyncError> {
    let ws = c.workspace_id;
    let crm = Crm::new(state, ws)?;
    let listing = dav.list().await?;
    for p in listing.problems {
        report.counts.warnings += 1;
        report.problem(p);
    }
    report.counts.listed = listing.cards.len() as u64;
    let mut rows: HashMap<String, ConnectorRecordRow> = state
        .store
        .connector_records(ws, &c.id)
        .await?
        .into_iter()
        .map(|r| (r.item.clone(), r))
        .collect();
    let mut listed = HashSet::with_capacity(listing.cards.len());
    let mut to_fetch: BTreeMap<String, (ListedCard, Vec<String>)> = BTreeMap::new();
    for card in listing.cards {
        let key = item_key(state, ws, &c.id, &card.href)?;
        let same = rows
            .get(&key)
            .is_some_and(|r| r.fingerprint == etag_fingerprint(&card.etag));
        listed.insert(key);
        if same {
            report.counts.unchanged += 1;
        } else {
            to_fetch
                .entry(card.book.to_string())
                .or_insert_with(|| (card.clone(), Vec::new()))
                .1
                .push(card.href);
        }
    }
    for (first, hrefs) in to_fetch.into_values() {
        for batch in hrefs.chunks(BATCH) {
            let mut created = Vec::new();
            for item in dav.fetch(&first.book, batch).await? {
                match item {
                    Ok(card) => match one_card(state, &crm, c, &card, &mut rows, report).await {
                        Ok(Some(id)) => created.push(id),
                        Ok(None) => {}
                        Err(e) => {
                            report.counts.errors += 1;
                            report.problem(format!(
                                "card {}: {}; it is skipped (its contact, if any, is unchanged)",
                                card.href, e.message
                            ));
                        }
                    },
                    Err(e) => {
                        report.counts.errors += 1;
                        report.problem(format!("card {}: {}", e.id, e.error));
                    }
                }
            }
            if state.store.connector(ws, &c.id).await?.is_none() {
                // Disconnected meanwhile: what this batch created goes too.
                for id in created {
                    let _ = crm.delete(Kind::Contact, id).await;
                }
                remove_all(state, ws, &c.id).await?;
                return Err(SyncError::Disconnected);
            }
            save_run(state, run, "running", report, false).await?;
        }
    }
    if listing.complete {
        let gone: Vec<ConnectorRecordRow> = rows
            .values()
            .filter(|r| !listed.contains(&r.item))
            .cloned()
            .collect();
        let mut problems = Vec::new();
        for row in gone {
            let r = remove_item(
                state,
                &crm,
                &row,
                "its card was removed at the source",
                &mut problems,
            )
            .await?;
            report.counts.removed += r.removed;
            report.counts.contacts_kept += r.kept;
        }
        for p in problems {
            report.counts.warnings += 1;
            report.problem(p);
        }
    } else {
        report.counts.warnings += 1;
        report.problem(
            "part of the address books could not be listed: no contact was removed this time"
                .into(),
        );
    }
    Ok(())
}

/// Writes one card; answers the contact it created, if it created one.
async fn one_card(
    state: &AppState,
    crm: &Crm<'_>,
    c: &ConnectorRow,
    card: &Card,
    rows: &mut HashMap<String, ConnectorRecordRow>,
    report: &mut Report,
) -> AppResult<Option<RecordId>> {
    let ws = c.workspace_id;
    let new = card_fields(&card.vcard)
        .map_err(|e| AppError::new(meshwork_domain::ErrorCode::InvalidField, e))?;
    let key = item_key(state, ws, &c.id, &card.href)?;
    let mut row = ConnectorRecordRow {
        workspace_id: ws,
        connector_id: c.id.clone(),
        item: key.clone(),
        record_id: created_id(state, ws, &c.id, &card.href)?,
        created: true,
        fingerprint: etag_fingerprint(&card.etag),
        version: 0,
        state_sealed: Vec::new(),
        updated_at: now_millis(),
    };
    let mut made = None;
    let mut st = ItemState {
        href: card.href.clone(),
        base: new.clone(),
        edited: false,
    };
    match rows.get(&key) {
        None => {
            let existing = state.store.crm_records(ws, &[row.record_id]).await?;
            if let Some(mine) = existing
                .into_iter()
                .find(|r| r.kind == Kind::Contact.as_str())
            {
                // Created by a sync that stopped before it wrote this row.
                row.version = mine.version;
                let cur = synced(&crm.open_doc(&mine)?);
                if cur != new {
                    row.version = crm
                        .update(Kind::Contact, row.record_id, &patch_to(&cur, &new), None)
                        .await?
                        .version;
                    report.counts.stored += 1;
                }
            } else if let Some(holder) = holder_by_email(crm, &new, rows).await? {
                // A contact someone already has: linked, and only what it lacks is filled in
                // (nothing, when its processing is restricted at the person's request).
                row.record_id = holder.id;
                row.created = false;
                let cur = crm.open_doc(&holder)?;
                let restricted = state.store.crm_restricted(ws).await?.contains(&holder.id);
                let fill: Doc = FIELDS
                    .iter()
                    .filter_map(|f| {
                        let v = new.get(*f)?;
                        match (cur.get(*f), v) {
                            (None, _) => Some((f.to_string(), v.clone())),
                            (Some(Value::Array(have)), Value::Array(add)) => {
                                let mut all = have.clone();
                                all.extend(add.iter().filter(|x| !have.contains(x)).cloned());
                                (all.len() > have.len()).then(|| (f.to_string(), Value::Array(all)))
                            }
                            _ => None,
                        }
                    })
                    .collect();
                row.version = if fill.is_empty() || restricted {
                    holder.version
                } else {
                    report.counts.stored += 1;
                    crm.update(Kind::Contact, holder.id, &fill, None)
                        .await?
                        .version
                };
                report.counts.contacts_matched += 1;
            } else {
                let (view, fresh) = crm.create_once(Kind::Contact, row.record_id, &new).await?;
                row.version = view.version;
                if fresh {
                    made = Some(row.record_id);
                    report.counts.stored += 1;
                }
            }
        }
        Some(old) => {
            let mut prev = open_state(state, old)?;
            row.record_id = old.record_id;
            row.created = old.created;
            row.version = old.version;
            let restricted = state.store.crm_restricted(ws).await?;
            match state
                .store
                .crm_record(ws, old.record_id)
                .await?
                .filter(|r| r.kind == Kind::Contact.as_str())
            {
                // Processing restricted at the person's request (mm17): the card changes nothing.
                Some(contact) if restricted.contains(&contact.id) => {
                    st.base = prev.base;
                    report.counts.unchanged += 1;
                    report.problem(format!(
                        "card {}: its contact's processing is restricted at their request; the card's changes are not applied",
                        card.href
                    ));
                }
                None => {
                    // Deleted in Meshwork: the card does not bring it back.
                    st.base = prev.base;
                    st.edited = true;
                    report.counts.warnings += 1;
                    report.problem(format!(
                        "card {}: its contact was deleted in Meshwork; the card changed at the source but does not bring it back",
                        card.href
                    ));
                }
                Some(contact) => {
                    let cur = crm.open_doc(&contact)?;
                    st.edited = prev.edited || contact.version != old.version;
                    let mut patch = Doc::new();
                    let mut kept = Vec::new();
                    for f in FIELDS {
                        let (n, b, now) = (new.get(*f), prev.base.get(*f), cur.get(*f));
                        if n == b {
                            continue;
                        }
                        if now == b {
                            patch.insert(f.to_string(), n.cloned().unwrap_or(Value::Null));
                        } else if now != n {
                            kept.push(*f);
                        }
                    }
                    if !kept.is_empty() {
                        report.counts.warnings += 1;
                        report.problem(format!(
                            "contact {} ({}): kept the value changed in Meshwork of {} (the card changed it too)",
                            name_of(&cur),
                            contact.id,
                            kept.join(", ")
                        ));
                    }
                    if !patch.is_empty() {
                        let view = crm.update(Kind::Contact, contact.id, &patch, None).await?;
                        if !st.edited {
                            row.version = view.version;
                        }
                        report.counts.stored += 1;
                    }
                    prev.base = new.clone();
                    st.base = prev.base;
                }
            }
        }
    }
    row.state_sealed = seal_state(state, &row, &st)?;
    if let Err(e) = state.store.connector_record_put(&row).await {
        if let Some(id) = made {
            let _ = crm.delete(Kind::Contact, id).await;
        }
        return Err(e.into());
    }
    rows.insert(key, row);
    Ok(made)
}

/// The patch that turns the [`FIELDS`] of `cur` into those of `new`.
fn patch_to(cur: &Doc, new: &Doc) -> Doc {
    FIELDS
        .iter()
        .filter(|f| cur.get(**f) != new.get(**f))
        .map(|f| (f.to_string(), new.get(*f).cloned().unwrap_or(Value::Null)))
        .collect()
}

/// The contact holding one of the card's emails, unless another card of this connector already
/// brought it (two cards with one email: the second is its own contact's concern, not a merge).
async fn holder_by_email(
    crm: &Crm<'_>,
    new: &Doc,
    rows: &HashMap<String, ConnectorRecordRow>,
) -> AppResult<Option<meshwork_store::RecordRow>> {
    let validated = Validated::check(Kind::Contact, new, &[])
        .map_err(|e| AppError::new(meshwork_domain::ErrorCode::InvalidField, e.to_string()))?;
    for entry in crm.key_entries(Kind::Contact, &validated) {
        if !entry.kind.ends_with(".email") {
            continue;
        }
        let holders = crm
            .state
            .store
            .crm_find_keys(crm.ws, &entry.kind, &[entry.index])
            .await?;
        if let Some((_, id)) = holders.into_iter().next() {
            if rows.values().any(|r| r.record_id == id) {
                return Err(AppError::new(
                    meshwork_domain::ErrorCode::DuplicateRecord,
                    "another card of this address book has the same email",
                ));
            }
            if let Some(r) = crm.state.store.crm_record(crm.ws, id).await? {
                return Ok(Some(r));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_gives_normalised_contact_fields() {
        let doc = card_fields("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann Lee\r\nN:Lee;Ann;;;\r\nEMAIL;TYPE=work:Ann@Example.COM\r\nEMAIL:ann@example.com\r\nTEL:+1 555 0100\r\nTITLE:Engi\r\n neer\r\nORG:Acme\r\nCATEGORIES:vip,partner\r\nEND:VCARD\r\n").unwrap();
        assert_eq!(doc["first_name"], "Ann");
        assert_eq!(doc["last_name"], "Lee");
        assert_eq!(doc["title"], "Engineer", "a folded line is unfolded");
        assert_eq!(
            doc["emails"],
            json!(["Ann@example.com"]),
            "one email: the domain normalised, repeats dropped"
        );
        assert_eq!(doc["phones"].as_array().unwrap().len(), 1);
        assert!(doc.get("companies").is_none(), "ORG is not synced");
        assert_eq!(
            doc["tags"],
            json!(["vip", "partner"]),
            "CATEGORIES are tags"
        );
        // FN alone is split at its last space.
        let doc = card_fields("BEGIN:VCARD\r\nFN:Mary Ann Smith\r\nEND:VCARD\r\n").unwrap();
        assert_eq!(
            (doc["first_name"].as_str(), doc["last_name"].as_str()),
            (Some("Mary Ann"), Some("Smith"))
        );
    }

    #[test]
    fn a_broken_card_is_an_error_saying_why() {
        // A continuation line that lost its leading space: not a property.
        let e = card_fields("BEGIN:VCARD\r\nFN:Ann Lee\r\nNOTE:a long note\r\ncontinued without a space\r\nEND:VCARD\r\n").unwrap_err();
        assert!(e.contains("not a property") || e.contains("line"), "{e}");
        let e = card_fields("BEGIN:VCARD\r\nORG:Acme\r\nEND:VCARD\r\n").unwrap_err();
        assert!(e.contains("needs a name or an email"), "{e}");
        assert!(card_fields("").is_err());
        assert!(
            card_fields("BEGIN:VCARD\r\nFN:Ann\r\n").is_err(),
            "no END:VCARD"
        );
    }
}
