//! Regression tests for the security review's findings (issue 24), each named after its
//! finding and failing on the code before its fix. `docs/security.md` lists them.

use super::common::*;
use super::crm::setup;
use crate::server_test;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn ask_reset(s: &TestServer, email: &str) {
    let (status, _) = s
        .call(
            Method::POST,
            "/api/v1/auth/password-reset",
            &As::Anonymous,
            Some(json!({"email": email})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

async fn reset(s: &TestServer, token: &str, password: &str) -> StatusCode {
    s.status(
        Method::POST,
        "/api/v1/auth/password-reset/confirm",
        &As::Anonymous,
        Some(json!({"token": token, "new_password": password})),
    )
    .await
}

/// Finding 9: links sent before a password change or reset die with the old password.
async fn reset_and_verification_links_die_with_a_password_change(s: &mut TestServer) {
    let ada = s.signup("Ada Lovelace", "ada@security.test").await;
    let verify_before = s.queued_token("verify_email", "ada@security.test").await;
    ask_reset(s, "ada@security.test").await;
    let first = s.queued_token("password_reset", "ada@security.test").await;
    ask_reset(s, "ada@security.test").await;
    let second = s.queued_token("password_reset", "ada@security.test").await;
    assert_ne!(first, second);
    assert_eq!(
        reset(s, &second, "a brand new passphrase 1").await,
        StatusCode::NO_CONTENT
    );
    // The other reset link and the old verification link are dead.
    assert_eq!(
        reset(s, &first, "another new passphrase 2").await,
        StatusCode::BAD_REQUEST
    );
    let status = s
        .status(
            Method::POST,
            "/api/v1/auth/verify-email",
            &As::Anonymous,
            Some(json!({"token": verify_before})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The address is still unverified: a fresh verification link was sent, and it works.
    let fresh = s.queued_token("verify_email", "ada@security.test").await;
    assert_ne!(fresh, verify_before);
    let status = s
        .status(
            Method::POST,
            "/api/v1/auth/verify-email",
            &As::Anonymous,
            Some(json!({"token": fresh})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // A password change (signed in) kills an outstanding reset link too.
    let r = s
        .login_raw("ada@security.test", "a brand new passphrase 1", json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string());
    let body: serde_json::Value = r.json().await.unwrap();
    let ada = session_from(&body, cookie.as_deref(), &ada.email);
    ask_reset(s, "ada@security.test").await;
    let pending = s.queued_token("password_reset", "ada@security.test").await;
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/me/password",
            &As::User(&ada),
            Some(json!({"current_password": "a brand new passphrase 1", "new_password": "yet another passphrase 3"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        reset(s, &pending, "an attackers passphrase 4").await,
        StatusCode::BAD_REQUEST
    );
}
server_test!(reset_and_verification_links_die_with_a_password_change);

/// Finding 4: a public form fills what a contact lacks and never overwrites what the team
/// entered; the answers stay whole on the submission.
async fn a_public_form_never_overwrites_a_contact(s: &mut TestServer) {
    let c = setup(s, "Forms").await;
    let form = c
        .create(
            "forms",
            json!({"name": "Contact us", "published": true, "fields": [
                {"name": "email", "label": "Email", "target": "email", "required": true},
                {"name": "first", "label": "First name", "target": "first_name"},
                {"name": "last", "label": "Last name", "target": "last_name"},
                {"name": "role", "label": "Role", "target": "title"},
                {"name": "tel", "label": "Phone", "target": "phone"},
            ]}),
        )
        .await;
    let form_id = form["id"].as_str().unwrap();
    let contact = c
        .create(
            "contacts",
            json!({"first_name": "Ada", "title": "CEO", "emails": ["ada@victim.example"], "phones": ["+1 415 555 0100"]}),
        )
        .await;
    let id = contact["id"].as_str().unwrap();
    let (status, v) = s
        .call(
            Method::POST,
            &format!("/api/v1/public/workspaces/{}/forms/{form_id}/submissions", c.ws),
            &As::Anonymous,
            Some(json!({"answers": {"email": "ADA@victim.example", "first": "Eve", "last": "Lovelace", "role": "Intern", "tel": "+1 415 555 0199"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (_, after) = c.get(&format!("contacts/{id}")).await;
    let f = &after["fields"];
    assert_eq!(f["first_name"], "Ada", "never overwritten: {after}");
    assert_eq!(f["title"], "CEO", "never overwritten: {after}");
    assert_eq!(
        f["phones"],
        json!(["+1 415 555 0100"]),
        "no phone added: {after}"
    );
    assert_eq!(
        f["last_name"], "Lovelace",
        "an empty field is filled: {after}"
    );
    // The submission keeps every answer, on the contact's timeline.
    let (_, subs) = c.get("form_submissions").await;
    let answers = &subs["records"][0]["fields"]["answers"];
    assert_eq!(answers["first"], "Eve");
    assert_eq!(answers["role"], "Intern");
    assert_eq!(answers["tel"], "+1 415 555 0199");
}
server_test!(a_public_form_never_overwrites_a_contact);

/// Finding 3: a burst of sign-ups from one address is refused (each runs argon2id and sends a
/// mail), and a refused one stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_signups_from_one_address_is_limited() {
    let mut s = TestServer::start_with(TestBackend::Sqlite, |c| c.auth.signups_per_hour = 3)
        .await
        .unwrap();
    for i in 0..3 {
        s.signup("Someone", &format!("person{i}@security.test"))
            .await;
    }
    let (status, body, _) = s
        .signup_with(json!({"name": "One Too Many", "email": "person3@security.test", "password": PASSWORD, "confirm_age_16_or_over": true}))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "rate_limited");
    let r = s
        .login_raw("person3@security.test", PASSWORD, json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "no account was made");
    s.stop().await;
}

/// Security review finding 14: an existing data directory readable by others is made private.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_data_dir_is_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDatabase::new(TestBackend::Sqlite).await.unwrap();
    let config = config_for(&db);
    std::fs::create_dir_all(&config.data_dir).unwrap();
    std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let running = meshwork_server::start(config.clone()).await.unwrap();
    let mode = std::fs::metadata(&config.data_dir)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    running.stop().await.unwrap();
}
