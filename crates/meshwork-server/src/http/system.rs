//! Public system routes: readiness and the vulnerability disclosure file (RFC 9116).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use meshwork_app::state::{now_millis, AppState};

/// Liveness: answers 200 while the process serves (it starts serving only once the store is
/// open and the keyring unlocked). Restart on failure; route traffic by `/readyz`.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, body = String, description = "`ok`")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: answers 200 when the store answers a read within 2 seconds, 503 otherwise (a
/// database gone or overloaded): a load balancer sends this server no traffic until it is ready
/// again, without restarting it.
#[utoipa::path(get, path = "/readyz", tag = "system", responses(
    (status = 200, body = String, description = "`ready`"),
    (status = 503, body = String, description = "Why it is not ready")))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let check = tokio::time::timeout(std::time::Duration::from_secs(2), state.store.user_count());
    match check.await {
        Ok(Ok(_)) => (StatusCode::OK, "ready".to_string()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: the store failed a read");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the store failed a read".to_string(),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the store did not answer within 2 s".to_string(),
        ),
    }
}

/// The vulnerability disclosure policy (RFC 9116), with the configured contact.
#[utoipa::path(get, path = "/.well-known/security.txt", tag = "system", responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn security_txt(State(state): State<AppState>) -> impl IntoResponse {
    let base = state.config.public_url.trim_end_matches('/');
    let expires = rfc3339_date(now_millis() / 1000 + 365 * 24 * 3600);
    let body = format!(
        "Contact: {}\nExpires: {expires}\nPreferred-Languages: en\nCanonical: {base}/.well-known/security.txt\n",
        state.config.security_contact
    );
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body)
}

/// `YYYY-MM-DDT00:00:00Z` for a Unix time (days-from-civil inverse, Howard Hinnant's algorithm).
pub fn rfc3339_date(unix_secs: i64) -> String {
    let z = unix_secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T00:00:00Z")
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_format_as_rfc3339() {
        assert_eq!(super::rfc3339_date(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339_date(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339_date(1_795_305_600), "2026-11-22T00:00:00Z");
    }
}
