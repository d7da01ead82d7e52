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

/// ASVS 8.1.4: each person and each API key has its own allowance of API requests
/// (`auth.api_requests_per_minute`); past it, 429 `rate_limited`, and the others go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_requests_are_limited_per_key_and_per_person() {
    let mut s = TestServer::start_with(TestBackend::Sqlite, |c| c.auth.api_requests_per_minute = 5)
        .await
        .unwrap();
    let ann = s.signup("Ann", "ann@limits.test").await;
    let ws = s.create_workspace(&ann, "Limits").await;
    let (busy, other) = (
        s.create_key(&ann, &ws, "admin").await,
        s.create_key(&ann, &ws, "admin").await,
    );
    let contacts = format!("/api/v1/workspaces/{ws}/contacts");
    for _ in 0..5 {
        let (status, body) = s.call(Method::GET, &contacts, &As::Key(&busy), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = s.call(Method::GET, &contacts, &As::Key(&busy), None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "rate_limited");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("auth.api_requests_per_minute"),
        "{body}"
    );
    // Another key, and the person (who has used a few on sign-in and set-up), are not held back.
    let (status, body) = s.call(Method::GET, &contacts, &As::Key(&other), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s
        .call(Method::GET, "/api/v1/me", &As::User(&ann), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
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

/// Finding 3: with `auth.open_signup` off, only the server's first account and invited
/// addresses may sign up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_closed_admits_only_the_first_account_and_invited_addresses() {
    let mut s = TestServer::start_with(TestBackend::Sqlite, |c| c.auth.open_signup = false)
        .await
        .unwrap();
    let owner = s.signup("Owner", "owner@closed.test").await;
    let (status, body, _) = s
        .signup_with(json!({"name": "Stranger", "email": "stranger@closed.test", "password": PASSWORD, "confirm_age_16_or_over": true}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("signup_closed")),
        "{body}"
    );
    let ws = s.create_workspace(&owner, "Closed").await;
    let (status, _) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/invites"),
            &As::User(&owner),
            Some(json!({"email": "guest@closed.test", "role": "member"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    s.signup("Guest", "guest@closed.test").await;
    s.stop().await;
}

/// Finding 3: behind a proxy named in `trusted_proxies`, limits count the client that
/// `X-Forwarded-For` names, so clients behind one proxy are not one bucket; the header of a
/// client that is not a trusted proxy is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_read_only_from_trusted_proxies() {
    let signup = |s: &TestServer, n: u32, forwarded: &str| {
        let req = s
            .client
            .post(format!("{}/api/v1/auth/signup", s.base))
            .header("x-forwarded-for", forwarded)
            .json(&json!({"name": "P", "email": format!("p{n}-{}@proxy.test", forwarded.replace([',', ' '], "")), "password": PASSWORD, "confirm_age_16_or_over": true}));
        async move { req.send().await.unwrap().status() }
    };
    let mut s = TestServer::start_with(TestBackend::Sqlite, |c| {
        c.auth.signups_per_hour = 2;
        c.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await
    .unwrap();
    for n in 0..2 {
        assert_eq!(signup(&s, n, "198.51.100.1").await, StatusCode::ACCEPTED);
    }
    assert_eq!(
        signup(&s, 2, "198.51.100.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client behind the same proxy has its own bucket; a forged entry on the left
    // changes nothing.
    assert_eq!(signup(&s, 3, "198.51.100.2").await, StatusCode::ACCEPTED);
    assert_eq!(
        signup(&s, 4, "10.9.9.9, 198.51.100.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    s.stop().await;

    // Without trusted proxies the header is the client's own claim: ignored.
    let mut s = TestServer::start_with(TestBackend::Sqlite, |c| c.auth.signups_per_hour = 2)
        .await
        .unwrap();
    assert_eq!(signup(&s, 0, "198.51.100.1").await, StatusCode::ACCEPTED);
    assert_eq!(signup(&s, 1, "198.51.100.2").await, StatusCode::ACCEPTED);
    assert_eq!(
        signup(&s, 2, "198.51.100.3").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    s.stop().await;
}

/// Finding 6: password re-checks (here, changing the password) count toward the lockout, so
/// a stolen session is not an unlimited guessing oracle.
async fn password_rechecks_count_toward_lockout(s: &mut TestServer) {
    let me = s.signup("Guessed", "guessed@security.test").await;
    let change = |current: &str| json!({"current_password": current, "new_password": "an entirely new passphrase"});
    for _ in 0..5 {
        let (status, body) = s
            .call(
                Method::POST,
                "/api/v1/me/password",
                &As::User(&me),
                Some(change("a wrong guess 123")),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    // Locked: even the right password is refused now, here and at sign-in.
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/me/password",
            &As::User(&me),
            Some(change(PASSWORD)),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::LOCKED, Some("account_locked")),
        "{body}"
    );
    assert_eq!(
        s.login_raw("guessed@security.test", PASSWORD, json!({}))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let mail = meshwork_app::mail::unsent(s.state(), 100).await.unwrap();
    assert!(mail
        .iter()
        .any(|m| m.kind == "account_locked" && m.to == "guessed@security.test"));
}
server_test!(password_rechecks_count_toward_lockout);

/// Finding 15: a re-authentication with a TOTP code alone counts toward the lockout like a
/// password re-check, so a stolen session cannot try codes until one is accepted: after five
/// wrong codes even the right one is refused, and the owner is mailed.
async fn finding_15_totp_reauthentication_counts_toward_lockout(s: &mut TestServer) {
    let me = s.signup("Coded", "coded@security.test").await;
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
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/me/mfa/totp/confirm",
            &As::User(&me),
            Some(json!({"code": super::accounts::totp_at(&secret, -1), "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let reauth = |code: &str| json!({"totp_code": code});
    for guess in ["000000", "111111", "222222", "333333", "444444"] {
        let (status, body) = s
            .call(
                Method::POST,
                "/api/v1/me/reauthenticate",
                &As::User(&me),
                Some(reauth(guess)),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_mfa_code")),
            "{body}"
        );
    }
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/me/reauthenticate",
            &As::User(&me),
            Some(reauth(&super::accounts::totp_at(&secret, 1))),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::LOCKED, Some("account_locked")),
        "the right code is refused while the account is locked: {body}"
    );
    let mail = meshwork_app::mail::unsent(s.state(), 100).await.unwrap();
    assert!(mail
        .iter()
        .any(|m| m.kind == "account_locked" && m.to == "coded@security.test"));
}
server_test!(finding_15_totp_reauthentication_counts_toward_lockout);

/// Finding 20: the API's file download sent the stored content type, whatever it was
/// (`text/html`, `image/svg+xml`); the pages' download allowed only harmless types. Both now
/// send one way: an attachment, a named harmless type or bytes, not sniffed, sandboxed.
async fn finding_20_a_file_download_is_never_typed_as_a_page(s: &mut TestServer) {
    let c = setup(s, "Filer").await;
    for (name, stored, sent, bytes) in [
        (
            "page.html",
            "text/html",
            "application/octet-stream",
            &b"<script>alert(1)</script>"[..],
        ),
        (
            "logo.svg",
            "image/svg+xml",
            "application/octet-stream",
            b"<svg onload=alert(1)>",
        ),
        (
            "quote.pdf",
            "application/pdf",
            "application/pdf",
            b"%PDF-1.4\n%%EOF\n",
        ),
        // Declared a PDF, but a page by its bytes (ASVS 12.2.1): typed, and so served, as a page
        // would never be.
        (
            "fake.pdf",
            "application/pdf",
            "application/octet-stream",
            b"<script>alert(1)</script>",
        ),
    ] {
        let file = c
            .create("files", json!({"name": name, "content_type": stored}))
            .await;
        let url = format!(
            "/api/v1/workspaces/{}/files/{}/content",
            c.ws,
            file["id"].as_str().unwrap()
        );
        assert_eq!(put_content(s, &c.who, &url, bytes).await, StatusCode::OK);
        let got = s
            .req(Method::GET, &url, &As::User(&c.who))
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), StatusCode::OK);
        let h = got.headers();
        assert_eq!(h["content-type"], sent, "{name}");
        assert!(h["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;"));
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox"));
    }
}
server_test!(finding_20_a_file_download_is_never_typed_as_a_page);

/// Finding 21: a folder connector's settings answered the system's reason for any path it could
/// not read ("No such file or directory", "Permission denied"), so a workspace admin could probe
/// which paths exist anywhere on the server. Outside the operator's roots, every path now gets
/// the same answer.
async fn finding_21_folder_settings_do_not_tell_which_paths_exist(s: &mut TestServer) {
    let c = setup(s, "Prober").await;
    let mut answers = Vec::new();
    for path in [
        "/etc",
        "/nonexistent-meshwork-probe",
        "/root/.ssh/id_ed25519",
    ] {
        let (status, body) = s
            .call(
                Method::POST,
                &format!("/api/v1/workspaces/{}/connectors", c.ws),
                &As::User(&c.who),
                Some(json!({"source": "files", "settings": {"kind": "folder", "path": path}})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let message = body["message"].as_str().unwrap().to_string();
        assert!(
            message.contains("is not under a folder this server lets connectors read"),
            "{message}"
        );
        answers.push(message.replace(path, "PATH"));
    }
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
}
server_test!(finding_21_folder_settings_do_not_tell_which_paths_exist);

/// "Try settings" of a connector in `c`'s workspace.
async fn try_connector(
    s: &TestServer,
    (ws, who): (&str, &Session),
    settings: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    s.call(
        Method::POST,
        &format!("/api/v1/workspaces/{ws}/connectors/try"),
        &As::User(who),
        Some(json!({ "settings": settings })),
    )
    .await
}

/// ASVS 12.1.3: a workspace's attached files (their number and stored bytes) and its import
/// uploads on disk are bounded by the operator's `quotas`; past a limit, 413 `quota_exceeded`
/// names it, and nothing already stored is lost. Replacing a file's content does not count its
/// old content.
async fn storage_quotas_bound_a_workspaces_files_and_uploads(s: &mut TestServer) {
    s.config.quotas.workspace_files = 2;
    s.config.quotas.workspace_file_bytes = 1000;
    s.config.quotas.workspace_upload_bytes = 2000;
    s.restart().await;
    let c = setup(s, "Quota").await;
    let contact = c.create("contacts", json!({"first_name": "Grace"})).await;
    let mut files = Vec::new();
    for name in ["a.txt", "b.txt", "c.txt"] {
        let f = c
            .create("files", json!({"name": name, "about": [contact["id"]]}))
            .await;
        files.push(f["id"].as_str().unwrap().to_string());
    }
    let put = |file: &str, len: usize| {
        c.s.req(
            Method::PUT,
            &format!("/api/v1/workspaces/{}/files/{file}/content", c.ws),
            &As::User(&c.who),
        )
        .header("content-type", "application/octet-stream")
        .body(vec![b'x'; len])
        .send()
    };
    let refused = |r: reqwest::Response, setting: &'static str| async move {
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], "quota_exceeded", "{body}");
        assert!(
            body["message"].as_str().unwrap().contains(setting),
            "{body}"
        );
    };
    assert_eq!(put(&files[0], 400).await.unwrap().status(), StatusCode::OK);
    assert_eq!(put(&files[1], 400).await.unwrap().status(), StatusCode::OK);
    // Replaced, a file's old content does not count against it.
    assert_eq!(put(&files[0], 500).await.unwrap().status(), StatusCode::OK);
    // A third file is one too many; more bytes for the second, too much.
    refused(put(&files[2], 10).await.unwrap(), "quotas.workspace_files").await;
    refused(
        put(&files[1], 600).await.unwrap(),
        "quotas.workspace_file_bytes",
    )
    .await;
    let kept =
        c.s.req(
            Method::GET,
            &format!("/api/v1/workspaces/{}/files/{}/content", c.ws, files[1]),
            &As::User(&c.who),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        kept.bytes().await.unwrap().len(),
        400,
        "nothing stored was lost"
    );

    // An import upload past the upload quota is refused, and leaves nothing on disk.
    let import = |csv: String| {
        c.s.req(
            Method::POST,
            &format!(
                "/api/v1/workspaces/{}/imports?type=contact&layout=hubspot",
                c.ws
            ),
            &As::User(&c.who),
        )
        .header("content-type", "text/csv")
        .body(csv)
        .send()
    };
    let header = "First Name,Last Name,Email\n";
    let big = header.to_string() + &"Ada,Lovelace,ada@quota.test\n".repeat(100);
    refused(import(big).await.unwrap(), "quotas.workspace_upload_bytes").await;
    let uploads = s.data_dir().join("uploads").join(&c.ws);
    let left = std::fs::read_dir(&uploads).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        left,
        0,
        "a refused upload left files in {}",
        uploads.display()
    );
    let small = header.to_string() + "Ada,Lovelace,ada@quota.test\n";
    assert_eq!(import(small).await.unwrap().status(), StatusCode::ACCEPTED);
}
server_test!(storage_quotas_bound_a_workspaces_files_and_uploads);

/// Finding 19 (SSRF): a workspace admin's connector settings cannot aim the server at internal
/// addresses the operator has not listed in `connectors.private_hosts`, nor ever at a cloud
/// metadata address; a refused address is never connected to, and the answer says which
/// setting would allow it.
async fn finding_19_connectors_reach_internal_hosts_only_when_the_operator_lists_them(
    s: &mut TestServer,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    s.config.connectors.private_hosts.clear();
    s.restart().await;
    let super::crm::Crm { who, ws, .. } = setup(s, "Internal").await;
    let c = (ws.as_str(), &who);
    let ldap = |host: &str| json!({"kind": "ldap", "url": format!("ldap://{host}:{port}"), "base_dn": "dc=x", "bind_dn": "cn=r,dc=x", "password": "pw"});
    let imap = |host: &str| json!({"kind": "imap", "host": host, "port": port, "security": "none", "accounts": [{"user": "u", "password": "pw"}]});
    let carddav = |host: &str| json!({"kind": "carddav", "url": format!("http://{host}:{port}/dav/"), "user": "u", "password": "pw"});
    for (settings, setting) in [
        (ldap("127.0.0.1"), "connectors.private_hosts"),
        (ldap("localhost"), "connectors.private_hosts"),
        (imap("127.0.0.1"), "connectors.private_hosts"),
        (carddav("127.0.0.1"), "connectors.private_hosts"),
        (carddav("[::ffff:127.0.0.1]"), "connectors.private_hosts"),
        (ldap("169.254.169.254"), "never"),
        (carddav("169.254.169.254"), "never"),
    ] {
        let (status, body) = try_connector(s, c, settings.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{settings}: {body}"
        );
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(setting), "{settings}: {message}");
    }
    let accepted =
        tokio::time::timeout(std::time::Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "a refused address was connected to");

    // Listed, the same address is connected to (and answers nothing an LDAP client reads).
    s.config.connectors.private_hosts = vec!["127.0.0.1".into()];
    s.restart().await;
    let accepting = tokio::spawn(async move { listener.accept().await.is_ok() });
    let (status, body) = try_connector(s, c, ldap("127.0.0.1")).await;
    assert_ne!(status, StatusCode::OK, "{body}");
    assert!(
        !body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("private_hosts"),
        "{body}"
    );
    assert!(
        accepting.await.unwrap(),
        "the listed address was not connected to"
    );
    // An address beside it is still refused.
    let (status, body) = try_connector(s, c, ldap("127.0.0.2")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("private_hosts"),
        "{body}"
    );
}
server_test!(finding_19_connectors_reach_internal_hosts_only_when_the_operator_lists_them);

/// Finding 7: sign-up, email change and a locked account answer the same whether or not an
/// address has an account; the owner of an existing address is mailed instead, and nothing
/// of theirs changes.
async fn account_enumeration_answers_do_not_tell(s: &mut TestServer) {
    let ann = s.signup("Ann", "ann@enum.test").await;
    s.verify_email(&ann).await;
    let body = |email: &str, password: &str| json!({"name": "Someone", "email": email, "password": password, "confirm_age_16_or_over": true});
    let (new_status, new_body, _) = s.signup_with(body("fresh@enum.test", PASSWORD)).await;
    let (old_status, old_body, old_cookie) = s
        .signup_with(body("Ann@Enum.test", "a different passphrase 9"))
        .await;
    assert_eq!((old_status, &old_body), (new_status, &new_body));
    assert!(old_cookie.is_none());
    // Ann's account is untouched: her password still works, the other does not.
    assert_eq!(
        s.login_raw("ann@enum.test", "a different passphrase 9", json!({}))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.login_raw("ann@enum.test", PASSWORD, json!({}))
            .await
            .status(),
        StatusCode::OK
    );
    let mail = meshwork_app::mail::unsent(s.state(), 100).await.unwrap();
    assert!(mail
        .iter()
        .any(|m| m.kind == "signup_existing" && m.to == "ann@enum.test"));

    // An email change to a taken address answers like one to a free address.
    let bob = s.signup("Bob", "bob@enum.test").await;
    let change = |to: &str| json!({"email": to, "current_password": PASSWORD});
    let (taken_status, taken) = s
        .call(
            Method::PATCH,
            "/api/v1/me",
            &As::User(&bob),
            Some(change("ann@enum.test")),
        )
        .await;
    let (free_status, free) = s
        .call(
            Method::PATCH,
            "/api/v1/me",
            &As::User(&bob),
            Some(change("bob2@enum.test")),
        )
        .await;
    assert_eq!(
        (taken_status, free_status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(taken["email"], free["email"]);
    assert_eq!(taken["email"], "bob@enum.test");
    let mail = meshwork_app::mail::unsent(s.state(), 100).await.unwrap();
    assert!(mail
        .iter()
        .any(|m| m.kind == "email_change_refused" && m.to == "ann@enum.test"));
    assert!(!mail
        .iter()
        .any(|m| m.kind == "verify_email" && m.to == "ann@enum.test" && m.body.contains("move")));

    // A locked account answers like an unknown address.
    for _ in 0..5 {
        s.login_raw("bob@enum.test", "not it at all 1", json!({}))
            .await;
    }
    let locked = s.login_raw("bob@enum.test", PASSWORD, json!({})).await;
    let unknown = s.login_raw("nobody@enum.test", PASSWORD, json!({})).await;
    assert_eq!(locked.status(), unknown.status());
    assert_eq!(
        locked.json::<serde_json::Value>().await.unwrap(),
        unknown.json::<serde_json::Value>().await.unwrap()
    );
}
server_test!(account_enumeration_answers_do_not_tell);

/// Finding 8: recovery codes are stored as keyed hashes, not as a plain SHA-256 a copy of the
/// database could test guesses against.
async fn recovery_codes_are_stored_as_keyed_hashes(s: &mut TestServer) {
    let me = s.signup("Codes", "codes@security.test").await;
    let (_, setup) = s
        .call(
            Method::POST,
            "/api/v1/me/mfa/totp/setup",
            &As::User(&me),
            None,
        )
        .await;
    let secret = setup["secret"].as_str().unwrap().to_string();
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/me/mfa/totp/confirm",
            &As::User(&me),
            Some(json!({"code": super::accounts::totp_at(&secret, 0), "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let codes: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    let user: meshwork_domain::UserId = me.user_id.parse().unwrap();
    let store = &s.state().store;
    let plain = meshwork_app::state::token_hash(&codes[0].replace('-', ""));
    assert!(
        !store.take_recovery_code(user, &plain).await.unwrap(),
        "a code is stored as its plain SHA-256"
    );
    let keyed = meshwork_app::accounts::recovery_code_hash(s.state(), &codes[0]).unwrap();
    assert!(store.take_recovery_code(user, &keyed).await.unwrap());
    // The others still sign in (once each).
    let r = s
        .login_raw(
            "codes@security.test",
            PASSWORD,
            json!({"recovery_code": codes[1].to_uppercase()}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // OWASP ASVS 2.6.2: 24 letters and digits from 31, about 119 bits.
    assert_eq!(codes[2].replace('-', "").len(), 24, "{}", codes[2]);
    // OWASP ASVS 2.6.3: a code stored the old way (plain SHA-256) no longer signs in.
    let legacy = "abcd-efgh-jkmn";
    let sealed = store
        .user(user)
        .await
        .unwrap()
        .unwrap()
        .totp_secret_sealed
        .unwrap();
    assert!(store
        .replace_recovery_codes(
            user,
            &sealed,
            &[meshwork_app::state::token_hash("abcdefghjkmn")]
        )
        .await
        .unwrap());
    let r = s
        .login_raw(
            "codes@security.test",
            PASSWORD,
            json!({"recovery_code": legacy}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
server_test!(recovery_codes_are_stored_as_keyed_hashes);

/// Finding 12: a verification link verifies the address it was sent to, only while the account
/// still has it, even if the link was not voided when the address changed.
async fn a_verification_link_verifies_only_the_address_it_was_sent_to(s: &mut TestServer) {
    let me = s.signup("Moved", "first@security.test").await;
    let link = s.queued_token("verify_email", "first@security.test").await;
    // The account's address changes underneath, without the link being voided.
    let state = s.state();
    let user: meshwork_domain::UserId = me.user_id.parse().unwrap();
    let u = state.store.user(user).await.unwrap().unwrap();
    state
        .store
        .update_profile(
            user,
            &meshwork_store::ProfileUpdate {
                email_index: state.email_index("second@security.test").unwrap(),
                email_sealed: state
                    .seal_account(user, "email", b"second@security.test")
                    .unwrap(),
                name_sealed: u.name_sealed.clone(),
                company_sealed: u.company_sealed.clone(),
                job_title_sealed: u.job_title_sealed.clone(),
                email_verified: false,
            },
            meshwork_app::state::now_millis(),
        )
        .await
        .unwrap();
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/auth/verify-email",
            &As::Anonymous,
            Some(json!({"token": link})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, p) = s
        .call(Method::GET, "/api/v1/me", &As::User(&me), None)
        .await;
    assert_eq!(
        (p["email"].as_str(), &p["email_verified"]),
        (Some("second@security.test"), &json!(false))
    );
}
server_test!(a_verification_link_verifies_only_the_address_it_was_sent_to);

/// Finding 10: a session alone cannot mint an API key (the password is asked again), the
/// person a key acts for is mailed when one is made, and a password reset can revoke every key
/// the person created.
async fn api_keys_need_the_password_are_announced_and_die_with_a_reset(s: &mut TestServer) {
    let me = s.signup("Keyholder", "keys@security.test").await;
    let ws = s.create_workspace(&me, "Keys").await;
    let path = format!("/api/v1/workspaces/{ws}/api-keys");
    let (status, body) = s
        .call(
            Method::POST,
            &path,
            &As::User(&me),
            Some(json!({"name": "stolen", "role": "owner"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_credentials")),
        "{body}"
    );
    let key = s.create_key(&me, &ws, "member").await;
    let mail = meshwork_app::mail::unsent(s.state(), 100).await.unwrap();
    let notice = mail
        .iter()
        .find(|m| m.kind == "api_key_created" && m.to == "keys@security.test")
        .expect("the key's person is mailed");
    assert!(notice.body.contains("Keys"), "{}", notice.body);
    let workspace = format!("/api/v1/workspaces/{ws}");
    assert_eq!(
        s.status(Method::GET, &workspace, &As::Key(&key), None)
            .await,
        StatusCode::OK
    );
    // A reset without the box ticked leaves keys alone; with it, they stop working.
    ask_reset(s, "keys@security.test").await;
    let token = s.queued_token("password_reset", "keys@security.test").await;
    assert_eq!(
        reset(s, &token, "a brand new passphrase 1").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.status(Method::GET, &workspace, &As::Key(&key), None)
            .await,
        StatusCode::OK
    );
    ask_reset(s, "keys@security.test").await;
    let token = s.queued_token("password_reset", "keys@security.test").await;
    assert_eq!(
        s.status(
            Method::POST,
            "/api/v1/auth/password-reset/confirm",
            &As::Anonymous,
            Some(json!({"token": token, "new_password": "another new passphrase 2", "revoke_api_keys": true})),
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.status(Method::GET, &workspace, &As::Key(&key), None)
            .await,
        StatusCode::UNAUTHORIZED
    );
}
server_test!(api_keys_need_the_password_are_announced_and_die_with_a_reset);

/// Finding 11: sessions end after an idle period as well as at their absolute end; a person
/// sees their sessions and can end one or all others; the cookie has the `__Host-` prefix;
/// two session cookies are refused; changes to how one signs in are mailed.
async fn sessions_idle_out_are_listed_and_end_everywhere(s: &mut TestServer) {
    let me = s.signup("Sessions", "sessions@security.test").await;
    assert!(me.cookie.starts_with("__Host-mw_session="), "{}", me.cookie);
    let elsewhere = s.login("sessions@security.test").await;
    let third = s.login("sessions@security.test").await;
    let (status, list) = s
        .call(Method::GET, "/api/v1/me/sessions", &As::User(&me), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 3, "{list:?}");
    assert_eq!(list.iter().filter(|v| v["current"] == true).count(), 1);
    assert!(list.iter().all(|v| v["user_agent"] == "meshwork-tests/1"));
    assert!(list.iter().all(|v| v["ip"] == "127.0.0.1"));
    // End one by its id, then every other.
    let (_, mine) = s
        .call(Method::GET, "/api/v1/me/sessions", &As::User(&third), None)
        .await;
    let third_id = mine
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        s.status(
            Method::DELETE,
            &format!("/api/v1/me/sessions/{third_id}"),
            &As::User(&me),
            None
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.status(Method::GET, "/api/v1/me", &As::User(&third), None)
            .await,
        StatusCode::UNAUTHORIZED
    );
    let (status, ended) = s
        .call(Method::DELETE, "/api/v1/me/sessions", &As::User(&me), None)
        .await;
    assert_eq!((status, &ended["signed_out"]), (StatusCode::OK, &json!(1)));
    assert_eq!(
        s.status(Method::GET, "/api/v1/me", &As::User(&elsewhere), None)
            .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.status(Method::GET, "/api/v1/me", &As::User(&me), None)
            .await,
        StatusCode::OK
    );

    // Two session cookies: which one the browser meant cannot be told.
    let other = s.login("sessions@security.test").await;
    let r = s
        .client
        .get(format!("{}/api/v1/me", s.base))
        .header("cookie", format!("{}; {}", me.cookie, other.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Idle out: a session last used more than `auth.session_idle_hours` ago has ended.
    let hash = meshwork_app::state::token_hash(me.cookie.split_once('=').unwrap().1);
    let idle = s.config.auth.session_idle_hours as i64 * 3600 * 1000;
    let long_ago = meshwork_app::state::now_millis() - idle - 1000;
    s.state()
        .store
        .touch_session(&hash, long_ago, -idle * 2)
        .await
        .unwrap();
    assert_eq!(
        s.status(Method::GET, "/api/v1/me", &As::User(&me), None)
            .await,
        StatusCode::UNAUTHORIZED
    );

    // A password change is mailed to the person.
    let (status, _) = s
        .call(
            Method::POST,
            "/api/v1/me/password",
            &As::User(&other),
            Some(json!({"current_password": PASSWORD, "new_password": "a new passphrase here"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mail = meshwork_app::mail::unsent(s.state(), 100).await.unwrap();
    assert!(mail
        .iter()
        .any(|m| m.kind == "password_changed" && m.to == "sessions@security.test"));
}
server_test!(sessions_idle_out_are_listed_and_end_everywhere);

// --- OWASP ASVS rows fixed after the review, each test named after its row ----------------------

/// ASVS 7.2.1: a key's use is recorded (when, from where, the address sealed) and shown to the
/// workspace on the API and on the settings page.
async fn asvs_7_2_1_an_api_keys_last_use_is_recorded_and_shown(s: &mut TestServer) {
    let ann = s.signup("Ann", "ann@keyuse.test").await;
    let ws = s.create_workspace(&ann, "Key use").await;
    let key = s.create_key(&ann, &ws, "viewer").await;
    let keys = format!("/api/v1/workspaces/{ws}/api-keys");
    let (status, listed) = s.call(Method::GET, &keys, &As::User(&ann), None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert!(listed[0]["last_used_at"].is_null(), "{listed}");
    let before = meshwork_app::state::now_millis();
    let contacts = format!("/api/v1/workspaces/{ws}/contacts");
    for _ in 0..3 {
        let (status, body) = s.call(Method::GET, &contacts, &As::Key(&key), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, listed) = s.call(Method::GET, &keys, &As::User(&ann), None).await;
    let used = listed[0]["last_used_at"].as_i64().expect("recorded");
    assert!(used >= before, "{listed}");
    assert_eq!(listed[0]["last_used_from"], "127.0.0.1", "{listed}");
    // Stored sealed, never as the address itself.
    let rows = s.state().store.api_keys(ws.parse().unwrap()).await.unwrap();
    let sealed = rows[0].last_used_from_sealed.as_deref().unwrap();
    assert!(!contains(sealed, b"127.0.0.1"));
    // The settings page says it.
    let page = s
        .req(Method::GET, &format!("/w/{ws}/settings"), &As::User(&ann))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("from 127.0.0.1"), "{page}");
    // A key never used says so.
    let idle = s.create_key(&ann, &ws, "viewer").await;
    drop(idle);
    let (_, listed) = s.call(Method::GET, &keys, &As::User(&ann), None).await;
    assert_eq!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["last_used_at"].is_null())
            .count(),
        1,
        "{listed}"
    );
}
server_test!(asvs_7_2_1_an_api_keys_last_use_is_recorded_and_shown);

/// ASVS 8.3.8: audit entries past `retention.audit_months` are deleted by the housekeeping, and
/// the store refuses to delete any entry younger than 30 days, whatever the code asks.
async fn asvs_8_3_8_audit_entries_past_retention_are_deleted_and_recent_ones_never(
    s: &mut TestServer,
) {
    use meshwork_store::{AuditRow, AuditScope};
    const DAY: i64 = 86_400_000;
    let subject = meshwork_domain::UserId::new();
    let now = meshwork_app::state::now_millis();
    let entry = |days_ago: i64| AuditRow {
        id: meshwork_domain::AuditId::new(),
        workspace_id: None,
        actor: None,
        subject: Some(subject),
        kind: format!("test.{days_ago}_days_ago"),
        details_sealed: vec![1, 2, 3],
        at: now - days_ago * DAY,
    };
    let store = &s.state().store;
    for days in [800, 400, 40, 0] {
        store.append_audit(&entry(days)).await.unwrap();
    }
    let left = |rows: Vec<AuditRow>| {
        let mut kinds: Vec<String> = rows.into_iter().map(|r| r.kind).collect();
        kinds.sort();
        kinds
    };
    assert_eq!(s.config.retention.audit_months, 24, "the default");
    // The server's own housekeeping may run meanwhile (it runs at start when due): what is
    // left counts, not who deleted it.
    meshwork_app::retention::prune_audit(s.state(), now)
        .await
        .unwrap();
    let rows = store
        .audit(AuditScope::User(subject), None, 100)
        .await
        .unwrap();
    assert_eq!(
        left(rows),
        ["test.0_days_ago", "test.400_days_ago", "test.40_days_ago"]
    );
    // Asked to delete everything, the store refuses: the log is append-only for 30 days.
    let refused = store.prune_audit(now + DAY).await;
    assert!(refused.is_err(), "{refused:?}");
    let rows = store
        .audit(AuditScope::User(subject), None, 100)
        .await
        .unwrap();
    assert_eq!(rows.len(), 3, "nothing went");
    // Entries older than 30 days may go, when the setting says so.
    store.prune_audit(now - 31 * DAY).await.unwrap();
    let rows = store
        .audit(AuditScope::User(subject), None, 100)
        .await
        .unwrap();
    assert_eq!(left(rows), ["test.0_days_ago"]);
}
server_test!(asvs_8_3_8_audit_entries_past_retention_are_deleted_and_recent_ones_never);

/// ASVS 2.8.5: a TOTP code sent a second time is refused, audited as a reuse (not as a plain
/// wrong code), and the account holder is mailed; a wrong code is not reported as a reuse.
async fn asvs_2_8_5_a_reused_totp_code_is_audited_and_its_holder_told(s: &mut TestServer) {
    use super::accounts::totp_at;
    let me = s.signup("Tia", "tia@reuse.test").await;
    let (secret, _) = totp_on(s, &me).await;
    let wrong = s
        .login_raw("tia@reuse.test", PASSWORD, json!({"totp_code": "000001"}))
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let code = totp_at(&secret, 0);
    let first = s
        .login_raw("tia@reuse.test", PASSWORD, json!({"totp_code": code}))
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    let (_, audit) = s
        .call(
            Method::GET,
            "/api/v1/me/audit?limit=200",
            &As::User(&me),
            None,
        )
        .await;
    assert!(!kinds(&audit).contains(&"mfa.totp_reused"), "{audit}");
    let again = s
        .login_raw("tia@reuse.test", PASSWORD, json!({"totp_code": code}))
        .await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        again.json::<serde_json::Value>().await.unwrap()["code"],
        "invalid_mfa_code"
    );
    let (_, audit) = s
        .call(
            Method::GET,
            "/api/v1/me/audit?limit=200",
            &As::User(&me),
            None,
        )
        .await;
    assert_eq!(
        kinds(&audit)
            .iter()
            .filter(|k| **k == "mfa.totp_reused")
            .count(),
        1,
        "{audit}"
    );
    let mail = meshwork_app::mail::unsent(s.state(), 100).await.unwrap();
    let told: Vec<_> = mail.iter().filter(|m| m.kind == "totp_reused").collect();
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].to, "tia@reuse.test");
    assert!(
        told[0].body.contains("change your password"),
        "{}",
        told[0].body
    );
}
server_test!(asvs_2_8_5_a_reused_totp_code_is_audited_and_its_holder_told);

/// ASVS 2.1.7: a well-known password (from the top 10,000, padded or repeated) is refused at
/// sign-up, and one set before the check is found at sign-in: audited, and its holder is asked
/// by mail to change it.
async fn asvs_2_1_7_well_known_passwords_are_refused_and_found_at_sign_in(s: &mut TestServer) {
    let (status, body, _) = s
        .signup_with(json!({
            "name": "Wes", "email": "wes@common.test", "password": "dragon2024!!!!", "company": "Acme", "job_title": "Engineer",
            "confirm_age_16_or_over": true
        }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "weak_password", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("common password"),
        "{body}"
    );

    let me = s.signup("Wes", "wes@common.test").await;
    let user: meshwork_domain::UserId = me.user_id.parse().unwrap();
    let hash = meshwork_app::accounts::hash_password(s.state(), "monkeymonkey".into())
        .await
        .unwrap();
    s.state()
        .store
        .set_password_hash(user, &hash, meshwork_app::state::now_millis())
        .await
        .unwrap();
    let resp = s
        .login_raw("wes@common.test", "monkeymonkey", json!({}))
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the right password still signs in"
    );
    let mail = meshwork_app::mail::unsent(s.state(), 100).await.unwrap();
    assert!(mail
        .iter()
        .any(|m| m.kind == "password_well_known" && m.to == "wes@common.test"));
    let (_, audit) = s
        .call(
            Method::GET,
            "/api/v1/me/audit?limit=200",
            &As::User(&me),
            None,
        )
        .await;
    assert!(kinds(&audit).contains(&"password.well_known"), "{audit}");
}
server_test!(asvs_2_1_7_well_known_passwords_are_refused_and_found_at_sign_in);

/// Uploads `bytes` as a file's content at `url` (`…/files/{id}/content`); answers the status.
async fn put_content(s: &TestServer, who: &Session, url: &str, bytes: &[u8]) -> StatusCode {
    s.req(Method::PUT, url, &As::User(who))
        .header("content-type", "application/octet-stream")
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap()
        .status()
}

/// Turns TOTP on for `me` and answers its secret and recovery codes.
pub(crate) async fn totp_on(s: &TestServer, me: &Session) -> (String, Vec<String>) {
    use super::accounts::totp_at;
    let (_, setup) = s
        .call(
            Method::POST,
            "/api/v1/me/mfa/totp/setup",
            &As::User(me),
            None,
        )
        .await;
    let secret = setup["secret"].as_str().unwrap().to_string();
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/me/mfa/totp/confirm",
            &As::User(me),
            Some(json!({"code": totp_at(&secret, -1), "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let codes = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    (secret, codes)
}

/// Security finding 23: turning two-factor authentication off checked the password (a right
/// one cleared the failure count) and then the code, which did not count; a stolen session that
/// knew the password could try codes without end. Now both are one attempt toward the lockout,
/// and a wrong password never uses up a recovery code.
async fn finding_23_wrong_codes_to_turn_off_mfa_count_toward_lockout(s: &mut TestServer) {
    use super::accounts::totp_at;
    let me = s.signup("Fin", "fin@finding23.test").await;
    let (secret, codes) = totp_on(s, &me).await;
    let off = |password: &str, code: &str| json!({"password": password, "code": code});
    // A wrong password with a real recovery code: refused, and the code is not used up.
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/me/mfa/totp/disable",
            &As::User(&me),
            Some(off("not the password", &codes[0])),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_credentials")),
        "{body}"
    );
    let (_, profile) = s
        .call(Method::GET, "/api/v1/me", &As::User(&me), None)
        .await;
    assert_eq!(profile["recovery_codes_left"], 10, "{profile}");
    for guess in ["000001", "000002", "000003", "000004"] {
        let (status, body) = s
            .call(
                Method::POST,
                "/api/v1/me/mfa/totp/disable",
                &As::User(&me),
                Some(off(PASSWORD, guess)),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_mfa_code")),
            "{body}"
        );
    }
    // Five wrong tries in all: locked, even with the right password and a right code.
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/me/mfa/totp/disable",
            &As::User(&me),
            Some(off(PASSWORD, &totp_at(&secret, 0))),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::LOCKED, Some("account_locked")),
        "{body}"
    );
    let (_, profile) = s
        .call(Method::GET, "/api/v1/me", &As::User(&me), None)
        .await;
    assert_eq!(profile["mfa_enabled"], true, "{profile}");
}
server_test!(finding_23_wrong_codes_to_turn_off_mfa_count_toward_lockout);

/// ASVS 2.5.7: a person can make new recovery codes (the old ones stop working), and one who
/// lost their authenticator turns it off with a recovery code.
async fn asvs_2_5_7_recovery_codes_are_replaced_and_a_lost_authenticator_turned_off(
    s: &mut TestServer,
) {
    use super::accounts::totp_at;
    let me = s.signup("Rae", "rae@recovery.test").await;
    let (secret, old) = totp_on(s, &me).await;
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/me/mfa/recovery-codes",
            &As::User(&me),
            Some(json!({"password": PASSWORD, "code": totp_at(&secret, 0)})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(new.len(), 10);
    assert!(new.iter().all(|c| !old.contains(c)));
    // An old code no longer signs in; a new one does.
    let resp = s
        .login_raw(
            "rae@recovery.test",
            PASSWORD,
            json!({"recovery_code": old[1]}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = s
        .login_raw(
            "rae@recovery.test",
            PASSWORD,
            json!({"recovery_code": new[0]}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    // The device is lost: a recovery code turns two-factor authentication off.
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/me/mfa/totp/disable",
            &As::User(&me),
            Some(json!({"password": PASSWORD, "code": new[1]})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, profile) = s
        .call(Method::GET, "/api/v1/me", &As::User(&me), None)
        .await;
    assert_eq!(profile["mfa_enabled"], false, "{profile}");
    let (_, audit) = s
        .call(
            Method::GET,
            "/api/v1/me/audit?limit=200",
            &As::User(&me),
            None,
        )
        .await;
    let kinds = kinds(&audit);
    assert!(
        kinds.contains(&"mfa.recovery_codes_replaced") && kinds.contains(&"mfa.disabled"),
        "{audit}"
    );
    let mail = meshwork_app::mail::unsent(s.state(), 100).await.unwrap();
    assert!(mail.iter().any(|m| m.kind == "mfa_changed"
        && m.to == "rae@recovery.test"
        && m.body.contains("New recovery codes")));
}
server_test!(asvs_2_5_7_recovery_codes_are_replaced_and_a_lost_authenticator_turned_off);

/// ASVS 8.3.3: the sign-up page links the operator's privacy notice when one is configured (and
/// shows no empty link when none is); a notice address that is not http(s) is refused at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asvs_8_3_3_the_sign_up_page_links_the_privacy_notice() {
    let sign_up = |s: &TestServer| {
        let req = s.req(Method::GET, "/sign-up", &As::Anonymous);
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    let mut s = TestServer::start(TestBackend::Sqlite).await.unwrap();
    assert!(!sign_up(&s).await.contains("privacy notice"));
    s.stop().await;
    let mut s = TestServer::start_with(TestBackend::Sqlite, |c| {
        c.privacy_url = "https://example.org/privacy".into()
    })
    .await
    .unwrap();
    let page = sign_up(&s).await;
    assert!(
        page.contains(r#"<a href="https://example.org/privacy">the privacy notice</a>"#),
        "{page}"
    );
    s.stop().await;
    let bad = meshwork_config::Config {
        privacy_url: "javascript:alert(1)".into(),
        ..Default::default()
    };
    let e = bad.validate().unwrap_err().to_string();
    assert!(e.contains("privacy_url"), "{e}");
}

/// ASVS 2.3.3: the creator of an API key that expires within a week is told once, with what to
/// do; a key further off, a revoked key and a key without expiry are not announced.
async fn asvs_2_3_3_an_api_keys_creator_is_told_before_it_expires(s: &mut TestServer) {
    let ann = s.signup("Ann", "ann@expiry.test").await;
    let ws = s.create_workspace(&ann, "Expiry").await;
    let keys = format!("/api/v1/workspaces/{ws}/api-keys");
    let mut ids = Vec::new();
    for (name, days) in [
        ("nightly sync", json!(3)),
        ("later", json!(30)),
        ("revoked", json!(2)),
        ("forever", json!(null)),
    ] {
        let (status, key) = s
            .call(
                Method::POST,
                &keys,
                &As::User(&ann),
                Some(json!({"name": name, "role": "viewer", "expires_in_days": days, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{key}");
        ids.push(key["id"].as_str().unwrap().to_string());
    }
    let (status, _) = s
        .call(
            Method::DELETE,
            &format!("{keys}/{}", ids[2]),
            &As::User(&ann),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let now = meshwork_app::state::now_millis();
    // The server's own housekeeping may run meanwhile (it runs at start when due): the mails
    // count, not which run sent them.
    meshwork_app::workspaces::warn_expiring_keys(s.state(), now)
        .await
        .unwrap();
    let mail = meshwork_app::mail::unsent(s.state(), 100).await.unwrap();
    let warned: Vec<_> = mail
        .iter()
        .filter(|m| m.kind == "api_key_expiring")
        .collect();
    assert_eq!(warned.len(), 1);
    assert_eq!(warned[0].to, "ann@expiry.test");
    assert!(
        warned[0].subject.contains("\"nightly sync\"") && warned[0].subject.contains("3 days"),
        "{}",
        warned[0].subject
    );
    assert!(
        warned[0].body.contains("create a new key"),
        "{}",
        warned[0].body
    );
    // Once: the next run (another server's, or tomorrow's) says nothing more.
    let told = meshwork_app::workspaces::warn_expiring_keys(s.state(), now + 86_400_000)
        .await
        .unwrap();
    assert_eq!(told, 0);
    // The 30-day key is announced when its week comes.
    let told = meshwork_app::workspaces::warn_expiring_keys(s.state(), now + 24 * 86_400_000)
        .await
        .unwrap();
    assert_eq!(told, 1);
}
server_test!(asvs_2_3_3_an_api_keys_creator_is_told_before_it_expires);

/// ASVS 12.2.1: a file's type is what its bytes are, where they carry a signature, whatever the
/// client declared; a format without a signature keeps the declared type.
async fn asvs_12_2_1_a_files_type_is_read_from_its_bytes(s: &mut TestServer) {
    let c = setup(s, "Typer").await;
    for (declared, bytes, recorded) in [
        ("image/png", &b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00\xb8\x00\x00\x00\x00\x00\x00\x00\x40\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x00\x00\x00PE\x00\x00"[..], "application/vnd.microsoft.portable-executable"),
        ("text/plain", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
        ("text/csv", b"name,email\nAda,ada@example.com\n", "text/csv"),
        // Text declared as text stays text, even where it starts like a bitmap ("BM").
        ("text/csv", b"BMW,3 Series\nAudi,A4\n", "text/csv"),
        // A type with a signature the bytes lack is not believed.
        ("image/png", b"just some text", "application/octet-stream"),
    ] {
        let file = c
            .create("files", json!({"name": "upload", "content_type": declared}))
            .await;
        let id = file["id"].as_str().unwrap();
        let url = format!("/api/v1/workspaces/{}/files/{id}/content", c.ws);
        assert_eq!(put_content(s, &c.who, &url, bytes).await, StatusCode::OK);
        let (status, got) = s
            .call(
                Method::GET,
                &format!("/api/v1/workspaces/{}/files/{id}", c.ws),
                &As::User(&c.who),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{got}");
        assert_eq!(got["fields"]["content_type"], recorded, "{declared}: {got}");
    }
}
server_test!(asvs_12_2_1_a_files_type_is_read_from_its_bytes);

/// ASVS 8.3.5: downloading a file is audited, with its id and size, never its name or content.
async fn asvs_8_3_5_file_downloads_are_audited_without_their_content(s: &mut TestServer) {
    let c = setup(s, "Auditor").await;
    let file = c
        .create(
            "files",
            json!({"name": "salaries-2026.txt", "content_type": "text/plain"}),
        )
        .await;
    let id = file["id"].as_str().unwrap();
    let url = format!("/api/v1/workspaces/{}/files/{id}/content", c.ws);
    assert_eq!(
        put_content(s, &c.who, &url, b"confidential figures").await,
        StatusCode::OK
    );
    let got = s
        .req(Method::GET, &url, &As::User(&c.who))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    let (status, audit) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{}/audit", c.ws),
            &As::User(&c.who),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    assert_eq!(
        kinds(&audit)
            .iter()
            .filter(|k| **k == "file.downloaded")
            .count(),
        1,
        "{audit}"
    );
    let text = audit.to_string();
    assert!(text.contains(id), "{text}");
    assert!(
        !text.contains("salaries") && !text.contains("confidential"),
        "{text}"
    );
}
server_test!(asvs_8_3_5_file_downloads_are_audited_without_their_content);

/// ASVS 2.4.5: passwords are hashed with a pepper (a server secret kept apart from the database),
/// so the stored hash alone verifies nothing; an account whose hash is from before the pepper
/// signs in as before, and its hash is replaced by a peppered one then.
async fn asvs_2_4_5_passwords_are_peppered_and_older_hashes_replaced_at_sign_in(
    s: &mut TestServer,
) {
    use argon2::password_hash::{
        rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
    };
    let me = s.signup("Pep", "pep@pepper.test").await;
    let user: meshwork_domain::UserId = me.user_id.parse().unwrap();
    let stored = |s: &TestServer| {
        let store = s.state().store.clone();
        async move { store.user(user).await.unwrap().unwrap().password_hash }
    };
    let hash = stored(s).await;
    assert!(meshwork_app::accounts::is_peppered(&hash), "{hash}");
    let parsed = PasswordHash::new(&hash).unwrap();
    assert!(
        argon2::Argon2::default()
            .verify_password(PASSWORD.as_bytes(), &parsed)
            .is_err(),
        "the hash alone must not verify the password"
    );
    // A hash from before the pepper.
    let old = argon2::Argon2::default()
        .hash_password(PASSWORD.as_bytes(), &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
    s.state()
        .store
        .set_password_hash(user, &old, meshwork_app::state::now_millis())
        .await
        .unwrap();
    let wrong = s
        .login_raw("pep@pepper.test", "not the password!", json!({}))
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(stored(s).await, old, "a wrong password changes nothing");
    let right = s.login_raw("pep@pepper.test", PASSWORD, json!({})).await;
    assert_eq!(right.status(), StatusCode::OK);
    let upgraded = stored(s).await;
    assert!(meshwork_app::accounts::is_peppered(&upgraded), "{upgraded}");
    let right = s.login_raw("pep@pepper.test", PASSWORD, json!({})).await;
    assert_eq!(right.status(), StatusCode::OK, "and signs in with it");
}
server_test!(asvs_2_4_5_passwords_are_peppered_and_older_hashes_replaced_at_sign_in);

/// ASVS 3.3.4, 3.7.1 and 4.3.3: a session whose owner last proved it is them more than 5
/// minutes ago cannot sign out their other sessions, change a member's role, invite an admin or
/// export the whole workspace, until the password is given again. An API key (minted with the
/// password) is not asked; inviting a plain member is not gated.
async fn asvs_3_3_4_and_3_7_1_sensitive_changes_need_a_fresh_confirmation(s: &mut TestServer) {
    let ada = s.signup("Ada", "ada@stepup.test").await;
    let ws = s.create_workspace(&ada, "Step Up Ltd").await;
    let bob = s.signup("Bob", "bob@stepup.test").await;
    s.add_member(&ada, &ws, &bob, "member").await;
    let key = s.create_key(&ada, &ws, "owner").await;
    let elsewhere = s.login("ada@stepup.test").await;
    let (_, sessions) = s
        .call(Method::GET, "/api/v1/me/sessions", &As::User(&ada), None)
        .await;
    let other = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["current"] == false)
        .expect("the second session is listed")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let role_path = format!("/api/v1/workspaces/{ws}/members/{}", bob.user_id);
    let export_path = format!("/api/v1/workspaces/{ws}/export/contacts.csv");
    let invites = format!("/api/v1/workspaces/{ws}/invites");
    s.age_session(&ada, 6).await;
    let gated = [
        (Method::DELETE, "/api/v1/me/sessions".to_string(), None),
        (Method::DELETE, format!("/api/v1/me/sessions/{other}"), None),
        (
            Method::PATCH,
            role_path.clone(),
            Some(json!({"role": "admin"})),
        ),
        (
            Method::POST,
            invites.clone(),
            Some(json!({"email": "cy@stepup.test", "role": "admin"})),
        ),
        (Method::GET, export_path.clone(), None),
    ];
    for (method, path, body) in gated.clone() {
        let (status, body) = s.call(method, &path, &As::User(&ada), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(body["code"], "reauthentication_required", "{path}");
    }
    assert_eq!(
        s.member_role(&ada, &ws, "bob@stepup.test").await.as_deref(),
        Some("member"),
        "nothing changed"
    );
    let (status, _) = s
        .call(Method::GET, "/api/v1/me", &As::User(&elsewhere), None)
        .await;
    assert_eq!(status, StatusCode::OK, "the other session still stands");
    // A plain member's invitation is not gated; an API key is not asked.
    let (status, body) = s
        .call(
            Method::POST,
            &invites,
            &As::User(&ada),
            Some(json!({"email": "di@stepup.test", "role": "member"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = s
        .call(Method::GET, &export_path, &As::Key(&key), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    // With the password again, each goes through.
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/me/reauthenticate",
            &As::User(&ada),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = s
        .call(
            Method::PATCH,
            &role_path,
            &As::User(&ada),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = s
        .call(Method::GET, &export_path, &As::User(&ada), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/me/sessions/{other}"),
            &As::User(&ada),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = s
        .call(Method::GET, "/api/v1/me", &As::User(&elsewhere), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "signed out");
}
server_test!(asvs_3_3_4_and_3_7_1_sensitive_changes_need_a_fresh_confirmation);

/// ASVS 4.3.1: an owner may require two-factor authentication of the workspace's owners and
/// admins (only with it on for themselves). Then an admin without it keeps a member's rights
/// and is refused every admin right (`admin_mfa_required`) on the API and the pages, until they
/// turn it on; the owners' list names them; their API keys act as a member's.
async fn asvs_4_3_1_a_workspace_can_require_mfa_of_its_admins(s: &mut TestServer) {
    let ada = s.signup("Ada", "ada@adminmfa.test").await;
    let ws = s.create_workspace(&ada, "Two Factor Ltd").await;
    let bob = s.signup("Bob", "bob@adminmfa.test").await;
    s.add_member(&ada, &ws, &bob, "admin").await;
    let key = s.create_key(&ada, &ws, "admin").await;
    let bobs_key = s.create_key(&bob, &ws, "admin").await;
    let security = format!("/api/v1/workspaces/{ws}/security");
    let on = Some(json!({"admin_mfa_required": true}));
    // Ada cannot require what she does not use herself.
    let (status, body) = s
        .call(Method::PUT, &security, &As::User(&ada), on.clone())
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "mfa_not_enabled");
    let (_, body) = s.call(Method::GET, &security, &As::User(&ada), None).await;
    assert_eq!(body["admin_mfa_required"], false);
    let (status, _) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/api-keys"),
            &As::User(&bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "not required yet");

    totp_on(s, &ada).await;
    let (status, body) = s
        .call(Method::PUT, &security, &As::User(&ada), on.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["admin_mfa_required"], true);
    let without: Vec<&str> = body["admins_without_mfa"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(without, ["bob@adminmfa.test"]);
    // Bob, without it: an admin's rights are refused, a member's stay.
    for (method, path, body) in [
        (
            Method::GET,
            format!("/api/v1/workspaces/{ws}/api-keys"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/workspaces/{ws}/invites"),
            Some(json!({"email": "cy@adminmfa.test", "role": "viewer"})),
        ),
        (
            Method::GET,
            format!("/api/v1/workspaces/{ws}/export/contacts.csv"),
            None,
        ),
    ] {
        let (status, body) = s.call(method, &path, &As::User(&bob), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(body["code"], "admin_mfa_required", "{path}");
    }
    let (status, body) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/contacts"),
            &As::User(&bob),
            Some(json!({"first_name": "Kept"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a member's rights stay: {body}"
    );
    let page = reqwest::Client::new()
        .get(format!("{}/w/{ws}/settings", s.base))
        .header("cookie", &bob.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("turn it on for your account"), "{html}");
    assert!(!html.contains("Create API key"));
    // A page's admin form, posted anyway, is refused the same way.
    let post = |who: &Session, path: String, fields: Vec<(&'static str, &'static str)>| {
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        body.append_pair("csrf_token", &who.csrf);
        for (k, v) in fields {
            body.append_pair(k, v);
        }
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(format!("{}{path}", s.base))
            .header("cookie", &who.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin")
            .body(body.finish())
            .send()
    };
    let r = post(
        &bob,
        format!("/w/{ws}/settings/keys"),
        vec![("name", "mine"), ("role", "admin"), ("password", PASSWORD)],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("two-factor authentication"));
    // Ada turns the rule off and on again from the page.
    let r = post(&ada, format!("/w/{ws}/settings/security"), vec![])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, body) = s.call(Method::GET, &security, &As::User(&ada), None).await;
    assert_eq!(body["admin_mfa_required"], false);
    let r = post(
        &ada,
        format!("/w/{ws}/settings/security"),
        vec![("admin_mfa", "yes")],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, body) = s.call(Method::GET, &security, &As::User(&ada), None).await;
    assert_eq!(body["admin_mfa_required"], true);
    // An API key acts with its creator's rights: Ada's keeps an admin's, Bob's a member's.
    let (status, _) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/api-keys"),
            &As::Key(&key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/api-keys"),
            &As::Key(&bobs_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/contacts"),
            &As::Key(&bobs_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "a member's rights stay: {body}");
    // Ada, with it, keeps everything; Bob turns it on and gets his rights back.
    let (status, _) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/api-keys"),
            &As::User(&ada),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    totp_on(s, &bob).await;
    let (status, _) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/api-keys"),
            &As::User(&bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = s.call(Method::GET, &security, &As::User(&ada), None).await;
    assert_eq!(body["admins_without_mfa"], json!([]));
}
server_test!(asvs_4_3_1_a_workspace_can_require_mfa_of_its_admins);

/// ASVS 12.4.2: with `clamd` set, every file's bytes go to a real ClamAV daemon before they are
/// stored: malware is refused (`file_infected`, naming the signature) and nothing is kept; a
/// clean file is stored; and while the daemon does not answer, uploads are refused
/// (`scanner_unavailable`), never let through unscanned.
async fn asvs_12_4_2_files_are_scanned_and_malware_is_refused(
    s: &mut TestServer,
    clamd: super::clamd::Clamd,
) {
    let c = setup(s, "Scanner").await;
    let file = c
        .create(
            "files",
            json!({"name": "invoice.txt", "content_type": "text/plain"}),
        )
        .await;
    let id = file["id"].as_str().unwrap();
    let url = format!("/api/v1/workspaces/{}/files/{id}/content", c.ws);
    let put = |bytes: &'static [u8]| {
        let req = s
            .req(Method::PUT, &url, &As::User(&c.who))
            .header("content-type", "application/octet-stream")
            .body(bytes);
        async move {
            let r = req.send().await.unwrap();
            (r.status(), r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, body) = put(super::clamd::EICAR).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "file_infected");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(super::clamd::SIGNATURE),
        "{body}"
    );
    let (status, _) = s.call(Method::GET, &url, &As::User(&c.who), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was stored");
    let (status, body) = put(b"Invoice 42: 3 hours of consulting").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["fields"]["size"], 33);
    // The daemon stops: files wait, none is let through unscanned.
    drop(clamd);
    let (status, body) = put(b"Invoice 43: unscanned").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "scanner_unavailable");
    let (_, got) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{}/files/{id}", c.ws),
            &As::User(&c.who),
            None,
        )
        .await;
    assert_eq!(got["fields"]["size"], 33, "the clean file stands: {got}");
}

mod asvs_12_4_2 {
    use super::super::clamd::Clamd;
    use super::super::common::{TestBackend, TestServer};
    async fn with(backend: TestBackend) {
        let clamd = Clamd::start();
        let address = clamd.address();
        let Some(mut s) = TestServer::start_with(backend, |c| c.clamd = address).await else {
            return;
        };
        super::asvs_12_4_2_files_are_scanned_and_malware_is_refused(&mut s, clamd).await;
        s.stop().await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        with(TestBackend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        with(TestBackend::Postgres).await
    }
}

/// OWASP ASVS 2.5.6: with two-factor authentication on, a password reset needs a code too, so
/// a mailbox alone does not take the account. Without one, or with a wrong one, the link stays
/// usable; a recovery code works (and is used up); the new password then signs in with a code.
async fn asvs_2_5_6_a_reset_of_an_account_with_two_factor_needs_a_code(s: &mut TestServer) {
    use super::accounts::totp_at;
    let me = s.signup("Reset", "reset@security.test").await;
    let (secret, codes) = totp_on(s, &me).await;
    let status = s
        .status(
            Method::POST,
            "/api/v1/auth/password-reset",
            &As::Anonymous,
            Some(json!({"email": "reset@security.test"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let token = s
        .queued_token("password_reset", "reset@security.test")
        .await;
    let mail = meshwork_app::mail::unsent(s.state(), 10_000).await.unwrap();
    assert!(
        mail.iter()
            .any(|m| m.kind == "password_reset" && m.body.contains("have a code")),
        "the mail says a code will be asked"
    );
    let new_password = "a brand new passphrase";
    let confirm = |code: Option<&str>| {
        let mut body = json!({"token": token, "new_password": new_password});
        if let Some(c) = code {
            body["code"] = json!(c);
        }
        s.call(
            Method::POST,
            "/api/v1/auth/password-reset/confirm",
            &As::Anonymous,
            Some(body),
        )
    };
    let (status, body) = confirm(None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("mfa_required")),
        "{body}"
    );
    let (status, body) = confirm(Some("000000")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_mfa_code")),
        "{body}"
    );
    // The old password still signs in: nothing changed.
    let r = s
        .login_raw(
            "reset@security.test",
            PASSWORD,
            json!({"totp_code": totp_at(&secret, 0)}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // The same link, with a recovery code.
    let (status, body) = confirm(Some(&codes[0])).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = confirm(Some(&codes[1])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the link worked once");
    let r = s
        .login_raw(
            "reset@security.test",
            new_password,
            json!({"recovery_code": codes[0]}),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the recovery code is used up"
    );
    let r = s
        .login_raw(
            "reset@security.test",
            new_password,
            json!({"totp_code": totp_at(&secret, 1)}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}
server_test!(asvs_2_5_6_a_reset_of_an_account_with_two_factor_needs_a_code);
