//! SIGINT and SIGTERM: the run in progress is closed as `interrupted` before the process exits.
//!
//! A signal thread waits for either signal. When one comes it stops the playbooks' process
//! groups, waits (a bounded time) for an effect in flight to be recorded, by taking the effect
//! lock that every commit and revert is made under, and keeps it, so the main thread starts no
//! new effect; it then closes the process's run as the next command would close a dead one
//! ([`crate::reconcile::close`]) and exits with git's code for the signal (130, 143). When the
//! effect is still going after the wait (a slow `pre-commit` hook), the run is left to the
//! next command: the `git commit` holds the run's lock until it ends.
//!
//! git runs `git-spectra` as a child and, when it is itself killed, does not pass the signal
//! on. On Linux the process therefore asks the kernel for SIGTERM when its parent `git` dies,
//! so killing `git spectra ...` stops `git-spectra` too.

use std::time::{Duration, Instant};

use crate::repo::Repo;
use crate::run_lock::{self, ActiveRun, EffectLock};
use crate::store::Store;
use crate::worktree::Worktree;

/// How long a signal waits for a commit or revert in flight to finish and be recorded.
const EFFECT_GRACE: Duration = Duration::from_secs(10);

/// Starts the signal thread. Called once, by the command line, before the work of a command
/// that records a run.
///
/// The handlers are in place when this returns, not whenever the thread is first scheduled:
/// a signal that comes right after (a test's, or git's death the moment the work starts) must
/// close the run, never kill the process with its default action.
pub fn install() {
    let Some(signals) = Signals::catch() else {
        return;
    };
    die_with_git();
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(code) = signals.wait() {
                stop(code);
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "cannot watch for signals");
    }
}

/// SIGINT and SIGTERM caught, waiting to be received.
struct Signals(Caught);

impl Signals {
    fn catch() -> Option<Self> {
        use tokio::signal::unix::SignalKind;
        Caught::catch(&[SignalKind::interrupt(), SignalKind::terminate()])
            .inspect_err(|error| tracing::warn!(%error, "cannot watch for signals"))
            .ok()
            .map(Self)
    }

    /// Blocks until SIGINT or SIGTERM; the exit code that goes with it.
    fn wait(self) -> Option<i32> {
        match self.0.wait()? {
            0 => Some(130),
            _ => Some(143),
        }
    }
}

/// Signals whose handlers are installed, to be waited for on any thread.
///
/// tokio's handler, once a stream is made, stays installed for the rest of the process and
/// only records the signal: until someone waits, a caught signal does nothing at all.
pub struct Caught {
    runtime: tokio::runtime::Runtime,
    streams: Vec<tokio::signal::unix::Signal>,
}

impl Caught {
    /// Installs the handlers for `kinds` now, on the calling thread.
    pub fn catch(kinds: &[tokio::signal::unix::SignalKind]) -> std::io::Result<Caught> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let streams = runtime.block_on(async {
            kinds
                .iter()
                .map(|&kind| tokio::signal::unix::signal(kind))
                .collect::<std::io::Result<Vec<_>>>()
        })?;
        Ok(Caught { runtime, streams })
    }

    /// Blocks until one of the signals comes; its position in the kinds caught.
    pub fn wait(self) -> Option<usize> {
        let Caught {
            runtime,
            mut streams,
        } = self;
        runtime.block_on(std::future::poll_fn(|context| {
            for (position, stream) in streams.iter_mut().enumerate() {
                match stream.poll_recv(context) {
                    std::task::Poll::Ready(Some(())) => {
                        return std::task::Poll::Ready(Some(position));
                    }
                    std::task::Poll::Ready(None) => return std::task::Poll::Ready(None),
                    std::task::Poll::Pending => {}
                }
            }
            std::task::Poll::Pending
        }))
    }
}

/// Closes the run in progress, stops the playbooks and exits.
fn stop(code: i32) -> ! {
    let signal = if code == 130 { "SIGINT" } else { "SIGTERM" };
    if let Some(active) = run_lock::active_run() {
        crate::process_groups::kill_all();
        match EffectLock::acquire_until(&active.state_dir, Instant::now() + EFFECT_GRACE) {
            Some(_effects) => close(&active, signal),
            // A `git commit` still running holds the run's lock too: the run is closed by the
            // first command after it has finished, with its commit.
            None => eprintln!(
                "warning: run {} stopped by {signal} while git was still committing; the next command records how it ended",
                active.run
            ),
        }
    } else {
        crate::process_groups::kill_all();
    }
    std::process::exit(code)
}

fn close(active: &ActiveRun, signal: &str) {
    let Ok(repo) = Repo::open(&active.git_dir) else {
        return;
    };
    let store = Store::new(&repo);
    let worktree = repo.work_tree().map(Worktree::new);
    let why = format!("stopped by {signal}");
    match crate::reconcile::close(&store, worktree.as_ref(), &active.run, &why) {
        Ok(_) => {
            run_lock::remove(&active.state_dir, &active.run);
            eprintln!(
                "warning: run {} {why}; recorded it as interrupted",
                active.run
            );
        }
        Err(error) => {
            eprintln!(
                "warning: run {} {why}; it could not be recorded now ({error}), the next command will",
                active.run
            );
        }
    }
}

/// Asks for SIGTERM when the parent process, if it is `git`, dies.
fn die_with_git() {
    #[cfg(target_os = "linux")]
    {
        let Some(parent) = rustix::process::getppid() else {
            return;
        };
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", parent.as_raw_nonzero()));
        if comm.is_ok_and(|name| name.trim() == "git") {
            let _ = rustix::process::set_parent_process_death_signal(Some(
                rustix::process::Signal::TERM,
            ));
            // git may have died between the look and the request, which then never fires.
            if rustix::process::getppid() != Some(parent) {
                let _ = rustix::process::kill_process(
                    rustix::process::getpid(),
                    rustix::process::Signal::TERM,
                );
            }
        }
    }
}
