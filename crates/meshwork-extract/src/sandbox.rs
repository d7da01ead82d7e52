//! Formats whose parsers are not trusted with the server's process: PDF.
//!
//! PDF readers are known to loop forever, exhaust memory (a small compressed stream can inflate
//! to gigabytes) or panic on crafted files. So the server never parses a PDF itself: it starts a
//! helper process (`meshwork extract-text --format pdf`), hands it the file on stdin and reads
//! the text from stdout. The helper caps its own address space and CPU time before it reads
//! anything ([`limit_self`]); the parent kills it at a wall-clock deadline and reads at most
//! [`crate::MAX_TEXT`] bytes of its answer. Whatever the file does, the server loses at most
//! that child: the file is then found by its name only, and the cause is logged.

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
pub fn limit_self(memory_bytes: u64, cpu_seconds: u64) -> std::io::Result<()> {
    rlimit::setrlimit(rlimit::Resource::CORE, 0, 0)?;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .map_err(std::io::Error::other)?;
    rlimit::setrlimit(rlimit::Resource::AS, memory_bytes, memory_bytes)?;
    rlimit::setrlimit(rlimit::Resource::CPU, cpu_seconds, cpu_seconds)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
