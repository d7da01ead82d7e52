//! The canary test: write data holding unique canary strings through the API, then scan every
//! byte of every file in the data directory (database, WAL, keyring, master key) and a dump of
//! the PostgreSQL database; no canary may appear in clear. Later issues add their record types
//! to the list of writes below.

use super::common::*;
use crate::server_test;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn promise_pm07_canary_strings_are_encrypted_at_rest(s: &mut TestServer) {
    let c = |what: &str| format!("Canary{what}Q7x9");
    let email = "canary.mail.q7x9@canarydomain-q7x9.example";
    let (status, body, cookie) = s
        .signup_with(json!({
            "name": c("Name"), "email": email, "password": "Canary-Password-Q7x9!",
            "company": c("Company"), "job_title": c("Title"), "confirm_age_16_or_over": true
        }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(cookie.is_none());
    let resp = s.login_raw(email, "Canary-Password-Q7x9!", json!({})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string());
    let me = session_from(&resp.json().await.unwrap(), cookie.as_deref(), email);
    let ws = s.create_workspace(&me, &c("Workspace")).await;
    let (status, _) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/workspaces/{ws}"),
            &As::User(&me),
            Some(json!({"name": c("Renamed")})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, key) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/api-keys"),
            &As::User(&me),
            Some(json!({"name": c("KeyName"), "role": "member", "password": "Canary-Password-Q7x9!"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let invitee = "invitee.q7x9@canarydomain-q7x9.example";
    let (status, _) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/invites"),
            &As::User(&me),
            Some(json!({"email": invitee, "role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let picture = [
        b"\x89PNG\r\n\x1a\n".as_slice(),
        c("PictureBytes").as_bytes(),
    ]
    .concat();
    let resp = s
        .req(Method::PUT, "/api/v1/me/picture", &As::User(&me))
        .body(picture)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // Audit details (user agent) and the outbox (addresses, bodies) hold personal data too.
    let resp = s
        .client
        .post(format!("{}/api/v1/auth/login", s.base))
        .header("user-agent", c("UserAgent"))
        .json(&json!({"email": email, "password": "Canary-Password-Q7x9!"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, _) = s
        .call(
            Method::PATCH,
            "/api/v1/me",
            &As::User(&me),
            Some(json!({"job_title": c("NewTitle")})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Everything reads back through the API…
    let (_, profile) = s
        .call(Method::GET, "/api/v1/me", &As::User(&me), None)
        .await;
    assert_eq!(profile["name"], c("Name"));
    assert_eq!(profile["workspaces"][0]["name"], c("Renamed"));
    // …and nothing is on disk (or in PostgreSQL) in clear, even after the server stops and
    // SQLite checkpoints its WAL into the main file.
    s.stop().await;
    let secret = key["secret"].as_str().unwrap().to_string();
    assert_absent(
        s,
        &[
            &c("Name"),
            email,
            "canarydomain-q7x9",
            &c("Company"),
            &c("Title"),
            &c("NewTitle"),
            &c("Workspace"),
            &c("Renamed"),
            &c("KeyName"),
            invitee,
            &c("PictureBytes"),
            &c("UserAgent"),
            "Canary-Password-Q7x9!",
            &secret,
        ],
    )
    .await;
}
server_test!(promise_pm07_canary_strings_are_encrypted_at_rest);
