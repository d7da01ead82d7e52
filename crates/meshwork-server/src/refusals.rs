//! Every refused request is logged (OWASP ASVS 7.1.3, 7.2.1, 7.2.2): a failed authentication
//! (401), an access-control refusal (403, and the 404 a workspace answers to who is not in
//! it), a CSRF check and a rate limit (429) at `warn`; other refusals of the request (400,
//! 404, 405, 413, 415, 422) at `info`. A line names the route template (never the path or
//! query, which can carry single-use tokens), the method, the status, the error code and the
//! client's address; never a header, a body or a credential. Who was refused is logged where
//! that is known, by the authorising extractors (`auth.rs`, `web/extract.rs`).

use crate::metrics::method_label;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use meshwork_app::AppState;

/// The error code of an error answer, put in its extensions by `ApiError` and `PageError` for
/// this log.
#[derive(Debug, Clone, Copy)]
pub struct Code(pub &'static str);

/// How loud a refusal is: `Some(true)` for `warn` (what an attack looks like), `Some(false)`
/// for `info`, `None` for an answer that is not a refusal.
pub fn is_warning(status: u16, code: &str) -> Option<bool> {
    match status {
        401 | 403 | 429 => Some(true),
        _ if code == "csrf_token_invalid" || code == "workspace_not_found" => Some(true),
        400..=499 => Some(false),
        _ => None,
    }
}

/// The middleware.
pub async fn log(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let method = method_label(req.method());
    let client = crate::client::address(req.extensions(), req.headers(), &state);
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let code = response.extensions().get::<Code>().map_or("", |c| c.0);
    if let Some(warning) = is_warning(status, code) {
        let route = route.as_deref().unwrap_or("unmatched");
        let client = client.map(|ip| ip.to_string()).unwrap_or_default();
        if warning {
            tracing::warn!(route, method, status, code, client, "request refused");
        } else {
            tracing::info!(route, method, status, code, client, "request refused");
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authentication_and_access_refusals_warn_and_other_refusals_inform() {
        for (status, code) in [
            (401, "invalid_api_key"),
            (403, "permission_denied"),
            (429, "rate_limited"),
            (403, "csrf_token_invalid"),
            (404, "workspace_not_found"),
        ] {
            assert_eq!(is_warning(status, code), Some(true), "{status} {code}");
        }
        for (status, code) in [(404, "route_not_found"), (422, "invalid_field"), (415, "")] {
            assert_eq!(is_warning(status, code), Some(false), "{status} {code}");
        }
        for status in [200, 201, 204, 302, 500, 503] {
            assert_eq!(is_warning(status, ""), None, "{status}");
        }
    }
}
