//! Every page authorised like the API (issue 25): anonymous visitors are sent to sign-in (and
//! back afterwards), an outsider learns nothing of a workspace, every member reads its
//! overview, and a form posted without the session's CSRF token or from another site changes
//! nothing.

use super::common::*;
use crate::server_test;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// A client that shows redirects instead of following them.
fn plain() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get(s: &TestServer, path: &str, cookie: Option<&str>) -> (StatusCode, String, String) {
    let mut req = plain().get(format!("{}{path}", s.base));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    answer(req.send().await.unwrap()).await
}

/// An answer as the tests read it: its status, where it redirects, and its body.
async fn answer(r: reqwest::Response) -> (StatusCode, String, String) {
    let status = r.status();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, location, r.text().await.unwrap())
}

async fn every_page_is_authorised_like_the_api(s: &mut TestServer) {
    let owner = s.signup("Owner", "owner@pages.test").await;
    let ws = s.create_workspace(&owner, "Pages Inc").await;
    let mut members = vec![owner.clone()];
    for role in ["admin", "member", "viewer"] {
        let p = s.signup(role, &format!("{role}@pages.test")).await;
        s.add_member(&owner, &ws, &p, role).await;
        members.push(p);
    }
    let outsider = s.signup("Outsider", "outsider@pages.test").await;
    let overview = format!("/w/{ws}");

    // Anonymous: every signed-in page sends to sign-in, and back to it afterwards.
    for path in ["/", "/settings", overview.as_str()] {
        let (status, location, _) = get(s, path, None).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
        assert!(location.starts_with("/sign-in?next="), "{path}: {location}");
    }
    // The public pages open for anyone.
    for path in ["/sign-in", "/sign-up", "/forgot-password"] {
        let (status, _, html) = get(s, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(html.contains("<form method=\"post\""), "{path}");
    }
    // Every member reads the overview; an outsider gets the same page as for no workspace.
    for m in &members {
        let (status, _, html) = get(s, &overview, Some(&m.cookie)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Pages Inc"));
    }
    let (status, _, html) = get(s, &overview, Some(&outsider.cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!html.contains("Pages Inc"));
    let (missing, _, missing_html) = get(
        s,
        &format!("/w/{}", uuid::Uuid::now_v7()),
        Some(&outsider.cookie),
    )
    .await;
    assert_eq!(
        (missing, missing_html),
        (status, html),
        "an outsider cannot tell"
    );

    // A form without the session's CSRF token, or posted from another site, changes nothing.
    let post = |cookie: &str, body: &str, site: &str| {
        plain()
            .post(format!("{}/workspaces", s.base))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("sec-fetch-site", site)
            .body(body.to_string())
    };
    let r = post(
        &outsider.cookie,
        "name=Forged&csrf_token=nope",
        "same-origin",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, me) = s
        .call(Method::GET, "/api/v1/me", &As::User(&outsider), None)
        .await;
    let csrf = me["csrf_token"].as_str().unwrap();
    let r = post(
        &outsider.cookie,
        &format!("name=Forged&csrf_token={csrf}"),
        "cross-site",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, list) = s
        .call(
            Method::GET,
            "/api/v1/workspaces",
            &As::User(&outsider),
            None,
        )
        .await;
    assert_eq!(list, json!([]), "nothing was created");
    // With both, it works.
    let r = post(
        &outsider.cookie,
        &format!("name=Real&csrf_token={csrf}"),
        "same-origin",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()["location"].to_str().unwrap().starts_with("/w/"));
}
server_test!(every_page_is_authorised_like_the_api);

/// Posts a page's form as a browser on this site would, with the session's CSRF token.
async fn post_form(
    s: &TestServer,
    who: &Session,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String, String) {
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    body.append_pair("csrf_token", &who.csrf);
    for (k, v) in fields {
        body.append_pair(k, v);
    }
    let r = plain()
        .post(format!("{}{path}", s.base))
        .header("cookie", &who.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body(body.finish())
        .send()
        .await
        .unwrap();
    answer(r).await
}

async fn crm_pages_are_authorised_like_the_api(s: &mut TestServer) {
    let owner = s.signup("Owner", "owner@crmpages.test").await;
    let ws = s.create_workspace(&owner, "Crm Pages Inc").await;
    let mut members = vec![("owner", owner.clone())];
    for role in ["admin", "member", "viewer"] {
        let p = s.signup(role, &format!("{role}@crmpages.test")).await;
        s.add_member(&owner, &ws, &p, role).await;
        members.push((role, p));
    }
    let viewer = members[3].1.clone();
    let member = members[2].1.clone();
    let outsider = s.signup("Outsider", "outsider@crmpages.test").await;
    let (status, contact) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/contacts"),
            &As::User(&owner),
            Some(json!({"first_name": "Hedy", "last_name": "Lamarr", "emails": ["hedy@crmpages.test"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{contact}");
    let id = contact["id"].as_str().unwrap().to_string();
    let (_, note) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/notes"),
            &As::User(&owner),
            Some(json!({"body": "Spread spectrum", "about": [id]})),
        )
        .await;
    let note_id = note["id"].as_str().unwrap();
    let pages = [
        format!("/w/{ws}/contacts"),
        format!("/w/{ws}/companies"),
        format!("/w/{ws}/deals"),
        format!("/w/{ws}/contacts/{id}"),
        format!("/w/{ws}/board"),
        format!("/w/{ws}/search?q=hedy"),
        format!("/w/{ws}/search/suggest?q=hedy"),
    ];
    let other = uuid::Uuid::now_v7();
    for path in &pages {
        // Anonymous: to sign-in and back.
        let (status, location, _) = get(s, path, None).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
        assert!(location.starts_with("/sign-in?next="), "{path}: {location}");
        // Every member reads it.
        for (role, m) in &members {
            let (status, _, html) = get(s, path, Some(&m.cookie)).await;
            assert_eq!(status, StatusCode::OK, "{path} as {role}");
            if !path.contains("/companies") && !path.contains("/deals") && !path.contains("/board")
            {
                assert!(html.contains("Hedy"), "{path} as {role}");
            }
        }
        // An outsider cannot tell the workspace exists.
        let (status, _, html) = get(s, path, Some(&outsider.cookie)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            !html.contains("Hedy") && !html.contains("Crm Pages Inc"),
            "{path}"
        );
        let (missing, _, missing_html) = get(
            s,
            &path.replace(&ws, &other.to_string()),
            Some(&outsider.cookie),
        )
        .await;
        assert_eq!(
            (missing, missing_html),
            (status, html),
            "{path}: an outsider cannot tell"
        );
    }
    // The overview counts from the index, as the lists do.
    let (_, _, html) = get(s, &format!("/w/{ws}"), Some(&viewer.cookie)).await;
    assert!(
        html.contains("Contacts</a></dt><dd>1</dd>") && html.contains("Notes</a></dt><dd>1</dd>"),
        "{html}"
    );
    // A note's search hit opens the record it is about.
    let (status, location, _) = get(
        s,
        &format!("/w/{ws}/records/{note_id}"),
        Some(&viewer.cookie),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, format!("/w/{ws}/contacts/{id}#timeline"));

    // A viewer sees no edit controls, and the server refuses their posts as the API does.
    let record = format!("/w/{ws}/contacts/{id}");
    let (_, _, html) = get(s, &record, Some(&viewer.cookie)).await;
    assert!(
        !html.contains("Save changes")
            && !html.contains("Add note")
            && !html.contains("Delete this")
    );
    let (_, _, list) = get(s, &format!("/w/{ws}/contacts"), Some(&viewer.cookie)).await;
    assert!(!list.contains("New contact"));
    let (status, _, _) = post_form(
        s,
        &viewer,
        &record,
        &[("title", "Hacker"), ("version", "1")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = post_form(
        s,
        &viewer,
        &format!("/w/{ws}/contacts"),
        &[
            ("form_id", &uuid::Uuid::now_v7().to_string()),
            ("first_name", "Sneaky"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, after) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/contacts/{id}"),
            &As::User(&owner),
            None,
        )
        .await;
    assert!(
        after["fields"].get("title").is_none(),
        "nothing changed: {after}"
    );
    let (status, _, _) = post_form(
        s,
        &viewer,
        &format!("/w/{ws}/contacts/bulk/apply"),
        &[
            ("scope", "all"),
            ("action", "delete"),
            ("confirm", "yes"),
            ("view", ""),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "bulk changes need crm.bulk");
    // Imports need crm.import, as in the API; a start names an upload that must exist.
    let (status, _, _) = get(s, &format!("/w/{ws}/import"), Some(&viewer.cookie)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, html) = post_form(
        s,
        &owner,
        &format!("/w/{ws}/import/start"),
        &[
            ("upload", &uuid::Uuid::now_v7().to_string()),
            ("type", "contact"),
            ("layout", "hubspot"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("send the file again"), "{html}");
    // A member edits in place.
    let (status, location, _) = post_form(
        s,
        &member,
        &record,
        &[("title", "Inventor"), ("version", "1")],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, record.as_str())
    );
    // An edit of what someone else changed meanwhile overwrites nothing: the page shows the
    // saved value beside the one typed.
    let (status, _, html) = post_form(
        s,
        &owner,
        &record,
        &[("title", "Actress"), ("version", "1")],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(html.contains("Saved meanwhile: Inventor"), "{html}");
    assert!(html.contains("value=\"Actress\""), "what was typed is kept");
    let (_, after) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/contacts/{id}"),
            &As::User(&owner),
            None,
        )
        .await;
    assert_eq!(after["fields"]["title"], "Inventor");
}
server_test!(crm_pages_are_authorised_like_the_api);

async fn a_form_submitted_twice_creates_one_record(s: &mut TestServer) {
    let owner = s.signup("Owner", "owner@twice.test").await;
    let ws = s.create_workspace(&owner, "Twice").await;
    let form_id = uuid::Uuid::now_v7().to_string();
    let fields = [
        ("form_id", form_id.as_str()),
        ("first_name", "Once"),
        ("emails", "once@twice.test"),
    ];
    let path = format!("/w/{ws}/contacts");
    // Two at once, as a double click sends them, then a third after.
    let (a, b) = tokio::join!(
        post_form(s, &owner, &path, &fields),
        post_form(s, &owner, &path, &fields)
    );
    let c = post_form(s, &owner, &path, &fields).await;
    for r in [&a, &b, &c] {
        assert_eq!(r.0, StatusCode::SEE_OTHER, "{}", r.2);
    }
    assert_eq!(a.1, b.1);
    assert_eq!(a.1, c.1);
    let (_, list) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/contacts"),
            &As::User(&owner),
            None,
        )
        .await;
    assert_eq!(list["total"], 1, "{list}");
    // A refused form keeps its one-time id, so correcting it still creates one record.
    let form_id = uuid::Uuid::now_v7().to_string();
    let (status, _, html) = post_form(
        s,
        &owner,
        &path,
        &[
            ("form_id", &form_id),
            ("first_name", "Bad"),
            ("emails", "not an address"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains(&form_id) && html.contains("f-emails-error"),
        "{html}"
    );
}
server_test!(a_form_submitted_twice_creates_one_record);

async fn workspace_settings_show_each_role_only_what_it_may_do(s: &mut TestServer) {
    let owner = s.signup("Owner", "owner@wsset.test").await;
    let ws = s.create_workspace(&owner, "Settings Co").await;
    let viewer = s.signup("Viewer", "viewer@wsset.test").await;
    s.add_member(&owner, &ws, &viewer, "viewer").await;
    let admin = s.signup("Admin", "admin@wsset.test").await;
    s.add_member(&owner, &ws, &admin, "admin").await;
    let outsider = s.signup("Outsider", "outsider@wsset.test").await;
    let path = format!("/w/{ws}/settings");

    let (status, _, html) = get(s, &path, Some(&owner.cookie)).await;
    assert_eq!(status, StatusCode::OK);
    for control in [
        "Rename",
        "Send invitation",
        "Create API key",
        "Audit log",
        "Delete Settings Co",
    ] {
        assert!(html.contains(control), "the owner sees {control}");
    }
    let (status, _, html) = get(s, &path, Some(&viewer.cookie)).await;
    assert_eq!(status, StatusCode::OK);
    for control in [
        "Rename",
        "Send invitation",
        "Create API key",
        "Delete Settings Co",
        "Change role",
    ] {
        assert!(!html.contains(control), "a viewer does not see {control}");
    }
    let (_, _, html) = get(s, &path, Some(&admin.cookie)).await;
    assert!(html.contains("Send invitation") && !html.contains("Delete Settings Co"));
    assert!(
        !html.contains("<option value=\"owner\""),
        "an admin cannot grant owner"
    );
    let (status, _, _) = get(s, &path, Some(&outsider.cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The server refuses what the page does not offer, as the API does.
    let (status, _, _) =
        post_form(s, &viewer, &format!("{path}/rename"), &[("name", "Mine")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = post_form(
        s,
        &admin,
        &format!("{path}/delete"),
        &[("confirm", "Settings Co")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = post_form(
        s,
        &viewer,
        &format!("{path}/members/{}/role", admin.user_id),
        &[("role", "viewer")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A wrong confirmation deletes nothing and says why beside the field.
    let (status, _, html) = post_form(
        s,
        &owner,
        &format!("{path}/delete"),
        &[("confirm", "settings co")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("delete-error"));
    let (status, _, _) = get(s, &path, Some(&owner.cookie)).await;
    assert_eq!(status, StatusCode::OK, "still there");
    // The owner renames it, then deletes it with its exact name.
    let (status, location, _) = post_form(
        s,
        &owner,
        &format!("{path}/rename"),
        &[("name", "Settings Ltd")],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (
            StatusCode::SEE_OTHER,
            format!("{path}?done=renamed").as_str()
        )
    );
    let (status, location, _) = post_form(
        s,
        &owner,
        &format!("{path}/delete"),
        &[("confirm", "Settings Ltd")],
    )
    .await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "/"));
    let (status, _, _) = get(s, &path, Some(&owner.cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
server_test!(workspace_settings_show_each_role_only_what_it_may_do);

async fn partner_pages_need_the_partner_permissions(s: &mut TestServer) {
    let owner = s.signup("Owner", "owner@partnerpages.test").await;
    let ws = s.create_workspace(&owner, "Partner Pages").await;
    let other = s.create_workspace(&owner, "Other Side").await;
    let viewer = s.signup("Viewer", "viewer@partnerpages.test").await;
    s.add_member(&owner, &ws, &viewer, "viewer").await;
    let outsider = s.signup("Outsider", "outsider@partnerpages.test").await;
    let path = format!("/w/{ws}/partners");

    let (status, _, html) = get(s, &path, Some(&owner.cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Send the invitation") && html.contains("Create population"));
    // A viewer holds no partners.read: the page is refused as the API refuses it.
    let (status, _, _) = get(s, &path, Some(&viewer.cookie)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = get(s, &path, Some(&outsider.cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = post_form(
        s,
        &viewer,
        &format!("{path}/invite"),
        &[("partner_workspace_id", &other)],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A bad id is named beside the field; a good one invites.
    let (status, _, html) = post_form(
        s,
        &owner,
        &format!("{path}/invite"),
        &[("partner_workspace_id", "nope")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Paste the id"), "{html}");
    let (status, location, _) = post_form(
        s,
        &owner,
        &format!("{path}/invite"),
        &[("partner_workspace_id", &other)],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, path.as_str())
    );
    let (_, list) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{other}/partnerships"),
            &As::User(&owner),
            None,
        )
        .await;
    assert_eq!(list[0]["state"], "pending", "{list}");
}
server_test!(partner_pages_need_the_partner_permissions);
