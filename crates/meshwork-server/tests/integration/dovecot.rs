//! A real Dovecot IMAP server with the ACL plugins (RFC 4314) for tests: one config file in a
//! temp dir, users in a passwd-file, a `shared/<owner>/` namespace, on a free loopback port;
//! mail and ACLs are written with `doveadm` as each user; stopped on drop. Settings from
//! ../shared/TEST-SERVERS.md.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Dovecot {
    pub port: u16,
    conf: std::path::PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Dovecot {
    /// Starts a server whose users (`name`, password `name-pw`) are `users`.
    pub fn start(users: &[&str]) -> Dovecot {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        // Mail is stored as `nobody`, which must own the mail folder.
        let out = Command::new("chown")
            .arg("nobody:nogroup")
            .arg(d.join("mail"))
            .output()
            .unwrap();
        assert!(out.status.success());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let users_file: String = users
            .iter()
            .map(|u| format!("{u}:{{PLAIN}}{u}-pw::::::\n"))
            .collect();
        std::fs::write(d.join("users"), users_file).unwrap();
        let p = |s: &str| d.join(s).display().to_string();
        let conf = format!(
            "base_dir = {run}\nstate_dir = {state}\nlog_path = {log}\nprotocols = imap\nlisten = 127.0.0.1\nssl = no\n\
disable_plaintext_auth = no\nauth_mechanisms = plain login\nmail_location = maildir:~/Maildir\nmail_plugins = acl\n\
default_internal_user = dovecot\ndefault_login_user = dovenull\n\
protocol imap {{\n  mail_plugins = $mail_plugins imap_acl\n}}\n\
passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {users}\n}}\n\
userdb {{\n  driver = passwd-file\n  args = username_format=%u {users}\n  default_fields = uid=nobody gid=nogroup home={mail}/%u\n}}\n\
namespace inbox {{\n  inbox = yes\n  separator = /\n  prefix =\n}}\n\
namespace shared {{\n  type = shared\n  separator = /\n  prefix = shared/%%u/\n  location = maildir:%%h/Maildir:INDEXPVT=~/Maildir/shared/%%u\n  subscriptions = no\n  list = children\n}}\n\
plugin {{\n  acl = vfile\n  acl_shared_dict = file:{mail}/shared-mailboxes.db\n}}\n\
service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n",
            run = p("run"),
            state = p("state"),
            log = p("dovecot.log"),
            users = p("users"),
            mail = p("mail"),
        );
        let conf_path = d.join("dovecot.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("/usr/sbin/dovecot")
            .arg("-F")
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dovecot (Debian's dovecot-imapd) is installed: scripts/test installs it");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "dovecot did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Dovecot {
            port,
            conf: conf_path,
            child,
            _dir: dir,
        }
    }

    /// Runs `doveadm` with this server's config.
    pub fn doveadm(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut child = Command::new("doveadm")
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "doveadm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Saves a whole message (headers and body, CRLF lines) into a user's mailbox (created when
    /// missing).
    pub fn deliver_raw(&self, user: &str, mailbox: &str, raw: &str) {
        if mailbox != "INBOX" {
            let list = self.doveadm(&["mailbox", "list", "-u", user], None);
            if !list.lines().any(|l| l.trim() == mailbox) {
                self.doveadm(&["mailbox", "create", "-u", user, mailbox], None);
            }
        }
        self.doveadm(&["save", "-u", user, "-m", mailbox], Some(raw));
    }

    /// Delivers a message into a user's mailbox (created when missing).
    pub fn deliver(&self, user: &str, mailbox: &str, subject: &str, body: &str) {
        if mailbox != "INBOX" {
            let list = self.doveadm(&["mailbox", "list", "-u", user], None);
            if !list.lines().any(|l| l.trim() == mailbox) {
                self.doveadm(&["mailbox", "create", "-u", user, mailbox], None);
            }
        }
        let msg = format!("From: sender@outside.test\r\nTo: {user}@mail.test\r\nSubject: {subject}\r\nDate: Sat, 5 Dec 2026 10:00:00 +0000\r\n\r\n{body}\r\n");
        self.doveadm(&["save", "-u", user, "-m", mailbox], Some(&msg));
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .output();
        let _ = self.child.wait();
    }
}
