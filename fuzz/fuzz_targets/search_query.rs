//! Fuzzes the search box's query parser, then runs every accepted query against a small index:
//! no input may panic, and the parser's limits must hold.

#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork_search::query::{parse, MAX_CLAUSES};
use meshwork_search::{Access, IndexDoc, IndexOp, SearchIndex, SearchOptions, CRM};
use std::sync::OnceLock;

fn index() -> &'static SearchIndex {
    static INDEX: OnceLock<SearchIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        let index = SearchIndex::in_memory().unwrap();
        let doc = IndexDoc {
            id: "c1".into(),
            kind: "contact".into(),
            title: "Jane Doe-Smith".into(),
            body: "Zoë renewal 2027".into(),
            emails: vec!["jane.doe@acme.example".into()],
            phones: vec!["+1 (555) 123-4567".into()],
            acl: vec![CRM.into()],
            ..Default::default()
        };
        index.apply(&[IndexOp::Upsert(Box::new(doc))], 1).unwrap();
        index
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(q) = parse(text) {
        assert!(q.clauses.len() + q.filters.len() <= MAX_CLAUSES);
        let access = Access::new([CRM.to_string()]);
        index()
            .search(&q, &access, &SearchOptions::default())
            .unwrap();
    }
});
