//! What every page checks, as extractors, so no handler can forget it (the pages' side of
//! `crate::auth`):
//!
//! - [`SignedIn`]: the signed-in person; anyone else is sent to sign in and brought back.
//! - [`InWorkspace<P>`]: a member of the path's `{ws}` whose role allows `P` (checked by
//!   [`Member::of`], as the API's `Authorized<P>` checks); outsiders get the same "not found" as
//!   for a workspace that does not exist.
//! - [`Posted<T>`]: a form posted by the signed-in person, from this site (`Sec-Fetch-Site` or
//!   `Origin`), carrying the session's CSRF token; only then is `T` read from it.

use super::PageError;
use crate::auth::{csrf_matches, csrf_token, PageSession, RequiredPermission, SessionUser};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use axum::response::{IntoResponse, Redirect, Response};
use meshwork_app::actor::Member;
use meshwork_app::{AppError, AppState};
use meshwork_domain::{ErrorCode, WorkspaceId};
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

/// The signed-in person of a page.
#[derive(Debug, Clone)]
pub struct SignedIn(pub SessionUser);

impl SignedIn {
    /// The session's CSRF token, for the forms the page shows.
    pub fn csrf(&self, state: &AppState) -> Result<String, PageError> {
        Ok(csrf_token(state, &self.0.session_hash)?)
    }
}

/// Where to come back to after signing in: the page asked for, or for a form post, the page the
/// form was on (the `Referer`, sent for this site's own requests only).
fn come_back_to(parts: &Parts) -> String {
    if parts.method == Method::GET || parts.method == Method::HEAD {
        return parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
    }
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    parts
        .headers
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .filter(|r| host.is_some_and(|h| r.authority() == h))
        .map(|r| match r.query() {
            Some(q) => format!("{}?{q}", r.path()),
            None => r.path().to_string(),
        })
        .unwrap_or_else(|| "/".into())
}

/// The redirect to sign-in that comes back to `here`.
pub fn sign_in_first(here: &str) -> Response {
    let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
    Redirect::to(&format!("/sign-in?next={next}")).into_response()
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        if let Some(s) = parts.extensions.get::<SessionUser>() {
            return Ok(Self(s.clone()));
        }
        let PageSession(session) = PageSession::from_request_parts(parts, state)
            .await
            .map_err(|e| PageError::from(e).into_response())?;
        match session {
            Some(s) => {
                parts.extensions.insert(s.clone());
                Ok(Self(s))
            }
            None if parts.headers.contains_key("hx-request") => {
                // A part of a page asked for by htmx: the whole page goes to sign-in (and comes
                // back to the page, not to the part).
                let here = parts
                    .headers
                    .get("hx-current-url")
                    .and_then(|u| u.to_str().ok())
                    .and_then(|u| url::Url::parse(u).ok())
                    .filter(|u| {
                        let host = parts
                            .headers
                            .get(header::HOST)
                            .and_then(|h| h.to_str().ok());
                        host.is_some_and(|h| u.authority() == h)
                    })
                    .map(|u| match u.query() {
                        Some(q) => format!("{}?{q}", u.path()),
                        None => u.path().to_string(),
                    })
                    .unwrap_or_else(|| "/".into());
                let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
                Err((
                    [("hx-redirect", format!("/sign-in?next={next}"))],
                    axum::http::StatusCode::UNAUTHORIZED,
                )
                    .into_response())
            }
            None => Err(sign_in_first(&come_back_to(parts))),
        }
    }
}

/// A member of the path's workspace (`{ws}`) holding permission `P`.
#[derive(Debug)]
pub struct InWorkspace<P> {
    pub member: Member,
    pub session: SignedIn,
    _permission: PhantomData<P>,
}

impl<P> InWorkspace<P> {
    pub fn ws(&self) -> WorkspaceId {
        self.member.workspace
    }

    /// The same member, checked for another permission (a page that wrote shows itself again
    /// with what reading needs).
    pub fn also<Q: RequiredPermission>(&self) -> Result<InWorkspace<Q>, PageError> {
        if let Err(e) = self.member.require(Q::PERMISSION) {
            tracing::warn!(caller = %format!("user {}", self.session.0.id), ws = %self.member.workspace, permission = %Q::PERMISSION, code = e.code.as_str(), "access refused");
            return Err(PageError(e));
        }
        Ok(InWorkspace {
            member: self.member.clone(),
            session: self.session.clone(),
            _permission: PhantomData,
        })
    }
}

impl<P: RequiredPermission> FromRequestParts<AppState> for InWorkspace<P> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let session = SignedIn::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| PageError(AppError::internal("a workspace page without {ws}")))
            .map_err(IntoResponse::into_response)?;
        let ws: WorkspaceId = params
            .iter()
            .find(|(k, _)| *k == "ws")
            .and_then(|(_, v)| v.parse().ok())
            .ok_or_else(|| PageError(AppError::not_found_workspace()).into_response())?;
        let member = Member::of(
            state,
            session.0.id,
            session.0.session_hash,
            ws,
            P::PERMISSION,
        )
        .await
        .map_err(|e| {
            if matches!(
                e.code,
                ErrorCode::WorkspaceNotFound | ErrorCode::PermissionDenied | ErrorCode::AdminMfaRequired
            ) {
                tracing::warn!(caller = %format!("user {}", session.0.id), %ws, permission = %P::PERMISSION, code = e.code.as_str(), "access refused");
            }
            PageError(e).into_response()
        })?;
        Ok(Self {
            member,
            session,
            _permission: PhantomData,
        })
    }
}

/// Forms are posted from this server's own pages: a browser that says the request comes from
/// another site is refused (`Sec-Fetch-Site`, or `Origin` where that is missing).
pub fn same_origin(headers: &HeaderMap) -> Result<(), PageError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let cross = match header("sec-fetch-site") {
        Some(site) => !matches!(site, "same-origin" | "none"),
        None => match header("origin") {
            None => false,
            Some("null") => true,
            Some(origin) => origin.split_once("://").map(|(_, h)| h) != header("host"),
        },
    };
    if cross {
        return Err(PageError::new(
            ErrorCode::CsrfTokenInvalid,
            "this form was posted from another site",
        ));
    }
    Ok(())
}

#[derive(serde::Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf_token: String,
}

/// A form with nothing but its CSRF token (a button).
#[derive(Debug, serde::Deserialize)]
pub struct CsrfOnly {}

/// A form posted by the signed-in person from this site with the session's CSRF token.
#[derive(Debug)]
pub struct Posted<T>(pub SignedIn, pub T);

/// The largest form a page posts (file uploads have their own routes and limits).
const FORM_LIMIT: usize = 1024 * 1024;

impl<T: DeserializeOwned> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let session = SignedIn::from_request_parts(&mut parts, state).await?;
        same_origin(&parts.headers).map_err(IntoResponse::into_response)?;
        let bytes = axum::body::to_bytes(body, FORM_LIMIT).await.map_err(|_| {
            PageError::new(ErrorCode::PayloadTooLarge, "the form is too large").into_response()
        })?;
        let csrf: CsrfField = serde_urlencoded::from_bytes(&bytes).map_err(|e| bad_form(&e))?;
        let fresh = csrf_matches(state, &session.0.session_hash, &csrf.csrf_token)
            .map_err(|e| PageError::from(e).into_response())?;
        if !fresh {
            return Err(PageError::new(
                ErrorCode::CsrfTokenInvalid,
                "the form is out of date; reload the page and try again",
            )
            .into_response());
        }
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|e| bad_form(&e))?;
        Ok(Self(session, form))
    }
}

fn bad_form(e: &serde_urlencoded::de::Error) -> Response {
    PageError::new(
        ErrorCode::InvalidField,
        format!("the form is malformed: {e}"),
    )
    .into_response()
}

/// A multipart form with one file, read whole into memory (see [`read_upload`]).
#[derive(Debug, Default)]
pub struct Uploaded {
    /// Its text fields, the CSRF token among them.
    pub fields: std::collections::HashMap<String, String>,
    /// The file as the browser named and typed it; `None` when the form had no file.
    pub file: Option<UploadedFile>,
}

#[derive(Debug)]
pub struct UploadedFile {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Why an upload was not read, for the page: what to say, and the status (413 when it was too
/// large, 422 otherwise).
#[derive(Debug)]
pub struct UploadRefused {
    pub message: String,
    pub status: axum::http::StatusCode,
}

impl UploadRefused {
    fn new(message: String) -> Self {
        Self {
            message,
            status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
    fn too_large(message: String) -> Self {
        Self {
            message,
            status: axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        }
    }
}

/// Reads a multipart form posted by the signed-in person (`session_hash`) from this site: its
/// text fields, then the file in `file_field`, at most `max` bytes. The CSRF token must come
/// before the file, so nothing of a forged post's file is read (a forged post is an error
/// page). A problem the person can fix (too large, cut short, not a form) is the inner `Err`,
/// for the page: `too_large` says it for a file name.
pub async fn read_upload(
    state: &AppState,
    session_hash: &[u8; 32],
    headers: &HeaderMap,
    form: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
    file_field: &str,
    max: usize,
    too_large: impl Fn(&str) -> String,
) -> Result<Result<Uploaded, UploadRefused>, PageError> {
    same_origin(headers)?;
    let Ok(mut form) = form else {
        return Ok(Err(UploadRefused::new(
            "The upload is not a form with a file; choose the file again".into(),
        )));
    };
    let cut_short = |name: &str, e: axum::extract::multipart::MultipartError| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            UploadRefused::too_large(too_large(name))
        } else {
            UploadRefused::new(format!("The upload of {name} was cut short: {e}"))
        }
    };
    let mut out = Uploaded::default();
    loop {
        let mut field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Ok(Err(cut_short("the file", e))),
        };
        let name = field.name().unwrap_or_default().to_string();
        if name != file_field {
            let value = field.text().await.unwrap_or_default();
            out.fields.insert(name, value);
            continue;
        }
        let token = out
            .fields
            .get("csrf_token")
            .map(String::as_str)
            .unwrap_or("");
        if !csrf_matches(state, session_hash, token)? {
            return Err(PageError::new(
                ErrorCode::CsrfTokenInvalid,
                "the form is out of date; reload the page and try again",
            ));
        }
        let file_name = field.file_name().unwrap_or_default().to_string();
        let content_type = field.content_type().unwrap_or_default().to_string();
        let mut bytes = Vec::new();
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > max {
                        return Ok(Err(UploadRefused::too_large(too_large(&file_name))));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Ok(Err(cut_short(&file_name, e))),
            }
        }
        out.file = Some(UploadedFile {
            name: file_name,
            content_type,
            bytes,
        });
    }
    Ok(Ok(out))
}
