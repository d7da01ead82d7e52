//! Phone numbers against an oracle: a number is found by its last four digits or more (or all
//! of them, or its national ten when the query has a country code), and while typing by any
//! four digits or more anywhere in it; never otherwise.

use meshwork_search::query::parse;
use meshwork_search::{Access, IndexDoc, IndexOp, SearchIndex, SearchOptions, CRM};
use proptest::prelude::*;
use std::collections::BTreeSet;

/// `digits` written in groups of at most three (`555-123-456-7`), so that no word of the text
/// is four digits long and only the phone field can match a query of four digits or more.
fn written(digits: &str) -> String {
    digits
        .as_bytes()
        .chunks(3)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("-")
}

fn found(index: &SearchIndex, q: &str) -> BTreeSet<usize> {
    index
        .search(
            &parse(q).unwrap(),
            &Access::new([CRM.to_string()]),
            &SearchOptions {
                limit: 100,
                ..Default::default()
            },
        )
        .unwrap()
        .hits()
        .map(|h| h.id.parse().unwrap())
        .collect()
}

fn expected(phones: &[Vec<String>], q: &str, typing: bool) -> BTreeSet<usize> {
    let national = (q.len() > 10).then(|| &q[q.len() - 10..]);
    phones
        .iter()
        .enumerate()
        .filter(|(_, ps)| {
            ps.iter().any(|p| {
                p.ends_with(q)
                    || national.is_some_and(|n| p.ends_with(n))
                    || (typing && p.contains(q))
            })
        })
        .map(|(i, _)| i)
        .collect()
}

fn digits(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = String> {
    proptest::collection::vec(0u8..4, len)
        .prop_map(|v| v.into_iter().map(|d| char::from(b'0' + d)).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Digits from a four-letter alphabet, so that queries often hit and often nearly hit.
    #[test]
    fn phones_are_found_by_their_last_digits_and_while_typing_by_any_run(
        phones in proptest::collection::vec(proptest::collection::vec(digits(4..=12), 1..=2), 1..=12),
        picks in proptest::collection::vec((any::<proptest::sample::Index>(), 0usize..12, 4usize..=12, any::<bool>()), 1..=8),
        random in proptest::collection::vec(digits(4..=12), 0..=3),
    ) {
        let index = SearchIndex::in_memory().unwrap();
        let ops: Vec<IndexOp> = phones
            .iter()
            .enumerate()
            .map(|(i, ps)| {
                IndexOp::Upsert(Box::new(IndexDoc {
                    id: i.to_string(),
                    kind: "contact".into(),
                    title: "x".into(),
                    phones: ps.iter().map(|p| written(p)).collect(),
                    acl: vec![CRM.into()],
                    updated: 1,
                    ..Default::default()
                }))
            })
            .collect();
        index.apply(&ops, 1).unwrap();
        // Runs cut from the stored numbers (some their tails, some spanning two numbers of one
        // item, which must not match), and random ones.
        let all: Vec<String> = phones.iter().map(|ps| ps.concat()).collect();
        let mut queries: Vec<String> = random;
        for (which, start, len, to_end) in picks {
            let p = which.get(&all);
            let start = start.min(p.len().saturating_sub(4));
            let end = if to_end { p.len() } else { (start + len).min(p.len()) };
            if end >= start + 4 {
                queries.push(p[start..end].to_string());
            }
        }
        // With a country code in front of a national number.
        if let Some(p) = phones[0].iter().find(|p| p.len() == 10) {
            queries.push(format!("1{p}"));
        }
        for q in queries {
            prop_assert_eq!(found(&index, &format!("{q} ")), expected(&phones, &q, false), "{:?} whole", q);
            prop_assert_eq!(found(&index, &q), expected(&phones, &q, true), "{:?} typing", q);
        }
    }
}
