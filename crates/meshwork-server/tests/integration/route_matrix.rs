//! The route matrix: every route in the OpenAPI document (which is built from the router itself,
//! so a new route is in it automatically) is called as anonymous, as each role by session and by
//! API key, by a member of another workspace, and by another workspace's key; each answer is
//! checked against the permission table (`Role::allows`). A route added without a guard fails.

use super::common::*;
use crate::server_test;
use meshwork_domain::{Permission, Role};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Routes that answer without authentication, by design. Adding one means adding it here.
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/.well-known/security.txt"),
    ("POST", "/api/v1/auth/signup"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/login/security-key"),
    ("POST", "/api/v1/auth/verify-email"),
    ("POST", "/api/v1/auth/password-reset"),
    ("POST", "/api/v1/auth/password-reset/confirm"),
    (
        "GET",
        "/api/v1/public/workspaces/{workspace_id}/forms/{form_id}",
    ),
    (
        "POST",
        "/api/v1/public/workspaces/{workspace_id}/forms/{form_id}/submissions",
    ),
];

#[derive(Debug)]
enum Guard {
    Public,
    Session,
    Workspace(Permission),
}

#[derive(Debug)]
struct Route {
    method: Method,
    path: String,
    guard: Guard,
}

fn routes(doc: &Value) -> Vec<Route> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let security = op
                .get("security")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut scopes: Vec<String> = security
                .iter()
                .flat_map(|req| req.as_object().unwrap().values())
                .flat_map(|v| {
                    v.as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s.as_str().unwrap().to_string())
                })
                .collect();
            scopes.dedup();
            let guard =
                if security.is_empty() {
                    Guard::Public
                } else if scopes.is_empty() {
                    Guard::Session
                } else {
                    assert_eq!(
                        scopes.len(),
                        1,
                        "{method} {path} names several permissions: {scopes:?}"
                    );
                    Guard::Workspace(Permission::parse(&scopes[0]).unwrap_or_else(|| {
                        panic!("{method} {path}: unknown permission {}", scopes[0])
                    }))
                };
            if matches!(guard, Guard::Workspace(_)) {
                assert!(
                    path.contains("{workspace_id}"),
                    "{method} {path} has a workspace permission but no {{workspace_id}}"
                );
            }
            out.push(Route {
                method,
                path: path.clone(),
                guard,
            });
        }
    }
    out
}

fn concrete(path: &str, ws: &str) -> String {
    let mut out = path.replace("{workspace_id}", ws);
    while let (Some(a), Some(b)) = (out.find('{'), out.find('}')) {
        out.replace_range(a..=b, &uuid::Uuid::now_v7().to_string());
    }
    out
}

fn body_for(method: &Method) -> Option<Value> {
    (method != Method::GET && method != Method::DELETE).then(|| json!({}))
}

/// Whether the answer refuses the caller for who they are. A rights request's demand for a
/// fresh proof of identity (`reauthentication_required`: an API key is never one) comes after
/// the role check passed; `rights.rs` tests it.
fn denied_for_lack_of_auth(status: StatusCode, body: &Value) -> bool {
    status == StatusCode::UNAUTHORIZED
        || (status == StatusCode::FORBIDDEN && body["code"] != "reauthentication_required")
        || (status == StatusCode::NOT_FOUND && body["code"] == "workspace_not_found")
}

async fn promise_cl13b_every_route_checks_membership_and_role(s: &mut TestServer) {
    let (status, doc) = s
        .call(Method::GET, "/api/openapi.json", &As::Anonymous, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let routes = routes(&doc);
    assert!(
        routes.len() >= 25,
        "the document lists every route: {}",
        routes.len()
    );
    let public: Vec<(String, String)> = routes
        .iter()
        .filter(|r| matches!(r.guard, Guard::Public))
        .map(|r| (r.method.to_string(), r.path.clone()))
        .collect();
    let expected: Vec<(String, String)> = PUBLIC
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let mut sorted = public.clone();
    sorted.sort();
    let mut exp_sorted = expected.clone();
    exp_sorted.sort();
    assert_eq!(
        sorted, exp_sorted,
        "a route without a guard is public; list it in PUBLIC only if it must be"
    );

    // The cast: an owner, one member per role, and an outsider with a workspace of their own.
    let owner = s.signup("Owner", "owner@example.com").await;
    let ws = s.create_workspace(&owner, "A").await;
    let mut people = vec![(Role::Owner, owner.clone())];
    for role in [Role::Admin, Role::Member, Role::Viewer] {
        let p = s
            .signup(role.as_str(), &format!("{role}@example.com"))
            .await;
        s.add_member(&owner, &ws, &p, role.as_str()).await;
        people.push((role, p));
    }
    let mut keys = Vec::new();
    for role in Role::ALL {
        keys.push((role, s.create_key(&owner, &ws, role.as_str()).await));
    }
    let outsider = s.signup("Outsider", "outsider@example.com").await;
    // Account routes run as someone of their own: some end every other session of theirs.
    s.signup("Self", "self@example.com").await;
    let other_ws = s.create_workspace(&outsider, "B").await;
    let other_key = s.create_key(&outsider, &other_ws, "owner").await;

    let mut checked = 0;
    for route in &routes {
        let path = concrete(&route.path, &ws);
        let what = format!("{} {}", route.method, route.path);
        match route.guard {
            Guard::Public => continue,
            Guard::Session => {
                let (status, body) = s
                    .call(
                        route.method.clone(),
                        &path,
                        &As::Anonymous,
                        body_for(&route.method),
                    )
                    .await;
                assert_eq!(
                    (status, body["code"].as_str()),
                    (StatusCode::UNAUTHORIZED, Some("missing_authentication")),
                    "{what} as anonymous"
                );
                let (status, _) = s
                    .call(
                        route.method.clone(),
                        &path,
                        &As::Key(&keys[0].1),
                        body_for(&route.method),
                    )
                    .await;
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{what}: API keys cannot act on accounts"
                );
                // A fresh session each time: some of these routes end or change the session.
                let who = s.login("self@example.com").await;
                if route.method != Method::GET {
                    let (status, body) = s
                        .call(
                            route.method.clone(),
                            &path,
                            &As::UserNoCsrf(&who),
                            body_for(&route.method),
                        )
                        .await;
                    assert_eq!(
                        (status, body["code"].as_str()),
                        (StatusCode::FORBIDDEN, Some("csrf_token_invalid")),
                        "{what} without CSRF"
                    );
                }
                let (status, body) = s
                    .call(
                        route.method.clone(),
                        &path,
                        &As::User(&who),
                        body_for(&route.method),
                    )
                    .await;
                assert!(
                    !denied_for_lack_of_auth(status, &body),
                    "{what} as a signed-in user: {status} {body}"
                );
            }
            Guard::Workspace(permission) => {
                let (status, body) = s
                    .call(
                        route.method.clone(),
                        &path,
                        &As::Anonymous,
                        body_for(&route.method),
                    )
                    .await;
                assert_eq!(
                    (status, body["code"].as_str()),
                    (StatusCode::UNAUTHORIZED, Some("missing_authentication")),
                    "{what} as anonymous"
                );
                let (status, body) = s
                    .call(
                        route.method.clone(),
                        &path,
                        &As::Key("mwk_not-a-real-key"),
                        body_for(&route.method),
                    )
                    .await;
                assert_eq!(
                    (status, body["code"].as_str()),
                    (StatusCode::UNAUTHORIZED, Some("invalid_api_key")),
                    "{what} with a bad key"
                );
                // Outsiders learn nothing, not even that the workspace exists.
                for who in [As::User(&outsider), As::Key(&other_key)] {
                    let (status, body) = s
                        .call(route.method.clone(), &path, &who, body_for(&route.method))
                        .await;
                    assert_eq!(
                        (status, body["code"].as_str()),
                        (StatusCode::NOT_FOUND, Some("workspace_not_found")),
                        "{what} from another workspace"
                    );
                }
                let unknown = concrete(&route.path, &uuid::Uuid::now_v7().to_string());
                let (status, _) = s
                    .call(
                        route.method.clone(),
                        &unknown,
                        &As::User(&owner),
                        body_for(&route.method),
                    )
                    .await;
                assert_eq!(
                    status,
                    StatusCode::NOT_FOUND,
                    "{what} on an unknown workspace"
                );
                if route.method != Method::GET {
                    let (status, _) = s
                        .call(
                            route.method.clone(),
                            &path,
                            &As::UserNoCsrf(&owner),
                            body_for(&route.method),
                        )
                        .await;
                    assert_eq!(status, StatusCode::FORBIDDEN, "{what} without CSRF");
                }
                for (role, person) in &people {
                    let key = &keys.iter().find(|(r, _)| r == role).unwrap().1;
                    for who in [As::User(person), As::Key(key)] {
                        let (status, body) = s
                            .call(route.method.clone(), &path, &who, body_for(&route.method))
                            .await;
                        if role.allows(permission) {
                            assert!(
                                !denied_for_lack_of_auth(status, &body),
                                "{what} as {role}: allowed by the table, got {status} {body}"
                            );
                        } else {
                            assert_eq!(
                                (status, body["code"].as_str()),
                                (StatusCode::FORBIDDEN, Some("permission_denied")),
                                "{what} as {role}: the table denies {permission}"
                            );
                        }
                    }
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 18, "{checked}");
}
server_test!(promise_cl13b_every_route_checks_membership_and_role);
