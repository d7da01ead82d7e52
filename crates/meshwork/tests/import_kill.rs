//! An import killed with SIGKILL halfway and started again resumes where it stopped: the same
//! records and the same rejected rows as an import that ran straight through, no duplicate and no
//! lost row. Real processes: `meshwork serve` to set up, `meshwork dev generate` for the file,
//! `meshwork import` killed and rerun; on SQLite and on PostgreSQL.

mod common;

use common::{meshwork, store_args};
use meshwork_testkit::{TestBackend, TestDatabase};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `meshwork serve`, signs up, creates two workspaces, stops the server (SIGTERM).
async fn two_workspaces(db: &TestDatabase) -> (String, String) {
    let http = reqwest::Client::new();
    let (mut server, base) = common::serve(db, &http).await;
    let session = common::signup(&http, &base, "ada@import.test").await;
    let mut ids = Vec::new();
    for name in ["Killed", "Straight"] {
        let r = http
            .post(format!("{base}/api/v1/workspaces"))
            .header("x-csrf-token", &session.csrf)
            .header("cookie", &session.cookie)
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "workspace: {}", r.status());
        ids.push(
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(server.wait().unwrap().success());
    (ids.remove(0), ids.remove(0))
}

fn import(db: &TestDatabase, ws: &str, file: &Path, errors: &Path) -> Command {
    let mut c = meshwork();
    c.arg("import")
        .args(store_args(db))
        .args([
            "--workspace",
            ws,
            "--type",
            "contact",
            "--layout",
            "hubspot",
        ])
        .arg("--errors")
        .arg(errors)
        .arg(file);
    c
}

fn kill9(child: &mut Child) {
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the import was killed, not finished");
}

async fn an_import_killed_halfway_resumes_without_duplicates_or_losses(backend: TestBackend) {
    let Some(db) = TestDatabase::new(backend).await else {
        return;
    };
    let (killed, straight) = two_workspaces(&db).await;
    let file = db.dir.path().join("contacts.csv");
    let out = meshwork()
        .args([
            "dev", "generate", "--type", "contact", "--rows", "12000", "--seed", "11", "--out",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (errors_straight, errors_killed) = (
        db.dir.path().join("straight.errors.csv"),
        db.dir.path().join("killed.errors.csv"),
    );
    let out = import(&db, &straight, &file, &errors_straight)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Start the import and kill it with SIGKILL once it has committed some batches.
    let store = db.open_store().await;
    let ws_killed = meshwork_domain::WorkspaceId(killed.parse().unwrap());
    let ws_straight = meshwork_domain::WorkspaceId(straight.parse().unwrap());
    let mut child = import(&db, &killed, &file, &errors_killed)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let jobs = store.jobs(ws_killed, 10).await.unwrap();
        if jobs.iter().any(|j| j.cursor > 0) {
            kill9(&mut child);
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import finished before it could be killed; make the file larger"
        );
        assert!(started.elapsed() < Duration::from_secs(120), "no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let total = store.crm_count(ws_straight, "contact").await.unwrap();
    let partial = store.crm_count(ws_killed, "contact").await.unwrap();
    assert!(
        0 < partial && partial < total,
        "killed halfway: {partial} of {total}"
    );
    let job = store.jobs(ws_killed, 10).await.unwrap().remove(0);
    assert_eq!(job.state, "running");

    // Run it again: it resumes the same job and ends where the straight import did.
    let out = import(&db, &killed, &file, &errors_killed)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("resuming import {}", job.id)),
        "{stderr}"
    );
    assert_eq!(store.crm_count(ws_killed, "contact").await.unwrap(), total);
    let jobs = store.jobs(ws_killed, 10).await.unwrap();
    assert_eq!(jobs.len(), 1, "one job, resumed");
    assert_eq!(jobs[0].state, "done");
    // The same rejected rows, each once.
    let rejected_straight = std::fs::read_to_string(&errors_straight).unwrap_or_default();
    let rejected_killed = std::fs::read_to_string(&errors_killed).unwrap_or_default();
    assert_eq!(rejected_killed, rejected_straight);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_halfway_resumes_without_duplicates_or_losses_sqlite() {
    an_import_killed_halfway_resumes_without_duplicates_or_losses(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_halfway_resumes_without_duplicates_or_losses_postgres() {
    an_import_killed_halfway_resumes_without_duplicates_or_losses(TestBackend::Postgres).await;
}
