//! Scanning files with ClamAV before they are stored (OWASP ASVS 12.4.2). When `clamd` is set,
//! every attached file's bytes go to that ClamAV daemon (`INSTREAM`, through the
//! `clamav-client` crate) before anything is written: a file it names malware in is refused and
//! never stored, and a daemon that does not answer refuses the upload too (it fails closed: an
//! unscanned file is never let through). Empty, nothing is scanned.

use crate::error::{AppError, AppResult};
use crate::state::AppState;
use meshwork_domain::ErrorCode;
use std::time::Duration;

/// How long a scan may take before the upload is refused.
const SCAN_TIMEOUT: Duration = Duration::from_secs(60);

/// What the daemon said of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    /// The signature the daemon found (`Win.Test.EICAR_HDB-1`).
    Infected(String),
}

/// Reads clamd's answer to `INSTREAM`: `stream: OK`, `stream: <signature> FOUND`, or an error
/// (`INSTREAM size limit exceeded. ERROR`).
pub fn verdict(answer: &[u8]) -> Result<Verdict, String> {
    let text = String::from_utf8_lossy(answer);
    let text = text.trim_end_matches(['\0', '\n', '\r']).trim();
    let body = text.strip_prefix("stream:").map(str::trim).unwrap_or(text);
    if body == "OK" {
        return Ok(Verdict::Clean);
    }
    if let Some(signature) = body.strip_suffix(" FOUND") {
        let signature = signature.trim();
        if !signature.is_empty() {
            return Ok(Verdict::Infected(signature.to_string()));
        }
    }
    Err(if text.is_empty() {
        "no answer".to_string()
    } else {
        text.chars().take(200).collect()
    })
}

/// Scans `bytes` (the file `name`) when a scanner is set; refuses malware (`file_infected`) and
/// a scanner that fails (`scanner_unavailable`). The refusal is logged with the signature, never
/// the file's name or content.
pub async fn check(state: &AppState, name: &str, bytes: &[u8]) -> AppResult<()> {
    let address = state.config.clamd.trim();
    if address.is_empty() {
        return Ok(());
    }
    let scan = async {
        if address.starts_with('/') {
            let socket = clamav_client::tokio::Socket {
                socket_path: address,
            };
            clamav_client::tokio::scan_buffer(bytes, socket, None).await
        } else {
            let tcp = clamav_client::tokio::Tcp {
                host_address: address,
            };
            clamav_client::tokio::scan_buffer(bytes, tcp, None).await
        }
    };
    let answer = match tokio::time::timeout(SCAN_TIMEOUT, scan).await {
        Ok(Ok(answer)) => verdict(&answer),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "no verdict within {} seconds",
            SCAN_TIMEOUT.as_secs()
        )),
    };
    match answer {
        Ok(Verdict::Clean) => Ok(()),
        Ok(Verdict::Infected(signature)) => {
            tracing::warn!(%signature, bytes = bytes.len(), "an uploaded file was refused: the virus scanner found malware in it");
            Err(AppError::new(
                ErrorCode::FileInfected,
                format!(
                    "{name} holds malware ({signature}), the virus scanner says; it was not stored"
                ),
            ))
        }
        Err(why) => {
            tracing::error!(clamd = address, error = %why, "the virus scanner failed; the upload was refused");
            Err(AppError::new(
                ErrorCode::ScannerUnavailable,
                format!("{name} could not be checked by the virus scanner, so it was not stored; try again later"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamd_answers_are_read_as_clean_infected_or_failed() {
        assert_eq!(verdict(b"stream: OK\0"), Ok(Verdict::Clean));
        assert_eq!(
            verdict(b"stream: Win.Test.EICAR_HDB-1 FOUND\0"),
            Ok(Verdict::Infected("Win.Test.EICAR_HDB-1".into()))
        );
        // A file named "OK" or an answer that only mentions OK is no verdict of clean.
        assert!(verdict(b"INSTREAM size limit exceeded. ERROR\0").is_err());
        assert!(verdict(b"stream: OK FOUND ERROR\0").is_err());
        assert!(verdict(b"").is_err());
        assert!(verdict(b"stream:  FOUND\0").is_err());
    }
}
