//! `meshwork notify` beside a running server, with a real SMTP server: a breach notice reaches
//! every member of the affected workspace and nobody else (mm08), a policy-change notice reaches
//! every user (cl16); accounts whose email nobody verified are left out and counted; each
//! sending is in the audit log. Real processes, on SQLite and on PostgreSQL.

mod common;

use common::{meshwork, serve_with, signup, store_args};
use meshwork_testkit::smtp::SmtpSink;
use meshwork_testkit::{TestBackend, TestDatabase};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn cli(db: &TestDatabase, args: &[&str]) -> (bool, String, String) {
    let out = meshwork()
        .arg("notify")
        .arg(args[0])
        .args(store_args(db))
        .args(&args[1..])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn verify(db: &TestDatabase, email: &str) {
    let out = meshwork()
        .args(["users", "verify-email", email])
        .args(store_args(db))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every message with `subject`, by recipient, once `n` have arrived.
async fn with_subject(sink: &SmtpSink, subject: &str, n: usize) -> Vec<String> {
    let started = Instant::now();
    loop {
        let mut to: Vec<String> = sink
            .messages()
            .into_iter()
            .filter(|m| m.header("Subject").as_deref() == Some(subject))
            .map(|m| m.envelope_to)
            .collect();
        if to.len() >= n || started.elapsed() > Duration::from_secs(20) {
            to.sort();
            return to;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server with a real SMTP server; ada (verified, owner of a workspace), carol (verified, in
/// no workspace) and dave (never verified).
struct World {
    db: TestDatabase,
    sink: SmtpSink,
    server: std::process::Child,
    http: reqwest::Client,
    base: String,
    ada: common::Session,
    ws: String,
    dir: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

async fn world(backend: TestBackend) -> Option<World> {
    let db = TestDatabase::new(backend).await?;
    let sink = SmtpSink::start();
    let http = reqwest::Client::new();
    let env = [
        ("MESHWORK_SMTP__HOST", "127.0.0.1".to_string()),
        ("MESHWORK_SMTP__PORT", sink.port.to_string()),
        ("MESHWORK_SMTP__TLS", "none".to_string()),
        ("MESHWORK_SMTP__FROM", "meshwork@notify.test".to_string()),
        ("MESHWORK_JOBS__POLL_MILLIS", "20".to_string()),
    ];
    let (server, base) = serve_with(&db, &http, &env).await;
    let ada = signup(&http, &base, "ada@notify.test").await;
    signup(&http, &base, "carol@notify.test").await;
    signup(&http, &base, "dave@notify.test").await;
    verify(&db, "ada@notify.test");
    verify(&db, "carol@notify.test");
    let r = http
        .post(format!("{base}/api/v1/workspaces"))
        .header("x-csrf-token", &ada.csrf)
        .header("cookie", &ada.cookie)
        .json(&json!({"name": "Breached Ltd"}))
        .send()
        .await
        .unwrap();
    let ws = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    Some(World {
        db,
        sink,
        server,
        http,
        base,
        ada,
        ws,
        dir: tempfile::tempdir().unwrap(),
    })
}

/// mm08: a breach notice reaches every member of the affected workspace and nobody else, and
/// is in that workspace's audit log; bad input is named and sends nothing.
async fn a_breach_notice_reaches_the_affected_workspaces_members(backend: TestBackend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let (db, ws) = (&w.db, w.ws.as_str());
    let text = w.dir.path().join("notice.txt");
    let text_s = text.to_str().unwrap();
    std::fs::write(&text, "   \n").unwrap();
    let (ok, _, err) = cli(
        db,
        &[
            "breach",
            "--workspace",
            ws,
            "--subject",
            "Incident",
            "--body-file",
            text_s,
        ],
    );
    assert!(!ok && err.contains("field `body`"), "{err}");
    std::fs::write(
        &text,
        "On 1 December someone read the contacts of your workspace.",
    )
    .unwrap();
    let nobody = uuid::Uuid::now_v7().to_string();
    let (ok, _, err) = cli(
        db,
        &[
            "breach",
            "--workspace",
            &nobody,
            "--subject",
            "Incident",
            "--body-file",
            text_s,
        ],
    );
    assert!(!ok && err.contains("no workspace"), "{err}");
    let (ok, out, err) = cli(
        db,
        &[
            "breach",
            "--workspace",
            ws,
            "--subject",
            "Incident",
            "--body-file",
            text_s,
            "--dry-run",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("would queue 1 notice"), "{out}");

    let (ok, out, err) = cli(
        db,
        &[
            "breach",
            "--workspace",
            ws,
            "--subject",
            "Incident",
            "--body-file",
            text_s,
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("queued 1 notice"), "{out}");
    assert_eq!(
        with_subject(&w.sink, "Incident", 1).await,
        ["ada@notify.test"]
    );
    let notice = w
        .sink
        .wait_for_mail_to("ada@notify.test", Duration::from_secs(5))
        .await;
    assert!(
        notice.body().contains("someone read the contacts"),
        "{}",
        notice.raw
    );
    let r = w
        .http
        .get(format!("{}/api/v1/workspaces/{ws}/audit", w.base))
        .header("cookie", &w.ada.cookie)
        .send()
        .await
        .unwrap();
    let audit: Value = r.json().await.unwrap();
    let entry = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "notice.breach")
        .unwrap_or_else(|| panic!("no breach notice in the audit log: {audit}"));
    assert_eq!(entry["details"]["recipients"], 1, "{entry}");
}

/// cl16: a policy-change notice reaches every account whose email is verified; the others are
/// counted as left out.
async fn a_policy_change_notice_reaches_every_user(backend: TestBackend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let text = w.dir.path().join("notice.txt");
    std::fs::write(
        &text,
        "From 1 March we keep backups for 14 days instead of 7.",
    )
    .unwrap();
    let (ok, out, err) = cli(
        &w.db,
        &[
            "policy-change",
            "--subject",
            "Our privacy policy changes",
            "--body-file",
            text.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("queued 2 notices; 1 account left out"),
        "{out}"
    );
    assert_eq!(
        with_subject(&w.sink, "Our privacy policy changes", 2).await,
        ["ada@notify.test", "carol@notify.test"]
    );
    let notice = w
        .sink
        .wait_for_mail_to("carol@notify.test", Duration::from_secs(5))
        .await;
    assert!(
        notice.body().contains("backups for 14 days"),
        "{}",
        notice.raw
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promise_mm08_a_breach_notice_reaches_the_affected_workspaces_members_sqlite() {
    a_breach_notice_reaches_the_affected_workspaces_members(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promise_mm08_a_breach_notice_reaches_the_affected_workspaces_members_postgres() {
    a_breach_notice_reaches_the_affected_workspaces_members(TestBackend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promise_cl16_a_policy_change_notice_reaches_every_user_sqlite() {
    a_policy_change_notice_reaches_every_user(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promise_cl16_a_policy_change_notice_reaches_every_user_postgres() {
    a_policy_change_notice_reaches_every_user(TestBackend::Postgres).await;
}

/// pm13: product news goes only to those who have not declined it, each mail with a working
/// one-click unsubscribe (RFC 8058 `List-Unsubscribe` and `List-Unsubscribe-Post`); opening the
/// link changes nothing, posting it declines; legal and security mail still reach everyone.
async fn product_news_can_be_declined_and_security_mail_still_arrives(backend: TestBackend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let text = w.dir.path().join("news.txt");
    std::fs::write(&text, "Meshwork now backs itself up every night.").unwrap();
    let news = |subject: &str| {
        cli(
            &w.db,
            &[
                "news",
                "--subject",
                subject,
                "--body-file",
                text.to_str().unwrap(),
            ],
        )
    };
    // Ada declines in settings (the API).
    let r = w
        .http
        .put(format!("{}/api/v1/me/mail-preferences", w.base))
        .header("cookie", &w.ada.cookie)
        .header("x-csrf-token", &w.ada.csrf)
        .json(&json!({"product_news": false}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (ok, out, err) = news("News one");
    assert!(ok, "{err}");
    assert!(
        out.contains("queued 1 notice") && out.contains("1 declined"),
        "{out}"
    );
    assert_eq!(
        with_subject(&w.sink, "News one", 1).await,
        ["carol@notify.test"]
    );
    let mail = w
        .sink
        .messages()
        .into_iter()
        .find(|m| m.header("Subject").as_deref() == Some("News one"))
        .unwrap();
    assert_eq!(
        mail.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click"),
        "{}",
        mail.raw
    );
    let link = mail.header("List-Unsubscribe").unwrap();
    let link = link.trim().trim_start_matches('<').trim_end_matches('>');
    // The link is on the configured public_url; this server listens on a port of its own.
    let query = link
        .split_once("/unsubscribe?")
        .expect("an unsubscribe link")
        .1;
    let link = format!("{}/unsubscribe?{query}", w.base);
    assert!(
        mail.body().contains("/unsubscribe?"),
        "the body has the link too"
    );
    // Opening the link changes nothing (mail scanners open links).
    let page = w
        .http
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Unsubscribe"), "{page}");
    let (_, out, _) = news("News two");
    assert!(out.contains("queued 1 notice"), "{out}");
    // A forged link does nothing.
    let forged = format!("{}0", link.trim_end_matches(char::is_alphanumeric));
    let r = w
        .http
        .post(&forged)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("does not work"));
    // The mail client's one-click POST.
    let r = w
        .http
        .post(&link)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert!(r.text().await.unwrap().contains("You are unsubscribed"));
    let (_, out, _) = news("News three");
    assert!(
        out.contains("queued 0 notices") && out.contains("2 declined"),
        "{out}"
    );
    // A legal notice still reaches both.
    let (ok, _, err) = cli(
        &w.db,
        &[
            "policy-change",
            "--subject",
            "Policy update",
            "--body-file",
            text.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        with_subject(&w.sink, "Policy update", 2).await,
        ["ada@notify.test", "carol@notify.test"]
    );
    let r = w
        .http
        .get(format!("{}/api/v1/me/mail-preferences", w.base))
        .header("cookie", &w.ada.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["product_news"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promise_pm13_product_news_can_be_declined_and_security_mail_still_arrives_sqlite() {
    product_news_can_be_declined_and_security_mail_still_arrives(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promise_pm13_product_news_can_be_declined_and_security_mail_still_arrives_postgres() {
    product_news_can_be_declined_and_security_mail_still_arrives(TestBackend::Postgres).await;
}
