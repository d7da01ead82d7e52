//! [`Client`]: the extractor that fills the app's [`ClientInfo`] (where a request came from) from
//! the connection and the `User-Agent` header, for the audit log, rate limits and new-device
//! alerts.

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
pub use meshwork_app::actor::ClientInfo;
use std::convert::Infallible;
use std::net::SocketAddr;

/// Where a request came from.
#[derive(Debug, Clone)]
pub struct Client(pub ClientInfo);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
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
