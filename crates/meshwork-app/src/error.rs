//! `AppError`: the one error every service answers with: a code from `meshwork-domain`'s table,
//! a message that names what is wrong and where, and optional details for programs. It knows no
//! transport: the HTTP edge maps the code to a status once, the CLI prints the message.
//! Internal failures are logged with their cause and carry only a bare `internal` message.

use meshwork_domain::{ErrorCode, FieldError};

#[derive(Debug)]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    /// Details for programs: `existing` for a duplicate, `errors` for several field errors.
    pub details: Option<serde_json::Map<String, serde_json::Value>>,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// Adds a machine-readable detail (beside `message` and `code`).
    pub fn with(mut self, key: &str, value: serde_json::Value) -> Self {
        self.details
            .get_or_insert_with(Default::default)
            .insert(key.to_string(), value);
        self
    }

    /// Logs `cause` and answers `internal` without revealing it.
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

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code.as_str())
    }
}

impl std::error::Error for AppError {}

impl From<FieldError> for AppError {
    fn from(e: FieldError) -> Self {
        Self::new(e.code, format!("field `{}`: {}", e.field, e.message))
    }
}

impl From<meshwork_store::StoreError> for AppError {
    fn from(e: meshwork_store::StoreError) -> Self {
        match e {
            meshwork_store::StoreError::Conflict("users.email") => Self::new(
                ErrorCode::EmailTaken,
                "field `email`: an account with this email already exists",
            ),
            meshwork_store::StoreError::Conflict("jobs.state") => Self::new(
                ErrorCode::ConcurrentChange,
                "the import was ended meanwhile (cancelled, failed or reverted); nothing more was written",
            ),
            meshwork_store::StoreError::Conflict("partnerships.pair") => Self::new(
                ErrorCode::ConcurrentChange,
                "a pending or active partnership with this workspace exists; revoke it first",
            ),
            meshwork_store::StoreError::Conflict("connector_runs.running") => Self::new(
                ErrorCode::ConcurrentChange,
                "another sync of this connector is running",
            ),
            other => Self::internal(other),
        }
    }
}

impl From<meshwork_keyring::KeyringError> for AppError {
    fn from(e: meshwork_keyring::KeyringError) -> Self {
        Self::internal(e)
    }
}

impl From<meshwork_keyring::OpenError> for AppError {
    fn from(e: meshwork_keyring::OpenError) -> Self {
        Self::internal(format!("cannot open a sealed value: {e}"))
    }
}

pub type AppResult<T> = Result<T, AppError>;
