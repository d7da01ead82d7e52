//! A real OpenLDAP server for tests: `slapd` from a cn=config written into a temp dir, on a free
//! loopback port, loaded and changed with `ldapmodify` as its root DN, stopped on drop. The
//! frontend's soft size limit is 500 entries, as on a stock server, so an unpaged search of a
//! larger directory is cut short (settings from ../shared/TEST-SERVERS.md).

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BASE: &str = "dc=example,dc=org";
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
const ROOT_PW: &str = "root-secret";
/// The read-only account a connector binds as.
pub const READER_DN: &str = "cn=reader,dc=example,dc=org";
pub const READER_PW: &str = "reader-secret";

pub struct Slapd {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Slapd {
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// Starts a server with the base, `ou=people`, `ou=groups` and the reader account.
    pub fn start() -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("slapd.d")).unwrap();
        std::fs::create_dir_all(d.join("data")).unwrap();
        let limits = "size.soft=500 size.hard=unlimited size.prtotal=unlimited";
        let config = format!(
            "dn: cn=config\nobjectClass: olcGlobal\ncn: config\nolcPidFile: {pid}\n\n\
dn: cn=module{{0}},cn=config\nobjectClass: olcModuleList\ncn: module{{0}}\nolcModulePath: /usr/lib/ldap\nolcModuleLoad: back_mdb\n\n\
dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n\
include: file:///etc/ldap/schema/core.ldif\n\n\
include: file:///etc/ldap/schema/cosine.ldif\n\n\
include: file:///etc/ldap/schema/inetorgperson.ldif\n\n\
include: file:///etc/ldap/schema/nis.ldif\n\n\
dn: olcDatabase={{-1}}frontend,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcFrontendConfig\nolcDatabase: {{-1}}frontend\nolcSizeLimit: {limits}\n\n\
dn: olcDatabase={{0}}config,cn=config\nobjectClass: olcDatabaseConfig\nolcDatabase: {{0}}config\nolcAccess: {{0}}to * by * none\n\n\
dn: olcDatabase={{1}}mdb,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\nolcDatabase: {{1}}mdb\nolcSuffix: {BASE}\nolcDbDirectory: {data}\nolcRootDN: {ROOT_DN}\nolcRootPW: {ROOT_PW}\nolcDbNoSync: TRUE\nolcSizeLimit: {limits}\n\
olcAccess: {{0}}to attrs=userPassword by anonymous auth by * none\nolcAccess: {{1}}to * by * read\n",
            pid = d.join("slapd.pid").display(),
            data = d.join("data").display(),
        );
        std::fs::write(d.join("config.ldif"), config).unwrap();
        let out = Command::new("/usr/sbin/slapadd")
            .args(["-n0", "-F"])
            .arg(d.join("slapd.d"))
            .arg("-l")
            .arg(d.join("config.ldif"))
            .output()
            .expect("slapadd (Debian's slapd) is installed: scripts/test installs it");
        assert!(
            out.status.success(),
            "slapadd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let child = Command::new("/usr/sbin/slapd")
            .arg("-F")
            .arg(d.join("slapd.d"))
            .args(["-h", &format!("ldap://127.0.0.1:{port}/"), "-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "slapd did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let s = Slapd {
            port,
            child,
            _dir: dir,
        };
        s.modify(&format!(
            "dn: {BASE}\nchangetype: add\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
dn: ou=people,{BASE}\nchangetype: add\nobjectClass: organizationalUnit\nou: people\n\n\
dn: ou=groups,{BASE}\nchangetype: add\nobjectClass: organizationalUnit\nou: groups\n\n\
dn: {READER_DN}\nchangetype: add\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\nuserPassword: {READER_PW}\n"
        ));
        s
    }

    /// Applies an LDIF of changes (`changetype: add|modify|delete`) as the root DN.
    pub fn modify(&self, ldif: &str) {
        let mut child = Command::new("ldapmodify")
            .args(["-x", "-c", "-H", &self.url(), "-D", ROOT_DN, "-w", ROOT_PW])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldapmodify (Debian's ldap-utils) is installed");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ldif.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ldapmodify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The LDIF adding a person under `ou=people`.
    pub fn person(uid: &str, mail: Option<&str>) -> String {
        let mail = mail.map(|m| format!("mail: {m}\n")).unwrap_or_default();
        format!("dn: uid={uid},ou=people,{BASE}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n{mail}\n")
    }

    /// The LDIF adding a group under `ou=groups` with members given as DNs.
    pub fn group(cn: &str, members: &[String]) -> String {
        let members: String = members.iter().map(|m| format!("member: {m}\n")).collect();
        format!("dn: cn={cn},ou=groups,{BASE}\nchangetype: add\nobjectClass: groupOfNames\ncn: {cn}\n{members}\n")
    }

    pub fn person_dn(uid: &str) -> String {
        format!("uid={uid},ou=people,{BASE}")
    }

    pub fn group_dn(cn: &str) -> String {
        format!("cn={cn},ou=groups,{BASE}")
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
