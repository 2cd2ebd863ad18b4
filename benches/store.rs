//! Event store throughput, against git plumbing measured in the same run.
//!
//! Run by hand (not in CI): `cargo bench --bench store` (add `-- --events 100000` to change the
//! size of the walk, `-- --walk-only` to skip the appends, `-- --keep DIR` to keep the walked
//! repository in `DIR/walk`, `-- --dir DIR` to make the scratch repositories under DIR instead
//! of the system's temporary directory). Prints events/s for single and batched appends next to a bash loop of
//! `git hash-object -w`, `git mktree`, `git commit-tree`, `git update-ref` doing the same events,
//! and the time to walk and decode the whole log (loose objects, then after `git gc`) next to
//! `git cat-file --batch` reading the same event.json blobs. Results go in docs/performance.md.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use spectra::event::NewEvent;
use spectra::repo::Repo;
use spectra::store::{Filter, Store};

mod common;
use common::{cat_file_event_blobs, git};

struct Args {
    plumbing_events: usize,
    single_events: usize,
    batch_events: usize,
    batch_size: usize,
    walk_events: usize,
    walk_only: bool,
    /// Keep the walk's repository here (for profiling) instead of a temporary directory.
    keep: Option<std::path::PathBuf>,
    /// Make the scratch repositories under this directory instead of the system's temporary one.
    dir: Option<std::path::PathBuf>,
}

fn parse_args() -> Args {
    let mut args = Args {
        plumbing_events: 500,
        single_events: 500,
        batch_events: 20_000,
        batch_size: 100,
        walk_events: 100_000,
        walk_only: false,
        keep: None,
        dir: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = || argv.get(i + 1).and_then(|v| v.parse().ok());
        match argv[i].as_str() {
            "--events" => args.walk_events = value().expect("--events N"),
            "--plumbing" => args.plumbing_events = value().expect("--plumbing N"),
            "--single" => args.single_events = value().expect("--single N"),
            "--walk-only" => args.walk_only = true,
            "--keep" => args.keep = argv.get(i + 1).map(std::path::PathBuf::from),
            "--dir" => args.dir = argv.get(i + 1).map(std::path::PathBuf::from),
            _ => {} // cargo bench passes `--bench`
        }
        i += 1;
    }
    args
}

fn scratch_repo(root: &Path, name: &str) -> std::path::PathBuf {
    git(root, &["init", "-q", name]);
    let dir = root.join(name);
    git(&dir, &["config", "user.name", "Bench"]);
    git(&dir, &["config", "user.email", "bench@example.com"]);
    dir
}

fn event(n: usize) -> NewEvent {
    NewEvent::new("bench.appended")
        .run("bench-run")
        .activity("discover")
        .service("bench")
        .payload(serde_json::json!({"n": n, "text": "an event of typical size with a sentence or two of payload"}))
}

/// The same work per event as the store, by hand: blob, tree, commit, ref update.
fn plumbing_loop(dir: &Path, events: usize, round: usize) -> Duration {
    let script = format!(
        r#"set -e
parent=""
for n in $(seq 1 {events}); do
  blob=$(printf '{{"kind":"bench.appended","n":%d}}' "$n" | git hash-object -w --stdin)
  tree=$(printf '100644 blob %s\tevent.json\n' "$blob" | git mktree)
  if [ -z "$parent" ]; then
    commit=$(git commit-tree "$tree" -m "bench: event $n")
    git update-ref refs/plumbing/events-{round} "$commit" ""
  else
    commit=$(git commit-tree "$tree" -p "$parent" -m "bench: event $n")
    git update-ref refs/plumbing/events-{round} "$commit" "$parent"
  fi
  parent=$commit
done"#
    );
    let started = Instant::now();
    let status = Command::new("bash")
        .current_dir(dir)
        .args(["-c", &script])
        .status()
        .expect("run bash");
    assert!(status.success());
    started.elapsed()
}

fn single_appends(dir: &Path, events: usize) -> Duration {
    let repo = Repo::open(dir).unwrap();
    let store = Store::new(&repo);
    let started = Instant::now();
    for n in 0..events {
        store.append(event(n)).unwrap();
    }
    started.elapsed()
}

fn batched_appends(dir: &Path, events: usize, batch_size: usize) -> Duration {
    let repo = Repo::open(dir).unwrap();
    let store = Store::new(&repo);
    let started = Instant::now();
    for batch in 0..events.div_ceil(batch_size) {
        let batch: Vec<NewEvent> = (0..batch_size)
            .map(|n| event(batch * batch_size + n))
            .collect();
        store.append_batch(batch).unwrap();
    }
    started.elapsed()
}

/// Every event with its commit, subject and digest (what `log` and `verify` need).
fn walk_all(dir: &Path) -> (usize, Duration) {
    let started = Instant::now();
    let repo = Repo::open(dir).unwrap();
    let count = Store::new(&repo)
        .events_oldest_first(&Filter::default())
        .unwrap()
        .len();
    (count, started.elapsed())
}

/// Every event alone (what the folds need): parents and trees come from git's commit-graph
/// where it covers the log.
fn walk_events(dir: &Path) -> (usize, Duration) {
    let started = Instant::now();
    let repo = Repo::open(dir).unwrap();
    let count = Store::new(&repo).events_after(None).unwrap().events.len();
    (count, started.elapsed())
}

fn per_second(events: usize, took: Duration) -> f64 {
    events as f64 / took.as_secs_f64()
}

fn main() {
    let args = parse_args();
    let root = match &args.dir {
        Some(dir) => tempfile::tempdir_in(dir).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    println!(
        "git spectra store benchmark ({})",
        git(root.path(), &["--version"]).trim()
    );

    if !args.walk_only {
        bench_appends(root.path(), &args);
    }
    let walk_root = args
        .keep
        .clone()
        .unwrap_or_else(|| root.path().to_path_buf());
    let walk_dir = scratch_repo(&walk_root, "walk");
    let fill_started = Instant::now();
    batched_appends(&walk_dir, args.walk_events, 1_000);
    println!(
        "filled a log of {} events in {:.1} s (batches of 1000)",
        args.walk_events,
        fill_started.elapsed().as_secs_f64()
    );
    report_walk(&walk_dir, "as written");
    git(&walk_dir, &["gc", "-q"]);
    report_walk(&walk_dir, "after git gc");
}

/// The file work no append of this format can avoid, per event: three new files written and
/// renamed into fan-out directories (the loose blob, tree and commit) and a lock file renamed
/// over a ref file (the compare-and-swap), in a directory beside the objects. Timed in the same
/// rounds as the rest, it is the floor under a single append in the file system's current
/// state, and plumbing time / floor time the best ratio any store could reach there.
fn file_floor(dir: &Path, events: usize, round: usize) -> Duration {
    use std::io::Write;
    let floor = dir.join(".git/floor");
    let write_then_rename = |temp: &Path, target: &Path, bytes: &[u8]| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(temp)
            .unwrap();
        file.write_all(bytes).unwrap();
        drop(file);
        std::fs::rename(temp, target).unwrap();
    };
    let started = Instant::now();
    for n in 0..events {
        for object in 0..3 {
            let id = format!("{:02x}{round}x{n}x{object}", (n * 3 + object) % 256);
            let fan_out = floor.join(&id[..2]);
            std::fs::create_dir_all(&fan_out).unwrap();
            write_then_rename(&fan_out.join("tmp_obj"), &fan_out.join(&id), &[b'x'; 200]);
        }
        write_then_rename(&floor.join("ref.lock"), &floor.join("ref"), &[b'0'; 41]);
    }
    started.elapsed()
}

/// The plumbing loop, single appends and the file-system floor take turns, a fifth of the
/// events at a time, so that all meet the same state of the file system: on ext4 without a
/// journal, creating a file costs more the more inodes were freed nearby in the last minutes
/// (by anyone), and each side frees one per event (the ref's old file).
fn bench_appends(root: &Path, args: &Args) {
    const ROUNDS: usize = 5;
    let dir = scratch_repo(root, "appends");
    let (mut plumbing, mut single, mut floor) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for round in 0..ROUNDS {
        plumbing += plumbing_loop(&dir, args.plumbing_events / ROUNDS, round);
        single += single_appends(&dir, args.single_events / ROUNDS);
        floor += file_floor(&dir, args.single_events / ROUNDS, round);
    }
    let plumbing_rate = per_second(args.plumbing_events, plumbing);
    println!(
        "plumbing loop     {:>6} events  {:>8.1} ms/event  {:>9.0} events/s",
        args.plumbing_events,
        plumbing.as_secs_f64() * 1e3 / args.plumbing_events as f64,
        plumbing_rate
    );
    let compared = |label: &str, events: usize, took: Duration, note: &str| {
        let rate = per_second(events, took);
        println!(
            "{label:<17} {events:>6} events  {:>8.3} ms/event  {rate:>9.0} events/s  {:>6.1}x plumbing ({note})",
            took.as_secs_f64() * 1e3 / events as f64,
            rate / plumbing_rate
        );
    };
    compared(
        "single appends",
        args.single_events,
        single,
        "target >= 20x",
    );
    compared(
        "file-system floor",
        args.single_events,
        floor,
        "the best any single append could do here: 3 files + 1 ref file",
    );
    let batched = batched_appends(&dir, args.batch_events, args.batch_size);
    compared(
        "batched appends",
        args.batch_events,
        batched,
        &format!("target >= 100x; batches of {}", args.batch_size),
    );
}

fn report_walk(dir: &Path, label: &str) {
    let cat_file = cat_file_event_blobs(dir);
    let (count, walk) = walk_all(dir);
    let (_, events) = walk_events(dir);
    println!(
        "walk+decode {label:<14} {count:>6} events  with commits {:>7.3} s  events only {:>7.3} s   git cat-file --batch {:>7.3} s   ratios {:.2} / {:.2} (target <= 1.0, and < 1 s)",
        walk.as_secs_f64(),
        events.as_secs_f64(),
        cat_file.as_secs_f64(),
        walk.as_secs_f64() / cat_file.as_secs_f64(),
        events.as_secs_f64() / cat_file.as_secs_f64()
    );
}
