//! Fault points for crash tests: `MESHWORK_FAULT=<name>` makes the process abort at the point of
//! that name, as a power cut would, so a test can show that the work cut there resumes and
//! completes (the deletion of a workspace, `workspace.delete.after_key`). Unset (always, outside
//! those tests), a point costs one comparison with a cached empty value.

use std::sync::OnceLock;

/// Aborts the process here when `MESHWORK_FAULT` names this point.
pub fn hit(name: &str) {
    static FAULT: OnceLock<String> = OnceLock::new();
    let armed = FAULT.get_or_init(|| std::env::var("MESHWORK_FAULT").unwrap_or_default());
    if !armed.is_empty() && armed == name {
        eprintln!("MESHWORK_FAULT: aborting at {name}");
        std::process::abort();
    }
}
