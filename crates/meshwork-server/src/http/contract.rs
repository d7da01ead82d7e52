//! Completes the OpenAPI document so that its contract is exact: every operation declares the
//! error statuses it can answer, each with the error body's schema and the codes of the error
//! table that answer with it, and creating a thing links to reading, changing and deleting it
//! (OpenAPI links), so a stateful client or fuzzer walks real ids.
//!
//! The statuses follow from what an operation has, because the extractors decide them: a path
//! parameter can name nothing (404) or be malformed (400); a JSON body can be malformed (400),
//! too large (413), of another content type (415) or fail validation (422); a query can be
//! malformed (400) or fail validation (422); an authenticated route can be called without or
//! with dead credentials (401), by a role without the permission or a session without its CSRF
//! token (403); every route can fail (500). The limiters' 429 is declared on the few routes they
//! guard ([`LIMITED`]). Statuses a handler answers besides these are declared on the handler itself
//! (`#[utoipa::path(responses(…))]`); the Schemathesis run in CI finds any that are missing.

use meshwork_domain::ErrorCode;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

const METHODS: [&str; 5] = ["get", "put", "post", "patch", "delete"];

/// The error codes that answer with `status`, for a response's description.
fn codes_for(status: u16) -> String {
    let codes: Vec<String> = ErrorCode::ALL
        .iter()
        .filter(|c| c.status() == status)
        .map(|c| format!("`{}`", c.as_str()))
        .collect();
    codes.join(", ")
}

fn error_response(status: u16, what: &str) -> Value {
    json!({
        "description": format!("{what} The body is an error (`code` is one of {}).", codes_for(status)),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

/// What the extractors of an operation can refuse, by status.
fn error_statuses(path: &str, op: &Value) -> BTreeMap<u16, &'static str> {
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    let has_path = path.contains('{');
    let has_query = params.iter().any(|p| p["in"] == "query");
    let body = op.get("requestBody");
    let json_body = body.is_some_and(|b| b["content"].get("application/json").is_some());
    let secured = op["security"].as_array().is_some_and(|s| {
        s.iter()
            .any(|r| r.as_object().is_some_and(|o| !o.is_empty()))
    });
    let mut out = BTreeMap::new();
    if has_path || has_query || body.is_some() {
        out.insert(400, "The path, query or body is malformed.");
    }
    if secured {
        out.insert(
            401,
            "No credentials, or credentials that are unknown, expired or revoked.",
        );
        out.insert(
            403,
            "The role lacks the permission, or a session's state-changing request lacks its CSRF token.",
        );
    }
    if has_path {
        out.insert(
            404,
            "A thing the path names does not exist, or is not visible to the caller.",
        );
    }
    if body.is_some() {
        out.insert(413, "The body is larger than this route accepts.");
        out.insert(415, "The body's content type is not accepted here.");
    }
    if json_body || has_query {
        out.insert(422, "A field failed validation; the message names it.");
    }
    out.insert(500, "The server failed; the error is logged.");
    out
}

/// Statuses that only some operations answer, by (method, path): the limiters of sign-in,
/// sign-up, password resets and public forms (429), and the lock that too many wrong
/// passwords put on an account (423).
const LIMITED: &[(&str, &str, &[u16])] = &[("post", "/api/v1/auth/password-reset", &[429])];

fn extra_statuses(method: &str, path: &str) -> &'static [u16] {
    LIMITED
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map(|(_, _, s)| *s)
        .unwrap_or(&[])
}

/// Adds the error statuses each operation can answer, and the links from creations.
pub fn complete(doc: utoipa::openapi::OpenApi) -> Value {
    let mut v = serde_json::to_value(&doc).expect("the OpenAPI document serializes");
    if let Some(paths) = v["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            for m in METHODS {
                let Some(op) = item.get_mut(m) else { continue };
                let mut statuses = error_statuses(path, op);
                for status in extra_statuses(m, path) {
                    statuses.insert(
                        *status,
                        match status {
                            423 => "Too many wrong passwords: the account is locked for a while.",
                            _ => "Too many requests from this address; wait and retry.",
                        },
                    );
                }
                let responses = op["responses"]
                    .as_object_mut()
                    .expect("every operation has responses");
                for (status, what) in statuses {
                    responses
                        .entry(status.to_string())
                        .or_insert_with(|| error_response(status, what));
                }
            }
        }
        add_links(paths);
    }
    v
}

/// The names of a path's parameters, in order.
fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// JSON pointer escaping of a path, for an `operationRef`.
fn pointer(path: &str, method: &str) -> String {
    format!(
        "#/paths/{}/{method}",
        path.replace('~', "~0").replace('/', "~1")
    )
}

/// A creation (`POST P` answering 201 with the new thing's `id`) links to every operation on
/// the paths below `P/{x}` that needs no parameter but `P`'s and `x`: `x` is the created id, the
/// others are the creation's own path parameters.
fn add_links(paths: &mut Map<String, Value>) {
    let all: Vec<String> = paths.keys().cloned().collect();
    let mut links: Vec<(String, String, Value)> = Vec::new();
    for p in &all {
        let Some(created) = paths[p]
            .get("post")
            .and_then(|op| op["responses"].get("201"))
        else {
            continue;
        };
        if created.get("content").is_none() {
            continue;
        }
        let own: BTreeSet<&str> = path_params(p).into_iter().collect();
        for q in &all {
            let Some(rest) = q
                .strip_prefix(p.as_str())
                .and_then(|r| r.strip_prefix("/{"))
            else {
                continue;
            };
            let Some((x, _)) = rest.split_once('}') else {
                continue;
            };
            let needed = path_params(q);
            if !needed.iter().all(|n| own.contains(n) || *n == x) {
                continue;
            }
            for m in METHODS {
                if paths[q].get(m).is_none() {
                    continue;
                }
                let mut parameters = Map::new();
                for n in &needed {
                    let value = if *n == x {
                        "$response.body#/id".to_string()
                    } else {
                        format!("$request.path.{n}")
                    };
                    parameters.insert(format!("path.{n}"), Value::String(value));
                }
                let name = format!("{m} {q}");
                links.push((
                    p.clone(),
                    name,
                    json!({"operationRef": pointer(q, m), "parameters": parameters}),
                ));
            }
        }
    }
    for (p, name, link) in links {
        let created = &mut paths[&p]["post"]["responses"]["201"];
        let map = created
            .as_object_mut()
            .expect("a response is an object")
            .entry("links")
            .or_insert_with(|| json!({}));
        map[name.as_str()] = link;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_escape_as_json_pointers() {
        assert_eq!(
            pointer("/api/v1/workspaces/{workspace_id}", "get"),
            "#/paths/~1api~1v1~1workspaces~1{workspace_id}/get"
        );
        assert_eq!(
            path_params("/api/v1/workspaces/{workspace_id}/contacts/{id}"),
            vec!["workspace_id", "id"]
        );
    }
}
