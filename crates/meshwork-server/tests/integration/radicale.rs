//! A real Radicale CardDAV server for tests: a config and a plain-text users file in a temp dir,
//! on a free loopback port, rights `owner_only`; address books are made with `MKCOL` and cards
//! written with `PUT` and `DELETE`, as any CardDAV client would. Stopped on drop. Settings from
//! ../shared/TEST-SERVERS.md.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Radicale {
    pub port: u16,
    child: Child,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Radicale {
    /// Starts a server whose users (`name`, password `name-pw`) are `users`.
    pub fn start(users: &[&str]) -> Radicale {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let users_file: String = users.iter().map(|u| format!("{u}:{u}-pw\n")).collect();
        std::fs::write(d.join("users"), users_file).unwrap();
        let conf = format!(
            "[server]\nhosts = 127.0.0.1:{port}\n[auth]\ntype = htpasswd\nhtpasswd_filename = {users}\nhtpasswd_encryption = plain\n\
[rights]\ntype = owner_only\n[storage]\nfilesystem_folder = {store}\n[logging]\nlevel = warning\n",
            users = d.join("users").display(),
            store = d.join("store").display(),
        );
        std::fs::write(d.join("config"), conf).unwrap();
        let child = Command::new("radicale")
            .arg("-C")
            .arg(d.join("config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("radicale (Debian's radicale) is installed: scripts/test installs it");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "radicale did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Radicale {
            port,
            child,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    async fn send(&self, user: &str, method: &str, path: &str, ctype: &str, body: String) {
        let r = self
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", self.url()),
            )
            .basic_auth(user, Some(format!("{user}-pw")))
            .header("Content-Type", ctype)
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{method} {path}: {}", r.status());
    }

    /// Makes the address book `/<user>/<book>/`.
    pub async fn book(&self, user: &str, book: &str) {
        let body = r#"<?xml version="1.0"?><mkcol xmlns="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav"><set><prop><resourcetype><collection/><CR:addressbook/></resourcetype><displayname>Contacts</displayname></prop></set></mkcol>"#;
        self.send(
            user,
            "MKCOL",
            &format!("{user}/{book}/"),
            "application/xml",
            body.into(),
        )
        .await;
    }

    /// Writes a card (its lines joined with CRLF, inside BEGIN/END with a UID of `name`).
    pub async fn put(&self, user: &str, book: &str, name: &str, lines: &[&str]) {
        let mut card = format!("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{name}\r\n");
        for l in lines {
            card.push_str(l);
            card.push_str("\r\n");
        }
        card.push_str("END:VCARD\r\n");
        self.send(
            user,
            "PUT",
            &format!("{user}/{book}/{name}.vcf"),
            "text/vcard",
            card,
        )
        .await;
    }

    pub async fn delete(&self, user: &str, book: &str, name: &str) {
        self.send(
            user,
            "DELETE",
            &format!("{user}/{book}/{name}.vcf"),
            "text/plain",
            String::new(),
        )
        .await;
    }
}

impl Drop for Radicale {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
