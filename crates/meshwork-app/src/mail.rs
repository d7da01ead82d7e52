//! The durable outbox and its sender. Every email Meshwork sends is first a row of the outbox,
//! sealed with the account key (addresses and bodies are personal data), written in one
//! transaction with the job that sends it ([`crate::jobs::MAIL_SEND`], whose id is the mail's).
//! The job goes to the operator's SMTP server (cl09) through lettre.
//!
//! - No SMTP server configured: the runner does not take mail jobs; mail waits, and is sent once
//!   a server is configured and Meshwork restarted.
//! - A failure about the server or its setup (refused or slow connection, TLS, credentials,
//!   relaying, 4xx) is retried with the runner's backoff; a refusal of this mail's recipient
//!   (550 to 553, not a 5.7.x policy answer) fails that mail with the server's answer and is
//!   never retried; an address with non-ASCII characters goes out with SMTPUTF8 when the server
//!   offers it, else fails.
//! - The window for a duplicate: a send cut short after the SMTP server took the message and
//!   before it answered or the outbox row was marked sent (the server killed or stopped then, or
//!   the answer later than the exchange's deadline) sends that one mail again when the job runs
//!   again. A job finding its mail marked sent does nothing, and a mail the server accepted is
//!   never retried because marking it failed.
//! - Header values are built by lettre, which encodes them; subjects also lose control characters
//!   first, so a name carrying CR/LF can never start a header of its own.

use crate::error::{AppError, AppResult};
use crate::jobs::{self, Failure, NewJob};
use crate::state::{now_millis, AppState};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use meshwork_domain::Millis;
use meshwork_keyring::Aad;
use meshwork_store::MailRow;
use std::time::Duration;

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

/// Queues a mail and its sending job in one transaction, and wakes the runner.
pub async fn enqueue(state: &AppState, mail: Mail) -> AppResult<()> {
    let key = state.account_key()?;
    let id = uuid::Uuid::now_v7();
    let id_text = id.to_string();
    let row = MailRow {
        id,
        to_sealed: key.seal(aad(&id_text, "to"), mail.to.as_bytes()),
        subject_sealed: key.seal(aad(&id_text, "subject"), mail.subject.as_bytes()),
        body_sealed: key.seal(aad(&id_text, "body"), mail.body.as_bytes()),
        kind: mail.kind,
        created_at: now_millis(),
    };
    let mut job = NewJob::new(jobs::MAIL_SEND, serde_json::json!({ "mail": id_text }));
    job.max_attempts = MAIL_ATTEMPTS;
    let job = jobs::row(state, &job, id)?;
    state.store.enqueue_mail_job(&row, &job).await?;
    state.jobs_wake.notify_one();
    Ok(())
}

/// Attempts at one mail before it fails for good: with the default backoff (30 s doubling to an
/// hour) about five hours of trying.
pub const MAIL_ATTEMPTS: i32 = 12;

/// The unsent mail, opened.
pub async fn unsent(state: &AppState, limit: i64) -> AppResult<Vec<Mail>> {
    let rows = state.store.unsent_mail(limit).await?;
    rows.iter().map(|r| open(state, r)).collect()
}

/// One mail of the outbox, opened, and when it was sent.
pub async fn get(state: &AppState, id: uuid::Uuid) -> AppResult<Option<(Mail, Option<Millis>)>> {
    match state.store.mail(id).await? {
        Some((row, sent_at)) => Ok(Some((open(state, &row)?, sent_at))),
        None => Ok(None),
    }
}

fn open(state: &AppState, r: &MailRow) -> AppResult<Mail> {
    let key = state.account_key()?;
    let id = r.id.to_string();
    let text = |field: &str, sealed: &[u8]| -> AppResult<String> {
        Ok(key.open_str(aad(&id, field), sealed)?)
    };
    Ok(Mail {
        kind: r.kind.clone(),
        to: text("to", &r.to_sealed)?,
        subject: text("subject", &r.subject_sealed)?,
        body: text("body", &r.body_sealed)?,
    })
}

/// The operator's SMTP server, as configured (`[smtp]`).
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The most one whole exchange with the server may take.
    deadline: Duration,
    /// `host:port (tls mode)`, for logs.
    pub describe: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.describe)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// The mailer of `config`, or `None` when no SMTP host is set. The password comes from
    /// `password_file` or `MESHWORK_SMTP_PASSWORD`.
    pub fn from_config(config: &crate::config::SmtpConfig) -> anyhow::Result<Option<Mailer>> {
        use anyhow::Context;
        if config.host.is_empty() {
            return Ok(None);
        }
        let from: Mailbox = config
            .from
            .parse()
            .with_context(|| format!("smtp.from {:?} is not a mail address", config.from))?;
        let tls = if config.tls == "none" {
            Tls::None
        } else {
            let mut params = TlsParameters::builder(config.host.clone());
            if !config.ca_file.is_empty() {
                let pem = std::fs::read(&config.ca_file)
                    .with_context(|| format!("reading smtp.ca_file {}", config.ca_file))?;
                params = params.add_root_certificate(Certificate::from_pem(&pem).with_context(
                    || format!("smtp.ca_file {} is not a PEM certificate", config.ca_file),
                )?);
            }
            let params = params
                .build_rustls()
                .context("setting up TLS for the SMTP server")?;
            if config.tls == "tls" {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(config.timeout_seconds as u64)));
        if !config.username.is_empty() {
            let password = if !config.password_file.is_empty() {
                let text = std::fs::read_to_string(&config.password_file).with_context(|| {
                    format!("reading smtp.password_file {}", config.password_file)
                })?;
                text.lines().next().unwrap_or_default().to_string()
            } else {
                std::env::var("MESHWORK_SMTP_PASSWORD").context(
                    "smtp.username is set but there is no password: set smtp.password_file or MESHWORK_SMTP_PASSWORD",
                )?
            };
            builder = builder.credentials(Credentials::new(config.username.clone(), password));
        }
        Ok(Some(Mailer {
            transport: builder.build(),
            from,
            deadline: Duration::from_secs(config.timeout_seconds as u64 * 4),
            describe: format!("{}:{} ({})", config.host, config.port, config.tls),
        }))
    }
}

/// A header value with control characters (CR, LF, tabs…) made spaces, so nothing a user typed
/// can end the header it is in.
fn header_text(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The kinds of mail a person may decline (pm13): everything else (verification, resets,
/// security alerts, invitations, legal notices, retention warnings) always arrives.
pub const OPTIONAL_KINDS: &[&str] = &["news"];

/// Whether a mail of `kind` is one a person may decline.
pub fn is_optional(kind: &str) -> bool {
    OPTIONAL_KINDS.contains(&kind)
}

/// The one-click unsubscribe token of an address: a keyed hash of its blind index, so the link
/// names no address and cannot be made for another one.
fn unsubscribe_token(state: &AppState, index: &[u8; 32]) -> [u8; 32] {
    use hmac::Mac;
    let key = state.keyring.server_key("unsubscribe/v1");
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key.dangerously_expose())
        .expect("HMAC takes any key");
    mac.update(index);
    mac.finalize().into_bytes().into()
}

/// The unsubscribe link of the account with this address (`List-Unsubscribe`, RFC 8058).
pub fn unsubscribe_url(state: &AppState, email: &str) -> AppResult<String> {
    let index = state.email_index(&email.trim().to_lowercase())?;
    Ok(format!(
        "{}/unsubscribe?a={}&t={}",
        state.config.public_url.trim_end_matches('/'),
        hex::encode(index),
        hex::encode(unsubscribe_token(state, &index))
    ))
}

/// The account an unsubscribe link names, when its token is right.
pub fn unsubscribe_index(state: &AppState, a: &str, t: &str) -> Option<[u8; 32]> {
    use subtle::ConstantTimeEq;
    let index: [u8; 32] = hex::decode(a).ok()?.try_into().ok()?;
    let token: [u8; 32] = hex::decode(t).ok()?.try_into().ok()?;
    bool::from(unsubscribe_token(state, &index).ct_eq(&token)).then_some(index)
}

/// The message as it goes out. `unsubscribe` (for optional mail) adds the one-click
/// unsubscribe headers of RFC 8058.
pub fn message(
    from: &Mailbox,
    mail: &Mail,
    id: uuid::Uuid,
    unsubscribe: Option<&str>,
) -> Result<Message, Failure> {
    use lettre::message::header::{HeaderName, HeaderValue};
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|e| Failure::Permanent(format!("the recipient address cannot be used: {e}")))?;
    let domain = from.email.domain();
    let mut builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(header_text(&mail.subject))
        .message_id(Some(format!("<{id}@{domain}>")))
        .header(ContentType::TEXT_PLAIN);
    if let Some(url) = unsubscribe {
        builder = builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{}>", header_text(url)),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".into(),
            ));
    }
    builder
        .body(mail.body.clone())
        .map_err(|e| Failure::Permanent(format!("the mail cannot be built: {e}")))
}

/// Whether an SMTP failure is worth another attempt. Only what is about this mail fails it for
/// good: a recipient refused with 550 to 553 (not a 5.7.x policy refusal), or an address the
/// server cannot take without SMTPUTF8. Everything about the server or its setup (refused or
/// slow connections, TLS, credentials, relaying, a 554 greeting, 4xx) is retried, so fixing the
/// configuration lets the queued mail through instead of losing it.
fn classify(e: lettre::transport::smtp::Error) -> Failure {
    let text = e.to_string();
    let code = e.status().map(|c| c.to_string()).unwrap_or_default();
    let about_this_mail = e.is_permanent()
        && matches!(code.as_str(), "550" | "551" | "552" | "553")
        && !text.contains(" 5.7.");
    if about_this_mail {
        Failure::Permanent(format!("the SMTP server refused the mail: {e}"))
    } else if e.is_client() && (text.contains("SMTPUTF8") || text.contains("8BITMIME")) {
        Failure::Permanent(format!("the mail cannot be sent to this server: {e}"))
    } else {
        Failure::Temporary(format!("the SMTP server could not take the mail: {e}"))
    }
}

/// The `mail.send` job: sends one mail of the outbox, once.
pub async fn send_job(state: &AppState, input: &serde_json::Value) -> Result<(), Failure> {
    let id = input
        .get("mail")
        .and_then(|v| v.as_str())
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
        .ok_or_else(|| Failure::Permanent("a mail job without a mail id".into()))?;
    let Some(mailer) = state.mailer.as_ref() else {
        return Err(Failure::Temporary("no SMTP server is configured".into()));
    };
    let Some((row, sent_at)) = state.store.mail(id).await.map_err(AppError::from)? else {
        return Err(Failure::Permanent(format!(
            "mail {id} is no longer in the outbox"
        )));
    };
    if sent_at.is_some() {
        return Ok(());
    }
    let mail = open(state, &row).map_err(|_| {
        Failure::Permanent("the mail cannot be opened: the account key does not open it".into())
    })?;
    let unsubscribe = if is_optional(&mail.kind) {
        // Declined since it was queued: it is not sent.
        if let Some(u) = state
            .store
            .user_by_email_index(&state.email_index(&mail.to.trim().to_lowercase())?)
            .await
            .map_err(AppError::from)?
        {
            if state
                .store
                .marketing_opt_out(u.id)
                .await
                .map_err(AppError::from)?
            {
                state
                    .store
                    .mark_mail_sent(id, now_millis())
                    .await
                    .map_err(AppError::from)?;
                tracing::info!(mail = %id, "optional mail not sent: its recipient declined it");
                return Ok(());
            }
        }
        Some(unsubscribe_url(state, &mail.to)?)
    } else {
        None
    };
    let message = message(&mailer.from, &mail, id, unsubscribe.as_deref())?;
    // lettre bounds each step by `smtp.timeout_seconds`, but not a TLS handshake that never
    // ends; the whole exchange gets a deadline of its own.
    match tokio::time::timeout(mailer.deadline, mailer.transport.send(message)).await {
        Ok(sent) => sent.map_err(classify)?,
        Err(_) => {
            return Err(Failure::Temporary(format!(
                "the SMTP server could not take the mail: no answer within {} s",
                mailer.deadline.as_secs()
            )))
        }
    };
    // The server has the mail: from here nothing may make the job send it again. Marking it
    // is retried in place; if the store stays unreachable the job still ends done (a retry
    // would send a duplicate), and the row stays unsent in the outbox.
    let mut marked = false;
    for attempt in 0..5u32 {
        match state.store.mark_mail_sent(id, now_millis()).await {
            Ok(()) => {
                marked = true;
                break;
            }
            Err(e) => {
                tracing::warn!(mail = %id, error = %e, attempt, "could not mark a sent mail");
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
        }
    }
    if !marked {
        tracing::error!(mail = %id, "a mail was sent but could not be marked sent; it is not sent again");
    }
    tracing::info!(mail = %id, kind = %mail.kind, "mail sent");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formatted(subject: &str, to: &str) -> Result<String, Failure> {
        let from: Mailbox = "Meshwork <meshwork@example.com>".parse().unwrap();
        let mail = Mail {
            kind: "invite".into(),
            to: to.into(),
            subject: subject.into(),
            body: "hello".into(),
        };
        let m = message(&from, &mail, uuid::Uuid::nil(), None)?;
        Ok(String::from_utf8(m.formatted()).unwrap())
    }

    #[test]
    fn line_breaks_in_a_subject_never_start_a_header() {
        let text = formatted(
            "You are invited to X\r\nBcc: thief@evil.test\nX-Evil: 1",
            "bob@example.com",
        )
        .unwrap();
        let head = text.split("\r\n\r\n").next().unwrap();
        for line in head.split("\r\n") {
            let l = line.to_ascii_lowercase();
            assert!(
                !l.starts_with("bcc:") && !l.starts_with("x-evil:"),
                "{head}"
            );
        }
        assert_eq!(
            head.matches("\r\nTo: ").count() + usize::from(head.starts_with("To: ")),
            1
        );
    }

    #[test]
    fn a_recipient_that_is_not_an_address_fails_for_good() {
        assert!(matches!(
            formatted("hi", "not an address"),
            Err(Failure::Permanent(_))
        ));
        assert!(matches!(
            formatted("hi", "bob@example.com, eve@evil.test"),
            Err(Failure::Permanent(_))
        ));
    }
}
