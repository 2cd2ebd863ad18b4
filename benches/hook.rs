//! What the post-commit hook adds to `git commit`, against the same commit with no hook, in the
//! same run.
//!
//! Run by hand (not in CI): `cargo bench --bench hook` (add `-- --commits 500` for more samples).
//! Three repositories get the same commits, interleaved so that drift in the machine's load hits
//! all of them alike: one with no hook, one with the hook installed but switched off with
//! `SPECTRA_HOOKS=0` (the cost of git starting the shell shim), and one with the hook recording
//! every commit. Prints p50/p95 of `git commit` wall time for each and the hook's overhead.
//! Results go in docs/performance.md under "Hooks".

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_git-spectra");

struct Setup {
    name: &'static str,
    dir: PathBuf,
    hook_installed: bool,
    hooks_env: Option<&'static str>,
    samples: Vec<Duration>,
}

fn main() {
    let commits = parse_commits();
    let scratch = tempfile::tempdir().expect("temp dir");
    let home = scratch.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let mut setups = vec![
        setup(scratch.path(), &home, "no hook", false, None),
        setup(
            scratch.path(),
            &home,
            "hook, SPECTRA_HOOKS=0",
            true,
            Some("0"),
        ),
        setup(scratch.path(), &home, "hook recording", true, None),
    ];
    let warm_up = 20;
    for round in 0..warm_up + commits {
        for setup in &mut setups {
            let took = timed_commit(setup, &home, round);
            if round >= warm_up {
                setup.samples.push(took);
            }
        }
    }
    report(&mut setups, commits);
    for setup in &setups {
        let stderr = std::fs::read_to_string(stderr_file(&setup.dir)).unwrap_or_default();
        assert!(stderr.is_empty(), "{}: {stderr}", setup.name);
    }
    // Any git spectra command first records what the shim noted and its background process
    // has not recorded yet; verify also checks the chain.
    run(command(BIN, &setups[2].dir, &home).arg("verify"));
    let recorded = events_in(&setups[2].dir, &home);
    assert_eq!(
        recorded,
        warm_up + commits + 1,
        "the recording hook recorded every commit"
    );
}

fn parse_commits() -> usize {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter()
        .position(|arg| arg == "--commits")
        .and_then(|i| argv.get(i + 1))
        .map_or(300, |n| n.parse().expect("--commits N"))
}

fn setup(
    root: &Path,
    home: &Path,
    name: &'static str,
    hook_installed: bool,
    hooks_env: Option<&'static str>,
) -> Setup {
    let dir = root.join(name.replace([' ', ',', '='], "-"));
    run(command("git", root, home)
        .args(["init", "-q", "-b", "main"])
        .arg(&dir));
    std::fs::write(dir.join("file"), "start\n").unwrap();
    run(command("git", &dir, home).args(["add", "file"]));
    run(command("git", &dir, home).args(["commit", "-q", "-m", "start"]));
    if hook_installed {
        run(command(BIN, &dir, home).args(["hooks", "install"]));
        // The first recorded commit: so every measured one appends to an existing log.
        run(command("git", &dir, home).args(["commit", "-q", "--allow-empty", "-m", "seed"]));
    }
    Setup {
        name,
        dir,
        hook_installed,
        hooks_env,
        samples: Vec::new(),
    }
}

/// Changes the file, stages it, and times only `git commit`.
fn timed_commit(setup: &Setup, home: &Path, round: usize) -> Duration {
    std::fs::write(setup.dir.join("file"), format!("round {round}\n")).unwrap();
    run(command("git", &setup.dir, home).args(["add", "file"]));
    let mut commit = command("git", &setup.dir, home);
    commit.args(["commit", "-q", "-m", &format!("round {round}")]);
    if let Some(value) = setup.hooks_env {
        commit.env("SPECTRA_HOOKS", value);
    }
    // Output goes to a file, as at a terminal: through a pipe the caller would also wait for the
    // shim's background recorder, which keeps the hook's stderr open so that its warnings reach
    // the user. The files are checked to be empty at the end.
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(stderr_file(&setup.dir))
        .expect("open the stderr file");
    commit.stdout(Stdio::null()).stderr(stderr);
    let started = Instant::now();
    let status = commit.status().expect("start git commit");
    let took = started.elapsed();
    assert!(status.success(), "{commit:?}: {status}");
    took
}

fn stderr_file(dir: &Path) -> PathBuf {
    dir.with_extension("stderr")
}

fn report(setups: &mut [Setup], commits: usize) {
    println!("git commit, {commits} commits per setup, interleaved (wall time)");
    let mut p50s = Vec::new();
    for setup in setups.iter_mut() {
        setup.samples.sort();
        let (p50, p95) = (
            percentile(&setup.samples, 50),
            percentile(&setup.samples, 95),
        );
        p50s.push((p50, p95));
        println!(
            "  {:<24} p50 {:>6.2} ms   p95 {:>6.2} ms{}",
            setup.name,
            ms(p50),
            ms(p95),
            if setup.hook_installed {
                ""
            } else {
                "   (baseline)"
            }
        );
    }
    let (base50, base95) = p50s[0];
    for (setup, (p50, p95)) in setups.iter().zip(&p50s).skip(1) {
        println!(
            "  overhead of {:<20} p50 {:>+6.2} ms   p95 {:>+6.2} ms",
            setup.name,
            ms(*p50) - ms(base50),
            ms(*p95) - ms(base95)
        );
    }
}

fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    let index = (sorted.len() * pct / 100).min(sorted.len() - 1);
    sorted[index]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn events_in(dir: &Path, home: &Path) -> usize {
    let output = command("git", dir, home)
        .args(["rev-list", "--count", "refs/spectra/events"])
        .output()
        .expect("git rev-list");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// A command with a pinned environment: no user config, a fixed identity, our binary on PATH.
fn command(program: &str, dir: &Path, home: &Path) -> Command {
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    );
    let mut command = Command::new(program);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", path)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "Bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .stdin(Stdio::null());
    command
}

fn run(command: &mut Command) {
    let output = command.output().expect("start the process");
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "{command:?}: {output:?}"
    );
}
