//! Completes the OpenAPI document so that its contract is exact: every operation declares the
//! error statuses it can answer, each with the error body's schema and the codes of the error
//! table that answer with it, and creating a thing links to reading, changing and deleting it
//! (OpenAPI links), so a stateful client or fuzzer walks real ids.
//!
//! The statuses follow from what an operation has, because the extractors decide them: a path
//! parameter can name nothing (404) or be malformed (400, or 422 as a source's name is); a JSON
//! body can be malformed (400), too large (413), of another content type (415) or fail
//! validation (422); a query can be malformed (400) or fail validation (422); an authenticated
//! route can be called without or with dead credentials (401), by a role without the
//! permission or a session without its CSRF token (403), or past the caller's allowance of
//! requests (429); every route can fail (500). The address limiters' 429 and the locked
//! account's 423 are declared on the routes they guard
//! ([`LIMITED`]). Statuses a handler answers besides these are declared on the handler itself
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
        out.insert(
            429,
            "The caller (a person or an API key) sent more requests than `auth.api_requests_per_minute` allows.",
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
    if json_body || has_query || has_path {
        out.insert(
            422,
            "A field or path segment failed validation; the message names it.",
        );
    }
    out.insert(500, "The server failed; the error is logged.");
    out
}

/// Statuses that only some operations answer, by (method, path): the limiters of sign-in,
/// sign-up, password resets and public forms (429), the lock that too many wrong passwords put
/// on an account (423), and a virus scanner that does not answer (503).
const LIMITED: &[(&str, &str, &[u16])] = &[
    ("post", "/api/v1/auth/password-reset", &[429]),
    ("patch", "/api/v1/me", &[423]),
    ("post", "/api/v1/me/password", &[423]),
    ("post", "/api/v1/me/mfa/totp/confirm", &[423]),
    ("post", "/api/v1/me/mfa/totp/disable", &[423]),
    ("post", "/api/v1/me/mfa/recovery-codes", &[423]),
    ("post", "/api/v1/me/reauthenticate", &[409, 423]),
    ("delete", "/api/v1/me", &[423]),
    ("post", "/api/v1/workspaces/{workspace_id}/api-keys", &[423]),
    ("delete", "/api/v1/workspaces/{workspace_id}", &[423]),
    (
        "put",
        "/api/v1/workspaces/{workspace_id}/files/{record_id}/content",
        &[503],
    ),
];

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
    // The API's version (its paths are /api/v1), not the build's: the public document tells no
    // one which release, with which known flaws, a server runs (ASVS 14.3.3).
    v["info"]["version"] = json!("1");
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
                            409 => "Two-factor authentication is not on: send the password.",
                            503 => "The virus scanner (`clamd`) could not check the file; nothing was stored.",
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
                // Error answers declared on a handler without words get the codes they carry.
                for (status, response) in responses.iter_mut() {
                    let Ok(code) = status.parse::<u16>() else {
                        continue;
                    };
                    if code >= 400 && response["description"].as_str().is_some_and(str::is_empty) {
                        response["description"] = Value::String(format!(
                            "The body is an error (`code` is one of {}).",
                            codes_for(code)
                        ));
                    }
                }
            }
        }
        add_links(paths);
        // A source's name, wherever a path names one.
        for item in paths.values_mut() {
            for m in METHODS {
                let Some(params) = item
                    .get_mut(m)
                    .and_then(|op| op.get_mut("parameters"))
                    .and_then(Value::as_array_mut)
                else {
                    continue;
                };
                for p in params
                    .iter_mut()
                    .filter(|p| p["name"] == "source" && p["in"] == "path")
                {
                    merge(&mut p["schema"], json!({"pattern": "^[a-z0-9_-]{1,64}$"}));
                }
            }
        }
        for (method, path, name, schema) in parameter_constraints() {
            let params = paths
                .get_mut(path)
                .and_then(|item| item.get_mut(method))
                .and_then(|op| op.get_mut("parameters"))
                .and_then(Value::as_array_mut)
                .unwrap_or_else(|| panic!("{method} {path} has parameters"));
            let param = params
                .iter_mut()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("{method} {path} has a parameter {name}"));
            merge(&mut param["schema"], schema);
        }
    }
    crm_records(&mut v);
    if let Some(schemas) = v
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (schema, property, constraint) in schema_constraints() {
            let target = schemas
                .get_mut(schema)
                .unwrap_or_else(|| panic!("no schema {schema}"));
            if property.is_empty() {
                merge(target, constraint);
            } else {
                let prop = target
                    .pointer_mut(&format!("/properties/{property}"))
                    .unwrap_or_else(|| panic!("{schema} has no property {property}"));
                merge(prop, constraint);
            }
        }
    }
    v
}

/// Each CRM record route takes its type's fields (`crm_schemas`), not any object.
fn crm_records(v: &mut Value) {
    use super::crm_schemas;
    let ws = "/api/v1/workspaces/{workspace_id}";
    let body = |schema: Value| json!({"required": true, "content": {"application/json": {"schema": schema}}});
    for kind in meshwork_crm::Kind::ALL {
        let (create, fields) = crm_schemas::names(kind);
        let schemas = v
            .pointer_mut("/components/schemas")
            .and_then(Value::as_object_mut)
            .expect("the document has schemas");
        schemas.insert(create.clone(), crm_schemas::record(kind, true));
        schemas.insert(fields.clone(), crm_schemas::record(kind, false));
        let fields_ref = json!({"$ref": format!("#/components/schemas/{fields}")});
        let plural = kind.plural();
        let paths = v["paths"].as_object_mut().expect("the document has paths");
        let mut set = |path: String, method: &str, schema: Value| {
            if let Some(op) = paths.get_mut(&path).and_then(|i| i.get_mut(method)) {
                op["requestBody"] = body(schema);
            }
        };
        set(
            format!("{ws}/{plural}"),
            "post",
            json!({"$ref": format!("#/components/schemas/{create}")}),
        );
        set(
            format!("{ws}/{plural}/{{record_id}}"),
            "patch",
            json!({
                "type": "object", "additionalProperties": false, "required": ["fields"],
                "properties": {
                    "fields": fields_ref.clone(),
                    "version": {"type": ["integer", "null"], "format": "int64", "description": "The version you read; the update is refused if the record has changed since."}
                }
            }),
        );
        set(
            format!("{ws}/{plural}/bulk-update"),
            "post",
            json!({
                "type": "object", "additionalProperties": false, "required": ["filter", "set"],
                "properties": {"filter": crm_schemas::filter(kind), "set": fields_ref}
            }),
        );
        set(
            format!("{ws}/{plural}/bulk-delete"),
            "post",
            json!({
                "type": "object", "additionalProperties": false, "required": ["filter", "confirm"],
                "properties": {
                    "filter": crm_schemas::filter(kind),
                    "confirm": {"enum": [true], "description": "Must be `true`: deleting a filtered set cannot be undone."}
                }
            }),
        );
    }
}

/// Adds the keys of `extra` to the object `target` (replacing those it has).
fn merge(target: &mut Value, extra: Value) {
    if let (Some(t), Value::Object(e)) = (target.as_object_mut(), extra) {
        t.extend(e);
    }
}

/// No control characters (what `char::is_control` refuses), no leading or trailing space: a
/// text the server takes as it is (it trims, and refuses control characters).
const PLAIN_TEXT: &str =
    "^[^\\s\\u0000-\\u001f\\u007f-\\u009f]([^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f])?$";

/// A text of 1 to `max` characters the server's text fields accept.
fn text(max: usize) -> Value {
    json!({"minLength": 1, "maxLength": max, "pattern": PLAIN_TEXT})
}

/// Email addresses the server accepts (`EmailAddress::parse`), in a plain ASCII form: a local
/// part without misplaced dots, a host name of labels that neither start nor end with `-`.
fn email() -> Value {
    json!({
        "maxLength": 254,
        "pattern": "^[A-Za-z0-9_%+-]{1,32}(\\.[A-Za-z0-9_%+-]{1,16})?@([A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?\\.){1,4}[A-Za-z]{2,12}$"
    })
}

/// A text of at most `max` characters that may be empty (clearing the field).
fn optional_text(max: usize) -> Value {
    json!({"maxLength": max, "pattern": format!("^({})?$", PLAIN_TEXT.trim_start_matches('^').trim_end_matches('$'))})
}

fn choice(options: &[&str]) -> Value {
    json!({"enum": options})
}

fn range(min: i64, max: i64) -> Value {
    json!({"minimum": min, "maximum": max})
}

/// An id in a connected source: 1 to 512 characters, no control characters.
fn source_id_schema() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 512, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"})
}

fn role() -> Value {
    json!({"enum": ["owner", "admin", "member", "viewer"]})
}

/// The constraints the server enforces on request bodies that their Rust types do not say, by
/// (schema, property): lengths, patterns, enums. What a schema allows, the server accepts.
fn schema_constraints() -> Vec<(&'static str, &'static str, Value)> {
    let password = json!({"minLength": 12, "maxLength": 128});
    let source_id = source_id_schema();
    vec![
        ("SignupRequest", "name", text(200)),
        ("SignupRequest", "email", email()),
        ("SignupRequest", "password", password.clone()),
        (
            "SignupRequest",
            "confirm_age_16_or_over",
            json!({"enum": [true]}),
        ),
        ("SignupRequest", "company", optional_text(200)),
        ("SignupRequest", "job_title", optional_text(200)),
        ("ProfilePatch", "company", optional_text(200)),
        ("ProfilePatch", "job_title", optional_text(200)),
        ("ProfilePatch", "name", text(200)),
        ("ProfilePatch", "email", email()),
        ("WorkspaceInput", "name", text(100)),
        ("ApiKeyInput", "name", text(100)),
        ("NewSecurityKey", "name", text(64)),
        ("ApiKeyInput", "role", role()),
        (
            "ApiKeyInput",
            "expires_in_days",
            json!({"minimum": 1, "maximum": 3650}),
        ),
        ("ResetRequest", "email", email()),
        ("ResetConfirm", "new_password", password.clone()),
        ("PasswordChange", "new_password", password),
        ("InviteInput", "email", email()),
        ("InviteInput", "role", role()),
        ("RoleInput", "role", role()),
        (
            "NewConnector",
            "source",
            json!({"pattern": "^[a-z0-9_-]{1,64}$"}),
        ),
        (
            "NewConnector",
            "every_minutes",
            json!({"minimum": 1, "maximum": 1440}),
        ),
        ("PopulationInput", "name", text(100)),
        ("JoinInput", "invitation", json!({"pattern": "^mwinv1\\."})),
        ("DocumentInput", "id", source_id.clone()),
        ("PrincipalInput", "id", source_id.clone()),
        ("MemberInput", "id", source_id),
        ("PrincipalInput", "email", email()),
        (
            "DocumentInput",
            "url",
            json!({"maxLength": 2048, "pattern": "^https?://[A-Za-z0-9.-]+(/[A-Za-z0-9._~/-]*)?$"}),
        ),
        // A password or a code: one of them, as text.
        ("Reauthenticate", "", json!({"minProperties": 1})),
        ("Reauthenticate", "password", json!({"type": "string"})),
        ("Reauthenticate", "totp_code", json!({"type": "string"})),
        ("SideSettings", "threshold", range(1, 1000)),
        (
            "PermissionsInput",
            "users",
            json!({"items": source_id_schema()}),
        ),
        (
            "PermissionsInput",
            "groups",
            json!({"items": source_id_schema()}),
        ),
        (
            "SubmitInput",
            "answers",
            json!({"additionalProperties": {"type": "string"}}),
        ),
        ("BulkDeleteInput", "confirm", json!({"enum": [true]})),
        (
            "BulkDeleteInput",
            "",
            json!({"required": ["filter", "confirm"]}),
        ),
        (
            "BulkDeleteInput",
            "filter",
            json!({"additionalProperties": {"type": "string"}}),
        ),
        (
            "BulkUpdateInput",
            "filter",
            json!({"additionalProperties": {"type": "string"}}),
        ),
    ]
}

/// The same for query parameters, by (method, path, parameter).
fn parameter_constraints() -> Vec<(&'static str, &'static str, &'static str, Value)> {
    let ws = "/api/v1/workspaces/{workspace_id}";
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mut out = vec![
        (
            "get",
            "/api/v1/me/export",
            "format",
            choice(&["json", "csv"]),
        ),
        ("get", "/api/v1/me/audit", "limit", range(1, 200)),
        ("get", leak(format!("{ws}/audit")), "limit", range(1, 200)),
        (
            "get",
            leak(format!("{ws}/changes")),
            "limit",
            range(1, 1000),
        ),
        ("get", leak(format!("{ws}/search")), "limit", range(1, 100)),
        ("get", leak(format!("{ws}/jobs")), "limit", range(1, 200)),
        (
            "get",
            leak(format!("{ws}/jobs")),
            "state",
            choice(&["queued", "running", "done", "failed", "cancelled"]),
        ),
        (
            "post",
            leak(format!("{ws}/imports")),
            "type",
            choice(&["company", "contact", "deal"]),
        ),
        (
            "post",
            leak(format!("{ws}/imports")),
            "layout",
            choice(&["hubspot", "salesforce", "pipedrive", "vcard"]),
        ),
        (
            "post",
            leak(format!("{ws}/imports")),
            "mode",
            choice(&["upsert", "create", "update"]),
        ),
        (
            "post",
            leak(format!("{ws}/imports")),
            "match_on",
            choice(&["email", "domain", "external_id"]),
        ),
        ("post", leak(format!("{ws}/match-lists")), "name", text(100)),
        (
            "post",
            leak(format!("{ws}/match-lists")),
            "kind",
            choice(&["contacts", "companies"]),
        ),
        (
            "post",
            leak(format!("{ws}/match-lists")),
            "layout",
            choice(&["hubspot", "salesforce", "pipedrive"]),
        ),
        (
            "get",
            leak(format!(
                "{ws}/partnerships/{{partnership_id}}/overlap/export"
            )),
            "format",
            choice(&["csv", "json"]),
        ),
        (
            "get",
            leak(format!(
                "{ws}/remote-partnerships/{{partnership_id}}/overlap/export"
            )),
            "format",
            choice(&["csv", "json"]),
        ),
    ];
    let sources = format!("{ws}/sources/{{source}}");
    for (method, path, param) in [
        (
            "delete",
            format!("{sources}/archived/{{document_id}}"),
            "document_id",
        ),
        (
            "post",
            format!("{sources}/archived/{{document_id}}"),
            "document_id",
        ),
        (
            "delete",
            format!("{sources}/documents/{{document_id}}"),
            "document_id",
        ),
        (
            "delete",
            format!("{sources}/groups/{{group_id}}"),
            "group_id",
        ),
        ("put", format!("{sources}/groups/{{group_id}}"), "group_id"),
        (
            "delete",
            format!("{sources}/principals/{{principal_id}}"),
            "principal_id",
        ),
    ] {
        out.push((method, leak(path), param, source_id_schema()));
    }
    for subject in ["companies", "contacts", "deals"] {
        out.push((
            "get",
            leak(format!("{ws}/{subject}/{{record_id}}/timeline")),
            "limit",
            range(1, 200),
        ));
    }
    for kind in meshwork_crm::Kind::ALL {
        out.push((
            "get",
            leak(format!("{ws}/{}", kind.plural())),
            "limit",
            range(1, 500),
        ));
    }
    out
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
