//! The CRM's own mail sync: an IMAP connector with `log_to_crm` logs each message it reads that
//! involves a contact's address (`From`, `To` or `Cc`) as an email communication about those
//! contacts, on their timelines.
//!
//! A message is logged once: by its `Message-ID` (the same message in the sender's and the
//! recipient's mailbox is one communication), or by its place when it has none. The
//! communication's id is a keyed hash of the connector and the message, so a sync killed after
//! writing it finds it again. Contacts are matched when a message is read: a contact added later
//! gets the messages read after. Disconnecting removes the communications the connector logged
//! and nobody changed since.

use super::contacts::{created_id, item_key, seal_state, ItemState};
use super::Report;
use crate::crm::Crm;
use crate::error::AppResult;
use crate::state::{now_millis, AppState};
use meshwork_connectors::MailMeta;
use meshwork_crm::{Doc, Kind, Validated};
use meshwork_domain::RecordId;
use meshwork_store::{ConnectorRecordRow, ConnectorRow};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap, HashSet};

/// The most text of a message kept in its communication.
const MAX_BODY: usize = 64 * 1024;

/// A message read, as the CRM logs it.
#[derive(Debug, Clone)]
pub(super) struct Read {
    /// Its document id at the source.
    pub id: String,
    pub subject: String,
    pub body: String,
    pub at: i64,
    pub mail: MailMeta,
}

/// What one sync knows while it logs.
#[derive(Debug, Default)]
pub(super) struct Log {
    /// Items already logged (by this sync or an earlier one).
    logged: Option<HashSet<String>>,
    /// The contact holding each address (lower-cased), looked up once per sync.
    contacts: HashMap<String, Option<RecordId>>,
}

async fn contact_of(crm: &Crm<'_>, log: &mut Log, address: &str) -> AppResult<Option<RecordId>> {
    let address = address.trim().to_lowercase();
    if let Some(known) = log.contacts.get(&address) {
        return Ok(*known);
    }
    let mut doc = Doc::new();
    doc.insert("emails".into(), json!([address]));
    let found = match Validated::check(Kind::Contact, &doc, &[]) {
        Ok(v) => {
            let mut found = None;
            for entry in crm.key_entries(Kind::Contact, &v) {
                if !entry.kind.ends_with(".email") {
                    continue;
                }
                if let Some((_, id)) = crm
                    .state
                    .store
                    .crm_find_keys(crm.ws, &entry.kind, &[entry.index])
                    .await?
                    .into_iter()
                    .next()
                {
                    found = Some(id);
                    break;
                }
            }
            found
        }
        Err(_) => None, // not an address a contact could have
    };
    // A contact whose processing is restricted at their request gets nothing logged (mm17).
    let found = match found {
        Some(id) if crm.state.store.crm_restricted(crm.ws).await?.contains(&id) => None,
        other => other,
    };
    log.contacts.insert(address, found);
    Ok(found)
}

/// Logs the messages of a batch that involve contacts.
pub(super) async fn log_messages(
    state: &AppState,
    c: &ConnectorRow,
    messages: Vec<Read>,
    log: &mut Log,
    report: &mut Report,
) -> AppResult<()> {
    let ws = c.workspace_id;
    let crm = Crm::new(state, ws)?;
    if log.logged.is_none() {
        log.logged = Some(
            state
                .store
                .connector_records(ws, &c.id)
                .await?
                .into_iter()
                .map(|r| r.item)
                .collect(),
        );
    }
    for m in messages {
        let name = match &m.mail.message_id {
            Some(id) => format!("message-id:{id}"),
            None => format!("message:{}", m.id),
        };
        let key = item_key(state, ws, &c.id, &name)?;
        if log.logged.as_ref().is_some_and(|l| l.contains(&key)) {
            continue;
        }
        let mut about = BTreeSet::new();
        let addresses = m.mail.from.iter().chain(&m.mail.to).chain(&m.mail.cc);
        for a in addresses {
            if let Some(id) = contact_of(&crm, log, a).await? {
                about.insert(id.to_string());
            }
        }
        if about.is_empty() {
            continue;
        }
        let mut doc = Doc::new();
        doc.insert("channel".into(), json!("email"));
        doc.insert(
            "direction".into(),
            json!(if m.mail.outbound {
                "outbound"
            } else {
                "inbound"
            }),
        );
        if let Some(from) = &m.mail.from {
            doc.insert("from".into(), json!(from));
        }
        for (field, list) in [("to", &m.mail.to), ("cc", &m.mail.cc)] {
            if !list.is_empty() {
                doc.insert(field.into(), json!(list));
            }
        }
        doc.insert("subject".into(), json!(super::cut(&m.subject, 1000, true)));
        doc.insert("body".into(), json!(super::cut(&m.body, MAX_BODY, false)));
        if m.at > 0 {
            doc.insert("occurred_at".into(), json!(m.at));
        }
        doc.insert(
            "about".into(),
            Value::Array(about.into_iter().map(Value::String).collect()),
        );
        let id = created_id(state, ws, &c.id, &name)?;
        let view = match crm.create_once(Kind::Communication, id, &doc).await {
            Ok((view, _)) => view,
            Err(e) => {
                report.counts.errors += 1;
                report.problem(format!("{}: not logged in the CRM: {}", m.id, e.message));
                continue;
            }
        };
        let mut row = ConnectorRecordRow {
            workspace_id: ws,
            connector_id: c.id.clone(),
            item: key.clone(),
            record_id: id,
            created: true,
            fingerprint: String::new(),
            version: view.version,
            state_sealed: Vec::new(),
            updated_at: now_millis(),
        };
        let st = ItemState {
            href: name,
            base: Doc::new(),
            edited: false,
        };
        row.state_sealed = seal_state(state, &row, &st)?;
        if let Err(e) = state.store.connector_record_put(&row).await {
            let _ = crm.delete(Kind::Communication, id).await;
            return Err(e.into());
        }
        report.counts.logged += 1;
        if let Some(l) = log.logged.as_mut() {
            l.insert(key);
        }
    }
    Ok(())
}
