//! Accounts: sign-up, sign-in, sessions, CSRF, TOTP, lockout, profiles, verification, resets.

use super::common::*;
use crate::server_test;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// The code for the 30-second step `offset` steps from now. Codes are single-use (a used step and
/// older ones are refused), so successive uses in a test take increasing offsets (-1, 0, +1: the
/// skew the server allows).
pub(crate) fn totp_at(secret_base32: &str, offset: i64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret_base32.to_string())
        .to_bytes()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    meshwork_app::accounts::totp(&bytes, "t")
        .unwrap()
        .generate((now + offset * 30) as u64)
}

async fn promise_cl01_passwords_are_stored_only_as_argon2id(s: &mut TestServer) {
    let password = "Zebra-Quartz-Lantern-4471";
    let (status, body, _) = s
        .signup_with(json!({"name": "Pat", "email": "pat@example.com", "password": password, "confirm_age_16_or_over": true}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let index = s.state().email_index("pat@example.com").unwrap();
    let user = s
        .state()
        .store
        .user_by_email_index(&index)
        .await
        .unwrap()
        .unwrap();
    assert!(
        user.password_hash.starts_with("$argon2id$v=19$"),
        "{}",
        user.password_hash
    );
    assert!(!user.password_hash.contains(password));
    // Sign-in works with it, and no byte on disk (or in PostgreSQL) holds the password.
    assert_eq!(
        s.login_raw("pat@example.com", password, json!({}))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        s.login_raw("pat@example.com", "Zebra-Quartz-Lantern-4472", json!({}))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_absent(s, &[password]).await;
}
server_test!(promise_cl01_passwords_are_stored_only_as_argon2id);

async fn promise_cl15_signup_requires_confirming_age_16_or_over(s: &mut TestServer) {
    let base = json!({"name": "Kid", "email": "kid@example.com", "password": PASSWORD});
    let mut refused = base.clone();
    refused["confirm_age_16_or_over"] = json!(false);
    let (status, body, cookie) = s.signup_with(refused).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "age_confirmation_required");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("confirm_age_16_or_over"));
    assert!(cookie.is_none());
    let (status, body, _) = s.signup_with(base.clone()).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a missing confirmation is refused too: {body}"
    );
    // Nothing was stored: the address is still free and cannot sign in.
    assert_eq!(
        s.login_raw("kid@example.com", PASSWORD, json!({}))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let mut ok = base;
    ok["confirm_age_16_or_over"] = json!(true);
    let (status, body, _) = s.signup_with(ok).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let index = s.state().email_index("kid@example.com").unwrap();
    let me = s
        .state()
        .store
        .user_by_email_index(&index)
        .await
        .unwrap()
        .unwrap();
    assert!(me.age_confirmed_at > 0);
}
server_test!(promise_cl15_signup_requires_confirming_age_16_or_over);

async fn promise_pm14_session_cookie_is_httponly_secure_samesite_and_csrf_guarded(
    s: &mut TestServer,
) {
    let (status, _, cookie) = s
        .signup_with(json!({"name": "Cy", "email": "cy@example.com", "password": PASSWORD, "confirm_age_16_or_over": true}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(cookie.is_none(), "a sign-up starts no session");
    let resp = s.login_raw("cy@example.com", PASSWORD, json!({})).await;
    let cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "cookie lacks {attr}: {cookie}");
    }
    let session = session_from(&body, Some(&cookie), "cy@example.com");
    // The only cookie Meshwork sets is the session cookie: no analytics or tracking cookies.
    let resp = s
        .req(Method::GET, "/api/v1/me", &As::User(&session))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get_all("set-cookie").iter().next().is_none());
    // A state-changing request with the cookie but no CSRF token is refused and changes nothing.
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/workspaces",
            &As::UserNoCsrf(&session),
            Some(json!({"name": "W"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("csrf_token_invalid"))
    );
    let mut wrong = session.clone();
    wrong.csrf = "0".repeat(64);
    let (status, _) = s
        .call(
            Method::POST,
            "/api/v1/workspaces",
            &As::User(&wrong),
            Some(json!({"name": "W"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, list) = s
        .call(Method::GET, "/api/v1/workspaces", &As::User(&session), None)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 0);
    let (status, _) = s
        .call(
            Method::POST,
            "/api/v1/workspaces",
            &As::User(&session),
            Some(json!({"name": "W"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Sign-out ends the session on the server.
    let resp = s
        .req(Method::POST, "/api/v1/auth/logout", &As::User(&session))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let (status, body) = s
        .call(Method::GET, "/api/v1/me", &As::User(&session), None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_session"))
    );
}
server_test!(promise_pm14_session_cookie_is_httponly_secure_samesite_and_csrf_guarded);

async fn promise_pm08_totp_second_factor_with_one_time_recovery_codes(s: &mut TestServer) {
    let me = s.signup("Mo", "mo@example.com").await;
    let (status, setup) = s
        .call(
            Method::POST,
            "/api/v1/me/mfa/totp/setup",
            &As::User(&me),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{setup}");
    let secret = setup["secret"].as_str().unwrap().to_string();
    assert!(setup["otpauth_url"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/me/mfa/totp/confirm",
            &As::User(&me),
            Some(json!({"code": "000000", "password": PASSWORD})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_mfa_code"))
    );
    let (status, codes) = s
        .call(
            Method::POST,
            "/api/v1/me/mfa/totp/confirm",
            &As::User(&me),
            Some(json!({"code": totp_at(&secret, -1), "password": "not my password"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a stolen session alone cannot turn on MFA: {codes}"
    );
    let (status, codes) = s
        .call(
            Method::POST,
            "/api/v1/me/mfa/totp/confirm",
            &As::User(&me),
            Some(json!({"code": totp_at(&secret, -1), "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{codes}");
    let codes: Vec<String> = codes["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);

    // The password alone no longer signs in.
    let resp = s.login_raw("mo@example.com", PASSWORD, json!({})).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["code"],
        "mfa_required"
    );
    let resp = s
        .login_raw("mo@example.com", PASSWORD, json!({"totp_code": "123456"}))
        .await;
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["code"],
        "invalid_mfa_code"
    );
    let code = totp_at(&secret, 0);
    assert_eq!(
        s.login_raw("mo@example.com", PASSWORD, json!({"totp_code": code}))
            .await
            .status(),
        StatusCode::OK
    );
    // The same code a second time (an observed code, replayed) is refused.
    let resp = s
        .login_raw("mo@example.com", PASSWORD, json!({"totp_code": code}))
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["code"],
        "invalid_mfa_code"
    );
    // A recovery code works once.
    assert_eq!(
        s.login_raw(
            "mo@example.com",
            PASSWORD,
            json!({"recovery_code": codes[0]})
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        s.login_raw(
            "mo@example.com",
            PASSWORD,
            json!({"recovery_code": codes[0]})
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED
    );
    let (_, profile) = s
        .call(Method::GET, "/api/v1/me", &As::User(&me), None)
        .await;
    assert_eq!(
        (
            profile["mfa_enabled"].as_bool(),
            profile["recovery_codes_left"].as_i64()
        ),
        (Some(true), Some(9))
    );
    // The secret is stored sealed, never in clear.
    let user = s
        .state()
        .store
        .user(me.user_id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let raw = totp_rs::Secret::Encoded(secret.clone()).to_bytes().unwrap();
    assert!(!contains(user.totp_secret_sealed.as_ref().unwrap(), &raw));
    // MFA changes are audited; turning it off needs the password and a code.
    let (status, _) = s
        .call(
            Method::POST,
            "/api/v1/me/mfa/totp/disable",
            &As::User(&me),
            Some(json!({"password": "wrong password!!", "code": totp_at(&secret, 1)})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = s
        .call(
            Method::POST,
            "/api/v1/me/mfa/totp/disable",
            &As::User(&me),
            Some(json!({"password": PASSWORD, "code": totp_at(&secret, 1)})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, audit) = s
        .call(
            Method::GET,
            "/api/v1/me/audit?limit=200",
            &As::User(&me),
            None,
        )
        .await;
    let kinds = kinds(&audit);
    for k in [
        "mfa.enabled",
        "mfa.disabled",
        "mfa.recovery_code_used",
        "login.succeeded",
        "login.failed",
    ] {
        assert!(kinds.contains(&k), "audit lacks {k}: {kinds:?}");
    }
    assert_eq!(
        s.login_raw("mo@example.com", PASSWORD, json!({}))
            .await
            .status(),
        StatusCode::OK
    );
    // A new authenticator works at once, even in the step the old one was last used in.
    let (_, setup) = s
        .call(
            Method::POST,
            "/api/v1/me/mfa/totp/setup",
            &As::User(&me),
            None,
        )
        .await;
    let fresh = setup["secret"].as_str().unwrap().to_string();
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/me/mfa/totp/confirm",
            &As::User(&me),
            Some(json!({"code": totp_at(&fresh, 1), "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
server_test!(promise_pm08_totp_second_factor_with_one_time_recovery_codes);

async fn promise_pm15_lockout_new_device_alert_and_security_audit(s: &mut TestServer) {
    let me = s.signup("Lu", "lu@example.com").await;
    for _ in 0..5 {
        let resp = s
            .login_raw("lu@example.com", "not the password!", json!({}))
            .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    // Locked: even the right password is refused until the lock ends, with the answer of a
    // wrong password (a lock must not tell that the address has an account); the owner is
    // told by mail.
    let resp = s.login_raw("lu@example.com", PASSWORD, json!({})).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["code"],
        "invalid_credentials"
    );
    let mail = meshwork_app::mail::unsent(s.state(), 100).await.unwrap();
    assert!(mail
        .iter()
        .any(|m| m.kind == "account_locked" && m.to == "lu@example.com"));
    let (_, audit) = s
        .call(
            Method::GET,
            "/api/v1/me/audit?limit=200",
            &As::User(&me),
            None,
        )
        .await;
    let kinds = kinds(&audit);
    assert_eq!(kinds.iter().filter(|k| **k == "login.failed").count(), 5);
    assert!(kinds.contains(&"account.locked") && kinds.contains(&"login.locked_out"));
    let failed = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "login.failed")
        .unwrap();
    assert_eq!(failed["details"]["ip"], "127.0.0.1");

    // A sign-in from a new device queues an alert email.
    let other = s.signup("Vi", "vi@example.com").await;
    let _ = other;
    let resp = s
        .client
        .post(format!("{}/api/v1/auth/login", s.base))
        .header("user-agent", "SomeOtherBrowser/2.0")
        .json(&json!({"email": "vi@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mail = meshwork_app::mail::unsent(s.state(), 100).await.unwrap();
    let alert = mail
        .iter()
        .find(|m| m.kind == "new_device" && m.to == "vi@example.com")
        .expect("new-device alert queued");
    assert!(alert.body.contains("SomeOtherBrowser/2.0"));
    // The same device again sends no second alert.
    let resp = s
        .client
        .post(format!("{}/api/v1/auth/login", s.base))
        .header("user-agent", "SomeOtherBrowser/2.0")
        .json(&json!({"email": "vi@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mail = meshwork_app::mail::unsent(s.state(), 100).await.unwrap();
    assert_eq!(
        mail.iter()
            .filter(|m| m.kind == "new_device" && m.to == "vi@example.com")
            .count(),
        1
    );
}
server_test!(promise_pm15_lockout_new_device_alert_and_security_audit);

#[tokio::test]
async fn promise_pm15_sign_in_attempts_are_rate_limited_per_address() {
    let mut s = TestServer::start_with(TestBackend::Sqlite, |c| {
        c.auth.login_attempts_per_minute = 3
    })
    .await
    .unwrap();
    // The sign-up helper signs in once.
    s.signup("Ra", "ra@example.com").await;
    for _ in 0..2 {
        assert_eq!(
            s.login_raw("ra@example.com", PASSWORD, json!({}))
                .await
                .status(),
            StatusCode::OK
        );
    }
    let resp = s.login_raw("ra@example.com", PASSWORD, json!({})).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["code"],
        "rate_limited"
    );
    s.stop().await;
}

/// ASVS 2.2.1: re-checks of the password inside a session (here, `reauthenticate`) draw on the
/// same per-address allowance as sign-ins, so many sessions cannot test passwords faster than
/// sign-in allows; the refusal comes before the password is looked at.
#[tokio::test]
async fn asvs_2_2_1_password_rechecks_share_the_per_address_allowance() {
    let mut s = TestServer::start_with(TestBackend::Sqlite, |c| {
        c.auth.login_attempts_per_minute = 3
    })
    .await
    .unwrap();
    // The sign-up helper signs in once: one of the three.
    let me = s.signup("Re", "re@example.com").await;
    for password in ["wrong password one", PASSWORD] {
        let (status, body) = s
            .call(
                Method::POST,
                "/api/v1/me/reauthenticate",
                &As::User(&me),
                Some(json!({"password": password})),
            )
            .await;
        assert_ne!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    }
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/me/reauthenticate",
            &As::User(&me),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "rate_limited");
    let resp = s.login_raw("re@example.com", PASSWORD, json!({})).await;
    assert_eq!(
        resp.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "and sign-ins from the address wait too"
    );
    s.stop().await;
}

async fn promise_pm01_profile_holds_name_email_company_job_title_editable(s: &mut TestServer) {
    let me = s.signup("Ann Lee", "ann@example.com").await;
    let (status, p) = s
        .call(Method::GET, "/api/v1/me", &As::User(&me), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            p["name"].as_str(),
            p["email"].as_str(),
            p["company"].as_str(),
            p["job_title"].as_str()
        ),
        (
            Some("Ann Lee"),
            Some("ann@example.com"),
            Some("Acme"),
            Some("Engineer")
        )
    );
    let mail = meshwork_app::mail::unsent(s.state(), 100).await.unwrap();
    let old_link = mail
        .iter()
        .find(|m| m.kind == "verify_email" && m.to == "ann@example.com")
        .unwrap();
    let old_token = old_link
        .body
        .split("token=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let (status, p) = s
        .call(
            Method::PATCH,
            "/api/v1/me",
            &As::User(&me),
            Some(json!({"email": "ann@globex.example"})),
        )
        .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_credentials")),
        "changing the email needs the password"
    );
    let (status, p) = s
        .call(Method::PATCH, "/api/v1/me", &As::User(&me), Some(json!({"name": "Ann Lee-Smith", "company": "Globex", "job_title": "CTO", "email": "ann@globex.example", "current_password": PASSWORD})))
        .await;
    assert_eq!(status, StatusCode::OK, "{p}");
    // The account keeps its address until the new one is confirmed (security finding 7: the
    // answer is the same whether or not another account has the new address).
    assert_eq!(
        (
            p["name"].as_str(),
            p["company"].as_str(),
            p["job_title"].as_str(),
            p["email"].as_str()
        ),
        (
            Some("Ann Lee-Smith"),
            Some("Globex"),
            Some("CTO"),
            Some("ann@example.com")
        )
    );
    // The link goes to the new address; opening it moves the account there, verified.
    let token = s.queued_token("verify_email", "ann@globex.example").await;
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/auth/verify-email",
            &As::Anonymous,
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, p) = s
        .call(Method::GET, "/api/v1/me", &As::User(&me), None)
        .await;
    assert_eq!(
        (p["email"].as_str(), &p["email_verified"]),
        (Some("ann@globex.example"), &json!(true))
    );
    // A link sent to the old address cannot verify anything now.
    let (status, _) = s
        .call(
            Method::POST,
            "/api/v1/auth/verify-email",
            &As::Anonymous,
            Some(json!({"token": old_token})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Sign-in follows the new email.
    assert_eq!(
        s.login_raw("ann@globex.example", PASSWORD, json!({}))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        s.login_raw("ann@example.com", PASSWORD, json!({}))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // A picture (mm02) is stored like any file and read back.
    let png = [b"\x89PNG\r\n\x1a\n".as_slice(), &[7u8; 64]].concat();
    let resp = s
        .req(Method::PUT, "/api/v1/me/picture", &As::User(&me))
        .header("content-type", "image/png")
        .body(png.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = s
        .req(Method::GET, "/api/v1/me/picture", &As::User(&me))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), png);
    let resp = s
        .req(Method::PUT, "/api/v1/me/picture", &As::User(&me))
        .body("not an image")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}
server_test!(promise_pm01_profile_holds_name_email_company_job_title_editable);

async fn promise_pm09_settings_api_shows_every_stored_personal_field(s: &mut TestServer) {
    let me = s.signup("Bo", "bo@example.com").await;
    let ws = s.create_workspace(&me, "Bo's team").await;
    let (_, p) = s
        .call(Method::GET, "/api/v1/me", &As::User(&me), None)
        .await;
    // Every column of the users table that holds personal data, decrypted, plus memberships.
    for field in [
        "id",
        "name",
        "email",
        "email_verified",
        "company",
        "job_title",
        "has_picture",
        "mfa_enabled",
        "recovery_codes_left",
        "age_confirmed_at",
        "created_at",
        "updated_at",
        "workspaces",
    ] {
        assert!(p.get(field).is_some(), "GET /api/v1/me lacks {field}: {p}");
    }
    assert_eq!(p["workspaces"][0]["id"], ws.as_str());
    assert_eq!(p["workspaces"][0]["name"], "Bo's team");
    assert_eq!(p["workspaces"][0]["role"], "owner");
    // And the account's security history.
    let (status, audit) = s
        .call(Method::GET, "/api/v1/me/audit", &As::User(&me), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "account.created"));
}
server_test!(promise_pm09_settings_api_shows_every_stored_personal_field);

async fn email_verification_and_password_reset_links_are_single_use(s: &mut TestServer) {
    let me = s.signup("Ed", "ed@example.com").await;
    let token_of = |body: &str, marker: &str| {
        body.split(marker)
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let mail = meshwork_app::mail::unsent(s.state(), 100).await.unwrap();
    let verify = mail
        .iter()
        .find(|m| m.kind == "verify_email" && m.to == "ed@example.com")
        .unwrap();
    let token = token_of(&verify.body, "token=");
    assert_eq!(
        s.status(
            Method::POST,
            "/api/v1/auth/verify-email",
            &As::Anonymous,
            Some(json!({"token": token}))
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/auth/verify-email",
            &As::Anonymous,
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_token"))
    );
    let (_, p) = s
        .call(Method::GET, "/api/v1/me", &As::User(&me), None)
        .await;
    assert_eq!(p["email_verified"], true);

    // Reset: unknown emails get the same answer; the link works once and ends every session.
    assert_eq!(
        s.status(
            Method::POST,
            "/api/v1/auth/password-reset",
            &As::Anonymous,
            Some(json!({"email": "nobody@example.com"}))
        )
        .await,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        s.status(
            Method::POST,
            "/api/v1/auth/password-reset",
            &As::Anonymous,
            Some(json!({"email": "ed@example.com"}))
        )
        .await,
        StatusCode::ACCEPTED
    );
    let mail = meshwork_app::mail::unsent(s.state(), 100).await.unwrap();
    assert!(!mail.iter().any(|m| m.to == "nobody@example.com"));
    let reset = mail.iter().find(|m| m.kind == "password_reset").unwrap();
    let token = token_of(&reset.body, "token=");
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/auth/password-reset/confirm",
            &As::Anonymous,
            Some(json!({"token": token, "new_password": "short"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("weak_password"))
    );
    let new_password = "a brand new passphrase";
    assert_eq!(
        s.status(
            Method::POST,
            "/api/v1/auth/password-reset/confirm",
            &As::Anonymous,
            Some(json!({"token": token, "new_password": new_password}))
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.status(
            Method::POST,
            "/api/v1/auth/password-reset/confirm",
            &As::Anonymous,
            Some(json!({"token": token, "new_password": "another passphrase!"}))
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        s.status(Method::GET, "/api/v1/me", &As::User(&me), None)
            .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.login_raw("ed@example.com", new_password, json!({}))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        s.login_raw("ed@example.com", PASSWORD, json!({}))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}
server_test!(email_verification_and_password_reset_links_are_single_use);

async fn promise_mm02_profile_picture_is_uploaded_and_stored_encrypted(s: &mut TestServer) {
    let me = s.signup("Pia", "pia@example.com").await;
    let (_, p) = s
        .call(Method::GET, "/api/v1/me", &As::User(&me), None)
        .await;
    assert_eq!(p["has_picture"], false);
    let marker = b"PictureContentMarker-mm02-7d1c";
    let jpeg = [[0xFF, 0xD8, 0xFF, 0xE0].as_slice(), marker, &[0u8; 2048]].concat();
    let resp = s
        .req(Method::PUT, "/api/v1/me/picture", &As::User(&me))
        .header("content-type", "image/jpeg")
        .body(jpeg.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (_, p) = s
        .call(Method::GET, "/api/v1/me", &As::User(&me), None)
        .await;
    assert_eq!(p["has_picture"], true);
    let resp = s
        .req(Method::GET, "/api/v1/me/picture", &As::User(&me))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), jpeg);
    assert_absent(s, &[std::str::from_utf8(marker).unwrap()]).await;
    // Too large is refused by size, and the stored picture is kept.
    let big = [
        b"\x89PNG\r\n\x1a\n".as_slice(),
        &vec![1u8; meshwork_domain::MAX_PICTURE_BYTES + 10],
    ]
    .concat();
    let resp = s
        .req(Method::PUT, "/api/v1/me/picture", &As::User(&me))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["code"],
        "payload_too_large"
    );
    let resp = s
        .req(Method::GET, "/api/v1/me/picture", &As::User(&me))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap().to_vec(), jpeg);
    // Removal.
    assert_eq!(
        s.status(Method::DELETE, "/api/v1/me/picture", &As::User(&me), None)
            .await,
        StatusCode::NO_CONTENT
    );
    let (status, body) = s
        .call(Method::GET, "/api/v1/me/picture", &As::User(&me), None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("picture_not_found"))
    );
}
server_test!(promise_mm02_profile_picture_is_uploaded_and_stored_encrypted);
