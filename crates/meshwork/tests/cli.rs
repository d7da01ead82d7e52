//! The command line as an operator meets it: help, the documented defaults, start-up errors with
//! their exit code, and a real `meshwork serve` answering on loopback until SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn meshwork() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_meshwork"));
    c.env_remove("MESHWORK_CONFIG").env("MESHWORK_LOG", "warn");
    c
}

#[test]
fn help_lists_every_command_with_examples() {
    let out = meshwork().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for cmd in ["serve", "default-config", "bench"] {
        assert!(text.contains(cmd), "--help lacks {cmd}:\n{text}");
    }
    for cmd in ["serve", "default-config", "bench"] {
        let out = meshwork().args([cmd, "--help"]).output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("meshwork "),
            "`{cmd} --help` has no example:\n{text}"
        );
    }
}

#[test]
fn default_config_prints_the_documented_defaults() {
    let out = meshwork().arg("default-config").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("listen = \"127.0.0.1:8080\"") && text.contains("[auth]"));
    assert_eq!(
        meshwork_app::Config::from_toml_str(&text).unwrap(),
        meshwork_app::Config::default()
    );
}

#[test]
fn start_up_errors_name_the_cause_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "listen = 5\n").unwrap();
    let out = meshwork()
        .args(["serve", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("error: ") && err.contains("bad.toml") && err.contains("listen"),
        "{err}"
    );

    let out = meshwork()
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--database-url", "mysql://x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("not supported"));
}

#[test]
fn serve_answers_on_loopback_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = meshwork()
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let started = Instant::now();
    let ok = rt.block_on(async {
        loop {
            if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await {
                return r.text().await.unwrap() == "ok";
            }
            if started.elapsed() > Duration::from_secs(30) {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    assert!(ok, "the server answered /healthz");
    assert!(dir.path().join("master.key").is_file() && dir.path().join("meshwork.db").is_file());
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");

    // A second start with another master key refuses, and says why.
    let other = dir.path().join("other.key");
    std::fs::write(&other, "cd".repeat(32)).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = meshwork()
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("MESHWORK_MASTER_KEY_FILE", &other)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("master key does not open the keyring"));
}
