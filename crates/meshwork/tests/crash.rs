//! Crash consistency (issue 28, part 4): `meshwork serve` killed with SIGKILL at a random moment
//! during each kind of long or many-row work, started again on the same store, and checked.
//!
//! Each kill point is one round in a workspace of its own: prepare, start the work, wait a random
//! time in `[0, 1.25 × d]` (`d`: how long the same work took uncut, measured first on each
//! engine), SIGKILL, start a new server, let its jobs settle, check. The work:
//!
//! - **import**: a 600-row contact CSV through the API's import job. The job resumes and ends
//!   with exactly the records of the uncut import (none lost, none twice).
//! - **sync**: a folder connector over 300 files. The sync resumes; every file is one document.
//! - **merge**: a contact merged into another, with 30 notes about the merged one. Either nothing
//!   happened (both contacts, notes about the merged one) or all of it (one contact, every note
//!   moved to the survivor).
//! - **bulk update** and **bulk delete** of the import's contacts: all of them changed, or none.
//! - **workspace delete**: the workspace is whole, or gone with every record of it.
//! - **backup**: `meshwork backup` beside the server, both killed: every `.backup` file left
//!   verifies and has its `.keyring`.
//! - **mail**: 12 invitations sent through a real SMTP server (aiosmtpd): the outbox empties and
//!   every one arrives. SMTP cannot make a delivery exactly-once across a power cut (the server
//!   may accept the message just before the sender dies, so it is sent again): every copy of one
//!   mail carries the same `Message-ID`, by which receivers drop duplicates; copies are counted.
//!
//! After every round the search index agrees with the store exactly: the same records at the
//! same versions, each once, as the lists (served from the index) show them.
//!
//! `MESHWORK_TEST_CRASH_POINTS` sets the kill points per engine (8 by default, one per kind of work;
//! `docs/hardening.md` records a run of 104), `MESHWORK_TEST_CRASH_SEED` the random seed (printed).

mod common;

use common::{call, meshwork, serve_with, signup, store_args, Auth, Session};
use meshwork_domain::{RecordId, WorkspaceId};
use meshwork_testkit::smtp::SmtpSink;
use meshwork_testkit::{TestBackend, TestDatabase};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const IMPORT_ROWS: usize = 600;
const SYNC_FILES: usize = 300;
const MERGE_NOTES: usize = 30;
const MAILS: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Work {
    Import,
    Sync,
    Merge,
    BulkUpdate,
    BulkDelete,
    WorkspaceDelete,
    Backup,
    Mail,
}

const ALL: [Work; 8] = [
    Work::Import,
    Work::Sync,
    Work::Merge,
    Work::BulkUpdate,
    Work::BulkDelete,
    Work::WorkspaceDelete,
    Work::Backup,
    Work::Mail,
];

/// SplitMix64: a reproducible choice of kill moments from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What one kill point found.
#[derive(Debug, Default, Clone)]
struct Tally {
    points: usize,
    /// Killed before the work was seen to finish (the rest were killed just after).
    cut: usize,
    /// Rounds that ended with the work done (the others rolled back: nothing of it is left).
    done: usize,
    /// Mail only: copies received beyond the first (same `Message-ID`).
    duplicates: usize,
}

struct Harness {
    db: TestDatabase,
    http: reqwest::Client,
    env: Vec<(&'static str, String)>,
    server: Child,
    base: String,
    ada: Session,
    store: std::sync::Arc<dyn meshwork_store::Store>,
    sink: SmtpSink,
    csv: Vec<u8>,
    /// How many contacts the CSV makes (the uncut import's count).
    imported: usize,
    backups: tempfile::TempDir,
    trees: tempfile::TempDir,
    rng: Rng,
    windows: BTreeMap<Work, Duration>,
    tally: BTreeMap<Work, Tally>,
    workspaces: Vec<String>,
}

/// A failing check must not leave its server running (it would poll the store for good).
impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn kill(child: &mut Child) {
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait();
}

fn session(s: &Session) -> Session {
    Session {
        cookie: s.cookie.clone(),
        csrf: s.csrf.clone(),
    }
}

impl Harness {
    async fn start(backend: TestBackend, seed: u64) -> Option<Self> {
        let db = TestDatabase::new(backend).await?;
        let sink = SmtpSink::start();
        let env = vec![
            // Leases of 3 s (the least allowed): the next server waits that long for a dead one's job.
            ("MESHWORK_JOBS__LEASE_SECONDS", "3".to_string()),
            ("MESHWORK_JOBS__POLL_MILLIS", "20".to_string()),
            ("MESHWORK_JOBS__RETRY_BASE_SECONDS", "1".to_string()),
            ("MESHWORK_SMTP__HOST", "127.0.0.1".to_string()),
            ("MESHWORK_SMTP__PORT", sink.port.to_string()),
            ("MESHWORK_SMTP__TLS", "none".to_string()),
            ("MESHWORK_SMTP__FROM", "meshwork@crash.test".to_string()),
            (
                "MESHWORK_CONNECTORS__FOLDER_ROOTS",
                std::env::temp_dir().display().to_string(),
            ),
        ];
        let http = reqwest::Client::new();
        let (server, base) = serve_with(&db, &http, &env).await;
        let ada = signup(&http, &base, "ada@crash.test").await;
        let out = meshwork()
            .args(["users", "verify-email", "ada@crash.test"])
            .args(store_args(&db))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let file = db.dir.path().join("contacts.csv");
        let out = meshwork()
            .args(["dev", "generate", "--type", "contact", "--seed", "11"])
            .args(["--rows", &IMPORT_ROWS.to_string(), "--out"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let store = db.open_store().await;
        Some(Self {
            csv: std::fs::read(&file).unwrap(),
            db,
            http,
            env,
            server,
            base,
            ada,
            store,
            sink,
            imported: 0,
            backups: tempfile::tempdir().unwrap(),
            trees: tempfile::tempdir().unwrap(),
            rng: Rng(seed),
            windows: BTreeMap::new(),
            tally: BTreeMap::new(),
            workspaces: Vec::new(),
        })
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        call(
            &self.http,
            method,
            format!("{}{path}", self.base),
            &Auth::Session(&self.ada),
            body,
        )
        .await
    }

    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, body) = self.call(method, path, body).await;
        assert!((200..300).contains(&status), "{path}: {status} {body}");
        body
    }

    async fn workspace(&mut self, name: &str) -> String {
        let ws = self
            .ok(
                Method::POST,
                "/api/v1/workspaces",
                Some(json!({ "name": name })),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        self.workspaces.push(ws.clone());
        ws
    }

    fn wsid(ws: &str) -> WorkspaceId {
        WorkspaceId(ws.parse().unwrap())
    }

    /// A request sent now and answered (or cut) later: its status, or `None` when the kill cut
    /// the connection first.
    fn spawn(
        &self,
        method: Method,
        path: String,
        body: Value,
    ) -> tokio::task::JoinHandle<Option<u16>> {
        let http = self.http.clone();
        let url = format!("{}{path}", self.base);
        let ada = session(&self.ada);
        tokio::spawn(async move {
            let r = http
                .request(method, url)
                .header("cookie", &ada.cookie)
                .header("x-csrf-token", &ada.csrf)
                .json(&body)
                .send()
                .await
                .ok()?;
            Some(r.status().as_u16())
        })
    }

    async fn post_import(&self, ws: &str) -> Option<u16> {
        self.import_request(ws).await
    }

    /// Waits until no job of `ws` is queued or running, and the outbox is empty.
    async fn settle(&self, ws: &str) {
        let started = Instant::now();
        loop {
            let jobs = self
                .store
                .queued_jobs(Some(Self::wsid(ws)), None, 100)
                .await
                .unwrap();
            let busy = jobs
                .iter()
                .any(|j| j.state == "queued" || j.state == "running");
            let unsent = self.store.operations().await.unwrap().unsent_mail;
            if !busy && unsent == 0 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "work did not settle: {jobs:?}, {unsent} mails unsent\n{}",
                common::server_log(&self.base)
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The records of `kind` in the store and in the index (through a list), by id and version:
    /// they must be the same, each once.
    async fn index_matches_store(&self, ws: &str) {
        let wsid = Self::wsid(ws);
        for (kind, path) in [("contact", "contacts"), ("note", "notes")] {
            let mut stored = BTreeMap::new();
            let mut after: Option<RecordId> = None;
            loop {
                let rows = self.store.crm_list(wsid, kind, after, 500).await.unwrap();
                let Some(last) = rows.last() else { break };
                after = Some(last.id);
                for r in rows {
                    stored.insert(r.id.0, r.version);
                }
            }
            let mut indexed = BTreeMap::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut url = format!("/api/v1/workspaces/{ws}/{path}?limit=200");
                if let Some(c) = &cursor {
                    url.push_str(&format!("&cursor={c}"));
                }
                let page = self.ok(Method::GET, &url, None).await;
                assert_eq!(
                    page["total"].as_u64().unwrap() as usize,
                    stored.len(),
                    "{kind}: the index counts what the store holds"
                );
                for r in page["records"].as_array().unwrap() {
                    let id: uuid::Uuid = r["id"].as_str().unwrap().parse().unwrap();
                    let again = indexed.insert(id, r["version"].as_i64().unwrap());
                    assert!(again.is_none(), "{kind} {id} listed twice");
                }
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_string()),
                    None => break,
                }
            }
            assert_eq!(
                indexed, stored,
                "{kind}: the index holds exactly the store's records at their versions"
            );
        }
    }

    async fn restart(&mut self) {
        let (server, base) = serve_with(&self.db, &self.http, &self.env).await;
        self.server = server;
        self.base = base;
    }

    async fn wait_import(&self, ws: &str) {
        let started = Instant::now();
        loop {
            let jobs = self.store.jobs(Self::wsid(ws), 1).await.unwrap();
            if jobs.first().is_some_and(|j| j.state == "done") {
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(120), "{jobs:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn tree(&self, round: usize) -> PathBuf {
        let dir = self.trees.path().join(format!("r{round}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(self.trees.path().join(format!("r{round}.passwd")), "").unwrap();
        for i in 0..SYNC_FILES {
            let sub = dir.join(format!("d{:02}", i % 10));
            std::fs::create_dir_all(&sub).unwrap();
            std::fs::write(sub.join(format!("n{i:04}.txt")), format!("okapi note {i}")).unwrap();
        }
        dir
    }

    /// One round: prepare `work` in a new workspace, start it, wait `delay` (none: to the end,
    /// measuring), kill the server (unless measuring), start a new one, settle and check.
    /// Answers how long the work took when measured, and whether it ended done.
    async fn round(
        &mut self,
        round: usize,
        work: Work,
        delay: Option<Duration>,
    ) -> (Duration, bool) {
        let ws = self.workspace(&format!("Round {round}")).await;
        let wsid = Self::wsid(&ws);
        // Preparation, uncut.
        let mut merge_ids = None;
        let mut names = BTreeMap::new();
        match work {
            Work::BulkUpdate | Work::BulkDelete | Work::WorkspaceDelete => {
                assert_eq!(self.post_import(&ws).await, Some(202));
                self.wait_import(&ws).await;
            }
            Work::Merge => {
                let keep = self
                    .ok(Method::POST, &format!("/api/v1/workspaces/{ws}/contacts"), Some(json!({"first_name": "Keep", "emails": [format!("keep@r{round}.crash.test")]})))
                    .await["id"].as_str().unwrap().to_string();
                let other = self
                    .ok(Method::POST, &format!("/api/v1/workspaces/{ws}/contacts"), Some(json!({"first_name": "Other", "title": "Merged away", "emails": [format!("other@r{round}.crash.test")]})))
                    .await["id"].as_str().unwrap().to_string();
                for i in 0..MERGE_NOTES {
                    self.ok(
                        Method::POST,
                        &format!("/api/v1/workspaces/{ws}/notes"),
                        Some(json!({"body": format!("note {i}"), "about": [other]})),
                    )
                    .await;
                }
                merge_ids = Some((keep, other));
            }
            _ => {}
        }
        if work == Work::WorkspaceDelete {
            names.insert("confirm", format!("Round {round}"));
        }
        let sync_tree = (work == Work::Sync).then(|| self.tree(round));
        let backup_dir = self.backups.path().join(format!("r{round}"));
        let before_mail = self.sink.messages().len();

        // The work.
        let started = Instant::now();
        let mut request = None;
        let mut backup: Option<Child> = None;
        let mut connector = None;
        match work {
            Work::Import => request = Some(tokio::spawn(self.import_request(&ws))),
            Work::Sync => {
                let tree = sync_tree.as_ref().unwrap();
                let passwd = tree.with_extension("passwd");
                let settings = json!({"kind": "folder", "path": tree, "passwd_file": passwd, "group_file": passwd});
                let c = self
                    .ok(
                        Method::POST,
                        &format!("/api/v1/workspaces/{ws}/connectors"),
                        Some(json!({"source": "notes", "settings": settings})),
                    )
                    .await;
                let id = c["id"].as_str().unwrap().to_string();
                request = Some(self.spawn(
                    Method::POST,
                    format!("/api/v1/workspaces/{ws}/connectors/{id}/sync"),
                    json!({}),
                ));
                connector = Some(id);
            }
            Work::Merge => {
                let (keep, other) = merge_ids.as_ref().unwrap();
                request = Some(self.spawn(
                    Method::POST,
                    format!("/api/v1/workspaces/{ws}/contacts/{keep}/merge"),
                    json!({"merge_id": other}),
                ));
            }
            Work::BulkUpdate => {
                request = Some(self.spawn(
                    Method::POST,
                    format!("/api/v1/workspaces/{ws}/contacts/bulk-update"),
                    json!({"filter": {}, "set": {"title": format!("after {round}")}}),
                ));
            }
            Work::BulkDelete => {
                request = Some(self.spawn(
                    Method::POST,
                    format!("/api/v1/workspaces/{ws}/contacts/bulk-delete"),
                    json!({"filter": {}, "confirm": true}),
                ));
            }
            Work::WorkspaceDelete => {
                request = Some(self.spawn(
                    Method::DELETE,
                    format!("/api/v1/workspaces/{ws}"),
                    json!({"confirm": names["confirm"], "password": "correct horse battery staple"}),
                ));
            }
            Work::Backup => {
                backup = Some(
                    meshwork()
                        .args(["backup", "--out"])
                        .arg(&backup_dir)
                        .args(store_args(&self.db))
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .spawn()
                        .unwrap(),
                );
            }
            Work::Mail => {
                for i in 0..MAILS {
                    self.ok(
                        Method::POST,
                        &format!("/api/v1/workspaces/{ws}/invites"),
                        Some(
                            json!({"email": format!("m{i}@r{round}.crash.test"), "role": "viewer"}),
                        ),
                    )
                    .await;
                }
            }
        }

        // Measured: to the end of the work. Cut: a random moment, then SIGKILL.
        let finished = |this: &Self| {
            let ws = ws.clone();
            let connector = connector.clone();
            let store = this.store.clone();
            let sink_count = this.sink.messages().len();
            async move {
                match work {
                    Work::Import => store
                        .jobs(wsid, 1)
                        .await
                        .unwrap()
                        .first()
                        .is_some_and(|j| j.state == "done"),
                    Work::Sync => store
                        .connector_runs(wsid, connector.as_deref().unwrap(), 5)
                        .await
                        .unwrap()
                        .iter()
                        .any(|r| r.state == "done"),
                    Work::Mail => sink_count >= before_mail + MAILS,
                    Work::WorkspaceDelete => {
                        store.workspace(Self::wsid(&ws)).await.unwrap().is_none()
                    }
                    _ => false,
                }
            }
        };
        let mut cut = false;
        match delay {
            None => loop {
                let done = match work {
                    Work::Backup => backup.as_mut().unwrap().try_wait().unwrap().is_some(),
                    Work::Merge | Work::BulkUpdate | Work::BulkDelete => {
                        request.as_ref().unwrap().is_finished()
                    }
                    _ => finished(self).await,
                };
                if done {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "{work:?} never ended"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            },
            Some(delay) => {
                tokio::time::sleep(delay.saturating_sub(started.elapsed())).await;
                kill(&mut self.server);
                if let Some(b) = backup.as_mut() {
                    cut |= b.try_wait().unwrap().is_none();
                    kill(b);
                }
                cut |= match &request {
                    Some(r) => !r.is_finished(),
                    None => false,
                } || (work != Work::Backup && !finished(self).await);
            }
        }
        let took = started.elapsed();
        let answered = match request {
            Some(r) => r.await.unwrap(),
            None => None,
        };
        if delay.is_some() {
            self.restart().await;
        }
        // A job-backed request the client saw accepted must end done; one cut before its answer
        // may have happened or not.
        if work != Work::WorkspaceDelete {
            self.settle(&ws).await;
        }

        // The checks.
        let done = match work {
            Work::Import => {
                let n = self.store.crm_count(wsid, "contact").await.unwrap() as usize;
                let job = self.store.jobs(wsid, 1).await.unwrap();
                if delay.is_none() {
                    self.imported = n;
                }
                match job.first() {
                    Some(j) => {
                        assert_eq!(j.state, "done", "round {round}: {j:?}");
                        assert_eq!(n, self.imported, "round {round}: every row once");
                        true
                    }
                    None => {
                        assert_ne!(
                            answered,
                            Some(202),
                            "round {round}: an accepted import was lost"
                        );
                        assert_eq!(n, 0, "round {round}: no job, no record");
                        false
                    }
                }
            }
            Work::Sync => {
                let runs = self
                    .store
                    .connector_runs(wsid, connector.as_deref().unwrap(), 10)
                    .await
                    .unwrap();
                assert!(
                    runs.iter().all(|r| r.state == "done"),
                    "round {round}: {runs:?}"
                );
                let docs = self
                    .store
                    .source_fingerprints(wsid, "notes")
                    .await
                    .unwrap()
                    .len();
                if runs.is_empty() {
                    assert_eq!(docs, 0, "round {round}");
                    false
                } else {
                    assert_eq!(docs, SYNC_FILES, "round {round}: every file once: {runs:?}");
                    true
                }
            }
            Work::Merge => {
                let (keep, other) = merge_ids.as_ref().unwrap();
                let (keep, other) = (
                    RecordId(keep.parse().unwrap()),
                    RecordId(other.parse().unwrap()),
                );
                let about = |id| {
                    let store = self.store.clone();
                    async move {
                        store
                            .crm_links_to(wsid, id, Some("about"))
                            .await
                            .unwrap()
                            .into_iter()
                            .map(|l| l.from)
                            .collect::<BTreeSet<_>>()
                    }
                };
                let (to_keep, to_other) = (about(keep).await, about(other).await);
                let kept = self.store.crm_record(wsid, keep).await.unwrap().unwrap();
                match self.store.crm_record(wsid, other).await.unwrap() {
                    Some(_) => {
                        assert_ne!(
                            answered,
                            Some(200),
                            "round {round}: a merge answered done is undone"
                        );
                        assert_eq!(
                            (to_keep.len(), to_other.len(), kept.version),
                            (0, MERGE_NOTES, 1),
                            "round {round}: nothing of the merge"
                        );
                        false
                    }
                    None => {
                        assert_eq!(
                            (to_keep.len(), to_other.len()),
                            (MERGE_NOTES, 0),
                            "round {round}: every note moved"
                        );
                        assert_eq!(
                            kept.version, 2,
                            "round {round}: the survivor took the other's values"
                        );
                        true
                    }
                }
            }
            Work::BulkUpdate => {
                let mut versions = BTreeMap::new();
                let mut after = None;
                loop {
                    let rows = self
                        .store
                        .crm_list(wsid, "contact", after, 500)
                        .await
                        .unwrap();
                    let Some(last) = rows.last() else { break };
                    after = Some(last.id);
                    for r in rows {
                        *versions.entry(r.version).or_insert(0usize) += 1;
                    }
                }
                assert_eq!(
                    versions.len(),
                    1,
                    "round {round}: all changed or none: {versions:?}"
                );
                let (&version, &n) = versions.iter().next().unwrap();
                assert_eq!(n, self.imported, "round {round}");
                if version == 1 {
                    assert_ne!(
                        answered,
                        Some(200),
                        "round {round}: an answered bulk update is undone"
                    );
                }
                version == 2
            }
            Work::BulkDelete => {
                let n = self.store.crm_count(wsid, "contact").await.unwrap() as usize;
                assert!(
                    n == 0 || n == self.imported,
                    "round {round}: all deleted or none: {n}"
                );
                if n != 0 {
                    assert_ne!(
                        answered,
                        Some(200),
                        "round {round}: an answered bulk delete is undone"
                    );
                }
                n == 0
            }
            Work::WorkspaceDelete => {
                // The deletion job finishes what the request began, or nothing began.
                let started = Instant::now();
                loop {
                    let row = self.store.workspace(wsid).await.unwrap();
                    let n = self.store.crm_count(wsid, "contact").await.unwrap() as usize;
                    let (status, _) = self
                        .call(Method::GET, &format!("/api/v1/workspaces/{ws}"), None)
                        .await;
                    if row.is_some() && status == 200 && n == self.imported {
                        assert_ne!(
                            answered,
                            Some(204),
                            "round {round}: an answered deletion is undone"
                        );
                        break false;
                    }
                    if row.is_none() && n == 0 && status != 200 {
                        break true;
                    }
                    assert!(
                        started.elapsed() < Duration::from_secs(60),
                        "round {round}: half deleted: row {}, {n} contacts, GET {status}\n{}",
                        row.is_some(),
                        common::server_log(&self.base)
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            Work::Backup => {
                let mut whole = 0;
                if let Ok(entries) = std::fs::read_dir(&backup_dir) {
                    for e in entries.flatten() {
                        let path = e.path();
                        if path.extension().is_some_and(|x| x == "backup") {
                            let keyring = path.with_extension("keyring");
                            assert!(
                                keyring.exists(),
                                "round {round}: {} has no keyring beside it",
                                path.display()
                            );
                            for file in [&path, &keyring] {
                                verify(&self.db, file);
                            }
                            whole += 1;
                        }
                    }
                }
                whole > 0
            }
            Work::Mail => {
                let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
                let suffix = format!("@r{round}.crash.test");
                // The outbox is empty (settled): everything it sent has arrived or is arriving.
                let started = Instant::now();
                loop {
                    ids.clear();
                    for m in self.sink.messages() {
                        if m.envelope_to.ends_with(&suffix) {
                            ids.entry(m.envelope_to.clone())
                                .or_default()
                                .push(m.header("Message-ID").unwrap_or_default());
                        }
                    }
                    if ids.len() == MAILS || started.elapsed() > Duration::from_secs(10) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                assert_eq!(
                    ids.len(),
                    MAILS,
                    "round {round}: every mail arrived: {ids:?}"
                );
                for (to, copies) in &ids {
                    assert!(
                        copies.iter().all(|c| !c.is_empty() && c == &copies[0]),
                        "round {round}: copies to {to} are one mail: {copies:?}"
                    );
                    assert!(
                        delay.is_some() || copies.len() == 1,
                        "round {round}: uncut, each mail is sent once: {copies:?}"
                    );
                    self.tally.entry(work).or_default().duplicates += copies.len() - 1;
                }
                true
            }
        };
        if work != Work::WorkspaceDelete || !done {
            self.index_matches_store(&ws).await;
        }
        if delay.is_some() {
            let t = self.tally.entry(work).or_default();
            t.points += 1;
            t.cut += cut as usize;
            t.done += done as usize;
        }
        (took, done)
    }

    fn import_request(
        &self,
        ws: &str,
    ) -> impl std::future::Future<Output = Option<u16>> + Send + 'static {
        let http = self.http.clone();
        let url = format!(
            "{}/api/v1/workspaces/{ws}/imports?type=contact&layout=hubspot",
            self.base
        );
        let ada = session(&self.ada);
        let csv = self.csv.clone();
        async move {
            let r = http
                .post(url)
                .header("x-csrf-token", &ada.csrf)
                .header("cookie", &ada.cookie)
                .header("content-type", "text/csv")
                .body(csv)
                .send()
                .await
                .ok()?;
            Some(r.status().as_u16())
        }
    }
}

fn verify(db: &TestDatabase, file: &Path) {
    let out = meshwork()
        .args(["backup", "verify"])
        .arg(file)
        .args(store_args(db))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} does not verify: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn kill_at_random_moments(backend: TestBackend) {
    let points: usize = std::env::var("MESHWORK_TEST_CRASH_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ALL.len());
    let seed: u64 = std::env::var("MESHWORK_TEST_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("crash harness on {backend:?}: {points} kill points, MESHWORK_TEST_CRASH_SEED={seed}");
    let Some(mut h) = Harness::start(backend, seed).await else {
        return;
    };
    let started = Instant::now();
    let mut round = 0;
    // The uncut run of each: the oracle, and the window kill moments are drawn from.
    for work in ALL {
        round += 1;
        let (took, done) = h.round(round, work, None).await;
        assert!(done, "{work:?} uncut did not end done");
        h.windows.insert(work, took);
    }
    for i in 0..points {
        round += 1;
        let work = ALL[i % ALL.len()];
        let window = h.windows[&work]
            .mul_f64(1.25)
            .max(Duration::from_millis(20));
        let delay = Duration::from_micros(h.rng.below(window.as_micros() as u64));
        h.round(round, work, Some(delay)).await;
    }
    // At the end, every workspace left still agrees with its index.
    for ws in h.workspaces.clone() {
        if h.store
            .workspace(Harness::wsid(&ws))
            .await
            .unwrap()
            .is_some()
        {
            h.index_matches_store(&ws).await;
        }
    }
    println!(
        "{:<16} {:>8} {:>6} {:>10} {:>6} {:>11} {:>10}",
        "work", "window", "kills", "mid-work", "done", "rolled back", "mail dups"
    );
    for (work, t) in &h.tally {
        println!(
            "{:<16} {:>6}ms {:>6} {:>10} {:>6} {:>11} {:>10}",
            format!("{work:?}"),
            h.windows[work].as_millis(),
            t.points,
            t.cut,
            t.done,
            t.points - t.done,
            t.duplicates
        );
    }
    println!(
        "{backend:?}: {} kill points in {:.0} s, every check passed",
        h.tally.values().map(|t| t.points).sum::<usize>(),
        started.elapsed().as_secs_f64()
    );
    Command::new("kill")
        .args(["-TERM", &h.server.id().to_string()])
        .status()
        .unwrap();
    let _ = h.server.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_consistency_sqlite() {
    kill_at_random_moments(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_consistency_postgres() {
    kill_at_random_moments(TestBackend::Postgres).await;
}

/// Finding 16: a bulk update was written in chunks of 2,000 operations, each its own
/// transaction, so a crash (or a conflict) between two chunks left some records changed and the
/// others not, and could split a record's change from its history entry. The server here aborts
/// right after its first CRM write commits (`MESHWORK_FAULT=crm.apply.committed`), during a bulk
/// update of 1,200 contacts (2,400 operations): all of them are changed, and the index agrees.
async fn finding_16_a_bulk_update_cut_after_its_first_commit_changed_all_or_none(
    backend: TestBackend,
) {
    let Some(mut h) = Harness::start(backend, 16).await else {
        return;
    };
    let file = h.db.dir.path().join("many.csv");
    let out = meshwork()
        .args(["dev", "generate", "--type", "contact", "--seed", "16"])
        .args(["--rows", "1200", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    h.csv = std::fs::read(&file).unwrap();
    let ws = h.workspace("Bulk").await;
    assert_eq!(h.post_import(&ws).await, Some(202));
    h.wait_import(&ws).await;
    let wsid = Harness::wsid(&ws);
    let n = h.store.crm_count(wsid, "contact").await.unwrap();
    assert!(n > 1000, "{n} contacts: more than one chunk's worth");
    kill(&mut h.server);
    let mut env = h.env.clone();
    env.push(("MESHWORK_FAULT", "crm.apply.committed".to_string()));
    let (mut server, base) = serve_with(&h.db, &h.http, &env).await;
    let answer = h
        .http
        .post(format!(
            "{base}/api/v1/workspaces/{ws}/contacts/bulk-update"
        ))
        .header("cookie", &h.ada.cookie)
        .header("x-csrf-token", &h.ada.csrf)
        .json(&json!({"filter": {}, "set": {"title": "changed"}}))
        .send()
        .await;
    assert!(
        answer.is_err(),
        "the server aborted at the fault point: {answer:?}"
    );
    let _ = server.wait();
    h.restart().await;
    let mut versions = BTreeMap::new();
    let mut after = None;
    loop {
        let rows = h.store.crm_list(wsid, "contact", after, 500).await.unwrap();
        let Some(last) = rows.last() else { break };
        after = Some(last.id);
        for r in rows {
            *versions.entry(r.version).or_insert(0i64) += 1;
        }
    }
    assert_eq!(
        versions,
        BTreeMap::from([(2, n)]),
        "every contact changed once, none left behind"
    );
    h.index_matches_store(&ws).await;
    kill(&mut h.server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_16_a_bulk_update_cut_after_its_first_commit_changed_all_or_none_sqlite() {
    finding_16_a_bulk_update_cut_after_its_first_commit_changed_all_or_none(TestBackend::Sqlite)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_16_a_bulk_update_cut_after_its_first_commit_changed_all_or_none_postgres() {
    finding_16_a_bulk_update_cut_after_its_first_commit_changed_all_or_none(TestBackend::Postgres)
        .await;
}

/// Finding 17: a backup wrote its database file, then its keyring; killed in between, it left a
/// `.backup` with no `.keyring` beside it, which cannot be restored. The keyring is now written
/// first, so a `.backup` in place always has its keyring: `meshwork backup` aborted between the
/// two files (`MESHWORK_FAULT=backup.between_files`) leaves no `.backup` at all, and the next
/// backup is whole and verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_17_a_backup_killed_between_its_two_files_leaves_no_backup_without_its_keyring() {
    let db = TestDatabase::new(TestBackend::Sqlite).await.unwrap();
    let http = reqwest::Client::new();
    let (mut server, base) = common::serve(&db, &http).await;
    signup(&http, &base, "ada@backup-fault.test").await;
    let out_dir = tempfile::tempdir().unwrap();
    let run = |fault: Option<&str>| {
        let mut c = meshwork();
        c.args(["backup", "--out"])
            .arg(out_dir.path())
            .args(store_args(&db));
        if let Some(f) = fault {
            c.env("MESHWORK_FAULT", f);
        }
        c.output().unwrap()
    };
    let out = run(Some("backup.between_files"));
    assert!(!out.status.success(), "aborted at the fault point");
    let names = || {
        let mut n: Vec<String> = std::fs::read_dir(out_dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    };
    assert!(
        names().iter().all(|n| !n.ends_with(".backup")),
        "no database file without its keyring: {:?}",
        names()
    );
    let out = run(None);
    assert!(out.status.success(), "{out:?}");
    let backups: Vec<String> = names()
        .into_iter()
        .filter(|n| n.ends_with(".backup"))
        .collect();
    assert_eq!(backups.len(), 1, "{:?}", names());
    let backup = out_dir.path().join(&backups[0]);
    for file in [backup.clone(), backup.with_extension("keyring")] {
        verify(&db, &file);
    }
    kill(&mut server);
}

/// Finding 22 (the 10-minute load, `docs/hardening.md`): a change sent without `version` asks
/// for no conflict check, yet it was refused (409 `concurrent_change`) when another change to
/// the same record landed between the server's read and its write. Here every update waits
/// 300 ms after its read (`MESHWORK_FAULT=pause:crm.update.read`), so two changes sent 100 ms
/// apart always cross: both now succeed, each applied once.
async fn finding_22_two_changes_without_a_version_crossing_both_apply(backend: TestBackend) {
    let Some(mut h) = Harness::start(backend, 22).await else {
        return;
    };
    let ws = h.workspace("Crossing").await;
    let contact = h
        .ok(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/contacts"),
            Some(json!({"first_name": "Crossed"})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    kill(&mut h.server);
    let mut env = h.env.clone();
    env.push(("MESHWORK_FAULT", "pause:crm.update.read".to_string()));
    let (server, base) = serve_with(&h.db, &h.http, &env).await;
    h.server = server;
    h.base = base;
    let path = format!("/api/v1/workspaces/{ws}/contacts/{contact}");
    let first = h.spawn(
        Method::PATCH,
        path.clone(),
        json!({"fields": {"title": "First"}}),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = h.spawn(
        Method::PATCH,
        path.clone(),
        json!({"fields": {"last_name": "Second"}}),
    );
    assert_eq!(first.await.unwrap(), Some(200));
    assert_eq!(
        second.await.unwrap(),
        Some(200),
        "the crossing change applies too"
    );
    let now = h.ok(Method::GET, &path, None).await;
    assert_eq!(now["version"], 3, "two changes, each once: {now}");
    assert_eq!(now["fields"]["title"], "First", "{now}");
    assert_eq!(now["fields"]["last_name"], "Second", "{now}");
    kill(&mut h.server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_22_two_changes_without_a_version_crossing_both_apply_sqlite() {
    finding_22_two_changes_without_a_version_crossing_both_apply(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_22_two_changes_without_a_version_crossing_both_apply_postgres() {
    finding_22_two_changes_without_a_version_crossing_both_apply(TestBackend::Postgres).await;
}
