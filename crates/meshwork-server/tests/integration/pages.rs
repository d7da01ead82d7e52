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
/// A form posted by htmx (it says so in `HX-Request`), answered with a part of a page.
async fn post_hx(
    s: &TestServer,
    who: &Session,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String, String) {
    post_form_with(s, who, path, fields, &[("hx-request", "true")]).await
}

async fn post_form(
    s: &TestServer,
    who: &Session,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String, String) {
    post_form_with(s, who, path, fields, &[]).await
}

async fn post_form_with(
    s: &TestServer,
    who: &Session,
    path: &str,
    fields: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> (StatusCode, String, String) {
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    body.append_pair("csrf_token", &who.csrf);
    for (k, v) in fields {
        body.append_pair(k, v);
    }
    let mut r = plain()
        .post(format!("{}{path}", s.base))
        .header("cookie", &who.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin");
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    answer(r.body(body.finish()).send().await.unwrap()).await
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
    // A list cell's form: writers only; an outsider learns nothing; anonymous to sign-in.
    let cell = format!("/w/{ws}/contacts/{id}/cell/title");
    for (role, m) in &members {
        let (status, location, _) = get(s, &cell, Some(&m.cookie)).await;
        let expected = if *role == "viewer" {
            (StatusCode::FORBIDDEN, String::new())
        } else {
            (
                StatusCode::SEE_OTHER,
                format!("/w/{ws}/contacts/{id}#f-title"),
            )
        };
        assert_eq!((status, location), expected, "{cell} as {role}");
    }
    let (status, _, _) = get(s, &cell, Some(&outsider.cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, location, _) = get(s, &cell, None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.starts_with("/sign-in?next="), "{location}");
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
        &[("confirm", "Settings Ltd"), ("password", PASSWORD)],
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
    // Accepted by the other side; ending it then asks once more.
    let pid = list[0]["id"].as_str().unwrap().to_string();
    let (status, _, _) =
        post_form(s, &owner, &format!("/w/{other}/partners/{pid}/accept"), &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let revoke = format!("{path}/{pid}/revoke");
    let (status, _, html) = post_form(s, &owner, &revoke, &[]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    let (_, _, html) = get(s, &format!("{path}/{pid}/end"), Some(&owner.cookie)).await;
    assert!(
        html.contains("End the partnership with") && html.contains("name=\"confirm\""),
        "{html}"
    );
    let state = |list: serde_json::Value| list[0]["state"].as_str().unwrap().to_string();
    let (_, list) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{other}/partnerships"),
            &As::User(&owner),
            None,
        )
        .await;
    assert_eq!(state(list), "active");
    let (status, _, _) = post_form(s, &owner, &revoke, &[("confirm", "yes")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, list) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{other}/partnerships"),
            &As::User(&owner),
            None,
        )
        .await;
    assert_eq!(state(list), "revoked");
}
server_test!(partner_pages_need_the_partner_permissions);

/// A list's cell edits in place (issue 25): the one-field form for htmx (a browser asking for
/// it itself goes to the field on the record's page), the saved value shown back, the API's
/// message on bad input, and an edit against an old version refused with what was saved
/// meanwhile; a viewer gets no form and can change nothing; only the list's columns edit.
async fn a_list_cell_edits_in_place_as_the_api_allows(s: &mut TestServer) {
    let owner = s.signup("Owner", "owner@cells.test").await;
    let ws = s.create_workspace(&owner, "Cells").await;
    let viewer = s.signup("Viewer", "viewer@cells.test").await;
    s.add_member(&owner, &ws, &viewer, "viewer").await;
    let (_, c) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/contacts"),
            &As::User(&owner),
            Some(json!({"first_name": "Ada", "emails": ["ada@cells.test"], "title": "Engineer"})),
        )
        .await;
    let id = c["id"].as_str().unwrap().to_string();
    let cell = format!("/w/{ws}/contacts/{id}/cell/title");
    let hx = |who: &Session, path: &str| {
        plain()
            .get(format!("{}{path}", s.base))
            .header("cookie", who.cookie.clone())
            .header("hx-request", "true")
    };
    // The list shows each writable cell as a link to its field (script opens the cell's form
    // in place instead).
    let (_, _, list) = get(s, &format!("/w/{ws}/contacts"), Some(&owner.cookie)).await;
    assert!(
        list.contains(&format!(
            "class=\"cell-link\" href=\"/w/{ws}/contacts/{id}#f-title\""
        )),
        "{list}"
    );
    // Without htmx the cell's address leads to the record's page.
    let (status, location, _) = get(s, &cell, Some(&owner.cookie)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, format!("/w/{ws}/contacts/{id}#f-title"));
    let (status, _, form) = answer(hx(&owner, &cell).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{form}");
    assert!(
        form.contains("class=\"cell-form\"") && form.contains("value=\"Engineer\""),
        "{form}"
    );
    assert!(form.contains("name=\"version\" value=\"1\""), "{form}");
    // Saved: the new value comes back as the cell.
    let (status, _, shown) =
        post_hx(s, &owner, &cell, &[("version", "1"), ("title", "Analyst")]).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert!(
        shown.contains("Analyst") && !shown.contains("<form"),
        "{shown}"
    );
    let (_, now) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/contacts/{id}"),
            &As::User(&owner),
            None,
        )
        .await;
    assert_eq!(now["fields"]["title"], "Analyst", "{now}");
    assert_eq!(
        now["fields"]["first_name"], "Ada",
        "only the cell's field changes"
    );
    // A stale version: refused, the typed value kept, what was saved meanwhile shown.
    let (status, _, stale) =
        post_hx(s, &owner, &cell, &[("version", "1"), ("title", "Director")]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{stale}");
    assert!(
        stale.contains("value=\"Director\"") && stale.contains("meanwhile: Analyst"),
        "{stale}"
    );
    // Bad input: the API's message beside the field, nothing saved.
    let emails = format!("/w/{ws}/contacts/{id}/cell/emails");
    let (status, _, bad) = post_form(
        s,
        &owner,
        &emails,
        &[("version", "2"), ("emails", "not an address")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    assert!(
        bad.contains("role=\"alert\"") && bad.contains("value=\"not an address\""),
        "{bad}"
    );
    let (_, now) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/contacts/{id}"),
            &As::User(&owner),
            None,
        )
        .await;
    assert_eq!(now["fields"]["emails"], json!(["ada@cells.test"]));
    // Sent by the browser itself, before script wired the form up: saved, and the list shown.
    let (status, location, _) =
        post_form(s, &owner, &cell, &[("version", "2"), ("title", "Director")]).await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, format!("/w/{ws}/contacts").as_str())
    );
    // A field that is not one of the list's columns is not edited this way.
    let (status, _, _) = post_form(
        s,
        &owner,
        &format!("/w/{ws}/contacts/{id}/cell/first_name"),
        &[("version", "3"), ("first_name", "Eve")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // A viewer's list has plain cells, and the cell's form and save are refused.
    let (_, _, list) = get(s, &format!("/w/{ws}/contacts"), Some(&viewer.cookie)).await;
    assert!(
        list.contains("Director") && !list.contains("cell-link"),
        "{list}"
    );
    let (status, _, _) = answer(hx(&viewer, &cell).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = post_form(
        s,
        &viewer,
        &cell,
        &[("version", "2"), ("title", "Viewer was here")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Signed out, htmx is told to take the whole page to sign-in, and back to the page.
    let r = plain()
        .get(format!("{}{cell}", s.base))
        .header("hx-request", "true")
        .header(
            "hx-current-url",
            format!("{}/w/{ws}/contacts?sort=name", s.base),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()["hx-redirect"],
        format!("/sign-in?next=%2Fw%2F{ws}%2Fcontacts%3Fsort%3Dname")
    );
}
server_test!(a_list_cell_edits_in_place_as_the_api_allows);

/// A multipart form as a browser sends it: text fields, then one file in the field `file`.
fn multipart(fields: &[(&str, &str)], file: (&str, &str, &[u8])) -> (String, Vec<u8>) {
    multipart_as(fields, "file", file)
}

/// A multipart form with its file in the field `field`.
fn multipart_as(
    fields: &[(&str, &str)],
    field: &str,
    file: (&str, &str, &[u8]),
) -> (String, Vec<u8>) {
    let boundary = "----meshwork-test-boundary";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\ncontent-disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    let (name, content_type, bytes) = file;
    body.extend_from_slice(
        format!("--{boundary}\r\ncontent-disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\ncontent-type: {content_type}\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_multipart(
    s: &TestServer,
    who: &Session,
    path: &str,
    form: (String, Vec<u8>),
) -> (StatusCode, String, String) {
    let r = plain()
        .post(format!("{}{path}", s.base))
        .header("cookie", &who.cookie)
        .header("content-type", form.0)
        .header("sec-fetch-site", "same-origin")
        .body(form.1)
        .send()
        .await
        .unwrap();
    answer(r).await
}

/// Files on a record's page (issue 25): attached with the page's form (the same form twice
/// stores one file), listed with their size, downloaded as an attachment that is never shown
/// inside the site; a file over 25 MiB, an empty one or a forged post stores nothing, and a
/// viewer downloads but cannot attach.
async fn files_attach_to_a_record_and_download(s: &mut TestServer) {
    let owner = s.signup("Owner", "owner@files.test").await;
    let ws = s.create_workspace(&owner, "Files").await;
    let viewer = s.signup("Viewer", "viewer@files.test").await;
    s.add_member(&owner, &ws, &viewer, "viewer").await;
    let (_, c) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/companies"),
            &As::User(&owner),
            Some(json!({"name": "Analytical Engines"})),
        )
        .await;
    let id = c["id"].as_str().unwrap().to_string();
    let page = format!("/w/{ws}/companies/{id}");
    let attach = format!("{page}/files");
    let form_id = uuid::Uuid::now_v7().to_string();
    let html_file: &[u8] = b"<script>alert(1)</script>";
    let fields = [
        ("csrf_token", owner.csrf.as_str()),
        ("form_id", form_id.as_str()),
    ];
    for _ in 0..2 {
        let (status, location, body) = post_multipart(
            s,
            &owner,
            &attach,
            multipart(&fields, ("plan v2 — draft.html", "text/html", html_file)),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
        assert_eq!(location, format!("{page}#files"));
    }
    let files_path = format!("/api/v1/workspaces/{ws}/files?linked_to={id}");
    let (_, list) = s
        .call(Method::GET, &files_path, &As::User(&owner), None)
        .await;
    assert_eq!(
        list["total"], 1,
        "the same form twice stores one file: {list}"
    );
    let file_id = list["records"][0]["id"].as_str().unwrap().to_string();
    let (_, _, shown) = get(s, &page, Some(&owner.cookie)).await;
    assert!(shown.contains(">plan v2 — draft.html</a>"), "{shown}");
    assert!(shown.contains("25 bytes"), "{shown}");
    // Downloaded as bytes and as an attachment: uploaded HTML never runs inside the site.
    for who in [&owner, &viewer] {
        let r = plain()
            .get(format!("{}/w/{ws}/files/{file_id}", s.base))
            .header("cookie", &who.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "application/octet-stream");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        let disposition = r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(disposition.starts_with("attachment;"), "{disposition}");
        assert!(
            disposition.contains("filename=\"plan v2 _ draft.html\"; filename*=UTF-8''plan%20v2%20%E2%80%94%20draft.html"),
            "{disposition}"
        );
        assert_eq!(r.bytes().await.unwrap().as_ref(), html_file);
    }
    // Too large: refused on the record's page, naming the file; nothing stored.
    let big = vec![b'x'; meshwork_app::crm::MAX_FILE_BYTES + 1];
    let form_id = uuid::Uuid::now_v7().to_string();
    let (status, _, body) = post_multipart(
        s,
        &owner,
        &attach,
        multipart(
            &[("csrf_token", &owner.csrf), ("form_id", &form_id)],
            ("huge.bin", "application/octet-stream", &big),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(
        body.contains("huge.bin") && body.contains("25 MiB") && body.contains("id=\"file-error\""),
        "{body}"
    );
    // Empty, or posted without the session's token, or by a viewer: nothing stored.
    let (status, _, body) = post_multipart(
        s,
        &owner,
        &attach,
        multipart(
            &[("csrf_token", &owner.csrf), ("form_id", &form_id)],
            ("empty.txt", "text/plain", b""),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("empty.txt is empty"), "{body}");
    let (status, _, _) = post_multipart(
        s,
        &owner,
        &attach,
        multipart(
            &[("csrf_token", "forged"), ("form_id", &form_id)],
            ("a.txt", "text/plain", b"a"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = post_multipart(
        s,
        &viewer,
        &attach,
        multipart(
            &[("csrf_token", &viewer.csrf), ("form_id", &form_id)],
            ("a.txt", "text/plain", b"a"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, list) = s
        .call(Method::GET, &files_path, &As::User(&owner), None)
        .await;
    assert_eq!(list["total"], 1, "{list}");
    let (_, _, viewer_page) = get(s, &page, Some(&viewer.cookie)).await;
    assert!(viewer_page.contains("plan") && !viewer_page.contains("Attach a file"));
}
server_test!(files_attach_to_a_record_and_download);

/// Saved views (issue 25): a member saves a list's search and sort under a name and finds it
/// above the list; a private view is theirs alone, a shared one everybody's; a viewer keeps
/// views but cannot share them; a shared view is removed by its author or an admin, and the
/// audit log has both; a bad name is named beside the form.
async fn saved_views_are_kept_per_person_and_shared_per_workspace(s: &mut TestServer) {
    let owner = s.signup("Owner", "owner@views.test").await;
    let ws = s.create_workspace(&owner, "Views").await;
    let member = s.signup("Member", "member@views.test").await;
    s.add_member(&owner, &ws, &member, "member").await;
    let viewer = s.signup("Viewer", "viewer@views.test").await;
    s.add_member(&owner, &ws, &viewer, "viewer").await;
    let list = format!("/w/{ws}/contacts");
    let save = format!("{list}/views");
    // The member keeps one of their own, and shares another.
    let (status, location, body) = post_form(
        s,
        &member,
        &save,
        &[
            ("view", "q=ada&sort=-updated&cursor=abc"),
            ("name", "Ada, recent"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(location, format!("{list}?q=ada&sort=-updated"));
    let (status, _, body) = post_form(
        s,
        &member,
        &save,
        &[
            ("view", "sort=name"),
            ("name", "By name"),
            ("shared", "yes"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let (_, _, page) = get(
        s,
        &format!("{list}?q=ada&sort=-updated"),
        Some(&member.cookie),
    )
    .await;
    assert!(
        page.contains(">Ada, recent</a>") && page.contains(">By name</a>"),
        "{page}"
    );
    assert!(page.contains("aria-current=\"page\">Ada, recent"), "{page}");
    assert!(
        !page.contains("Save this view"),
        "a saved view is not offered again"
    );
    // Others see the shared view only.
    let (_, _, page) = get(s, &list, Some(&viewer.cookie)).await;
    assert!(
        page.contains(">By name</a>") && !page.contains("Ada, recent"),
        "{page}"
    );
    assert!(
        !page.contains("aria-label=\"Delete the view By name\""),
        "a viewer cannot remove a shared view"
    );
    // A viewer keeps views of their own, but cannot share one.
    let (status, _, body) = post_form(
        s,
        &viewer,
        &save,
        &[
            ("view", "q=lovelace"),
            ("name", "Lovelace"),
            ("shared", "yes"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body.contains("may keep views for itself but not share them"),
        "{body}"
    );
    let (status, _, _) = post_form(
        s,
        &viewer,
        &save,
        &[("view", "q=lovelace"), ("name", "Lovelace")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // Names: required, unique on the list (whatever the case), at most 80 characters.
    for (name, says) in [
        ("  ", "Give the view a name"),
        ("by NAME", "There is already a view called"),
        (&"x".repeat(81), "at most 80 characters"),
    ] {
        let (status, _, body) =
            post_form(s, &member, &save, &[("view", "q=x"), ("name", name)]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert!(
            body.contains(says) && body.contains("id=\"view-name-error\""),
            "{name}: {body}"
        );
    }
    // A view's query must be one the list takes.
    let (status, _, body) = post_form(
        s,
        &member,
        &save,
        &[("view", "sort=shoe_size"), ("name", "Shoes")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("role=\"alert\""), "{body}");
    // Removing: the viewer cannot remove the shared view; the owner (an admin role) can.
    let (_, _, page) = get(s, &list, Some(&owner.cookie)).await;
    let id = page
        .split(&format!("action=\"{list}/views/"))
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_string();
    let delete = format!("{list}/views/{id}/delete");
    let (status, _, _) = post_form(s, &viewer, &delete, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = post_form(s, &owner, &delete, &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = get(s, &list, Some(&member.cookie)).await;
    assert!(
        !page.contains("By name") && page.contains("Ada, recent"),
        "{page}"
    );
    let (status, _, _) = post_form(s, &owner, &delete, &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, audit) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/audit"),
            &As::User(&owner),
            None,
        )
        .await;
    let kinds = kinds(&audit);
    assert!(
        kinds.contains(&"view.shared") && kinds.contains(&"view.deleted"),
        "{kinds:?}"
    );
}
server_test!(saved_views_are_kept_per_person_and_shared_per_workspace);

/// Merging a duplicate from a record's page (issue 25): the record's name finds the duplicate,
/// the preview is a dry run that changes nothing and shows each field after the merge, and the
/// confirmed merge is the API's (this record stays, lists united, the duplicate gone, audited);
/// a viewer cannot reach it.
async fn a_duplicate_is_merged_after_a_preview(s: &mut TestServer) {
    let owner = s.signup("Owner", "owner@merge.test").await;
    let ws = s.create_workspace(&owner, "Merge").await;
    let viewer = s.signup("Viewer", "viewer@merge.test").await;
    s.add_member(&owner, &ws, &viewer, "viewer").await;
    let make = |fields: serde_json::Value| {
        let s = &*s;
        let ws = ws.clone();
        let owner = owner.clone();
        async move {
            let (status, c) = s
                .call(
                    Method::POST,
                    &format!("/api/v1/workspaces/{ws}/contacts"),
                    &As::User(&owner),
                    Some(fields),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{c}");
            c["id"].as_str().unwrap().to_string()
        }
    };
    let keep = make(json!({"first_name": "Ada", "last_name": "Lovelace", "emails": ["ada@one.test"], "title": "Analyst"})).await;
    let dup = make(json!({"first_name": "Ada", "last_name": "Lovelace", "emails": ["ada@two.test"], "phones": ["+44 20 7946 0000"]})).await;
    let other = make(json!({"first_name": "Charles", "emails": ["charles@one.test"]})).await;
    let merge = format!("/w/{ws}/contacts/{keep}/merge");
    // The record's own name finds its duplicate, and only it.
    let (status, _, page) = get(s, &merge, Some(&owner.cookie)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(&format!("other={dup}")), "{page}");
    assert!(!page.contains(&format!("other={keep}")) && !page.contains(&format!("other={other}")));
    // The preview changes nothing and shows the result.
    let (status, _, page) = get(
        s,
        &format!("{merge}?q=ada&other={dup}"),
        Some(&owner.cookie),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("ada@one.test, ada@two.test"), "{page}");
    assert!(page.contains("+44 20 7946 0000") && page.contains("Nothing has changed yet."));
    let read = |id: String| {
        let s = &*s;
        let ws = ws.clone();
        let owner = owner.clone();
        async move {
            s.call(
                Method::GET,
                &format!("/api/v1/workspaces/{ws}/contacts/{id}"),
                &As::User(&owner),
                None,
            )
            .await
        }
    };
    assert_eq!(read(dup.clone()).await.0, StatusCode::OK);
    // A viewer reaches neither the page nor the merge.
    let (status, _, _) = get(s, &merge, Some(&viewer.cookie)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = post_form(s, &viewer, &merge, &[("other", &dup)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Merged: this record stays with both emails, the duplicate is gone, and it is audited.
    let (status, location, _) = post_form(s, &owner, &merge, &[("other", &dup)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, format!("/w/{ws}/contacts/{keep}#timeline"));
    let (_, kept) = read(keep.clone()).await;
    assert_eq!(
        kept["fields"]["emails"],
        json!(["ada@one.test", "ada@two.test"]),
        "{kept}"
    );
    assert_eq!(kept["fields"]["title"], "Analyst");
    assert_eq!(read(dup.clone()).await.0, StatusCode::NOT_FOUND);
    let (_, audit) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/audit"),
            &As::User(&owner),
            None,
        )
        .await;
    assert!(kinds(&audit).contains(&"crm.merged"));
    // Merging it again: the duplicate is gone, said on the page.
    let (status, _, page) = get(s, &format!("{merge}?other={dup}"), Some(&owner.cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("role=\"alert\""), "{page}");
}
server_test!(a_duplicate_is_merged_after_a_preview);

/// Pipelines edited in the browser (issue 25): stages renamed (their id kept, so deals stay),
/// reordered, added, closed as won; a stage that holds a deal is not removed, nor a pipeline
/// with deals; an edit against an old version is refused; a member cannot edit.
async fn pipelines_and_stages_are_edited_and_deals_never_lose_their_stage(s: &mut TestServer) {
    let owner = s.signup("Owner", "owner@pipes.test").await;
    let ws = s.create_workspace(&owner, "Pipes").await;
    let member = s.signup("Member", "member@pipes.test").await;
    s.add_member(&owner, &ws, &member, "member").await;
    let (_, p) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/pipelines"),
            &As::User(&owner),
            Some(json!({"name": "Sales", "stages": [{"name": "Lead"}, {"name": "Demo"}, {"name": "Won", "won": true}]})),
        )
        .await;
    let pid = p["id"].as_str().unwrap().to_string();
    let (status, deal) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/deals"),
            &As::User(&owner),
            Some(json!({"name": "Big one", "pipeline": pid, "stage": "lead"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{deal}");
    let deal_id = deal["id"].as_str().unwrap().to_string();
    let page = format!("/w/{ws}/pipelines");
    let (status, _, html) = get(s, &page, Some(&owner.cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("value=\"Demo\"") && html.contains("name=\"s3_name\""),
        "{html}"
    );
    let (status, _, _) = get(s, &page, Some(&member.cookie)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let save = format!("{page}/{pid}");
    // Rename Lead (the deal's stage), put Demo first, add Proposal, remove nothing.
    let (status, location, body) = post_form(
        s,
        &owner,
        &save,
        &[
            ("version", "1"),
            ("name", "Sales EMEA"),
            ("s0_id", "lead"),
            ("s0_name", "Qualified lead"),
            ("s0_position", "2"),
            ("s0_outcome", "open"),
            ("s1_id", "demo"),
            ("s1_name", "Demo"),
            ("s1_position", "1"),
            ("s1_outcome", "open"),
            ("s2_id", "won"),
            ("s2_name", "Won"),
            ("s2_position", "4"),
            ("s2_outcome", "won"),
            ("s3_id", ""),
            ("s3_name", "Proposal"),
            ("s3_position", "3"),
            ("s3_outcome", "open"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(location, format!("{page}#p-{pid}"));
    let (_, p) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/pipelines/{pid}"),
            &As::User(&owner),
            None,
        )
        .await;
    assert_eq!(p["fields"]["name"], "Sales EMEA");
    let names: Vec<&str> = p["fields"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Demo", "Qualified lead", "Proposal", "Won"]);
    assert_eq!(
        p["fields"]["stages"][1]["id"], "lead",
        "a renamed stage keeps its id"
    );
    let (_, d) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/deals/{deal_id}"),
            &As::User(&owner),
            None,
        )
        .await;
    assert_eq!(d["fields"]["stage"], "lead");
    // The old version again: refused, the page shows what is saved now.
    let (status, _, body) = post_form(
        s,
        &owner,
        &save,
        &[
            ("version", "1"),
            ("name", "Stale"),
            ("s0_id", "lead"),
            ("s0_name", "Lead"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body.contains("Someone changed this pipeline") && body.contains("value=\"Sales EMEA\"")
    );
    // Removing the deal's stage is refused with the count; nothing changes.
    let (status, _, body) = post_form(
        s,
        &owner,
        &save,
        &[
            ("version", "2"),
            ("name", "Sales EMEA"),
            ("s0_id", "demo"),
            ("s0_name", "Demo"),
            ("s1_id", "lead"),
            ("s1_name", "Qualified lead"),
            ("s1_remove", "yes"),
            ("s2_id", "won"),
            ("s2_name", "Won"),
            ("s2_outcome", "won"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.contains("1 deal is in the stage “Qualified lead”"),
        "{body}"
    );
    // An empty stage goes.
    let (status, _, body) = post_form(
        s,
        &owner,
        &save,
        &[
            ("version", "2"),
            ("name", "Sales EMEA"),
            ("s0_id", "demo"),
            ("s0_name", "Demo"),
            ("s0_remove", "yes"),
            ("s1_id", "lead"),
            ("s1_name", "Qualified lead"),
            ("s2_id", "won"),
            ("s2_name", "Won"),
            ("s2_outcome", "won"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    // A pipeline with a deal is not deleted.
    let (status, _, body) =
        post_form(s, &owner, &format!("{save}/delete"), &[("confirm", "yes")]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body.contains("1 deal uses this pipeline"), "{body}");
    // The API keeps the same rule: the deal's stage stays.
    let (status, refused) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/workspaces/{ws}/pipelines/{pid}"),
            &As::User(&owner),
            Some(json!({"fields": {"stages": [{"name": "Won", "won": true}]}})),
        )
        .await;
    assert_eq!(refused["code"], "record_in_use", "{status} {refused}");
    let (status, _, _) = post_form(s, &member, &save, &[("version", "3"), ("name", "Mine")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
server_test!(pipelines_and_stages_are_edited_and_deals_never_lose_their_stage);

/// The profile on the account page (issue 25): name, company and job title saved; a new email
/// needs the password and moves the account only through the link sent to it; a picture is
/// uploaded (images only, 2 MiB at most), shown to its owner alone, and removed.
async fn the_profile_and_its_picture_are_edited_on_the_account_page(s: &mut TestServer) {
    let me = s.signup("Grace Hopper", "grace@profile.test").await;
    let other = s.signup("Other", "other@profile.test").await;
    let fields = |name: &'static str, email: &'static str, password: &'static str| {
        vec![
            ("name", name),
            ("email", email),
            ("company", "Navy"),
            ("job_title", "Rear admiral"),
            ("current_password", password),
        ]
    };
    let (status, location, body) = post_form(
        s,
        &me,
        "/settings/profile",
        &fields("Grace B. Hopper", "grace@profile.test", ""),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(location, "/settings?done=profile#profile");
    let (_, profile) = s
        .call(Method::GET, "/api/v1/me", &As::User(&me), None)
        .await;
    assert_eq!(
        (
            profile["name"].as_str(),
            profile["company"].as_str(),
            profile["job_title"].as_str()
        ),
        (Some("Grace B. Hopper"), Some("Navy"), Some("Rear admiral")),
        "{profile}"
    );
    // A new address without the password: refused beside the field, what was typed kept.
    let (status, _, body) = post_form(
        s,
        &me,
        "/settings/profile",
        &fields("Grace B. Hopper", "amazing@profile.test", ""),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body.contains("value=\"amazing@profile.test\"") && body.contains("role=\"alert\""),
        "{body}"
    );
    let (status, location, _) = post_form(
        s,
        &me,
        "/settings/profile",
        &fields("Grace B. Hopper", "amazing@profile.test", PASSWORD),
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/settings?done=email#profile")
    );
    let (_, profile) = s
        .call(Method::GET, "/api/v1/me", &As::User(&me), None)
        .await;
    assert_eq!(
        profile["email"], "grace@profile.test",
        "not moved before the link is opened"
    );
    // The picture: not an image, refused; a PNG, kept and shown to its owner only.
    let not_image = multipart_as(
        &[("csrf_token", &me.csrf)],
        "picture",
        ("me.txt", "text/plain", b"hello"),
    );
    let (status, _, html) = post_multipart(s, &me, "/settings/picture", not_image).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("PNG, JPEG, GIF or WebP") && html.contains("id=\"picture-error\""),
        "{html}"
    );
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    png.extend_from_slice(&[0; 64]);
    let form = multipart_as(
        &[("csrf_token", &me.csrf)],
        "picture",
        ("me.png", "image/png", &png),
    );
    let (status, location, html) = post_multipart(s, &me, "/settings/picture", form).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(location, "/settings?done=picture#profile");
    let r = plain()
        .get(format!("{}/settings/picture", s.base))
        .header("cookie", &me.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().as_ref(), png.as_slice());
    let (status, _, _) = get(s, "/settings/picture", Some(&other.cookie)).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another account's page has only its own"
    );
    let (_, _, page) = get(s, "/settings", Some(&me.cookie)).await;
    assert!(page.contains("src=\"/settings/picture\""));
    let (status, _, _) = post_form(s, &me, "/settings/picture/remove", &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = get(s, "/settings/picture", Some(&me.cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
server_test!(the_profile_and_its_picture_are_edited_on_the_account_page);

/// Partnerships with other servers in the browser (issue 25): an invitation is created and
/// shown once, a damaged one pasted is refused beside the field with what was pasted kept, the
/// pending partnership has its page and is withdrawn; a viewer can do none of it. (The run
/// across two servers is `overlap_two_servers`, through the same app services.)
async fn remote_partnerships_are_made_from_the_partners_page(s: &mut TestServer) {
    let owner = s.signup("Owner", "owner@remote-pages.test").await;
    let ws = s.create_workspace(&owner, "Remote Pages").await;
    let viewer = s.signup("Viewer", "viewer@remote-pages.test").await;
    s.add_member(&owner, &ws, &viewer, "viewer").await;
    let base = format!("/w/{ws}/partners");
    let (status, _, html) = post_form(s, &owner, &format!("{base}/remote/invite"), &[]).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let invitation = html
        .split("readonly>")
        .nth(1)
        .and_then(|t| t.split("</textarea>").next())
        .unwrap()
        .to_string();
    assert!(invitation.starts_with("mwinv1."), "{html}");
    assert!(html.contains("shown only now"));
    // Shown once: the list has the pending invitation, not its text.
    let (_, _, list) = get(s, &base, Some(&owner.cookie)).await;
    assert!(list.contains("An invitation not accepted yet") && !list.contains(&invitation));
    let (_, remote) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/remote-partnerships"),
            &As::User(&owner),
            None,
        )
        .await;
    let pid = remote[0]["id"].as_str().unwrap().to_string();
    let (status, _, page) = get(s, &format!("{base}/remote/{pid}"), Some(&owner.cookie)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("State: pending")
            && page.contains(&format!("action=\"{base}/remote/{pid}/sharing\""))
    );
    // A damaged invitation, and this workspace's own: refused beside the field.
    for pasted in ["hello", invitation.as_str()] {
        let (status, _, html) = post_form(
            s,
            &owner,
            &format!("{base}/remote/join"),
            &[("invitation", pasted)],
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            html.contains("id=\"join-error\"") && html.contains(&format!(">{pasted}</textarea>")),
            "{html}"
        );
    }
    // A viewer (no partners.read) can neither see nor change any of it.
    let (status, _, _) = get(s, &format!("{base}/remote/{pid}"), Some(&viewer.cookie)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = post_form(s, &viewer, &format!("{base}/remote/invite"), &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = post_form(s, &viewer, &format!("{base}/remote/{pid}/revoke"), &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Withdrawn by its owner.
    let (status, location, _) =
        post_form(s, &owner, &format!("{base}/remote/{pid}/revoke"), &[]).await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, base.as_str())
    );
    let (_, remote) = s
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/remote-partnerships"),
            &As::User(&owner),
            None,
        )
        .await;
    assert_ne!(remote[0]["state"], "pending", "{remote}");
}
mod remote_partnership_pages {
    use super::super::common::{TestBackend, TestServer};
    async fn with(backend: TestBackend) {
        // Partners on other servers need this server's public HTTPS address.
        let Some(mut s) = TestServer::start_with(backend, |c| {
            c.public_url = "https://meshwork.test".into();
        })
        .await
        else {
            return;
        };
        super::remote_partnerships_are_made_from_the_partners_page(&mut s).await;
        s.stop().await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        with(TestBackend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        with(TestBackend::Postgres).await
    }
}

async fn add_folder(
    s: &TestServer,
    who: &Session,
    ws: &str,
    path: &str,
    action: &str,
    source: &str,
) -> (StatusCode, String, String) {
    let fields = [
        ("kind", "folder"),
        ("source", source),
        ("path", path),
        ("every_minutes", "5"),
        ("action", action),
    ];
    post_form(s, who, &format!("/w/{ws}/connectors/new"), &fields).await
}

/// The connectors pages: admins only; the scopes are shown before connecting; settings are
/// tried, then added; the connector's page shows its history and its settings with the
/// password hidden; disconnecting asks once more.
async fn connector_pages_add_show_and_disconnect_a_connector(s: &mut TestServer) {
    let owner = s.signup("Owner", "owner@connpages.test").await;
    let ws = s.create_workspace(&owner, "Conn Pages Inc").await;
    let member = s.signup("Member", "member@connpages.test").await;
    s.add_member(&owner, &ws, &member, "member").await;
    let (status, _, _) = get(s, &format!("/w/{ws}/connectors"), Some(&member.cookie)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, html) = get(s, &format!("/w/{ws}/connectors"), Some(&owner.cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("directory:read")
            && html.contains("acl:read")
            && html.contains("permissions:read"),
        "scopes before connecting"
    );
    let (status, _, html) = get(
        s,
        &format!("/w/{ws}/connectors/new?kind=folder"),
        Some(&owner.cookie),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("files:read"));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "tapir greetings").unwrap();
    let path = dir.path().display().to_string();
    let (status, _, html) = add_folder(s, &owner, &ws, &path, "try", "files").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("It works: 1 files"), "{html}");
    let (status, _, html) = add_folder(s, &owner, &ws, &path, "add", "Bad Name").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("field `source`"), "{html}");
    assert!(html.contains(&path), "what was typed is kept");
    let (status, location, _) = add_folder(s, &owner, &ws, &path, "add", "files").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.contains("done=added"), "{location}");
    let started = std::time::Instant::now();
    let html = loop {
        let (_, _, html) = get(s, &location, Some(&owner.cookie)).await;
        if html.contains("state-done") {
            break html;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{html}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(html.contains("1 documents: 1 read"), "{html}");
    assert!(html.contains("The connector is added"));
    let id = location
        .split('/')
        .nth(4)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let (status, _, _) = post_form(
        s,
        &owner,
        &format!("/w/{ws}/connectors/{id}/disconnect"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "asked once more");
    let (status, location, _) = post_form(
        s,
        &owner,
        &format!("/w/{ws}/connectors/{id}/disconnect"),
        &[("confirm", "yes")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.ends_with("done=disconnected"));
    let (status, _, _) = get(s, &format!("/w/{ws}/connectors/{id}"), Some(&owner.cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
server_test!(connector_pages_add_show_and_disconnect_a_connector);

/// ASVS 3.3.4, 3.7.1 and 4.3.3 on the pages: once the sign-in is more than 5 minutes old, the
/// sign-out buttons, the role controls and the export links give way to a "confirm it is you"
/// form; a wrong password is refused beside it, the right one brings them back, and a change
/// posted without it is refused with the form shown.
async fn pages_ask_for_the_password_again_before_sensitive_changes(s: &mut TestServer) {
    let owner = s.signup("Owner", "owner@confirm.test").await;
    let ws = s.create_workspace(&owner, "Confirm Co").await;
    let member = s.signup("Member", "member@confirm.test").await;
    s.add_member(&owner, &ws, &member, "member").await;
    let _elsewhere = s.login("owner@confirm.test").await;
    let path = format!("/w/{ws}/settings");
    let (_, _, html) = get(s, &path, Some(&owner.cookie)).await;
    assert!(html.contains("Change role") && html.contains("/export/contacts.csv"));
    assert!(!html.contains("Your password, to change roles"));
    let (_, _, html) = get(s, "/settings", Some(&owner.cookie)).await;
    assert!(html.contains("Sign out everywhere else"));

    s.age_session(&owner, 6).await;
    let (_, _, html) = get(s, &path, Some(&owner.cookie)).await;
    assert!(html.contains("Your password, to change roles"), "{html}");
    assert!(html.contains("Your password, to export"));
    assert!(!html.contains("Change role") && !html.contains("/export/contacts.csv"));
    let (_, _, html) = get(s, "/settings", Some(&owner.cookie)).await;
    assert!(html.contains("Your password, to sign out other devices"));
    assert!(!html.contains("Sign out everywhere else"));
    // Posted anyway, a change is refused and nothing changes.
    let (status, _, html) = post_form(
        s,
        &owner,
        &format!("{path}/members/{}/role", member.user_id),
        &[("role", "admin")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Confirm it is you first"), "{html}");
    assert_eq!(
        s.member_role(&owner, &ws, "member@confirm.test")
            .await
            .as_deref(),
        Some("member"),
        "the role is unchanged"
    );
    let (status, _, _) = post_form(s, &owner, "/settings/sessions/end-others", &[]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // A list's CSV download waits for the same confirmation, which then leads back to the list.
    s.call(
        Method::POST,
        &format!("/api/v1/workspaces/{ws}/contacts"),
        &As::User(&owner),
        Some(json!({"first_name": "Listed"})),
    )
    .await;
    let list = format!("/w/{ws}/contacts");
    let (_, _, html) = get(s, &list, Some(&owner.cookie)).await;
    assert!(
        html.contains("Your password, to download this list"),
        "{html}"
    );
    assert!(!html.contains("contacts/export.csv"));
    let (status, _, _) = get(s, &format!("{list}/export.csv?"), Some(&owner.cookie)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, location, _) = post_form(
        s,
        &owner,
        &format!("{path}/confirm"),
        &[
            ("section", "list-export"),
            ("back", &format!("{list}?")),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, format!("{list}?").as_str())
    );
    let (status, _, csv) = get(s, &format!("{list}/export.csv?"), Some(&owner.cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(csv.contains("Listed"), "{csv}");
    assert!(
        s.audit_entries(&owner, Some(&ws))
            .await
            .iter()
            .any(|e| e["kind"] == "crm.exported"
                && e["details"]["list"] == true
                && e["details"]["records"] == 1),
        "the download is audited"
    );
    s.age_session(&owner, 6).await;
    // A confirmation never leads off the workspace.
    let (_, location, _) = post_form(
        s,
        &owner,
        &format!("{path}/confirm"),
        &[
            ("section", "export"),
            ("back", "//evil.example/"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(location, format!("{path}?done=confirmed#export-h"));
    s.age_session(&owner, 6).await;
    // A wrong password is said beside the field.
    let (status, _, html) = post_form(
        s,
        &owner,
        &format!("{path}/confirm"),
        &[("section", "export"), ("password", "not my password")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("confirm-export-error"), "{html}");
    // The right one unlocks both pages for 5 minutes.
    let (status, location, _) = post_form(
        s,
        &owner,
        &format!("{path}/confirm"),
        &[("section", "export"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (
            StatusCode::SEE_OTHER,
            format!("{path}?done=confirmed#export-h").as_str()
        )
    );
    let (_, _, html) = get(s, &path, Some(&owner.cookie)).await;
    assert!(html.contains("Change role") && html.contains("/export/contacts.csv"));
    let (status, _, _) = post_form(
        s,
        &owner,
        &format!("{path}/members/{}/role", member.user_id),
        &[("role", "admin")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, location, _) = post_form(s, &owner, "/settings/sessions/end-others", &[]).await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/settings?done=sessions")
    );
    // The account page's own form works the same way.
    s.age_session(&owner, 6).await;
    let (status, location, _) = post_form(
        s,
        &owner,
        "/settings/confirm",
        &[("section", "sessions"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (
            StatusCode::SEE_OTHER,
            "/settings?done=confirmed#sessions-heading"
        )
    );
}
server_test!(pages_ask_for_the_password_again_before_sensitive_changes);
