//! `meshwork backup`, `backup verify` and `restore`, with real processes on SQLite and on
//! PostgreSQL (`pg_dump`, `pg_restore`): a backup taken beside a running server restores into a
//! fresh data directory or database; a workspace deleted after the backup is gone from the
//! restore and nothing of it is readable (cl14); the daily backup is taken by the server itself
//! and backups past `backup.keep_days` are deleted (mm10, mm16); a cut, changed or foreign
//! backup is refused and nothing is overwritten.

mod common;

use common::{meshwork, serve_with, sign_in, signup, store_args, Session};
use meshwork_testkit::{TestBackend, TestDatabase};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

fn run(args: &[&str], db: &TestDatabase, extra: &[String]) -> (bool, String, String) {
    let out = meshwork()
        .args(args)
        .args(store_args(db))
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn call(
    http: &reqwest::Client,
    base: &str,
    who: &Session,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = http
        .request(method, format!("{base}{path}"))
        .header("x-csrf-token", &who.csrf)
        .header("cookie", &who.cookie);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json::<Value>().await.unwrap_or(Value::Null))
}

async fn workspace_with_contact(
    http: &reqwest::Client,
    base: &str,
    who: &Session,
    name: &str,
    last_name: &str,
) -> String {
    let (s, ws) = call(
        http,
        base,
        who,
        reqwest::Method::POST,
        "/api/v1/workspaces",
        Some(json!({"name": name})),
    )
    .await;
    assert_eq!(s, 201, "{ws}");
    let ws = ws["id"].as_str().unwrap().to_string();
    let (s, c) = call(
        http,
        base,
        who,
        reqwest::Method::POST,
        &format!("/api/v1/workspaces/{ws}/contacts"),
        Some(json!({"first_name": "Grace", "last_name": last_name, "emails": [format!("{}@backup.test", last_name.to_lowercase())]})),
    )
    .await;
    assert_eq!(s, 201, "{c}");
    ws
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Every value the restored store holds outside the audit log (which keeps that a workspace
/// existed and was deleted, by id, its details sealed with the destroyed key): every row of the
/// other tables, as bytes.
fn stored_bytes(db: &TestDatabase) -> Vec<u8> {
    match db.pg_dump() {
        Some(dump) => String::from_utf8_lossy(&dump)
            .lines()
            .filter(|l| !l.starts_with("INSERT INTO public.audit_log "))
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes(),
        None => {
            let conn = rusqlite::Connection::open(db.dir.path().join("meshwork.db")).unwrap();
            let tables: Vec<String> = conn
                .prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'audit_log'",
                )
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let mut all = Vec::new();
            for t in tables {
                let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
                let n = stmt.column_count();
                let mut rows = stmt.query([]).unwrap();
                while let Some(row) = rows.next().unwrap() {
                    for i in 0..n {
                        match row.get_ref(i).unwrap() {
                            rusqlite::types::ValueRef::Text(b)
                            | rusqlite::types::ValueRef::Blob(b) => all.extend_from_slice(b),
                            _ => {}
                        }
                        all.push(b'|');
                    }
                }
            }
            all
        }
    }
}

/// cl14 (and pm11's "all associated data"): a backup taken before a workspace is deleted,
/// restored afterwards with the live keyring, holds nothing readable of that workspace (its key
/// was destroyed; the restore removes its rows and says so), while the other workspace and the
/// accounts restore intact. Bad restores are refused and overwrite nothing.
async fn a_deleted_workspace_stays_deleted_in_a_restored_backup(backend: TestBackend) {
    let Some(db) = TestDatabase::new(backend).await else {
        return;
    };
    let http = reqwest::Client::new();
    let (mut server, base) = serve_with(&db, &http, &[]).await;
    let ada = signup(&http, &base, "ada@backup.test").await;
    let kept = workspace_with_contact(&http, &base, &ada, "Kept Ltd", "Keptcanary").await;
    let doomed = workspace_with_contact(&http, &base, &ada, "Doomed Ltd", "Doomedcanary").await;
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().to_str().unwrap().to_string();

    // Beside the running server.
    let (ok, stdout, stderr) = run(&["backup", "--out", &out], &db, &[]);
    assert!(ok, "{stderr}");
    let files: Vec<PathBuf> = stdout.lines().map(PathBuf::from).collect();
    assert_eq!(files.len(), 2, "{stdout}");
    let (backup, keyring) = (&files[0], &files[1]);
    assert!(backup.extension().unwrap() == "backup" && keyring.extension().unwrap() == "keyring");
    // Sealed: neither the contact's name nor the database's own header is in the clear, and
    // the keyring is in its own file, not in the database's.
    let sealed = std::fs::read(backup).unwrap();
    for clear in [
        &b"Keptcanary"[..],
        b"SQLite format 3",
        b"PGDMP",
        b"keptcanary@backup.test",
    ] {
        assert!(!sealed.windows(clear.len()).any(|w| w == clear));
    }
    let (ok, stdout, stderr) = run(&["backup", "verify", backup.to_str().unwrap()], &db, &[]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("whole and authentic"), "{stdout}");
    if backend == TestBackend::Sqlite {
        assert!(stdout.contains("2 workspaces"), "{stdout}");
    }
    let (ok, stdout, stderr) = run(&["backup", "verify", keyring.to_str().unwrap()], &db, &[]);
    assert!(ok && stdout.contains("a keyring of"), "{stdout}{stderr}");

    // The workspace is deleted after the backup.
    let (s, body) = call(
        &http,
        &base,
        &ada,
        reqwest::Method::DELETE,
        &format!("/api/v1/workspaces/{doomed}"),
        Some(json!({"confirm": "Doomed Ltd", "password": "correct horse battery staple"})),
    )
    .await;
    assert_eq!(s, 204, "{body}");
    let _ = server.kill();
    let _ = server.wait();

    // A fresh target: the master key and the live keyring copied over, nothing else.
    let target = TestDatabase::new(backend).await.unwrap();
    std::fs::copy(
        db.dir.path().join("master.key"),
        target.dir.path().join("master.key"),
    )
    .unwrap();
    copy_dir(
        &db.dir.path().join("keyring"),
        &target.dir.path().join("keyring"),
    );

    // Bad input first: a cut backup, a changed one and a keyring given as the database are
    // refused, and nothing is written.
    let cut = out_dir.path().join("cut.backup");
    std::fs::write(&cut, &sealed[..sealed.len() - 40]).unwrap();
    let mut changed = sealed.clone();
    let at = changed.len() / 2;
    changed[at] ^= 0x20;
    let changed_path = out_dir.path().join("changed.backup");
    std::fs::write(&changed_path, &changed).unwrap();
    for (file, says) in [
        (cut.to_str().unwrap(), "cut short"),
        (changed_path.to_str().unwrap(), "does not open"),
        (keyring.to_str().unwrap(), "keyring backup"),
    ] {
        let (ok, _, stderr) = run(&["restore", file], &target, &[]);
        assert!(!ok, "{file} was restored");
        assert!(stderr.contains(says), "{file}: {stderr}");
        assert!(!target.dir.path().join("meshwork.db").exists());
    }
    if let Some(url) = &target.url {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
            .await
            .unwrap();
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(n, 0, "a refused restore wrote tables");
    }

    let (ok, stdout, stderr) = run(&["restore", backup.to_str().unwrap()], &target, &[]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!("removed workspace {doomed}")),
        "{stdout}"
    );
    // Nothing is ever overwritten: a second restore into the same place is refused.
    let (ok, _, stderr) = run(&["restore", backup.to_str().unwrap()], &target, &[]);
    assert!(!ok && stderr.contains("nothing was changed"), "{stderr}");

    // Nothing of the deleted workspace is left in the restored store, not even its id.
    let bytes = stored_bytes(&target);
    if let Some(i) = bytes
        .windows(doomed.len())
        .position(|w| w == doomed.as_bytes())
    {
        panic!(
            "the deleted workspace's id is in the restored store: {}",
            String::from_utf8_lossy(&bytes[i.saturating_sub(300)..(i + 100).min(bytes.len())])
        );
    }
    assert!(bytes.windows(kept.len()).any(|w| w == kept.as_bytes()));

    // The restored server: the account signs in, the kept workspace is whole and searchable,
    // the deleted one does not exist.
    let (mut restored, base) = serve_with(&target, &http, &[]).await;
    let ada = sign_in(&http, &base, "ada@backup.test").await;
    let (s, list) = call(
        &http,
        &base,
        &ada,
        reqwest::Method::GET,
        "/api/v1/workspaces",
        None,
    )
    .await;
    assert_eq!(s, 200);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Kept Ltd"]);
    let (s, _) = call(
        &http,
        &base,
        &ada,
        reqwest::Method::GET,
        &format!("/api/v1/workspaces/{doomed}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let started = Instant::now();
    loop {
        let (s, found) = call(
            &http,
            &base,
            &ada,
            reqwest::Method::GET,
            &format!("/api/v1/workspaces/{kept}/search?q=keptcanary"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{found}");
        if found.to_string().contains("Keptcanary") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{found}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = restored.kill();
    let _ = restored.wait();
}

#[tokio::test]
async fn promise_cl14_a_deleted_workspace_stays_deleted_in_a_restored_backup_sqlite() {
    a_deleted_workspace_stays_deleted_in_a_restored_backup(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn promise_cl14_a_deleted_workspace_stays_deleted_in_a_restored_backup_postgres() {
    a_deleted_workspace_stays_deleted_in_a_restored_backup(TestBackend::Postgres).await;
}

/// Sets a file's modification time `days` days back.
fn age(path: &Path, days: f64) {
    let when = SystemTime::now() - Duration::from_secs_f64(days * 86_400.0);
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(when).unwrap();
}

/// mm10 and mm16: the server takes the daily backup itself (once, at start-up for the current
/// day, then daily), sealed; every backup deletes the backups older than `backup.keep_days`,
/// 7 by default, so an account or workspace deleted today leaves the backups within 7 days.
async fn backups_are_daily_sealed_and_kept_seven_days(backend: TestBackend) {
    let Some(db) = TestDatabase::new(backend).await else {
        return;
    };
    let http = reqwest::Client::new();
    let dir = db.dir.path().join("backups");
    std::fs::create_dir_all(&dir).unwrap();
    // Two backups of an earlier week: 8 days old (past the default 7) and 6 days old.
    let old = dir.join("meshwork-20261128T023000Z.backup");
    let old_keys = dir.join("meshwork-20261128T023000Z.keyring");
    let recent = dir.join("meshwork-20261130T023000Z.backup");
    let unrelated = dir.join("notes.txt");
    for f in [&old, &old_keys, &recent, &unrelated] {
        std::fs::write(f, b"x").unwrap();
    }
    age(&old, 8.0);
    age(&old_keys, 8.0);
    age(&recent, 6.0);
    age(&unrelated, 30.0);
    let (mut server, base) = serve_with(
        &db,
        &http,
        &[
            ("MESHWORK_BACKUP__ENABLED", "true".to_string()),
            ("MESHWORK_JOBS__POLL_MILLIS", "20".to_string()),
        ],
    )
    .await;
    let _ = base;
    let started = Instant::now();
    let fresh = loop {
        let fresh: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy().into_owned();
                n.starts_with("meshwork-2") && !n.starts_with("meshwork-202611")
            })
            .collect();
        if fresh.len() == 2 && !old.exists() {
            break fresh;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no daily backup: {fresh:?}\n{}",
            common::server_log(&base)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        !old.exists() && !old_keys.exists(),
        "an 8-day-old backup was kept"
    );
    assert!(recent.exists(), "a 6-day-old backup was deleted");
    assert!(
        unrelated.exists(),
        "a file that is not a backup was deleted"
    );
    let backup = fresh
        .iter()
        .find(|p| p.extension().unwrap() == "backup")
        .unwrap();
    let (ok, stdout, stderr) = run(&["backup", "verify", backup.to_str().unwrap()], &db, &[]);
    assert!(
        ok && stdout.contains("whole and authentic"),
        "{stdout}{stderr}"
    );

    // A backup target that cannot be written names itself and leaves nothing behind.
    let blocked = db.dir.path().join("a-file");
    std::fs::write(&blocked, b"not a directory").unwrap();
    let target = blocked.join("backups");
    let (ok, _, stderr) = run(&["backup", "--out", target.to_str().unwrap()], &db, &[]);
    assert!(!ok);
    assert!(stderr.contains(target.to_str().unwrap()), "{stderr}");

    // A backup opened with another master key is refused as foreign.
    let other = TestDatabase::new(TestBackend::Sqlite).await.unwrap();
    let key = other.dir.path().join("master.key");
    std::fs::write(&key, "ab".repeat(32)).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let (ok, _, stderr) = run(&["backup", "verify", backup.to_str().unwrap()], &other, &[]);
    assert!(!ok && stderr.contains("another master key"), "{stderr}");
}

#[tokio::test]
async fn promise_mm10_backups_are_daily_sealed_and_kept_seven_days_sqlite() {
    backups_are_daily_sealed_and_kept_seven_days(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn promise_mm10_backups_are_daily_sealed_and_kept_seven_days_postgres() {
    backups_are_daily_sealed_and_kept_seven_days(TestBackend::Postgres).await;
}

/// mm16: the retention window is 7 days unless an operator shortens it, and no setting keeps
/// backups forever (0 days is refused).
#[test]
fn promise_mm16_backups_are_kept_seven_days_by_default_and_never_forever() {
    let config = meshwork_app::Config::default();
    assert!(config.backup.enabled);
    assert_eq!(config.backup.keep_days, 7);
    let out = meshwork()
        .args(["backup", "--data-dir", "/nonexistent-meshwork"])
        .env("MESHWORK_BACKUP__KEEP_DAYS", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("backup.keep_days is 0"));
}

/// cl14 and pm11: a server killed in the middle of deleting a workspace (its key destroyed, its
/// rows not yet removed: `MESHWORK_FAULT` aborts it exactly there) finishes the deletion when
/// it starts again, by the job queued before the key went; the other workspace is untouched.
async fn a_deletion_cut_by_a_crash_resumes_and_completes(backend: TestBackend) {
    let Some(db) = TestDatabase::new(backend).await else {
        return;
    };
    let http = reqwest::Client::new();
    let env = [
        ("MESHWORK_FAULT", "workspace.delete.after_key".to_string()),
        ("MESHWORK_JOBS__POLL_MILLIS", "20".to_string()),
        ("MESHWORK_JOBS__RETRY_BASE_SECONDS", "1".to_string()),
    ];
    let (mut server, base) = serve_with(&db, &http, &env).await;
    let ada = signup(&http, &base, "ada@crash.test").await;
    let kept = workspace_with_contact(&http, &base, &ada, "Kept Ltd", "Keptcrash").await;
    let doomed = workspace_with_contact(&http, &base, &ada, "Doomed Ltd", "Doomedcrash").await;
    // The server dies mid-deletion: the request gets no answer.
    let r = http
        .delete(format!("{base}/api/v1/workspaces/{doomed}"))
        .header("x-csrf-token", &ada.csrf)
        .header("cookie", &ada.cookie)
        .json(&json!({"confirm": "Doomed Ltd", "password": "correct horse battery staple"}))
        .send()
        .await;
    assert!(
        r.is_err(),
        "the server answered: {:?}",
        r.map(|r| r.status())
    );
    let status = server.wait().unwrap();
    assert!(!status.success(), "the server was to abort");
    // Cut there: the key is gone, the rows are not.
    assert!(!db
        .dir
        .path()
        .join(format!("keyring/workspaces/{doomed}.key"))
        .exists());
    {
        let store = db.open_store().await;
        let id = meshwork_domain::WorkspaceId(doomed.parse().unwrap());
        assert!(
            store.workspace(id).await.unwrap().is_some(),
            "rows were to remain"
        );
        store.close().await;
    }
    // Started again (no fault armed), it finishes the deletion by itself.
    let (mut server, base) = serve_with(&db, &http, &env[1..]).await;
    let ada = sign_in(&http, &base, "ada@crash.test").await;
    let started = Instant::now();
    loop {
        let store = db.open_store().await;
        let id = meshwork_domain::WorkspaceId(doomed.parse().unwrap());
        let gone = store.workspace(id).await.unwrap().is_none();
        store.close().await;
        if gone {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the deletion did not resume\n{}",
            common::server_log(&base)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, list) = call(
        &http,
        &base,
        &ada,
        reqwest::Method::GET,
        "/api/v1/workspaces",
        None,
    )
    .await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Kept Ltd"]);
    let (s, _) = call(
        &http,
        &base,
        &ada,
        reqwest::Method::GET,
        &format!("/api/v1/workspaces/{kept}/contacts"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let _ = server.kill();
    let _ = server.wait();
}

#[tokio::test]
async fn promise_cl14_a_deletion_cut_by_a_crash_resumes_and_completes_sqlite() {
    a_deletion_cut_by_a_crash_resumes_and_completes(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn promise_cl14_a_deletion_cut_by_a_crash_resumes_and_completes_postgres() {
    a_deletion_cut_by_a_crash_resumes_and_completes(TestBackend::Postgres).await;
}

/// Disaster recovery: with only the master key kept apart, a backup and its keyring backup
/// restore a whole server into an empty directory; a keyring backup is never written over an
/// existing keyring.
#[tokio::test]
async fn a_backup_and_its_keyring_restore_with_only_the_master_key() {
    let db = TestDatabase::new(TestBackend::Sqlite).await.unwrap();
    let http = reqwest::Client::new();
    let (mut server, base) = serve_with(&db, &http, &[]).await;
    let ada = signup(&http, &base, "ada@recover.test").await;
    let ws = workspace_with_contact(&http, &base, &ada, "Recovered Ltd", "Recoverable").await;
    let out_dir = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = run(
        &["backup", "--out", out_dir.path().to_str().unwrap()],
        &db,
        &[],
    );
    assert!(ok, "{stderr}");
    let files: Vec<&str> = stdout.lines().collect();
    let _ = server.kill();
    let _ = server.wait();

    let target = TestDatabase::new(TestBackend::Sqlite).await.unwrap();
    let key = target.dir.path().join("master.key");
    std::fs::copy(db.dir.path().join("master.key"), &key).unwrap();
    // An existing keyring is never overwritten by a keyring backup.
    std::fs::create_dir_all(target.dir.path().join("keyring/workspaces")).unwrap();
    std::fs::write(target.dir.path().join("keyring/placeholder"), b"x").unwrap();
    let (ok, _, stderr) = run(&["restore", "--keyring", files[1], files[0]], &target, &[]);
    assert!(!ok && stderr.contains("is not empty"), "{stderr}");
    assert!(!target.dir.path().join("meshwork.db").exists());
    std::fs::remove_dir_all(target.dir.path().join("keyring")).unwrap();
    let (ok, stdout, stderr) = run(&["restore", "--keyring", files[1], files[0]], &target, &[]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("1 workspaces") && stdout.contains("keys from the keyring backup"),
        "{stdout}"
    );
    let (mut restored, base) = serve_with(&target, &http, &[]).await;
    let ada = sign_in(&http, &base, "ada@recover.test").await;
    let (s, contacts) = call(
        &http,
        &base,
        &ada,
        reqwest::Method::GET,
        &format!("/api/v1/workspaces/{ws}/contacts"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert!(contacts.to_string().contains("Recoverable"), "{contacts}");
    let _ = restored.kill();
    let _ = restored.wait();
}
