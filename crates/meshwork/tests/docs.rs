//! The documentation's promise map (`docs/privacy.md`) names tests that exist: every
//! `promise_…` it cites is a test function of this repository (or, for tests run on both
//! engines, the stem of one).

use std::path::Path;

fn sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if !path.ends_with("target") {
                sources(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn every_test_the_privacy_map_names_exists() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = std::fs::read_to_string(repo.join("docs/privacy.md")).unwrap();
    let mut code = String::new();
    sources(&repo.join("crates"), &mut code);
    let mut named = 0;
    for word in doc.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        // `promise_<id>_…` in prose is the pattern, not a test.
        if !word.starts_with("promise_") || word.ends_with('_') {
            continue;
        }
        named += 1;
        let exists = code.contains(&format!("fn {word}("))
            || code.contains(&format!("fn {word}_sqlite("))
            || code.contains(&format!("fn {word}<"));
        assert!(exists, "docs/privacy.md names {word}, which is no test");
    }
    assert!(named >= 44, "the map names only {named} tests");
}
