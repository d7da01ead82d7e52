//! The upgrade path: the current binary starts on what an earlier release left behind (its data
//! directory on SQLite, a dump of its database on PostgreSQL, with its master key and keyring),
//! migrates it, and loses nothing: the account signs in with its password, its API key still
//! works, every record reads back as it was written, search finds it, and what the new release
//! added works on the old data. A database written by a newer release is refused, by name.
//!
//! The fixtures under `tests/fixtures/upgrade/<release>/` are made by `scripts/upgrade-fixture`
//! with that release's binary, through its own API; every fixture there is tested.

mod common;

use common::{call, meshwork, serve_with, sign_in, Auth};
use meshwork_testkit::{TestBackend, TestDatabase};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/upgrade");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("manifest.json").exists())
        .collect();
    out.sort();
    assert!(
        !out.is_empty(),
        "no upgrade fixture under {}",
        root.display()
    );
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, &target).unwrap();
        }
    }
}

/// A checkout does not keep modes: the key and the data directory are made private again, as
/// they were on the server that wrote them.
fn make_private(data: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(
        data.join("master.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
}

fn stop(mut server: Child) {
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(
        server.wait().unwrap().success(),
        "the server stopped cleanly"
    );
}

/// Everything the old release wrote is there, and the new release's features work on it.
async fn check_upgraded(base: &str, m: &Value, release: &str) {
    let http = reqwest::Client::new();
    let s = |k: &str| m[k].as_str().unwrap().to_string();
    // The account signs in with the password the old release stored (the fixture's is the one
    // `sign_in` sends).
    assert_eq!(s("password"), "correct horse battery staple", "{release}");
    let session = sign_in(&http, base, &s("email")).await;
    let me = Auth::Session(&session);
    let w = format!("{base}/api/v1/workspaces/{}", s("workspace"));
    let get = reqwest::Method::GET;

    let (status, ws) = call(&http, get.clone(), w.clone(), &me, None).await;
    assert_eq!(status, 200, "{release}: {ws}");
    assert_eq!(ws["name"], "Upgrade", "{release}");
    let (status, contact) = call(
        &http,
        get.clone(),
        format!("{w}/contacts/{}", s("contact")),
        &me,
        None,
    )
    .await;
    assert_eq!(status, 200, "{release}: {contact}");
    assert_eq!(
        contact["fields"]["first_name"], "Charles",
        "{release}: {contact}"
    );
    assert_eq!(contact["fields"]["last_name"], "Babbage", "{release}");
    assert_eq!(
        contact["fields"]["emails"],
        json!(["charles@engines.example"]),
        "{release}"
    );
    assert_eq!(
        contact["fields"]["companies"],
        json!([s("company")]),
        "{release}"
    );
    let (status, note) = call(
        &http,
        get.clone(),
        format!("{w}/notes/{}", s("note")),
        &me,
        None,
    )
    .await;
    assert_eq!(status, 200, "{release}: {note}");
    assert_eq!(
        note["fields"]["body"], "Wants the analytical engine finished by spring",
        "{release}"
    );
    let (status, company) = call(
        &http,
        get.clone(),
        format!("{w}/companies/{}", s("company")),
        &me,
        None,
    )
    .await;
    assert_eq!(status, 200, "{release}: {company}");
    assert_eq!(
        company["fields"]["name"], "Difference Engines Ltd",
        "{release}"
    );

    // The old API key still opens the workspace.
    let key = s("api_key");
    let (status, list) = call(
        &http,
        get.clone(),
        format!("{w}/contacts"),
        &Auth::Key(&key),
        None,
    )
    .await;
    assert_eq!(status, 200, "{release}: the old API key works: {list}");
    assert!(list.to_string().contains("Babbage"), "{release}: {list}");

    // Search finds the old records, and a record written after the upgrade beside them.
    let (status, hits) = call(
        &http,
        get.clone(),
        format!("{w}/search?q=Babbage"),
        &me,
        None,
    )
    .await;
    assert_eq!(status, 200, "{release}: {hits}");
    assert!(
        hits["groups"].to_string().contains(&s("contact")),
        "{release}: the old contact is found: {hits}"
    );
    let (status, new) = call(
        &http,
        reqwest::Method::POST,
        format!("{w}/contacts"),
        &me,
        Some(json!({"first_name": "Ada", "last_name": "Byron", "emails": ["ada@engines.example"]})),
    )
    .await;
    assert_eq!(status, 201, "{release}: {new}");
    let (_, hits) = call(&http, get.clone(), format!("{w}/search?q=Byron"), &me, None).await;
    assert!(
        hits["groups"]
            .to_string()
            .contains(new["id"].as_str().unwrap()),
        "{release}: {hits}"
    );
    // A duplicate of the old contact's email is still caught (its blind index survived).
    let (status, dup) = call(
        &http,
        reqwest::Method::POST,
        format!("{w}/contacts"),
        &me,
        Some(json!({"first_name": "C", "emails": ["charles@engines.example"]})),
    )
    .await;
    assert_eq!(status, 409, "{release}: {dup}");

    // What later releases added works on the old data: mail preferences and restriction.
    let (status, prefs) = call(
        &http,
        get.clone(),
        format!("{base}/api/v1/me/mail-preferences"),
        &me,
        None,
    )
    .await;
    assert_eq!(status, 200, "{release}: {prefs}");
    let (status, restriction) = call(
        &http,
        get,
        format!("{w}/contacts/{}/restriction", s("contact")),
        &me,
        None,
    )
    .await;
    assert_eq!(status, 200, "{release}: {restriction}");
}

/// A migration this binary does not know, as a newer release would leave it.
const FUTURE: i64 = 29_991_231_000_000;

fn refused_as_newer(out: std::process::Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a newer database is refused");
    assert!(
        stderr.contains("newer Meshwork release") && stderr.contains(&FUTURE.to_string()),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earlier_releases_sqlite_data_directory_upgrades_with_nothing_lost() {
    for fixture in fixtures() {
        let release = fixture.file_name().unwrap().to_string_lossy().to_string();
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(fixture.join("manifest.json")).unwrap()).unwrap();
        let db = TestDatabase::new(TestBackend::Sqlite).await.unwrap();
        let data = db.dir.path().join("data");
        copy_dir(&fixture.join("sqlite"), &data);
        make_private(&data);
        let http = reqwest::Client::new();
        let (server, base) = serve_with(
            &db,
            &http,
            &[("MESHWORK_DATA_DIR", data.display().to_string())],
        )
        .await;
        check_upgraded(&base, &manifest["sqlite"], &release).await;
        stop(server);

        let conn = rusqlite::Connection::open(data.join("meshwork.db")).unwrap();
        conn.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (?1, 'from the future', 1, x'00', 0)",
            [FUTURE],
        )
        .unwrap();
        drop(conn);
        let out = meshwork()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .output()
            .unwrap();
        refused_as_newer(out);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earlier_releases_postgres_database_upgrades_with_nothing_lost() {
    for fixture in fixtures() {
        let release = fixture.file_name().unwrap().to_string_lossy().to_string();
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(fixture.join("manifest.json")).unwrap()).unwrap();
        if !fixture.join("postgres").exists() {
            continue;
        }
        let Some(db) = TestDatabase::new(TestBackend::Postgres).await else {
            return;
        };
        let url = db.url.clone().unwrap();
        let load = Command::new("psql")
            .args([&url, "-q", "-v", "ON_ERROR_STOP=1", "-f"])
            .arg(fixture.join("postgres/dump.sql"))
            .output()
            .unwrap();
        assert!(
            load.status.success(),
            "{}",
            String::from_utf8_lossy(&load.stderr)
        );
        let data = db.dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::copy(fixture.join("postgres/master.key"), data.join("master.key")).unwrap();
        copy_dir(&fixture.join("postgres/keyring"), &data.join("keyring"));
        make_private(&data);
        let http = reqwest::Client::new();
        let (server, base) = serve_with(
            &db,
            &http,
            &[("MESHWORK_DATA_DIR", data.display().to_string())],
        )
        .await;
        check_upgraded(&base, &manifest["postgres"], &release).await;
        stop(server);

        let mark = Command::new("psql")
            .args([
                &url,
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                &format!("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES ({FUTURE}, 'from the future', true, '\\x00', 0)"),
            ])
            .output()
            .unwrap();
        assert!(
            mark.status.success(),
            "{}",
            String::from_utf8_lossy(&mark.stderr)
        );
        let out = meshwork()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &url,
                "--data-dir",
            ])
            .arg(&data)
            .output()
            .unwrap();
        refused_as_newer(out);
    }
}
