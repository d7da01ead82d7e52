//! A web page's form post, as the server reads it: the bytes decoded as
//! `application/x-www-form-urlencoded` (what `Posted<T>` does), turned into a record document
//! for every kind of record (`meshwork_crm::typed::doc_from_form`, creating and updating), then
//! validated as any API write is. No input may panic; a document only holds fields the page
//! edits; a typed list never holds an empty item; and validation is stable: a document it
//! accepted is accepted again unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork_crm::typed::{doc_from_form, editable};
use meshwork_crm::{Kind, Validated};
use std::collections::HashMap;

fuzz_target!(|data: &[u8]| {
    let Ok(form) = serde_urlencoded::from_bytes::<HashMap<String, String>>(data) else {
        return;
    };
    for kind in Kind::ALL {
        for create in [true, false] {
            let doc = doc_from_form(kind, &form, create);
            for (name, value) in &doc {
                let staged = kind == Kind::Deal && (name == "pipeline" || name == "stage");
                assert!(
                    staged || editable(kind).any(|f| f.name == name),
                    "{kind:?}: {name} is not a field the page edits"
                );
                if let Some(items) = value.as_array() {
                    assert!(
                        items.iter().all(|i| i.as_str().is_some_and(|s| !s.trim().is_empty())),
                        "{kind:?}: {name} holds an empty item: {value}"
                    );
                }
                if create {
                    assert!(!value.is_null(), "{kind:?}: a new record's {name} is null");
                }
            }
            if let Ok(valid) = Validated::check(kind, &doc, &[]) {
                let again = Validated::check(kind, &valid.doc, &[])
                    .unwrap_or_else(|e| panic!("{kind:?}: an accepted document is refused: {e:?}"));
                assert_eq!(again.doc, valid.doc, "{kind:?}: validation is stable");
            }
        }
    }
});
