//! Data-subject rights through the API, on both backends: a fresh authentication gates every
//! rights request (mm18); an account exports whole and deletes at once (pm11, pm12, mm17); a
//! contact erased at their request is gone everywhere and nothing brings them back (mm17).

use super::common::{As, Session, TestServer};
use crate::server_test;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// mm18: export, account deletion and erasure all refuse a session whose sign-in is more than
/// 5 minutes old, until the person gives their password again; a wrong password does not count
/// (and counts toward the lockout).
async fn promise_mm18_rights_requests_need_a_fresh_authentication(s: &mut TestServer) {
    let ada = s.signup("Ada", "ada@rights.test").await;
    let ws = s.create_workspace(&ada, "Fresh Ltd").await;
    let (_, contact) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/contacts"),
            &As::User(&ada),
            Some(json!({"first_name": "Eve", "emails": ["eve@rights.test"]})),
        )
        .await;
    let contact = contact["id"].as_str().unwrap();
    // A sign-in is fresh.
    let (status, _) = s
        .call(Method::GET, "/api/v1/me/export", &As::User(&ada), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    s.age_session(&ada, 6).await;
    for (method, path, body) in [
        (Method::GET, "/api/v1/me/export".to_string(), None),
        (
            Method::DELETE,
            "/api/v1/me".to_string(),
            Some(json!({"confirm": "ada@rights.test"})),
        ),
        (
            Method::POST,
            format!("/api/v1/workspaces/{ws}/contacts/{contact}/erase"),
            None,
        ),
    ] {
        let (status, body) = s.call(method, &path, &As::User(&ada), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(body["code"], "reauthentication_required", "{path}");
    }
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/me/reauthenticate",
            &As::User(&ada),
            Some(json!({"password": "not the password"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = s
        .call(Method::GET, "/api/v1/me/export", &As::User(&ada), None)
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a wrong password is no proof"
    );
    let (status, body) = s
        .call(
            Method::POST,
            "/api/v1/me/reauthenticate",
            &As::User(&ada),
            Some(json!({"password": "correct horse battery staple"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = s
        .call(Method::GET, "/api/v1/me/export", &As::User(&ada), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // An API key is never a person's proof: erasure refuses it even with the permission.
    let key = s.create_key(&ada, &ws, "admin").await;
    let (status, body) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/contacts/{contact}/erase"),
            &As::Key(&key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let audit = s
        .call(Method::GET, "/api/v1/me/audit", &As::User(&ada), None)
        .await
        .1;
    let kinds = super::common::kinds(&audit);
    assert!(kinds.contains(&"reauth.failed") && kinds.contains(&"reauth.succeeded"));
}
server_test!(promise_mm18_rights_requests_need_a_fresh_authentication);

/// pm12 and mm17 ("port"): the account export holds every stored field of the account, in JSON
/// and in CSV, and no secret.
async fn promise_pm12_an_account_exports_as_json_and_csv(s: &mut TestServer) {
    let ada = s.signup("Ada Export", "ada@export.test").await;
    s.create_workspace(&ada, "Exported Ltd").await;
    let (status, body) = s
        .call(Method::GET, "/api/v1/me/export", &As::User(&ada), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["profile"]["email"], "ada@export.test");
    assert_eq!(body["profile"]["name"], "Ada Export");
    assert_eq!(body["profile"]["workspaces"][0]["name"], "Exported Ltd");
    assert!(!body["sessions"].as_array().unwrap().is_empty());
    assert!(!body["audit"].as_array().unwrap().is_empty());
    let text = body.to_string();
    assert!(!text.contains("argon2") && !text.contains("password_hash"));
    let r = s
        .req(Method::GET, "/api/v1/me/export?format=csv", &As::User(&ada))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("section,item,field,value"));
    assert!(csv.contains("profile,,email,ada@export.test"), "{csv}");
    assert!(
        csv.contains("profile,,workspaces[0].name,Exported Ltd"),
        "{csv}"
    );
    let (status, body) = s
        .call(
            Method::GET,
            "/api/v1/me/export?format=xml",
            &As::User(&ada),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["message"].as_str().unwrap().contains("format"));
}
server_test!(promise_pm12_an_account_exports_as_json_and_csv);

/// pm11 (and cl12, mm17 "erase"): deleting an account removes it and everything hanging on it
/// at once (sessions end, sign-in fails, memberships go, workspaces only it used are deleted
/// with their keys); it cannot strand a workspace others use without an owner.
async fn promise_pm11_an_account_is_deleted_at_once_with_its_data(s: &mut TestServer) {
    let ada = s.signup("Ada", "ada@delete.test").await;
    let bob = s.signup("Bob", "bob@delete.test").await;
    let solo = s.create_workspace(&ada, "Solo Ltd").await;
    s.call(
        Method::POST,
        &format!("/api/v1/workspaces/{solo}/contacts"),
        &As::User(&ada),
        Some(json!({"first_name": "Solo", "emails": ["solo@delete.test"]})),
    )
    .await;
    let shared = s.create_workspace(&bob, "Shared Ltd").await;
    s.add_member(&bob, &shared, &ada, "member").await;
    let owned = s.create_workspace(&ada, "Owned Ltd").await;
    s.add_member(&ada, &owned, &bob, "member").await;

    let (status, body) = s
        .call(
            Method::DELETE,
            "/api/v1/me",
            &As::User(&ada),
            Some(json!({"confirm": "someone@else.test"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = s
        .call(
            Method::DELETE,
            "/api/v1/me",
            &As::User(&ada),
            Some(json!({"confirm": "ada@delete.test"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("Owned Ltd"),
        "{body}"
    );
    // Bob becomes an owner of Owned Ltd; now Ada can go.
    let (status, _) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/workspaces/{owned}/members/{}", bob.user_id),
            &As::User(&ada),
            Some(json!({"role": "owner"})),
        )
        .await;
    assert!(status.is_success(), "{status}");
    let (status, body) = s
        .call(
            Method::DELETE,
            "/api/v1/me",
            &As::User(&ada),
            Some(json!({"confirm": "Ada@Delete.test"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["workspaces_deleted"], json!([solo]));

    // Gone at once: the session, the sign-in, the memberships, the solo workspace and its key.
    let (status, _) = s
        .call(Method::GET, "/api/v1/me", &As::User(&ada), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let r = s
        .login_raw("ada@delete.test", "correct horse battery staple", json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let id = meshwork_domain::UserId(ada.user_id.parse().unwrap());
    assert!(s.state().store.user(id).await.unwrap().is_none());
    for ws in [&shared, &owned] {
        let (_, members) = s
            .call(
                Method::GET,
                &format!("/api/v1/workspaces/{ws}/members"),
                &As::User(&bob),
                None,
            )
            .await;
        assert!(!members.to_string().contains(&ada.user_id), "{members}");
    }
    let solo_id: uuid::Uuid = solo.parse().unwrap();
    assert!(s.state().keyring.workspace_key(solo_id).is_err());
    assert!(s
        .state()
        .store
        .workspace(meshwork_domain::WorkspaceId(solo_id))
        .await
        .unwrap()
        .is_none());
    super::common::assert_absent(s, &["ada@delete.test", "solo@delete.test"]).await;
}
server_test!(promise_pm11_an_account_is_deleted_at_once_with_its_data);

async fn poll_import(s: &TestServer, who: &Session, ws: &str, job: &str) -> Value {
    for _ in 0..600 {
        let (status, v) = s
            .call(
                Method::GET,
                &format!("/api/v1/workspaces/{ws}/imports/{job}"),
                &As::User(who),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        if v["state"] != "running" {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the import {job} did not finish");
}

/// mm17 ("erase"): a contact erased at their request is gone from the record, its timeline and
/// search, while a note also about someone else stays; a new contact with the same email is
/// refused, and an import skips the person's row, naming why, while importing the rest.
async fn promise_mm17_an_erased_contact_is_gone_and_not_brought_back(s: &mut TestServer) {
    let ada = s.signup("Ada", "ada@erase.test").await;
    let ws = s.create_workspace(&ada, "Erase Ltd").await;
    let api = |p: &str| format!("/api/v1/workspaces/{ws}/{p}");
    let (_, erin) = s
        .call(
            Method::POST,
            &api("contacts"),
            &As::User(&ada),
            Some(json!({"first_name": "Erin", "last_name": "Erasable", "emails": ["erin@erase.test"], "phones": ["+44 20 7946 0001"]})),
        )
        .await;
    let erin = erin["id"].as_str().unwrap().to_string();
    let (_, other) = s
        .call(
            Method::POST,
            &api("contacts"),
            &As::User(&ada),
            Some(json!({"first_name": "Olga", "emails": ["olga@erase.test"]})),
        )
        .await;
    let other = other["id"].as_str().unwrap().to_string();
    let (status, only) = s
        .call(
            Method::POST,
            &api("notes"),
            &As::User(&ada),
            Some(json!({"body": "Erin asked about zebrafish pricing", "about": [erin]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{only}");
    let only = only["id"].as_str().unwrap().to_string();
    let (_, both) = s
        .call(
            Method::POST,
            &api("notes"),
            &As::User(&ada),
            Some(json!({"body": "Call with Erin and Olga", "about": [erin, other]})),
        )
        .await;
    let both = both["id"].as_str().unwrap().to_string();

    let (status, body) = s
        .call(
            Method::POST,
            &api(&format!("contacts/{erin}/erase")),
            &As::User(&ada),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["records_removed"], 2, "{body}");
    assert_eq!(body["suppressed_keys"], 1, "her email: {body}");
    for (path, gone) in [
        (format!("contacts/{erin}"), true),
        (format!("notes/{only}"), true),
        (format!("notes/{both}"), false),
        (format!("contacts/{other}"), false),
    ] {
        let (status, _) = s
            .call(Method::GET, &api(&path), &As::User(&ada), None)
            .await;
        assert_eq!(status == StatusCode::NOT_FOUND, gone, "{path}");
    }
    let (_, found) = s
        .call(
            Method::GET,
            &api("search?q=zebrafish"),
            &As::User(&ada),
            None,
        )
        .await;
    assert!(!found.to_string().contains("zebrafish"), "{found}");
    let (_, found) = s
        .call(
            Method::GET,
            &api("search?q=erasable"),
            &As::User(&ada),
            None,
        )
        .await;
    assert!(!found.to_string().contains(&erin), "{found}");

    // Not brought back: by hand (either key), or by an import.
    for doc in [
        json!({"first_name": "Erin", "emails": ["ERIN@erase.test"]}),
        json!({"first_name": "E.", "emails": ["x@erase.test", "erin@erase.test"]}),
    ] {
        let (status, body) = s
            .call(Method::POST, &api("contacts"), &As::User(&ada), Some(doc))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["code"], "suppressed", "{body}");
    }
    let csv = "First Name,Last Name,Email\nErin,Again,erin@erase.test\nNew,Person,new@erase.test\n";
    let r = s
        .req(Method::POST, &api("imports?type=contact"), &As::User(&ada))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let job = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = poll_import(s, &ada, &ws, &job).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(
        (done["rows"].as_u64(), done["rejected"].as_u64()),
        (Some(2), Some(1)),
        "{done}"
    );
    assert!(done.to_string().contains("erased"), "{done}");
    let (_, list) = s
        .call(Method::GET, &api("contacts"), &As::User(&ada), None)
        .await;
    let text = list.to_string();
    assert!(
        text.contains("new@erase.test") && !text.contains("erin@erase.test"),
        "{text}"
    );
    // The audit log says an erasure happened, not who.
    let (_, audit) = s
        .call(Method::GET, &api("audit"), &As::User(&ada), None)
        .await;
    assert!(super::common::kinds(&audit).contains(&"contact.erased"));
    assert!(!audit.to_string().contains("erin@erase.test"));
}
server_test!(promise_mm17_an_erased_contact_is_gone_and_not_brought_back);

/// The subjects of the retention warnings queued for `to`, oldest first.
async fn warnings_to(s: &TestServer, to: &str) -> Vec<String> {
    meshwork_app::mail::unsent(s.state(), 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == "retention_warning" && m.to == to)
        .map(|m| m.subject)
        .collect()
}

/// mm13: with the clock driven forward, an account unused for 12 months is warned 30, 7 and 1
/// days before its deletion (once each), then deleted with the workspace only it used; an
/// account that signs in is left alone; an account found past its date without its last
/// warning (a server down that week) gets that warning first and a day's grace.
async fn promise_mm13_inactive_accounts_are_warned_then_deleted(s: &mut TestServer) {
    use meshwork_app::retention;
    let day = 86_400_000i64;
    let idle = s.signup("Idle", "idle@retention.test").await;
    let busy = s.signup("Busy", "busy@retention.test").await;
    let late = s.signup("Late", "late@retention.test").await;
    let ws = s.create_workspace(&idle, "Idle Ltd").await;
    // An account just signed up, never signed in: active from its creation, never warned.
    let (status, _, _) = s
        .signup_with(json!({"name": "New", "email": "new@retention.test", "password": "correct horse battery staple", "confirm_age_16_or_over": true}))
        .await;
    assert!(status.is_success());
    let store = &s.state().store;
    let id = |who: &Session| meshwork_domain::UserId(who.user_id.parse().unwrap());
    let window = retention::window_ms(12);
    let now = meshwork_app::state::now_millis();
    // Idle last signed in 12 months less 31 days ago; Busy just now; Late 12 months and 3 days
    // ago, never warned.
    store
        .set_user_active(id(&idle), now - window + 31 * day)
        .await
        .unwrap();
    store
        .set_user_active(id(&late), now - window - 3 * day)
        .await
        .unwrap();

    let r = retention::run(s.state(), now).await.unwrap();
    assert_eq!(
        (r.warned, r.deleted),
        (1, 0),
        "only Late is warned today: {r:?}"
    );
    assert_eq!(
        warnings_to(s, "late@retention.test").await,
        ["Your Meshwork account will be deleted in 1 day"]
    );
    assert!(warnings_to(s, "idle@retention.test").await.is_empty());

    // Day 1: Idle is 30 days from deletion; Late's grace has passed.
    let r = retention::run(s.state(), now + day + 1).await.unwrap();
    assert_eq!((r.warned, r.deleted), (1, 1), "{r:?}");
    assert!(store.user(id(&late)).await.unwrap().is_none());
    // The same day again warns nobody twice.
    let r = retention::run(s.state(), now + day + 2).await.unwrap();
    assert_eq!((r.warned, r.deleted), (0, 0), "{r:?}");
    for d in [24, 30] {
        retention::run(s.state(), now + d * day + 1).await.unwrap();
    }
    assert_eq!(
        warnings_to(s, "idle@retention.test").await,
        [
            "Your Meshwork account will be deleted in 30 days",
            "Your Meshwork account will be deleted in 7 days",
            "Your Meshwork account will be deleted in 1 day",
        ]
    );
    assert!(
        store.user(id(&idle)).await.unwrap().is_some(),
        "not before its day"
    );
    let r = retention::run(s.state(), now + 31 * day + 1).await.unwrap();
    assert_eq!(r.deleted, 1, "{r:?}");
    assert!(store.user(id(&idle)).await.unwrap().is_none());
    let ws_id: uuid::Uuid = ws.parse().unwrap();
    assert!(store
        .workspace(meshwork_domain::WorkspaceId(ws_id))
        .await
        .unwrap()
        .is_none());
    // Busy and the new account were never warned nor deleted.
    assert!(warnings_to(s, "busy@retention.test").await.is_empty());
    assert!(warnings_to(s, "new@retention.test").await.is_empty());
    assert!(store.user(id(&busy)).await.unwrap().is_some());
}
server_test!(promise_mm13_inactive_accounts_are_warned_then_deleted);

/// mm09: the operator reads a workspace's data only under a grant an owner approved: nothing
/// while it is pending or after it is revoked or its time is up (the clock driven forward);
/// admins cannot approve; source documents are never readable; every read is in the
/// workspace's audit log with the operator's name; the owners are told by mail.
async fn promise_mm09_support_reads_only_under_an_approved_grant(s: &mut TestServer) {
    use meshwork_app::support;
    let ada = s.signup("Ada", "ada@support.test").await;
    let adam = s.signup("Adam", "adam@support.test").await;
    let ws = s.create_workspace(&ada, "Supported Ltd").await;
    s.add_member(&ada, &ws, &adam, "admin").await;
    s.call(
        Method::POST,
        &format!("/api/v1/workspaces/{ws}/contacts"),
        &As::User(&ada),
        Some(json!({"first_name": "Carla", "emails": ["carla@support.test"]})),
    )
    .await;
    let wsid = meshwork_domain::WorkspaceId(ws.parse().unwrap());
    let state = s.state();
    let now = meshwork_app::state::now_millis;
    for (operator, reason, minutes, field) in [
        ("", "why", 60, "operator"),
        ("Sam", "", 60, "reason"),
        ("Sam", "why", 0, "minutes"),
        ("Sam", "why", 100_000, "minutes"),
    ] {
        let e = support::request(state, wsid, operator, reason, minutes)
            .await
            .unwrap_err();
        assert!(
            e.message.contains(&format!("field `{field}`")),
            "{}",
            e.message
        );
    }
    let g = support::request(
        state,
        wsid,
        "Sam (support)",
        "Ticket 4411: an import fails",
        30,
    )
    .await
    .unwrap();
    assert_eq!(g.state, "pending");
    let mail = meshwork_app::mail::unsent(state, 100).await.unwrap();
    assert!(mail.iter().any(|m| m.kind == "support_request"
        && m.to == "ada@support.test"
        && m.body.contains("Ticket 4411")));
    let e = support::read(state, g.id, "contact", 10, now())
        .await
        .unwrap_err();
    assert!(e.message.contains("not approved"), "{}", e.message);

    // Owners list and approve it; an admin cannot.
    let grants = format!("/api/v1/workspaces/{ws}/support-grants");
    let (status, list) = s.call(Method::GET, &grants, &As::User(&ada), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["operator"], "Sam (support)");
    assert_eq!(list[0]["state"], "pending");
    let approve = format!("{grants}/{}/approve", g.id);
    let (status, _) = s.call(Method::POST, &approve, &As::User(&adam), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = s.call(Method::POST, &approve, &As::User(&ada), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "active");
    let until = body["expires_at"].as_i64().unwrap();

    let read = support::read(state, g.id, "contact", 10, now())
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].fields["first_name"], "Carla");
    // Documents of connected tools are not readable at all.
    let e = support::read(state, g.id, "document", 10, now())
        .await
        .unwrap_err();
    assert!(
        e.message.contains("never shown to support"),
        "{}",
        e.message
    );
    // Its time ends it (the clock driven past it).
    let e = support::read(state, g.id, "contact", 10, until + 1)
        .await
        .unwrap_err();
    assert!(e.message.contains("ended"), "{}", e.message);
    // Revoked: at once.
    let (status, body) = s
        .call(
            Method::POST,
            &format!("{grants}/{}/revoke", g.id),
            &As::User(&ada),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let e = support::read(state, g.id, "contact", 10, now())
        .await
        .unwrap_err();
    assert!(e.message.contains("revoked"), "{}", e.message);
    // A revoked grant cannot be approved again.
    let (status, _) = s.call(Method::POST, &approve, &As::User(&ada), None).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (_, audit) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/audit"),
            &As::User(&ada),
            None,
        )
        .await;
    let kinds = super::common::kinds(&audit);
    for k in [
        "support.requested",
        "support.approved",
        "support.read",
        "support.revoked",
    ] {
        assert!(kinds.contains(&k), "{k}: {kinds:?}");
    }
    let read_entry = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "support.read")
        .unwrap();
    assert_eq!(read_entry["details"]["operator"], "Sam (support)");
    assert_eq!(read_entry["details"]["records"], 1);
}
server_test!(promise_mm09_support_reads_only_under_an_approved_grant);

/// pm03 and mm07: usage is stored only as (day, feature, count) aggregates, and a workspace
/// that turns third-party processing off is left out of them at once (owners only).
async fn promise_pm03_usage_is_counted_only_as_aggregates_and_can_be_switched_off(
    s: &mut TestServer,
) {
    let ada = s.signup("Ada", "ada@usage.test").await;
    let on = s.create_workspace(&ada, "Counted Ltd").await;
    let off = s.create_workspace(&ada, "Private Ltd").await;
    let bob = s.signup("Bob", "bob@usage.test").await;
    s.add_member(&ada, &off, &bob, "admin").await;
    let processing = format!("/api/v1/workspaces/{off}/processing");
    let (status, body) = s
        .call(Method::GET, &processing, &As::User(&ada), None)
        .await;
    assert_eq!(
        (status, body["third_party"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let (status, _) = s
        .call(
            Method::PUT,
            &processing,
            &As::User(&bob),
            Some(json!({"third_party": false})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "admins cannot");
    for ws in [&on, &off] {
        for i in 0..3 {
            s.call(
                Method::POST,
                &format!("/api/v1/workspaces/{ws}/contacts"),
                &As::User(&ada),
                Some(json!({"first_name": format!("Person{i}"), "emails": [format!("p{i}@{ws}.test")]})),
            )
            .await;
        }
        s.call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/search?q=person"),
            &As::User(&ada),
            None,
        )
        .await;
    }
    // Turned off before the counts are written: its use is dropped.
    let (status, body) = s
        .call(
            Method::PUT,
            &processing,
            &As::User(&ada),
            Some(json!({"third_party": false})),
        )
        .await;
    assert_eq!(
        (status, body["third_party"].as_bool()),
        (StatusCode::OK, Some(false)),
        "{body}"
    );
    meshwork_app::usage::flush(s.state()).await.unwrap();
    let counts = meshwork_app::usage::report(s.state(), 1).await.unwrap();
    let of = |f: &str| counts.iter().find(|c| c.feature == f).map(|c| c.count);
    assert_eq!(of("crm.write"), Some(3), "{counts:?}");
    assert_eq!(of("search"), Some(1), "{counts:?}");
    // What is stored names no workspace, person or record: only day, feature and count.
    let rows = s.state().store.usage(0).await.unwrap();
    for (_, feature, _) in &rows {
        assert!(
            meshwork_app::usage::FEATURES.contains(&feature.as_str()),
            "{feature}"
        );
    }
    super::common::assert_absent(s, &["Person0@", "p0@"]).await;
    let (_, audit) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{off}/audit"),
            &As::User(&ada),
            None,
        )
        .await;
    assert!(super::common::kinds(&audit).contains(&"workspace.processing_changed"));
}
server_test!(promise_pm03_usage_is_counted_only_as_aggregates_and_can_be_switched_off);

/// mm07: the per-workspace switch is what turns every outbound processor off; with it off the
/// workspace's use reaches no counter, whatever it does afterwards.
async fn promise_mm07_a_workspace_switch_turns_processors_off(s: &mut TestServer) {
    let ada = s.signup("Ada", "ada@mm07.test").await;
    let ws = s.create_workspace(&ada, "Switched Ltd").await;
    let (status, _) = s
        .call(
            Method::PUT,
            &format!("/api/v1/workspaces/{ws}/processing"),
            &As::User(&ada),
            Some(json!({"third_party": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..5 {
        s.call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/search?q=x"),
            &As::User(&ada),
            None,
        )
        .await;
    }
    meshwork_app::usage::flush(s.state()).await.unwrap();
    assert!(meshwork_app::usage::report(s.state(), 1)
        .await
        .unwrap()
        .is_empty());
    // Switched back on, it counts again.
    s.call(
        Method::PUT,
        &format!("/api/v1/workspaces/{ws}/processing"),
        &As::User(&ada),
        Some(json!({"third_party": true})),
    )
    .await;
    s.call(
        Method::GET,
        &format!("/api/v1/workspaces/{ws}/search?q=x"),
        &As::User(&ada),
        None,
    )
    .await;
    meshwork_app::usage::flush(s.state()).await.unwrap();
    let counts = meshwork_app::usage::report(s.state(), 1).await.unwrap();
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!((counts[0].feature.as_str(), counts[0].count), ("search", 1));
}
server_test!(promise_mm07_a_workspace_switch_turns_processors_off);
