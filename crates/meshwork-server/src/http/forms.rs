//! The public side of CRM forms: fetch a published form's questions and submit answers, with
//! no account (a web page embeds them). Each client address may submit a limited number of
//! times per minute.

use crate::client::Client;
use crate::error::{ApiError, ApiResult, ErrorBody, Json, Path};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use meshwork_app::audit;
use meshwork_app::forms::{self, PublicForm, Submitted};
use meshwork_app::state::AppState;
use meshwork_domain::{ErrorCode, RecordId, WorkspaceId};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

/// A published form's questions, to render it. No account needed.
#[utoipa::path(get, path = "/api/v1/public/workspaces/{workspace_id}/forms/{form_id}", tag = "crm",
    params(("workspace_id" = uuid::Uuid, Path), ("form_id" = uuid::Uuid, Path)),
    responses((status = 200, body = PublicForm), (status = 404, body = ErrorBody)))]
pub async fn get_form(
    State(state): State<AppState>,
    Path((ws, form)): Path<(uuid::Uuid, uuid::Uuid)>,
) -> ApiResult<Json<PublicForm>> {
    Ok(Json(
        forms::public_form(&state, WorkspaceId(ws), RecordId(form)).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitInput {
    /// Question name → answer (text).
    #[schema(value_type = Object)]
    pub answers: std::collections::BTreeMap<String, String>,
}

/// Submit a published form (no account needed): as JSON `{"answers": {question: text}}`, or as
/// an HTML form post (`application/x-www-form-urlencoded`, one field per question). Creates the
/// contact named by the email question or updates it (matched by normalised email), and keeps
/// the submission on its timeline. A refused submission writes nothing.
#[utoipa::path(post, path = "/api/v1/public/workspaces/{workspace_id}/forms/{form_id}/submissions", tag = "crm",
    params(("workspace_id" = uuid::Uuid, Path), ("form_id" = uuid::Uuid, Path)),
    request_body = SubmitInput,
    responses((status = 201, body = Submitted), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn submit(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Path((ws, form)): Path<(uuid::Uuid, uuid::Uuid)>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Submitted>)> {
    if let Some(ip) = client.rate_key() {
        if state.form_limiter.check_key(&ip).is_err() {
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                "too many form submissions from this address; wait a minute and retry",
            ));
        }
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let answers: Vec<(String, String)> = if content_type
        .starts_with("application/x-www-form-urlencoded")
    {
        url::form_urlencoded::parse(&body).into_owned().collect()
    } else if content_type.starts_with("application/json") {
        let input: SubmitInput = serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(ErrorCode::MalformedRequest, format!("invalid body: {e}"))
        })?;
        input.answers.into_iter().collect()
    } else {
        return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the answers as JSON (`application/json`) or as a form post (`application/x-www-form-urlencoded`)",
            ));
    };
    let (ws, form) = (WorkspaceId(ws), RecordId(form));
    let (submitted, contact) = forms::submit(&state, ws, form, answers).await?;
    // The submitter is not a member: the entry names the form and the records, not who sent it.
    audit::record(
        &state,
        None,
        audit::Event {
            kind: "crm.form_submitted",
            workspace: Some(ws),
            actor: None,
            subject: None,
            details: json!({"form": form.to_string(), "submission": submitted.submission_id, "contact": contact.id.to_string()}),
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(submitted)))
}
