//! Files on a record's page: attaching one (a form that works without script; with it, a drop
//! zone and a progress bar) and downloading one. Both go through `meshwork_app::crm::Crm`
//! (`attach_file`, `file_content`) with the permissions the API asks: `crm.write` to attach,
//! `crm.read` to download. A file is at most 25 MiB; a larger one is refused before anything is
//! stored, with a message naming it.

use super::extract::{same_origin, InWorkspace};
use super::PageError;
use crate::auth::{csrf_matches, perm};
use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use meshwork_app::crm::{Crm, MAX_FILE_BYTES};
use meshwork_app::AppState;
use meshwork_crm::Kind;
use meshwork_domain::{ErrorCode, RecordId};

/// What a multipart body may hold besides the file: the token, the form's id, some slack.
const FORM_SLACK: usize = 64 * 1024;

/// The body limit of the attaching route.
pub const BODY_LIMIT: usize = MAX_FILE_BYTES + FORM_SLACK;

fn too_large(name: &str) -> PageError {
    PageError::new(
        ErrorCode::PayloadTooLarge,
        format!(
            "{name} is larger than {} MiB, the most a file may be; nothing was stored",
            MAX_FILE_BYTES / 1024 / 1024
        ),
    )
}

/// Attaches the posted file to the record, then shows the record's files; a refused file is
/// named on the record's page beside the upload form (413 or 422), nothing stored.
pub async fn attach(
    State(state): State<AppState>,
    page: InWorkspace<perm::CrmWrite>,
    headers: HeaderMap,
    Path((_, id)): Path<(String, String)>,
    kind: Kind,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let about: RecordId = id
        .parse()
        .map_err(|_| PageError::new(ErrorCode::RecordNotFound, "there is no such record"))?;
    let crm = Crm::new(&state, page.ws())?;
    crm.record(kind, about).await?;
    match receive(&state, &page, &crm, kind, about, form).await {
        Ok(r) => Ok(r),
        Err(PageError(e))
            if matches!(e.code, ErrorCode::InvalidField | ErrorCode::PayloadTooLarge) =>
        {
            let status =
                StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            let read = page.also::<perm::CrmRead>()?;
            // Messages name the file first, as it is spelt; others are written as sentences.
            let message = e.message;
            super::records::with_file_error(&state, &read, kind, about, message, status).await
        }
        Err(e) => Err(e),
    }
}

async fn receive(
    state: &AppState,
    page: &InWorkspace<perm::CrmWrite>,
    crm: &Crm<'_>,
    kind: Kind,
    about: RecordId,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, PageError> {
    let ws = page.ws();
    let state = state.clone();
    let mut form = form.map_err(|e| {
        PageError::new(
            ErrorCode::InvalidField,
            format!("The upload is not a form with a file: {e}"),
        )
    })?;
    let bad = |m: String| PageError::new(ErrorCode::InvalidField, m);
    let (mut csrf, mut form_id) = (String::new(), String::new());
    let mut file: Option<(String, String, Vec<u8>)> = None;
    while let Some(mut field) = form.next_field().await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large("The file")
        } else {
            bad(format!("The upload was cut short: {e}"))
        }
    })? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            // The token and the form's id come first: nothing is read for a forged post.
            if !csrf_matches(&state, &page.session.0.session_hash, &csrf)? {
                return Err(PageError::new(
                    ErrorCode::CsrfTokenInvalid,
                    "the form is out of date; reload the page and try again",
                ));
            }
            let file_name = field.file_name().unwrap_or_default().to_string();
            let content_type = field.content_type().unwrap_or_default().to_string();
            let mut bytes = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large(&file_name)
                } else {
                    bad(format!("The upload of {file_name} was cut short: {e}"))
                }
            })? {
                if bytes.len() + chunk.len() > MAX_FILE_BYTES {
                    return Err(too_large(&file_name));
                }
                bytes.extend_from_slice(&chunk);
            }
            file = Some((file_name, content_type, bytes));
            continue;
        }
        let value = field.text().await.unwrap_or_default();
        match name.as_str() {
            "csrf_token" => csrf = value,
            "form_id" => form_id = value,
            _ => {}
        }
    }
    let Some((name, content_type, bytes)) = file.filter(|(n, _, _)| !n.is_empty()) else {
        return Err(bad("Choose a file to attach".into()));
    };
    if bytes.is_empty() {
        return Err(bad(format!("{name} is empty; nothing was stored")));
    }
    let form_id: RecordId = form_id
        .parse()
        .map_err(|_| bad("The form is out of date; reload the page".into()))?;
    crm.attach_file(form_id, about, &name, &content_type, &bytes)
        .await?;
    Ok(Redirect::to(&format!("/w/{ws}/{}/{about}#files", kind.plural())).into_response())
}

/// Types a browser may be told a download is; anything else is sent as bytes. Always as an
/// attachment, never shown inside the site.
const NAMED_TYPES: &[&str] = &[
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "text/plain",
    "text/csv",
];

/// A file's content, as a download.
pub async fn download(
    State(state): State<AppState>,
    page: InWorkspace<perm::CrmRead>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let id: RecordId = id
        .parse()
        .map_err(|_| PageError::new(ErrorCode::RecordNotFound, "there is no such file"))?;
    let (name, content_type, bytes) = Crm::new(&state, page.ws())?.file_content(id).await?;
    let content_type = if NAMED_TYPES.contains(&content_type.as_str()) {
        content_type
    } else {
        "application/octet-stream".into()
    };
    let quoted: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    let disposition = format!("attachment; filename=\"{quoted}\"; filename*=UTF-8''{encoded}");
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(r)
}
