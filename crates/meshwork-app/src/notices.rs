//! Operator notices (mm08, cl16): a breach notice to the people of an affected workspace, and a
//! notice of a material policy change to every user. Both are legal notices: they go to every
//! recipient whatever their mail preferences, through the durable outbox (so a server without
//! SMTP sends them once one is configured), and each sending is recorded in the audit log (the
//! workspace's for a breach).
//!
//! Recipients are accounts whose email is **verified**: an address nobody confirmed may not be
//! the account's owner's, and a notice there could tell a stranger about the account. The answer
//! counts the accounts left out for that reason, so the operator can reach them another way.

use crate::audit;
use crate::error::{AppError, AppResult};
use crate::mail::{self, Mail};
use crate::state::AppState;
use meshwork_domain::{ErrorCode, UserId, WorkspaceId};
use serde::Serialize;

/// The longest subject.
pub const MAX_SUBJECT: usize = 200;
/// The longest body.
pub const MAX_BODY: usize = 100_000;

/// Who a notice goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// A breach: every member of the affected workspace.
    Breach(WorkspaceId),
    /// A policy change: every account.
    Everyone,
    /// Product news (optional mail, pm13): every account that has not declined it.
    News,
}

impl Audience {
    fn mail_kind(self) -> &'static str {
        match self {
            Audience::Breach(_) => "notice_breach",
            Audience::Everyone => "notice_policy_change",
            Audience::News => "news",
        }
    }
}

/// What sending did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sent {
    /// Notices queued in the outbox (one per recipient).
    pub queued: usize,
    /// Accounts left out: their email is not verified.
    pub unverified: usize,
    /// Accounts left out: they declined this kind of mail (news only).
    pub declined: usize,
}

fn check(subject: &str, body: &str) -> AppResult<()> {
    let bad = |field: &str, why: &str| {
        Err(AppError::new(
            ErrorCode::InvalidField,
            format!("field `{field}`: {why}"),
        ))
    };
    if subject.trim().is_empty() {
        return bad("subject", "a notice needs a subject");
    }
    if subject.chars().count() > MAX_SUBJECT || subject.chars().any(char::is_control) {
        return bad(
            "subject",
            &format!("one line of at most {MAX_SUBJECT} characters"),
        );
    }
    if body.trim().is_empty() {
        return bad("body", "a notice needs a text");
    }
    if body.len() > MAX_BODY {
        return bad("body", &format!("at most {MAX_BODY} bytes"));
    }
    Ok(())
}

/// The recipients' accounts: (id, verified email), and how many were left out (unverified,
/// declined).
async fn recipients(
    state: &AppState,
    audience: Audience,
) -> AppResult<(Vec<(UserId, String)>, usize, usize)> {
    let mut users = Vec::new();
    match audience {
        Audience::Breach(ws) => {
            if state.store.workspace(ws).await?.is_none() {
                return Err(AppError::new(
                    ErrorCode::WorkspaceNotFound,
                    format!("no workspace {ws}"),
                ));
            }
            for m in state.store.members(ws).await? {
                if let Some(u) = state.store.user(m.user_id).await? {
                    users.push(u);
                }
            }
        }
        Audience::Everyone | Audience::News => {
            let mut after = None;
            loop {
                let page = state.store.users_after(after, 1000).await?;
                let Some(last) = page.last() else { break };
                after = Some(last.id);
                users.extend(page);
            }
        }
    }
    let mut out = Vec::new();
    let mut unverified = 0;
    let mut declined = 0;
    for u in users {
        if audience == Audience::News && state.store.marketing_opt_out(u.id).await? {
            declined += 1;
        } else if u.email_verified {
            out.push((
                u.id,
                state.open_account_str(u.id, "email", &u.email_sealed)?,
            ));
        } else {
            unverified += 1;
        }
    }
    Ok((out, unverified, declined))
}

/// Sends a notice to its audience (or, with `dry_run`, only counts them).
pub async fn send(
    state: &AppState,
    audience: Audience,
    subject: &str,
    body: &str,
    dry_run: bool,
) -> AppResult<Sent> {
    check(subject, body)?;
    let (to, unverified, declined) = recipients(state, audience).await?;
    let sent = Sent {
        queued: to.len(),
        unverified,
        declined,
    };
    if dry_run {
        return Ok(sent);
    }
    let footer = match audience {
        Audience::Breach(_) => "You receive this notice because you are a member of the affected workspace. It is sent to every member, whatever their mail preferences.",
        Audience::Everyone => "You receive this notice because you have an account on this Meshwork server. It is sent to every user, whatever their mail preferences.",
        Audience::News => "",
    };
    for (_, email) in &to {
        let footer = match audience {
            Audience::News => format!("You receive product news from this Meshwork server. To receive no more, open {} (or change your mail preferences in settings). Mail about your account and its security still arrives.", mail::unsubscribe_url(state, email)?),
            _ => footer.to_string(),
        };
        mail::enqueue(
            state,
            Mail {
                kind: audience.mail_kind().into(),
                to: email.clone(),
                subject: subject.trim().to_string(),
                body: format!("{}\n\n--\n{footer}\n", body.trim_end()),
            },
        )
        .await?;
    }
    let (kind, workspace) = match audience {
        Audience::Breach(ws) => ("notice.breach", Some(ws)),
        Audience::Everyone => ("notice.policy_change", None),
        Audience::News => ("notice.news", None),
    };
    audit::record(
        state,
        None,
        audit::Event {
            kind,
            workspace,
            actor: None,
            subject: None,
            details: serde_json::json!({
                "subject": subject.trim(),
                "recipients": sent.queued,
                "unverified_left_out": sent.unverified,
                "declined_left_out": sent.declined,
                "by": "operator (meshwork notify)",
            }),
        },
    )
    .await?;
    Ok(sent)
}
