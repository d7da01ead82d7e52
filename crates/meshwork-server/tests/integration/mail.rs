//! Mail that really leaves the server: each test starts a real SMTP server (aiosmtpd, from
//! `meshwork-testkit`), points Meshwork at it, and reads what it received. Links in the mail are
//! followed through the pages they open, as a person would.

use super::common::{As, Session, TestBackend, TestServer, PASSWORD};
use meshwork_app::jobs::{self, JobView};
use meshwork_testkit::smtp::{free_port, Received, SmtpSink};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

macro_rules! both {
    ($name:ident) => {
        mod $name {
            use super::TestBackend;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(TestBackend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(TestBackend::Postgres).await
            }
        }
    };
}

/// A server sending mail to the SMTP server on `port` (plain text: it is on loopback), with
/// fast retries.
async fn with_smtp(backend: TestBackend, port: u16) -> Option<TestServer> {
    TestServer::start_with(backend, |c| {
        c.public_url = "http://meshwork.test".into();
        c.smtp.host = "127.0.0.1".into();
        c.smtp.port = port;
        c.smtp.tls = "none".into();
        c.smtp.from = "Meshwork <meshwork@mail.test>".into();
        c.smtp.timeout_seconds = 5;
        c.jobs.poll_millis = 100;
        c.jobs.retry_base_seconds = 1;
        c.jobs.retry_max_seconds = 2;
    })
    .await
}

/// The path and query of a link from a mail, to call on the test server.
fn path_of(link: &str) -> String {
    link.trim_start_matches("http://meshwork.test").to_string()
}

fn token_of(link: &str) -> String {
    link.split("token=").nth(1).unwrap().to_string()
}

/// A form post from one of the server's own pages.
async fn post_form(
    s: &TestServer,
    path: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let mut b = s
        .client
        .post(format!("{}{path}", s.base))
        .header("sec-fetch-site", "same-origin")
        .form(form);
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    let r = b.send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn get_page(s: &TestServer, path: &str, cookie: Option<&str>) -> (StatusCode, String) {
    let mut b = s.client.get(format!("{}{path}", s.base));
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    let r = b.send().await.unwrap();
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    (r.status(), r.text().await.unwrap())
}

/// The mail jobs, newest first, with each one's recipient.
async fn mail_jobs(s: &TestServer) -> Vec<(JobView, String)> {
    let mut out = Vec::new();
    for j in jobs::list(s.state(), None, None, 500).await.unwrap() {
        if j.kind == jobs::MAIL_SEND {
            let (mail, _) = meshwork_app::mail::get(s.state(), j.id)
                .await
                .unwrap()
                .unwrap();
            out.push((j, mail.to));
        }
    }
    out
}

/// Waits until the mail job to `to` satisfies `done`.
async fn wait_job(s: &TestServer, to: &str, done: impl Fn(&JobView) -> bool) -> JobView {
    let start = Instant::now();
    loop {
        if let Some((j, _)) = mail_jobs(s).await.into_iter().find(|(_, t)| t == to) {
            if done(&j) {
                return j;
            }
        }
        assert!(
            start.elapsed() < WAIT,
            "the mail job to {to} never got there: {:?}",
            mail_jobs(s).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn email_verified(s: &TestServer, who: &Session) -> bool {
    let (_, me) = s
        .call(Method::GET, "/api/v1/me", &As::User(who), None)
        .await;
    me["email_verified"] == true
}

fn mail_to<'a>(got: &'a [Received], to: &str) -> Vec<&'a Received> {
    got.iter().filter(|m| m.envelope_to == to).collect()
}

async fn promise_cl09_mail_goes_out_through_the_operators_smtp_server(backend: TestBackend) {
    let sink = SmtpSink::start();
    let Some(mut s) = with_smtp(backend, sink.port).await else {
        return;
    };
    s.signup("Ada Lovelace", "ada@mail.test").await;
    let m = sink.wait_for_mail_to("ada@mail.test", WAIT).await;
    assert_eq!(m.header("From").unwrap(), "Meshwork <meshwork@mail.test>");
    assert_eq!(m.header("To").unwrap(), "ada@mail.test");
    assert_eq!(
        m.header("Subject").unwrap(),
        "Confirm your email address for Meshwork"
    );
    // The outbox row is marked sent and its job done, after one attempt.
    let job = wait_job(&s, "ada@mail.test", |j| j.state == "done").await;
    assert_eq!(job.attempts, 1);
    let (_, sent_at) = meshwork_app::mail::get(s.state(), job.id)
        .await
        .unwrap()
        .unwrap();
    assert!(sent_at.is_some());
    assert!(meshwork_app::mail::unsent(s.state(), 10)
        .await
        .unwrap()
        .is_empty());
    s.stop().await;
}
both!(promise_cl09_mail_goes_out_through_the_operators_smtp_server);

async fn promise_cl05_verification_reset_and_sign_in_alerts_are_mailed_with_single_use_expiring_links(
    backend: TestBackend,
) {
    let sink = SmtpSink::start();
    let Some(mut s) = with_smtp(backend, sink.port).await else {
        return;
    };
    let ada = s.signup("Ada Lovelace", "ada@mail.test").await;
    assert!(!email_verified(&s, &ada).await);

    // Verification: the mail's link opens a page that asks to confirm; confirming verifies.
    let m = sink.wait_for_mail_to("ada@mail.test", WAIT).await;
    let link = m
        .link("http://meshwork.test/verify-email?token=")
        .expect("a link");
    let (status, page) = get_page(&s, &path_of(&link), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Confirm my email address"), "{page}");
    assert!(
        !email_verified(&s, &ada).await,
        "opening the link alone changes nothing"
    );
    let token = token_of(&link);
    let (status, page) = post_form(&s, "/verify-email", None, &[("token", &token)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Your email address is confirmed"), "{page}");
    assert!(email_verified(&s, &ada).await);
    // Single use.
    let (_, page) = post_form(&s, "/verify-email", None, &[("token", &token)]).await;
    assert!(page.contains("This link does not work"), "{page}");

    // Password reset, end to end.
    let (status, _) = s
        .call(
            Method::POST,
            "/api/v1/auth/password-reset",
            &As::Anonymous,
            Some(json!({"email": "ada@mail.test"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let got = sink.wait_for(2, WAIT).await;
    let reset = mail_to(&got, "ada@mail.test")
        .into_iter()
        .find(|m| m.header("Subject").as_deref() == Some("Reset your Meshwork password"))
        .expect("a reset mail");
    let link = reset
        .link("http://meshwork.test/reset-password?token=")
        .expect("a reset link");
    let (_, page) = get_page(&s, &path_of(&link), None).await;
    assert!(
        page.contains("<label for=\"new_password\">New password</label>"),
        "{page}"
    );
    let token = token_of(&link);
    // A weak password shows the form again with the reason, and does not use the link up.
    let (_, page) = post_form(
        &s,
        "/reset-password",
        None,
        &[("token", &token), ("new_password", "short")],
    )
    .await;
    assert!(page.contains("role=\"alert\""), "{page}");
    assert!(page.contains("Choose a new password"), "{page}");
    let new_password = "a brand new passphrase 42";
    let (_, page) = post_form(
        &s,
        "/reset-password",
        None,
        &[("token", &token), ("new_password", new_password)],
    )
    .await;
    assert!(page.contains("Your password is changed"), "{page}");
    assert_eq!(
        s.login_raw("ada@mail.test", new_password, json!({}))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        s.login_raw("ada@mail.test", PASSWORD, json!({}))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // The link is refused the second time.
    let (_, page) = post_form(
        &s,
        "/reset-password",
        None,
        &[
            ("token", &token),
            ("new_password", "yet another passphrase 7"),
        ],
    )
    .await;
    assert!(page.contains("This link does not work"), "{page}");

    // And after it expires: a fresh link is refused once its hour has passed.
    s.call(
        Method::POST,
        "/api/v1/auth/password-reset",
        &As::Anonymous,
        Some(json!({"email": "ada@mail.test"})),
    )
    .await;
    // The second reset link (the first was used above; a "password changed" notice came too).
    let started = std::time::Instant::now();
    let token = loop {
        let links: Vec<String> = sink
            .messages()
            .iter()
            .filter_map(|m| m.link("http://meshwork.test/reset-password?token="))
            .collect();
        if links.len() >= 2 {
            break token_of(links.last().unwrap());
        }
        assert!(started.elapsed() < WAIT, "the second reset link never came");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let hash = meshwork_app::state::token_hash(&token);
    let after_expiry = meshwork_app::state::now_millis() + meshwork_app::accounts::RESET_TTL_MS + 1;
    assert!(
        s.state()
            .store
            .take_token("password_reset", &hash, after_expiry)
            .await
            .unwrap()
            .is_none(),
        "an expired link is refused"
    );

    // A sign-in from a device not seen before mails a security alert.
    let before = sink.messages().len();
    let r = s
        .client
        .post(format!("{}/api/v1/auth/login", s.base))
        .header("user-agent", "a-new-browser/9")
        .json(&json!({"email": "ada@mail.test", "password": new_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let got = sink.wait_for(before + 1, WAIT).await;
    let alert = got
        .iter()
        .find(|m| m.header("Subject").as_deref() == Some("New sign-in to your Meshwork account"))
        .expect("a new-device alert");
    assert!(alert.body().contains("a-new-browser/9"));
    s.stop().await;
}
both!(promise_cl05_verification_reset_and_sign_in_alerts_are_mailed_with_single_use_expiring_links);

async fn an_invitation_is_accepted_from_the_link_in_its_mail(backend: TestBackend) {
    let sink = SmtpSink::start();
    let Some(mut s) = with_smtp(backend, sink.port).await else {
        return;
    };
    let owner = s.signup("Olive Owner", "olive@mail.test").await;
    let ws = s.create_workspace(&owner, "Sales").await;
    let bob = s.signup("Bob Builder", "bob@mail.test").await;
    // Bob confirms his address from his mail.
    let m = sink.wait_for_mail_to("bob@mail.test", WAIT).await;
    let token = token_of(&m.link("http://meshwork.test/verify-email?token=").unwrap());
    post_form(&s, "/verify-email", None, &[("token", &token)]).await;
    assert!(email_verified(&s, &bob).await);

    let (status, body) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/invites"),
            &As::User(&owner),
            Some(json!({"email": "bob@mail.test", "role": "member"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let got = sink.wait_for(3, WAIT).await;
    let invite = mail_to(&got, "bob@mail.test")
        .into_iter()
        .find(|m| m.header("Subject").unwrap().contains("invited"))
        .expect("an invitation mail");
    assert_eq!(
        invite.header("Subject").unwrap(),
        "You are invited to Sales on Meshwork"
    );
    let link = invite
        .link("http://meshwork.test/invites/accept?token=")
        .unwrap();
    // Signed out, the page says to sign in first.
    let (_, page) = get_page(&s, &path_of(&link), None).await;
    assert!(page.contains("Sign in to accept"), "{page}");
    // Signed in, it offers the button; the form carries the session's CSRF token.
    let (_, page) = get_page(&s, &path_of(&link), Some(&bob.cookie)).await;
    assert!(page.contains("Accept the invitation"), "{page}");
    let csrf = page
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(csrf, bob.csrf);
    // A post without the token is refused.
    let (status, _) = post_form(
        &s,
        "/invites/accept",
        Some(&bob.cookie),
        &[("token", &token_of(&link)), ("csrf_token", "wrong")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, page) = post_form(
        &s,
        "/invites/accept",
        Some(&bob.cookie),
        &[("token", &token_of(&link)), ("csrf_token", &csrf)],
    )
    .await;
    assert!(page.contains("You joined the workspace"), "{page}");
    assert!(page.contains("Your role there: member"), "{page}");
    let (status, _) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}"),
            &As::User(&bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    s.stop().await;
}
both!(an_invitation_is_accepted_from_the_link_in_its_mail);

async fn mail_waits_while_the_smtp_server_is_down_and_arrives_once_when_it_is_up(
    backend: TestBackend,
) {
    let port = free_port();
    let Some(mut s) = with_smtp(backend, port).await else {
        return;
    };
    s.signup("Ada Lovelace", "ada@mail.test").await;
    // Nothing listens: the attempt fails as temporary, with the reason, and stays queued.
    let job = wait_job(&s, "ada@mail.test", |j| {
        j.attempts >= 1 && j.error.is_some()
    })
    .await;
    assert_ne!(job.state, "failed", "{job:?}");
    assert!(
        job.error
            .as_deref()
            .unwrap()
            .contains("could not take the mail"),
        "{job:?}"
    );
    // The server comes up; the retry delivers the mail, once.
    let sink = SmtpSink::start_on(port, false);
    let job = wait_job(&s, "ada@mail.test", |j| j.state == "done").await;
    assert!(job.attempts >= 2, "{job:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = sink.messages();
    assert_eq!(mail_to(&got, "ada@mail.test").len(), 1, "{got:?}");
    s.stop().await;
}
both!(mail_waits_while_the_smtp_server_is_down_and_arrives_once_when_it_is_up);

async fn a_recipient_refused_with_550_fails_that_mail_without_retrying(backend: TestBackend) {
    let sink = SmtpSink::start();
    let Some(mut s) = with_smtp(backend, sink.port).await else {
        return;
    };
    s.signup("Rita Reject", "reject-rita@mail.test").await;
    s.signup("Ada Lovelace", "ada@mail.test").await;
    let job = wait_job(&s, "reject-rita@mail.test", |j| j.state == "failed").await;
    let why = job.error.clone().unwrap();
    assert!(why.contains("550"), "{why}");
    assert!(why.contains("refused the mail"), "{why}");
    // Never retried: still one attempt after several retry periods.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let job = wait_job(&s, "reject-rita@mail.test", |j| j.state == "failed").await;
    assert_eq!(job.attempts, 1);
    // The other mail was not held up by it.
    sink.wait_for_mail_to("ada@mail.test", WAIT).await;
    assert!(mail_to(&sink.messages(), "reject-rita@mail.test").is_empty());
    s.stop().await;
}
both!(a_recipient_refused_with_550_fails_that_mail_without_retrying);

async fn a_non_ascii_address_needs_smtputf8(backend: TestBackend) {
    // A server that offers SMTPUTF8 gets the mail.
    let sink = SmtpSink::start_on(free_port(), true);
    let Some(mut s) = with_smtp(backend, sink.port).await else {
        return;
    };
    s.signup("Jörg Müller", "jörg@mail.test").await;
    let m = sink.wait_for_mail_to("jörg@mail.test", WAIT).await;
    assert_eq!(m.header("To").unwrap(), "jörg@mail.test");
    s.stop().await;
    // One that does not: that mail fails, clearly, and is not retried.
    let sink = SmtpSink::start();
    let Some(mut s) = with_smtp(backend, sink.port).await else {
        return;
    };
    s.signup("Jörg Müller", "jörg@mail.test").await;
    let job = wait_job(&s, "jörg@mail.test", |j| j.state == "failed").await;
    assert!(job.error.unwrap().contains("SMTPUTF8"));
    s.stop().await;
}
both!(a_non_ascii_address_needs_smtputf8);

async fn a_name_with_line_breaks_never_reaches_a_header(backend: TestBackend) {
    let sink = SmtpSink::start();
    let Some(mut s) = with_smtp(backend, sink.port).await else {
        return;
    };
    let owner = s.signup("Olive Owner", "olive@mail.test").await;
    // Names with CR/LF are refused where they come in.
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/workspaces",
            &As::User(&owner),
            Some(json!({"name": "Sales\r\nBcc: thief@evil.test"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // A header-like name without them reaches the subject as text, never as a header.
    let ws = s
        .create_workspace(&owner, "Sales Bcc: thief@evil.test")
        .await;
    let (status, body) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/invites"),
            &As::User(&owner),
            Some(json!({"email": "bob@mail.test", "role": "member"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let m = sink.wait_for_mail_to("bob@mail.test", WAIT).await;
    assert_eq!(m.envelope_to, "bob@mail.test");
    let head = m.raw.split("\r\n\r\n").next().unwrap();
    assert!(
        !head
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
        "{head}"
    );
    assert!(m
        .header("Subject")
        .unwrap()
        .contains("Sales Bcc: thief@evil.test"));
    s.stop().await;
}
both!(a_name_with_line_breaks_never_reaches_a_header);

async fn without_smtp_mail_waits_and_an_operator_verifies_the_account(backend: TestBackend) {
    let Some(mut s) = TestServer::start(backend).await else {
        return;
    };
    let ada = s.signup("Ada Lovelace", "ada@mail.test").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The mail waits, queued, untried.
    let jobs = mail_jobs(&s).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].0.state, "queued");
    assert_eq!(jobs[0].0.attempts, 0);
    assert_eq!(
        meshwork_app::mail::unsent(s.state(), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // The operator verifies the address without it (what `meshwork users verify-email` runs).
    meshwork_app::accounts::verify_email_by_operator(s.state(), "ADA@mail.test")
        .await
        .unwrap();
    assert!(email_verified(&s, &ada).await);
    let err = meshwork_app::accounts::verify_email_by_operator(s.state(), "nobody@mail.test")
        .await
        .unwrap_err();
    assert!(err.message.contains("no account"), "{err}");
    s.stop().await;
}
both!(without_smtp_mail_waits_and_an_operator_verifies_the_account);

async fn mail_queued_without_smtp_goes_out_once_smtp_is_configured(backend: TestBackend) {
    let Some(mut s) = TestServer::start(backend).await else {
        return;
    };
    s.signup("Ada Lovelace", "ada@mail.test").await;
    s.stop().await;
    let sink = SmtpSink::start();
    s.config.smtp.host = "127.0.0.1".into();
    s.config.smtp.port = sink.port;
    s.config.smtp.tls = "none".into();
    s.config.smtp.from = "meshwork@mail.test".into();
    s.restart().await;
    let m = sink.wait_for_mail_to("ada@mail.test", WAIT).await;
    assert_eq!(
        m.header("Subject").unwrap(),
        "Confirm your email address for Meshwork"
    );
    s.stop().await;
}
both!(mail_queued_without_smtp_goes_out_once_smtp_is_configured);

/// A self-signed certificate for `localhost`, written to `dir`: (certificate, key).
fn certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (c, k) = (dir.join("smtp-cert.pem"), dir.join("smtp-key.pem"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.key_pair.serialize_pem()).unwrap();
    (c, k)
}

/// A server sending through `localhost:port` with TLS `mode`, trusting `ca`, logging in as
/// `meshwork` with the password in a file.
async fn with_tls_smtp(port: u16, mode: &str, ca: &std::path::Path, password: &str) -> TestServer {
    let dir = ca.parent().unwrap().to_path_buf();
    let password_file = dir.join(format!("smtp-password-{port}"));
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    TestServer::start_with(TestBackend::Sqlite, |c| {
        c.public_url = "http://meshwork.test".into();
        c.smtp.host = "localhost".into();
        c.smtp.port = port;
        c.smtp.tls = mode.into();
        c.smtp.ca_file = ca.display().to_string();
        c.smtp.username = "meshwork".into();
        c.smtp.password_file = password_file.display().to_string();
        c.smtp.from = "Meshwork <meshwork@mail.test>".into();
        c.smtp.timeout_seconds = 2;
        c.jobs.poll_millis = 100;
        c.jobs.retry_base_seconds = 1;
        c.jobs.retry_max_seconds = 2;
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_out_over_starttls_and_implicit_tls_with_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    for mode in ["starttls", "tls"] {
        let sink = SmtpSink::start_with(
            free_port(),
            false,
            Some((mode, &cert, &key)),
            Some(("meshwork", "s3cret smtp password")),
        );
        let mut s = with_tls_smtp(sink.port, mode, &cert, "s3cret smtp password").await;
        s.signup("Ada Lovelace", "ada@mail.test").await;
        let m = sink.wait_for_mail_to("ada@mail.test", WAIT).await;
        assert_eq!(
            m.header("Subject").unwrap(),
            "Confirm your email address for Meshwork",
            "{mode}"
        );
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_handshake_wrong_credentials_or_a_slow_server_are_retried_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    // Implicit TLS to a server that speaks plain text: the handshake fails.
    let plain = SmtpSink::start();
    let mut s = with_tls_smtp(plain.port, "tls", &cert, "pw").await;
    s.signup("Ada Lovelace", "ada@mail.test").await;
    let job = wait_job(&s, "ada@mail.test", |j| j.error.is_some()).await;
    assert_ne!(job.state, "failed", "{job:?}");
    assert!(job.error.unwrap().contains("could not take the mail"));
    s.stop().await;
    assert!(plain.messages().is_empty());

    // The right server, the wrong password: refused (535), kept for a retry once fixed.
    let sink = SmtpSink::start_with(
        free_port(),
        false,
        Some(("starttls", &cert, &key)),
        Some(("meshwork", "the right one")),
    );
    let mut s = with_tls_smtp(sink.port, "starttls", &cert, "a wrong one").await;
    s.signup("Ada Lovelace", "ada@mail.test").await;
    let job = wait_job(&s, "ada@mail.test", |j| j.error.is_some()).await;
    assert_ne!(job.state, "failed", "{job:?}");
    let why = job.error.unwrap();
    assert!(why.contains("535"), "{why}");
    assert!(
        !why.contains("a wrong one"),
        "the password never shows: {why}"
    );
    // Fixed (the operator corrects the password and restarts): the queued mail goes out.
    std::fs::write(s.config.smtp.password_file.clone(), "the right one\n").unwrap();
    s.restart().await;
    sink.wait_for_mail_to("ada@mail.test", WAIT).await;
    s.stop().await;

    // A server that does not answer within the timeout (2 s): a temporary failure.
    let sink = SmtpSink::start_with(free_port(), false, Some(("starttls", &cert, &key)), None);
    let mut s = TestServer::start_with(TestBackend::Sqlite, |c| {
        c.smtp.host = "localhost".into();
        c.smtp.port = sink.port;
        c.smtp.tls = "starttls".into();
        c.smtp.ca_file = cert.display().to_string();
        c.smtp.from = "meshwork@mail.test".into();
        c.smtp.timeout_seconds = 1;
        c.jobs.poll_millis = 100;
        c.jobs.retry_base_seconds = 1;
    })
    .await
    .unwrap();
    s.signup("Sam Slow", "slow-sam@mail.test").await;
    let job = wait_job(&s, "slow-sam@mail.test", |j| j.error.is_some()).await;
    assert_ne!(job.state, "failed", "{job:?}");
    assert!(job.error.unwrap().contains("could not take the mail"));
    s.stop().await;
}
