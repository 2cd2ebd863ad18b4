//! Stopping points for crash tests, in debug builds only.
//!
//! The end-to-end tests stop the real process at a chosen point, between an effect and the
//! event that records it, to check that the next command reconciles what happened. They set
//! `SPECTRA_TEST_STOP_AT=<point>:kill` (the process kills itself with SIGKILL there, as an
//! out-of-memory kill or a power cut would) or `<point>:wait:<fifo>` (the process writes its
//! id into the FIFO, which blocks until the test opens it, then waits there to be signalled).
//! Release builds compile [`point`] to nothing.

/// Where the process is; stops there if the test asked for it.
pub fn point(name: &str) {
    #[cfg(debug_assertions)]
    stop_if_asked(name);
    #[cfg(not(debug_assertions))]
    let _ = name;
}

#[cfg(debug_assertions)]
fn stop_if_asked(name: &str) {
    let Ok(spec) = std::env::var("SPECTRA_TEST_STOP_AT") else {
        return;
    };
    let mut parts = spec.splitn(3, ':');
    if parts.next() != Some(name) {
        return;
    }
    match (parts.next(), parts.next()) {
        (Some("kill"), _) => {
            let _ = rustix::process::kill_process(
                rustix::process::getpid(),
                rustix::process::Signal::KILL,
            );
        }
        (Some("wait"), Some(fifo)) => {
            use std::io::Write;
            if let Ok(mut pipe) = std::fs::OpenOptions::new().write(true).open(fifo) {
                let _ = writeln!(pipe, "{}", std::process::id());
            }
            loop {
                std::thread::park();
            }
        }
        _ => {}
    }
}
