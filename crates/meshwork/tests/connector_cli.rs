//! `meshwork connectors` beside a running server: a connector added from a settings file is
//! synced by the server, and its history and list read back; bad settings are refused naming
//! the field. Real processes, on SQLite and on PostgreSQL.

mod common;

use common::{meshwork, serve_with, signup, store_args};
use meshwork_testkit::{TestBackend, TestDatabase};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

fn cli(db: &TestDatabase, ws: &str, args: &[&str]) -> (bool, String, String) {
    let out = meshwork()
        // The same configuration as the server's: folders may be read under the temp dir.
        .env("MESHWORK_CONNECTORS__FOLDER_ROOTS", std::env::temp_dir())
        .arg("connectors")
        .arg(args[0])
        .args(store_args(db))
        .args(["--workspace", ws])
        .args(&args[1..])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn the_cli_adds_a_connector_that_the_server_syncs(backend: TestBackend) {
    let Some(db) = TestDatabase::new(backend).await else {
        return;
    };
    let tree = tempfile::tempdir().unwrap();
    std::fs::write(tree.path().join("memo.txt"), "ibex memo").unwrap();
    let accounts = tempfile::tempdir().unwrap();
    let passwd = accounts.path().join("passwd");
    std::fs::write(&passwd, "").unwrap();
    let http = reqwest::Client::new();
    let (mut server, base) = serve_with(
        &db,
        &http,
        &[(
            "MESHWORK_CONNECTORS__FOLDER_ROOTS",
            std::env::temp_dir().display().to_string(),
        )],
    )
    .await;
    let ada = signup(&http, &base, "ada@cli.test").await;
    let r = http
        .post(format!("{base}/api/v1/workspaces"))
        .header("x-csrf-token", &ada.csrf)
        .header("cookie", &ada.cookie)
        .json(&json!({"name": "Cli"}))
        .send()
        .await
        .unwrap();
    let ws = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    let bad = accounts.path().join("bad.json");
    std::fs::write(&bad, r#"{"kind": "folder", "path": "relative/path"}"#).unwrap();
    let (ok, _, err) = cli(
        &db,
        &ws,
        &["add", "--source", "files", bad.to_str().unwrap()],
    );
    assert!(!ok && err.contains("field `path`"), "{err}");

    let good = accounts.path().join("good.json");
    std::fs::write(
        &good,
        json!({"kind": "folder", "path": tree.path(), "passwd_file": passwd, "group_file": passwd})
            .to_string(),
    )
    .unwrap();
    let (ok, out, err) = cli(
        &db,
        &ws,
        &["add", "--source", "files", good.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let id = out.split_whitespace().nth(1).unwrap().to_string();
    // The running server runs the first sync; the history shows it.
    let started = Instant::now();
    loop {
        let (ok, out, err) = cli(&db, &ws, &["history", &id]);
        assert!(ok, "{err}");
        if out.contains("done") {
            assert!(out.contains("1 listed: 1 written"), "{out}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no sync: {out}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (ok, out, _) = cli(&db, &ws, &["list"]);
    assert!(
        ok && out.contains("files") && out.contains("last sync"),
        "{out}"
    );
    let (ok, out, _) = cli(&db, &ws, &["pause", &id]);
    assert!(ok && out.contains("paused"), "{out}");
    let (ok, _, err) = cli(&db, &ws, &["sync", "no-such-connector"]);
    assert!(!ok && err.contains("no connector"), "{err}");
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    server.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_adds_a_connector_that_the_server_syncs_sqlite() {
    the_cli_adds_a_connector_that_the_server_syncs(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_adds_a_connector_that_the_server_syncs_postgres() {
    the_cli_adds_a_connector_that_the_server_syncs(TestBackend::Postgres).await;
}
