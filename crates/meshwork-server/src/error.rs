//! `ApiError`: every error answer, built from the one table of codes in `meshwork-domain`.
//! Internal failures are logged with their cause and answered with a bare `internal` code.

use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use meshwork_domain::{ErrorCode, FieldError};
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Details for programs: `existing` for a duplicate, `errors` for several field errors.
    pub details: Option<serde_json::Map<String, serde_json::Value>>,
}

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
        Self {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// Adds a machine-readable detail to the body (beside `message`, `code`, `type`, `link`).
    pub fn with(mut self, key: &str, value: serde_json::Value) -> Self {
        self.details
            .get_or_insert_with(Default::default)
            .insert(key.to_string(), value);
        self
    }

    /// Logs `cause` and answers `500 internal` without revealing it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            ErrorCode::Internal,
            "internal error; the server log has the details",
        )
    }

    pub fn not_found_workspace() -> Self {
        Self::new(
            ErrorCode::WorkspaceNotFound,
            "no workspace with this id that you belong to",
        )
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self::new(e.code, format!("field `{}`: {}", e.field, e.message))
    }
}

impl From<meshwork_store::StoreError> for ApiError {
    fn from(e: meshwork_store::StoreError) -> Self {
        match e {
            meshwork_store::StoreError::Conflict("users.email") => Self::new(
                ErrorCode::EmailTaken,
                "field `email`: an account with this email already exists",
            ),
            meshwork_store::StoreError::Conflict("partnerships.pair") => Self::new(
                ErrorCode::ConcurrentChange,
                "a pending or active partnership with this workspace exists; revoke it first",
            ),
            other => Self::internal(other),
        }
    }
}

impl From<meshwork_keyring::KeyringError> for ApiError {
    fn from(e: meshwork_keyring::KeyringError) -> Self {
        Self::internal(e)
    }
}

impl From<meshwork_keyring::OpenError> for ApiError {
    fn from(e: meshwork_keyring::OpenError) -> Self {
        Self::internal(format!("cannot open a sealed value: {e}"))
    }
}

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
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            message: self.message,
            code: self.code.as_str(),
            kind: self.code.error_type(),
            link: self.code.link(),
        };
        match self.details {
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
