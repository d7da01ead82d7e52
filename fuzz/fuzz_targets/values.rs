//! Every parser of user-typed values: never panics, and what it accepts re-parses to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork_domain::{EmailAddress, Password, PersonName, ProfileText, WorkspaceName};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(e) = EmailAddress::parse("email", s) {
        let again = EmailAddress::parse("email", e.as_str()).expect("an accepted email re-parses");
        assert_eq!(again.as_str(), e.as_str());
        assert!(e.as_str().len() <= EmailAddress::MAX_LEN);
        let _ = Password::parse("password", s, Some(&e));
    }
    let _ = Password::parse("password", s, None);
    if let Ok(n) = PersonName::parse("name", s) {
        assert!(!n.as_str().is_empty() && n.as_str().chars().count() <= 200);
    }
    let _ = ProfileText::parse("company", s);
    let _ = WorkspaceName::parse("name", s);
});
