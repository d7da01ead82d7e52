//! List views served by the search index: filters, sorts, keyset pages, counts and exact deal
//! totals by stage, consistent with the store after every write, and clear errors for bad
//! parameters.

use super::common::*;
use super::crm::{pipeline, setup, Crm};
use super::search::urlencode;
use crate::server_test;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn ids(page: &Value) -> Vec<String> {
    page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every page of `path` (which has its own query string), `limit` at a time.
async fn walk(c: &Crm<'_>, path: &str, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor
            .as_ref()
            .map(|c| format!("&cursor={}", urlencode(c)))
            .unwrap_or_default();
        let (status, page) = c.get(&format!("{path}&limit={limit}{q}")).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        assert!(ids(&page).len() <= limit);
        out.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(n) => cursor = Some(n.to_string()),
            None => break,
        }
    }
    out
}

/// Cents of a decimal amount string.
fn cents(s: &str) -> i64 {
    let (int, frac) = s.split_once('.').unwrap();
    int.parse::<i64>().unwrap() * 100 + frac[..2].parse::<i64>().unwrap()
}

async fn list_views_filter_sort_page_count_and_total_deals_by_stage(s: &mut TestServer) {
    let c = setup(s, "Lena").await;
    let p = pipeline(&c).await;
    let (_, pl) = c.get(&format!("pipelines/{p}")).await;
    let stages: Vec<String> = pl["fields"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    // Names run against creation order; amounts carry cents that floating point would round.
    let mut deals = Vec::new();
    for i in 0..12usize {
        let d = c
            .create(
                "deals",
                json!({
                    "name": format!("Deal {:02}", 11 - i),
                    "amount": format!("{}.{:02}", 100 * (i % 5 + 1), i * 7 % 100),
                    "currency": if i % 3 == 0 { "USD" } else { "EUR" },
                    "pipeline": p,
                    "stage": stages[i % 2],
                    "tags": if i % 2 == 0 { json!(["hot"]) } else { json!([]) },
                }),
            )
            .await;
        deals.push(d);
    }
    let all: Vec<String> = deals
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();

    // Creation order by default, in keyset pages.
    assert_eq!(walk(&c, "deals?", 5).await, all);
    let (_, first) = c.get("deals?limit=5").await;
    assert_eq!(first["total"], 12);
    // By name: the reverse of creation; descending creation is the reverse too.
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(walk(&c, "deals?sort=name", 4).await, reversed);
    assert_eq!(walk(&c, "deals?sort=-created", 7).await, reversed);
    // By amount, largest first, ties by id.
    let mut by_amount: Vec<(i64, String)> = deals
        .iter()
        .map(|d| {
            (
                cents(d["fields"]["amount"].as_str().unwrap()),
                d["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    by_amount.sort_by(|a, b| b.cmp(a));
    assert_eq!(
        walk(&c, "deals?sort=-amount", 3).await,
        by_amount
            .iter()
            .map(|(_, id)| id.clone())
            .collect::<Vec<_>>()
    );
    // A filter, with its count.
    let hot: Vec<String> = all.iter().step_by(2).cloned().collect();
    assert_eq!(walk(&c, "deals?tags=HOT", 2).await, hot);
    let (_, page) = c.get("deals?tags=hot&limit=1").await;
    assert_eq!(page["total"], 6);

    // Stage totals: every match, per stage and currency, exact to the cent.
    let expect = |deals: &[Value]| {
        let mut m: BTreeMap<(String, String, String), (u64, i64)> = BTreeMap::new();
        for d in deals {
            let f = &d["fields"];
            let e = m
                .entry((
                    f["pipeline"].as_str().unwrap().to_string(),
                    f["stage"].as_str().unwrap().to_string(),
                    f["currency"].as_str().unwrap().to_string(),
                ))
                .or_default();
            e.0 += 1;
            e.1 += cents(f["amount"].as_str().unwrap());
        }
        m
    };
    let totals = |page: &Value| {
        page["stage_totals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    (
                        t["pipeline"].as_str().unwrap().to_string(),
                        t["stage"].as_str().unwrap().to_string(),
                        t["currency"].as_str().unwrap().to_string(),
                    ),
                    (
                        t["count"].as_u64().unwrap(),
                        cents(t["amount"].as_str().unwrap()),
                    ),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(totals(&first), expect(&deals));

    // Consistent with the store the moment a write returns: a change, then a deletion.
    let (status, changed) = c
        .patch(&format!("deals/{}", all[3]), json!({"amount": "99999.99"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let (_, top) = c.get("deals?sort=-amount&limit=1").await;
    assert_eq!(ids(&top), vec![all[3].clone()]);
    assert_eq!(top["records"][0]["fields"]["amount"], "99999.99");
    assert_eq!(
        c.delete(&format!("deals/{}", all[0])).await,
        StatusCode::NO_CONTENT
    );
    let (_, after) = c.get("deals?limit=50").await;
    assert_eq!(after["total"], 11);
    assert!(!ids(&after).contains(&all[0]));
    let mut now = deals[1..].to_vec();
    now[2] = changed;
    assert_eq!(totals(&after), expect(&now));

    // Stage ids repeat across pipelines (they are slugs of the stage names): totals keep the
    // pipelines apart.
    let p2 = pipeline(&c).await;
    let other = c
        .create(
            "deals",
            json!({"name": "Renewal", "amount": "1.00", "currency": "EUR", "pipeline": p2, "stage": stages[0]}),
        )
        .await;
    let (_, with_other) = c.get("deals?limit=1").await;
    let mut both = now.clone();
    both.push(other.clone());
    assert_eq!(totals(&with_other), expect(&both));
    assert!(totals(&with_other).contains_key(&(p2.clone(), stages[0].clone(), "EUR".to_string())));
    assert_eq!(
        c.delete(&format!("deals/{}", other["id"].as_str().unwrap()))
            .await,
        StatusCode::NO_CONTENT
    );

    // Search-box text narrows a list; contacts have no stage totals.
    let (_, found) = c.get("deals?q=%22deal%2007%22").await;
    assert_eq!(ids(&found), vec![all[4].clone()]);
    let (_, contacts) = c.get("contacts").await;
    assert_eq!(contacts["total"], 0);
    assert!(contacts.get("stage_totals").is_none(), "{contacts}");

    // Bulk changes act on the set the list shows, `q` included.
    let (status, r) = c
        .post(
            "deals/bulk-update",
            json!({"filter": {"tags": "hot"}, "set": {"tags": ["hot", "q4"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["affected"], 5);
    let (_, q4) = c.get("deals?tags=q4").await;
    assert_eq!(q4["total"], 5);
    let (status, r) = c
        .post(
            "deals/bulk-delete",
            json!({"filter": {"q": "\"deal 07\""}, "confirm": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["affected"], 1);
    let (_, left) = c.get("deals").await;
    assert_eq!(left["total"], 10);
    assert!(!ids(&left).contains(&all[4]));

    // Links: the contacts of a company, from the store's links.
    let co = c.create("companies", json!({"name": "Acme"})).await;
    let co = co["id"].as_str().unwrap();
    let linked = c
        .create("contacts", json!({"first_name": "Ann", "companies": [co]}))
        .await;
    c.create("contacts", json!({"first_name": "Bob"})).await;
    let (_, page) = c.get(&format!("contacts?linked_to={co}")).await;
    assert_eq!(ids(&page), vec![linked["id"].as_str().unwrap().to_string()]);
    assert_eq!(page["total"], 1);
    // An empty value matches records without the field.
    let (_, page) = c.get("contacts?companies=").await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["records"][0]["fields"]["first_name"], "Bob");

    // Bad parameters name themselves.
    let (status, body) = c.get("deals?sort=colour").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().contains("sort"), "{body}");
    let (_, named) = c.get("deals?sort=name&limit=2").await;
    let cursor = named["next_cursor"].as_str().unwrap();
    let (status, body) = c
        .get(&format!("deals?sort=amount&cursor={}", urlencode(cursor)))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("cursor"),
        "{body}"
    );
    let (status, body) = c.get("deals?cursor=not-a-cursor").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = c.get("deals?q=colour:blue").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "invalid_query");

    // Another workspace lists none of it.
    let other = setup(s, "Otto").await;
    let (_, theirs) = other.get("deals").await;
    assert_eq!(theirs["total"], 0);
}
server_test!(list_views_filter_sort_page_count_and_total_deals_by_stage);
