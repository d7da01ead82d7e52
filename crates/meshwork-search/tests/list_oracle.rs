//! List views against a brute-force oracle: random items (several segments, updates and
//! deletes), random filter clauses, id sets, sorts and page sizes. Walking every page must give
//! exactly the oracle's matches in the oracle's order, each once, and every page must report the
//! oracle's count and per-stage totals.

use meshwork_search::{
    Access, FieldClause, IndexDoc, IndexOp, ListCursor, ListQuery, SearchIndex, SortField,
    SortOrder, CRM,
};
use proptest::prelude::*;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

const TITLES: [&str; 6] = ["alpha", "Beta", "beta", "", "gamma delta", "Éclair"];
const TERMS: [&str; 3] = ["t=a", "t=b", "t="];
const STAGES: [&str; 2] = ["s1", "s2"];

#[derive(Clone, Debug)]
struct Item {
    id: u8,
    kind: &'static str,
    title: &'static str,
    updated: i64,
    /// Hundredths.
    amount: Option<i64>,
    currency: Option<&'static str>,
    stage: Option<&'static str>,
    terms: Vec<&'static str>,
}

fn item() -> impl Strategy<Value = Item> {
    (
        0u8..24,
        prop::sample::select(vec!["deal", "contact"]),
        prop::sample::select(TITLES.to_vec()),
        0i64..4,
        prop::option::of(-500i64..5000),
        prop::option::of(prop::sample::select(vec!["EUR", "USD"])),
        prop::option::of(prop::sample::select(STAGES.to_vec())),
        prop::collection::vec(prop::sample::select(TERMS.to_vec()), 0..3),
    )
        .prop_map(
            |(id, kind, title, updated, amount, currency, stage, terms)| Item {
                id,
                kind,
                title,
                updated,
                amount,
                currency,
                stage,
                terms,
            },
        )
}

#[derive(Clone, Debug)]
enum Op {
    Put(Item),
    Delete(u8),
    Commit,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => item().prop_map(Op::Put),
        1 => (0u8..24).prop_map(Op::Delete),
        1 => Just(Op::Commit),
    ]
}

/// Ids in the order of `n`, several sharing their high 64 bits (the key of creation order) and
/// told apart by the low ones.
fn id_of(n: u8) -> String {
    format!("0190{:04x}-0000-7000-8000-0000000000{:02x}", n / 4, n % 4)
}

fn amount_text(hundredths: i64) -> String {
    let sign = if hundredths < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        hundredths.abs() / 100,
        hundredths.abs() % 100
    )
}

fn index_doc(i: &Item) -> IndexDoc {
    IndexDoc {
        id: id_of(i.id),
        kind: i.kind.into(),
        title: i.title.into(),
        acl: vec![CRM.to_string()],
        updated: i.updated,
        amount: i.amount.map(amount_text),
        currency: i.currency.map(str::to_string),
        pipeline_id: i.stage.map(|_| "p1".to_string()),
        stage_id: i.stage.map(str::to_string),
        // The values, and the presence marker of field `t` when it has any.
        fields: i
            .terms
            .iter()
            .map(|t| t.to_string())
            .chain((!i.terms.is_empty()).then(|| "t".to_string()))
            .collect(),
        ..Default::default()
    }
}

/// The folded name the index sorts by: lower-case, accents folded, words joined by spaces.
fn folded(title: &str) -> Option<String> {
    let s = title.to_lowercase().replace('é', "e");
    let words: Vec<&str> = s.split_whitespace().collect();
    (!words.is_empty()).then(|| words.join(" "))
}

#[derive(Clone, Debug, PartialEq, PartialOrd)]
enum Key {
    Num(f64),
    Str(String),
}

fn key(i: &Item, field: SortField) -> Option<Key> {
    match field {
        SortField::Created => Some(Key::Num(0.0)),
        SortField::Updated => Some(Key::Num(i.updated as f64)),
        SortField::Name => folded(i.title).map(Key::Str),
        SortField::Amount => i.amount.map(|a| Key::Num(a as f64)),
    }
}

fn oracle_order(sort: SortOrder, a: &Item, b: &Item) -> Ordering {
    match (key(a, sort.field), key(b, sort.field)) {
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (x, y) => {
            let o = x.partial_cmp(&y).unwrap().then(a.id.cmp(&b.id));
            if sort.descending {
                o.reverse()
            } else {
                o
            }
        }
    }
}

fn clause() -> impl Strategy<Value = FieldClause> {
    prop::sample::select(TERMS.to_vec()).prop_map(|t| FieldClause {
        term: t.to_string(),
        or_absent: (t == "t=").then(|| "t".to_string()),
    })
}

fn sort() -> impl Strategy<Value = SortOrder> {
    (
        prop::sample::select(vec![
            SortField::Created,
            SortField::Updated,
            SortField::Name,
            SortField::Amount,
        ]),
        any::<bool>(),
    )
        .prop_map(|(field, descending)| SortOrder { field, descending })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]
    #[test]
    fn every_page_of_every_list_matches_the_oracle(
        ops in prop::collection::vec(op(), 1..40),
        kind in prop::sample::select(vec!["deal", "contact"]),
        clauses in prop::collection::vec(clause(), 0..2),
        ids in prop::option::of(prop::collection::btree_set(0u8..24, 0..8)),
        sort in sort(),
        limit in 1usize..5,
    ) {
        let index = SearchIndex::in_memory().unwrap();
        let mut live: BTreeMap<u8, Item> = BTreeMap::new();
        let mut pending = Vec::new();
        for op in &ops {
            match op {
                Op::Put(i) => {
                    pending.push(IndexOp::Upsert(Box::new(index_doc(i))));
                    live.insert(i.id, i.clone());
                }
                Op::Delete(id) => {
                    pending.push(IndexOp::Delete(id_of(*id)));
                    live.remove(id);
                }
                Op::Commit => index.apply(&std::mem::take(&mut pending), 1).unwrap(),
            }
        }
        index.apply(&pending, 2).unwrap();

        // A clause on `t`: the item has the term, or (for `t=`) has no `t` value at all.
        let mut expected: Vec<&Item> = live
            .values()
            .filter(|i| i.kind == kind)
            .filter(|i| clauses.iter().all(|c| {
                i.terms.contains(&c.term.as_str())
                    || (c.or_absent.is_some() && !i.terms.iter().any(|t| t.starts_with("t=")))
            }))
            .filter(|i| ids.as_ref().is_none_or(|s| s.contains(&i.id)))
            .collect();
        expected.sort_by(|a, b| oracle_order(sort, a, b));
        let mut totals: BTreeMap<(String, String, Option<String>), (u64, i64)> = BTreeMap::new();
        if kind == "deal" {
            for i in &expected {
                let e = totals
                    .entry((
                        i.stage.map(|_| "p1").unwrap_or_default().to_string(),
                        i.stage.unwrap_or_default().to_string(),
                        i.currency.map(str::to_string),
                    ))
                    .or_default();
                e.0 += 1;
                e.1 += i.amount.unwrap_or(0);
            }
        }
        let expected_ids: Vec<String> = expected.iter().map(|i| id_of(i.id)).collect();

        let access = Access::new([CRM.to_string()]);
        let mut walked = Vec::new();
        let mut after: Option<ListCursor> = None;
        for _ in 0..=expected_ids.len() {
            let page = index.list(&ListQuery {
                kind: kind.to_string(),
                clauses: clauses.clone(),
                text: None,
                ids: ids.as_ref().map(|s| s.iter().map(|n| id_of(*n)).collect()),
                sort,
                after: after.take(),
                limit,
                me: None,
            }, &access).unwrap();
            prop_assert_eq!(page.total, expected_ids.len() as u64);
            let got: BTreeMap<(String, String, Option<String>), (u64, i64)> = page.stages.iter().map(|s| {
                let cents: f64 = s.amount.parse().unwrap();
                ((s.pipeline.clone(), s.stage.clone(), s.currency.clone()), (s.count, (cents * 100.0).round() as i64))
            }).collect();
            prop_assert_eq!(&got, &totals);
            prop_assert!(page.ids.len() <= limit);
            walked.extend(page.ids);
            match page.next {
                // A cursor survives its text form.
                Some(c) => after = Some(ListCursor::parse(&c.to_string(), sort).unwrap()),
                None => break,
            }
        }
        prop_assert_eq!(&walked, &expected_ids);
        let unique: BTreeSet<&String> = walked.iter().collect();
        prop_assert_eq!(unique.len(), walked.len());
    }
}

#[test]
fn nobody_without_principals_lists_anything() {
    let index = SearchIndex::in_memory().unwrap();
    index
        .apply(
            &[IndexOp::Upsert(Box::new(index_doc(&Item {
                id: 1,
                kind: "contact",
                title: "alpha",
                updated: 0,
                amount: None,
                currency: None,
                stage: None,
                terms: vec![],
            })))],
            1,
        )
        .unwrap();
    let q = ListQuery {
        kind: "contact".into(),
        clauses: vec![],
        text: None,
        ids: None,
        sort: SortOrder::default(),
        after: None,
        limit: 10,
        me: None,
    };
    assert_eq!(
        index
            .list(&q, &Access::new([CRM.to_string()]))
            .unwrap()
            .total,
        1
    );
    let none = index.list(&q, &Access::new(Vec::<String>::new())).unwrap();
    assert_eq!((none.total, none.ids.len()), (0, 0));
}
