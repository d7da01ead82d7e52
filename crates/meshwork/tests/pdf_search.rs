//! PDFs are found by the words inside them: a real `meshwork serve` indexes an uploaded PDF by
//! its name at once and hands it to its helper process (`meshwork extract-text`), which reads it
//! in the background under capped memory and CPU time. A file the helper cannot read is still
//! found by its name, and the server goes on answering. On SQLite and on PostgreSQL.

mod common;

use common::meshwork;
use meshwork_testkit::{TestBackend, TestDatabase};
use serde_json::{json, Value};
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn the_helper_reads_a_pdf_from_stdin_and_refuses_what_is_not_one() {
    let pdf = meshwork_testkit::pdf::with_text(&["Quarterly magnetosphere review"]);
    let run = |bytes: &[u8]| {
        let mut child = meshwork()
            .args(["extract-text", "--format", "pdf"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(bytes).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(&pdf);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Quarterly magnetosphere review"));
    let out = run(b"<html>not a pdf</html>");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("%PDF-"));
}

struct Server {
    child: std::process::Child,
    base: String,
    http: reqwest::Client,
    cookie: String,
    csrf: String,
}

impl Server {
    async fn start(db: &TestDatabase) -> Server {
        let http = reqwest::Client::new();
        let (child, base) = common::serve(db, &http).await;
        let common::Session { cookie, csrf } = common::signup(&http, &base, "ada@pdf.test").await;
        Server {
            child,
            base,
            http,
            cookie,
            csrf,
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
    }

    async fn json(&self, r: reqwest::RequestBuilder) -> Value {
        let r = r.send().await.unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(status.is_success(), "{status}: {v}");
        v
    }

    async fn upload(&self, ws: &str, name: &str, bytes: Vec<u8>) -> String {
        let file = self
            .json(
                self.req(
                    reqwest::Method::POST,
                    &format!("/api/v1/workspaces/{ws}/files"),
                )
                .json(&json!({"name": name, "content_type": "application/pdf"})),
            )
            .await;
        let id = file["id"].as_str().unwrap().to_string();
        let r = self
            .req(
                reqwest::Method::PUT,
                &format!("/api/v1/workspaces/{ws}/files/{id}/content"),
            )
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "upload: {}", r.status());
        id
    }

    async fn hits(&self, ws: &str, q: &str) -> Vec<String> {
        let v = self
            .json(self.req(
                reqwest::Method::GET,
                &format!("/api/v1/workspaces/{ws}/search?q={}", q.replace(' ', "%20")),
            ))
            .await;
        let mut ids: Vec<String> = v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["hits"].as_array().unwrap().iter())
            .map(|h| h["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn pdfs_are_found_by_their_words(backend: TestBackend) {
    let Some(db) = TestDatabase::new(backend).await else {
        return;
    };
    let s = Server::start(&db).await;
    let ws = s
        .json(
            s.req(reqwest::Method::POST, "/api/v1/workspaces")
                .json(&json!({"name": "Papers"})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let paper = s
        .upload(
            &ws,
            "Survey.pdf",
            meshwork_testkit::pdf::with_text(&["Heliosphere boundary survey", "Crew of seven"]),
        )
        .await;
    // A file that claims to be a PDF and is not one: found by its name only.
    let broken = s
        .upload(&ws, "Broken.pdf", b"%PDF-1.7 and then nothing".to_vec())
        .await;
    // Found by name at once; by its words once the helper has read it, in the background.
    assert_eq!(s.hits(&ws, "survey").await, vec![paper.clone()]);
    let started = Instant::now();
    while s.hits(&ws, "heliosphere").await.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the PDF's text was never indexed; the server logged:\n{}",
            common::server_log(&s.base)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.hits(&ws, "heliosphere").await, vec![paper.clone()]);
    assert_eq!(s.hits(&ws, "boundary surv").await, vec![paper.clone()]);
    assert_eq!(s.hits(&ws, "broken").await, vec![broken]);
    assert!(s.hits(&ws, "nothing").await.is_empty());
    // The server still answers, and the PDF's words are kept only in the sealed index: the
    // data directory holds none of them in the clear.
    for entry in walk(db.dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(11).any(|w| w == b"Heliosphere"),
            "{} holds the PDF's text in the clear",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdfs_are_found_by_their_words_sqlite() {
    pdfs_are_found_by_their_words(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdfs_are_found_by_their_words_postgres() {
    pdfs_are_found_by_their_words(TestBackend::Postgres).await;
}
