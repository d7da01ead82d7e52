//! POSIX ACL attributes (any file's owner can set one on a folder a connector reads): any bytes
//! parse to an ACL or an error, never a panic; what parses writes back to bytes that parse to
//! the same ACL, and the access check answers for any account.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshwork_connectors::posix_acl::{Acl, READ};

fuzz_target!(|data: &[u8]| {
    let Ok(acl) = Acl::parse(data) else {
        return;
    };
    assert_eq!(Acl::parse(&acl.to_bytes()).as_ref(), Ok(&acl));
    for uid in [0, 1, 1000, u32::MAX] {
        let _ = acl.permits(1000, 100, uid, &[100, 1], READ);
    }
});
