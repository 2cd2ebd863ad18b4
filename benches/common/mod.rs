//! What several benchmarks share: running git, and git's own cost of reading the log's blobs.
//! Each benchmark includes it with `mod common;` (it is a directory, so cargo does not take it
//! for a benchmark of its own).

#![allow(dead_code)] // each benchmark uses part of it

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `git <args>` in `dir`; panics with git's output when it fails. Returns standard output.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run git");
    assert!(output.status.success(), "git {args:?}: {output:?}");
    String::from_utf8(output.stdout).expect("utf-8")
}

/// `git cat-file --batch` reading every event's `event.json` (listing them is not timed): how
/// fast git reads the same blobs on this machine at this moment, the bearing for a walk.
pub fn cat_file_event_blobs(dir: &Path) -> Duration {
    let input = git(
        dir,
        &["log", "--format=%T:event.json", "refs/spectra/events"],
    );
    let started = Instant::now();
    let mut child = Command::new("git")
        .current_dir(dir)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run git cat-file");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(input.as_bytes()).expect("feed cat-file");
    });
    assert!(child.wait().expect("wait for cat-file").success());
    writer.join().expect("writer thread");
    started.elapsed()
}
