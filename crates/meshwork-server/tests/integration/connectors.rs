//! Connectors against real servers the tests start: an OpenLDAP directory (slapd) and a folder
//! tree with POSIX modes and ACLs. A change of access at the source (a group membership, a file's
//! ACL) changes what each person finds after the next sync (mm01); people join accounts by
//! verified email (mm03); scopes are shown before connecting (mm04); disconnecting removes
//! exactly what the connector brought (mm05, mm14); archived documents stay archived (mm15).
//! And the Onyx pitfalls, each by name.

use super::common::*;
use super::crm::setup;
use super::dovecot::Dovecot;
use super::slapd::{Slapd, BASE, READER_DN, READER_PW};
use super::sources::{found, push};
use crate::server_test;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

pub(super) async fn api(
    s: &TestServer,
    who: &As<'_>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    s.call(method, path, who, body).await
}

/// Waits for the connector's sync `job` (or, without one, its latest sync) to end; answers it.
pub(super) async fn synced(
    s: &TestServer,
    who: &As<'_>,
    ws: &str,
    id: &str,
    job: Option<&str>,
) -> Value {
    let started = Instant::now();
    loop {
        let (status, runs) = api(
            s,
            who,
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/connectors/{id}/runs"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{runs}");
        let run = runs
            .as_array()
            .unwrap()
            .iter()
            .find(|r| job.is_none_or(|j| r["id"] == j))
            .cloned();
        if let Some(r) = run {
            if r["state"] != "running" {
                return r;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the sync did not end: {runs}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Adds a connector (`{"source", "settings", …}`), asserting it was; answers its id.
pub(super) async fn connect(s: &TestServer, who: &As<'_>, ws: &str, body: Value) -> String {
    let (status, conn) = api(
        s,
        who,
        Method::POST,
        &format!("/api/v1/workspaces/{ws}/connectors"),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{conn}");
    conn["id"].as_str().unwrap().to_string()
}

/// Syncs now and waits for it.
pub(super) async fn sync_now(s: &TestServer, who: &As<'_>, ws: &str, id: &str) -> Value {
    let (status, v) = api(
        s,
        who,
        Method::POST,
        &format!("/api/v1/workspaces/{ws}/connectors/{id}/sync"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let run = synced(s, who, ws, id, v["job"].as_str()).await;
    assert_eq!(run["state"], "done", "{run}");
    run
}

fn ldap_settings(d: &Slapd) -> Value {
    json!({"kind": "ldap", "url": d.url(), "bind_dn": READER_DN, "password": READER_PW, "base_dn": BASE})
}

/// A directory of 1,200 people beyond the soft size limit of 500, with alice, bob and carol;
/// `engineering` (alice) inside `staff` (everyone), and `loop` containing itself and bob.
fn directory() -> Slapd {
    let d = Slapd::start();
    let mut ldif = String::new();
    for (uid, mail) in [
        ("alice", "alice@ldap.test"),
        ("bob", "bob@ldap.test"),
        ("carol", "carol@ldap.test"),
    ] {
        ldif.push_str(&Slapd::person(uid, Some(mail)));
    }
    let mut staff = vec![Slapd::group_dn("engineering")];
    for i in 0..1200 {
        let uid = format!("filler{i:04}");
        ldif.push_str(&Slapd::person(&uid, None));
        staff.push(Slapd::person_dn(&uid));
    }
    staff.push(Slapd::person_dn("carol"));
    ldif.push_str(&Slapd::group("engineering", &[Slapd::person_dn("alice")]));
    ldif.push_str(&Slapd::group("staff", &staff));
    ldif.push_str(&Slapd::group(
        "loop",
        &[Slapd::group_dn("loop"), Slapd::person_dn("bob")],
    ));
    d.modify(&ldif);
    d
}

async fn promise_mm01_an_ldap_membership_change_changes_search_after_the_next_sync(
    s: &mut TestServer,
) {
    let d = directory();
    let c = setup(s, "Lena").await;
    let admin = As::User(&c.who);
    let key = s.create_key(&c.who, &c.ws, "admin").await;
    let mut people = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let p = s.signup(name, &format!("{name}@ldap.test")).await;
        s.add_member(&c.who, &c.ws, &p, "member").await; // verifies their email
        people.push(p);
    }
    let (alice, bob, carol) = (
        As::User(&people[0]),
        As::User(&people[1]),
        As::User(&people[2]),
    );

    // The scopes are listed before connecting (mm04).
    let (status, kinds) = api(
        s,
        &admin,
        Method::GET,
        &format!("/api/v1/workspaces/{}/connector-kinds", c.ws),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let ldap = kinds
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "ldap")
        .unwrap();
    assert!(
        ldap["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|sc| sc["name"] == "directory:read"),
        "{kinds}"
    );

    // Settings are tried before saving: wrong credentials and an unreachable server are named.
    let mut wrong = ldap_settings(&d);
    wrong["password"] = json!("not-it");
    let (status, v) = api(
        s,
        &admin,
        Method::POST,
        &format!("/api/v1/workspaces/{}/connectors/try", c.ws),
        Some(json!({"settings": wrong})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("refused the credentials"),
        "{v}"
    );
    let mut away = ldap_settings(&d);
    away["url"] = json!("ldap://127.0.0.1:1");
    let (status, v) = api(
        s,
        &admin,
        Method::POST,
        &format!("/api/v1/workspaces/{}/connectors/try", c.ws),
        Some(json!({"settings": away})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["message"].as_str().unwrap().contains("cannot reach"),
        "{v}"
    );
    let (status, v) = api(
        s,
        &admin,
        Method::POST,
        &format!("/api/v1/workspaces/{}/connectors/try", c.ws),
        Some(json!({"settings": ldap_settings(&d)})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");

    // Connect; the first sync runs at once. A member cannot manage connectors.
    let body = json!({"source": "directory", "settings": ldap_settings(&d)});
    let (status, _) = api(
        s,
        &alice,
        Method::POST,
        &format!("/api/v1/workspaces/{}/connectors", c.ws),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, conn) = api(
        s,
        &admin,
        Method::POST,
        &format!("/api/v1/workspaces/{}/connectors", c.ws),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{conn}");
    assert_eq!(
        conn["settings"]["password"], "********",
        "the password is never shown again"
    );
    let id = conn["id"].as_str().unwrap().to_string();
    let (status, v) = api(
        s,
        &admin,
        Method::POST,
        &format!("/api/v1/workspaces/{}/connectors", c.ws),
        Some(body),
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("connector_exists"))
    );
    let run = synced(s, &admin, &c.ws, &id, None).await;
    assert_eq!(run["state"], "done", "{run}");
    // Paged: all 1,203 people, past the server's 500-entry limit (Onyx PR #2537).
    assert_eq!(run["counts"]["people"], 1203, "{run}");
    assert_eq!(run["counts"]["groups"], 3, "{run}");

    // Documents readable by the directory's groups (pushed by a script, say).
    let docs = json!({"documents": [
        {"id": "roadmap", "title": "Roadmap zebra", "permissions": {"groups": ["engineering"]}},
        {"id": "handbook", "title": "Handbook zebra", "permissions": {"groups": ["staff"]}},
        {"id": "loop", "title": "Loop zebra", "permissions": {"groups": ["loop"]}},
    ]});
    push(s, &c.ws, &key, "directory", "documents", Method::POST, docs).await;
    assert_eq!(
        found(s, &c.ws, &alice, "zebra").await,
        ["Handbook zebra", "Roadmap zebra"],
        "alice: engineering, inside staff"
    );
    assert_eq!(
        found(s, &c.ws, &bob, "zebra").await,
        ["Loop zebra"],
        "bob: only the group that contains itself"
    );
    assert_eq!(found(s, &c.ws, &carol, "zebra").await, ["Handbook zebra"]);

    // At the source: bob joins engineering, alice leaves it, carol leaves staff.
    d.modify(&format!(
        "dn: {eng}\nchangetype: modify\nadd: member\nmember: {bob}\n-\ndelete: member\nmember: {alice}\n\n\
dn: {staff}\nchangetype: modify\ndelete: member\nmember: {carol}\n\n",
        eng = Slapd::group_dn("engineering"),
        staff = Slapd::group_dn("staff"),
        bob = Slapd::person_dn("bob"),
        alice = Slapd::person_dn("alice"),
        carol = Slapd::person_dn("carol"),
    ));
    // Nothing changes before the sync…
    assert_eq!(found(s, &c.ws, &carol, "zebra").await, ["Handbook zebra"]);
    let run = sync_now(s, &admin, &c.ws, &id).await;
    assert_eq!(
        (
            run["counts"]["memberships_added"].as_u64(),
            run["counts"]["memberships_removed"].as_u64()
        ),
        (Some(1), Some(2)),
        "{run}"
    );
    // …and after it, search follows the source.
    assert_eq!(found(s, &c.ws, &alice, "zebra").await, Vec::<String>::new());
    assert_eq!(
        found(s, &c.ws, &bob, "zebra").await,
        ["Handbook zebra", "Loop zebra", "Roadmap zebra"]
    );
    assert_eq!(found(s, &c.ws, &carol, "zebra").await, Vec::<String>::new());

    // A person deleted at the source loses everything at the next sync.
    d.modify(&format!(
        "dn: {}\nchangetype: delete\n\n",
        Slapd::person_dn("bob")
    ));
    let run = sync_now(s, &admin, &c.ws, &id).await;
    assert_eq!(run["counts"]["people_removed"], 1, "{run}");
    assert_eq!(found(s, &c.ws, &bob, "zebra").await, Vec::<String>::new());

    // The history lists every sync, newest first; a source that went away fails a sync with
    // the reason, and nothing already read is lost.
    drop(d);
    let (status, v) = api(
        s,
        &admin,
        Method::POST,
        &format!("/api/v1/workspaces/{}/connectors/{id}/sync", c.ws),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let run = synced(s, &admin, &c.ws, &id, v["job"].as_str()).await;
    assert_eq!(run["state"], "failed", "{run}");
    assert!(
        run["problems"][0]
            .as_str()
            .unwrap()
            .contains("cannot reach"),
        "{run}"
    );
    let (_, runs) = api(
        s,
        &admin,
        Method::GET,
        &format!("/api/v1/workspaces/{}/connectors/{id}/runs", c.ws),
        None,
    )
    .await;
    assert!(runs.as_array().unwrap().len() >= 4, "{runs}");
    assert_eq!(
        found(s, &c.ws, &admin, "zebra").await.len(),
        0,
        "the owner is in no group of the source"
    );
    let mut staff_only = found(s, &c.ws, &As::Key(&key), "zebra").await;
    staff_only.sort();
    assert!(staff_only.is_empty() || staff_only.len() == 3);
}
server_test!(promise_mm01_an_ldap_membership_change_changes_search_after_the_next_sync);

async fn promise_mm14_disconnecting_a_connector_deletes_everything_it_brought(s: &mut TestServer) {
    let d = directory();
    let c = setup(s, "Dora").await;
    let admin = As::User(&c.who);
    let key = s.create_key(&c.who, &c.ws, "admin").await;
    let alice = s.signup("alice", "alice@ldap.test").await;
    s.add_member(&c.who, &c.ws, &alice, "member").await;
    let id = connect(
        s,
        &admin,
        &c.ws,
        json!({"source": "directory", "settings": ldap_settings(&d)}),
    )
    .await;
    synced(s, &admin, &c.ws, &id, None).await;
    push(s, &c.ws, &key, "directory", "documents", Method::POST, json!({"documents": [{"id": "a", "title": "Quokka plan", "permissions": {"groups": ["engineering"]}}]})).await;
    push(s, &c.ws, &key, "wiki", "documents", Method::POST, json!({"documents": [{"id": "b", "title": "Quokka wiki", "permissions": {"everyone": true}}]})).await;
    assert_eq!(
        found(s, &c.ws, &As::User(&alice), "quokka").await,
        ["Quokka plan", "Quokka wiki"]
    );

    let (status, v) = api(
        s,
        &admin,
        Method::DELETE,
        &format!("/api/v1/workspaces/{}/connectors/{id}", c.ws),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["documents_removed"], 1);
    // Its documents, people and groups are gone from search and store; the other source stays.
    assert_eq!(
        found(s, &c.ws, &As::User(&alice), "quokka").await,
        ["Quokka wiki"]
    );
    let (status, _) = api(
        s,
        &admin,
        Method::GET,
        &format!("/api/v1/workspaces/{}/connectors/{id}", c.ws),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let st = s.state();
    let ws: meshwork_domain::WorkspaceId = c.ws.parse().unwrap();
    assert!(st
        .store
        .source_principal_rows(ws, "directory")
        .await
        .unwrap()
        .is_empty());
    assert!(st
        .store
        .source_memberships(ws, "directory")
        .await
        .unwrap()
        .is_empty());
    assert!(st
        .store
        .source_fingerprints(ws, "directory")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        st.store
            .source_fingerprints(ws, "wiki")
            .await
            .unwrap()
            .len(),
        1
    );
    // No credential of it is left in any stored byte.
    assert_absent(s, &[READER_PW]).await;
}
server_test!(promise_mm14_disconnecting_a_connector_deletes_everything_it_brought);

/// A folder tree owned by accounts of its own passwd and group files (uids 70001…): alice, bob
/// and carol, alice and bob in `team`.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let t = Tree { dir };
        std::fs::set_permissions(
            t.dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        std::fs::create_dir(t.path("files")).unwrap();
        std::fs::write(t.path("passwd"), "root:x:0:0::/root:/bin/sh\nalice:x:70001:70001::/h:/bin/sh\nbob:x:70002:70002::/h:/bin/sh\ncarol:x:70003:70003::/h:/bin/sh\n").unwrap();
        std::fs::write(t.path("group"), "root:x:0:\nteam:x:71000:alice,bob\n").unwrap();
        t
    }
    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }
    fn file(&self, rel: &str, text: &str, owner: &str, mode: u32) {
        let p = self.path(&format!("files/{rel}"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        self.own(rel, owner, mode);
    }
    fn own(&self, rel: &str, owner: &str, mode: u32) {
        let p = self.path(&format!("files/{rel}"));
        run("chown", &[owner, p.to_str().unwrap()]);
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    }
    fn setfacl(&self, args: &[&str], rel: &str) {
        let p = self.path(&format!("files/{rel}"));
        let mut a = args.to_vec();
        a.push(p.to_str().unwrap());
        run("setfacl", &a);
    }
    fn settings(&self) -> Value {
        json!({"kind": "folder", "path": self.path("files"), "passwd_file": self.path("passwd"), "group_file": self.path("group"), "email_domain": "folder.test"})
    }
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn promise_mm01_a_posix_acl_change_changes_search_after_the_next_sync(s: &mut TestServer) {
    let t = Tree::new();
    t.file("open.txt", "walrus open to all", "0:0", 0o644);
    t.file("team/plan.md", "walrus team plan", "0:71000", 0o640);
    t.own("team", "0:71000", 0o750); // only team members may enter
    t.file("private.txt", "walrus private notes", "70001:70001", 0o600);
    t.file("shared.txt", "walrus shared by ACL", "0:0", 0o600);
    t.setfacl(&["-m", "u:70003:r"], "shared.txt"); // carol, by a named-user entry
    t.file(
        "hidden/inside.txt",
        "walrus inside a closed folder",
        "0:0",
        0o644,
    );
    t.own("hidden", "0:0", 0o700); // readable file, but nobody but root may enter

    let c = setup(s, "Fiona").await;
    let admin = As::User(&c.who);
    let mut people = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let p = s.signup(name, &format!("{name}@folder.test")).await;
        s.add_member(&c.who, &c.ws, &p, "member").await;
        people.push(p);
    }
    let (alice, bob, carol) = (
        As::User(&people[0]),
        As::User(&people[1]),
        As::User(&people[2]),
    );
    let id = connect(
        s,
        &admin,
        &c.ws,
        json!({"source": "files", "settings": t.settings()}),
    )
    .await;
    let run = synced(s, &admin, &c.ws, &id, None).await;
    assert_eq!(run["state"], "done", "{run}");
    assert_eq!(run["counts"]["listed"], 5, "{run}");

    assert_eq!(
        found(s, &c.ws, &alice, "walrus").await,
        ["open.txt", "plan.md", "private.txt"]
    );
    assert_eq!(
        found(s, &c.ws, &bob, "walrus").await,
        ["open.txt", "plan.md"]
    );
    assert_eq!(
        found(s, &c.ws, &carol, "walrus").await,
        ["open.txt", "shared.txt"]
    );
    // Readable by everyone: the owner of the workspace too (no account in the folder).
    assert_eq!(found(s, &c.ws, &admin, "walrus").await, ["open.txt"]);

    // At the source: carol's entry goes, bob gets one on alice's private file, and carol joins
    // the team in the group file.
    t.setfacl(&["-x", "u:70003"], "shared.txt");
    t.setfacl(&["-m", "u:70002:r"], "private.txt");
    std::fs::write(t.path("group"), "root:x:0:\nteam:x:71000:alice,bob,carol\n").unwrap();
    let run = sync_now(s, &admin, &c.ws, &id).await;
    assert_eq!(
        run["counts"]["stored"], 3,
        "only what changed is read again: {run}"
    );
    assert_eq!(run["counts"]["unchanged"], 2, "{run}");
    assert_eq!(
        found(s, &c.ws, &bob, "walrus").await,
        ["open.txt", "plan.md", "private.txt"]
    );
    assert_eq!(
        found(s, &c.ws, &carol, "walrus").await,
        ["open.txt", "plan.md"]
    );
    // A sync with no change reads nothing again.
    let run = sync_now(s, &admin, &c.ws, &id).await;
    assert_eq!(
        (
            run["counts"]["stored"].as_u64(),
            run["counts"]["unchanged"].as_u64()
        ),
        (Some(0), Some(5)),
        "{run}"
    );
}
server_test!(promise_mm01_a_posix_acl_change_changes_search_after_the_next_sync);

async fn onyx_14981_a_document_turned_private_stops_showing_after_the_next_sync(
    s: &mut TestServer,
) {
    let t = Tree::new();
    t.file("memo.txt", "narwhal memo", "70001:70001", 0o644);
    let c = setup(s, "Gus").await;
    let admin = As::User(&c.who);
    let bob = s.signup("bob", "bob@folder.test").await;
    s.add_member(&c.who, &c.ws, &bob, "member").await;
    let id = connect(
        s,
        &admin,
        &c.ws,
        json!({"source": "files", "settings": t.settings()}),
    )
    .await;
    synced(s, &admin, &c.ws, &id, None).await;
    assert_eq!(
        found(s, &c.ws, &As::User(&bob), "narwhal").await,
        ["memo.txt"]
    );
    t.own("memo.txt", "70001:70001", 0o600); // only its content is unchanged
    sync_now(s, &admin, &c.ws, &id).await;
    assert_eq!(
        found(s, &c.ws, &As::User(&bob), "narwhal").await,
        Vec::<String>::new()
    );
}
server_test!(onyx_14981_a_document_turned_private_stops_showing_after_the_next_sync);

async fn promise_mm15_archived_documents_stay_archived_and_deleted_ones_are_pruned_onyx_5013(
    s: &mut TestServer,
) {
    let t = Tree::new();
    t.file("a.txt", "okapi one", "0:0", 0o644);
    t.file("b.txt", "okapi two", "0:0", 0o644);
    t.file("c.txt", "okapi three", "0:0", 0o644);
    // A name that is not UTF-8 is still read, and said in the history.
    let odd = t
        .path("files")
        .join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"r\xe9sum\xe9.txt"));
    std::fs::write(&odd, "okapi odd name").unwrap();
    let c = setup(s, "Hal").await;
    let admin = As::User(&c.who);
    let id = connect(
        s,
        &admin,
        &c.ws,
        json!({"source": "files", "settings": t.settings()}),
    )
    .await;
    let run = synced(s, &admin, &c.ws, &id, None).await;
    assert!(
        run["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains("not valid UTF-8")),
        "{run}"
    );
    assert_eq!(
        found(s, &c.ws, &admin, "okapi").await,
        ["a.txt", "b.txt", "c.txt", "r\u{fffd}sum\u{fffd}.txt"]
    );

    // Deleted at the source: pruned at the next sync (Onyx #5013, #1222).
    std::fs::remove_file(t.path("files/a.txt")).unwrap();
    // Archived here (mm15): gone from search at once, and no sync brings it back, even when it
    // changes at the source.
    let (status, v) = api(
        s,
        &admin,
        Method::POST,
        &format!("/api/v1/workspaces/{}/sources/files/archived/b.txt", c.ws),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(
        found(s, &c.ws, &admin, "okapi").await,
        ["a.txt", "c.txt", "r\u{fffd}sum\u{fffd}.txt"],
        "a.txt goes with the next sync"
    );
    std::fs::write(t.path("files/b.txt"), "okapi two, edited").unwrap();
    let run = sync_now(s, &admin, &c.ws, &id).await;
    assert_eq!(
        (
            run["counts"]["removed"].as_u64(),
            run["counts"]["archived_skipped"].as_u64()
        ),
        (Some(1), Some(1)),
        "{run}"
    );
    assert_eq!(
        found(s, &c.ws, &admin, "okapi").await,
        ["c.txt", "r\u{fffd}sum\u{fffd}.txt"]
    );
    sync_now(s, &admin, &c.ws, &id).await;
    assert_eq!(
        found(s, &c.ws, &admin, "okapi").await,
        ["c.txt", "r\u{fffd}sum\u{fffd}.txt"]
    );
    // A write racing the archive (a sync that read the tombstones before it) cannot bring it
    // back: the store skips archived documents.
    let st = s.state();
    let ws_id: meshwork_domain::WorkspaceId = c.ws.parse().unwrap();
    let doc = meshwork_app::search::StoredDocument {
        source: "files".into(),
        external_id: "b.txt".into(),
        title: "b.txt".into(),
        body: "okapi raced".into(),
        url: None,
        updated_at: 1,
        acl: vec![meshwork_search::EVERYONE.into()],
    };
    let row = meshwork_app::sources::document_row(st, ws_id, &doc, Some("x".into())).unwrap();
    st.store
        .source_put_documents(ws_id, &[row], 1)
        .await
        .unwrap();
    assert_eq!(
        found(s, &c.ws, &admin, "okapi").await,
        ["c.txt", "r\u{fffd}sum\u{fffd}.txt"]
    );
    // Documents pushed to the same source name are not the sync's to prune.
    let key = s.create_key(&c.who, &c.ws, "admin").await;
    push(s, &c.ws, &key, "files", "documents", Method::POST, json!({"documents": [{"id": "pushed", "title": "Okapi pushed", "permissions": {"everyone": true}}]})).await;
    sync_now(s, &admin, &c.ws, &id).await;
    assert_eq!(
        found(s, &c.ws, &admin, "okapi").await,
        ["Okapi pushed", "c.txt", "r\u{fffd}sum\u{fffd}.txt"]
    );
    // Restored, it comes back with the next sync.
    let (status, _) = api(
        s,
        &admin,
        Method::DELETE,
        &format!("/api/v1/workspaces/{}/sources/files/archived/b.txt", c.ws),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    sync_now(s, &admin, &c.ws, &id).await;
    assert_eq!(
        found(s, &c.ws, &admin, "okapi").await,
        ["Okapi pushed", "b.txt", "c.txt", "r\u{fffd}sum\u{fffd}.txt"]
    );

    // A folder that cannot be read (gone) fails the sync with the reason and loses nothing.
    std::fs::rename(t.path("files"), t.path("moved")).unwrap();
    let (_, v) = api(
        s,
        &admin,
        Method::POST,
        &format!("/api/v1/workspaces/{}/connectors/{id}/sync", c.ws),
        None,
    )
    .await;
    let run = synced(s, &admin, &c.ws, &id, v["job"].as_str()).await;
    assert_eq!(run["state"], "failed", "{run}");
    assert!(
        run["problems"][0]
            .as_str()
            .unwrap()
            .contains("field `path`"),
        "{run}"
    );
    assert_eq!(found(s, &c.ws, &admin, "okapi").await.len(), 4);
}
server_test!(promise_mm15_archived_documents_stay_archived_and_deleted_ones_are_pruned_onyx_5013);

async fn connector_settings_are_checked_field_by_field_and_a_paused_connector_is_not_synced(
    s: &mut TestServer,
) {
    let c = setup(s, "Ivy").await;
    let admin = As::User(&c.who);
    let path = format!("/api/v1/workspaces/{}/connectors", c.ws);
    for (body, needle) in [
        (
            json!({"source": "Bad Name", "settings": {"kind": "folder", "path": "/tmp"}}),
            "field `source`",
        ),
        (
            json!({"source": "f", "settings": {"kind": "folder", "path": "relative"}}),
            "field `path`",
        ),
        (
            json!({"source": "f", "settings": {"kind": "ftp"}}),
            "field `settings`",
        ),
        (
            json!({"source": "f", "every_minutes": 0, "settings": {"kind": "folder", "path": "/tmp"}}),
            "field `every_minutes`",
        ),
        (
            json!({"source": "l", "settings": {"kind": "ldap", "url": "http://x", "bind_dn": "cn=a", "password": "p", "base_dn": "dc=x"}}),
            "field `url`",
        ),
    ] {
        let (status, v) = api(s, &admin, Method::POST, &path, Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert!(
            v["message"].as_str().unwrap_or_default().contains(needle),
            "{needle}: {v}"
        );
    }
    let t = Tree::new();
    t.file("x.txt", "ibis", "0:0", 0o644);
    let (status, conn) = api(
        s,
        &admin,
        Method::POST,
        &path,
        Some(json!({"source": "files", "paused": true, "settings": t.settings()})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{conn}");
    let id = conn["id"].as_str().unwrap();
    assert_eq!(conn["paused"], true);
    assert!(conn["last_run"].is_null());
    let (status, v) = api(
        s,
        &admin,
        Method::PATCH,
        &format!("{path}/{id}"),
        Some(json!({"paused": false, "every_minutes": 10})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["paused"].as_bool(), v["every_minutes"].as_i64()),
        (Some(false), Some(10))
    );
    let (status, v) = api(s, &admin, Method::POST, &format!("{path}/{id}/test"), None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["message"].as_str().unwrap().contains("1 files"), "{v}");
}
server_test!(connector_settings_are_checked_field_by_field_and_a_paused_connector_is_not_synced);

fn imap_settings(d: &Dovecot, users: &[&str]) -> Value {
    let accounts: Vec<Value> = users
        .iter()
        .map(|u| json!({"user": u, "password": format!("{u}-pw")}))
        .collect();
    json!({"kind": "imap", "host": "127.0.0.1", "port": d.port, "security": "none", "accounts": accounts, "email_domain": "mail.test"})
}

async fn promise_mm01_a_mailbox_acl_change_changes_search_after_the_next_sync(s: &mut TestServer) {
    let d = Dovecot::start(&["alice", "bob", "carol"]);
    d.deliver(
        "alice",
        "INBOX",
        "Invoice okapi",
        "the invoice for okapi feed",
    );
    d.deliver(
        "alice",
        "Projects",
        "Project okapi plan",
        "the okapi enclosure",
    );
    d.doveadm(
        &[
            "acl", "set", "-u", "alice", "Projects", "user=bob", "lookup", "read",
        ],
        None,
    );

    let c = setup(s, "Mira").await;
    let admin = As::User(&c.who);
    let mut people = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let p = s.signup(name, &format!("{name}@mail.test")).await;
        s.add_member(&c.who, &c.ws, &p, "member").await;
        people.push(p);
    }
    let (alice, bob, carol) = (
        As::User(&people[0]),
        As::User(&people[1]),
        As::User(&people[2]),
    );

    // A wrong password is named before anything is saved.
    let mut wrong = imap_settings(&d, &["alice"]);
    wrong["accounts"][0]["password"] = json!("nope");
    let (status, v) = api(
        s,
        &admin,
        Method::POST,
        &format!("/api/v1/workspaces/{}/connectors/try", c.ws),
        Some(json!({"settings": wrong})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("login of alice refused"),
        "{v}"
    );

    let (status, conn) = api(
        s,
        &admin,
        Method::POST,
        &format!("/api/v1/workspaces/{}/connectors", c.ws),
        Some(json!({"source": "mail", "settings": imap_settings(&d, &["alice", "bob", "carol"])})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{conn}");
    assert_eq!(conn["settings"]["accounts"][0]["password"], "********");
    let id = conn["id"].as_str().unwrap().to_string();
    let run = synced(s, &admin, &c.ws, &id, None).await;
    assert_eq!(run["state"], "done", "{run}");
    assert_eq!(run["counts"]["stored"], 2, "{run}");
    assert_eq!(
        found(s, &c.ws, &alice, "okapi").await,
        ["Invoice okapi", "Project okapi plan"]
    );
    assert_eq!(found(s, &c.ws, &bob, "okapi").await, ["Project okapi plan"]);
    assert_eq!(found(s, &c.ws, &carol, "okapi").await, Vec::<String>::new());
    // Reading changed nothing at the source: no message is marked seen.
    let flags = d.doveadm(&["fetch", "-u", "alice", "flags", "mailbox", "INBOX"], None);
    assert!(!flags.contains("\\Seen"), "{flags}");

    // At the source: bob loses Projects, carol gets alice's inbox, bob's inbox is for anyone.
    d.doveadm(
        &["acl", "delete", "-u", "alice", "Projects", "user=bob"],
        None,
    );
    d.doveadm(
        &[
            "acl",
            "set",
            "-u",
            "alice",
            "INBOX",
            "user=carol",
            "lookup",
            "read",
        ],
        None,
    );
    d.deliver("bob", "INBOX", "Okapi newsletter", "okapi news for all");
    d.doveadm(
        &[
            "acl", "set", "-u", "bob", "INBOX", "anyone", "lookup", "read",
        ],
        None,
    );
    let run = sync_now(s, &admin, &c.ws, &id).await;
    assert_eq!(
        run["counts"]["stored"], 1,
        "an ACL change reads no message again: {run}"
    );
    assert_eq!(found(s, &c.ws, &bob, "okapi").await, ["Okapi newsletter"]);
    assert_eq!(
        found(s, &c.ws, &carol, "okapi").await,
        ["Invoice okapi", "Okapi newsletter"]
    );
    assert_eq!(
        found(s, &c.ws, &admin, "okapi").await,
        ["Okapi newsletter"],
        "anyone: every member"
    );

    // Expunged at the source: pruned at the next sync.
    d.doveadm(
        &["expunge", "-u", "alice", "mailbox", "Projects", "all"],
        None,
    );
    let run = sync_now(s, &admin, &c.ws, &id).await;
    assert_eq!(run["counts"]["removed"], 1, "{run}");
    assert_eq!(
        found(s, &c.ws, &alice, "okapi").await,
        ["Invoice okapi", "Okapi newsletter"]
    );

    // A secret sent back hidden is kept: the connection still works.
    let mut same = imap_settings(&d, &["alice", "bob", "carol"]);
    for a in same["accounts"].as_array_mut().unwrap() {
        a["password"] = json!("********");
    }
    let (status, v) = api(
        s,
        &admin,
        Method::PATCH,
        &format!("/api/v1/workspaces/{}/connectors/{id}", c.ws),
        Some(json!({"settings": same})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = api(
        s,
        &admin,
        Method::POST,
        &format!("/api/v1/workspaces/{}/connectors/{id}/test", c.ws),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["message"].as_str().unwrap().contains("3 accounts"), "{v}");
    // …but not for another server: the stored password is never sent where it was not meant.
    same["host"] = json!("localhost");
    let (status, v) = api(
        s,
        &admin,
        Method::PATCH,
        &format!("/api/v1/workspaces/{}/connectors/{id}", c.ws),
        Some(json!({"settings": same})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("enter it again"),
        "{v}"
    );
}
server_test!(promise_mm01_a_mailbox_acl_change_changes_search_after_the_next_sync);

async fn promise_mm04_connectors_only_read_and_show_their_scopes_before_connecting(
    s: &mut TestServer,
) {
    let c = setup(s, "Nora").await;
    let admin = As::User(&c.who);
    // Every kind declares what it reads, each scope a read.
    let (status, kinds) = api(
        s,
        &admin,
        Method::GET,
        &format!("/api/v1/workspaces/{}/connector-kinds", c.ws),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let kinds = kinds.as_array().unwrap();
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    for k in kinds {
        let scopes = k["scopes"].as_array().unwrap();
        assert!(!scopes.is_empty(), "{k}");
        for sc in scopes {
            assert!(sc["name"].as_str().unwrap().ends_with(":read"), "{sc}");
            assert!(!sc["description"].as_str().unwrap().is_empty());
        }
    }
    // A folder read leaves every file as it was: bytes, modification time, mode and ACL.
    let t = Tree::new();
    t.file("a.txt", "heron one", "70001:70001", 0o640);
    t.setfacl(&["-m", "u:70002:r"], "a.txt");
    t.file("deep/b.md", "heron two", "0:0", 0o644);
    let snapshot = |t: &Tree| {
        ["a.txt", "deep/b.md"].map(|rel| {
            let p = t.path(&format!("files/{rel}"));
            let m = std::fs::metadata(&p).unwrap();
            let acl = Command::new("getfacl")
                .arg("-p")
                .arg(&p)
                .output()
                .unwrap()
                .stdout;
            (
                std::fs::read(&p).unwrap(),
                m.modified().unwrap(),
                std::os::unix::fs::PermissionsExt::mode(&m.permissions()),
                acl,
            )
        })
    };
    let before = snapshot(&t);
    let (status, conn) = api(
        s,
        &admin,
        Method::POST,
        &format!("/api/v1/workspaces/{}/connectors", c.ws),
        Some(json!({"source": "files", "settings": t.settings()})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{conn}");
    let run = synced(s, &admin, &c.ws, conn["id"].as_str().unwrap(), None).await;
    assert_eq!(run["counts"]["stored"], 2, "{run}");
    assert!(snapshot(&t) == before, "the folder is unchanged by a sync");
}
server_test!(promise_mm04_connectors_only_read_and_show_their_scopes_before_connecting);

/// Twenty's users asked for years (twentyhq/twenty#917, #5463): mail read over IMAP that
/// involves a contact is logged on the contact's timeline, once per message even when it sits in
/// two people's mailboxes; what involves no contact is not; disconnecting removes the log.
async fn twenty_917_imap_messages_involving_a_contact_are_logged_on_its_timeline(
    s: &mut TestServer,
) {
    let d = Dovecot::start(&["alice", "bob"]);
    let quote = "From: Sam Client <sam@client.test>\r\nTo: alice@mail.test, bob@mail.test\r\nMessage-ID: <q1@client.test>\r\nSubject: Quote request\r\nDate: Sat, 5 Dec 2026 09:00:00 +0000\r\n\r\nPlease send the quote.\r\n";
    d.deliver_raw("alice", "INBOX", quote);
    d.deliver_raw("bob", "INBOX", quote);
    d.deliver_raw("alice", "Sent", "From: alice@mail.test\r\nTo: sam@client.test\r\nSubject: Your quote\r\nDate: Sat, 5 Dec 2026 11:00:00 +0000\r\n\r\nAttached.\r\n");
    d.deliver("alice", "INBOX", "Lunch?", "from someone who is no contact");
    let c = setup(s, "Dora").await;
    let admin = As::User(&c.who);
    let sam = c
        .create(
            "contacts",
            json!({"first_name": "Sam", "last_name": "Client", "emails": ["SAM@client.test"]}),
        )
        .await;
    let sam_id = sam["id"].as_str().unwrap().to_string();
    let mut settings = imap_settings(&d, &["alice", "bob"]);
    settings["log_to_crm"] = json!(true);
    let id = connect(
        s,
        &admin,
        &c.ws,
        json!({"source": "mail", "settings": settings}),
    )
    .await;
    let run = synced(s, &admin, &c.ws, &id, None).await;
    assert_eq!(run["state"], "done", "{run}");
    assert_eq!(run["counts"]["logged"], 2, "{run}");

    let comms = |timeline: &Value| -> Vec<Value> {
        timeline["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["type"] == "communication")
            .cloned()
            .collect()
    };
    let (status, timeline) = c.get(&format!("contacts/{sam_id}/timeline")).await;
    assert_eq!(status, StatusCode::OK, "{timeline}");
    let logged = comms(&timeline);
    assert_eq!(logged.len(), 2, "{timeline}");
    let text = timeline.to_string();
    assert!(
        text.contains("Quote request") && text.contains("Your quote"),
        "{text}"
    );
    assert!(!text.contains("Lunch?"), "{text}");
    assert!(
        text.contains("outbound") && text.contains("inbound"),
        "{text}"
    );

    // Another sync logs nothing twice.
    let run = sync_now(s, &admin, &c.ws, &id).await;
    assert_eq!(run["counts"]["logged"], 0, "{run}");
    let (_, timeline) = c.get(&format!("contacts/{sam_id}/timeline")).await;
    assert_eq!(comms(&timeline).len(), 2);

    // Disconnecting removes what it logged; the contact stays.
    let (status, v) = api(
        s,
        &admin,
        Method::DELETE,
        &format!("/api/v1/workspaces/{}/connectors/{id}", c.ws),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, timeline) = c.get(&format!("contacts/{sam_id}/timeline")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(comms(&timeline).is_empty(), "{timeline}");
}
server_test!(twenty_917_imap_messages_involving_a_contact_are_logged_on_its_timeline);

/// The folder's owners and groups resolved through an LDAP directory (`posixAccount`,
/// `posixGroup`) instead of passwd files: a machine whose logins come from the directory. A
/// group change in the directory changes who finds the folder's files (mm01).
async fn promise_mm01_folder_accounts_from_ldap_follow_the_directorys_groups(s: &mut TestServer) {
    let d = Slapd::start();
    let posix = |uid: &str, n: u32| {
        format!("dn: uid={uid},ou=people,{BASE}\nchangetype: add\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\nuid: {uid}\ncn: {uid}\nsn: {uid}\nuidNumber: {n}\ngidNumber: {n}\nhomeDirectory: /home/{uid}\nmail: {uid}@posix.test\n\n")
    };
    let mut ldif = posix("alice", 80001) + &posix("bob", 80002);
    ldif.push_str(&format!("dn: cn=team,ou=groups,{BASE}\nchangetype: add\nobjectClass: posixGroup\ncn: team\ngidNumber: 81000\nmemberUid: alice\n\n"));
    d.modify(&ldif);
    let t = Tree::new();
    t.file("mine.txt", "narwhal alice's own", "80001:80001", 0o600);
    t.file("team.txt", "narwhal for the team", "0:81000", 0o640);

    let c = setup(s, "Gina").await;
    let admin = As::User(&c.who);
    let alice = s.signup("alice", "alice@posix.test").await;
    let bob = s.signup("bob", "bob@posix.test").await;
    for p in [&alice, &bob] {
        s.add_member(&c.who, &c.ws, p, "member").await;
    }
    let mut settings =
        json!({"kind": "folder", "path": t.path("files"), "ldap": ldap_settings(&d)});
    settings["ldap"].as_object_mut().unwrap().remove("kind");
    let id = connect(
        s,
        &admin,
        &c.ws,
        json!({"source": "share", "settings": settings}),
    )
    .await;
    let run = synced(s, &admin, &c.ws, &id, None).await;
    assert_eq!(run["state"], "done", "{run}");
    assert_eq!(
        found(s, &c.ws, &As::User(&alice), "narwhal").await,
        ["mine.txt", "team.txt"]
    );
    assert!(found(s, &c.ws, &As::User(&bob), "narwhal").await.is_empty());

    // Bob joins the team in the directory; the next sync lets him read the team's file.
    d.modify(&format!(
        "dn: cn=team,ou=groups,{BASE}\nchangetype: modify\nadd: memberUid\nmemberUid: bob\n\n"
    ));
    sync_now(s, &admin, &c.ws, &id).await;
    assert_eq!(
        found(s, &c.ws, &As::User(&bob), "narwhal").await,
        ["team.txt"]
    );
    // The directory's password is sealed and never shown.
    let (_, shown) = api(
        s,
        &admin,
        Method::GET,
        &format!("/api/v1/workspaces/{}/connectors/{id}", c.ws),
        None,
    )
    .await;
    assert_eq!(shown["settings"]["ldap"]["password"], "********", "{shown}");
}
server_test!(promise_mm01_folder_accounts_from_ldap_follow_the_directorys_groups);

/// Document hits for `who`, in the order search gives them: (title, hit).
async fn document_hits(s: &TestServer, ws: &str, who: &As<'_>, q: &str) -> Vec<(String, Value)> {
    let (status, v) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/search?q={q}&limit=50"),
            who,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["type"] == "document")
        .flat_map(|g| g["hits"].as_array().unwrap().iter())
        .map(|h| {
            let t = h["title"]
                .as_str()
                .unwrap()
                .replace("<mark>", "")
                .replace("</mark>", "");
            (t, h.clone())
        })
        .collect()
}

/// User-side state lives apart from the connector's rows: a pin and a note survive every
/// re-sync (the "hidden flag reset by every re-sync" of Onyx, for pins and notes); each
/// person's are their own, on documents they may open; they go with the source.
async fn pins_and_notes_on_documents_are_a_persons_own_and_survive_resyncs(s: &mut TestServer) {
    let t = Tree::new();
    t.file("one.txt", "okapi one", "0:0", 0o644);
    t.file("two.txt", "okapi two", "0:0", 0o644);
    t.file("secret.txt", "okapi secret", "70001:70001", 0o600);
    let c = setup(s, "Hana").await;
    let admin = As::User(&c.who);
    let alice = s.signup("alice", "alice@folder.test").await;
    let bob = s.signup("bob", "bob@folder.test").await;
    for p in [&alice, &bob] {
        s.add_member(&c.who, &c.ws, p, "member").await;
    }
    let (a, b) = (As::User(&alice), As::User(&bob));
    let id = connect(
        s,
        &admin,
        &c.ws,
        json!({"source": "files", "settings": t.settings()}),
    )
    .await;
    synced(s, &admin, &c.ws, &id, None).await;
    let hits = document_hits(s, &c.ws, &a, "okapi").await;
    assert_eq!(hits.len(), 3);
    let id_of = |name: &str| {
        hits.iter().find(|(t, _)| t == name).unwrap().1["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (two, secret) = (id_of("two.txt"), id_of("secret.txt"));
    let mark = |doc: &str| format!("/api/v1/workspaces/{}/documents/{doc}/mark", c.ws);

    let (status, v) = api(
        s,
        &a,
        Method::PUT,
        &mark(&two),
        Some(json!({"pinned": true, "note": "read this first"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["title"].as_str(), v["pinned"].as_bool()),
        (Some("two.txt"), Some(true))
    );
    // Pinned first for alice, with her note; bob sees the plain hit.
    let hits = document_hits(s, &c.ws, &a, "okapi").await;
    assert_eq!(hits[0].0, "two.txt", "{hits:?}");
    assert_eq!(hits[0].1["note"], "read this first");
    let theirs = document_hits(s, &c.ws, &b, "okapi").await;
    assert!(
        theirs
            .iter()
            .all(|(_, h)| h.get("pinned").is_none() && h.get("note").is_none()),
        "{theirs:?}"
    );
    // A document bob may not open cannot be marked by him (as if it did not exist).
    let (status, v) = api(
        s,
        &b,
        Method::PUT,
        &mark(&secret),
        Some(json!({"pinned": true})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    let (status, _) = api(
        s,
        &b,
        Method::PUT,
        &mark("no-such-document"),
        Some(json!({"pinned": true})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // An overlong note is refused, naming the field; the mark stays as it was.
    let (status, v) = api(
        s,
        &a,
        Method::PUT,
        &mark(&two),
        Some(json!({"note": "x".repeat(10_001)})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["message"].as_str().unwrap().contains("`note`"), "{v}");

    // The file changes at the source and is read again: the pin and note stay.
    t.file("two.txt", "okapi two, second edition", "0:0", 0o644);
    let run = sync_now(s, &admin, &c.ws, &id).await;
    assert_eq!(run["counts"]["stored"], 1, "{run}");
    let hits = document_hits(s, &c.ws, &a, "okapi").await;
    assert_eq!(
        (hits[0].0.as_str(), hits[0].1["note"].as_str()),
        ("two.txt", Some("read this first")),
        "{hits:?}"
    );
    let (status, marks) = api(
        s,
        &a,
        Method::GET,
        &format!("/api/v1/workspaces/{}/documents/marks", c.ws),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{marks}");
    assert_eq!(marks.as_array().unwrap().len(), 1, "{marks}");
    // Unpinned and the note cleared: the mark is gone.
    let (status, _) = api(
        s,
        &a,
        Method::PUT,
        &mark(&two),
        Some(json!({"pinned": false, "note": null})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, marks) = api(
        s,
        &a,
        Method::GET,
        &format!("/api/v1/workspaces/{}/documents/marks", c.ws),
        None,
    )
    .await;
    assert_eq!(marks, json!([]));
    // Disconnecting the source removes the marks on its documents.
    api(
        s,
        &a,
        Method::PUT,
        &mark(&two),
        Some(json!({"pinned": true})),
    )
    .await;
    let (status, _) = api(
        s,
        &admin,
        Method::DELETE,
        &format!("/api/v1/workspaces/{}/connectors/{id}", c.ws),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let ws: meshwork_domain::WorkspaceId = c.ws.parse().unwrap();
    let alice_id = meshwork_domain::UserId(alice.user_id.parse().unwrap());
    assert!(s
        .state()
        .store
        .document_marks(ws, alice_id, None)
        .await
        .unwrap()
        .is_empty());
}
server_test!(pins_and_notes_on_documents_are_a_persons_own_and_survive_resyncs);

/// Two LDAP groups with one `cn` in different branches are never merged: each is named by its
/// DN, the history says so, and a document readable by one is not readable by the other's
/// members.
async fn two_ldap_groups_with_one_name_stay_two_groups(s: &mut TestServer) {
    let d = Slapd::start();
    let mut ldif = Slapd::person("alice", Some("alice@ldap.test"))
        + &Slapd::person("bob", Some("bob@ldap.test"));
    ldif.push_str(&Slapd::group("engineering", &[Slapd::person_dn("alice")]));
    ldif.push_str(&format!("dn: ou=partners,{BASE}\nchangetype: add\nobjectClass: organizationalUnit\nou: partners\n\n"));
    ldif.push_str(&format!("dn: cn=engineering,ou=partners,{BASE}\nchangetype: add\nobjectClass: groupOfNames\ncn: engineering\nmember: {}\n\n", Slapd::person_dn("bob")));
    d.modify(&ldif);
    let c = setup(s, "Ines").await;
    let admin = As::User(&c.who);
    let key = s.create_key(&c.who, &c.ws, "admin").await;
    let alice = s.signup("alice", "alice@ldap.test").await;
    let bob = s.signup("bob", "bob@ldap.test").await;
    for p in [&alice, &bob] {
        s.add_member(&c.who, &c.ws, p, "member").await;
    }
    let id = connect(
        s,
        &admin,
        &c.ws,
        json!({"source": "directory", "settings": ldap_settings(&d)}),
    )
    .await;
    let run = synced(s, &admin, &c.ws, &id, None).await;
    assert_eq!(run["state"], "done", "{run}");
    assert_eq!(run["counts"]["groups"], 2, "{run}");
    assert!(
        run["problems"]
            .to_string()
            .contains("another group is also named"),
        "{run}"
    );
    let ours = format!("cn=engineering,ou=groups,{BASE}");
    push(s, &c.ws, &key, "directory", "documents", Method::POST, json!({"documents": [{"id": "a", "title": "Ocelot roadmap", "permissions": {"groups": [ours]}}]})).await;
    assert_eq!(
        found(s, &c.ws, &As::User(&alice), "ocelot").await,
        ["Ocelot roadmap"]
    );
    assert!(found(s, &c.ws, &As::User(&bob), "ocelot").await.is_empty());
}
server_test!(two_ldap_groups_with_one_name_stay_two_groups);
