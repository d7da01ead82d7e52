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
mod board;
mod bulk;
mod cells;
mod connectors;
mod extract;
mod fields;
mod files;
mod imports;
mod links;
mod merge;
mod partners;
mod pipelines;
mod records;
mod search;
mod settings;
mod step_up;
mod views;
mod workspace_settings;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use meshwork_app::AppState;
use std::sync::LazyLock;
use tower_http::set_header::SetResponseHeaderLayer;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A file the pages load, compiled into the binary.
struct Asset {
    /// The name it is served under, before its hash (`base.css`).
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "base.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../assets/base.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/app.js"),
    },
    Asset {
        name: "prefs.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/prefs.js"),
    },
    // htmx, vendored from the npm package `htmx.org` (BSD Zero-Clause; its licence is beside it).
    Asset {
        name: "htmx-2.0.11.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/vendor/htmx-2.0.11.min.js"),
    },
];

/// Each asset's URL, named by a hash of its content so it can be cached for a year.
static ASSET_URLS: LazyLock<Vec<String>> = LazyLock::new(|| {
    use sha2::Digest;
    ASSETS
        .iter()
        .map(|a| {
            let hash = hex::encode(&sha2::Sha256::digest(a.body)[..8]);
            let (stem, ext) = a.name.rsplit_once('.').unwrap_or((a.name, ""));
            format!("/assets/{stem}.{hash}.{ext}")
        })
        .collect()
});

/// The stylesheet's URL (templates call it).
pub fn css_url() -> &'static str {
    &ASSET_URLS[0]
}

/// The pages' own script's URL.
pub fn app_js_url() -> &'static str {
    &ASSET_URLS[1]
}

/// The script that applies a chosen theme and text size before the page paints.
pub fn prefs_js_url() -> &'static str {
    &ASSET_URLS[2]
}

/// htmx's URL.
pub fn htmx_url() -> &'static str {
    &ASSET_URLS[3]
}

async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let path = format!("/assets/{name}");
    let Some(i) = ASSET_URLS.iter().position(|u| *u == path) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, ASSETS[i].content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        ASSETS[i].body,
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
    message: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let page = ErrorPage {
            message: &self.0.message,
        };
        let mut response = match askama::Template::render(&page) {
            Ok(html) => (status, axum::response::Html(html)).into_response(),
            Err(_) => (status, self.0.message).into_response(),
        };
        response
            .extensions_mut()
            .insert(crate::refusals::Code(self.0.code.as_str()));
        response
    }
}

pub(super) use extract::same_origin;

/// Which part of a workspace a page belongs to, for its navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Contacts,
    Companies,
    Deals,
    Board,
    Search,
    Partners,
    Settings,
}

/// A link of the workspace's navigation.
#[derive(Debug)]
pub struct NavItem {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

/// The workspace a page is in: its name, navigation and the search box's text.
#[derive(Debug)]
pub struct WorkspaceNav {
    pub id: String,
    pub name: String,
    pub nav: Vec<NavItem>,
    /// What the search box shows (the query, on the search page).
    pub q: String,
    /// The person's other workspaces, for the switcher.
    pub others: Vec<(String, String)>,
}

/// What every signed-in page's frame needs: the CSRF token for its forms (sign out among
/// them) and, inside a workspace, the workspace's navigation and search box.
#[derive(Debug)]
pub struct Chrome {
    pub csrf: String,
    pub ws: Option<WorkspaceNav>,
}

impl Chrome {
    /// A page of one's account, outside any workspace.
    pub fn account(
        state: &AppState,
        session: &crate::auth::SessionUser,
    ) -> Result<Self, PageError> {
        Ok(Self {
            csrf: crate::auth::csrf_token(state, &session.session_hash)?,
            ws: None,
        })
    }

    /// A page inside the workspace `page` was authorised for.
    pub async fn workspace<P>(
        state: &AppState,
        page: &extract::InWorkspace<P>,
        section: Section,
    ) -> Result<Self, PageError> {
        let ws = page.ws();
        let name = meshwork_app::workspaces::workspace_name(state, ws).await?;
        let base = format!("/w/{ws}");
        let nav = [
            ("Overview", "", Section::Overview),
            ("Contacts", "/contacts", Section::Contacts),
            ("Companies", "/companies", Section::Companies),
            ("Deals", "/deals", Section::Deals),
            ("Board", "/board", Section::Board),
            ("Partners", "/partners", Section::Partners),
            ("Settings", "/settings", Section::Settings),
        ]
        .into_iter()
        .map(|(label, path, s)| NavItem {
            label,
            href: format!("{base}{path}"),
            current: s == section,
        })
        .collect();
        let others = meshwork_app::workspaces::list(state, page.session.0.id)
            .await?
            .into_iter()
            .filter(|w| w.id != ws.as_uuid())
            .map(|w| (w.id.to_string(), w.name))
            .collect();
        Ok(Self {
            csrf: page.session.csrf(state)?,
            ws: Some(WorkspaceNav {
                id: ws.to_string(),
                name,
                nav,
                q: String::new(),
                others,
            }),
        })
    }
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
            "/sign-in/security-key",
            axum::routing::post(accounts::sign_in_security_key),
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
        .route("/w/{ws}", get(accounts::workspace))
        .route("/w/{ws}/search", get(search::results))
        .route("/w/{ws}/search/suggest", get(search::suggest))
        .route("/w/{ws}/search/mark", axum::routing::post(search::mark))
        .route("/w/{ws}/board", get(board::board))
        .route(
            "/w/{ws}/deals/{id}/move",
            axum::routing::post(board::move_deal),
        )
        .route(
            "/w/{ws}/pipelines",
            get(pipelines::show).post(board::create_pipeline),
        )
        .route(
            "/w/{ws}/pipelines/{id}",
            axum::routing::post(pipelines::save),
        )
        .route(
            "/w/{ws}/pipelines/{id}/delete",
            axum::routing::post(pipelines::delete),
        )
        .route(
            "/w/{ws}/import",
            get(imports::new)
                .post(imports::upload)
                .layer(axum::extract::DefaultBodyLimit::max(
                    meshwork_app::import::uploads::MAX_IMPORT_BYTES as usize,
                )),
        )
        .route("/w/{ws}/import/start", axum::routing::post(imports::start))
        .route("/w/{ws}/import/{job}", get(imports::status))
        .route(
            "/w/{ws}/import/{job}/revert",
            axum::routing::post(imports::revert),
        )
        .route(
            "/w/{ws}/import/{job}/rejected.csv",
            get(imports::rejected_csv),
        )
        .route("/w/{ws}/files/{id}", get(files::download))
        .merge(records::routes())
        .merge(workspace_settings::routes())
        .merge(connectors::routes())
        .merge(partners::routes())
        .route("/settings", get(settings::settings))
        .route(
            "/settings/profile",
            axum::routing::post(settings::save_profile),
        )
        .route(
            "/settings/picture",
            get(settings::picture).post(settings::set_picture).layer(
                axum::extract::DefaultBodyLimit::max(
                    meshwork_domain::MAX_PICTURE_BYTES + 64 * 1024,
                ),
            ),
        )
        .route(
            "/settings/picture/remove",
            axum::routing::post(settings::remove_picture),
        )
        .route("/settings/mail", axum::routing::post(settings::save_mail))
        .route("/settings/export", axum::routing::post(settings::export))
        .route(
            "/settings/delete-account",
            axum::routing::post(settings::delete_account),
        )
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
            "/settings/mfa/recovery-codes",
            axum::routing::post(settings::mfa_recovery_codes),
        )
        .route("/settings/confirm", axum::routing::post(settings::confirm))
        .route(
            "/settings/security-keys/add",
            axum::routing::post(settings::security_key_add),
        )
        .route(
            "/settings/security-keys/finish",
            axum::routing::post(settings::security_key_finish),
        )
        .route(
            "/settings/security-keys/{id}/remove",
            axum::routing::post(settings::security_key_remove),
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
            "/unsubscribe",
            get(links::unsubscribe_page).post(links::unsubscribe_submit),
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
    // Assets are compressed for browsers that accept it; pages are not: a page holds the
    // session's CSRF token beside text the visitor chose (a search), which compression would
    // let an observer of the encrypted sizes guess (BREACH).
    Router::new()
        .route(
            "/assets/{name}",
            get(asset).layer(tower_http::compression::CompressionLayer::new().gzip(true)),
        )
        .merge(pages)
}
