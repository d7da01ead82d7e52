//! A connector's sync killed with SIGKILL mid-way is taken over by the next server and
//! finishes: every file of the folder stored once, none lost, and the documents already written
//! before the kill not read again. Real processes: `meshwork serve`, killed and started again on
//! the same store; on SQLite and on PostgreSQL.

mod common;

use common::{serve_with, signup};
use meshwork_domain::WorkspaceId;
use meshwork_testkit::{TestBackend, TestDatabase};
use serde_json::{json, Value};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const FILES: usize = 3000;

fn kill(child: &mut Child) {
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
}

async fn call(
    http: &reqwest::Client,
    base: &str,
    s: &common::Session,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut r = http
        .request(method, format!("{base}{path}"))
        .header("x-csrf-token", &s.csrf)
        .header("cookie", &s.cookie);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap_or(Value::Null)
}

async fn a_sync_killed_midway_resumes_and_finishes(backend: TestBackend) {
    let Some(db) = TestDatabase::new(backend).await else {
        return;
    };
    let tree = tempfile::tempdir().unwrap();
    for i in 0..FILES {
        let dir = tree.path().join(format!("d{:02}", i % 30));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("note{i:05}.txt")),
            format!("capybara note {i}"),
        )
        .unwrap();
    }
    let accounts = tempfile::tempdir().unwrap();
    let passwd = accounts.path().join("passwd");
    std::fs::write(&passwd, "").unwrap();
    // Leases of 3 s: on PostgreSQL the next server waits that long for the dead one's job.
    let env = [
        ("MESHWORK_JOBS__LEASE_SECONDS", "3".to_string()),
        (
            "MESHWORK_CONNECTORS__FOLDER_ROOTS",
            std::env::temp_dir().display().to_string(),
        ),
    ];
    let http = reqwest::Client::new();
    let (mut server, base) = serve_with(&db, &http, &env).await;
    let ada = signup(&http, &base, "ada@connectors.test").await;
    let ws = call(
        &http,
        &base,
        &ada,
        reqwest::Method::POST,
        "/api/v1/workspaces",
        Some(json!({"name": "Files"})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let settings =
        json!({"kind": "folder", "path": tree.path(), "passwd_file": passwd, "group_file": passwd});
    let conn = call(
        &http,
        &base,
        &ada,
        reqwest::Method::POST,
        &format!("/api/v1/workspaces/{ws}/connectors"),
        Some(json!({"source": "notes", "settings": settings})),
    )
    .await;
    let id = conn["id"].as_str().unwrap().to_string();
    let store = db.open_store().await;
    let wsid = WorkspaceId(ws.parse().unwrap());

    // SIGKILL once some batches are written, well before the end.
    let started = Instant::now();
    loop {
        let n = store
            .source_fingerprints(wsid, "notes")
            .await
            .unwrap()
            .len();
        if n >= 200 {
            assert!(n < FILES, "the sync ended before it could be killed");
            kill(&mut server);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = store
        .source_fingerprints(wsid, "notes")
        .await
        .unwrap()
        .len();

    // The next server takes the sync over and finishes it.
    let (mut server, _) = serve_with(&db, &http, &env).await;
    let started = Instant::now();
    let run = loop {
        let runs = store.connector_runs(wsid, &id, 10).await.unwrap();
        if let Some(r) = runs.iter().find(|r| r.state != "running") {
            break r.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the sync was not resumed: {runs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(run.state, "done", "{run:?}");
    let counts: Value = serde_json::from_str(&run.counts).unwrap();
    // What was written before the kill is not read again; the rest is.
    assert_eq!(
        counts["unchanged"].as_u64().unwrap() as usize,
        before,
        "{counts}"
    );
    assert_eq!(
        counts["stored"].as_u64().unwrap() as usize,
        FILES - before,
        "{counts}"
    );
    // Every file once: the documents are exactly the folder's files.
    assert_eq!(
        store
            .source_fingerprints(wsid, "notes")
            .await
            .unwrap()
            .len(),
        FILES
    );
    let runs = store.connector_runs(wsid, &id, 10).await.unwrap();
    assert_eq!(
        runs.len(),
        1,
        "one sync, resumed under its own job: {runs:?}"
    );
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    server.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_midway_resumes_and_finishes_sqlite() {
    a_sync_killed_midway_resumes_and_finishes(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_midway_resumes_and_finishes_postgres() {
    a_sync_killed_midway_resumes_and_finishes(TestBackend::Postgres).await;
}
