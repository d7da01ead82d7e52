//! Public web forms of the CRM: anyone may fetch a published form's questions and submit
//! answers, without an account. A submission creates the contact named by the form's email
//! question, or updates it (dedup by normalised email, as everywhere), and is kept as a form
//! submission record about that contact, so it shows on the contact's timeline.
//!
//! Nothing is written for a refused submission: the answers are checked whole (unknown or
//! missing questions, a bad email, over-long answers) before the contact is touched.

use crate::crm::{Crm, RecordView};
use crate::error::{AppError, AppResult};
use meshwork_crm::{Doc, Kind};
use meshwork_domain::{EmailAddress, ErrorCode, RecordId, WorkspaceId};
use serde::Serialize;
use serde_json::{json, Value};

/// Longest answer accepted, in characters (as for any form submission).
const MAX_ANSWER_CHARS: usize = 10_000;

/// A published form as the public sees it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicForm {
    pub id: String,
    pub name: String,
    pub questions: Vec<PublicQuestion>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicQuestion {
    /// The answer's key in a submission.
    pub name: String,
    pub label: String,
    pub required: bool,
    /// `email` for the question that names the contact (others say nothing of where answers go).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// What a submission did.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Submitted {
    /// The form submission record.
    pub submission_id: String,
}

struct Question {
    name: String,
    label: String,
    target: Option<String>,
    required: bool,
}

fn not_found() -> AppError {
    AppError::new(ErrorCode::FormNotFound, "no published form with this id")
}

/// The published form `form` of workspace `ws` (unpublished, missing and other workspaces'
/// forms all answer `form_not_found`).
async fn load(
    state: &crate::state::AppState,
    ws: WorkspaceId,
    form: RecordId,
) -> AppResult<(Crm<'_>, Doc, Vec<Question>)> {
    if state.store.workspace(ws).await?.is_none() || !state.workspace_readable(ws) {
        return Err(not_found());
    }
    let crm = Crm::new(state, ws)?;
    let row = crm
        .record(Kind::Form, form)
        .await
        .map_err(|_| not_found())?;
    let doc = crm.open_doc(&row)?;
    if doc.get("published").and_then(Value::as_bool) != Some(true) {
        return Err(not_found());
    }
    let questions = doc
        .get("fields")
        .and_then(Value::as_array)
        .map(|qs| {
            qs.iter()
                .map(|q| Question {
                    name: q["name"].as_str().unwrap_or_default().to_string(),
                    label: q["label"].as_str().unwrap_or_default().to_string(),
                    target: q["target"].as_str().map(str::to_string),
                    required: q["required"].as_bool().unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((crm, doc, questions))
}

pub async fn public_form(
    state: &crate::state::AppState,
    ws: WorkspaceId,
    form: RecordId,
) -> AppResult<PublicForm> {
    let (_, doc, questions) = load(state, ws, form).await?;
    Ok(PublicForm {
        id: form.to_string(),
        name: doc
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        questions: questions
            .into_iter()
            .map(|q| PublicQuestion {
                kind: (q.target.as_deref() == Some("email")).then(|| "email".to_string()),
                name: q.name,
                label: q.label,
                required: q.required,
            })
            .collect(),
    })
}

fn bad(field: &str, message: impl Into<String>) -> AppError {
    AppError::new(
        ErrorCode::InvalidField,
        format!("field `{field}`: {}", message.into()),
    )
}

/// Records a submission: checks the answers, creates or updates the contact, keeps the
/// submission about it.
pub async fn submit(
    state: &crate::state::AppState,
    ws: WorkspaceId,
    form: RecordId,
    answers: Vec<(String, String)>,
) -> AppResult<(Submitted, RecordView)> {
    let (crm, _, questions) = load(state, ws, form).await?;
    state.usage.count(ws, "form.submit");
    // Check every answer before writing anything.
    let mut given = serde_json::Map::new();
    for (name, value) in answers {
        let at = format!("answers.{name}");
        if !questions.iter().any(|q| q.name == name) {
            return Err(bad(&at, "is not a question of this form"));
        }
        if given.contains_key(&name) {
            return Err(bad(&at, "is answered twice"));
        }
        if value.chars().count() > MAX_ANSWER_CHARS {
            return Err(bad(
                &at,
                format!("is longer than {MAX_ANSWER_CHARS} characters"),
            ));
        }
        if value
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
        {
            return Err(bad(&at, "holds control characters"));
        }
        let value = value.trim().to_string();
        if !value.is_empty() {
            given.insert(name, Value::String(value));
        }
    }
    for q in &questions {
        if q.required && !given.contains_key(&q.name) {
            return Err(bad(
                &format!("answers.{}", q.name),
                format!("{:?} is required", q.label),
            ));
        }
    }
    let answer_of = |target: &str| -> Option<(String, String)> {
        questions
            .iter()
            .find(|q| q.target.as_deref() == Some(target))
            .and_then(|q| {
                given
                    .get(&q.name)
                    .and_then(Value::as_str)
                    .map(|v| (q.name.clone(), v.to_string()))
            })
    };
    let (email_question, email) = answer_of("email").ok_or_else(|| {
        let q = questions
            .iter()
            .find(|q| q.target.as_deref() == Some("email"))
            .map(|q| q.name.clone())
            .unwrap_or_else(|| "email".into());
        bad(&format!("answers.{q}"), "an email address is required")
    })?;
    let email = EmailAddress::parse(&format!("answers.{email_question}"), &email)?;

    // The contact: found by its normalised email, else created.
    let mut fields = Doc::new();
    for target in ["first_name", "last_name", "title"] {
        if let Some((_, v)) = answer_of(target) {
            fields.insert(target.into(), Value::String(v));
        }
    }
    let phone = answer_of("phone").map(|(_, v)| v);
    let contact = match find_contact(&crm, &email).await? {
        Some(id) => update_contact(&crm, id, fields, phone).await?,
        None => {
            let mut doc = fields.clone();
            doc.insert("emails".into(), json!([email.normalized()]));
            if let Some(p) = &phone {
                doc.insert("phones".into(), json!([p]));
            }
            match crm.create(Kind::Contact, &doc).await {
                Ok(v) => v,
                // Someone created it meanwhile (another submission): update that one.
                Err(e) if e.code == ErrorCode::DuplicateRecord => {
                    let id = find_contact(&crm, &email).await?.ok_or(e)?;
                    update_contact(&crm, id, fields, phone).await?
                }
                Err(e) => return Err(e),
            }
        }
    };
    let mut doc = Doc::new();
    doc.insert("form".into(), Value::String(form.to_string()));
    doc.insert("answers".into(), Value::Object(given));
    doc.insert("about".into(), json!([contact.id.to_string()]));
    let submission = crm.create(Kind::FormSubmission, &doc).await?;
    Ok((
        Submitted {
            submission_id: submission.id.to_string(),
        },
        contact,
    ))
}

async fn find_contact(crm: &Crm<'_>, email: &EmailAddress) -> AppResult<Option<RecordId>> {
    let index = crm.key_index(Kind::Contact, "email", &meshwork_crm::email_key(email));
    Ok(crm
        .state
        .store
        .crm_find_keys(crm.ws, &Crm::key_kind(Kind::Contact, "email"), &[index])
        .await?
        .first()
        .map(|(_, id)| *id))
}

/// Fills the answered fields an existing contact does not have yet (a phone only when it has
/// none). Anyone who knows a contact's address can post a public form, so nothing the team
/// entered is ever overwritten: the answers are kept whole on the submission, on the contact's
/// timeline.
async fn update_contact(
    crm: &Crm<'_>,
    id: RecordId,
    answered: Doc,
    phone: Option<String>,
) -> AppResult<RecordView> {
    let row = crm.record(Kind::Contact, id).await?;
    let current = crm.open_doc(&row)?;
    let empty = |k: &str| match current.get(k) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    };
    let mut fields: Doc = answered.into_iter().filter(|(k, _)| empty(k)).collect();
    if let Some(p) = phone {
        if empty("phones") {
            fields.insert("phones".into(), json!([p]));
        }
    }
    if fields.is_empty() {
        return crm.view(&row);
    }
    crm.update(Kind::Contact, id, &fields, Some(row.version))
        .await
}
