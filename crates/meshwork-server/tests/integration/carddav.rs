//! The CardDAV contacts connector against a real Radicale server: cards become CRM contacts,
//! created or updated by email; a change made in Meshwork is never overwritten or deleted by a
//! sync without the history saying so; disconnecting removes only the contacts the connector
//! created and nobody changed.

use super::common::*;
use super::connectors::{api, connect, sync_now, synced};
use super::crm::setup;
use super::radicale::Radicale;
use crate::server_test;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn settings(r: &Radicale, user: &str, password: &str) -> Value {
    json!({"kind": "carddav", "url": r.url(), "user": user, "password": password})
}

/// Every contact as (first name, last name, emails, title, phones), sorted.
async fn contacts(c: &super::crm::Crm<'_>) -> Vec<(String, Value)> {
    let (status, all) = c.get("contacts?limit=200").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let mut out: Vec<(String, Value)> = all["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let f = &r["fields"];
            (
                format!(
                    "{} {}",
                    f["first_name"].as_str().unwrap_or(""),
                    f["last_name"].as_str().unwrap_or("")
                )
                .trim()
                .to_string(),
                r.clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn names(all: &[(String, Value)]) -> Vec<&str> {
    all.iter().map(|(n, _)| n.as_str()).collect()
}

fn problems(run: &Value) -> String {
    run["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

async fn carddav_cards_become_contacts_and_changes_made_in_meshwork_are_kept(s: &mut TestServer) {
    let r = Radicale::start(&["alice"]);
    r.book("alice", "contacts").await;
    r.put(
        "alice",
        "contacts",
        "ann",
        &[
            "FN:Ann Lee",
            "N:Lee;Ann;;;",
            "EMAIL:ann@cards.test",
            "TEL:+1 555 0100",
        ],
    )
    .await;
    r.put(
        "alice",
        "contacts",
        "bo",
        &[
            "FN:Bo Chen",
            "N:Chen;Bo;;;",
            "EMAIL:Bo@Cards.test",
            "TITLE:CTO",
            "TEL:+1 555 0101",
        ],
    )
    .await;
    r.put(
        "alice",
        "contacts",
        "cy",
        &["FN:Cy Young", "N:Young;Cy;;;", "EMAIL:cy@cards.test"],
    )
    .await;
    let c = setup(s, "Dora").await;
    let admin = As::User(&c.who);
    // Bo is already a contact here, with a title of his own.
    let bo = c.create("contacts", json!({"first_name": "Bo", "last_name": "Chen", "emails": ["bo@cards.test"], "title": "VP Sales"})).await;

    let id = connect(
        s,
        &admin,
        &c.ws,
        json!({"source": "address-book", "settings": settings(&r, "alice", "alice-pw")}),
    )
    .await;
    let run = synced(s, &admin, &c.ws, &id, None).await;
    assert_eq!(run["state"], "done", "{run}");
    assert_eq!(run["counts"]["listed"], 3, "{run}");
    assert_eq!(run["counts"]["contacts_matched"], 1, "{run}");
    let all = contacts(&c).await;
    assert_eq!(names(&all), ["Ann Lee", "Bo Chen", "Cy Young"]);
    let (_, ann) = &all[0];
    assert_eq!(ann["fields"]["emails"], json!(["ann@cards.test"]));
    assert_eq!(ann["fields"]["phones"].as_array().unwrap().len(), 1);
    // Bo matched by email (any case): his own title stays, the phone he lacked is filled in.
    let (_, bo_now) = &all[1];
    assert_eq!(bo_now["id"], bo["id"]);
    assert_eq!(bo_now["fields"]["title"], "VP Sales");
    assert_eq!(bo_now["fields"]["phones"].as_array().unwrap().len(), 1);
    // Found by the CRM's search too.
    let (status, hits) = c.get("search?q=ann@cards.test").await;
    assert_eq!(status, StatusCode::OK, "{hits}");
    assert!(hits.to_string().contains("Ann"), "{hits}");

    // Nothing changed: nothing is written.
    let run = sync_now(s, &admin, &c.ws, &id).await;
    assert_eq!(run["counts"]["unchanged"], 3, "{run}");
    assert_eq!(run["counts"]["stored"], 0, "{run}");

    // Ann's last name is corrected here; then her card changes its last name and title.
    let ann_id = ann["id"].as_str().unwrap().to_string();
    let (status, v) = c
        .patch(
            &format!("contacts/{ann_id}"),
            json!({"last_name": "Lee-Park"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    r.put(
        "alice",
        "contacts",
        "ann",
        &[
            "FN:Ann Li",
            "N:Li;Ann;;;",
            "EMAIL:ann@cards.test",
            "TEL:+1 555 0100",
            "TITLE:Engineer",
        ],
    )
    .await;
    let run = sync_now(s, &admin, &c.ws, &id).await;
    assert_eq!(run["counts"]["stored"], 1, "{run}");
    assert!(
        problems(&run).contains("kept the value changed in Meshwork of last_name"),
        "{run}"
    );
    let (_, ann) = c.get(&format!("contacts/{ann_id}")).await;
    assert_eq!(
        ann["fields"]["last_name"], "Lee-Park",
        "the change made here is kept"
    );
    assert_eq!(
        ann["fields"]["title"], "Engineer",
        "the card's other change is taken"
    );

    // Cards removed at the source: Cy (untouched here) goes; Ann (changed here) stays, said.
    r.delete("alice", "contacts", "cy").await;
    r.delete("alice", "contacts", "ann").await;
    let run = sync_now(s, &admin, &c.ws, &id).await;
    assert_eq!(run["counts"]["removed"], 1, "{run}");
    assert_eq!(run["counts"]["contacts_kept"], 1, "{run}");
    assert!(problems(&run).contains("Ann Lee-Park"), "{run}");
    assert_eq!(names(&contacts(&c).await), ["Ann Lee-Park", "Bo Chen"]);

    // A contact deleted here is not brought back by its card changing.
    r.put(
        "alice",
        "contacts",
        "dee",
        &["FN:Dee Ray", "N:Ray;Dee;;;", "EMAIL:dee@cards.test"],
    )
    .await;
    r.put(
        "alice",
        "contacts",
        "eve",
        &["FN:Eve Stone", "N:Stone;Eve;;;", "EMAIL:eve@cards.test"],
    )
    .await;
    sync_now(s, &admin, &c.ws, &id).await;
    let all = contacts(&c).await;
    assert_eq!(
        names(&all),
        ["Ann Lee-Park", "Bo Chen", "Dee Ray", "Eve Stone"]
    );
    let dee = all[2].1["id"].as_str().unwrap().to_string();
    assert_eq!(
        c.delete(&format!("contacts/{dee}")).await,
        StatusCode::NO_CONTENT
    );
    r.put(
        "alice",
        "contacts",
        "dee",
        &[
            "FN:Dee Ray",
            "N:Ray;Dee;;;",
            "EMAIL:dee@cards.test",
            "TITLE:Chef",
        ],
    )
    .await;
    let run = sync_now(s, &admin, &c.ws, &id).await;
    assert!(problems(&run).contains("deleted in Meshwork"), "{run}");
    assert_eq!(
        names(&contacts(&c).await),
        ["Ann Lee-Park", "Bo Chen", "Eve Stone"]
    );

    // Disconnecting removes what it created and nobody changed (Eve); Bo was here before it.
    let (status, v) = api(
        s,
        &admin,
        Method::DELETE,
        &format!("/api/v1/workspaces/{}/connectors/{id}", c.ws),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["contacts_removed"], 1, "{v}");
    assert_eq!(names(&contacts(&c).await), ["Ann Lee-Park", "Bo Chen"]);
    let ws: meshwork_domain::WorkspaceId = c.ws.parse().unwrap();
    assert!(s
        .state()
        .store
        .connector_records(ws, &id)
        .await
        .unwrap()
        .is_empty());
    assert_absent(s, &["alice-pw"]).await;
}
server_test!(carddav_cards_become_contacts_and_changes_made_in_meshwork_are_kept);

async fn carddav_disconnecting_keeps_a_created_contact_changed_in_meshwork(s: &mut TestServer) {
    let r = Radicale::start(&["alice"]);
    r.book("alice", "contacts").await;
    r.put(
        "alice",
        "contacts",
        "fay",
        &["FN:Fay Wu", "N:Wu;Fay;;;", "EMAIL:fay@cards.test"],
    )
    .await;
    r.put(
        "alice",
        "contacts",
        "gus",
        &["FN:Gus Ho", "N:Ho;Gus;;;", "EMAIL:gus@cards.test"],
    )
    .await;
    let c = setup(s, "Dora").await;
    let admin = As::User(&c.who);
    let id = connect(
        s,
        &admin,
        &c.ws,
        json!({"source": "cards", "settings": settings(&r, "alice", "alice-pw")}),
    )
    .await;
    synced(s, &admin, &c.ws, &id, None).await;
    let all = contacts(&c).await;
    assert_eq!(names(&all), ["Fay Wu", "Gus Ho"]);
    // Fay gets a tag here: changed in Meshwork, she stays when the connector goes.
    let fay = all[0].1["id"].as_str().unwrap().to_string();
    let (status, v) = c
        .patch(&format!("contacts/{fay}"), json!({"tags": ["vip"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = api(
        s,
        &admin,
        Method::DELETE,
        &format!("/api/v1/workspaces/{}/connectors/{id}", c.ws),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["contacts_removed"].as_u64(), v["contacts_kept"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
    assert!(v["kept"][0].as_str().unwrap().contains("Fay Wu"), "{v}");
    assert_eq!(names(&contacts(&c).await), ["Fay Wu"]);
}
server_test!(carddav_disconnecting_keeps_a_created_contact_changed_in_meshwork);

async fn carddav_bad_credentials_an_unreachable_server_and_a_bad_card_are_clear_errors(
    s: &mut TestServer,
) {
    let r = Radicale::start(&["alice", "bob"]);
    r.book("alice", "contacts").await;
    r.put(
        "alice",
        "contacts",
        "ok",
        &["FN:Hal Kim", "N:Kim;Hal;;;", "EMAIL:hal@cards.test"],
    )
    .await;
    // A card with neither a name nor an email cannot be a contact.
    r.put(
        "alice",
        "contacts",
        "blank",
        &["FN:", "N:;;;;", "ORG:Nobody Ltd"],
    )
    .await;
    let c = setup(s, "Dora").await;
    let admin = As::User(&c.who);
    let path = format!("/api/v1/workspaces/{}/connectors/try", c.ws);
    let try_ = |settings: Value| {
        api(
            s,
            &admin,
            Method::POST,
            &path,
            Some(json!({"settings": settings})),
        )
    };
    let (status, v) = try_(settings(&r, "alice", "wrong")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("refused the credentials"),
        "{v}"
    );
    let (status, v) = try_(
        json!({"kind": "carddav", "url": "http://127.0.0.1:1/", "user": "alice", "password": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("cannot reach"),
        "{v}"
    );
    // Bob has no address book.
    let (status, v) = try_(settings(&r, "bob", "bob-pw")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("no address book"),
        "{v}"
    );
    let (status, v) =
        try_(json!({"kind": "carddav", "url": "ftp://x/", "user": "alice", "password": "x"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["message"].as_str().unwrap().contains("`url`"), "{v}");
    let (status, v) = try_(settings(&r, "alice", "alice-pw")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("2 cards in 1 address book"),
        "{v}"
    );

    let id = connect(
        s,
        &admin,
        &c.ws,
        json!({"source": "cards", "settings": settings(&r, "alice", "alice-pw")}),
    )
    .await;
    let run = synced(s, &admin, &c.ws, &id, None).await;
    assert_eq!(run["state"], "done", "{run}");
    assert_eq!(run["counts"]["errors"], 1, "{run}");
    assert!(
        problems(&run).contains("blank.vcf"),
        "the card is named: {run}"
    );
    assert!(problems(&run).contains("needs a name or an email"), "{run}");
    assert_eq!(names(&contacts(&c).await), ["Hal Kim"]);

    // The server goes away: the sync fails, saying so, and nothing already imported is lost.
    drop(r);
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
    assert!(problems(&run).contains("cannot reach"), "{run}");
    assert_eq!(names(&contacts(&c).await), ["Hal Kim"]);
}
server_test!(carddav_bad_credentials_an_unreachable_server_and_a_bad_card_are_clear_errors);
