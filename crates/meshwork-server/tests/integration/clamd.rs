//! A real ClamAV daemon for tests: Debian's `clamd` from a config in a temp dir, on a free
//! loopback port, with one signature database of its own (the official ones are fetched from
//! the internet, which these machines cannot reach): the MD5 of the EICAR test file, the
//! string every antivirus treats as malware for testing. Stopped on drop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The EICAR test file (harmless; every scanner reports it).
pub const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
/// The name the test database gives it (clamd adds `.UNOFFICIAL` to a local signature).
pub const SIGNATURE: &str = "Meshwork.Test.EICAR";

pub struct Clamd {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Clamd {
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn start() -> Clamd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("db")).unwrap();
        // The .hdb format: MD5:size:name.
        let md5 = md5_hex(EICAR);
        std::fs::write(
            d.join("db/meshwork-test.hdb"),
            format!("{md5}:{}:{SIGNATURE}\n", EICAR.len()),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(
            d.join("clamd.conf"),
            format!(
                "DatabaseDirectory {db}\nTCPSocket {port}\nTCPAddr 127.0.0.1\nForeground yes\n\
                 PidFile {pid}\nStreamMaxLength 26M\nLogFile {log}\n",
                db = d.join("db").display(),
                pid = d.join("clamd.pid").display(),
                log = d.join("clamd.log").display(),
            ),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/clamd")
            .arg("-c")
            .arg(d.join("clamd.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("clamd (Debian's clamav-daemon) is installed: scripts/test installs it");
        let started = Instant::now();
        loop {
            if ping(port) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "clamd did not answer PING in 30 s: {}",
                std::fs::read_to_string(d.join("clamd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Clamd {
            port,
            child,
            _dir: dir,
        }
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut answer = Vec::new();
    s.write_all(b"zPING\0").is_ok() && s.read_to_end(&mut answer).is_ok() && answer == b"PONG\0"
}

fn md5_hex(bytes: &[u8]) -> String {
    let out = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(bytes)?;
            c.wait_with_output()
        })
        .expect("md5sum (coreutils) runs");
    String::from_utf8(out.stdout).unwrap()[..32].to_string()
}

impl Drop for Clamd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
