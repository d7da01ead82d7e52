//! [`Client`]: the extractor that fills the app's [`ClientInfo`] (where a request came from) from
//! the connection (or, behind a proxy named in `trusted_proxies`, its `X-Forwarded-For`) and the
//! `User-Agent` header, for the audit log, rate limits and new-device alerts.

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
pub use meshwork_app::actor::ClientInfo;
use meshwork_app::AppState;
use std::convert::Infallible;
use std::net::SocketAddr;

/// Where a request came from.
#[derive(Debug, Clone)]
pub struct Client(pub ClientInfo);

impl FromRequestParts<AppState> for Client {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let ip = address(&parts.extensions, &parts.headers, state);
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        Ok(Self(ClientInfo { ip, user_agent }))
    }
}

/// The client's address: the connection's peer, or (behind a proxy named in `trusted_proxies`)
/// the address its `X-Forwarded-For` names.
pub fn address(
    extensions: &axum::http::Extensions,
    headers: &axum::http::HeaderMap,
    state: &AppState,
) -> Option<std::net::IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .map(|peer| {
            if state.trusted_proxies.is_empty() {
                return peer;
            }
            let forwarded: Vec<&str> = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            let forwarded = (!forwarded.is_empty()).then(|| forwarded.join(","));
            meshwork_app::actor::client_address(peer, forwarded.as_deref(), &state.trusted_proxies)
        })
}
