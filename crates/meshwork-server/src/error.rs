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
        match error.details {
            None => (status, axum::Json(body)).into_response(),
            Some(details) => {
                let mut value = serde_json::to_value(body).unwrap_or_default();
                if let Some(map) = value.as_object_mut() {
                    map.extend(details);
                }
                (status, axum::Json(value)).into_response()
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// `axum::Json` with rejections answered from the error table.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

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
