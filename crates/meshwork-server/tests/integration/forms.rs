//! Public CRM forms: a published form is fetched and submitted without an account; a submission
//! creates or updates the contact named by its email question and lands on that contact's
//! timeline; a refused submission names what is wrong and writes nothing; unpublished forms and
//! other workspaces' forms are not found.

use super::common::*;
use super::crm::setup;
use crate::server_test;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn a_public_form_submission_creates_or_updates_its_contact_and_lands_on_the_timeline(
    s: &mut TestServer,
) {
    let c = setup(s, "Forms").await;
    let form = c
        .create(
            "forms",
            json!({"name": "Contact us", "published": true, "fields": [
                {"name": "email", "label": "Email", "target": "email", "required": true},
                {"name": "first", "label": "First name", "target": "first_name"},
                {"name": "role", "label": "Role", "target": "title"},
                {"name": "tel", "label": "Phone", "target": "phone"},
                {"name": "message", "label": "Message", "required": true},
            ]}),
        )
        .await;
    let form_id = form["id"].as_str().unwrap();
    let draft = c
        .create(
            "forms",
            json!({"name": "Draft", "fields": [{"name": "email", "target": "email"}]}),
        )
        .await;
    let public = |f: &str| format!("/api/v1/public/workspaces/{}/forms/{f}", c.ws);
    let submit = |f: &str| format!("{}/submissions", public(f));

    // The public sees the questions, not where the answers go.
    let (status, v) = s
        .call(Method::GET, &public(form_id), &As::Anonymous, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["name"], "Contact us");
    assert_eq!(v["questions"].as_array().unwrap().len(), 5);
    assert_eq!(v["questions"][0]["kind"], "email");
    assert!(!v.to_string().contains("first_name"), "{v}");
    // Unpublished, unknown and other workspaces' forms are not found, alike.
    let other = s.signup("Other", "other@forms.test").await;
    let other_ws = s.create_workspace(&other, "Other").await;
    for path in [
        public(draft["id"].as_str().unwrap()),
        public("0192f5e0-7d1c-7a00-8000-000000000001"),
        format!("/api/v1/public/workspaces/{other_ws}/forms/{form_id}"),
    ] {
        let (status, v) = s.call(Method::GET, &path, &As::Anonymous, None).await;
        assert_eq!(
            (status, v["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("form_not_found")),
            "{path}: {v}"
        );
        let (status, _) = s
            .call(
                Method::POST,
                &format!("{path}/submissions"),
                &As::Anonymous,
                Some(json!({"answers": {"email": "a@b.example"}})),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }

    // Refused submissions name the question and write nothing.
    for (answers, field, why) in [
        (json!({"message": "hi"}), "answers.email", "required"),
        (
            json!({"email": "not an email", "message": "hi"}),
            "answers.email",
            "email",
        ),
        (
            json!({"email": "ada@forms.example"}),
            "answers.message",
            "required",
        ),
        (
            json!({"email": "ada@forms.example", "message": "hi", "salary": "1"}),
            "answers.salary",
            "not a question",
        ),
        (
            json!({"email": "ada@forms.example", "message": "x".repeat(10_001)}),
            "answers.message",
            "longer than",
        ),
    ] {
        let (status, v) = s
            .call(
                Method::POST,
                &submit(form_id),
                &As::Anonymous,
                Some(json!({ "answers": answers })),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {v}");
        let m = v["message"].as_str().unwrap();
        assert!(m.contains(field) && m.contains(why), "{field}/{why}: {m}");
    }
    let (_, contacts) = c.get("contacts").await;
    assert_eq!(
        contacts["records"].as_array().unwrap().len(),
        0,
        "{contacts}"
    );
    let (_, subs) = c.get("form_submissions").await;
    assert_eq!(subs["records"].as_array().unwrap().len(), 0, "{subs}");

    // A first submission creates the contact and the submission about it.
    let (status, v) = s
        .call(Method::POST, &submit(form_id), &As::Anonymous, Some(json!({"answers": {"email": "Ada.L@Forms.example", "first": "Ada", "message": "Call me", "tel": "+1 415 555 0100"}})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert!(
        v["submission_id"].is_string() && v.get("contact").is_none(),
        "{v}"
    );
    let (_, contacts) = c.get("contacts").await;
    let items = contacts["records"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{contacts}");
    let contact = items[0]["id"].as_str().unwrap().to_string();
    assert_eq!(items[0]["fields"]["first_name"], "Ada");
    assert_eq!(items[0]["fields"]["emails"], json!(["ada.l@forms.example"]));

    // A second one, by an HTML form post with the email written differently, fills what the
    // same contact lacked (its title), never what it has (its phone), and adds a second
    // submission that keeps every answer.
    let r = s
        .client
        .post(format!("{}{}", s.base, submit(form_id)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=ada.l%40forms.example&role=CTO&tel=%2B44+20+7946+0000&message=Again")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let (_, contacts) = c.get("contacts").await;
    let items = contacts["records"].as_array().unwrap();
    assert_eq!(items.len(), 1, "the same contact: {contacts}");
    assert_eq!(items[0]["fields"]["title"], "CTO");
    assert_eq!(items[0]["fields"]["first_name"], "Ada", "kept");
    assert_eq!(
        items[0]["fields"]["phones"].as_array().unwrap().len(),
        1,
        "the phone it had is kept, the new one is on the submission: {contacts}"
    );
    let (status, timeline) = c.get(&format!("contacts/{contact}/timeline")).await;
    assert_eq!(status, StatusCode::OK, "{timeline}");
    let subs: Vec<&Value> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "form_submission")
        .collect();
    assert_eq!(subs.len(), 2, "{timeline}");
    // Other content types are refused, naming the two accepted.
    let r = s
        .client
        .post(format!("{}{}", s.base, submit(form_id)))
        .header("content-type", "text/plain")
        .body("email=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // The workspace's audit log has the submissions, without the submitter's address.
    let (_, audit) = c.get("audit").await;
    let entries: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "crm.form_submitted")
        .collect();
    assert_eq!(entries.len(), 2, "{audit}");
    assert!(entries.iter().all(|e| e["details"].get("ip").is_none()));
}
server_test!(a_public_form_submission_creates_or_updates_its_contact_and_lands_on_the_timeline);
