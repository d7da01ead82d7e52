//! The durable outbox: every email Meshwork sends is first a row here, sealed with the account
//! key (addresses and bodies are personal data). A sender job (SMTP, a later issue) drains it;
//! until then mail waits safely and nothing is lost across restarts.

use crate::error::ApiResult;
use crate::state::{now_millis, AppState};
use meshwork_keyring::Aad;
use meshwork_store::MailRow;

/// A mail as written, before sealing (and after opening, for the sender and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub kind: String,
    pub to: String,
    pub subject: String,
    pub body: String,
}

fn aad<'a>(id: &'a str, field: &'a str) -> Aad<'a> {
    Aad {
        scope: "outbox",
        record: id,
        field,
    }
}

pub async fn enqueue(state: &AppState, mail: Mail) -> ApiResult<()> {
    let key = state.account_key()?;
    let id = uuid::Uuid::now_v7();
    let id_text = id.to_string();
    state
        .store
        .enqueue_mail(&MailRow {
            id,
            to_sealed: key.seal(aad(&id_text, "to"), mail.to.as_bytes()),
            subject_sealed: key.seal(aad(&id_text, "subject"), mail.subject.as_bytes()),
            body_sealed: key.seal(aad(&id_text, "body"), mail.body.as_bytes()),
            kind: mail.kind,
            created_at: now_millis(),
        })
        .await?;
    Ok(())
}

/// The unsent mail, opened.
pub async fn unsent(state: &AppState, limit: i64) -> ApiResult<Vec<Mail>> {
    let key = state.account_key()?;
    let rows = state.store.unsent_mail(limit).await?;
    rows.into_iter()
        .map(|r| {
            let id = r.id.to_string();
            let text = |field: &str, sealed: &[u8]| -> ApiResult<String> {
                Ok(key.open_str(aad(&id, field), sealed)?)
            };
            Ok(Mail {
                kind: r.kind.clone(),
                to: text("to", &r.to_sealed)?,
                subject: text("subject", &r.subject_sealed)?,
                body: text("body", &r.body_sealed)?,
            })
        })
        .collect()
}
