//! A real SMTP server for tests: Debian's `python3-aiosmtpd` running `smtp_sink.py` on a
//! loopback port, writing each message it accepts to a directory the test reads. `.ci/run` and
//! the README's test script install it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SCRIPT: &str = include_str!("smtp_sink.py");
/// Debian's Python: the `python3` first on the PATH may be another install without the package.
const PYTHON: &str = "/usr/bin/python3";

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A running SMTP server; stopped when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

/// One message as the SMTP server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub envelope_to: String,
    /// The whole message: headers and body, as sent.
    pub raw: String,
}

impl Received {
    /// A header's value (the first of that name; folded lines joined).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\r\n\r\n").next().unwrap_or_default();
        let mut lines = head.split("\r\n").peekable();
        while let Some(line) = lines.next() {
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case(name) {
                    let mut value = v.trim().to_string();
                    while let Some(next) = lines.peek() {
                        if next.starts_with(' ') || next.starts_with('\t') {
                            value.push(' ');
                            value.push_str(next.trim());
                            lines.next();
                        } else {
                            break;
                        }
                    }
                    return Some(value);
                }
            }
        }
        None
    }

    /// The body, with quoted-printable soft breaks and escapes undone.
    pub fn body(&self) -> String {
        let body = self
            .raw
            .split_once("\r\n\r\n")
            .map(|x| x.1)
            .unwrap_or_default();
        let encoding = self
            .header("Content-Transfer-Encoding")
            .unwrap_or_default()
            .to_ascii_lowercase();
        if encoding == "base64" {
            use base64::Engine;
            let compact: String = body.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .expect("a base64 body");
            return String::from_utf8_lossy(&bytes).replace("\r\n", "\n");
        }
        if encoding != "quoted-printable" {
            return body.replace("\r\n", "\n");
        }
        let joined = body.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' && i + 2 < bytes.len() {
                if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    out.push(b);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).replace("\r\n", "\n")
    }

    /// The first link in the body that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> Option<String> {
        let body = self.body();
        let start = body.find(prefix)?;
        Some(
            body[start..]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string(),
        )
    }
}

impl SmtpSink {
    /// Starts a server on a free port.
    pub fn start() -> Self {
        Self::start_on(free_port(), false)
    }

    /// Starts a server on `port`, offering SMTPUTF8 or not.
    pub fn start_on(port: u16, smtputf8: bool) -> Self {
        Self::start_with(port, smtputf8, None, None)
    }

    /// Starts a server on `port` speaking `tls` (`("starttls" | "tls", cert PEM file, key PEM
    /// file)`; plain text without it) and requiring the login `auth` (user, password) if given.
    pub fn start_with(
        port: u16,
        smtputf8: bool,
        tls: Option<(&str, &std::path::Path, &std::path::Path)>,
        auth: Option<(&str, &str)>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let script = dir.path().join("smtp_sink.py");
        std::fs::write(&script, SCRIPT).expect("writing the sink script");
        let out = dir.path().join("mail");
        std::fs::create_dir(&out).expect("creating the mail dir");
        let mut child = Command::new(PYTHON)
            .arg(&script)
            .arg("127.0.0.1")
            .arg(port.to_string())
            .arg(&out)
            .arg(if smtputf8 { "1" } else { "0" })
            .args(match tls {
                Some((mode, cert, key)) => vec![
                    mode.to_string(),
                    cert.display().to_string(),
                    key.display().to_string(),
                ],
                None => vec!["plain".into(), "-".into(), "-".into()],
            })
            .arg(match auth {
                Some((user, password)) => format!("{user}:{password}"),
                None => "-".into(),
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {PYTHON} for the SMTP sink: {e}; install python3-aiosmtpd (apt-get install python3-aiosmtpd)"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("reading the sink's first line");
        assert_eq!(
            line.trim(),
            "ready",
            "the SMTP sink did not start (is python3-aiosmtpd installed?)"
        );
        Self { port, child, dir }
    }

    fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Received> {
        let mut names: Vec<_> = std::fs::read_dir(self.mail_dir())
            .expect("reading the mail dir")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'))
            })
            .collect();
        names.sort_by_key(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let (t, n) = name
                .trim_end_matches(".eml")
                .split_once('-')
                .unwrap_or(("0", "0"));
            (
                t.parse::<u128>().unwrap_or(0),
                n.parse::<u64>().unwrap_or(0),
            )
        });
        names
            .into_iter()
            .map(|p| {
                let raw = String::from_utf8_lossy(&std::fs::read(&p).expect("reading a message"))
                    .to_string();
                let (env, rest) = raw.split_once("\r\nX-Envelope-To: ").unwrap_or(("", &raw));
                let _ = env;
                let (to, raw) = rest.split_once("\r\n").unwrap_or(("", rest));
                Received {
                    envelope_to: to.to_string(),
                    raw: raw.to_string(),
                }
            })
            .collect()
    }

    /// Waits (up to `timeout`) until at least `n` messages have arrived, and returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got = self.messages();
            if got.len() >= n || start.elapsed() > timeout {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The newest message to `to`, waiting for one up to `timeout`.
    pub async fn wait_for_mail_to(&self, to: &str, timeout: Duration) -> Received {
        let start = Instant::now();
        loop {
            if let Some(m) = self
                .messages()
                .into_iter()
                .rev()
                .find(|m| m.envelope_to == to)
            {
                return m;
            }
            assert!(
                start.elapsed() < timeout,
                "no mail to {to} arrived within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
