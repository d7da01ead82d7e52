//! The HTTP transport of connectors that speak HTTP (CardDAV), plugged into `meshwork-app` by
//! the server and the CLI: `meshwork-app` and `meshwork-connectors` know no HTTP client.
//!
//! reqwest over rustls: certificates are checked against the system's roots; at most five
//! redirects are followed (reqwest drops the credentials on a redirect to another host); no
//! proxy is used; a connection must open within 10 s and a request end within 2 minutes; an
//! answer is read up to the request's `max_answer` bytes, never whole before that check.

use meshwork_connectors::{HttpAnswer, HttpError, HttpRequest, HttpTransport};
use std::sync::Arc;
use std::time::Duration;

/// The transport.
#[derive(Debug, Clone)]
pub struct ConnectorHttp {
    client: reqwest::Client,
}

impl ConnectorHttp {
    pub fn new() -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .redirect(reqwest::redirect::Policy::limited(5))
            .no_proxy()
            .user_agent(concat!(
                "Meshwork/",
                env!("CARGO_PKG_VERSION"),
                " connectors"
            ))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { client })
    }

    /// The transport, shared.
    pub fn shared() -> Result<Arc<dyn HttpTransport>, String> {
        Ok(Arc::new(Self::new()?))
    }
}

/// An error with its causes ("error sending request: connection refused").
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let c_s = c.to_string();
        if !s.contains(&c_s) {
            s.push_str(": ");
            s.push_str(&c_s);
        }
        cause = c.source();
    }
    s
}

#[async_trait::async_trait]
impl HttpTransport for ConnectorHttp {
    async fn send(&self, r: HttpRequest<'_>) -> Result<HttpAnswer, HttpError> {
        let method = reqwest::Method::from_bytes(r.method.as_bytes())
            .map_err(|_| HttpError::Unreachable(format!("{:?} is not an HTTP method", r.method)))?;
        let mut req = self.client.request(method, r.url.clone()).body(r.body);
        for (k, v) in r.headers {
            req = req.header(k, v);
        }
        if let Some((user, password)) = r.basic_auth {
            req = req.basic_auth(user, Some(password));
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| HttpError::Unreachable(chain(&e)))?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| HttpError::Unreachable(chain(&e)))?
        {
            if body.len() + chunk.len() > r.max_answer {
                return Err(HttpError::TooLarge(r.max_answer));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpAnswer { status, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_port_is_unreachable_and_named() {
        let http = ConnectorHttp::new().unwrap();
        let url: reqwest::Url = "http://127.0.0.1:1/".parse().unwrap();
        let e = http
            .send(HttpRequest {
                method: "PROPFIND",
                url: &url,
                headers: vec![],
                basic_auth: None,
                body: String::new(),
                max_answer: 10,
            })
            .await
            .unwrap_err();
        assert!(
            matches!(e, HttpError::Unreachable(ref m) if m.contains("onnect")),
            "{e}"
        );
    }
}
