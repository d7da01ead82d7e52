//! Fault points for crash tests: `MESHWORK_FAULT=<name>` makes the process abort at the point of
//! that name, as a power cut would, so a test can show that the work cut there resumes and
//! completes (the deletion of a workspace, `workspace.delete.after_key`);
//! `MESHWORK_FAULT=pause:<name>` makes every pass through a pause point of that name wait 300 ms,
//! so a test can make a race happen every time (two changes to one record, `crm.update.read`).
//! Unset (always, outside those tests), a point costs one comparison with a cached empty value.

use std::sync::OnceLock;

fn armed() -> &'static str {
    static FAULT: OnceLock<String> = OnceLock::new();
    FAULT.get_or_init(|| std::env::var("MESHWORK_FAULT").unwrap_or_default())
}

/// Aborts the process here when `MESHWORK_FAULT` names this point.
pub fn hit(name: &str) {
    let armed = armed();
    if !armed.is_empty() && armed == name {
        eprintln!("MESHWORK_FAULT: aborting at {name}");
        std::process::abort();
    }
}

/// Waits 300 ms here when `MESHWORK_FAULT` is `pause:` and this point's name.
pub async fn pause(name: &str) {
    let armed = armed();
    if !armed.is_empty() && armed.strip_prefix("pause:") == Some(name) {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}
