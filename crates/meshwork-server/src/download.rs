//! A stored file sent back as a download, the same way from the API and from the pages: always
//! an attachment (never shown inside the site), typed only as one of a few harmless types
//! (anything else, `text/html` or `image/svg+xml` included, is sent as bytes), not sniffed, and
//! sandboxed should a browser render it anyway (security finding 20).

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

/// Types a browser may be told a download is; anything else is sent as bytes.
pub const NAMED_TYPES: &[&str] = &[
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "text/plain",
    "text/csv",
];

/// `bytes` as a download named `name`, of the stored type `content_type` when it is a named
/// one.
pub fn attachment(name: &str, content_type: &str, bytes: Vec<u8>) -> Response {
    let content_type = if NAMED_TYPES.contains(&content_type) {
        content_type
    } else {
        "application/octet-stream"
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
        HeaderValue::from_str(content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    r
}
