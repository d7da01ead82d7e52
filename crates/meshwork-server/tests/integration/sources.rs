//! Sources (connectors and the push API) over HTTP: a person's identities in several tools are
//! joined by verified email (mm03); a source's data stays until it is disconnected, and
//! disconnecting removes everything it brought, from the store and from search, leaving the other
//! sources untouched (mm05, mm14).

use super::common::*;
use super::crm::setup;
use crate::server_test;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub(super) async fn push(
    s: &TestServer,
    ws: &str,
    key: &str,
    source: &str,
    path: &str,
    method: Method,
    body: Value,
) {
    let (status, v) = s
        .call(
            method,
            &format!("/api/v1/workspaces/{ws}/sources/{source}/{path}"),
            &As::Key(key),
            Some(body),
        )
        .await;
    assert!(status.is_success(), "{source}/{path}: {status} {v}");
}

/// The titles `who` finds for `q`, sorted.
pub(super) async fn found(s: &TestServer, ws: &str, who: &As<'_>, q: &str) -> Vec<String> {
    let (status, v) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/search?q={q}&limit=50"),
            who,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
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
}

async fn promise_mm03_one_person_across_tools_is_joined_by_verified_email(s: &mut TestServer) {
    let c = setup(s, "Olga").await;
    let key = s.create_key(&c.who, &c.ws, "admin").await;
    let bob = s.signup("Bob", "bob@tools.test").await;
    s.add_member(&c.who, &c.ws, &bob, "member").await; // verifies Bob's email
    let carol = s.signup("Carol", "carol@tools.test").await;
    s.add_member(&c.who, &c.ws, &carol, "member").await;

    // Bob has a different id in each tool; his email is written differently in each.
    push(
        s,
        &c.ws,
        &key,
        "wiki",
        "principals",
        Method::POST,
        json!({"principals": [{"id": "W-17", "email": "bob@tools.test"}]}),
    )
    .await;
    push(
        s,
        &c.ws,
        &key,
        "drive",
        "principals",
        Method::POST,
        json!({"principals": [
            {"id": "D-bob", "email": "  BOB@Tools.TEST "},
            {"id": "D-olga", "email": "olga@crm.test"},
        ]}),
    )
    .await;
    push(
        s,
        &c.ws,
        &key,
        "drive",
        "groups/design-team",
        Method::PUT,
        json!({"members": [{"type": "user", "id": "D-bob"}]}),
    )
    .await;
    push(
        s,
        &c.ws,
        &key,
        "wiki",
        "documents",
        Method::POST,
        json!({"documents": [
            {"id": "w1", "title": "Wiki roadmap memo", "permissions": {"users": ["W-17"]}},
        ]}),
    )
    .await;
    push(
        s,
        &c.ws,
        &key,
        "drive",
        "documents",
        Method::POST,
        json!({"documents": [
            {"id": "d1", "title": "Drive budget memo", "permissions": {"users": ["D-bob"]}},
            {"id": "d2", "title": "Drive team memo", "permissions": {"groups": ["design-team"]}},
            {"id": "d3", "title": "Drive owner memo", "permissions": {"users": ["D-olga"]}},
        ]}),
    )
    .await;

    // One person, three documents from two tools, through a user id and a group in each.
    assert_eq!(
        found(s, &c.ws, &As::User(&bob), "memo").await,
        vec!["Drive budget memo", "Drive team memo", "Wiki roadmap memo"]
    );
    assert_eq!(
        found(s, &c.ws, &As::User(&carol), "memo").await,
        Vec::<String>::new()
    );
    // An unverified email joins nothing; once verified, it does.
    assert_eq!(
        found(s, &c.ws, &As::User(&c.who), "memo").await,
        Vec::<String>::new()
    );
    s.verify_email(&c.who).await;
    assert_eq!(
        found(s, &c.ws, &As::User(&c.who), "memo").await,
        vec!["Drive owner memo"]
    );
    // The tool changes the address of its user: the join follows at the next search.
    push(
        s,
        &c.ws,
        &key,
        "drive",
        "principals",
        Method::POST,
        json!({"principals": [{"id": "D-bob", "email": "robert@elsewhere.test"}]}),
    )
    .await;
    assert_eq!(
        found(s, &c.ws, &As::User(&bob), "memo").await,
        vec!["Wiki roadmap memo"]
    );
}
server_test!(promise_mm03_one_person_across_tools_is_joined_by_verified_email);

/// Two sources, each with Bob, a group and three documents; answers the owner's CRM handle, an
/// admin key and Bob.
async fn two_sources(s: &TestServer) -> (super::crm::Crm<'_>, String, Session) {
    let c = setup(s, "Olga").await;
    let key = s.create_key(&c.who, &c.ws, "admin").await;
    let bob = s.signup("Bob", "bob@tools.test").await;
    s.add_member(&c.who, &c.ws, &bob, "member").await;
    for source in ["wiki", "drive"] {
        push(
            s,
            &c.ws,
            &key,
            source,
            "principals",
            Method::POST,
            json!({"principals": [{"id": "bob", "email": "bob@tools.test"}]}),
        )
        .await;
        push(
            s,
            &c.ws,
            &key,
            source,
            "groups/all",
            Method::PUT,
            json!({"members": [{"type": "user", "id": "bob"}]}),
        )
        .await;
        push(s, &c.ws, &key, source, "documents", Method::POST, json!({"documents": [
            {"id": "a", "title": format!("{source} alpha quokka"), "permissions": {"groups": ["all"]}},
            {"id": "b", "title": format!("{source} beta quokka"), "permissions": {"users": ["bob"]}},
            {"id": "c", "title": format!("{source} gamma quokka"), "permissions": {"everyone": true}},
        ]}))
        .await;
    }
    (c, key, bob)
}

async fn promise_mm05_source_data_stays_until_the_source_is_disconnected(s: &mut TestServer) {
    let (c, key, bob) = two_sources(s).await;
    let ws: meshwork_domain::WorkspaceId = c.ws.parse().unwrap();
    // Later writes, pushes of other documents, deletes elsewhere and full index rebuilds keep it.
    let company = c.create("companies", json!({"name": "Quokka Ltd"})).await;
    push(s, &c.ws, &key, "drive", "documents", Method::POST, json!({"documents": [{"id": "x", "title": "drive extra quokka", "permissions": {"everyone": true}}]})).await;
    let (status, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/workspaces/{}/sources/drive/documents/x", c.ws),
            &As::Key(&key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        c.delete(&format!("companies/{}", company["id"].as_str().unwrap()))
            .await,
        StatusCode::NO_CONTENT
    );
    s.state()
        .search
        .rebuild(s.state(), ws, |_| {})
        .await
        .unwrap();
    assert_eq!(found(s, &c.ws, &As::User(&bob), "quokka").await.len(), 6);
    let (_, sources) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{}/sources", c.ws),
            &As::Key(&key),
            None,
        )
        .await;
    assert_eq!(
        sources,
        json!([{"source": "drive", "documents": 3}, {"source": "wiki", "documents": 3}])
    );
    // Disconnecting is the way it goes.
    for source in ["wiki", "drive"] {
        let (status, _) = s
            .call(
                Method::DELETE,
                &format!("/api/v1/workspaces/{}/sources/{source}", c.ws),
                &As::Key(&key),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(
        found(s, &c.ws, &As::User(&bob), "quokka").await,
        Vec::<String>::new()
    );
    assert!(s.state().store.sources(ws).await.unwrap().is_empty());
}
server_test!(promise_mm05_source_data_stays_until_the_source_is_disconnected);

async fn promise_mm14_disconnecting_a_source_deletes_everything_it_brought(s: &mut TestServer) {
    let (c, key, bob) = two_sources(s).await;
    let ws: meshwork_domain::WorkspaceId = c.ws.parse().unwrap();
    c.create("companies", json!({"name": "Quokka Ltd"})).await;
    let (status, v) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/workspaces/{}/sources/wiki", c.ws),
            &As::Key(&key),
            None,
        )
        .await;
    assert_eq!(
        (status, v["documents_removed"].clone()),
        (StatusCode::OK, json!(3))
    );
    // Gone from search for everyone, documents, users and groups alike; the other source stays.
    assert_eq!(
        found(s, &c.ws, &As::User(&bob), "quokka").await,
        vec![
            "Quokka Ltd",
            "drive alpha quokka",
            "drive beta quokka",
            "drive gamma quokka"
        ]
    );
    assert_eq!(
        found(s, &c.ws, &As::User(&c.who), "wiki").await,
        Vec::<String>::new()
    );
    let store = &s.state().store;
    assert_eq!(
        store.sources(ws).await.unwrap(),
        vec![("drive".to_string(), 3)]
    );
    let page = store.source_documents_page(ws, None, 100).await.unwrap();
    assert_eq!(page.len(), 3);
    assert!(page.iter().all(|d| d.source == "drive"));
    // The wiki's users and groups are gone: no principal of the wiki is joined to Bob any more,
    // and a document pushed again later, naming the old group, is visible to nobody.
    let index = meshwork_app::search::source_email_index(s.state(), ws, "bob@tools.test").unwrap();
    let principals = store.principals_by_email(ws, &index).await.unwrap();
    assert_eq!(principals.len(), 1, "only drive's Bob: {principals:?}");
    push(
        s,
        &c.ws,
        &key,
        "wiki",
        "documents",
        Method::POST,
        json!({"documents": [
            {"id": "z", "title": "wiki zeta quokka", "permissions": {"groups": ["all"]}},
        ]}),
    )
    .await;
    assert!(!found(s, &c.ws, &As::User(&bob), "zeta")
        .await
        .contains(&"wiki zeta quokka".to_string()));
    // A rebuild from the store brings nothing back.
    s.state()
        .search
        .rebuild(s.state(), ws, |_| {})
        .await
        .unwrap();
    assert_eq!(
        found(s, &c.ws, &As::User(&bob), "alpha").await,
        vec!["drive alpha quokka"]
    );
    // The disconnection is audited.
    let (_, audit) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{}/audit", c.ws),
            &As::User(&c.who),
            None,
        )
        .await;
    assert!(kinds(&audit).contains(&"source.disconnected"));
}
server_test!(promise_mm14_disconnecting_a_source_deletes_everything_it_brought);
