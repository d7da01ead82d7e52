//! The HTTP surface: every route is registered through `OpenApiRouter::routes`, so the router and
//! the OpenAPI document cannot diverge, and the route-matrix test (which reads the document)
//! sees every route.

pub mod accounts;
pub mod connectors;
pub mod contract;
pub mod crm;
pub mod crm_schemas;
pub mod forms;
pub mod imports;
pub mod jobs;
pub mod overlap;
pub mod remote;
pub mod rights;
pub mod search;
pub mod system;
pub mod workspaces;

use crate::error::{ApiError, ErrorBody};
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::Router;
use meshwork_app::state::AppState;
use meshwork_domain::ErrorCode;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// JSON bodies are small; pictures have their own, larger limit.
const JSON_BODY_LIMIT: usize = 256 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(title = "Meshwork API", description = "CRM, permission-aware workplace search and partner overlap, in one server. Errors are `{message, code, type, link}` with codes from one table.", license(name = "AGPL-3.0-only")),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody)),
    tags((name = "accounts"), (name = "rights"), (name = "workspaces"), (name = "api keys"), (name = "crm"), (name = "crm schema"), (name = "search"), (name = "connectors"), (name = "partners"), (name = "system"))
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::SESSION_COOKIE,
                "The session cookie set by sign-in. State-changing requests also need the `X-CSRF-Token` header. Scopes name the workspace permission the route needs.",
            ))),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("A workspace API key: `Authorization: Bearer mwk_…`. Scopes name the permission the route needs.")).build()),
        );
    }
}

fn crm_routes() -> OpenApiRouter<AppState> {
    macro_rules! records {
        ($router:expr, $($m:ident),*) => {
            $router$(
                .routes(routes!(crm::$m::list, crm::$m::create))
                .routes(routes!(crm::$m::get, crm::$m::update, crm::$m::delete))
            )*
        };
    }
    let router = records!(
        OpenApiRouter::new(),
        companies,
        contacts,
        deals,
        notes,
        activities,
        communications,
        files,
        form_submissions,
        pipelines,
        forms,
        custom_fields
    );
    let router = router
        .routes(routes!(crm::company_extra::bulk_update))
        .routes(routes!(crm::company_extra::bulk_delete))
        .routes(routes!(crm::company_extra::timeline))
        .routes(routes!(crm::company_extra::merge))
        .routes(routes!(crm::contact_extra::bulk_update))
        .routes(routes!(crm::contact_extra::bulk_delete))
        .routes(routes!(crm::contact_extra::timeline))
        .routes(routes!(crm::contact_extra::merge))
        .routes(routes!(crm::deal_extra::bulk_update))
        .routes(routes!(crm::deal_extra::bulk_delete))
        .routes(routes!(crm::deal_extra::timeline))
        .routes(routes!(crm::deal_extra::merge))
        .routes(routes!(crm::note_extra::bulk_update))
        .routes(routes!(crm::note_extra::bulk_delete))
        .routes(routes!(crm::activity_extra::bulk_update))
        .routes(routes!(crm::activity_extra::bulk_delete))
        .routes(routes!(crm::communication_extra::bulk_update))
        .routes(routes!(crm::communication_extra::bulk_delete))
        .routes(routes!(forms::get_form))
        .routes(routes!(forms::submit))
        .routes(routes!(crm::export::list))
        .routes(routes!(crm::export::file))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT * 8));
    let imports = OpenApiRouter::new()
        .routes(routes!(imports::start))
        .layer(DefaultBodyLimit::disable());
    let import_status = OpenApiRouter::new()
        .routes(routes!(imports::get))
        .routes(routes!(imports::revert));
    let files = OpenApiRouter::new()
        .routes(routes!(crm::put_file, crm::get_file))
        .layer(DefaultBodyLimit::max(crm::MAX_FILE_BYTES));
    router.merge(files).merge(imports).merge(import_status)
}

/// The application's routes and their OpenAPI document.
fn search_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search::search))
        .routes(routes!(search::list_sources))
        .routes(routes!(search::disconnect))
        .routes(routes!(search::put_documents))
        .routes(routes!(search::delete_document))
        .routes(routes!(search::put_principals))
        .routes(routes!(search::delete_principal))
        .routes(routes!(search::put_group, search::delete_group))
        .routes(routes!(connectors::kinds))
        .routes(routes!(connectors::list, connectors::create))
        .routes(routes!(connectors::try_settings))
        .routes(routes!(
            connectors::get,
            connectors::update,
            connectors::disconnect
        ))
        .routes(routes!(connectors::test))
        .routes(routes!(connectors::sync))
        .routes(routes!(connectors::runs))
        .routes(routes!(connectors::archive, connectors::unarchive))
        .routes(routes!(connectors::mark))
        .routes(routes!(connectors::marks))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT * 40))
}

fn overlap_routes() -> OpenApiRouter<AppState> {
    let lists = OpenApiRouter::new()
        .routes(routes!(overlap::create_match_list))
        .layer(DefaultBodyLimit::max(overlap::MAX_MATCH_LIST_BYTES));
    OpenApiRouter::new()
        .routes(routes!(
            overlap::list_populations,
            overlap::create_population
        ))
        .routes(routes!(overlap::delete_population))
        .routes(routes!(overlap::list_partnerships, overlap::invite))
        .routes(routes!(overlap::accept))
        .routes(routes!(overlap::revoke))
        .routes(routes!(overlap::set_sharing))
        .routes(routes!(overlap::run))
        .routes(routes!(overlap::view))
        .routes(routes!(overlap::export))
        .routes(routes!(remote::list, remote::invite))
        .routes(routes!(remote::join))
        .routes(routes!(remote::revoke))
        .routes(routes!(remote::set_sharing))
        .routes(routes!(remote::run))
        .routes(routes!(remote::view))
        .routes(routes!(remote::export))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .merge(lists)
}

/// The routes, the OpenAPI document, and the HTTP metrics the routes count into.
pub fn router(state: AppState) -> (Router, serde_json::Value, crate::metrics::Metrics) {
    let metrics = crate::metrics::Metrics::default();
    let pictures = OpenApiRouter::new()
        .routes(routes!(
            accounts::put_picture,
            accounts::get_picture,
            accounts::delete_picture
        ))
        .layer(DefaultBodyLimit::max(
            meshwork_domain::MAX_PICTURE_BYTES + 1,
        ));
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(system::healthz))
        .routes(routes!(system::readyz))
        .routes(routes!(system::security_txt))
        .routes(routes!(accounts::signup))
        .routes(routes!(accounts::login))
        .routes(routes!(accounts::login_security_key))
        .routes(routes!(accounts::logout))
        .routes(routes!(accounts::verify_email))
        .routes(routes!(accounts::request_reset))
        .routes(routes!(accounts::confirm_reset))
        .routes(routes!(
            accounts::me,
            accounts::update_me,
            rights::delete_me
        ))
        .routes(routes!(rights::reauthenticate))
        .routes(routes!(
            rights::mail_preferences,
            rights::set_mail_preferences
        ))
        .routes(routes!(rights::export))
        .routes(routes!(rights::erase_contact))
        .routes(routes!(rights::restriction, rights::set_restriction))
        .routes(routes!(rights::support_grants))
        .routes(routes!(rights::processing, rights::set_processing))
        .routes(routes!(rights::approve_support))
        .routes(routes!(rights::revoke_support))
        .routes(routes!(accounts::change_password))
        .routes(routes!(accounts::totp_setup))
        .routes(routes!(accounts::totp_confirm))
        .routes(routes!(accounts::totp_disable))
        .routes(routes!(accounts::replace_recovery_codes))
        .routes(routes!(
            accounts::security_keys,
            accounts::security_key_start
        ))
        .routes(routes!(accounts::security_key_finish))
        .routes(routes!(accounts::security_key_remove))
        .routes(routes!(accounts::my_audit))
        .routes(routes!(accounts::my_sessions, accounts::end_other_sessions))
        .routes(routes!(accounts::end_session))
        .routes(routes!(workspaces::list, workspaces::create))
        .routes(routes!(
            workspaces::get,
            workspaces::rename,
            workspaces::delete
        ))
        .routes(routes!(workspaces::members))
        .routes(routes!(workspaces::set_role, workspaces::remove_member))
        .routes(routes!(workspaces::security, workspaces::set_security))
        .routes(routes!(workspaces::invite))
        .routes(routes!(workspaces::revoke_invite))
        .routes(routes!(workspaces::accept))
        .routes(routes!(workspaces::list_keys, workspaces::create_key))
        .routes(routes!(workspaces::revoke_key))
        .routes(routes!(workspaces::workspace_audit))
        .routes(routes!(workspaces::changes))
        .routes(routes!(jobs::list))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .merge(crm_routes())
        .merge(search_routes())
        .merge(overlap_routes())
        .merge(pictures);
    let (router, doc) = api.split_for_parts();
    let hsts = (state.config.public_url.starts_with("https://")
        || !state.config.tls_cert.is_empty())
    .then(|| HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    let doc = contract::complete(doc);
    let doc_json = std::sync::Arc::new(doc.to_string());
    let router = router
        .merge(remote::peer_router())
        .merge(crate::web::router())
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let doc = doc_json.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        doc.as_ref().clone(),
                    )
                }
            }),
        )
        .merge(
            Router::new()
                .route(
                    "/metrics",
                    axum::routing::get(crate::metrics::on_main_listener),
                )
                .with_state((state.clone(), metrics.clone())),
        )
        .fallback(|| async {
            ApiError::new(
                ErrorCode::RouteNotFound,
                "no route matches this path; see /api/openapi.json",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this route does not accept this method; see /api/openapi.json",
            )
        })
        // A handler that panics answers the error table's 500, logged (ASVS 7.4.3).
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |panic: Box<dyn std::any::Any + Send>| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                axum::response::IntoResponse::into_response(ApiError::internal(format!(
                    "a request handler panicked: {what}"
                )))
            },
        ))
        // A JSON answer opened as a page is saved, never rendered (ASVS 14.4.2).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_DISPOSITION,
            |res: &axum::response::Response| {
                res.headers()
                    .get(header::CONTENT_TYPE)
                    .is_some_and(|t| t.as_bytes().starts_with(b"application/json"))
                    .then(|| HeaderValue::from_static("attachment; filename=\"api.json\""))
            },
        ))
        // Browsers that reached this server over HTTPS keep to it (ASVS 14.4.5).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            move |_: &axum::response::Response| hsts.clone(),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::refusals::log,
        ))
        .layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            crate::metrics::track,
        ))
        // Spans name the path only: queries can carry single-use tokens (the links in mail).
        .layer(TraceLayer::new_for_http().make_span_with(
            |req: &axum::http::Request<axum::body::Body>| {
                tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
            },
        ))
        .with_state(state);
    (router, doc, metrics)
}
