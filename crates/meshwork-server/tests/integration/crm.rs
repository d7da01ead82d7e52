//! The CRM over HTTP: every record type linked together with a timeline (cl02), every field
//! editable (cl11), dedup and merge, bulk changes, find/view/modify/delete (mm12), export as
//! JSON and CSV (cl10, pm12).

use super::common::*;
use crate::server_test;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub struct Crm<'a> {
    pub s: &'a TestServer,
    pub who: Session,
    pub ws: String,
}

impl Crm<'_> {
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.s
            .call(
                Method::POST,
                &format!("/api/v1/workspaces/{}/{path}", self.ws),
                &As::User(&self.who),
                Some(body),
            )
            .await
    }

    pub async fn create(&self, plural: &str, body: Value) -> Value {
        let (status, v) = self.post(plural, body).await;
        assert_eq!(status, StatusCode::CREATED, "{plural}: {v}");
        v
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.s
            .call(
                Method::GET,
                &format!("/api/v1/workspaces/{}/{path}", self.ws),
                &As::User(&self.who),
                None,
            )
            .await
    }

    pub async fn patch(&self, path: &str, fields: Value) -> (StatusCode, Value) {
        self.s
            .call(
                Method::PATCH,
                &format!("/api/v1/workspaces/{}/{path}", self.ws),
                &As::User(&self.who),
                Some(json!({"fields": fields})),
            )
            .await
    }

    pub async fn delete(&self, path: &str) -> StatusCode {
        self.s
            .status(
                Method::DELETE,
                &format!("/api/v1/workspaces/{}/{path}", self.ws),
                &As::User(&self.who),
                None,
            )
            .await
    }
}

pub async fn setup<'a>(s: &'a TestServer, name: &str) -> Crm<'a> {
    let who = s
        .signup(name, &format!("{}@crm.test", name.to_lowercase()))
        .await;
    let ws = s.create_workspace(&who, &format!("{name} Inc")).await;
    Crm { s, who, ws }
}

pub async fn pipeline(c: &Crm<'_>) -> String {
    let p = c
        .create("pipelines", json!({"name": "Sales", "stages": [{"name": "Lead"}, {"name": "Proposal"}, {"name": "Won", "won": true}, {"name": "Lost", "lost": true}]}))
        .await;
    p["id"].as_str().unwrap().to_string()
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

async fn promise_cl02_every_record_type_links_together_with_a_timeline(s: &mut TestServer) {
    let c = setup(s, "Ada").await;
    let pipeline = pipeline(&c).await;
    let company = c.create("companies", json!({"name": "Acme", "domains": ["https://www.acme.example.com"], "industry": "Rockets"})).await;
    let contact = c.create("contacts", json!({"first_name": "Grace", "last_name": "Hopper", "emails": ["grace@acme.example.com"], "phones": ["+1 555 010 2030"], "companies": [id(&company)]})).await;
    let deal = c
        .create("deals", json!({"name": "Big order", "amount": "12,500.00", "currency": "usd", "pipeline": pipeline, "stage": "proposal", "close_date": "2026-12-24", "contacts": [id(&contact)], "companies": [id(&company)]}))
        .await;
    assert_eq!(deal["fields"]["amount"], "12500.00");
    assert_eq!(deal["fields"]["currency"], "USD");
    let about = json!([id(&contact), id(&company), id(&deal)]);
    let note = c
        .create(
            "notes",
            json!({"body": "<p>Met at the <b>conference</b></p>", "about": about}),
        )
        .await;
    let task = c.create("activities", json!({"type": "task", "title": "Send the quote", "due_at": "2026-12-01T09:00:00Z", "about": about})).await;
    let email = c
        .create("communications", json!({"channel": "email", "direction": "outbound", "from": "ada@crm.test", "to": ["grace@acme.example.com"], "cc": ["boss@acme.example.com"], "subject": "Quote", "body": "Attached.", "occurred_at": "2026-11-20T10:00:00Z", "about": about}))
        .await;
    let sms = c
        .create(
            "communications",
            json!({"channel": "sms", "body": "On my way", "about": [id(&contact)]}),
        )
        .await;
    let call = c.create("communications", json!({"channel": "call", "duration_seconds": 300, "outcome": "connected", "about": [id(&contact)]})).await;
    let file = c.create("files", json!({"name": "quote.pdf", "content_type": "application/pdf", "about": [id(&contact)]})).await;
    let put = s
        .req(
            Method::PUT,
            &format!("/api/v1/workspaces/{}/files/{}/content", c.ws, id(&file)),
            &As::User(&c.who),
        )
        .header("content-type", "application/octet-stream")
        .body(b"%PDF-1.4 quote".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let got = s
        .req(
            Method::GET,
            &format!("/api/v1/workspaces/{}/files/{}/content", c.ws, id(&file)),
            &As::User(&c.who),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(got.headers()["content-type"], "application/pdf");
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"%PDF-1.4 quote");
    let form = c
        .create("forms", json!({"name": "Newsletter", "published": true, "fields": [{"name": "email", "target": "email", "required": true}, {"name": "interest"}]}))
        .await;
    let submission = c
        .create("form_submissions", json!({"form": id(&form), "answers": {"email": "grace@acme.example.com", "interest": "rockets"}, "about": [id(&contact)]}))
        .await;
    // A field change goes on the timeline too.
    let (status, _) = c
        .patch(
            &format!("contacts/{}", id(&contact)),
            json!({"title": "Rear Admiral"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, timeline) = c.get(&format!("contacts/{}/timeline", id(&contact))).await;
    assert_eq!(status, StatusCode::OK, "{timeline}");
    let items = timeline["items"].as_array().unwrap();
    let kinds: Vec<&str> = items.iter().map(|i| i["type"].as_str().unwrap()).collect();
    for k in [
        "note",
        "activity",
        "communication",
        "file",
        "form_submission",
        "field_change",
    ] {
        assert!(
            kinds.contains(&k),
            "{k} missing from the timeline: {kinds:?}"
        );
    }
    let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    for r in [&note, &task, &email, &sms, &call, &file, &submission] {
        assert!(
            ids.contains(&r["id"].as_str().unwrap()),
            "{r} missing from the timeline"
        );
    }
    let times: Vec<i64> = items.iter().map(|i| i["at"].as_i64().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    let change = items.iter().find(|i| i["type"] == "field_change").unwrap();
    assert_eq!(change["details"]["changes"][0]["field"], "title");
    // Paged: two at a time reaches the same entries.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor
            .as_ref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let (_, page) = c
            .get(&format!("contacts/{}/timeline?limit=2{q}", id(&contact)))
            .await;
        paged.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(n) => cursor = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(paged, ids);
    // The company and the deal have their own timelines.
    for subject in [
        format!("companies/{}", id(&company)),
        format!("deals/{}", id(&deal)),
    ] {
        let (_, t) = c.get(&format!("{subject}/timeline")).await;
        let n = t["items"].as_array().unwrap().len();
        assert_eq!(n, 3, "{subject}: the note, the task and the email: {t}");
    }
    // Relations are navigable both ways.
    let (_, contacts_of_company) = c.get(&format!("contacts?linked_to={}", id(&company))).await;
    assert_eq!(contacts_of_company["records"][0]["id"], contact["id"]);
}
server_test!(promise_cl02_every_record_type_links_together_with_a_timeline);

async fn promise_cl11_every_crm_field_is_editable_through_the_api(s: &mut TestServer) {
    let c = setup(s, "Edith").await;
    let pipeline = pipeline(&c).await;
    let other_pipeline = pipeline_named(&c, "Renewals").await;
    let company = c.create("companies", json!({"name": "Initech"})).await;
    let company2 = c.create("companies", json!({"name": "Globex"})).await;
    let contact = c.create("contacts", json!({"first_name": "Peter"})).await;
    let field = c.create("custom_fields", json!({"object": "contact", "key": "tier", "label": "Tier", "type": "select", "options": ["Gold", "Silver"]})).await;
    let deal = c
        .create(
            "deals",
            json!({"name": "D", "pipeline": pipeline, "stage": "lead"}),
        )
        .await;
    let form = c
        .create(
            "forms",
            json!({"name": "F", "fields": [{"name": "email", "target": "email"}]}),
        )
        .await;
    let me = c.who.user_id.clone();
    let cases: Vec<(&str, String, Value)> = vec![
        (
            "companies",
            id(&company),
            json!({"name": "Initech Ltd", "domains": ["initech.example"], "industry": "Software", "size": "51-200", "address": "1 Main St\nAustin", "owner": me, "tags": ["b2b"], "external_id": "c-1"}),
        ),
        (
            "contacts",
            id(&contact),
            json!({"first_name": "Pete", "last_name": "Gibbons", "emails": ["peter@initech.example"], "phones": ["555-0100"], "title": "Engineer", "companies": [id(&company2)], "owner": me, "tags": ["vip"], "external_id": "p-1", "custom": {"tier": "Gold"}}),
        ),
        (
            "deals",
            id(&deal),
            json!({"name": "Deal 2", "amount": "99.5", "currency": "EUR", "pipeline": other_pipeline, "stage": "won", "close_date": "2027-01-31", "owner": me, "contacts": [id(&contact)], "companies": [id(&company)], "tags": ["q1"], "external_id": "d-1"}),
        ),
        (
            "pipelines",
            pipeline.clone(),
            json!({"name": "New sales", "stages": [{"name": "Lead"}, {"name": "Closed", "won": true}]}),
        ),
        (
            "forms",
            id(&form),
            json!({"name": "Contact us", "published": true, "fields": [{"name": "mail", "label": "Your email", "target": "email", "required": true}]}),
        ),
        (
            "custom_fields",
            id(&field),
            json!({"label": "Customer tier", "options": ["Gold", "Silver", "Bronze"]}),
        ),
    ];
    for (plural, rid, fields) in cases {
        let (status, updated) = c.patch(&format!("{plural}/{rid}"), fields.clone()).await;
        assert_eq!(status, StatusCode::OK, "{plural}: {updated}");
        let (_, got) = c.get(&format!("{plural}/{rid}")).await;
        for (k, v) in fields.as_object().unwrap() {
            let stored = &got["fields"][k];
            match k.as_str() {
                "amount" => assert_eq!(stored, "99.50"),
                "stages" | "fields" => assert_eq!(
                    stored.as_array().unwrap().len(),
                    v.as_array().unwrap().len()
                ),
                _ => assert_eq!(stored, v, "{plural}.{k}"),
            }
        }
        assert_eq!(got["version"], 2, "{plural}");
    }
    // A removed field is gone; a stale version is refused.
    let (status, _) = c
        .patch(
            &format!("contacts/{}", id(&contact)),
            json!({"title": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, got) = c.get(&format!("contacts/{}", id(&contact))).await;
    assert!(got["fields"].get("title").is_none());
    let (status, body) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/workspaces/{}/contacts/{}", c.ws, id(&contact)),
            &As::User(&c.who),
            Some(json!({"fields": {"title": "x"}, "version": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "concurrent_change");
    // Bad values are refused naming each field, and nothing changes.
    let (status, body) = c
        .patch(
            &format!("contacts/{}", id(&contact)),
            json!({"emails": ["not-an-email"], "custom": {"tier": "Platinum"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["emails[0]", "custom.tier"], "{body}");
    let (_, after) = c.get(&format!("contacts/{}", id(&contact))).await;
    assert_eq!(after["fields"], got["fields"]);
    // Links must point at records of the right type in this workspace.
    let (status, body) = c
        .patch(
            &format!("contacts/{}", id(&contact)),
            json!({"companies": [id(&deal)]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("companies"),
        "{body}"
    );
    // A pipeline with deals cannot be deleted.
    let (status, body) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/workspaces/{}/pipelines/{}", c.ws, other_pipeline),
            &As::User(&c.who),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "record_in_use");
}
server_test!(promise_cl11_every_crm_field_is_editable_through_the_api);

async fn pipeline_named(c: &Crm<'_>, name: &str) -> String {
    id(&c
        .create(
            "pipelines",
            json!({"name": name, "stages": [{"name": "Open"}, {"name": "Won", "won": true}]}),
        )
        .await)
}

async fn duplicates_are_refused_and_merged_with_their_relations(s: &mut TestServer) {
    let c = setup(s, "Mia").await;
    let a = c
        .create(
            "contacts",
            json!({"first_name": "Ann", "emails": ["ann@example.com"], "tags": ["a"]}),
        )
        .await;
    let (status, body) = c
        .post(
            "contacts",
            json!({"first_name": "Annie", "emails": ["  ANN@example.com "]}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "duplicate_record");
    assert_eq!(body["existing"]["id"], a["id"]);
    let company = c
        .create(
            "companies",
            json!({"name": "Acme", "domains": ["acme.example"]}),
        )
        .await;
    let (status, body) = c
        .post(
            "companies",
            json!({"name": "Acme GmbH", "domains": ["https://shop.acme.example/de"]}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "registrable domains match: {body}"
    );
    assert_eq!(body["existing"]["id"], company["id"]);

    let b = c.create("contacts", json!({"first_name": "Ann B.", "last_name": "Smith", "emails": ["ann.smith@example.com"], "tags": ["b"], "companies": [id(&company)]})).await;
    c.create("notes", json!({"body": "about b", "about": [id(&b)]}))
        .await;
    let (status, _) = c
        .patch(&format!("contacts/{}", id(&b)), json!({"title": "CEO"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, preview) = c
        .post(
            &format!("contacts/{}/merge", id(&a)),
            json!({"merge_id": id(&b), "dry_run": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["survivor"]["fields"]["first_name"], "Ann");
    assert_eq!(preview["survivor"]["fields"]["last_name"], "Smith");
    assert_eq!(
        preview["survivor"]["fields"]["emails"],
        json!(["ann@example.com", "ann.smith@example.com"])
    );
    let (status, _) = c.get(&format!("contacts/{}", id(&b))).await;
    assert_eq!(status, StatusCode::OK, "a dry run writes nothing");

    let (status, merged) = c
        .post(
            &format!("contacts/{}/merge", id(&a)),
            json!({"merge_id": id(&b)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{merged}");
    let (status, _) = c.get(&format!("contacts/{}", id(&b))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, survivor) = c.get(&format!("contacts/{}", id(&a))).await;
    assert_eq!(survivor["fields"]["companies"], json!([id(&company)]));
    assert_eq!(survivor["fields"]["tags"], json!(["a", "b"]));
    let (_, timeline) = c.get(&format!("contacts/{}/timeline", id(&a))).await;
    let kinds: Vec<&str> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"note") && kinds.contains(&"merge") && kinds.contains(&"field_change"),
        "{kinds:?}"
    );
    // The merged-away email now finds the survivor.
    let (status, body) = c
        .post("contacts", json!({"emails": ["ann.smith@example.com"]}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["existing"]["id"], a["id"]);
    let (_, audit) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{}/audit", c.ws),
            &As::User(&c.who),
            None,
        )
        .await;
    assert!(
        kinds_of(&audit).contains(&"crm.merged".to_string()),
        "{audit}"
    );
}
server_test!(duplicates_are_refused_and_merged_with_their_relations);

fn kinds_of(audit: &Value) -> Vec<String> {
    kinds(audit).into_iter().map(str::to_string).collect()
}

async fn promise_mm12_find_view_modify_and_delete_your_content(s: &mut TestServer) {
    let c = setup(s, "Noor").await;
    for i in 0..7 {
        c.create("contacts", json!({"first_name": format!("Person {i}"), "emails": [format!("p{i}@example.com")], "tags": [if i % 2 == 0 { "even" } else { "odd" }]})).await;
    }
    let (_, page) = c.get("contacts?tags=even&limit=2").await;
    assert_eq!(page["records"].as_array().unwrap().len(), 2);
    let next = page["next_cursor"].as_str().unwrap();
    let (_, page2) = c
        .get(&format!("contacts?tags=even&limit=2&cursor={next}"))
        .await;
    assert_eq!(page2["records"].as_array().unwrap().len(), 2);
    assert!(page2["next_cursor"].is_null());
    let (_, found) = c.get("contacts?q=person%205").await;
    assert_eq!(found["records"][0]["fields"]["first_name"], "Person 5");
    let (status, body) = c.get("contacts?favourite_colour=blue").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "invalid_filter");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("favourite_colour"));

    // Bulk changes need crm.bulk: a member may not, an admin may.
    let member = s.signup("Mo", "mo@crm.test").await;
    s.add_member(&c.who, &c.ws, &member, "member").await;
    let (status, _) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{}/contacts/bulk-update", c.ws),
            &As::User(&member),
            Some(json!({"filter": {"tags": "odd"}, "set": {"title": "Odd"}})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = c
        .post(
            "contacts/bulk-update",
            json!({"filter": {"tags": "odd"}, "set": {"title": "Odd"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["affected"], 3);
    let (_, odd) = c.get("contacts?title=odd").await;
    assert_eq!(odd["records"].as_array().unwrap().len(), 3);
    let (status, body) = c
        .post("contacts/bulk-delete", json!({"filter": {"tags": "odd"}}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("confirmation_required")
        )
    );
    let (status, body) = c
        .post(
            "contacts/bulk-delete",
            json!({"filter": {"tags": "odd"}, "confirm": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["affected"], 3);
    let (_, all) = c.get("contacts").await;
    assert_eq!(all["records"].as_array().unwrap().len(), 4);
    // A viewer can read but not write.
    let viewer = s.signup("Vi", "vi@crm.test").await;
    s.add_member(&c.who, &c.ws, &viewer, "viewer").await;
    let (status, _) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{}/contacts", c.ws),
            &As::User(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{}/contacts", c.ws),
            &As::User(&viewer),
            Some(json!({"first_name": "X"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let one = all["records"][0]["id"].as_str().unwrap();
    assert_eq!(
        c.delete(&format!("contacts/{one}")).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.get(&format!("contacts/{one}")).await.0,
        StatusCode::NOT_FOUND
    );
    // Another workspace sees none of it.
    let other = setup(s, "Olga").await;
    assert_eq!(
        other
            .get(&format!(
                "contacts/{}",
                all["records"][1]["id"].as_str().unwrap()
            ))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}
server_test!(promise_mm12_find_view_modify_and_delete_your_content);

async fn promise_cl10_the_whole_workspace_exports_as_json_and_csv(s: &mut TestServer) {
    let c = setup(s, "Xena").await;
    c.create(
        "custom_fields",
        json!({"object": "contact", "key": "score", "label": "Score", "type": "number"}),
    )
    .await;
    let company = c
        .create(
            "companies",
            json!({"name": "=HYPERLINK(\"http://evil\")", "domains": ["evil.example"]}),
        )
        .await;
    c.create("contacts", json!({"first_name": "+SUM(A1)", "last_name": "@cmd", "emails": ["x@evil.example"], "companies": [id(&company)], "custom": {"score": 7}})).await;
    c.create("notes", json!({"body": "-2+3", "about": [id(&company)]}))
        .await;
    let (status, list) = c.get("export").await;
    assert_eq!(status, StatusCode::OK);
    let files: Vec<&str> = list["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for f in [
        "contacts.json",
        "contacts.csv",
        "companies.json",
        "deals.csv",
        "notes.json",
        "events.json",
        "form_submissions.csv",
    ] {
        assert!(files.contains(&f), "{f}");
    }
    let (status, contacts) = c.get("export/contacts.json").await;
    assert_eq!(status, StatusCode::OK);
    let rec = &contacts["records"][0];
    assert_eq!(
        rec["fields"]["first_name"], "+SUM(A1)",
        "JSON keeps values as they are"
    );
    assert_eq!(rec["links"][0]["to"], company["id"]);
    let csv = s
        .req(
            Method::GET,
            &format!("/api/v1/workspaces/{}/export/contacts.csv", c.ws),
            &As::User(&c.who),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert!(header.contains(&"custom.score".to_string()), "{header:?}");
    let row: Vec<String> = reader
        .records()
        .next()
        .unwrap()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let col = |name: &str| row[header.iter().position(|h| h == name).unwrap()].clone();
    assert_eq!(col("first_name"), "'+SUM(A1)");
    assert_eq!(col("last_name"), "'@cmd");
    assert_eq!(col("custom.score"), "7");
    let companies = s
        .req(
            Method::GET,
            &format!("/api/v1/workspaces/{}/export/companies.csv", c.ws),
            &As::User(&c.who),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(companies.contains("'=HYPERLINK"), "{companies}");
    let notes = s
        .req(
            Method::GET,
            &format!("/api/v1/workspaces/{}/export/notes.csv", c.ws),
            &As::User(&c.who),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(notes.contains("'-2+3"), "{notes}");
    assert_eq!(c.get("export/secrets.txt").await.0, StatusCode::NOT_FOUND);
    let (_, audit) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{}/audit", c.ws),
            &As::User(&c.who),
            None,
        )
        .await;
    assert!(
        kinds_of(&audit)
            .iter()
            .filter(|k| *k == "crm.exported")
            .count()
            >= 4
    );
    // Members cannot export.
    let member = s.signup("Mu", "mu@crm.test").await;
    s.add_member(&c.who, &c.ws, &member, "member").await;
    assert_eq!(
        s.status(
            Method::GET,
            &format!("/api/v1/workspaces/{}/export/contacts.json", c.ws),
            &As::User(&member),
            None
        )
        .await,
        StatusCode::FORBIDDEN
    );
}
server_test!(promise_cl10_the_whole_workspace_exports_as_json_and_csv);

async fn promise_pm12_every_export_file_is_machine_readable(s: &mut TestServer) {
    let c = setup(s, "Pia").await;
    let pipeline = pipeline(&c).await;
    let company = c
        .create(
            "companies",
            json!({"name": "Acme, \"the\" company", "address": "1 Main St\nSpringfield"}),
        )
        .await;
    let contact = c.create("contacts", json!({"first_name": "Zoë", "emails": ["zoe@acme.example"], "companies": [id(&company)]})).await;
    c.create(
        "deals",
        json!({"name": "D", "pipeline": pipeline, "stage": "lead", "contacts": [id(&contact)]}),
    )
    .await;
    c.create(
        "notes",
        json!({"body": "line one\nline two", "about": [id(&contact)]}),
    )
    .await;
    let (_, list) = c.get("export").await;
    let mut records = 0;
    for file in list["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
    {
        let resp = s
            .req(
                Method::GET,
                &format!("/api/v1/workspaces/{}/export/{file}", c.ws),
                &As::User(&c.who),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{file}");
        let body = resp.bytes().await.unwrap();
        if file.ends_with(".json") {
            let v: Value =
                serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{file} is not JSON: {e}"));
            assert_eq!(v["format"], "meshwork-export/1", "{file}");
            records += v["records"].as_array().map_or(0, Vec::len);
        } else {
            let mut r = csv::Reader::from_reader(body.as_ref());
            let width = r.headers().unwrap().len();
            for row in r.records() {
                let row = row.unwrap_or_else(|e| panic!("{file} is not CSV: {e}"));
                assert_eq!(
                    row.len(),
                    width,
                    "{file}: every row has the header's columns"
                );
            }
        }
    }
    assert_eq!(
        records, 5,
        "the pipeline, company, contact, deal and note, once each"
    );
}
server_test!(promise_pm12_every_export_file_is_machine_readable);
