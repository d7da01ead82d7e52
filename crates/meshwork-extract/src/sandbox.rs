//! Formats whose parsers are not trusted with the server's process: PDF.
//!
//! PDF readers are known to loop forever, exhaust memory (a small compressed stream can inflate
//! to gigabytes) or panic on crafted files. So the server never parses a PDF itself: it starts a
//! helper process (`meshwork extract-text --format pdf`), hands it the file on stdin and reads
//! the text from stdout. The helper caps its own address space and CPU time before it reads
//! anything ([`limit_self`]); the parent kills it at a wall-clock deadline and reads at most
//! [`crate::MAX_TEXT`] bytes of its answer. Whatever the file does, the server loses at most
//! that child: the file is then found by its name only, and the cause is logged.
//!
//! It is also a sandbox, not only a resource jail (security finding 13): before it reads the
//! file, the helper confines itself ([`confine_self`]). What it can reach then is its stdin,
//! stdout and stderr and its own memory: no file (Landlock: every filesystem access refused,
//! the master key and the database included), no network (Landlock's TCP rules and a seccomp
//! filter refusing every socket), no new program or process (seccomp refuses `execve`,
//! `fork`, `ptrace` and the like; `RLIMIT_NPROC` 0), no new file descriptor past a handful
//! (`RLIMIT_NOFILE`), no signals or abstract sockets outside itself (Landlock scopes). It
//! starts with an empty environment in `/`. Where the kernel lacks Landlock, the seccomp
//! filter and the limits still hold, and the helper says so on stderr.

use crate::{ExtractError, Format, MAX_TEXT};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The program that reads untrusted formats, and the arguments that select its reader (the
/// format and the limits are appended).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helper {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

impl Helper {
    /// `program extract-text`: the meshwork binary's hidden subcommand.
    pub fn meshwork(program: PathBuf) -> Self {
        Self {
            program,
            args: vec!["extract-text".into()],
        }
    }
}

/// What one helper run may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Killed after this much wall-clock time.
    pub timeout: Duration,
    /// Its address space (the helper sets it on itself).
    pub memory_bytes: u64,
    /// Its CPU time (the helper sets it on itself).
    pub cpu_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            memory_bytes: 1 << 30,
            cpu_seconds: 20,
        }
    }
}

impl Format {
    /// Whether this format is read in a helper process ([`run`]) rather than by
    /// [`crate::extract`].
    pub fn needs_sandbox(self) -> bool {
        matches!(self, Format::Pdf)
    }

    /// Whether reading it takes real work (inflating a package, or a helper process), so that
    /// callers read it outside their locks (security finding 5): everything but plain text.
    pub fn heavy(self) -> bool {
        !matches!(self, Format::Text)
    }

    /// The name the helper takes in `--format`.
    pub fn arg(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Docx => "docx",
            Format::Xlsx => "xlsx",
            Format::Pptx => "pptx",
            Format::OpenDocument => "opendocument",
            Format::Pdf => "pdf",
        }
    }

    /// The format named by `--format`.
    pub fn from_arg(s: &str) -> Option<Format> {
        [
            Format::Text,
            Format::Docx,
            Format::Xlsx,
            Format::Pptx,
            Format::OpenDocument,
            Format::Pdf,
        ]
        .into_iter()
        .find(|f| f.arg() == s)
    }
}

/// The text of `bytes` in `format`, read by `helper` in a child process under `limits`.
pub fn run(
    helper: &Helper,
    format: Format,
    bytes: &[u8],
    limits: Limits,
) -> Result<String, ExtractError> {
    let failed = |reason: String| ExtractError::Malformed {
        format: format.name(),
        reason,
    };
    let mut child = Command::new(&helper.program)
        .args(&helper.args)
        .arg("--format")
        .arg(format.arg())
        .arg("--memory-bytes")
        .arg(limits.memory_bytes.to_string())
        .arg("--cpu-seconds")
        .arg(limits.cpu_seconds.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_clear()
        .current_dir("/")
        // Its own process group, so that a deadline ends whatever it started as well.
        .process_group(0)
        .spawn()
        .map_err(|e| {
            failed(format!(
                "the text reader {} did not start: {e}",
                helper.program.display()
            ))
        })?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(failed("the text reader's pipes were not opened".into()));
    };
    // Stdin is fed, and stdout and stderr drained, by threads of their own, so a child that
    // writes before it has read everything cannot deadlock against us.
    std::thread::scope(|s| {
        let feed = s.spawn(move || {
            // A child that stops reading (it failed, or was killed) closes the pipe: not ours
            // to report; its exit status says what happened.
            let _ = stdin.write_all(bytes);
        });
        let out = s.spawn(move || {
            let mut text = Vec::new();
            let read = stdout.take(MAX_TEXT as u64 + 1).read_to_end(&mut text);
            read.map(|_| text)
        });
        let err = s.spawn(move || {
            let mut msg = Vec::new();
            let _ = stderr.take(4096).read_to_end(&mut msg);
            msg
        });
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if started.elapsed() >= limits.timeout => {
                    kill_group(&child);
                    let _ = child.wait();
                    break Err(failed(format!(
                        "reading it took longer than {:.1} s; stopped",
                        limits.timeout.as_secs_f64()
                    )));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => {
                    kill_group(&child);
                    let _ = child.wait();
                    break Err(failed(format!("waiting for the text reader: {e}")));
                }
            }
        };
        let _ = feed.join();
        let text = out
            .join()
            .map_err(|_| failed("reading the answer".into()))?;
        let msg = err.join().unwrap_or_default();
        let status = status?;
        if !status.success() {
            let msg = String::from_utf8_lossy(&msg);
            let first = msg.lines().next().unwrap_or("").trim();
            return Err(failed(if first.is_empty() {
                format!("the text reader stopped ({status})")
            } else {
                first.chars().take(300).collect()
            }));
        }
        let text = text.map_err(|e| failed(format!("reading the answer: {e}")))?;
        Ok(crate::cut_text(&text))
    })
}

/// Ends the helper and everything in its process group (its pipes close with them).
fn kill_group(child: &std::process::Child) {
    let pid = rustix::process::Pid::from_child(child);
    if rustix::process::kill_process_group(pid, rustix::process::Signal::KILL).is_err() {
        // Already gone, or the group could not be signalled: the helper itself still can.
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// Caps this process's address space and CPU time: the helper's first act, before it reads a
/// byte of the file. The PDF reader parses objects on rayon's global pool; it is started here
/// with one thread (one file needs no more, and the helper then takes one core), before the cap
/// on address space would refuse more threads' stacks.
///
/// A helper that hits a limit dies of a signal that would dump core, and a core dump would hold
/// the decrypted file: core dumps are turned off (`RLIMIT_CORE` 0, and not dumpable) first.
///
/// Then it confines itself ([`confine_self`]) before the pool's thread starts, so that the
/// thread inherits the confinement (Landlock and seccomp hold per thread, from the one that
/// asks on), and allows no further process (`RLIMIT_NPROC` 0) once that thread runs.
pub fn limit_self(memory_bytes: u64, cpu_seconds: u64) -> std::io::Result<Confinement> {
    rlimit::setrlimit(rlimit::Resource::CORE, 0, 0)?;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
    let confinement = confine_self()?;
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .map_err(std::io::Error::other)?;
    rlimit::setrlimit(rlimit::Resource::NPROC, 0, 0)?;
    rlimit::setrlimit(rlimit::Resource::AS, memory_bytes, memory_bytes)?;
    rlimit::setrlimit(rlimit::Resource::CPU, cpu_seconds, cpu_seconds)?;
    Ok(confinement)
}

/// How far [`confine_self`] got: Landlock depends on the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confinement {
    /// Landlock enforced every restriction asked for, besides seccomp and the limits.
    Full,
    /// Landlock enforced some (an older kernel): seccomp and the limits hold.
    Partial,
    /// No Landlock in this kernel: seccomp and the limits hold.
    NoLandlock,
}

/// Confines the calling thread, and every thread it starts from then on, to what the process
/// already has (security finding 13): no file, network, program or new descriptor; see the
/// module's comment. [`limit_self`] calls it before the helper starts any thread. Irreversible.
pub fn confine_self() -> std::io::Result<Confinement> {
    use landlock::{Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetStatus, Scope, ABI};
    // A few descriptors beyond stdin, stdout and stderr (the allocator and rayon may hold some).
    rlimit::setrlimit(rlimit::Resource::NOFILE, 16, 16)?;
    let abi = ABI::V6;
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .and_then(|r| r.handle_access(AccessNet::from_all(abi)))
        .and_then(|r| r.scope(Scope::from_all(abi)))
        .and_then(|r| r.create())
        // No rule is added: nothing handled is allowed.
        .and_then(|r| r.restrict_self())
        .map_err(std::io::Error::other)?;
    let confinement = match status.ruleset {
        RulesetStatus::FullyEnforced => Confinement::Full,
        RulesetStatus::PartiallyEnforced => Confinement::Partial,
        RulesetStatus::NotEnforced => Confinement::NoLandlock,
    };
    deny_syscalls()?;
    Ok(confinement)
}

/// A seccomp filter that refuses (`EPERM`) every system call that makes a socket, starts a
/// program or a process, or reaches into another process; everything else is allowed (the PDF
/// reader needs memory and the pipes it already has).
fn deny_syscalls() -> std::io::Result<()> {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
    let denied: &[libc::c_long] = &[
        libc::SYS_socket,
        libc::SYS_socketpair,
        libc::SYS_connect,
        libc::SYS_bind,
        libc::SYS_listen,
        libc::SYS_accept,
        libc::SYS_accept4,
        libc::SYS_execve,
        libc::SYS_execveat,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_fork,
        #[cfg(target_arch = "x86_64")]
        libc::SYS_vfork,
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_kill,
        libc::SYS_tkill,
    ];
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(std::io::Error::other)?;
    let filter = SeccompFilter::new(
        denied.iter().map(|n| (*n, Vec::new())).collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(std::io::Error::other)?;
    let program: BpfProgram = filter.try_into().map_err(std::io::Error::other)?;
    seccompiler::apply_filter(&program).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROBE: &str = "MESHWORK_CONFINEMENT_PROBE";

    /// Security finding 13: once confined, the helper reaches no file (not even to read), no
    /// network, no program, on its own thread and on the pool's thread the PDF reader uses. The
    /// test runs itself again as the confined process and reads what it could do.
    #[test]
    fn a_confined_helper_reaches_no_file_network_or_program() {
        if std::env::var_os(PROBE).is_some() {
            return probe();
        }
        let dir = std::env::temp_dir();
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sandbox::tests::a_confined_helper_reaches_no_file_network_or_program",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(PROBE, dir.join(format!("probe-{}", std::process::id())))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in [
            "read a file: refused",
            "write a file: refused",
            "tcp: refused",
            "udp: refused",
            "run a program: refused",
            "pool thread reads a file: refused",
            "pool thread opens a socket: refused",
        ] {
            assert!(stdout.contains(line), "{line:?} not in:\n{stdout}");
        }
        // Where the kernel has Landlock (these machines do), it is in force.
        assert!(stdout.contains("confinement: Full"), "{stdout}");
    }

    fn probe() {
        let write_to = std::path::PathBuf::from(std::env::var_os(PROBE).unwrap());
        let own = std::env::current_exe().unwrap();
        let confinement = limit_self(1 << 30, 20).unwrap();
        println!("confinement: {confinement:?}");
        let said = |what: &str, refused: bool| {
            println!("{what}: {}", if refused { "refused" } else { "ALLOWED" })
        };
        said("read a file", std::fs::read(&own).is_err());
        said("write a file", std::fs::write(&write_to, b"x").is_err());
        said(
            "tcp",
            std::net::TcpStream::connect("127.0.0.1:5432").is_err(),
        );
        said("udp", std::net::UdpSocket::bind("127.0.0.1:0").is_err());
        said("run a program", Command::new("/bin/true").status().is_err());
        let (file, socket) = rayon::join(
            || std::fs::read(&own).is_err(),
            || std::net::UdpSocket::bind("127.0.0.1:0").is_err(),
        );
        said("pool thread reads a file", file);
        said("pool thread opens a socket", socket);
    }

    /// A helper that is a shell script: the format and limits arrive as ignored arguments.
    fn sh(script: &str) -> Helper {
        Helper {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into(), "helper".into()],
        }
    }

    fn limits(timeout_ms: u64) -> Limits {
        Limits {
            timeout: Duration::from_millis(timeout_ms),
            ..Limits::default()
        }
    }

    #[test]
    fn the_helpers_answer_is_the_text() {
        let got = run(&sh("cat"), Format::Pdf, b"echoed back", limits(10_000)).unwrap();
        assert_eq!(got, "echoed back");
    }

    #[test]
    fn a_helper_that_hangs_is_killed_at_the_deadline() {
        let started = Instant::now();
        let err = run(&sh("sleep 30"), Format::Pdf, b"%PDF-", limits(300)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(err.to_string().contains("longer than"), "{err}");
    }

    #[test]
    fn a_failing_helper_says_why_and_a_missing_one_is_named() {
        let err = run(
            &sh("echo 'no trailer found' >&2; exit 2"),
            Format::Pdf,
            b"",
            limits(10_000),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "not a readable PDF document: no trailer found"
        );
        let missing = Helper::meshwork("/nonexistent/meshwork".into());
        let err = run(&missing, Format::Pdf, b"", limits(10_000)).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/meshwork"), "{err}");
    }

    #[test]
    fn an_endless_answer_is_cut_and_a_large_file_is_fed_whole() {
        // The helper writes forever: at most MAX_TEXT is read, and the run ends (the helper
        // dies of the closed pipe, or at the deadline) instead of filling memory.
        let started = Instant::now();
        if let Ok(t) = run(&sh("yes word"), Format::Pdf, b"", limits(2_000)) {
            assert!(t.len() <= MAX_TEXT);
        }
        assert!(started.elapsed() < Duration::from_secs(10));
        // 8 MiB in, its size out: stdin is fed while stdout is read.
        let big = vec![b'x'; 8 << 20];
        let got = run(&sh("wc -c"), Format::Pdf, &big, limits(20_000)).unwrap();
        assert_eq!(got.trim(), (8 << 20).to_string());
    }

    #[test]
    fn formats_name_themselves_for_the_helper() {
        for f in [
            Format::Text,
            Format::Docx,
            Format::Pdf,
            Format::OpenDocument,
        ] {
            assert_eq!(Format::from_arg(f.arg()), Some(f));
        }
        assert!(Format::Pdf.needs_sandbox() && !Format::Docx.needs_sandbox());
    }
}
