//! Running one argv as a child in its own process group, with a deadline.
//!
//! The child leads a new process group, so everything it starts can be killed together: on
//! timeout, and also once the leader has exited, so no straggler keeps our output pipes open or
//! outlives the playbook. We learn that the leader exited with `waitid(WNOWAIT)`, which leaves
//! it a zombie: its pid, and so the group id, cannot be reused by an unrelated process until we
//! reap it, which makes killing the group by id safe. Waiting happens on a helper thread and the
//! deadline on a channel, so nothing here polls or sleeps.
//!
//! A process that left the group (`setsid`) is out of reach of the kill and may hold our output
//! pipes open for ever. So the pipes are never waited on past the deadline, nor for longer than
//! a short grace once the leader has exited: then what reached them is kept, they are closed,
//! and the run returns.

use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};

use super::capture::{self, Captured};

/// How long the pipes may stay open once the leader has exited and its group was killed. Only
/// a process that escaped the group can still hold them then; what it wrote so far is kept.
const EXIT_GRACE: Duration = Duration::from_millis(500);

/// Environment variables never passed to a playbook: it has no business with the model's key.
const WITHHELD_ENV: [&str; 2] = ["SPECTRA_LLM_API_KEY", "ORCHESTRATOR_LLM_API_KEY"];

/// What to run and how.
pub struct Spec<'a> {
    pub argv: &'a [String],
    pub cwd: &'a Path,
    pub env: &'a [(&'a str, &'a str)],
    pub timeout: Duration,
    pub output_cap: usize,
}

/// How a child ended.
#[derive(Debug)]
pub struct Finished {
    /// `None` when there is no status to report: work abandoned at its deadline.
    pub status: Option<ExitStatus>,
    pub timed_out: bool,
    pub duration: Duration,
    pub stdout: Captured,
    pub stderr: Captured,
}

impl Finished {
    /// The exit code, if the child exited rather than being killed by a signal.
    pub fn exit_code(&self) -> Option<i32> {
        self.status.and_then(|status| status.code())
    }

    /// The signal that ended the child, if one did.
    pub fn signal(&self) -> Option<i32> {
        self.status.and_then(|status| status.signal())
    }
}

/// Runs `spec` to completion or to its deadline, whichever comes first.
pub fn run(spec: &Spec) -> io::Result<Finished> {
    let (program, args) = spec
        .argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty argv"))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(spec.cwd)
        .envs(spec.env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for name in WITHHELD_ENV {
        command.env_remove(name);
    }
    let started = Instant::now();
    let deadline = started + spec.timeout;
    let mut child = command.spawn()?;
    // A signal that stops this process stops the playbook's group too (see `crate::interrupt`).
    let _tracked = crate::process_groups::track_group(child.id());
    let output = capture::drain(
        child.stdout.take().expect("stdout is piped"),
        child.stderr.take().expect("stderr is piped"),
        spec.output_cap,
    )?;

    let timed_out = wait_for_exit_or_deadline(&child, spec.timeout);
    // The leader is a zombie now, so its group id is still ours: kill what it left behind.
    kill_group(&child);
    let status = child.wait()?;
    let duration = started.elapsed();
    let (stdout, stderr) = output.finish(stop_reading_at(timed_out, deadline))?;
    Ok(Finished {
        status: Some(status),
        timed_out,
        duration,
        stdout,
        stderr,
    })
}

/// When to stop waiting for the pipes to close: at once after a timeout, otherwise after a
/// short grace, and never past the deadline.
fn stop_reading_at(timed_out: bool, deadline: Instant) -> Instant {
    if timed_out {
        Instant::now()
    } else {
        deadline.min(Instant::now() + EXIT_GRACE)
    }
}

/// Blocks until the child exits (left unreaped) or the deadline passes, in which case its whole
/// group is killed first. Returns whether the deadline passed.
fn wait_for_exit_or_deadline(child: &Child, timeout: Duration) -> bool {
    let pid = pid_of(child);
    let (exited, exit_seen) = mpsc::channel();
    thread::spawn(move || {
        let _ = exited.send(wait_without_reaping(pid));
    });
    match exit_seen.recv_timeout(timeout) {
        Ok(_) => false,
        Err(RecvTimeoutError::Timeout) => {
            kill_group(child);
            let _ = exit_seen.recv();
            true
        }
        // The helper died without an answer; killing is the safe way to be sure it ends.
        Err(RecvTimeoutError::Disconnected) => {
            kill_group(child);
            false
        }
    }
}

fn wait_without_reaping(pid: Pid) -> io::Result<()> {
    loop {
        match rustix::process::waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(errno) => return Err(errno.into()),
            Ok(_) => return Ok(()),
        }
    }
}

fn kill_group(child: &Child) {
    // ESRCH (the group is already gone) is the normal case after a clean exit.
    let _ = rustix::process::kill_process_group(pid_of(child), Signal::KILL);
}

fn pid_of(child: &Child) -> Pid {
    Pid::from_child(child)
}
