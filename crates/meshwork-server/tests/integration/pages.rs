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
    let r = req.send().await.unwrap();
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
