//! The search box over HTTP: every record type findable as you type, with typos, the moment it is
//! written (cl17); documents pushed by a source visible only to whom the source allows, through
//! nested groups joined by verified email, with group changes applied at the next query and
//! nothing leaking through counts or snippets (mm01); and the index sealed on disk.

use super::common::*;
use super::crm::{pipeline, setup};
use crate::server_test;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn search(s: &TestServer, ws: &str, who: &As<'_>, q: &str) -> (StatusCode, Value) {
    let path = format!("/api/v1/workspaces/{ws}/search?q={}&limit=50", urlencode(q));
    s.call(Method::GET, &path, who, None).await
}

pub(super) fn urlencode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The ids of every hit, sorted.
fn hit_ids(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["hits"].as_array().unwrap().iter())
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

async fn promise_cl17_one_search_box_over_every_record_type_as_you_type(s: &mut TestServer) {
    let c = setup(s, "Ada").await;
    let me = As::User(&c.who);
    let pipeline = pipeline(&c).await;
    let company = c
        .create(
            "companies",
            json!({"name": "Acme Rockets", "domains": ["acme.example"], "industry": "Aerospace"}),
        )
        .await;
    let contact = c
        .create("contacts", json!({"first_name": "Grace", "last_name": "Hopper", "emails": ["grace.hopper@acme.example"], "phones": ["+1 (555) 010-2030"], "companies": [id(&company)]}))
        .await;
    let deal = c
        .create("deals", json!({"name": "Booster renewal", "amount": "1200", "pipeline": pipeline, "stage": "won", "owner": c.who.user_id, "contacts": [id(&contact)]}))
        .await;
    let note = c
        .create("notes", json!({"body": "<p>Discussed the <b>telescope</b> mirrors</p>", "about": [id(&contact)]}))
        .await;
    let activity = c
        .create(
            "activities",
            json!({"type": "meeting", "title": "Launch rehearsal", "about": [id(&deal)]}),
        )
        .await;
    let comm = c
        .create("communications", json!({"channel": "email", "from": "grace.hopper@acme.example", "subject": "Quarterly propulsion review", "body": "Numbers attached", "about": [id(&contact)]}))
        .await;
    let file = c
        .create(
            "files",
            json!({"name": "flightplan.txt", "content_type": "text/plain", "about": [id(&deal)]}),
        )
        .await;
    let form = c
        .create("forms", json!({"name": "Webinar signup", "fields": [{"name": "email", "label": "Email", "target": "email", "required": true}]}))
        .await;
    let submission = c
        .create("form_submissions", json!({"form": id(&form), "answers": {"email": "visitor@nebula.example", "comment": "interested in satellites"}}))
        .await;

    // Every type, found the moment its creation returned, by part of a word (as you type).
    for (q, want) in [
        ("acme rock", id(&company)),
        ("booster ren", id(&deal)),
        ("telesc", id(&note)),
        ("launch rehe", id(&activity)),
        ("propuls", id(&comm)),
        ("flightpl", id(&file)),
        ("webinar sig", id(&form)),
        ("satellit", id(&submission)),
        ("sales", pipeline.clone()),
    ] {
        let (status, v) = search(s, &c.ws, &me, q).await;
        assert_eq!(status, StatusCode::OK, "{q}: {v}");
        assert!(hit_ids(&v).contains(&want), "{q:?} should find {want}: {v}");
    }
    // Typos by word length, accents and case.
    for q in ["hoper ", "HOPPER", "Hoppér ", "telescpe ", "propulsoin "] {
        let (_, v) = search(s, &c.ws, &me, q).await;
        assert!(
            hit_ids(&v).contains(&id(&contact))
                || hit_ids(&v).contains(&id(&note))
                || hit_ids(&v).contains(&id(&comm)),
            "{q:?}: {v}"
        );
    }
    // The email she sent is from grace.hopper@…, so it matches too.
    let (_, v) = search(s, &c.ws, &me, "hoper ").await;
    let mut want = vec![id(&contact), id(&comm)];
    want.sort();
    assert_eq!(hit_ids(&v), want);
    // Emails whole, by local part and by domain; phones in any format.
    for q in [
        "grace.hopper@acme.example",
        "grace.hopper ",
        "555-010-2030",
        "(555) 010 2030",
        "+15550102030",
    ] {
        let (_, v) = search(s, &c.ws, &me, q).await;
        assert!(hit_ids(&v).contains(&id(&contact)), "{q:?}: {v}");
    }
    let (_, v) = search(s, &c.ws, &me, "acme.example ").await;
    assert!(hit_ids(&v).contains(&id(&company)) && hit_ids(&v).contains(&id(&contact)));
    // Filters.
    let (_, v) = search(s, &c.ws, &me, "type:deal stage:won owner:me").await;
    assert_eq!(hit_ids(&v), vec![id(&deal)]);
    let (_, v) = search(s, &c.ws, &me, "type:deal stage:lost").await;
    assert_eq!(v["total"], 0);
    // Grouped with counts and marked snippets.
    let (_, v) = search(s, &c.ws, &me, "hopper").await;
    let contacts = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["type"] == "contact")
        .unwrap();
    assert_eq!(contacts["count"], 1);
    assert_eq!(contacts["hits"][0]["title"], "Grace <mark>Hopper</mark>");
    // The empty query lists recent items, newest first.
    let (_, v) = search(s, &c.ws, &me, "").await;
    assert_eq!(v["total"], 10, "{v}");

    // Edits and deletions show at once.
    let (st, _) = c
        .patch(
            &format!("companies/{}", id(&company)),
            json!({"name": "Zenith Orbital"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (_, v) = search(s, &c.ws, &me, "zenith orb").await;
    assert_eq!(hit_ids(&v), vec![id(&company)]);
    let (_, v) = search(s, &c.ws, &me, "rockets ").await;
    assert_eq!(v["total"], 0, "the old name is gone: {v}");
    assert_eq!(
        c.delete(&format!("notes/{}", id(&note))).await,
        StatusCode::NO_CONTENT
    );
    let (_, v) = search(s, &c.ws, &me, "telescope").await;
    assert_eq!(v["total"], 0);

    // Bad queries get a clear error naming what is wrong; odd ones are just searched.
    let (status, v) = search(s, &c.ws, &me, "colour:red").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["code"], "invalid_query");
    assert!(v["message"].as_str().unwrap().contains("colour"), "{v}");
    let (status, _) = search(s, &c.ws, &me, &"x".repeat(10_000)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    for q in ["\"", "\"unclosed", "AND", "-", "a\u{1}b", "::", "((("] {
        let (status, v) = search(s, &c.ws, &me, q).await;
        assert_eq!(status, StatusCode::OK, "{q:?}: {v}");
    }

    // A viewer and an API key search the CRM; another workspace's member sees nothing of it.
    let viewer = s.signup("Vic", "vic@crm.test").await;
    s.add_member(&c.who, &c.ws, &viewer, "viewer").await;
    let (_, v) = search(s, &c.ws, &As::User(&viewer), "grace").await;
    assert_eq!(hit_ids(&v), want);
    let key = s.create_key(&c.who, &c.ws, "viewer").await;
    let (_, v) = search(s, &c.ws, &As::Key(&key), "grace").await;
    assert_eq!(hit_ids(&v), want);
    let other = setup(s, "Eve").await;
    let (status, _) = search(s, &c.ws, &As::User(&other.who), "hopper").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, v) = search(s, &other.ws, &As::User(&other.who), "hopper").await;
    assert_eq!(v["total"], 0);

    // A rebuild from the store gives the same answers; the index on disk is sealed.
    let ws: meshwork_domain::WorkspaceId = c.ws.parse().unwrap();
    let n = s
        .state()
        .search
        .rebuild(s.state(), ws, |_| {})
        .await
        .unwrap();
    assert_eq!(n, 9, "every record but the deleted note");
    let (_, v) = search(s, &c.ws, &me, "zenith").await;
    assert_eq!(hit_ids(&v), vec![id(&company)]);
    let index_files = s
        .stored_bytes()
        .await
        .into_iter()
        .filter(|(p, _)| p.contains("/search/"))
        .count();
    assert!(index_files > 3, "the canary scan covers the index files");
    assert_absent(
        s,
        &[
            "Hopper",
            "Zenith",
            "telescope",
            "grace.hopper",
            "propulsion",
        ],
    )
    .await;
}
server_test!(promise_cl17_one_search_box_over_every_record_type_as_you_type);

async fn push(s: &TestServer, ws: &str, key: &str, path: &str, method: Method, body: Value) {
    let (status, v) = s
        .call(
            method,
            &format!("/api/v1/workspaces/{ws}/sources/wiki/{path}"),
            &As::Key(key),
            Some(body),
        )
        .await;
    assert!(status.is_success(), "{path}: {status} {v}");
}

async fn promise_mm01_search_shows_only_what_the_source_allows(s: &mut TestServer) {
    let c = setup(s, "Olga").await;
    let key = s.create_key(&c.who, &c.ws, "admin").await;
    let bob = s.signup("Bob", "bob@wiki.test").await;
    s.add_member(&c.who, &c.ws, &bob, "member").await;
    let carol = s.signup("Carol", "carol@wiki.test").await;
    s.add_member(&c.who, &c.ws, &carol, "member").await;

    // Source users joined to accounts by verified email; nested groups: eng ⊃ backend ⊃ bob.
    push(
        s,
        &c.ws,
        &key,
        "principals",
        Method::POST,
        json!({"principals": [
            {"id": "U-BOB", "email": "Bob@Wiki.test"},
            {"id": "U-CAROL", "email": "carol@wiki.test"},
        ]}),
    )
    .await;
    push(
        s,
        &c.ws,
        &key,
        "groups/backend",
        Method::PUT,
        json!({"members": [{"type": "user", "id": "U-BOB"}]}),
    )
    .await;
    push(
        s,
        &c.ws,
        &key,
        "groups/eng",
        Method::PUT,
        json!({"members": [{"type": "group", "id": "backend"}]}),
    )
    .await;
    push(s, &c.ws, &key, "documents", Method::POST, json!({"documents": [
        {"id": "design", "title": "Engine design plan", "body": "ZebraCanary turbopump plan", "url": "https://wiki.example/design", "permissions": {"groups": ["eng"]}},
        {"id": "salary", "title": "Salary plan", "body": "compensation bands plan", "permissions": {"users": ["U-CAROL"]}},
        {"id": "handbook", "title": "Employee handbook plan", "permissions": {"everyone": true}},
        {"id": "orphan", "title": "Orphan plan", "body": "no access information plan"},
    ]}))
    .await;

    let titles = |v: &Value| -> Vec<String> {
        let mut t: Vec<String> = v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["hits"].as_array().unwrap().iter())
            .map(|h| {
                h["title"]
                    .as_str()
                    .unwrap()
                    .replace("<mark>", "")
                    .replace("</mark>", "")
            })
            .collect();
        t.sort();
        t
    };
    let (_, v) = search(s, &c.ws, &As::User(&bob), "plan").await;
    assert_eq!(
        titles(&v),
        vec!["Employee handbook plan", "Engine design plan"],
        "{v}"
    );
    assert_eq!(v["total"], 2);
    let (_, v) = search(s, &c.ws, &As::User(&carol), "plan").await;
    assert_eq!(titles(&v), vec!["Employee handbook plan", "Salary plan"]);
    // Nothing leaks through counts or snippets of what Bob cannot open.
    let (_, v) = search(s, &c.ws, &As::User(&bob), "compensation").await;
    assert_eq!(v["total"], 0);
    assert_eq!(v["groups"], json!([]));
    assert!(!v.to_string().contains("compensation"));
    // The owner has no identity in the source: only what everyone may read.
    let (_, v) = search(s, &c.ws, &As::User(&c.who), "plan").await;
    assert_eq!(titles(&v), vec!["Employee handbook plan"]);
    // API keys are not people: no documents at all (fail closed).
    let (_, v) = search(s, &c.ws, &As::Key(&key), "plan").await;
    assert_eq!(v["total"], 0);

    // A group change applies at the next query, with no reindexing.
    push(
        s,
        &c.ws,
        &key,
        "groups/backend",
        Method::PUT,
        json!({"members": []}),
    )
    .await;
    let (_, v) = search(s, &c.ws, &As::User(&bob), "turbopump").await;
    assert_eq!(v["total"], 0);
    push(
        s,
        &c.ws,
        &key,
        "groups/eng",
        Method::PUT,
        json!({"members": [{"type": "user", "id": "U-BOB"}]}),
    )
    .await;
    let (_, v) = search(s, &c.ws, &As::User(&bob), "turbopump").await;
    assert_eq!(v["total"], 1);
    assert!(v["groups"][0]["hits"][0]["snippet"]
        .as_str()
        .unwrap()
        .contains("<mark>turbopump</mark>"));
    assert_eq!(
        v["groups"][0]["hits"][0]["url"],
        "https://wiki.example/design"
    );

    // Source ids and document text are sealed or blind-indexed at rest, index included.
    assert_absent(s, &["ZebraCanary", "U-CAROL", "turbopump", "bob@wiki.test"]).await;

    // Bad pushes are refused whole, naming the document and field; nothing is written.
    let (status, v) = s
        .call(Method::POST, &format!("/api/v1/workspaces/{}/sources/wiki/documents", c.ws), &As::Key(&key),
            Some(json!({"documents": [{"id": "ok", "title": "Fine"}, {"id": "bad", "title": "Bad", "url": "javascript:alert(1)"}]})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["message"].as_str().unwrap().contains("documents[1].url"),
        "{v}"
    );
    let (status, _) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{}/sources/Bad%20Name/documents", c.ws),
            &As::Key(&key),
            Some(json!({"documents": []})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Members cannot push.
    let (status, _) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{}/sources/wiki/documents", c.ws),
            &As::User(&bob),
            Some(json!({"documents": []})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Disconnecting removes everything of the source, from the store and the index (mm05).
    let (status, v) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/workspaces/{}/sources/wiki", c.ws),
            &As::Key(&key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["documents_removed"], 4);
    let (_, v) = search(s, &c.ws, &As::User(&carol), "plan").await;
    assert_eq!(v["total"], 0);
    let ws: meshwork_domain::WorkspaceId = c.ws.parse().unwrap();
    assert!(s.state().store.sources(ws).await.unwrap().is_empty());
}
server_test!(promise_mm01_search_shows_only_what_the_source_allows);

/// The files of a workspace's index: name → bytes.
fn index_files(s: &TestServer, ws: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
    let dir = s.data_dir().join("search").join(ws);
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

async fn search_index_resumes_after_a_restart_and_rebuilds_when_damaged(s: &mut TestServer) {
    let c = setup(s, "Ada").await;
    for i in 0..5 {
        c.create("companies", json!({"name": format!("Wombat {i}")}))
            .await;
    }
    let (who, ws) = (c.who.clone(), c.ws.clone());
    let me = As::User(&who);
    let (_, v) = search(s, &ws, &me, "wombat").await;
    assert_eq!(v["total"], 5);
    let before = index_files(s, &ws);
    assert!(!before.is_empty());

    // A restart opens the index where it stopped: the same files, no rebuild, and the next
    // write is applied on top.
    s.restart().await;
    let (_, v) = search(s, &ws, &me, "wombat").await;
    assert_eq!(v["total"], 5, "{v}");
    assert_eq!(index_files(s, &ws), before, "nothing was rewritten");
    let (status, _) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/companies"),
            &me,
            Some(json!({"name": "Wombat 5"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, v) = search(s, &ws, &me, "wombat").await;
    assert_eq!(v["total"], 6);

    // A damaged index (a flipped byte in every file) is rebuilt from the store, transparently.
    s.stop().await;
    let dir = s.data_dir().join("search").join(&ws);
    for name in index_files_at(&dir) {
        let p = dir.join(name);
        let mut bytes = std::fs::read(&p).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        std::fs::write(&p, bytes).unwrap();
    }
    s.restart().await;
    let (_, v) = search(s, &ws, &me, "wombat").await;
    assert_eq!(v["total"], 6, "{v}");
    // So is a missing one.
    s.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
    s.restart().await;
    let (_, v) = search(s, &ws, &me, "wombat 3").await;
    assert_eq!(v["total"], 1, "{v}");
    let (_, v) = search(s, &ws, &me, "wombat").await;
    assert_eq!(v["total"], 6, "{v}");
}
server_test!(search_index_resumes_after_a_restart_and_rebuilds_when_damaged);

fn index_files_at(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect()
}

async fn upload(
    s: &TestServer,
    c: &super::crm::Crm<'_>,
    name: &str,
    ct: &str,
    bytes: Vec<u8>,
) -> String {
    let file = c
        .create("files", json!({"name": name, "content_type": ct}))
        .await;
    let resp = s
        .req(
            Method::PUT,
            &format!("/api/v1/workspaces/{}/files/{}/content", c.ws, id(&file)),
            &As::User(&c.who),
        )
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    id(&file)
}

/// A Word document as Word writes it: a zip package whose `word/document.xml` holds the text.
fn docx(paragraphs: &[&str]) -> Vec<u8> {
    use std::io::Write;
    let mut body = String::from(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>"#,
    );
    for p in paragraphs {
        body.push_str(&format!("<w:p><w:r><w:t>{p}</w:t></w:r></w:p>"));
    }
    body.push_str("</w:body></w:document>");
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    w.start_file("[Content_Types].xml", opts).unwrap();
    w.write_all(br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>"#).unwrap();
    w.start_file("word/document.xml", opts).unwrap();
    w.write_all(body.as_bytes()).unwrap();
    w.finish().unwrap().into_inner()
}

/// Files are found by the words inside them (Office documents and text), not only by name; a
/// file whose content cannot be read is still found by its name.
async fn files_are_found_by_their_text_content(s: &mut TestServer) {
    let c = setup(s, "Extractor").await;
    let me = As::User(&c.who);
    let s: &TestServer = s;
    let c = &c;
    let word = upload(
        s,
        c,
        "Mission brief.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        docx(&["Heliosphere boundary survey", "Budget &amp; crew"]),
    )
    .await;
    let text = upload(
        s,
        c,
        "notes.txt",
        "text/plain",
        b"magnetopause readings".to_vec(),
    )
    .await;
    let broken = upload(
        s,
        c,
        "Broken.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        b"not a zip at all".to_vec(),
    )
    .await;
    // Office documents are read outside the index's catch-up: found by name at once, by their
    // words once read.
    let started = std::time::Instant::now();
    while search(s, &c.ws, &me, "heliosphere").await.1["total"] == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the document's text was never indexed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for (q, want) in [
        ("heliosphere", &word),
        ("boundary surv", &word),
        ("crew", &word),
        ("magnetopause", &text),
        ("broken", &broken),
    ] {
        let (status, v) = search(s, &c.ws, &me, q).await;
        assert_eq!(status, StatusCode::OK, "{q}: {v}");
        assert_eq!(hit_ids(&v), vec![want.clone()], "{q:?}: {v}");
    }
}
server_test!(files_are_found_by_their_text_content);
