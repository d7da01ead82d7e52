//! `ApiError`: every error answer, the app's [`AppError`] mapped to its status from the one table
//! of codes in `meshwork-domain`, and the JSON extractors whose rejections answer from that table.
//! Internal failures were logged with their cause where they happened and answer a bare
//! `internal` code.

use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use meshwork_app::AppError;
use meshwork_domain::{ErrorCode, FieldError};
use serde::Serialize;

/// An error answer: the app's error, which this crate maps to a status and a JSON body.
#[derive(Debug)]
pub struct ApiError(pub AppError);

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, naming the field at fault when there is one.
    pub message: String,
    /// A stable code from the error table; branch on this.
    pub code: &'static str,
    /// `invalid_request`, `auth` or `internal`.
    #[serde(rename = "type")]
    #[schema(rename = "type", value_type = String)]
    pub kind: meshwork_domain::ErrorType,
    pub link: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(AppError::new(code, message))
    }

    /// Adds a machine-readable detail to the body (beside `message`, `code`, `type`, `link`).
    pub fn with(self, key: &str, value: serde_json::Value) -> Self {
        Self(self.0.with(key, value))
    }

    /// Logs `cause` and answers `500 internal` without revealing it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self(AppError::internal(cause))
    }

    pub fn not_found_workspace() -> Self {
        Self(AppError::not_found_workspace())
    }
}

impl From<ApiError> for AppError {
    fn from(e: ApiError) -> Self {
        e.0
    }
}

impl std::ops::Deref for ApiError {
    type Target = AppError;
    fn deref(&self) -> &AppError {
        &self.0
    }
}

/// Everything a service can fail with converts through the app's error.
macro_rules! via_app_error {
    ($($t:ty),*) => {$(
        impl From<$t> for ApiError {
            fn from(e: $t) -> Self {
                Self(AppError::from(e))
            }
        }
    )*};
}
via_app_error!(
    AppError,
    FieldError,
    meshwork_store::StoreError,
    meshwork_keyring::KeyringError,
    meshwork_keyring::OpenError
);

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => Self::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with `Content-Type: application/json`",
            ),
            JsonRejection::BytesRejection(BytesRejection::FailedToBufferBody(e))
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Self::new(
                    ErrorCode::PayloadTooLarge,
                    "the request body is larger than allowed",
                )
            }
            JsonRejection::JsonDataError(e) => Self::new(
                ErrorCode::MalformedRequest,
                format!(
                    "invalid body: {}",
                    e.body_text().trim_start_matches(
                        "Failed to deserialize the JSON body into the target type: "
                    )
                ),
            ),
            JsonRejection::JsonSyntaxError(e) => Self::new(
                ErrorCode::MalformedRequest,
                format!(
                    "the body is not valid JSON: {}",
                    e.body_text()
                        .trim_start_matches("Failed to parse the request body as JSON: ")
                ),
            ),
            other => Self::new(ErrorCode::MalformedRequest, other.body_text()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let ApiError(error) = self;
        let status =
            StatusCode::from_u16(error.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            message: error.message,
            code: error.code.as_str(),
            kind: error.code.error_type(),
            link: error.code.link(),
        };
        let code = crate::refusals::Code(body.code);
        let mut response = match error.details {
            None => (status, axum::Json(body)).into_response(),
            Some(details) => {
                let mut value = serde_json::to_value(body).unwrap_or_default();
                if let Some(map) = value.as_object_mut() {
                    map.extend(details);
                }
                (status, axum::Json(value)).into_response()
            }
        };
        response.extensions_mut().insert(code);
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// `axum::Json` with rejections answered from the error table. A number written with a zero
/// fraction (`5.0`) is taken where a whole number is expected: JSON Schema counts it as an
/// integer, so clients and generators that write it so are right to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

/// Whether a request's content type is JSON (`application/json` or `application/…+json`).
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Rewrites numbers with a zero fraction as whole numbers; says whether any changed.
fn integral_floats(v: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
                *v = Value::from(f as i64);
                true
            } else {
                false
            }
        }
        // Every item is visited (no short cut): each may need rewriting.
        Value::Array(items) => {
            let mut changed = false;
            for item in items {
                changed |= integral_floats(item);
            }
            changed
        }
        Value::Object(map) => {
            let mut changed = false;
            for item in map.values_mut() {
                changed |= integral_floats(item);
            }
            changed
        }
        _ => false,
    }
}

impl<T, S> axum::extract::FromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(Self::Rejection::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(e @ JsonRejection::JsonDataError(_)) => {
                if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                    if integral_floats(&mut value) {
                        if let Ok(v) = serde_json::from_value(value) {
                            return Ok(Json(v));
                        }
                    }
                }
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(r: axum::extract::rejection::QueryRejection) -> Self {
        Self::new(
            ErrorCode::MalformedRequest,
            format!(
                "invalid query string: {}",
                r.body_text()
                    .trim_start_matches("Failed to deserialize query string: ")
            ),
        )
    }
}

/// `axum::extract::Query` with rejections answered from the error table.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// The raw request body, with a too-large body answered from the error table.
#[derive(Debug)]
pub struct RawBody(pub axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        ErrorCode::PayloadTooLarge,
                        "the request body is larger than allowed",
                    )
                } else {
                    ApiError::new(ErrorCode::MalformedRequest, e.body_text())
                }
            })
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> Self {
        Self::new(
            ErrorCode::MalformedRequest,
            format!("invalid path: {}", r.body_text()),
        )
    }
}

/// `axum::extract::Path` with rejections answered from the error table.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

#[cfg(test)]
mod json_tests {
    #[test]
    fn numbers_with_a_zero_fraction_become_whole() {
        let mut v = serde_json::json!({"version": 3.0, "n": [1.5, 2.0], "s": "4.0"});
        assert!(super::integral_floats(&mut v));
        assert_eq!(
            v,
            serde_json::json!({"version": 3, "n": [1.5, 2], "s": "4.0"})
        );
        let mut whole = serde_json::json!({"version": 3});
        assert!(!super::integral_floats(&mut whole));
    }
}
