//! Start-up and the edges of the server: wrong keys, corrupt files, loopback defaults, TLS,
//! security.txt and the OpenAPI document.

use super::common::*;
use crate::server_test;
use reqwest::{Method, StatusCode};
use std::sync::Arc;

fn snapshot(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(snapshot(&p));
        } else {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

async fn a_wrong_master_key_refuses_to_start_and_writes_nothing(s: &mut TestServer) {
    let me = s.signup("Kim", "kim@example.com").await;
    s.create_workspace(&me, "Kept").await;
    s.stop().await;
    let data = s.db.dir.path().join("data");
    let before = snapshot(&data);
    let dump_before = s.db.pg_dump();
    let wrong = s.db.dir.path().join("wrong.key");
    std::fs::write(&wrong, format!("{}\n", "ab".repeat(32))).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut config = config_for(&s.db);
    config.master_key_file = wrong.display().to_string();
    let err = meshwork_server::start(config).await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("master key does not open the keyring"),
        "{msg}"
    );
    assert_eq!(
        snapshot(&data),
        before,
        "nothing in the data directory changed"
    );
    assert_eq!(s.db.pg_dump(), dump_before, "nothing in PostgreSQL changed");
    // A missing operator-supplied key file is named, not created.
    let mut config = config_for(&s.db);
    config.master_key_file = s.db.dir.path().join("absent.key").display().to_string();
    let msg = format!("{:#}", meshwork_server::start(config).await.unwrap_err());
    assert!(msg.contains("absent.key"), "{msg}");
    // The right key still opens everything.
    let running = meshwork_server::start(config_for(&s.db)).await.unwrap();
    let base = format!("http://{}", running.addr);
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "kim@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    running.stop().await.unwrap();
}
server_test!(a_wrong_master_key_refuses_to_start_and_writes_nothing);

#[tokio::test]
async fn a_corrupt_database_file_is_named_and_left_untouched() {
    let db = TestDatabase::new(TestBackend::Sqlite).await.unwrap();
    let config = config_for(&db);
    std::fs::create_dir_all(&config.data_dir).unwrap();
    let file = config.data_dir.join("meshwork.db");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &garbage).unwrap();
    let msg = format!("{:#}", meshwork_server::start(config).await.unwrap_err());
    assert!(
        msg.contains("meshwork.db") && msg.contains("not a readable SQLite database"),
        "{msg}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), garbage);
}

#[tokio::test]
async fn promise_mm06_binds_loopback_by_default_with_a_local_file_store() {
    let defaults = meshwork_app::Config::default();
    assert!(
        defaults.listen.ip().is_loopback(),
        "default listen address {}",
        defaults.listen
    );
    assert!(
        defaults.database_url.is_empty(),
        "the default store is the embedded SQLite file"
    );
    assert!(meshwork_server::DEFAULT_CONFIG.contains("listen = \"127.0.0.1:8080\""));
    let db = TestDatabase::new(TestBackend::Sqlite).await.unwrap();
    let mut config = config_for(&db);
    config.listen = "127.0.0.1:0".parse().unwrap();
    let running = meshwork_server::start(config.clone()).await.unwrap();
    assert!(running.addr.ip().is_loopback());
    assert_eq!(
        running.state.store.backend(),
        meshwork_store::Backend::Sqlite
    );
    assert!(config.data_dir.join("meshwork.db").is_file());
    // The database is a file, not a network listener: only the HTTP port is open.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&config.data_dir)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(
            mode, 0o700,
            "the data directory is private to the server's user"
        );
        let key_mode = std::fs::metadata(config.data_dir.join("master.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(key_mode, 0o600);
    }
    running.stop().await.unwrap();
}

async fn promise_mm20_security_txt_names_the_configured_contact(s: &mut TestServer) {
    let resp = s
        .req(Method::GET, "/.well-known/security.txt", &As::Anonymous)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("Contact: mailto:security@example.invalid"),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("Expires: 20")), "{text}");
    s.stop().await;
    let mut config = config_for(&s.db);
    config.security_contact = "mailto:psirt@meshwork.test".into();
    let running = meshwork_server::start(config).await.unwrap();
    let text = reqwest::get(format!("http://{}/.well-known/security.txt", running.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("Contact: mailto:psirt@meshwork.test"),
        "{text}"
    );
    running.stop().await.unwrap();
}
server_test!(promise_mm20_security_txt_names_the_configured_contact);

#[tokio::test]
async fn promise_pm07_server_speaks_tls_when_given_a_certificate() {
    let db = TestDatabase::new(TestBackend::Sqlite).await.unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_path = db.dir.path().join("cert.pem");
    let key_path = db.dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let mut config = config_for(&db);
    config.tls_cert = cert_path.display().to_string();
    config.tls_key = key_path.display().to_string();
    let running = meshwork_server::start(config).await.unwrap();
    assert!(running.tls);

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tls.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok"), "{response}");
    // Plain HTTP on the TLS port gets no answer.
    let plain = reqwest::get(format!("http://{}/healthz", running.addr)).await;
    assert!(plain.is_err() || plain.unwrap().status() != StatusCode::OK);
    running.stop().await.unwrap();
}

async fn openapi_document_describes_the_api(s: &mut TestServer) {
    let (status, doc) = s
        .call(Method::GET, "/api/openapi.json", &As::Anonymous, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for p in [
        "/api/v1/auth/signup",
        "/api/v1/me",
        "/api/v1/workspaces/{workspace_id}/api-keys",
        "/healthz",
    ] {
        assert!(doc["paths"].get(p).is_some(), "missing {p}");
    }
    assert!(doc["components"]["securitySchemes"]
        .get("session")
        .is_some());
    assert!(doc["components"]["schemas"].get("ErrorBody").is_some());
    assert_eq!(
        s.status(Method::GET, "/healthz", &As::Anonymous, None)
            .await,
        StatusCode::OK
    );
}
server_test!(openapi_document_describes_the_api);

/// The contract is exact enough for a client or fuzzer to rely on: every operation declares the
/// error answers its extractors can give, each with the error body; every creation links to the
/// operations on what it made, and each link names an operation that exists; constrained inputs
/// say their constraints.
async fn the_openapi_contract_declares_errors_links_and_constraints(s: &mut TestServer) {
    let (_, doc) = s
        .call(Method::GET, "/api/openapi.json", &As::Anonymous, None)
        .await;
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    let mut links = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "put", "post", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            operations += 1;
            let responses = op["responses"].as_object().unwrap();
            let has = |status: &str| responses.contains_key(status);
            assert!(has("500"), "{method} {path} declares no 500");
            if path.contains('{') {
                assert!(
                    has("404") && has("400"),
                    "{method} {path}: a path parameter can name nothing or be malformed"
                );
            }
            if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                assert!(
                    has("401") && has("403"),
                    "{method} {path}: authenticated, so 401 and 403"
                );
            }
            if op.get("requestBody").is_some() {
                assert!(
                    has("413") && has("415"),
                    "{method} {path}: a body can be too large or of another type"
                );
            }
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    if let Some(schema) = response.pointer("/content/application~1json/schema/$ref")
                    {
                        assert_eq!(
                            schema, "#/components/schemas/ErrorBody",
                            "{method} {path} {status}"
                        );
                    }
                    assert!(
                        !response["description"].as_str().unwrap().is_empty(),
                        "{method} {path} {status} says nothing"
                    );
                }
                for (_, link) in response["links"].as_object().into_iter().flatten() {
                    links += 1;
                    let target = link["operationRef"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches('#');
                    assert!(
                        doc.pointer(target).is_some(),
                        "{method} {path} links to {target}, which does not exist"
                    );
                }
            }
        }
    }
    assert!(operations >= 170, "{operations} operations");
    assert!(links >= 100, "{links} links");
    // Creating a contact links to reading it with the id it answers.
    let link = &doc["paths"]["/api/v1/workspaces/{workspace_id}/contacts"]["post"]["responses"]
        ["201"]["links"]["get /api/v1/workspaces/{workspace_id}/contacts/{record_id}"];
    assert_eq!(link["parameters"]["path.record_id"], "$response.body#/id");
    assert_eq!(
        link["parameters"]["path.workspace_id"],
        "$request.path.workspace_id"
    );
    // Constraints the server enforces are in the schema.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["WorkspaceInput"]["properties"]["name"]["maxLength"],
        100
    );
    assert_eq!(
        schemas["RoleInput"]["properties"]["role"]["enum"],
        serde_json::json!(["owner", "admin", "member", "viewer"])
    );
    assert_eq!(
        schemas["BulkDeleteInput"]["properties"]["confirm"]["enum"],
        serde_json::json!([true])
    );
    let limit = doc["paths"]["/api/v1/workspaces/{workspace_id}/contacts"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    // Finding 1: every query parameter was declared as a path parameter.
    assert_eq!(
        (limit["in"].as_str(), &limit["schema"]["maximum"]),
        (Some("query"), &serde_json::json!(500))
    );
    // Finding 7: an account export in CSV answered a content type the document did not name.
    assert!(
        doc["paths"]["/api/v1/me/export"]["get"]["responses"]["200"]["content"]
            .get("text/csv")
            .is_some()
    );
    // Finding 8: the connector kinds are a list, not an object.
    assert_eq!(
        doc["paths"]["/api/v1/workspaces/{workspace_id}/connector-kinds"]["get"]["responses"]
            ["200"]["content"]["application/json"]["schema"]["type"],
        "array"
    );
    // Finding 9: password re-checks answer 423 once the account is locked; reauthenticating
    // with a code while two-factor authentication is off answers 409.
    for (path, method, status) in [
        ("/api/v1/me/password", "post", "423"),
        ("/api/v1/workspaces/{workspace_id}/api-keys", "post", "423"),
        ("/api/v1/me/reauthenticate", "post", "409"),
    ] {
        assert!(
            doc["paths"][path][method]["responses"]
                .get(status)
                .is_some(),
            "{method} {path} {status}"
        );
    }
    // Finding 2: two request types shared the name InviteInput, so the partnership route was
    // documented with a workspace invitation's body.
    assert!(schemas.get("PartnerInviteInput").is_some() && schemas.get("InviteInput").is_some());
}
server_test!(the_openapi_contract_declares_errors_links_and_constraints);

/// `/readyz` answers whether the store answers; `/healthz` only that the process serves. With
/// the store closed under it, the server says it is not ready (503) and still alive (200).
async fn readyz_follows_the_store_and_healthz_the_process(s: &mut TestServer) {
    let get = |path: &'static str| {
        let r = s.req(Method::GET, path, &As::Anonymous).send();
        async move {
            let r = r.await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    assert_eq!(get("/readyz").await, (StatusCode::OK, "ready".to_string()));
    s.state().store.close().await;
    let (status, why) = get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{why}");
    assert!(why.contains("store"), "{why}");
    assert_eq!(get("/healthz").await.0, StatusCode::OK);
}
server_test!(readyz_follows_the_store_and_healthz_the_process);
