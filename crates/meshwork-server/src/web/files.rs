//! Files on a record's page: attaching one (a form that works without script; with it, a drop
//! zone and a progress bar) and downloading one. Both go through `meshwork_app::crm::Crm`
//! (`attach_file`, `file_content`) with the permissions the API asks: `crm.write` to attach,
//! `crm.read` to download. A file is at most 25 MiB; a larger one is refused before anything is
//! stored, with a message naming it.

use super::extract::{read_upload, InWorkspace};
use super::PageError;
use crate::auth::perm;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use meshwork_app::crm::{Crm, MAX_FILE_BYTES};
use meshwork_app::AppState;
use meshwork_crm::Kind;
use meshwork_domain::{ErrorCode, RecordId};

/// What a multipart body may hold besides the file: the token, the form's id, some slack.
const FORM_SLACK: usize = 64 * 1024;

/// The body limit of the attaching route.
pub const BODY_LIMIT: usize = MAX_FILE_BYTES + FORM_SLACK;

fn too_large(name: &str) -> String {
    format!(
        "{name} is larger than {} MiB, the most a file may be; nothing was stored",
        MAX_FILE_BYTES / 1024 / 1024
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
    let about = super::records::record_id(&id)?;
    let ws = page.ws();
    let crm = Crm::new(&state, ws)?;
    crm.record(kind, about).await?;
    let read = page.also::<perm::CrmRead>()?;
    let refuse = |message: String, status: StatusCode| {
        super::records::with_file_error(&state, &read, kind, about, message, status)
    };
    let uploaded = match read_upload(
        &state,
        &page.session.0.session_hash,
        &headers,
        form,
        "file",
        MAX_FILE_BYTES,
        too_large,
    )
    .await?
    {
        Ok(u) => u,
        Err(r) => return refuse(r.message, r.status).await,
    };
    let Some(file) = uploaded.file.filter(|f| !f.name.is_empty()) else {
        return refuse(
            "Choose a file to attach".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    if file.bytes.is_empty() {
        return refuse(
            format!("{} is empty; nothing was stored", file.name),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let Some(form_id) = uploaded
        .fields
        .get("form_id")
        .and_then(|f| f.parse::<RecordId>().ok())
    else {
        return refuse(
            "The form is out of date; reload the page".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    match crm
        .attach_file(form_id, about, &file.name, &file.content_type, &file.bytes)
        .await
    {
        Ok(_) => {
            Ok(Redirect::to(&format!("/w/{ws}/{}/{about}#files", kind.plural())).into_response())
        }
        Err(e)
            if matches!(
                e.code,
                ErrorCode::InvalidField
                    | ErrorCode::PayloadTooLarge
                    | ErrorCode::FileInfected
                    | ErrorCode::ScannerUnavailable
            ) =>
        {
            let status =
                StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            // Messages name the file first, as it is spelt.
            refuse(e.message, status).await
        }
        Err(e) => Err(e.into()),
    }
}

/// A file's content, as a download.
pub async fn download(
    State(state): State<AppState>,
    crate::client::Client(client): crate::client::Client,
    page: InWorkspace<perm::CrmRead>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let id: RecordId = id
        .parse()
        .map_err(|_| PageError::new(ErrorCode::RecordNotFound, "there is no such file"))?;
    let (name, content_type, bytes) =
        meshwork_app::crm::download_file(&state, &client, &page.member, id).await?;
    Ok(crate::download::attachment(&name, &content_type, bytes))
}
