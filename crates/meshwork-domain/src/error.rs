//! The one table of error codes. Every error the API returns has a code from this table; the code
//! fixes its type and HTTP status, so clients can branch on `code` and never on message text.
//! The JSON body is `{message, code, type, link}` (the shape Meilisearch uses).

use serde::Serialize;

/// The broad class of an error, shown as `type` in the JSON body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    /// The request is wrong: fix it and retry.
    InvalidRequest,
    /// Who you are, or what you may do, stops the request.
    Auth,
    /// The server failed; the message says no more than that.
    Internal,
}

macro_rules! error_codes {
    ($($variant:ident => ($code:literal, $status:literal, $ty:ident, $doc:literal)),* $(,)?) => {
        /// Every error code the API can answer with.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $(#[doc = $doc] $variant),*
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code),* }
            }

            /// The HTTP status this code is always answered with.
            pub fn status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status),* }
            }

            pub fn error_type(self) -> ErrorType {
                match self { $(ErrorCode::$variant => ErrorType::$ty),* }
            }

            pub fn description(self) -> &'static str {
                match self { $(ErrorCode::$variant => $doc),* }
            }
        }
    };
}

error_codes! {
    MalformedRequest => ("malformed_request", 400, InvalidRequest, "The body is not valid JSON, or has a field of the wrong type or an unknown field."),
    InvalidField => ("invalid_field", 422, InvalidRequest, "A field failed validation; the message names it."),
    InvalidEmail => ("invalid_email", 422, InvalidRequest, "An email address is not valid."),
    WeakPassword => ("weak_password", 422, InvalidRequest, "The password is too short or too common."),
    AgeConfirmationRequired => ("age_confirmation_required", 422, InvalidRequest, "Sign-up requires confirming that you are 16 or over."),
    PayloadTooLarge => ("payload_too_large", 413, InvalidRequest, "The request body is larger than allowed."),
    QuotaExceeded => ("quota_exceeded", 413, InvalidRequest, "The workspace's storage quota (`quotas` in the configuration) would be passed; the message says which."),
    UnsupportedMediaType => ("unsupported_media_type", 415, InvalidRequest, "The body's content type is not accepted here."),
    RouteNotFound => ("route_not_found", 404, InvalidRequest, "No route matches this path."),
    MethodNotAllowed => ("method_not_allowed", 405, InvalidRequest, "The route exists but not with this method."),
    MissingAuthentication => ("missing_authentication", 401, Auth, "The route needs a session cookie or an `Authorization: Bearer` API key."),
    InvalidCredentials => ("invalid_credentials", 401, Auth, "The email or password is wrong."),
    MfaRequired => ("mfa_required", 401, Auth, "The account has two-factor authentication: send `totp_code` or `recovery_code`."),
    InvalidMfaCode => ("invalid_mfa_code", 401, Auth, "The one-time code or recovery code is wrong or already used."),
    InvalidSession => ("invalid_session", 401, Auth, "The session is unknown, expired or signed out."),
    InvalidApiKey => ("invalid_api_key", 401, Auth, "The API key is unknown."),
    ApiKeyExpired => ("api_key_expired", 401, Auth, "The API key has passed its expiry date."),
    ApiKeyRevoked => ("api_key_revoked", 401, Auth, "The API key was revoked."),
    InvalidToken => ("invalid_token", 400, InvalidRequest, "The link or token is unknown, used or expired."),
    CsrfTokenInvalid => ("csrf_token_invalid", 403, Auth, "A state-changing request with a session cookie needs the `X-CSRF-Token` header."),
    PermissionDenied => ("permission_denied", 403, Auth, "Your role in this workspace does not allow this."),
    AccountLocked => ("account_locked", 423, Auth, "Too many failed sign-ins: the account is locked for a while."),
    SignupClosed => ("signup_closed", 403, Auth, "Sign-up on this server is by invitation only (`auth.open_signup` is off)."),
    RateLimited => ("rate_limited", 429, Auth, "Too many requests from this address, person or API key; wait and retry."),
    WorkspaceNotFound => ("workspace_not_found", 404, InvalidRequest, "No workspace with this id that you belong to."),
    MemberNotFound => ("member_not_found", 404, InvalidRequest, "No member with this id in the workspace."),
    ApiKeyNotFound => ("api_key_not_found", 404, InvalidRequest, "No API key with this id in the workspace."),
    PictureNotFound => ("picture_not_found", 404, InvalidRequest, "No profile picture is set."),
    ReauthenticationRequired => ("reauthentication_required", 403, Auth, "A data-rights request (export, erasure, deletion) or a sensitive change (signing out sessions, granting roles, inviting an admin, exporting the whole workspace) needs a fresh proof that it is you: sign in, or send your password or a TOTP code to `POST /api/v1/me/reauthenticate`, within the last 5 minutes."),
    Suppressed => ("suppressed", 409, InvalidRequest, "The person was erased from this workspace at their request; their email or phone cannot be added again."),
    ConfirmationRequired => ("confirmation_required", 422, InvalidRequest, "A destructive action needs its confirmation parameter; the message says which."),
    EmailTaken => ("email_taken", 409, InvalidRequest, "An account with this email already exists."),
    ConcurrentChange => ("concurrent_change", 409, InvalidRequest, "The thing changed while the request ran; reload it and retry."),
    EmailNotVerified => ("email_not_verified", 403, Auth, "Confirm your email address first (see the verification mail)."),
    SessionNotFound => ("session_not_found", 404, InvalidRequest, "No session of yours has this id."),
    SupportGrantNotFound => ("support_grant_not_found", 404, InvalidRequest, "No support request with this id in the workspace."),
    InviteNotFound => ("invite_not_found", 404, InvalidRequest, "No pending invitation with this id in the workspace."),
    LastOwner => ("last_owner", 409, InvalidRequest, "A workspace must keep at least one owner."),
    AlreadyMember => ("already_member", 409, InvalidRequest, "The user is already a member of this workspace."),
    MfaAlreadyEnabled => ("mfa_already_enabled", 409, InvalidRequest, "Two-factor authentication is already on."),
    MfaNotEnabled => ("mfa_not_enabled", 409, InvalidRequest, "Two-factor authentication is not on."),
    AdminMfaRequired => ("admin_mfa_required", 403, Auth, "This workspace requires two-factor authentication of its owners and admins: turn it on in your account settings to use an admin's rights there."),
    SecurityKeyNotFound => ("security_key_not_found", 404, InvalidRequest, "No security key of yours has this id."),
    SecurityKeyExists => ("security_key_exists", 409, InvalidRequest, "This security key is registered already (to this account or another)."),
    SecurityKeysUnavailable => ("security_keys_unavailable", 409, InvalidRequest, "Security keys need `public_url` to name this server by a domain name (WebAuthn binds keys to one); the operator sets it."),
    RecordNotFound => ("record_not_found", 404, InvalidRequest, "No CRM record with this id and type in the workspace."),
    DuplicateRecord => ("duplicate_record", 409, InvalidRequest, "A record with the same email, domain or external id exists; the body's `existing` names it."),
    RecordInUse => ("record_in_use", 409, InvalidRequest, "The record is still used (a pipeline with deals, a field definition with values); the message says by what."),
    JobNotFound => ("job_not_found", 404, InvalidRequest, "No job with this id: an import of the workspace, or a background job."),
    JobNotRevertible => ("job_not_revertible", 409, InvalidRequest, "The job is still running, failed before writing, or was already reverted."),
    SourceItemNotFound => ("source_item_not_found", 404, InvalidRequest, "No document, person or group with this id in the source."),
    ConnectorNotFound => ("connector_not_found", 404, InvalidRequest, "No connector with this id in the workspace."),
    ConnectorExists => ("connector_exists", 409, InvalidRequest, "The workspace has a connector with this source name; choose another or disconnect that one."),
    InvalidQuery => ("invalid_query", 422, InvalidRequest, "A search query is too long or uses an unknown filter; the message names it."),
    InvalidFilter => ("invalid_filter", 422, InvalidRequest, "A list filter or sort names an unknown field or has a malformed value; the message names it."),
    FormNotFound => ("form_not_found", 404, InvalidRequest, "No published form with this id."),
    PartnershipNotFound => ("partnership_not_found", 404, InvalidRequest, "No partnership with this id involving this workspace."),
    PartnershipNotActive => ("partnership_not_active", 409, InvalidRequest, "The partnership is not active: it awaits the other side's acceptance, or was revoked."),
    PopulationNotFound => ("population_not_found", 404, InvalidRequest, "No population or match list with this id in the workspace."),
    InvitationInvalid => ("invitation_invalid", 422, InvalidRequest, "A partner invitation is malformed, or its server says it is unknown, used, expired or withdrawn."),
    PeerSignatureInvalid => ("peer_signature_invalid", 401, Auth, "A partner server's request is not signed with the partnership's link key, or its clock is more than five minutes off."),
    PeerRunNotFound => ("peer_run_not_found", 404, InvalidRequest, "The partner's server holds no such overlap run (finished, expired or restarted); start a new run."),
    OverlapProtocolError => ("overlap_protocol_error", 422, InvalidRequest, "A private set intersection message is malformed or out of place; the run is abandoned and nothing is revealed."),
    FileInfected => ("file_infected", 422, InvalidRequest, "The virus scanner (`clamd`) found malware in the file; it was not stored. The message names the signature."),
    ScannerUnavailable => ("scanner_unavailable", 503, Internal, "The virus scanner (`clamd`) could not check the file, so it was not stored; try again later."),
    PeerUnavailable => ("peer_unavailable", 502, Internal, "The partner's server could not be reached or refused the request; the message says how. Nothing was shared."),
    Internal => ("internal", 500, Internal, "The server failed. The error is logged; nothing about it is shown here."),
}

impl ErrorCode {
    /// Where this code is documented for humans: its row in `docs/errors.md` (shipped with the
    /// source and the release archive).
    pub fn link(self) -> String {
        format!("docs/errors.md#{}", self.as_str())
    }
}

/// A validation failure naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub code: ErrorCode,
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(code: ErrorCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            field: field.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// docs/errors.md is the human copy of the table; every code is there, with its status and
    /// type, and nothing else is.
    #[test]
    fn error_doc_matches_the_table() {
        let doc = include_str!("../../../docs/errors.md");
        let mut documented = Vec::new();
        for line in doc.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let code = cells[1].trim_matches('`');
            let c = ErrorCode::ALL
                .iter()
                .find(|c| c.as_str() == code)
                .unwrap_or_else(|| panic!("docs/errors.md lists {code}, which the table lacks"));
            assert_eq!(cells[2], c.status().to_string(), "status of {code}");
            let ty = serde_json_free_type_name(c.error_type());
            assert_eq!(cells[3], ty, "type of {code}");
            documented.push(code);
        }
        for c in ErrorCode::ALL {
            assert!(
                documented.contains(&c.as_str()),
                "docs/errors.md lacks {}",
                c.as_str()
            );
        }
    }

    fn serde_json_free_type_name(t: ErrorType) -> &'static str {
        match t {
            ErrorType::InvalidRequest => "invalid_request",
            ErrorType::Auth => "auth",
            ErrorType::Internal => "internal",
        }
    }

    #[test]
    fn codes_are_unique_and_statuses_match_types() {
        let mut seen = HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "duplicate code {}", c.as_str());
            let s = c.status();
            match c.error_type() {
                ErrorType::Internal => assert!(s >= 500),
                _ => assert!((400..500).contains(&s), "{} has status {s}", c.as_str()),
            }
        }
    }
}
