//! `git spectra sync` merging two long logs that diverged, against plain git moving the same
//! objects in the same run; then the first fold of the merged log.
//!
//! Run by hand (not in CI): `cargo bench --bench sync` (`-- --common N --diverged N` change the
//! shape, `-- --rounds N` the number of rounds, `-- --dir DIR` makes the scratch repositories
//! under DIR instead of the system's temporary directory, `-- --keep DIR` works in DIR and
//! leaves the prepared repositories there). It prepares, through the library (batches of 1,000
//! events, each one pack, as a run's events are), a bare remote and two clones whose logs share
//! 45,000 events and then have 5,000 each of their own: clone A's log is on the remote, clone B
//! has its own and last fetched the remote at the common event. Each round then works on fresh
//! copies of B and of the remote, and times:
//!
//! 1. plain git moving the same objects: `git fetch` of A's log into B's remote-tracking ref,
//!    and `git push` of B's 5,000 events and a merge commit (made with `git commit-tree`, not
//!    timed) back to the remote: the transfer baseline;
//! 2. `git spectra sync`: wall time, peak memory (GNU time's maximum resident set size: the
//!    largest single process of the sync, ours or one of the git processes it runs), and our
//!    work on top of git's transfer (sync minus the baseline). Target: < 1 s;
//! 3. the same sync as its three steps, `git spectra fetch`, `merge`, `push`, to show where the
//!    time goes;
//! 4. the first fold after the merge (`manifest --format json`, then `stats --format json`,
//!    B's caches being at B's tip before the sync), the same again (cached), and `manifest`
//!    with no cache at all, as the bearing for a fold from scratch. Target: first < 1 s.
//!
//! Results go in docs/performance.md under "Sync".

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spectra::event::{NewEvent, kind};
use spectra::repo::Repo;
use spectra::store::Store;

mod common;
use common::git;

const BIN: &str = env!("CARGO_BIN_EXE_git-spectra");
const EVENTS_PER_RUN: usize = 10;
const BATCH: usize = 1_000;
const GNU_TIME: &str = "/usr/bin/time";

struct Args {
    common: usize,
    diverged: usize,
    rounds: usize,
    dir: Option<PathBuf>,
    keep: Option<PathBuf>,
}

fn parse_args() -> Args {
    let mut args = Args {
        common: 45_000,
        diverged: 5_000,
        rounds: 3,
        dir: None,
        keep: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for (i, flag) in argv.iter().enumerate() {
        let value = || argv.get(i + 1).and_then(|v| v.parse().ok());
        match flag.as_str() {
            "--common" => args.common = value().expect("--common N"),
            "--diverged" => args.diverged = value().expect("--diverged N"),
            "--rounds" => args.rounds = value().expect("--rounds N"),
            "--dir" => args.dir = argv.get(i + 1).map(PathBuf::from),
            "--keep" => args.keep = argv.get(i + 1).map(PathBuf::from),
            _ => {} // cargo bench passes `--bench`
        }
    }
    args
}

/// A discover-shaped run of ten events for `service`.
fn run_events(run: &str, service: &str, activity: &str) -> Vec<NewEvent> {
    let events = [
        NewEvent::new(kind::RUN_STARTED).payload(json!({"command": activity, "input": "idea", "dry_run": false})),
        NewEvent::new(kind::ACTIVITY_STARTED).activity(activity).payload(json!({"input": "idea", "context": {}})),
        NewEvent::new(kind::LLM_CALLED).activity(activity).payload(json!({"attempt": 1, "status": 200, "latency_ms": 900, "model": "m-small",
            "usage": {"prompt_tokens": 900, "completion_tokens": 120, "total_tokens": 1020}})),
        NewEvent::new(kind::DECISION_MADE).activity(activity).payload(json!({"decision": {"service_name": service}})),
        NewEvent::new(kind::PLAYBOOK_STARTED).activity(activity).payload(json!({"playbook": "repo.inventory"})),
        NewEvent::new(kind::PLAYBOOK_FINISHED).activity(activity).payload(json!({"playbook": "repo.inventory", "outcome": "succeeded", "duration_ms": 7})),
        NewEvent::new(kind::COMMIT_OBSERVED).payload(json!({"commit": "0", "subject": "work"})),
        NewEvent::new(kind::ACTIVITY_FINISHED).activity(activity).service(service)
            .payload(json!({"outcome": "succeeded", "duration_ms": 950, "outputs": {"service_name": service}, "errors": [], "quality_gates": {"g": true}})),
        NewEvent::new("note.added").payload(json!({"text": "a note"})),
        NewEvent::new(kind::RUN_FINISHED).payload(json!({"outcome": "succeeded", "duration_ms": 990})),
    ];
    events.into_iter().map(|event| event.run(run)).collect()
}

/// Appends `events` events (whole runs) to the log in `dir`, in batches of [`BATCH`]. Runs are
/// named `<who>-<n>` and decide for services `<who><n % 25>`, so the two sides of the merge
/// never decide for the same service: the common, conflict-free case.
fn fill(dir: &Path, who: &str, events: usize) {
    let repo = Repo::open(dir).expect("open the scratch repository");
    let store = Store::new(&repo);
    let mut batch = Vec::new();
    for n in 0..events / EVENTS_PER_RUN {
        let activity = ["discover", "plan", "design"][n % 3];
        let service = format!("{who}{}", n % 25);
        batch.extend(run_events(&format!("{who}-{n:06}"), &service, activity));
        if batch.len() >= BATCH {
            store
                .append_batch(std::mem::take(&mut batch))
                .expect("append a batch");
        }
    }
    if !batch.is_empty() {
        store.append_batch(batch).expect("append a batch");
    }
}

fn clone_dir(root: &Path, name: &str, remote: &Path) -> PathBuf {
    git(root, &["init", "-q", name]);
    let dir = root.join(name);
    git(&dir, &["config", "user.name", "Bench"]);
    git(&dir, &["config", "user.email", "bench@example.com"]);
    // Keep the layout the benchmark describes: one pack per batch, no background repacking.
    git(&dir, &["config", "spectra.store.autoGc", "false"]);
    git(&dir, &["remote", "add", "origin", remote.to_str().unwrap()]);
    dir
}

/// The remote holds A's log; B's log and its remote-tracking log share the first `common`
/// events with it, and B has `diverged` events of its own, with its caches at its tip.
fn prepare(root: &Path, args: &Args) -> (PathBuf, PathBuf) {
    let started = Instant::now();
    git(root, &["init", "-q", "--bare", "remote.git"]);
    let remote = root.join("remote.git");
    let a = clone_dir(root, "a", &remote);
    let b = clone_dir(root, "b", &remote);
    fill(&a, "common", args.common);
    git(&a, &["push", "-q", "origin", "refs/spectra/events"]);
    git(
        &b,
        &[
            "fetch",
            "-q",
            "origin",
            "refs/spectra/events:refs/spectra/events",
            "+refs/spectra/events:refs/spectra/remotes/origin/events",
        ],
    );
    fill(&a, "alice", args.diverged);
    fill(&b, "bob", args.diverged);
    git(&a, &["push", "-q", "origin", "refs/spectra/events"]);
    // B's folds and integrity check are cached at its own tip, as after its last run.
    for command in [
        &["manifest", "--format", "json"][..],
        &["stats", "--format", "json"],
    ] {
        spectra(&b, command);
    }
    println!(
        "prepared two logs of {} events ({} common, {} each their own) in {:.1} s",
        args.common + args.diverged,
        args.common,
        args.diverged,
        started.elapsed().as_secs_f64()
    );
    (remote, b)
}

/// A command's wall time, its peak resident set size in MB (GNU time's `%M`, when
/// `/usr/bin/time` is there) and its output.
struct Timed {
    wall: Duration,
    peak_mb: Option<f64>,
    stdout: String,
}

fn timed(dir: &Path, program: &str, args: &[&str]) -> Timed {
    let gnu_time = Path::new(GNU_TIME).exists();
    let rss_file = tempfile::NamedTempFile::new().expect("a file for GNU time");
    let mut command = if gnu_time {
        let mut command = Command::new(GNU_TIME);
        command
            .args(["-f", "%M", "-o"])
            .arg(rss_file.path())
            .arg(program);
        command
    } else {
        Command::new(program)
    };
    let started = Instant::now();
    let output = command
        .current_dir(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("run the command");
    let wall = started.elapsed();
    assert!(output.status.success(), "{program} {args:?}: {output:?}");
    let peak_mb = gnu_time
        .then(|| std::fs::read_to_string(rss_file.path()).ok())
        .flatten()
        .and_then(|kb| kb.trim().lines().last()?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0);
    Timed {
        wall,
        peak_mb,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    }
}

fn spectra(dir: &Path, args: &[&str]) -> Timed {
    timed(dir, BIN, args)
}

/// Fresh copies of B and of the remote, B's `origin` pointing at the copy.
fn copy_pair(remote: &Path, b: &Path, into: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(into).unwrap();
    let (remote_copy, b_copy) = (into.join("remote.git"), into.join("b"));
    for (from, to) in [(remote, &remote_copy), (b, &b_copy)] {
        let status = Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(to)
            .status()
            .unwrap();
        assert!(status.success());
    }
    git(
        &b_copy,
        &["remote", "set-url", "origin", remote_copy.to_str().unwrap()],
    );
    (remote_copy, b_copy)
}

/// Plain git moving what the sync moves: A's new events in, B's new events and one merge
/// commit out. Returns (fetch, push).
fn baseline(b: &Path) -> (Timed, Timed) {
    let fetch = timed(
        b,
        "git",
        &[
            "fetch",
            "-q",
            "--no-tags",
            "origin",
            "+refs/spectra/events:refs/spectra/remotes/origin/events",
        ],
    );
    let ours = git(b, &["rev-parse", "refs/spectra/events"]);
    let theirs = git(b, &["rev-parse", "refs/spectra/remotes/origin/events"]);
    let merge = git(
        b,
        &[
            "commit-tree",
            &format!("{}^{{tree}}", ours.trim()),
            "-p",
            ours.trim(),
            "-p",
            theirs.trim(),
            "-m",
            "merge",
        ],
    );
    let push = timed(
        b,
        "git",
        &[
            "push",
            "-q",
            "origin",
            &format!("{}:refs/spectra/events", merge.trim()),
        ],
    );
    (fetch, push)
}

struct Round {
    fetch: Timed,
    push: Timed,
    sync: Timed,
    steps: [Duration; 3],
    manifest: [Duration; 2],
    stats: [Duration; 2],
    manifest_cold: Duration,
}

fn round(remote: &Path, b: &Path, work: &Path) -> Round {
    let (_, base_b) = copy_pair(remote, b, &work.join("baseline"));
    let (fetch, push) = baseline(&base_b);

    let (_, sync_b) = copy_pair(remote, b, &work.join("sync"));
    let sync = spectra(&sync_b, &["sync", "--format", "json"]);
    let synced: Value = serde_json::from_str(&sync.stdout).expect("sync --format json");
    assert_eq!(synced["joined"]["result"], "merged", "{synced}");
    let fold = |args: &[&str]| spectra(&sync_b, args).wall;
    let manifest = [
        fold(&["manifest", "--format", "json"]),
        fold(&["manifest", "--format", "json"]),
    ];
    let stats = [
        fold(&["stats", "--format", "json"]),
        fold(&["stats", "--format", "json"]),
    ];
    std::fs::remove_dir_all(sync_b.join(".git/spectra/cache")).unwrap();
    let manifest_cold = fold(&["manifest", "--format", "json"]);

    let (_, steps_b) = copy_pair(remote, b, &work.join("steps"));
    let steps = ["fetch", "merge", "push"].map(|step| spectra(&steps_b, &[step]).wall);
    std::fs::remove_dir_all(work).unwrap();
    Round {
        fetch,
        push,
        sync,
        steps,
        manifest,
        stats,
        manifest_cold,
    }
}

fn ms(took: Duration) -> f64 {
    took.as_secs_f64() * 1e3
}

fn mb(timed: &Timed) -> String {
    timed
        .peak_mb
        .map_or("n/a".into(), |mb| format!("{mb:.0} MB"))
}

fn report(n: usize, r: &Round) {
    let transfer = r.fetch.wall + r.push.wall;
    let ours = ms(r.sync.wall) - ms(transfer);
    println!("round {n}:");
    println!(
        "  plain git   fetch {:>7.0} ms ({})  push {:>7.0} ms ({})  transfer {:>7.0} ms",
        ms(r.fetch.wall),
        mb(&r.fetch),
        ms(r.push.wall),
        mb(&r.push),
        ms(transfer)
    );
    println!(
        "  spectra     sync {:>8.0} ms, peak {}; our work on top of git's transfer {ours:>7.0} ms (target < 1000)",
        ms(r.sync.wall),
        mb(&r.sync)
    );
    println!(
        "  as steps    fetch {:>7.0} ms  merge {:>7.0} ms  push {:>7.0} ms",
        ms(r.steps[0]),
        ms(r.steps[1]),
        ms(r.steps[2])
    );
    println!(
        "  folds       manifest first {:>5.0} ms (target < 1000), again {:>5.0} ms; stats first {:>5.0} ms, again {:>5.0} ms; manifest with no cache {:>5.0} ms",
        ms(r.manifest[0]),
        ms(r.manifest[1]),
        ms(r.stats[0]),
        ms(r.stats[1]),
        ms(r.manifest_cold)
    );
}

fn main() {
    let args = parse_args();
    let scratch = match &args.dir {
        Some(dir) => tempfile::tempdir_in(dir).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let root = args
        .keep
        .clone()
        .unwrap_or_else(|| scratch.path().to_path_buf());
    std::fs::create_dir_all(&root).unwrap();
    println!(
        "git spectra sync benchmark ({}, {} rounds, scratch in {})",
        git(&root, &["--version"]).trim(),
        args.rounds,
        root.display()
    );
    if !Path::new(GNU_TIME).exists() {
        println!("({GNU_TIME} is missing: no peak memory figures)");
    }
    let (remote, b) = prepare(&root, &args);
    for n in 1..=args.rounds {
        let r = round(&remote, &b, &root.join(format!("round-{n}")));
        report(n, &r);
    }
}
