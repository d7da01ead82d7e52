//! Findings of fuzzing the API against its OpenAPI contract (issue 28, `docs/hardening.md`),
//! each with the regression test named after it. The contract itself is checked in
//! `startup::the_openapi_contract_declares_errors_links_and_constraints`.

use super::common::*;
use crate::server_test;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Finding 3: approving or revoking a support request that does not exist answered 422
/// `invalid_field`; a path naming nothing is 404.
async fn finding_3_an_unknown_support_request_is_not_found(s: &mut TestServer) {
    let me = s.signup("Kim", "kim@example.com").await;
    let ws = s.create_workspace(&me, "Acme").await;
    for action in ["approve", "revoke"] {
        let (status, body) = s
            .call(
                Method::POST,
                &format!(
                    "/api/v1/workspaces/{ws}/support-grants/{}/{action}",
                    uuid_v4()
                ),
                &As::User(&me),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{action}: {body}");
        assert_eq!(body["code"], "support_grant_not_found");
    }
}
server_test!(finding_3_an_unknown_support_request_is_not_found);

/// Finding 4: a jobs list `limit` out of range was silently clamped, though the contract says
/// 1 to 200; it is refused like every other list's.
async fn finding_4_a_jobs_limit_out_of_range_is_refused(s: &mut TestServer) {
    let me = s.signup("Kim", "kim@example.com").await;
    let ws = s.create_workspace(&me, "Acme").await;
    for limit in ["0", "201", "-1"] {
        let (status, body) = s
            .call(
                Method::GET,
                &format!("/api/v1/workspaces/{ws}/jobs?limit={limit}"),
                &As::User(&me),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{limit}: {body}");
        assert!(body["message"].as_str().unwrap().contains("limit"));
    }
    let (status, _) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/jobs?limit=200"),
            &As::User(&me),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}
server_test!(finding_4_a_jobs_limit_out_of_range_is_refused);

/// Finding 5: archiving a document took any path segment as its id (a 600-character one was
/// stored); an id is 1 to 512 characters, as everywhere else in a source.
async fn finding_5_an_archived_documents_id_is_checked(s: &mut TestServer) {
    let me = s.signup("Kim", "kim@example.com").await;
    let ws = s.create_workspace(&me, "Acme").await;
    let long = "d".repeat(600);
    for method in [Method::POST, Method::DELETE] {
        let (status, body) = s
            .call(
                method.clone(),
                &format!("/api/v1/workspaces/{ws}/sources/files/archived/{long}"),
                &As::User(&me),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{method}: {body}");
        assert!(body["message"].as_str().unwrap().contains("document_id"));
    }
}
server_test!(finding_5_an_archived_documents_id_is_checked);

/// Finding 6: a whole number written with a zero fraction (`"version": 1.0`), which JSON Schema
/// counts as an integer, was refused as malformed; it is taken as the whole number. A real
/// fraction is still refused.
async fn finding_6_a_number_with_a_zero_fraction_is_a_whole_number(s: &mut TestServer) {
    let me = s.signup("Kim", "kim@example.com").await;
    let ws = s.create_workspace(&me, "Acme").await;
    let (status, contact) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/contacts"),
            &As::User(&me),
            Some(json!({"first_name": "Ada"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{contact}");
    let path = format!(
        "/api/v1/workspaces/{ws}/contacts/{}",
        contact["id"].as_str().unwrap()
    );
    let (status, body) = s
        .call(
            Method::PATCH,
            &path,
            &As::User(&me),
            Some(json!({"fields": {"last_name": "Lovelace"}, "version": 1.5})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = s
        .call(
            Method::PATCH,
            &path,
            &As::User(&me),
            Some(json!({"fields": {"last_name": "Lovelace"}, "version": 1.0})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["fields"]["last_name"], "Lovelace");
    assert_eq!(body["version"], 2);
}
server_test!(finding_6_a_number_with_a_zero_fraction_is_a_whole_number);

fn uuid_v4() -> String {
    let bytes: [u8; 16] = rand::random();
    let mut b = bytes;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
