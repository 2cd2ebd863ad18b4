//! The read-only built-in playbooks, run inside this process.
//!
//! `repo.inventory` and `catalog.lookup` run `git spectra builtin ...`: our own code, which only
//! reads the working tree. Starting a second git-spectra for them was a large part of what a
//! whole discover costs (docs/performance.md), so when the rendered argv is exactly one of them (the
//! `{spectra}` executable, `builtin`, the name, and the arguments it takes) the runner calls the
//! same function here instead. Everything a caller sees stays as it was: the argv recorded is
//! the one rendered, the output is the bytes the command would print (one JSON line; or
//! `error: ...` and exit code 1; a panic's message and exit code 101), capped as usual, and the
//! timeout holds: the work runs on a thread, and one that overruns is reported timed out and
//! left to finish on its own (it only reads; no signal is recorded, as none was sent). Built-ins that write (specifications, branches) or run other programs (tests), and
//! any argv that is not exactly a built-in's, still run as processes.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use super::capture::Captured;
use super::process::Finished;
use crate::builtin::{catalog, inventory};
use crate::failure::Class;
use crate::output::{FailureReport, json_line};

/// A built-in that only reads, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOnly {
    Inventory,
    CatalogLookup { name: String },
}

/// The read-only built-in `argv` runs, if it is exactly one run through `spectra_exe`.
pub fn recognise(argv: &[String], spectra_exe: &Path) -> Option<ReadOnly> {
    let (program, args) = argv.split_first()?;
    if Path::new(program) != spectra_exe {
        return None;
    }
    match args {
        [builtin, name] if builtin == "builtin" && name == "inventory" => Some(ReadOnly::Inventory),
        [builtin, name, arg] if builtin == "builtin" && name == "catalog-lookup" => arg
            .strip_prefix("--name=")
            .map(|name| ReadOnly::CatalogLookup {
                name: name.to_string(),
            }),
        _ => None,
    }
}

/// Does `work` in `root` as `git spectra builtin ...` would, within `timeout`, keeping at most
/// `cap` bytes of each output stream.
pub fn run(work: ReadOnly, root: &Path, timeout: Duration, cap: usize) -> Finished {
    let root = root.to_path_buf();
    run_on_thread(move || printed(&work, &root), timeout, cap)
}

/// Runs `work` on a thread of its own, so that the deadline holds however large the working
/// tree is. A panic is reported as the process would have reported it: its message on stderr
/// and exit code 101.
fn run_on_thread(
    work: impl FnOnce() -> Printed + Send + 'static,
    timeout: Duration,
    cap: usize,
) -> Finished {
    let started = Instant::now();
    let (done, outcome) = mpsc::channel();
    let spawned = thread::Builder::new()
        .name("builtin".into())
        .spawn(move || {
            let printed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                .unwrap_or_else(|panic| panicked(panic.as_ref()));
            let _ = done.send(printed);
        });
    let result = match spawned {
        Ok(_) => outcome.recv_timeout(timeout),
        Err(error) => Ok(failure(&format!("cannot start the built-in: {error}"))),
    };
    let (status, timed_out, stdout, stderr) = match result {
        Ok(Printed {
            code,
            stdout,
            stderr,
        }) => (Some(ExitStatus::from_raw(code << 8)), false, stdout, stderr),
        Err(RecvTimeoutError::Timeout) => (None, true, Vec::new(), Vec::new()),
        // The thread caught any panic and always answers; this is only for a lost answer.
        Err(RecvTimeoutError::Disconnected) => {
            let Printed {
                code,
                stdout,
                stderr,
            } = failure("the built-in ended without an answer");
            (Some(ExitStatus::from_raw(code << 8)), false, stdout, stderr)
        }
    };
    Finished {
        status,
        timed_out,
        duration: started.elapsed(),
        stdout: Captured::capped(stdout, cap),
        stderr: Captured::capped(stderr, cap),
    }
}

/// What the command would have printed, and its exit code.
struct Printed {
    code: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

fn printed(work: &ReadOnly, root: &Path) -> Printed {
    let result = match work {
        ReadOnly::Inventory => inventory::inventory(root).map(|value| json_line(&value)),
        ReadOnly::CatalogLookup { name } => {
            catalog::lookup(root, name).map(|value| json_line(&value))
        }
    };
    match result {
        Ok(Ok(stdout)) => Printed {
            code: 0,
            stdout,
            stderr: Vec::new(),
        },
        Ok(Err(error)) => failure(&format!("cannot print the result: {error}")),
        Err(error) => error_printed(&FailureReport::of(&error)),
    }
}

/// What the command prints for a failure, and its exit code, as `git spectra` renders them
/// into a pipe (uncoloured).
fn error_printed(report: &FailureReport) -> Printed {
    Printed {
        code: i32::from(report.exit_code()),
        stdout: Vec::new(),
        stderr: report.plain_text().into_bytes(),
    }
}

/// What a panicking `git spectra builtin` would have left: Rust's message, exit code 101.
fn panicked(panic: &(dyn std::any::Any + Send)) -> Printed {
    let message = panic
        .downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "Box<dyn Any>".to_string());
    Printed {
        code: 101,
        stdout: Vec::new(),
        stderr: format!("thread 'builtin' panicked:\n{message}\n").into_bytes(),
    }
}

fn failure(message: &str) -> Printed {
    error_printed(&FailureReport {
        class: Class::Failed,
        message: message.to_string(),
        hints: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn only_exact_read_only_builtins_of_our_own_executable_are_recognised() {
        let exe = Path::new("/usr/bin/git-spectra");
        assert_eq!(
            recognise(
                &argv(&["/usr/bin/git-spectra", "builtin", "inventory"]),
                exe
            ),
            Some(ReadOnly::Inventory)
        );
        assert_eq!(
            recognise(
                &argv(&[
                    "/usr/bin/git-spectra",
                    "builtin",
                    "catalog-lookup",
                    "--name=logs"
                ]),
                exe
            ),
            Some(ReadOnly::CatalogLookup {
                name: "logs".into()
            })
        );
        for other in [
            &["/other/git-spectra", "builtin", "inventory"][..],
            &["/usr/bin/git-spectra", "builtin", "inventory", "--extra"],
            &["/usr/bin/git-spectra", "builtin", "catalog-lookup", "logs"],
            &[
                "/usr/bin/git-spectra",
                "builtin",
                "write-spec",
                "--service=x",
            ],
            &["/usr/bin/git-spectra", "builtin", "run-tests"],
            &["/usr/bin/git-spectra", "inventory"],
            &["/usr/bin/git-spectra"],
        ] {
            assert_eq!(recognise(&argv(other), exe), None, "{other:?}");
        }
    }

    #[test]
    fn prints_what_the_command_prints() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.rs"), "fn main() {}\n").unwrap();
        let finished = run(
            ReadOnly::Inventory,
            dir.path(),
            Duration::from_secs(60),
            1 << 20,
        );
        assert_eq!(finished.exit_code(), Some(0));
        assert!(!finished.timed_out);
        let expected = json_line(&inventory::inventory(dir.path()).unwrap()).unwrap();
        assert_eq!(finished.stdout.bytes, expected);
        assert!(finished.stderr.bytes.is_empty());
    }

    #[test]
    fn a_failure_is_exit_code_1_with_the_error_on_stderr() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".spectra")).unwrap();
        std::fs::write(
            dir.path().join(catalog::CATALOG_PATH),
            "services: [unclosed\n",
        )
        .unwrap();
        let work = ReadOnly::CatalogLookup {
            name: "logs".into(),
        };
        let finished = run(work, dir.path(), Duration::from_secs(60), 1 << 20);
        assert_eq!(finished.exit_code(), Some(1));
        assert!(finished.stdout.bytes.is_empty());
        let stderr = finished.stderr.text();
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains("service-catalog.yaml"), "{stderr}");
    }

    #[test]
    fn work_past_its_deadline_is_reported_timed_out_and_left_to_finish() {
        let (release, released) = mpsc::channel::<()>();
        let work = move || {
            let _ = released.recv();
            Printed {
                code: 0,
                stdout: b"late\n".to_vec(),
                stderr: Vec::new(),
            }
        };
        let finished = run_on_thread(work, Duration::ZERO, 1 << 20);
        assert!(finished.timed_out);
        assert_eq!(finished.status, None);
        assert_eq!(finished.exit_code(), None);
        assert!(finished.stdout.bytes.is_empty());
        release.send(()).unwrap();
    }

    #[test]
    fn a_panic_is_exit_code_101_with_its_message_on_stderr() {
        let finished = run_on_thread(|| panic!("boom"), Duration::from_secs(60), 1 << 20);
        assert_eq!(finished.exit_code(), Some(101));
        assert!(
            finished.stderr.text().contains("boom"),
            "{}",
            finished.stderr.text()
        );
    }

    #[test]
    fn output_is_capped_like_a_process_output() {
        let dir = tempfile::tempdir().unwrap();
        let finished = run(ReadOnly::Inventory, dir.path(), Duration::from_secs(60), 8);
        assert_eq!(finished.stdout.bytes.len(), 8);
        assert!(finished.stdout.truncated);
    }
}
