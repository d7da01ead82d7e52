//! What a user typing in the search box expects to find, and what they must never see.

use meshwork_keyring::{DataKey, SecretKey};
use meshwork_search::query::parse;
use meshwork_search::{
    group_principal, user_principal, Access, IndexDoc, IndexOp, SearchIndex, SearchOptions, CRM,
    EVERYONE,
};
use std::sync::Arc;

fn crm(id: &str, kind: &str, title: &str, body: &str) -> IndexDoc {
    IndexDoc {
        id: id.into(),
        kind: kind.into(),
        title: title.into(),
        body: body.into(),
        acl: vec![CRM.into()],
        updated: 1,
        ..Default::default()
    }
}

fn fixture() -> SearchIndex {
    let index = SearchIndex::in_memory().unwrap();
    let mut jane = crm("c1", "contact", "Jane Doe-Smith", "Head of Procurement");
    jane.emails = vec!["jane.doe@acme-corp.com".into()];
    jane.phones = vec!["+1 (555) 123-4567".into()];
    jane.updated = 5;
    let mut zoe = crm("c2", "contact", "Zoë Müller", "Ingénieure");
    zoe.updated = 7;
    let acme = crm(
        "co1",
        "company",
        "Acme Corporation",
        "acme-corp.com industrial widgets",
    );
    let mut deal = crm("d1", "deal", "Acme renewal 2027", "three year renewal");
    deal.stage = vec!["s-won".into(), "Closed Won".into(), "won".into()];
    deal.owner = Some("user-1".into());
    deal.updated = 9;
    let mut deal2 = crm("d2", "deal", "Globex expansion", "expansion");
    deal2.stage = vec!["s-open".into(), "Negotiation".into(), "open".into()];
    deal2.owner = Some("user-2".into());
    let note = crm(
        "n1",
        "note",
        "",
        "Discussed the international expansion roadmap",
    );
    index
        .apply(
            &[jane, zoe, acme, deal, deal2, note]
                .into_iter()
                .map(|d| IndexOp::Upsert(Box::new(d)))
                .collect::<Vec<_>>(),
            6,
        )
        .unwrap();
    index
}

fn ids(index: &SearchIndex, q: &str) -> Vec<String> {
    let access = Access::new([CRM.to_string()]);
    let opts = SearchOptions {
        me: Some("user-1".into()),
        ..Default::default()
    };
    let mut v: Vec<String> = index
        .search(&parse(q).unwrap(), &access, &opts)
        .unwrap()
        .hits()
        .map(|h| h.id.clone())
        .collect();
    v.sort();
    v
}

#[test]
fn the_last_word_is_a_prefix_while_typing() {
    let index = fixture();
    // Jane's email is at acme-corp.com.
    assert_eq!(ids(&index, "acme corp"), vec!["c1", "co1"]);
    assert_eq!(ids(&index, "acme corpor"), vec!["co1"]);
    assert_eq!(ids(&index, "acme renew"), vec!["d1"]);
    assert!(
        ids(&index, "acme renew ").is_empty(),
        "a finished word is whole"
    );
}

#[test]
fn typos_are_forgiven_by_word_length() {
    let index = fixture();
    // 8 letters: one typo.
    assert_eq!(ids(&index, "expension "), vec!["d2", "n1"]);
    // 4 letters: none.
    assert!(ids(&index, "acma ").is_empty());
    // 11 letters: two.
    assert_eq!(ids(&index, "procuremnet "), vec!["c1"]);
    assert_eq!(ids(&index, "procuremnte "), vec!["c1"]);
    assert!(ids(&index, "prcuremnte ").len() <= 1);
}

#[test]
fn accents_and_case_fold() {
    let index = fixture();
    assert_eq!(ids(&index, "zoe muller "), vec!["c2"]);
    assert_eq!(ids(&index, "ZOË "), vec!["c2"]);
    assert_eq!(ids(&index, "ingenieure "), vec!["c2"]);
}

#[test]
fn emails_whole_by_local_part_and_by_domain() {
    let index = fixture();
    assert_eq!(ids(&index, "jane.doe@acme-corp.com "), vec!["c1"]);
    assert_eq!(ids(&index, "Jane.Doe@ACME-corp.com"), vec!["c1"]);
    assert_eq!(ids(&index, "jane.doe "), vec!["c1"]);
    assert_eq!(ids(&index, "acme-corp.com "), vec!["c1", "co1"]);
    assert_eq!(ids(&index, "jane.doe@acme-c"), vec!["c1"]);
}

#[test]
fn phones_by_their_digits_in_any_format() {
    let index = fixture();
    for q in [
        "5551234567 ",
        "(555) 123-4567 ",
        "555.123.4567",
        "+1 555 123 4567 ",
        "+15551234567",
        "1234567 ",
        "555 123",
    ] {
        assert_eq!(ids(&index, q), vec!["c1"], "{q}");
    }
}

#[test]
fn compounds_by_their_parts_and_quoted_phrases() {
    let index = fixture();
    assert_eq!(ids(&index, "smith "), vec!["c1"]);
    assert_eq!(ids(&index, "doe-smith "), vec!["c1"]);
    assert_eq!(ids(&index, "\"three year renewal\""), vec!["d1"]);
    assert!(ids(&index, "\"renewal three year\"").is_empty());
    assert_eq!(ids(&index, "\"international expan"), vec!["n1"]);
}

#[test]
fn field_filters() {
    let index = fixture();
    assert_eq!(ids(&index, "type:deal"), vec!["d1", "d2"]);
    assert_eq!(ids(&index, "acme type:deal"), vec!["d1"]);
    assert_eq!(ids(&index, "stage:won"), vec!["d1"]);
    assert_eq!(ids(&index, "stage:\"closed won\""), vec!["d1"]);
    assert_eq!(ids(&index, "owner:me"), vec!["d1"]);
    assert_eq!(ids(&index, "owner:me stage:open"), Vec::<String>::new());
}

#[test]
fn results_are_grouped_by_type_with_counts_and_marked_snippets() {
    let index = fixture();
    let r = index
        .search(
            &parse("acme").unwrap(),
            &Access::new([CRM.to_string()]),
            &SearchOptions::default(),
        )
        .unwrap();
    assert_eq!(r.total, 3);
    let kinds: Vec<(&str, u64)> = r
        .groups
        .iter()
        .map(|g| (g.kind.as_str(), g.count))
        .collect();
    assert_eq!(kinds.len(), 3);
    assert!(kinds.contains(&("company", 1)) && kinds.contains(&("deal", 1)));
    let company = r.groups.iter().find(|g| g.kind == "company").unwrap();
    assert_eq!(company.hits[0].title, "<mark>Acme</mark> Corporation");
    assert!(company.hits[0]
        .snippet
        .contains("<mark>acme</mark>-corp.com"));
}

#[test]
fn an_empty_query_lists_recent_items() {
    let index = fixture();
    let r = index
        .search(
            &parse("").unwrap(),
            &Access::new([CRM.to_string()]),
            &SearchOptions::default(),
        )
        .unwrap();
    assert_eq!(r.total, 6);
    assert_eq!(
        r.groups[0].kind, "deal",
        "the newest item's group comes first"
    );
    assert_eq!(r.groups[0].hits[0].id, "d1");
}

#[test]
fn access_is_checked_at_query_time_and_fails_closed() {
    let index = SearchIndex::in_memory().unwrap();
    let alice = user_principal(&[1; 32]);
    let sales = group_principal(&[2; 32]);
    let doc = |id: &str, acl: Vec<String>| IndexDoc {
        id: id.into(),
        kind: "document".into(),
        title: format!("quarterly plan {id}"),
        body: "secret numbers".into(),
        acl,
        ..Default::default()
    };
    index
        .apply(
            &[
                IndexOp::Upsert(Box::new(doc("open", vec![EVERYONE.into()]))),
                IndexOp::Upsert(Box::new(doc("alice", vec![alice.clone()]))),
                IndexOp::Upsert(Box::new(doc("sales", vec![sales.clone()]))),
                IndexOp::Upsert(Box::new(doc("nobody", vec![]))),
            ],
            1,
        )
        .unwrap();
    let run = |access: Access| {
        let r = index
            .search(
                &parse("quarterly").unwrap(),
                &access,
                &SearchOptions::default(),
            )
            .unwrap();
        let mut v: Vec<String> = r.hits().map(|h| h.id.clone()).collect();
        v.sort();
        (v, r.total)
    };
    assert_eq!(
        run(Access::default()),
        (vec![], 0),
        "no principals, nothing"
    );
    assert_eq!(
        run(Access::new([EVERYONE.to_string()])),
        (vec!["open".into()], 1)
    );
    assert_eq!(
        run(Access::new([EVERYONE.to_string(), alice.clone()])),
        (vec!["alice".into(), "open".into()], 2)
    );
    assert_eq!(
        run(Access::new([EVERYONE.to_string(), alice, sales])),
        (vec!["alice".into(), "open".into(), "sales".into()], 3)
    );
    // CRM readers do not see documents, and no principal set reaches an item with none.
    assert_eq!(run(Access::new([CRM.to_string()])), (vec![], 0));
}

#[test]
fn deletes_and_updates_replace_items() {
    let index = fixture();
    index
        .apply(
            &[
                IndexOp::Delete("co1".into()),
                IndexOp::Upsert(Box::new(crm("d2", "deal", "Initech expansion", ""))),
            ],
            7,
        )
        .unwrap();
    assert_eq!(ids(&index, "acme corpor"), Vec::<String>::new());
    assert_eq!(ids(&index, "initech "), vec!["d2"]);
    assert!(ids(&index, "globex ").is_empty());
    assert_eq!(index.applied_seq(), 7);
}

fn key() -> Arc<DataKey> {
    Arc::new(DataKey::from_root(SecretKey::from_bytes([7; 32])))
}

#[test]
fn a_sealed_index_reopens_where_it_stopped_and_holds_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = SearchIndex::open(dir.path(), key(), "ws-1").unwrap();
        let mut d = crm("c9", "contact", "Canaryname Zebulon", "canarybody text");
        d.emails = vec!["canary.mail@example.org".into()];
        index.apply(&[IndexOp::Upsert(Box::new(d))], 42).unwrap();
    }
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for needle in [
            "canaryname",
            "Canaryname",
            "canarybody",
            "canary.mail",
            "example.org",
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} found on disk"
            );
        }
    }
    let index = SearchIndex::open(dir.path(), key(), "ws-1").unwrap();
    assert_eq!(index.applied_seq(), 42);
    assert_eq!(ids(&index, "zebulon"), vec!["c9"]);

    // Another workspace's key or scope cannot open it, and says it needs a rebuild.
    let e = SearchIndex::open(dir.path(), key(), "ws-2").unwrap_err();
    assert!(e.needs_rebuild(), "{e}");
}

#[test]
fn a_damaged_index_file_asks_for_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = SearchIndex::open(dir.path(), key(), "ws").unwrap();
        index
            .apply(
                &[IndexOp::Upsert(Box::new(crm("a", "note", "", "text")))],
                1,
            )
            .unwrap();
    }
    let victim = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".idx.sealed"))
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 1;
    std::fs::write(&victim, bytes).unwrap();
    let e = SearchIndex::open(dir.path(), key(), "ws").unwrap_err();
    assert!(e.needs_rebuild(), "{e}");
}

/// A file indexed by name while its text is read elsewhere is listed as pending, on disk too
/// (a process that stops before the text is in finds it again), until it is indexed with text.
#[test]
fn files_awaiting_their_text_are_listed_until_indexed_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(DataKey::from_root(SecretKey::from_bytes([3; 32])));
    let index = SearchIndex::open(dir.path(), key.clone(), "ws").unwrap();
    let mut file = crm("f1", "file", "Survey.pdf", "");
    file.text_pending = true;
    index
        .apply(
            &[
                IndexOp::Upsert(Box::new(file.clone())),
                IndexOp::Upsert(Box::new(crm("f2", "file", "Notes.txt", ""))),
            ],
            1,
        )
        .unwrap();
    assert_eq!(index.pending_texts().unwrap(), vec!["f1".to_string()]);
    drop(index);
    let index = SearchIndex::open(dir.path(), key, "ws").unwrap();
    assert_eq!(index.pending_texts().unwrap(), vec!["f1".to_string()]);
    file.text_pending = false;
    file.body = "heliosphere".into();
    index.apply(&[IndexOp::Upsert(Box::new(file))], 1).unwrap();
    assert!(index.pending_texts().unwrap().is_empty());
}

/// Population filters read CRM ids from the fast fields: the same ids, over several segments
/// and after deletes, as the stored ones.
#[test]
fn uuid_ids_from_fast_fields_are_the_stored_ids() {
    let index = SearchIndex::in_memory().unwrap();
    let ids: Vec<String> = (0..600u128)
        .map(|i| {
            let bits = i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834) ^ (i << 7);
            uuid_from(bits).to_string()
        })
        .collect();
    for (n, chunk) in ids.chunks(200).enumerate() {
        let ops: Vec<IndexOp> = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let word = if i % 3 == 0 { "blue" } else { "green" };
                let kind = if i % 2 == 0 { "company" } else { "contact" };
                IndexOp::Upsert(Box::new(crm(id, kind, word, "")))
            })
            .collect();
        index.apply(&ops, n as i64 + 1).unwrap();
    }
    index
        .apply(
            &[
                IndexOp::Delete(ids[3].clone()),
                IndexOp::Delete(ids[450].clone()),
            ],
            9,
        )
        .unwrap();
    let access = Access::new([CRM.to_string()]);
    for q in ["", "blue ", "type:company ", "type:contact green "] {
        let parsed = parse(q).unwrap();
        let (stored, _) = index
            .matching_ids(&parsed, &access, &SearchOptions::default())
            .unwrap();
        let fast: Vec<String> = index
            .matching_uuid_ids(&parsed, &access, &SearchOptions::default())
            .unwrap()
            .into_iter()
            .map(|bits| uuid_from(bits).to_string())
            .collect();
        assert!(!stored.is_empty(), "{q:?}");
        assert_eq!(fast, stored, "{q:?}");
    }
}

fn uuid_from(bits: u128) -> uuid::fmt::Hyphenated {
    uuid::Uuid::from_u128(bits).hyphenated()
}
