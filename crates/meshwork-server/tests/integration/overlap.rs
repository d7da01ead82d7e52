//! Partner overlap between two workspaces of one server, over HTTP: nothing before both sides
//! agree and nothing after either revokes, counts-only honoured (pm05); each side learns only
//! which of its own records overlap, never anything of the partner's other records (pm04); and
//! the store keeps no raw identifier, also after a match-only import (pm02).

use super::common::*;
use super::crm::{pipeline, setup, Crm};
use crate::server_test;
use meshwork_overlap::Identifier;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// Ada's workspace: three records the partner also has, two it does not.
struct Ada {
    acme: String,
    globex: String,
    grace: String,
    alan: String,
    katherine: String,
    nasa: String,
}

async fn ada_data(c: &Crm<'_>) -> Ada {
    let p = pipeline(c).await;
    let acme = id(&c
        .create(
            "companies",
            json!({"name": "Acme", "domains": ["https://www.acme-rockets.com/about"]}),
        )
        .await);
    let globex = id(&c
        .create(
            "companies",
            json!({"name": "Globex", "domains": ["globex.io"]}),
        )
        .await);
    let grace = id(&c
        .create("contacts", json!({"first_name": "Grace", "last_name": "Hopper", "emails": ["grace.hopper@gmail.com"]}))
        .await);
    let alan = id(&c
        .create("contacts", json!({"first_name": "Alan", "last_name": "Turing", "emails": ["alan@bletchley.example"]}))
        .await);
    let katherine = id(&c
        .create("contacts", json!({"first_name": "Katherine", "last_name": "Johnson", "emails": ["kj@nasa.example"]}))
        .await);
    // Bob has a company on this domain, linked only to one of his prospects: it must not count
    // as a prospect (contacts stand for themselves, not for their companies).
    let nasa = id(&c
        .create(
            "companies",
            json!({"name": "NASA", "domains": ["nasa.gov"]}),
        )
        .await);
    c.create("deals", json!({"name": "Ada's big win", "pipeline": p, "stage": "won", "companies": [acme, globex, nasa], "contacts": [grace, alan, katherine]}))
        .await;
    Ada {
        acme,
        globex,
        grace,
        alan,
        katherine,
        nasa,
    }
}

/// Bob's records, with what must never reach Ada.
struct Bob {
    ids: Vec<String>,
}

const BOB_SECRETS: &[&str] = &[
    "Initech",
    "initech.net",
    "Secret Person",
    "secret.person@hidden.example",
    "hidden.example",
    "Acme Rocketry",
    "G. Hopper",
    "gracehopper+crm@googlemail.com",
    "googlemail",
    "K. Johnson",
    "KJ@NASA.example",
    "Nasa Ops",
];

async fn bob_data(c: &Crm<'_>) -> Bob {
    let p = pipeline(c).await;
    let acme = id(&c
        .create(
            "companies",
            json!({"name": "Acme Rocketry", "domains": ["acme-rockets.com"]}),
        )
        .await);
    let initech = id(&c
        .create(
            "companies",
            json!({"name": "Initech", "domains": ["initech.net"]}),
        )
        .await);
    let grace = id(&c
        .create("contacts", json!({"first_name": "G.", "last_name": "Hopper", "emails": ["gracehopper+crm@googlemail.com"]}))
        .await);
    let secret = id(&c
        .create("contacts", json!({"first_name": "Secret", "last_name": "Person", "emails": ["secret.person@hidden.example"]}))
        .await);
    let nasa = id(&c
        .create(
            "companies",
            json!({"name": "Nasa Ops", "domains": ["https://nasa.gov"]}),
        )
        .await);
    let kj = id(&c
        .create("contacts", json!({"first_name": "K.", "last_name": "Johnson", "emails": ["KJ@NASA.example"], "tags": ["prospect"], "companies": [nasa]}))
        .await);
    let deal = id(&c
        .create("deals", json!({"name": "Bob's win", "pipeline": p, "stage": "won", "companies": [acme, initech], "contacts": [grace, secret]}))
        .await);
    Bob {
        ids: vec![acme, initech, grace, secret, kj, deal, nasa],
    }
}

async fn call(c: &Crm<'_>, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    c.s.call(
        method,
        &format!("/api/v1/workspaces/{}/{path}", c.ws),
        &As::User(&c.who),
        body,
    )
    .await
}

/// Ada invites Bob's workspace and Bob accepts; answers the partnership id.
async fn partner(ada: &Crm<'_>, bob: &Crm<'_>) -> String {
    let (status, p) = call(
        ada,
        Method::POST,
        "partnerships",
        Some(json!({"partner_workspace_id": bob.ws})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let pid = id(&p);
    let (status, v) = call(
        bob,
        Method::POST,
        &format!("partnerships/{pid}/accept"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "active");
    pid
}

async fn share(c: &Crm<'_>, pid: &str, shares: Value, threshold: u32) -> (StatusCode, Value) {
    call(
        c,
        Method::PUT,
        &format!("partnerships/{pid}/sharing"),
        Some(json!({"shares": shares, "threshold": threshold})),
    )
    .await
}

async fn overlap(c: &Crm<'_>, pid: &str) -> (StatusCode, Value) {
    call(c, Method::GET, &format!("partnerships/{pid}/overlap"), None).await
}

async fn export(c: &Crm<'_>, pid: &str, format: &str) -> (StatusCode, String) {
    let r =
        c.s.req(
            Method::GET,
            &format!(
                "/api/v1/workspaces/{}/partnerships/{pid}/overlap/export?format={format}",
                c.ws
            ),
            &As::User(&c.who),
        )
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

fn record_ids(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

fn cell<'a>(v: &'a Value, mine: &str, theirs: &str) -> &'a Value {
    v["matrix"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["population"] == mine && c["partner_population"] == theirs)
        .unwrap_or_else(|| panic!("no cell {mine} × {theirs} in {v}"))
}

async fn promise_pm05_nothing_is_shared_before_both_sides_agree_or_after_either_revokes(
    s: &mut TestServer,
) {
    let ada = setup(s, "Ada").await;
    let bob = setup(s, "Bob").await;
    let a = ada_data(&ada).await;
    bob_data(&bob).await;

    // An invitation shares nothing.
    let (status, p) = call(
        &ada,
        Method::POST,
        "partnerships",
        Some(json!({"partner_workspace_id": bob.ws})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    assert_eq!(p["state"], "pending");
    let pid = id(&p);
    for c in [&ada, &bob] {
        let (status, v) = overlap(c, &pid).await;
        assert_eq!(status, StatusCode::CONFLICT, "{v}");
        assert_eq!(v["code"], "partnership_not_active");
    }
    let (status, _) = call(
        &ada,
        Method::POST,
        &format!("partnerships/{pid}/runs"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, list) = call(&bob, Method::GET, "partnerships", None).await;
    assert_eq!(list[0]["id"], pid.as_str());
    assert_eq!(list[0]["invited_by_us"], false);
    assert_eq!(list[0]["partner_name"], "Ada Inc");
    // Ada learns the name of the workspace she invited only once it accepts.
    let (_, list) = call(&ada, Method::GET, "partnerships", None).await;
    assert_eq!(list[0]["partner_name"], "");
    // Only the invited side accepts; a second invitation waits for this one to end.
    let (status, v) = call(
        &ada,
        Method::POST,
        &format!("partnerships/{pid}/accept"),
        None,
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("permission_denied")),
        "{v}"
    );
    let (_, list) = call(&bob, Method::GET, "partnerships", None).await;
    assert_eq!(list[0]["state"], "pending");
    let (status, _) = call(
        &bob,
        Method::POST,
        "partnerships",
        Some(json!({"partner_workspace_id": ada.ws})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let store = &s.state().store;
    let (aws, bws) = (ada.ws.parse().unwrap(), bob.ws.parse().unwrap());
    assert!(store.overlap_result(&pid, aws).await.unwrap().is_none());

    // Accepted, but nothing chosen: nothing shown.
    let (status, _) = call(
        &bob,
        Method::POST,
        &format!("partnerships/{pid}/accept"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = overlap(&ada, &pid).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["partner_populations"], json!([]));
    assert_eq!(v["matrix"], json!([]));
    assert_eq!(v["records"], json!([]));

    // Counts only: a count (under the threshold: "fewer than 3"), never a record.
    let (status, v) = share(&bob, &pid, json!({"customers": "counts"}), 3).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (_, v) = overlap(&ada, &pid).await;
    assert_eq!(
        v["partner_populations"],
        json!([{"id": "customers", "name": "Customers", "level": "counts"}])
    );
    let c = cell(&v, "customers", "customers");
    assert_eq!(
        (c["count"].clone(), c["fewer_than"].clone()),
        (Value::Null, json!(3))
    );
    assert_eq!(v["records"], json!([]));
    let (status, csv) = export(&ada, &pid, "csv").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(csv.lines().count(), 1, "only the header: {csv}");
    let (_, j) = export(&ada, &pid, "json").await;
    assert_eq!(j, "[]");
    // A count equal to the threshold is shown.
    let (_, v) = share(&bob, &pid, json!({"customers": "counts"}), 2).await;
    assert_eq!(v["ours"]["threshold"], 2);
    let (_, v) = overlap(&ada, &pid).await;
    assert_eq!(cell(&v, "customers", "customers")["count"], 2);
    assert_eq!(
        cell(&v, "customers", "customers")["fewer_than"],
        Value::Null
    );
    let (_, list) = call(&ada, Method::GET, "partnerships", None).await;
    assert_eq!(list[0]["partner_name"], "Bob Inc");
    assert_eq!(v["records"], json!([]));
    // Bob learns nothing: Ada shares nothing.
    let (_, v) = overlap(&bob, &pid).await;
    assert_eq!(
        (v["matrix"].clone(), v["records"].clone()),
        (json!([]), json!([]))
    );

    // Indicators: Ada's own overlapping records.
    share(&bob, &pid, json!({"customers": "indicators"}), 1).await;
    let (_, v) = overlap(&ada, &pid).await;
    let mut expected = vec![a.acme.clone(), a.grace.clone()];
    expected.sort();
    assert_eq!(record_ids(&v), expected);

    // Members read, viewers do not, and only owners and admins manage.
    let member = s.signup("Mia", "mia@crm.test").await;
    s.add_member(&ada.who, &ada.ws, &member, "member").await;
    let viewer = s.signup("Vic", "vic@crm.test").await;
    s.add_member(&ada.who, &ada.ws, &viewer, "viewer").await;
    let path = format!("/api/v1/workspaces/{}/partnerships/{pid}/overlap", ada.ws);
    assert_eq!(
        s.status(Method::GET, &path, &As::User(&member), None).await,
        StatusCode::OK
    );
    assert_eq!(
        s.status(Method::GET, &path, &As::User(&viewer), None).await,
        StatusCode::FORBIDDEN
    );
    let revoke = format!("/api/v1/workspaces/{}/partnerships/{pid}/revoke", ada.ws);
    assert_eq!(
        s.status(Method::POST, &revoke, &As::User(&member), None)
            .await,
        StatusCode::FORBIDDEN
    );
    // A third workspace does not see the partnership at all.
    let carol = setup(s, "Carol").await;
    let (status, v) = overlap(&carol, &pid).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("partnership_not_found"))
    );

    // Revoked by Ada: nothing for either side, at once, and nothing kept.
    assert!(store.overlap_result(&pid, aws).await.unwrap().is_some());
    let before = store.partnership(&pid).await.unwrap().unwrap();
    let stale = store.overlap_result(&pid, aws).await.unwrap().unwrap();
    let (status, v) = call(
        &ada,
        Method::POST,
        &format!("partnerships/{pid}/revoke"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "revoked");
    for c in [&ada, &bob] {
        let (status, v) = overlap(c, &pid).await;
        assert_eq!(
            (status, v["code"].as_str()),
            (StatusCode::CONFLICT, Some("partnership_not_active"))
        );
        let (status, _) = export(c, &pid, "csv").await;
        assert_eq!(status, StatusCode::CONFLICT);
    }
    assert!(store.overlap_result(&pid, aws).await.unwrap().is_none());
    assert!(store.overlap_result(&pid, bws).await.unwrap().is_none());
    // A run that began before the revocation cannot store its result after it.
    assert!(!store
        .overlap_result_put(&stale, before.version)
        .await
        .unwrap());
    assert!(store.overlap_result(&pid, aws).await.unwrap().is_none());
    let (status, _) = share(&bob, &pid, json!({"customers": "indicators"}), 1).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = call(
        &bob,
        Method::POST,
        &format!("partnerships/{pid}/accept"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // A new invitation can be declined by the invited side, or withdrawn.
    let (status, p2) = call(
        &bob,
        Method::POST,
        "partnerships",
        Some(json!({"partner_workspace_id": ada.ws})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{p2}");
    let (status, v) = call(
        &ada,
        Method::POST,
        &format!("partnerships/{}/revoke", id(&p2)),
        None,
    )
    .await;
    assert_eq!(
        (status, v["state"].as_str()),
        (StatusCode::OK, Some("declined"))
    );
    let (status, v) = overlap(&bob, &id(&p2)).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("partnership_not_active"))
    );

    // Every step is in both audit logs that it concerns; where a partner's request came from is
    // not in the other side's log.
    let (_, audit) = call(&bob, Method::GET, "audit", None).await;
    for e in audit.as_array().unwrap() {
        if e["kind"] == "overlap.run" && e["details"]["requested_by"] == ada.ws.as_str() {
            assert!(
                e["details"].get("ip").is_none() && e["details"].get("user_agent").is_none(),
                "{e}"
            );
            assert!(e["actor"].is_null(), "{e}");
        }
    }
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "overlap.run" && e["details"]["requested_by"] == ada.ws.as_str()));
    let k = kinds(&audit);
    for kind in [
        "overlap.partnership_accepted",
        "overlap.sharing_changed",
        "overlap.run",
    ] {
        assert!(k.contains(&kind), "{kind} in Bob's audit: {k:?}");
    }
    let (_, audit) = call(&ada, Method::GET, "audit", None).await;
    let k = kinds(&audit);
    for kind in [
        "overlap.partnership_invited",
        "overlap.partnership_revoked",
        "overlap.run",
        "overlap.exported",
    ] {
        assert!(k.contains(&kind), "{kind} in Ada's audit: {k:?}");
    }
}
server_test!(promise_pm05_nothing_is_shared_before_both_sides_agree_or_after_either_revokes);

async fn promise_pm04_a_partner_learns_only_which_of_its_own_records_overlap(s: &mut TestServer) {
    let ada = setup(s, "Ada").await;
    let bob = setup(s, "Bob").await;
    let a = ada_data(&ada).await;
    let b = bob_data(&bob).await;
    let pid = partner(&ada, &bob).await;
    share(
        &bob,
        &pid,
        json!({"customers": "indicators", "prospects": "indicators"}),
        1,
    )
    .await;
    share(&ada, &pid, json!({"customers": "indicators"}), 1).await;

    let (status, v) = overlap(&ada, &pid).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // Normalisation finds the same people and companies written differently.
    let mut expected = vec![a.acme.clone(), a.grace.clone(), a.katherine.clone()];
    expected.sort();
    assert_eq!(record_ids(&v), expected);
    assert_eq!(cell(&v, "customers", "customers")["count"], 2);
    assert_eq!(cell(&v, "customers", "prospects")["count"], 1);
    let kj = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == a.katherine.as_str())
        .unwrap();
    assert_eq!(kj["partner_populations"], json!(["prospects"]));
    assert_eq!(kj["populations"], json!(["customers"]));

    // Nothing about Bob's records is in anything Ada receives: no id, name, email or domain of
    // his, and no size of his populations; nor are Ada's non-overlapping records listed.
    let (_, csv) = export(&ada, &pid, "csv").await;
    let (_, json_export) = export(&ada, &pid, "json").await;
    let (_, list) = call(&ada, Method::GET, "partnerships", None).await;
    let received = format!("{v}\n{csv}\n{json_export}\n{list}");
    for secret in BOB_SECRETS
        .iter()
        .map(|s| s.to_string())
        .chain(b.ids.iter().cloned())
    {
        assert!(
            !received.contains(&secret),
            "{secret:?} reached Ada: {received}"
        );
        assert!(
            !received.to_lowercase().contains(&secret.to_lowercase()),
            "{secret:?} reached Ada"
        );
    }
    for own in [&a.globex, &a.alan] {
        assert!(
            !received.contains(own.as_str()),
            "a non-overlapping record is listed"
        );
    }
    assert!(
        csv.contains("Katherine Johnson") && csv.contains("Acme"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 4, "{csv}");
    // A run tells the requester how many of its own records it compared, nothing of the partner.
    let (status, summary) = call(
        &ada,
        Method::POST,
        &format!("partnerships/{pid}/runs"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["compared"], 6, "Ada's six customers: {summary}");
    let keys: Vec<&String> = summary.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["compared", "computed_at", "stored"]);
    // Ada's NASA shares a domain with a company of Bob's that is in none of his populations.
    assert!(!received.contains(&a.nasa), "{received}");
    assert_eq!(cell(&v, "customers", "prospects")["count"], 1);

    // Bob, sharing everything, sees his side only: his records, and Ada's population names.
    let (_, vb) = overlap(&bob, &pid).await;
    let mut bob_expected = vec![b.ids[0].clone(), b.ids[2].clone(), b.ids[4].clone()];
    bob_expected.sort();
    assert_eq!(record_ids(&vb), bob_expected);
    for own in [&a.acme, &a.grace, &a.katherine, &a.globex, &a.alan] {
        assert!(
            !vb.to_string().contains(own.as_str()),
            "an id of Ada's reached Bob"
        );
    }

    // A change on either side shows at the next view; a record leaving the overlap leaves it.
    let (status, _) = call(&ada, Method::DELETE, &format!("contacts/{}", a.grace), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, v) = overlap(&ada, &pid).await;
    let mut expected = vec![a.acme.clone(), a.katherine.clone()];
    expected.sort();
    assert_eq!(record_ids(&v), expected);
    let (_, vb) = overlap(&bob, &pid).await;
    assert_eq!(record_ids(&vb).len(), 2, "{vb}");

    // Bad share settings are refused whole, naming the field.
    let (status, e) = share(&ada, &pid, json!({"no-such-population": "counts"}), 1).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("population_not_found"))
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("shares.no-such-population"),
        "{e}"
    );
    let (status, e) = share(&ada, &pid, json!({}), 0).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (status, e) = share(&ada, &pid, json!({"customers": "everything"}), 1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
}
server_test!(promise_pm04_a_partner_learns_only_which_of_its_own_records_overlap);

async fn post_csv(c: &Crm<'_>, query: &str, csv: &str) -> (StatusCode, Value) {
    let r =
        c.s.req(
            Method::POST,
            &format!("/api/v1/workspaces/{}/match-lists?{query}", c.ws),
            &As::User(&c.who),
        )
        .header("content-type", "text/csv")
        .body(csv.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn promise_pm02_overlap_store_holds_no_raw_identifier(s: &mut TestServer) {
    let ada = setup(s, "Ada").await;
    let bob = setup(s, "Bob").await;
    let a = ada_data(&ada).await;
    let b = bob_data(&bob).await;
    // A match-only list, as exported from another CRM.
    let csv = "First Name,Last Name,Email,Phone Number,Company Domain Name\r\n\
               Zebedee,Matchonly,Canary.One@matchonly-crm.example,+1 650 253 0000,canaryco-matchonly.org\r\n\
               Zebedee,Matchonly,canary.one@MATCHONLY-CRM.example,+1 (650) 253-0000,canaryco-matchonly.org\r\n\
               Nobody,Here,not-an-email,,\r\n\
               Quincy,Matchonly,quincy.matchonly@gmail.com,,\r\n";
    let (status, report) = post_csv(&ada, "name=Old%20CRM%20leads", csv).await;
    assert_eq!(status, StatusCode::CREATED, "{report}");
    assert_eq!(report["rows"], 4);
    assert_eq!(report["entries"], 2);
    assert_eq!(report["duplicates"], 1);
    assert_eq!(report["rejected"], 1);
    assert_eq!(report["errors"][0]["row"], 3);
    assert_eq!(report["errors"][0]["column"], "Email");
    assert!(
        !report.to_string().contains("not-an-email"),
        "values are not echoed: {report}"
    );
    let list = id(&report["population"]);
    // Bad files are refused with the reason, and store nothing.
    let (status, e) = post_csv(&ada, "name=x", "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (status, e) = post_csv(&ada, "name=x&layout=zoho", csv).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e["message"].as_str().unwrap().contains("layout"), "{e}");
    let (_, pops) = call(&ada, Method::GET, "populations", None).await;
    assert_eq!(pops.as_array().unwrap().len(), 4, "{pops}");

    // Bob has one of the list's people in his CRM (written differently).
    let canary = bob
        .create("contacts", json!({"first_name": "Canary", "last_name": "One", "emails": ["canary.one@matchonly-crm.example"], "tags": ["prospect"]}))
        .await;
    let pid = partner(&ada, &bob).await;
    share(
        &bob,
        &pid,
        json!({"customers": "indicators", "prospects": "indicators"}),
        1,
    )
    .await;
    let mut ada_shares = json!({"customers": "indicators"});
    ada_shares[list.as_str()] = json!("indicators");
    share(&ada, &pid, ada_shares, 1).await;
    let (status, summary) = call(
        &ada,
        Method::POST,
        &format!("partnerships/{pid}/runs"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["stored"], true);
    let (_, v) = overlap(&ada, &pid).await;
    assert_eq!(cell(&v, &list, "prospects")["count"], 1, "{v}");
    let (_, vb) = overlap(&bob, &pid).await;
    let canary_row = vb["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == canary["id"])
        .unwrap();
    assert_eq!(canary_row["partner_populations"], json!([list]));
    let _ = (a, b);

    // No raw, normalised or plainly hashed identifier anywhere on disk or in the database.
    let raw = [
        "canary.one@matchonly-crm.example",
        "Canary.One@matchonly-crm.example",
        "matchonly-crm.example",
        "canaryco-matchonly.org",
        "+16502530000",
        "6502530000",
        "650 253 0000",
        "quincy.matchonly@gmail.com",
        "quincymatchonly@gmail.com",
        "Zebedee",
        "Matchonly",
    ];
    let mut needles: Vec<String> = raw.iter().map(|s| s.to_string()).collect();
    let identity = meshwork_app::overlap::identity(s.state());
    let ids = [
        Identifier::email("canary.one@matchonly-crm.example").unwrap(),
        Identifier::company_domain("canaryco-matchonly.org").unwrap(),
        Identifier::phone("+1 650 253 0000", "US").unwrap(),
        Identifier::email("quincy.matchonly@gmail.com").unwrap(),
    ];
    let mut binary: Vec<Vec<u8>> = Vec::new();
    for i in &ids {
        needles.push(i.value().to_string());
        let sha = Sha256::digest(i.value().as_bytes());
        needles.push(hex::encode(sha));
        binary.push(sha.to_vec());
        let framed = Sha256::digest(i.framed());
        binary.push(framed.to_vec());
        // The keyed pseudonym is stored only sealed.
        let p = identity.token(i);
        needles.push(hex::encode(p));
        binary.push(p.to_vec());
    }
    let refs: Vec<&str> = needles.iter().map(String::as_str).collect();
    assert_absent(s, &refs).await;
    let stored = s.stored_bytes().await;
    for needle in &binary {
        for (path, bytes) in &stored {
            assert!(
                !contains(bytes, needle),
                "a plain or keyed hash of an identifier in {path}"
            );
        }
    }
}
server_test!(promise_pm02_overlap_store_holds_no_raw_identifier);

/// Partnerships with other servers refuse bad input before any network call that could reach
/// inside this server's network, and keep nothing of a refused attempt; peer routes take only
/// signed requests for linked partnerships, and an invitation's secret only once it is right.
async fn remote_partnerships_refuse_bad_invitations_private_addresses_and_unsigned_peers(
    s: &mut TestServer,
) {
    let ada = s.signup("Ada", "ada@remote.test").await;
    let ws = s.create_workspace(&ada, "Ada Remote").await;
    let path = |rest: &str| format!("/api/v1/workspaces/{ws}/remote-partnerships{rest}");
    let (status, v) = s.call(Method::POST, &path(""), &As::User(&ada), None).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let invitation = v["invitation"].as_str().unwrap().to_string();
    let pid = v["partnership"]["id"].as_str().unwrap().to_string();
    assert!(invitation.starts_with("mwinv1."));
    assert!(v["partnership"]["invitation_expires_at"].as_i64().unwrap() > 0);

    let join = |inv: String| json!({ "invitation": inv });
    // Damaged invitations name what is wrong.
    for (bad, why) in [("hello", "mwinv1."), ("mwinv1.%%%", "base64url")] {
        let (status, v) = s
            .call(
                Method::POST,
                &path("/join"),
                &As::User(&ada),
                Some(join(bad.into())),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["code"], "invitation_invalid");
        assert!(v["message"].as_str().unwrap().contains(why), "{v}");
    }
    // Its own invitation is for a same-server partnership.
    let (status, v) = s
        .call(
            Method::POST,
            &path("/join"),
            &As::User(&ada),
            Some(join(invitation.clone())),
        )
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invitation_invalid")),
        "{v}"
    );
    // An invitation aiming at a private address is refused before any request is made.
    let forged = |url: &str| {
        use base64::Engine;
        let json = json!({"url": url, "partnership": "0192f5e0-7d1c-7a00-8000-000000000001", "secret": "ab".repeat(32)});
        format!(
            "mwinv1.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
        )
    };
    for url in [
        "https://127.0.0.1:9",
        "https://10.0.0.8",
        "https://[::1]:443",
        "https://localhost:9",
    ] {
        let (status, v) = s
            .call(
                Method::POST,
                &path("/join"),
                &As::User(&ada),
                Some(join(forged(url))),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("allow_private_peers"),
            "{url}: {v}"
        );
    }
    let (status, v) = s
        .call(
            Method::POST,
            &path("/join"),
            &As::User(&ada),
            Some(join(forged("http://partner.example"))),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["message"].as_str().unwrap().contains("HTTPS only"), "{v}");
    // Nothing was kept of the refused attempts: one pending invitation.
    let (_, list) = s.call(Method::GET, &path(""), &As::User(&ada), None).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["state"], "pending");

    // Peer routes: a wrong secret is refused and the invitation stays pending; a pending
    // partnership has no link, so signed routes answer as for an unknown one.
    let accept = json!({"secret": "00".repeat(32), "link_key": "11".repeat(32), "url": "https://partner.example", "partnership": "0192f5e0-7d1c-7a00-8000-000000000002", "name": "Mallory"});
    let (status, v) = s
        .call(
            Method::POST,
            &format!("/peer/v1/partnerships/{pid}/accept"),
            &As::Anonymous,
            Some(accept),
        )
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invitation_invalid")),
        "{v}"
    );
    let (_, list) = s.call(Method::GET, &path(""), &As::User(&ada), None).await;
    assert_eq!(list[0]["state"], "pending");
    for p in [pid.as_str(), "0192f5e0-7d1c-7a00-8000-00000000dead"] {
        let (status, v) = s
            .call(
                Method::POST,
                &format!("/peer/v1/partnerships/{p}/runs"),
                &As::Anonymous,
                Some(json!({"run": "00".repeat(16)})),
            )
            .await;
        assert_eq!(
            (status, v["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("partnership_not_found")),
            "{v}"
        );
    }
    // Withdrawing the invitation spends it.
    let (status, v) = s
        .call(
            Method::POST,
            &path(&format!("/{pid}/revoke")),
            &As::User(&ada),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["partnership"]["state"].as_str(),
            v["partner_notified"].as_bool()
        ),
        (Some("declined"), Some(false))
    );
    // Sharing a match-only list with a partner on another server is refused, naming the field.
    let (status, v) = s
        .call(
            Method::PUT,
            &path(&format!("/{pid}/sharing")),
            &As::User(&ada),
            Some(json!({"shares": {"nope": "counts"}, "threshold": 3})),
        )
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("population_not_found")),
        "{v}"
    );
}

mod remote_partnerships_refuse_bad_input {
    use super::super::common::{TestBackend, TestServer};
    async fn with(backend: TestBackend) {
        let Some(mut s) = TestServer::start_with(backend, |c| {
            c.public_url = "https://meshwork.test".into();
        })
        .await
        else {
            return;
        };
        super::remote_partnerships_refuse_bad_invitations_private_addresses_and_unsigned_peers(
            &mut s,
        )
        .await;
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

/// A server whose public_url is not https:// cannot invite partners on other servers, and says
/// which setting to change.
async fn a_remote_invitation_needs_an_https_public_url(s: &mut TestServer) {
    let ada = s.signup("Ada", "ada@plain.test").await;
    let ws = s.create_workspace(&ada, "Ada Plain").await;
    let (status, v) = s
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{ws}/remote-partnerships"),
            &As::User(&ada),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["message"].as_str().unwrap().contains("public_url"), "{v}");
}
server_test!(a_remote_invitation_needs_an_https_public_url);

/// Views read after every write stay exactly what the records say, whichever side wrote:
/// creates, domain changes (a match appears, another goes), deletions. Same-server runs keep
/// records' pseudonyms between runs and re-read only what the change feed names, so a stale
/// one would show here as a record that overlaps (or not) by a domain it no longer has.
async fn overlap_views_stay_exact_as_records_change_between_runs(s: &mut TestServer) {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeMap;
    let ada = setup(s, "Ada").await;
    let bob = setup(s, "Bob").await;
    let pid = partner(&ada, &bob).await;
    for c in [&ada, &bob] {
        let (status, p) = call(
            c,
            Method::POST,
            "populations",
            Some(json!({"name": "All companies", "query": "type:company"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{p}");
        let (status, v) = share(c, &pid, json!({ id(&p): "indicators" }), 1).await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    // Six registrable domains (companies match on those, so not sub-domains of one).
    let domains = |i: usize| format!("https://www.company-{i}.com/about");
    // Each side's companies: id → index of its one domain (unique within a workspace).
    let mut model: [BTreeMap<String, usize>; 2] = [BTreeMap::new(), BTreeMap::new()];
    let sides = [&ada, &bob];
    let mut rng = StdRng::seed_from_u64(7);
    for step in 0..36 {
        let w = rng.gen_range(0..2);
        let (c, m) = (sides[w], &mut model[w]);
        let free: Vec<usize> = (0..6).filter(|d| !m.values().any(|x| x == d)).collect();
        let op = if m.is_empty() { 0 } else { rng.gen_range(0..3) };
        match op {
            0 | 1 if !free.is_empty() => {
                let d = free[rng.gen_range(0..free.len())];
                if op == 0 || m.is_empty() {
                    let v = c
                        .create(
                            "companies",
                            json!({"name": format!("C{step}"), "domains": [domains(d)]}),
                        )
                        .await;
                    m.insert(id(&v), d);
                } else {
                    let target = m.keys().nth(rng.gen_range(0..m.len())).unwrap().clone();
                    let (status, v) = c
                        .patch(
                            &format!("companies/{target}"),
                            json!({"domains": [domains(d)]}),
                        )
                        .await;
                    assert_eq!(status, StatusCode::OK, "{v}");
                    m.insert(target, d);
                }
            }
            _ if !m.is_empty() => {
                let target = m.keys().nth(rng.gen_range(0..m.len())).unwrap().clone();
                assert_eq!(
                    c.delete(&format!("companies/{target}")).await,
                    StatusCode::NO_CONTENT
                );
                m.remove(&target);
            }
            _ => continue,
        }
        // Both views, against the model: my companies whose domain the partner has.
        for (me, them) in [(0, 1), (1, 0)] {
            let theirs: Vec<usize> = model[them].values().copied().collect();
            let mut expected: Vec<String> = model[me]
                .iter()
                .filter(|(_, d)| theirs.contains(d))
                .map(|(id, _)| id.clone())
                .collect();
            expected.sort();
            let (status, v) = overlap(sides[me], &pid).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            assert_eq!(record_ids(&v), expected, "step {step}, side {me}: {v}");
        }
    }
    // The runs went through the process's cache, which holds exactly the companies that exist
    // now: the deleted ones were forgotten when the feed named them.
    let cached = |s: &TestServer| s.running.as_ref().unwrap().state.pseudonyms.len();
    assert_eq!(cached(s), model[0].len() + model[1].len());
    // Deleting a workspace drops its pseudonyms too (they are keyed by a server key, which
    // destroying the workspace's key does not make unreadable).
    let (status, v) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/workspaces/{}", bob.ws),
            &As::User(&bob.who),
            Some(json!({"confirm": "Bob Inc", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(cached(s), model[0].len());
}
server_test!(overlap_views_stay_exact_as_records_change_between_runs);

/// mm17 ("restrict"): a contact whose processing is restricted at their request stays stored
/// and visible but is never matched in an overlap run; lifting the restriction brings it back.
async fn promise_mm17_a_restricted_contact_is_never_matched(s: &mut TestServer) {
    let ada = setup(s, "Ada").await;
    let bob = setup(s, "Bob").await;
    let a = ada_data(&ada).await;
    bob_data(&bob).await;
    let pid = partner(&ada, &bob).await;
    share(
        &bob,
        &pid,
        json!({"customers": "indicators", "prospects": "indicators"}),
        1,
    )
    .await;
    share(&ada, &pid, json!({"customers": "indicators"}), 1).await;
    let restriction = format!("contacts/{}/restriction", a.grace);
    let (status, v) = call(
        &ada,
        Method::PUT,
        &restriction,
        Some(json!({"restricted": true})),
    )
    .await;
    assert_eq!(
        (status, v["restricted"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{v}"
    );
    let (_, v) = overlap(&ada, &pid).await;
    let mut expected = vec![a.acme.clone(), a.katherine.clone()];
    expected.sort();
    assert_eq!(record_ids(&v), expected, "Grace is restricted");
    // Still stored and visible.
    let (status, _) = call(&ada, Method::GET, &format!("contacts/{}", a.grace), None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, v) = call(&ada, Method::GET, &restriction, None).await;
    assert_eq!(v["restricted"], true);
    let (status, _) = call(
        &ada,
        Method::PUT,
        &restriction,
        Some(json!({"restricted": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, v) = overlap(&ada, &pid).await;
    assert!(record_ids(&v).contains(&a.grace), "{v}");
}
server_test!(promise_mm17_a_restricted_contact_is_never_matched);
