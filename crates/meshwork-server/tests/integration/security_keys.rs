//! WebAuthn security keys (OWASP ASVS 2.3.2), driven over the API by webauthn-authenticator-rs's
//! software authenticator (`SoftPasskey`), which makes real registrations and signed
//! assertions: registration needs two-factor authentication on and a fresh confirmation, a
//! sign-in with a key is two steps whose ceremony works once, a replayed or foreign answer is
//! refused, and keys go when two-factor authentication goes.

use super::common::*;
use super::security::totp_on;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use webauthn_authenticator_rs::prelude::{Url, WebauthnAuthenticator};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

/// The address the test servers say they are at: keys bind to a domain name.
const ORIGIN: &str = "http://localhost:8080";

/// Runs `async fn $name(s: &mut TestServer)` on each backend with `public_url` set to
/// [`ORIGIN`].
macro_rules! keys_test {
    ($name:ident) => {
        mod $name {
            use super::super::common::{TestBackend, TestServer};
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let mut s = TestServer::start_with(TestBackend::Sqlite, |c| {
                    c.public_url = super::ORIGIN.into()
                })
                .await
                .unwrap();
                super::$name(&mut s).await;
                s.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(mut s) = TestServer::start_with(TestBackend::Postgres, |c| {
                    c.public_url = super::ORIGIN.into()
                })
                .await
                else {
                    return;
                };
                super::$name(&mut s).await;
                s.stop().await;
            }
        }
    };
}

fn origin() -> Url {
    Url::parse(ORIGIN).unwrap()
}

/// `me`'s keys, as the API lists them.
async fn keys_of(s: &TestServer, me: &Session) -> Value {
    s.call(
        Method::GET,
        "/api/v1/me/mfa/security-keys",
        &As::User(me),
        None,
    )
    .await
    .1
}

/// Starts registering a key named `name` for `me`: the status and the challenge (or error).
async fn start(s: &TestServer, me: &Session, name: &str) -> (StatusCode, Value) {
    s.call(
        Method::POST,
        "/api/v1/me/mfa/security-keys",
        &As::User(me),
        Some(json!({ "name": name })),
    )
    .await
}

/// Finishes a registration of `me` with `credential`.
async fn finish(
    s: &TestServer,
    me: &Session,
    challenge: &Value,
    credential: &Value,
) -> (StatusCode, Value) {
    s.call(
        Method::POST,
        "/api/v1/me/mfa/security-keys/finish",
        &As::User(me),
        Some(json!({"ceremony": challenge["ceremony"], "credential": credential})),
    )
    .await
}

/// The authenticator's answer to a registration challenge, as a browser's `toJSON()` gives it.
fn register(key: &mut SoftPasskey, challenge: &Value) -> Value {
    let options = serde_json::from_value(challenge["options"].clone()).unwrap();
    serde_json::to_value(key.do_registration(origin(), options).unwrap()).unwrap()
}

/// The authenticator's answer to a sign-in challenge.
fn assert_with(key: &mut SoftPasskey, challenge: &Value) -> Value {
    let options = serde_json::from_value(challenge["options"].clone()).unwrap();
    serde_json::to_value(key.do_authentication(origin(), options).unwrap()).unwrap()
}

/// Registers a new software key named `name` for `me` (whose session is fresh).
async fn add_key(s: &TestServer, me: &Session, key: &mut SoftPasskey, name: &str) -> Value {
    let (status, challenge) = start(s, me, name).await;
    assert_eq!(status, StatusCode::OK, "{challenge}");
    let credential = register(key, &challenge);
    let (status, added) = finish(s, me, &challenge, &credential).await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    added
}

/// The first step of a sign-in that asks for a key's challenge.
async fn key_challenge(s: &TestServer, email: &str) -> Value {
    let resp = s
        .login_raw(email, PASSWORD, json!({"security_key": true}))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    resp.json().await.unwrap()
}

async fn answer(s: &TestServer, ceremony: &Value, credential: &Value) -> reqwest::Response {
    s.req(
        Method::POST,
        "/api/v1/auth/login/security-key",
        &As::Anonymous,
    )
    .json(&json!({"ceremony": ceremony, "credential": credential}))
    .send()
    .await
    .unwrap()
}

async fn asvs_2_3_2_security_keys_are_registered_and_sign_in_as_a_second_factor(
    s: &mut TestServer,
) {
    let me = s.signup("Kei", "kei@keys.test").await;
    let mut key = SoftPasskey::new(true);

    // A key needs the authenticator app (and its recovery codes) first.
    let (status, body) = start(s, &me, "Blue key").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("mfa_not_enabled")),
        "{body}"
    );
    totp_on(s, &me).await;

    // A new way to sign in is a sensitive change: a stale session confirms it is you first.
    s.age_session(&me, 10).await;
    let (status, body) = start(s, &me, "Blue key").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("reauthentication_required")),
        "{body}"
    );
    let status = s
        .status(
            Method::POST,
            "/api/v1/me/reauthenticate",
            &As::User(&me),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // A name is checked before anything else.
    let (status, body) = start(s, &me, "   ").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().contains("`name`"));

    // Registration: the challenge, the authenticator's real attestation, the key stored.
    let (status, challenge) = start(s, &me, "Blue key").await;
    assert_eq!(status, StatusCode::OK, "{challenge}");
    assert_eq!(challenge["options"]["publicKey"]["rp"]["id"], "localhost");
    let credential = register(&mut key, &challenge);
    // An answer that was tampered with does not check out, and uses the ceremony up.
    let mut forged = credential.clone();
    forged["response"]["clientDataJSON"] = json!("e30");
    let (status, body) = finish(s, &me, &challenge, &forged).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().contains("`credential`"));
    let (status, body) = finish(s, &me, &challenge, &credential).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_token")),
        "a ceremony works once: {body}"
    );
    let added = add_key(s, &me, &mut key, "Blue key").await;
    assert_eq!(added["name"], "Blue key");
    let keys = keys_of(s, &me).await;
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");
    assert!(keys[0]["last_used_at"].is_null());
    // The person's export names the key, and never its credential.
    let (status, export) = s
        .call(Method::GET, "/api/v1/me/export", &As::User(&me), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{export}");
    assert_eq!(export["security_keys"][0]["name"], "Blue key", "{export}");
    assert!(!export
        .to_string()
        .contains(credential["id"].as_str().unwrap()));

    // Without asking for a key's challenge, an API client is told a code is needed, as before.
    let resp = s.login_raw("kei@keys.test", PASSWORD, json!({})).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // A wrong password gets no challenge.
    let resp = s
        .login_raw(
            "kei@keys.test",
            "not the password",
            json!({"security_key": true}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // Sign-in: the password, then the key's signed answer.
    let challenge = key_challenge(s, "kei@keys.test").await;
    let allowed = &challenge["options"]["publicKey"]["allowCredentials"];
    assert_eq!(allowed.as_array().unwrap().len(), 1, "{challenge}");
    let assertion = assert_with(&mut key, &challenge);
    let resp = answer(s, &challenge["ceremony"], &assertion).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = resp.json().await.unwrap();
    let signed_in = session_from(&body, Some(&cookie), "kei@keys.test");
    let (status, who) = s
        .call(Method::GET, "/api/v1/me", &As::User(&signed_in), None)
        .await;
    assert_eq!(
        (status, who["email"].as_str()),
        (StatusCode::OK, Some("kei@keys.test"))
    );

    // The same answer again: the ceremony is used up.
    let resp = answer(s, &challenge["ceremony"], &assertion).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // An old answer to a new challenge (a replay) does not check out, and counts as a failure.
    let fresh = key_challenge(s, "kei@keys.test").await;
    let resp = answer(s, &fresh["ceremony"], &assertion).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "invalid_mfa_code", "{body}");

    // The key was used; the account's trail says how each sign-in went.
    let keys = keys_of(s, &me).await;
    assert!(keys[0]["last_used_at"].is_i64(), "{keys}");
    let entries = s.audit_entries(&me, None).await;
    assert!(entries
        .iter()
        .any(|e| e["kind"] == "mfa.security_key_added"));
    assert!(entries
        .iter()
        .any(|e| e["kind"] == "login.succeeded" && e["details"]["factor"] == "security_key"));
    assert!(entries
        .iter()
        .any(|e| e["kind"] == "login.failed" && e["details"]["reason"] == "security key"));

    // Removing a key: a confirmation first, then it is gone, and cannot be removed twice.
    let id = added["id"].as_str().unwrap();
    let path = format!("/api/v1/me/mfa/security-keys/{id}");
    s.age_session(&me, 10).await;
    let (status, _) = s.call(Method::DELETE, &path, &As::User(&me), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    s.age_session(&me, 0).await;
    assert_eq!(
        s.status(Method::DELETE, &path, &As::User(&me), None).await,
        StatusCode::NO_CONTENT
    );
    let (status, body) = s.call(Method::DELETE, &path, &As::User(&me), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("security_key_not_found"))
    );
    // With no key left, a sign-in asking for one is told to use a code.
    let resp = s
        .login_raw("kei@keys.test", PASSWORD, json!({"security_key": true}))
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "mfa_required", "{body}");
}
keys_test!(asvs_2_3_2_security_keys_are_registered_and_sign_in_as_a_second_factor);

/// One account's key is never another's: a ceremony belongs to the account it was made for,
/// a credential is registered once over all accounts, and another account's key does not
/// answer for this one.
async fn security_keys_belong_to_one_account(s: &mut TestServer) {
    let ann = s.signup("Ann", "ann@keys.test").await;
    let bob = s.signup("Bob", "bob@keys.test").await;
    totp_on(s, &ann).await;
    totp_on(s, &bob).await;
    let mut ann_key = SoftPasskey::new(true);
    let mut bob_key = SoftPasskey::new(true);
    add_key(s, &bob, &mut bob_key, "Bob's").await;

    // Bob cannot finish Ann's registration.
    let (_, challenge) = start(s, &ann, "Ann's").await;
    let credential = register(&mut ann_key, &challenge);
    let (status, _) = finish(s, &bob, &challenge, &credential).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    add_key(s, &ann, &mut ann_key, "Ann's").await;

    // Bob's key does not answer Ann's sign-in: the challenge allows Ann's credential only.
    let challenge = key_challenge(s, "ann@keys.test").await;
    assert!(
        bob_key
            .do_authentication(
                origin(),
                serde_json::from_value(challenge["options"].clone()).unwrap()
            )
            .is_err(),
        "Bob's authenticator holds no credential Ann's challenge allows"
    );
    let bob_challenge = key_challenge(s, "bob@keys.test").await;
    let bobs_answer = assert_with(&mut bob_key, &bob_challenge);
    let resp = answer(s, &challenge["ceremony"], &bobs_answer).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // Turning two-factor authentication off removes the keys with it.
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/me/mfa/totp/disable",
            &As::User(&ann),
            Some(json!({"password": PASSWORD, "code": super::accounts::totp_at(&totp_secret_of(s, &ann).await, 0)})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let keys = keys_of(s, &ann).await;
    assert_eq!(keys, json!([]));
    // Bob's stays.
    let keys = keys_of(s, &bob).await;
    assert_eq!(keys.as_array().unwrap().len(), 1);
}
keys_test!(security_keys_belong_to_one_account);

/// The TOTP secret of an account, read from the store (the test turned TOTP on and needs a
/// fresh code).
async fn totp_secret_of(s: &TestServer, who: &Session) -> String {
    let id = meshwork_domain::UserId(who.user_id.parse().unwrap());
    let u = s.state().store.user(id).await.unwrap().unwrap();
    let secret = s
        .state()
        .open_account(id, "totp_secret", u.totp_secret_sealed.as_ref().unwrap())
        .unwrap();
    meshwork_app::accounts::totp_base32(&secret)
}

/// A server named by an IP address cannot use keys (WebAuthn binds them to a domain name): it
/// says so, and what to set.
async fn a_server_named_by_an_ip_address_says_keys_need_a_domain_name(s: &mut TestServer) {
    let me = s.signup("Ip", "ip@keys.test").await;
    totp_on(s, &me).await;
    let (status, body) = start(s, &me, "Key").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("security_keys_unavailable")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("public_url"));
}
crate::server_test!(a_server_named_by_an_ip_address_says_keys_need_a_domain_name);

/// A valid key does not pass a lock: wrong answers count toward the lockout like wrong codes,
/// and once the account is locked, even a right answer to a challenge made before is refused
/// (and audited). An answer whose signature counter went backwards, as a cloned key's would,
/// is refused and audited.
async fn security_key_answers_count_toward_the_lockout_and_clones_are_caught(s: &mut TestServer) {
    let me = s.signup("Lock", "lock@keys.test").await;
    totp_on(s, &me).await;
    let mut key = SoftPasskey::new(true);
    add_key(s, &me, &mut key, "Only key").await;

    // A cloned key: two answers, the later (higher counter) used first; the earlier then
    // carries a counter that did not move.
    let first = key_challenge(s, "lock@keys.test").await;
    let second = key_challenge(s, "lock@keys.test").await;
    let early = assert_with(&mut key, &first);
    let late = assert_with(&mut key, &second);
    assert_eq!(
        answer(s, &second["ceremony"], &late).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        answer(s, &first["ceremony"], &early).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(s
        .audit_entries(&me, None)
        .await
        .iter()
        .any(|e| e["kind"] == "mfa.security_key_counter_regressed"));

    // Wrong answers up to the threshold lock the account.
    let kept = key_challenge(s, "lock@keys.test").await;
    let threshold = s.config.auth.lockout_threshold;
    for _ in 1..threshold {
        let c = key_challenge(s, "lock@keys.test").await;
        let resp = answer(s, &c["ceremony"], &early).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    // The first failure (the clone) counted too; the threshold is reached.
    let resp = s
        .login_raw("lock@keys.test", PASSWORD, json!({"security_key": true}))
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "a locked account answers like a wrong password"
    );
    let right = assert_with(&mut key, &kept);
    let resp = answer(s, &kept["ceremony"], &right).await;
    assert_eq!(resp.status(), StatusCode::LOCKED);
}
keys_test!(security_key_answers_count_toward_the_lockout_and_clones_are_caught);

/// The rules are checked again when a registration finishes: two-factor authentication turned
/// off meanwhile (which removes the keys) refuses the key.
async fn a_registration_finished_after_two_factor_went_off_is_refused(s: &mut TestServer) {
    let me = s.signup("Race", "race@keys.test").await;
    totp_on(s, &me).await;
    let mut key = SoftPasskey::new(true);
    let (_, challenge) = start(s, &me, "Late").await;
    let credential = register(&mut key, &challenge);
    let code = super::accounts::totp_at(&totp_secret_of(s, &me).await, 0);
    let status = s
        .status(
            Method::POST,
            "/api/v1/me/mfa/totp/disable",
            &As::User(&me),
            Some(json!({"password": PASSWORD, "code": code})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = finish(s, &me, &challenge, &credential).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("mfa_not_enabled")),
        "{body}"
    );
}
keys_test!(a_registration_finished_after_two_factor_went_off_is_refused);

/// Keys registered while `public_url` named a domain do not lock anyone out once it names an
/// IP address: the sign-in falls back to the codes.
async fn keys_on_a_server_renamed_to_an_ip_address_fall_back_to_codes(s: &mut TestServer) {
    let me = s.signup("Moved", "moved@keys.test").await;
    totp_on(s, &me).await;
    let mut key = SoftPasskey::new(true);
    add_key(s, &me, &mut key, "Key").await;
    s.config.public_url = "http://127.0.0.1:8080".into();
    s.restart().await;
    let resp = s
        .login_raw("moved@keys.test", PASSWORD, json!({"security_key": true}))
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "mfa_required", "{body}");
}
keys_test!(keys_on_a_server_renamed_to_an_ip_address_fall_back_to_codes);

/// The sign-in page's key step: an answer to a ceremony that is unknown (or used, or too old)
/// shows the sign-in form again with what happened, and signs no one in; the page takes only
/// posts from itself.
async fn the_sign_in_page_says_when_a_key_answer_fails(s: &mut TestServer) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |origin: &'static str| {
        client
            .post(format!("{}/sign-in/security-key", s.base))
            .header("sec-fetch-site", origin)
            .form(&[
                ("ceremony", "not-a-ceremony"),
                ("credential", "{}"),
                ("next", "/"),
            ])
            .send()
    };
    let resp = post("same-origin").await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.headers().get("set-cookie").is_none());
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("took too long to answer; sign in again"),
        "{html}"
    );
    assert!(html.contains(r#"action="/sign-in""#));
    let resp = post("cross-site").await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}
keys_test!(the_sign_in_page_says_when_a_key_answer_fails);
