//! Pages: server-rendered HTML beside the JSON API, calling the same `meshwork-app` services.
//! Today these are the pages the links in Meshwork's mail open (email verification, password
//! reset, invitations); the web app grows here, one module per page, with its templates under
//! `templates/` in the same shape.
//!
//! Every page answers with a strict Content-Security-Policy (no script at all, styles only from
//! this server, forms only to this server, never framed) and `Cache-Control: no-store` (pages
//! carry single-use tokens). Assets are compiled into the binary and named by their content
//! hash, so they can be cached for a year.

mod accounts;
mod links;
mod settings;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use meshwork_app::AppState;
use std::sync::LazyLock;
use tower_http::set_header::SetResponseHeaderLayer;

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const BASE_CSS: &str = include_str!("../../assets/base.css");

/// The stylesheet's URL, named by a hash of its content.
pub static CSS_URL: LazyLock<String> = LazyLock::new(|| {
    use sha2::Digest;
    let hash = hex::encode(&sha2::Sha256::digest(BASE_CSS.as_bytes())[..8]);
    format!("/assets/base.{hash}.css")
});

async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    if format!("/assets/{name}") != *CSS_URL {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        BASE_CSS,
    )
        .into_response()
}

/// An error on a page: a page that says what happened and what to do, never a JSON body.
/// Internal failures were logged where they happened and say only that.
#[derive(Debug)]
pub struct PageError(pub meshwork_app::AppError);

impl PageError {
    pub fn new(code: meshwork_domain::ErrorCode, message: impl Into<String>) -> Self {
        Self(meshwork_app::AppError::new(code, message))
    }
}

impl<E: Into<meshwork_app::AppError>> From<E> for PageError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

#[derive(askama::Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    css: &'a str,
    message: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let page = ErrorPage {
            css: CSS_URL.as_str(),
            message: &self.0.message,
        };
        match askama::Template::render(&page) {
            Ok(html) => (status, axum::response::Html(html)).into_response(),
            Err(_) => (status, self.0.message).into_response(),
        }
    }
}

/// Forms are posted from this server's own pages: a browser that says the request comes from
/// another site is refused (`Sec-Fetch-Site`, or `Origin` where that is missing).
pub(super) fn same_origin(headers: &axum::http::HeaderMap) -> Result<(), PageError> {
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
            meshwork_domain::ErrorCode::CsrfTokenInvalid,
            "this form was posted from another site",
        ));
    }
    Ok(())
}

/// The pages and their assets.
pub fn router() -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(accounts::home))
        .route(
            "/sign-in",
            get(accounts::sign_in_page).post(accounts::sign_in_submit),
        )
        .route(
            "/sign-up",
            get(accounts::sign_up_page).post(accounts::sign_up_submit),
        )
        .route(
            "/forgot-password",
            get(accounts::forgot_page).post(accounts::forgot_submit),
        )
        .route("/sign-out", axum::routing::post(accounts::sign_out))
        .route(
            "/workspaces",
            axum::routing::post(accounts::create_workspace),
        )
        .route("/w/{id}", get(accounts::workspace))
        .route("/settings", get(settings::settings))
        .route(
            "/settings/password",
            axum::routing::post(settings::change_password),
        )
        .route(
            "/settings/mfa/setup",
            axum::routing::post(settings::mfa_setup),
        )
        .route(
            "/settings/mfa/confirm",
            axum::routing::post(settings::mfa_confirm),
        )
        .route(
            "/settings/mfa/disable",
            axum::routing::post(settings::mfa_disable),
        )
        .route(
            "/settings/sessions/end-others",
            axum::routing::post(settings::end_other_sessions),
        )
        .route(
            "/settings/sessions/{id}/end",
            axum::routing::post(settings::end_session),
        )
        .route(
            "/verify-email",
            get(links::verify_email_page).post(links::verify_email_submit),
        )
        .route(
            "/reset-password",
            get(links::reset_page).post(links::reset_submit),
        )
        .route(
            "/invites/accept",
            get(links::invite_page).post(links::invite_submit),
        )
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ));
    Router::new()
        .route("/assets/{name}", get(asset))
        .merge(pages)
}
