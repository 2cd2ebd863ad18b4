//! Many processes appending at once, and writers killed mid-append: no event is lost, none is
//! half-written, and the chain still verifies.
//!
//! The writers are this test binary run again with `SPECTRA_TEST_WRITER_*` set, so each is a real
//! separate process using the library's store exactly as `git spectra` does.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use spectra::event::NewEvent;
use spectra::repo::Repo;
use spectra::store::{Filter, Store};

use crate::common::{TestEnv, pinned_env};

const REPO_VAR: &str = "SPECTRA_TEST_WRITER_REPO";
const COUNT_VAR: &str = "SPECTRA_TEST_WRITER_COUNT";
const NAME_VAR: &str = "SPECTRA_TEST_WRITER_NAME";

/// The writer's body; a no-op (and trivially passing) unless run by the tests below.
#[test]
fn writer_process() {
    let (Ok(repo), Ok(count)) = (std::env::var(REPO_VAR), std::env::var(COUNT_VAR)) else {
        return;
    };
    let name = std::env::var(NAME_VAR).unwrap_or_default();
    let repo = Repo::open(Path::new(&repo)).unwrap();
    let store = Store::new(&repo);
    let mut out = std::io::stdout().lock();
    for n in 0..count.parse::<usize>().unwrap() {
        let stored = store
            .append(
                NewEvent::new("test.appended")
                    .run(format!("writer-{name}"))
                    .payload(serde_json::json!({"writer": name, "n": n})),
            )
            .unwrap();
        // Printed only once the append has returned: an acknowledged event.
        writeln!(out, "ID:{}", stored.event.id).unwrap();
        out.flush().unwrap();
    }
}

fn spawn_writer(env: &TestEnv, repo: &Path, name: &str, count: usize) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "store_concurrency::writer_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_clear()
        .envs(pinned_env(&env.home()))
        .env(REPO_VAR, repo)
        .env(COUNT_VAR, count.to_string())
        .env(NAME_VAR, name)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.spawn().unwrap()
}

fn acknowledged_ids(output: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(output)
        .lines()
        // libtest prints `test name ... ` on the same line before the first id.
        .filter_map(|line| line.split_once("ID:").map(|(_, id)| id.trim().to_string()))
        .collect()
}

fn all_event_ids(repo: &Path) -> Vec<String> {
    let repo = Repo::open(repo).unwrap();
    Store::new(&repo)
        .events_oldest_first(&Filter::default())
        .unwrap()
        .into_iter()
        .map(|stored| stored.event.id)
        .collect()
}

fn verified_count(repo: &Path) -> usize {
    let repo = Repo::open(repo).unwrap();
    let verification = Store::new(&repo).verify().unwrap();
    assert!(verification.failure.is_none(), "{:?}", verification.failure);
    verification.verified
}

#[test]
fn eight_processes_appending_500_events_each_lose_nothing() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let writers: Vec<Child> = (0..8)
        .map(|n| spawn_writer(&env, &repo, &n.to_string(), 500))
        .collect();
    let mut acknowledged = Vec::new();
    for writer in writers {
        let output = writer.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        acknowledged.extend(acknowledged_ids(&output.stdout));
    }
    assert_eq!(acknowledged.len(), 4_000);

    let ids = all_event_ids(&repo);
    assert_eq!(ids.len(), 4_000, "exactly the appended events");
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), 4_000, "all distinct");
    let acknowledged: HashSet<&String> = acknowledged.iter().collect();
    assert_eq!(
        distinct, acknowledged,
        "every acknowledged event is in the log"
    );
    assert_eq!(verified_count(&repo), 4_000);

    // Each writer's events keep their own order (lamport order within a writer).
    let repo_handle = Repo::open(&repo).unwrap();
    let events = Store::new(&repo_handle)
        .events_oldest_first(&Filter::default())
        .unwrap();
    for writer in 0..8 {
        let ns: Vec<u64> = events
            .iter()
            .filter(|stored| {
                stored.event.payload["writer"].as_str() == Some(writer.to_string().as_str())
            })
            .map(|stored| stored.event.payload["n"].as_u64().unwrap())
            .collect();
        assert_eq!(ns, (0..500).collect::<Vec<u64>>());
    }
}

/// A number in `0..bound` that differs from call to call, without a random-number crate.
fn jitter(bound: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(bound);
    hasher.finish() % bound
}

#[test]
fn writers_killed_at_random_moments_leave_a_sound_log() {
    const TARGET: usize = 200;
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let lock = repo.join(".git/refs/spectra/events.lock");
    let mut acknowledged = Vec::new();
    let mut kills = 0;
    let mut stale_locks = 0;
    // Grows when a writer was killed before it appended anything, so a slow machine still
    // makes progress.
    let mut max_delay_ms = 40;
    let mut last_present = usize::MAX;
    loop {
        let present = verified_count(&repo);
        if present >= TARGET {
            break;
        }
        if present == last_present {
            max_delay_ms *= 2;
        }
        last_present = present;
        let mut writer = spawn_writer(&env, &repo, "k", TARGET - present);
        // Killed at a random moment: during start-up, object writes or the ref update.
        std::thread::sleep(Duration::from_millis(jitter(max_delay_ms)));
        if writer.try_wait().unwrap().is_none() {
            writer.kill().unwrap();
            kills += 1;
        }
        let output = writer.wait_with_output().unwrap();
        acknowledged.extend(acknowledged_ids(&output.stdout));
        // A writer killed while it held git's ref lock leaves the lock behind, exactly as git
        // would; the user removes it as the error hint says. The log itself stays sound.
        if lock.exists() {
            std::fs::remove_file(&lock).unwrap();
            stale_locks += 1;
        }
    }
    eprintln!("{kills} writers killed, {stale_locks} stale locks removed");
    assert!(kills > 0, "no writer was killed: the test proved nothing");
    let ids = all_event_ids(&repo);
    assert_eq!(ids.len(), TARGET);
    assert_eq!(
        verified_count(&repo),
        TARGET,
        "the chain verifies; no partial event"
    );
    let present: HashSet<&String> = ids.iter().collect();
    assert_eq!(present.len(), TARGET, "no duplicates");
    for id in &acknowledged {
        assert!(present.contains(id), "acknowledged event {id} was lost");
    }
}
