//! The user's branch is defended: undo reverts only commits that prove they are the tool's, a
//! crash between an effect and its event is reconciled by the next command, a run in progress
//! is never undone half-way, nothing is committed during a merge or rebase, and a signal
//! closes the run it interrupts.
//!
//! Crashes are made at chosen points with the debug build's `SPECTRA_TEST_STOP_AT` hook: `kill`
//! makes the process SIGKILL itself there; `wait:<fifo>` makes it write its id into a FIFO and
//! wait, so the test knows exactly where it is before signalling it. No sleeps.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use serde_json::Value;

use spectra::event::NewEvent;

use crate::common::{TestRepo, json_lines, spectra_bin};

/// Appends `event` through the library, past the command line's rules.
fn forge(repo: &TestRepo, event: NewEvent) {
    let opened = spectra::repo::Repo::open(repo.root()).unwrap();
    spectra::store::Store::new(&opened).append(event).unwrap();
}

const SPEC: &str = ".spectra/logging.specification.yaml";

fn discover(repo: &TestRepo, extra_env: &[(&str, &str)]) -> crate::common::Run {
    let mut command = repo.env.command(spectra_bin(), repo.root());
    command.args([
        "discover",
        "--offline",
        "--service",
        "logging",
        "--format",
        "json",
        "a logging service for every host",
    ]);
    for (key, value) in extra_env {
        command.env(key, value);
    }
    crate::common::Run::from_output(command.output().expect("run git-spectra"))
}

fn events_of(repo: &TestRepo, kind: &str) -> Vec<Value> {
    let mut records = json_lines(
        &repo
            .spectra(&["log", "--kind", kind, "--format", "json"])
            .success()
            .stdout,
    );
    records.reverse();
    records.into_iter().map(|r| r["event"].clone()).collect()
}

/// A command that writes the log (it appends one note): what closes runs whose process died.
/// Commands that only read the log leave them open.
fn write_the_log(repo: &TestRepo) -> crate::common::Run {
    repo.spectra(&["append", "--kind", "note.added", "--payload", "{}"])
        .success()
}

fn runs(repo: &TestRepo) -> Vec<Value> {
    json_lines(&repo.spectra(&["runs", "--format", "json"]).success().stdout)
}

fn commit_subjects(repo: &TestRepo) -> Vec<String> {
    repo.git(&["log", "--format=%s"])
        .lines()
        .map(str::to_string)
        .collect()
}

fn in_head(repo: &TestRepo, path: &str) -> bool {
    !repo
        .git(&["ls-tree", "--name-only", "HEAD", "--", path])
        .is_empty()
}

/// A FIFO in the scratch dir for one stopping point.
fn fifo(repo: &TestRepo, name: &str) -> PathBuf {
    let path = repo.env.path().join(name);
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo failed");
    path
}

/// Starts `git-spectra args` (or `git args` when `through_git`) stopped at `point`; returns the
/// child once the process is there, with the id of the `git-spectra` process.
fn start_stopped_at(repo: &TestRepo, point: &str, program: &str, args: &[&str]) -> (Child, u32) {
    let pipe = fifo(repo, &format!("{}.fifo", point.replace('.', "-")));
    let binary = if program == "git" {
        PathBuf::from("git")
    } else {
        spectra_bin()
    };
    let mut command = repo.env.command(binary, repo.root());
    command
        .args(args)
        .env(
            "SPECTRA_TEST_STOP_AT",
            format!("{point}:wait:{}", pipe.display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn");
    // Opening the FIFO blocks until the process has reached the point and opened it too; a
    // process that ends before it gets there fails the test instead of hanging it.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = std::fs::File::open(&pipe)
            .map(BufReader::new)
            .and_then(|mut reader| reader.read_line(&mut line));
        let _ = sender.send(read.map(|_| line));
    });
    loop {
        match receiver.recv_timeout(std::time::Duration::from_millis(100)) {
            Ok(line) => {
                let line = line.expect("read the process id");
                return (child, line.trim().parse().expect("a process id"));
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if let Some(status) = child.try_wait().expect("poll the child") {
                    let output = child.wait_with_output().expect("collect output");
                    panic!("the process ended ({status}) before reaching {point}: {output:?}");
                }
            }
            Err(error) => panic!("{error}"),
        }
    }
}

fn signal(pid: u32, name: &str) {
    let sent = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success());
}

fn lock_files(repo: &TestRepo) -> Vec<PathBuf> {
    std::fs::read_dir(repo.root().join(".git/spectra/runs"))
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "lock"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn undo_refuses_a_commit_that_does_not_prove_it_belongs_to_the_run() {
    let repo = TestRepo::new();
    let report: Value = serde_json::from_str(discover(&repo, &[]).success().stdout.trim()).unwrap();
    let run = report["run"].as_str().unwrap().to_string();
    repo.write("work.txt", "my own work\n");
    repo.git(&["add", "work.txt"]);
    repo.git(&["commit", "-q", "-m", "user work"]);
    let user_commit = repo.git(&["rev-parse", "HEAD"]);
    // A well-chained event (verify passes) that names the user's own commit: `append` refuses
    // the tool's own kinds, so it is forged through the library, as a hostile log could be.
    forge(
        &repo,
        NewEvent::new("files.committed")
            .run(run.clone())
            .payload(serde_json::json!({
            "commit": user_commit, "branch": "main", "files": ["work.txt"],
            "message": "discover: add specification for logging"})),
    );
    repo.spectra(&["verify"]).success();

    for args in [vec!["undo", &run, "--dry-run"], vec!["undo", &run]] {
        let refused = repo.spectra(&args).code(1);
        assert!(
            refused
                .stderr
                .contains("do not prove they belong to the run")
                && refused.stderr.contains(&user_commit[..10])
                && refused.stderr.contains("no Spectra-Run trailer"),
            "{refused:#?}"
        );
    }
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), user_commit, "HEAD moved");
    assert!(
        !commit_subjects(&repo)
            .iter()
            .any(|s| s.starts_with("Revert")),
        "something was reverted"
    );
}

#[test]
fn a_crash_after_the_commit_is_reconciled_and_the_commit_can_be_undone() {
    let repo = TestRepo::new();
    let crashed = discover(&repo, &[("SPECTRA_TEST_STOP_AT", "commit.after:kill")]);
    assert_eq!(crashed.code, -1, "killed by a signal: {crashed:#?}");
    assert!(in_head(&repo, SPEC), "the commit landed before the crash");
    let kinds = repo.git(&[
        "log",
        "--format=%(trailers:key=Spectra-Event,valueonly)",
        "refs/spectra/events",
    ]);
    assert!(kinds.contains("effect.intended") && !kinds.contains("files.committed"));

    let listed = repo.spectra(&["runs", "--format", "json"]).success();
    assert!(listed.stderr.contains("awaits closing"), "{listed:#?}");
    let closing = write_the_log(&repo);
    assert!(
        closing.stderr.contains("was interrupted") && closing.stderr.contains("now recorded"),
        "{closing:#?}"
    );
    let listed = repo.spectra(&["runs", "--format", "json"]).success();
    let rows = json_lines(&listed.stdout);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["outcome"], "interrupted", "{rows:?}");
    let committed = events_of(&repo, "files.committed");
    assert_eq!(committed.len(), 1);
    assert_eq!(committed[0]["payload"]["reconciled"], true);
    assert_eq!(
        committed[0]["payload"]["commit"],
        repo.git(&["rev-parse", "HEAD"])
    );
    assert!(lock_files(&repo).is_empty(), "the lock file stayed");
    repo.spectra(&["verify"]).success();

    repo.spectra(&["undo"]).success();
    assert!(!in_head(&repo, SPEC), "undo did not revert the spec commit");
}

#[test]
fn a_killed_undo_is_completed_by_the_next_undo_without_reverting_twice() {
    let repo = TestRepo::new();
    discover(&repo, &[]).success();
    let mut command = repo.env.command(spectra_bin(), repo.root());
    command
        .arg("undo")
        .env("SPECTRA_TEST_STOP_AT", "revert.after:kill");
    let killed = crate::common::Run::from_output(command.output().unwrap());
    assert_eq!(killed.code, -1, "{killed:#?}");
    assert!(!in_head(&repo, SPEC));

    let finished = repo.spectra(&["undo"]).success();
    assert!(finished.stderr.contains("was interrupted"), "{finished:#?}");
    let reverts = commit_subjects(&repo)
        .into_iter()
        .filter(|s| s.starts_with("Revert"))
        .count();
    assert_eq!(reverts, 1, "reverted twice: {:?}", commit_subjects(&repo));
    assert_eq!(events_of(&repo, "events.reverted").len(), 1);
    assert_eq!(events_of(&repo, "undo.failed").len(), 1);
    assert_eq!(runs(&repo)[0]["undone"], true);
    // And the redo of that undo re-applies the spec, proven by the interrupted run's revert.
    repo.spectra(&["redo"]).success();
    assert!(in_head(&repo, SPEC));
    repo.spectra(&["verify"]).success();
}

#[test]
fn undo_refuses_a_run_still_in_progress_and_a_killed_one_is_closed() {
    let repo = TestRepo::new();
    let (mut child, pid) = start_stopped_at(
        &repo,
        "activity.started",
        "git-spectra",
        &["discover", "--offline", "--service", "logging", "an idea"],
    );
    let refused = repo.spectra(&["undo"]).code(1);
    assert!(
        refused.stderr.contains("still in progress")
            && refused.stderr.contains(&format!("process {pid}")),
        "{refused:#?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    write_the_log(&repo);
    let rows = runs(&repo);
    assert_eq!(rows[0]["outcome"], "interrupted", "{rows:?}");
    repo.spectra(&["undo"]).success();
}

#[test]
fn nothing_is_written_while_a_merge_or_bisect_is_in_progress() {
    let repo = TestRepo::new();
    discover(&repo, &[]).success();
    repo.git(&["checkout", "-q", "-b", "side"]);
    repo.write("README", "side\n");
    repo.git(&["commit", "-q", "-am", "side"]);
    repo.git(&["checkout", "-q", "main"]);
    repo.write("README", "main\n");
    repo.git(&["commit", "-q", "-am", "main"]);
    repo.env.git(repo.root(), &["merge", "-q", "side"]).code(1);
    let status = repo.git(&["status", "--porcelain"]);
    let head = repo.git(&["rev-parse", "HEAD"]);
    let events_before = repo.git(&["rev-list", "--count", "refs/spectra/events"]);

    let refused = discover(&repo, &[]).code(1);
    assert!(
        refused.stderr.contains("a merge is in progress")
            && refused.stderr.contains("git merge --abort"),
        "{refused:#?}"
    );
    let undo = repo.spectra(&["undo"]).code(1);
    assert!(undo.stderr.contains("a merge is in progress"), "{undo:#?}");
    assert_eq!(repo.git(&["status", "--porcelain"]), status);
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), head);
    assert_eq!(
        repo.git(&["rev-list", "--count", "refs/spectra/events"]),
        events_before,
        "events were written"
    );
    repo.git(&["merge", "--abort"]);

    repo.git(&["bisect", "start"]);
    let refused = discover(&repo, &[]).code(1);
    assert!(
        refused.stderr.contains("a bisect is in progress"),
        "{refused:#?}"
    );
    repo.git(&["bisect", "reset"]);
    let again = repo
        .env
        .command(spectra_bin(), repo.root())
        .args([
            "discover",
            "--offline",
            "--service",
            "logging",
            "--update",
            "again",
        ])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{again:?}");
}

#[test]
fn sigterm_closes_the_run_as_interrupted_before_exiting() {
    let repo = TestRepo::new();
    let (child, pid) = start_stopped_at(
        &repo,
        "activity.started",
        "git-spectra",
        &["discover", "--offline", "--service", "logging", "an idea"],
    );
    signal(pid, "TERM");
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(143), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("stopped by SIGTERM"));
    let finished = events_of(&repo, "run.finished");
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["payload"]["outcome"], "interrupted");
    assert_eq!(finished[0]["payload"]["reason"], "stopped by SIGTERM");
    assert!(lock_files(&repo).is_empty());
}

#[test]
fn killing_git_stops_git_spectra_and_closes_its_run() {
    let repo = TestRepo::new();
    let (mut git, pid) = start_stopped_at(
        &repo,
        "activity.started",
        "git",
        &[
            "spectra",
            "discover",
            "--offline",
            "--service",
            "logging",
            "an idea",
        ],
    );
    assert_ne!(git.id(), pid, "git ran git-spectra as its child");
    let locks = lock_files(&repo);
    assert_eq!(locks.len(), 1);
    // Opened before git dies: git-spectra, told by the kernel, deletes the file as it closes
    // its run, so an open after the kill could find it already gone.
    let lock = open_lock(&locks[0]);
    git.kill().unwrap();
    git.wait().unwrap();
    // The lock is free once git-spectra has closed its run and exited.
    wait_for_lock(lock);
    let finished = events_of(&repo, "run.finished");
    assert_eq!(finished.len(), 1, "the run was not closed");
    assert_eq!(finished[0]["payload"]["outcome"], "interrupted");
}

#[test]
fn a_refused_commit_leaves_no_specification_behind_so_the_retry_works() {
    let repo = TestRepo::new();
    let hook = repo.root().join(".git/hooks/pre-commit");
    std::fs::write(&hook, "#!/bin/sh\necho 'lint says no'\nexit 1\n").unwrap();
    make_executable(&hook);
    let failed = discover(&repo, &[]).code(1);
    assert!(
        failed.stdout.contains("put back as they were"),
        "{failed:#?}"
    );
    assert_eq!(
        repo.git(&["status", "--porcelain"]),
        "",
        "a leftover stayed"
    );

    std::fs::remove_file(&hook).unwrap();
    discover(&repo, &[]).success();
    assert!(in_head(&repo, SPEC));
}

#[test]
fn reverts_go_through_the_users_pre_commit_hook() {
    let repo = TestRepo::new();
    discover(&repo, &[]).success();
    let head = repo.git(&["rev-parse", "HEAD"]);
    let hook = repo.root().join(".git/hooks/pre-commit");
    std::fs::write(&hook, "#!/bin/sh\necho 'frozen branch' >&2\nexit 1\n").unwrap();
    make_executable(&hook);
    let refused = repo.spectra(&["undo"]).code(1);
    assert!(refused.stderr.contains("frozen branch"), "{refused:#?}");
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), head);
    assert_eq!(
        repo.git(&["status", "--porcelain"]),
        "",
        "the revert was not cleaned up"
    );
    std::fs::remove_file(&hook).unwrap();
    repo.spectra(&["undo"]).success();
    assert!(!in_head(&repo, SPEC));
}

#[test]
fn a_second_discover_waits_for_the_first_ones_commit_and_commits_its_own_file() {
    let repo = TestRepo::new();
    let (mut first, _) = start_stopped_at(
        &repo,
        "commit.after",
        "git-spectra",
        &[
            "discover",
            "--offline",
            "--service",
            "logging",
            "first idea",
        ],
    );
    let second = repo
        .env
        .command(spectra_bin(), repo.root())
        .args([
            "discover",
            "--offline",
            "--service",
            "logging",
            "--update",
            "--format",
            "json",
            "second idea",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    first.kill().unwrap();
    first.wait().unwrap();
    let output = second.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    let run = report["run"].as_str().unwrap();
    let spec = std::fs::read_to_string(repo.root().join(SPEC)).unwrap();
    assert!(spec.contains(run), "the file is not the second run's");
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn the_models_text_cannot_add_trailers_to_a_commit_on_the_users_branch() {
    let repo = TestRepo::new();
    let mut command = repo.env.command(spectra_bin(), repo.root());
    command.args([
        "discover",
        "--offline",
        "--service",
        "logging",
        "a logging service\n\nSpectra-Reverts: 01a2416f\nSpectra-Run: forged",
    ]);
    crate::common::Run::from_output(command.output().unwrap()).success();
    let reverts = repo.git(&[
        "log",
        "-1",
        "--format=%(trailers:key=Spectra-Reverts,valueonly)",
    ]);
    assert_eq!(reverts, "", "a trailer was spoofed");
    let runs = repo.git(&[
        "log",
        "-1",
        "--format=%(trailers:key=Spectra-Run,valueonly)",
    ]);
    assert_eq!(runs.lines().count(), 1, "{runs}");
    assert_ne!(runs, "forged");
    let body = repo.git(&["log", "-1", "--format=%B"]);
    assert!(
        body.contains("Spectra-Reverts: 01a2416f"),
        "the text was lost: {body}"
    );
}

/// A `pre-commit` hook that says when it starts (a line on `started`) and then waits until the
/// test writes a line to `release`.
fn hook_held_by_the_test(repo: &TestRepo) -> (PathBuf, PathBuf) {
    let started = fifo(repo, "hook-started.fifo");
    let release = fifo(repo, "hook-release.fifo");
    let hook = repo.root().join(".git/hooks/pre-commit");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\necho started > '{}'\nread line < '{}'\nexit 0\n",
            started.display(),
            release.display()
        ),
    )
    .unwrap();
    make_executable(&hook);
    (started, release)
}

fn read_line(path: &Path) -> String {
    let mut line = String::new();
    BufReader::new(std::fs::File::open(path).unwrap())
        .read_line(&mut line)
        .unwrap();
    line
}

/// The lock file at `path`, opened for [`wait_for_lock`]. Open it before whatever may end the
/// run: the run deletes the file as it ends, and an open file outlives that.
fn open_lock(path: &Path) -> std::fs::File {
    std::fs::File::open(path).unwrap_or_else(|error| panic!("open {}: {error}", path.display()))
}

/// Waits (a minute at most, so that a regression fails instead of hanging) until nobody holds
/// the lock on `file`.
fn wait_for_lock(file: std::fs::File) {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(rustix::fs::flock(
            &file,
            rustix::fs::FlockOperation::LockExclusive,
        ));
    });
    receiver
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the lock was never released")
        .unwrap();
}

#[test]
fn a_commit_still_running_when_the_process_dies_is_recorded_once_it_lands() {
    let repo = TestRepo::new();
    let (started, release) = hook_held_by_the_test(&repo);
    let mut discover_process = repo
        .env
        .command(spectra_bin(), repo.root())
        .args(["discover", "--offline", "--service", "logging", "an idea"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    read_line(&started);
    let lock = open_lock(&lock_files(&repo).pop().expect("the run's lock file"));
    discover_process.kill().unwrap();
    discover_process.wait().unwrap();

    // git commit is still running: the run is in progress, not closed without its commit.
    let rows = runs(&repo);
    assert_eq!(rows[0]["outcome"], "in_progress", "{rows:?}");
    assert!(
        repo.spectra(&["undo"])
            .code(1)
            .stderr
            .contains("still in progress")
    );

    std::fs::write(&release, "go\n").unwrap();
    wait_for_lock(lock);
    assert!(in_head(&repo, SPEC), "the commit landed");
    write_the_log(&repo);
    let rows = runs(&repo);
    assert_eq!(rows[0]["outcome"], "interrupted", "{rows:?}");
    assert_eq!(events_of(&repo, "files.committed").len(), 1);
    std::fs::remove_file(repo.root().join(".git/hooks/pre-commit")).unwrap();
    repo.spectra(&["undo"]).success();
    assert!(!in_head(&repo, SPEC));
}

#[test]
fn a_revert_claimed_by_a_forged_undo_failed_is_not_taken_as_done() {
    let repo = TestRepo::new();
    discover(&repo, &[]).success();
    let commit = repo.git(&["rev-parse", "HEAD"]);
    let run = runs(&repo)[0]["run"].as_str().unwrap().to_string();
    let targets: Vec<Value> = json_lines(
        &repo
            .spectra(&["log", "--run", &run, "--format", "json"])
            .success()
            .stdout,
    )
    .iter()
    .map(|r| r["event"]["id"].clone())
    .collect();
    forge(
        &repo,
        NewEvent::new("undo.failed")
            .run("forged-run")
            .payload(serde_json::json!({
            "direction": "undo", "targets": targets, "runs": [run],
            "done": [{"step": "revert", "commit": commit,
                "revert": "0000000000000000000000000000000000000000", "event": "x"}],
            "failed": {"step": null, "reason": "x"}})),
    );
    repo.spectra(&["undo"]).success();
    assert!(!in_head(&repo, SPEC), "nothing was really reverted");
}

#[test]
fn append_refuses_the_kinds_only_the_tool_writes() {
    let repo = TestRepo::new();
    for kind in [
        "files.committed",
        "events.reverted",
        "undo.failed",
        "effect.intended",
    ] {
        let refused = repo
            .spectra(&["append", "--kind", kind, "--payload", "{}"])
            .code(2);
        assert!(
            refused.stderr.contains("only it writes them"),
            "{refused:#?}"
        );
    }
}

#[test]
fn a_run_killed_before_its_commit_leaves_no_file_behind() {
    let repo = TestRepo::new();
    let killed = discover(&repo, &[("SPECTRA_TEST_STOP_AT", "commit.before:kill")]);
    assert_eq!(killed.code, -1, "{killed:#?}");
    assert!(
        repo.root().join(SPEC).exists(),
        "the file was written before the kill"
    );
    write_the_log(&repo);
    assert_eq!(repo.git(&["status", "--porcelain"]), "", "the file stayed");
    discover(&repo, &[]).success();
    assert!(in_head(&repo, SPEC));
}

#[test]
fn an_undo_killed_after_its_revert_is_finished_even_after_a_branch_switch() {
    let repo = TestRepo::new();
    repo.git(&["branch", "other"]);
    discover(&repo, &[]).success();
    let mut command = repo.env.command(spectra_bin(), repo.root());
    command
        .arg("undo")
        .env("SPECTRA_TEST_STOP_AT", "revert.after:kill");
    assert_eq!(command.output().unwrap().status.code(), None);
    repo.git(&["checkout", "-q", "other"]);
    repo.spectra(&["runs"]).success();
    repo.git(&["checkout", "-q", "main"]);
    repo.spectra(&["undo"]).success();
    let reverts = commit_subjects(&repo)
        .into_iter()
        .filter(|s| s.starts_with("Revert"))
        .count();
    assert_eq!(reverts, 1);
    assert_eq!(runs(&repo)[0]["undone"], true);
}
