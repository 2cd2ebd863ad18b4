//! A run's events appended in one ref update: all land together, as a pack git itself reads.

use spectra::event::NewEvent;
use spectra::repo::Repo;
use spectra::store::{Filter, Store};

use crate::common::TestEnv;

fn batch(run: &str, size: usize) -> Vec<NewEvent> {
    (0..size)
        .map(|n| {
            NewEvent::new("test.batched")
                .run(run)
                .payload(serde_json::json!({"n": n}))
                .attach("stdout", format!("output {n}\n").into_bytes())
        })
        .collect()
}

#[test]
fn a_batch_is_one_ref_update_and_git_reads_it() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let opened = Repo::open(&repo).unwrap();
    let store = Store::new(&opened);
    store.append(NewEvent::new("test.single")).unwrap();
    let stored = store.append_batch(batch("run-a", 20)).unwrap();
    assert_eq!(stored.len(), 20);
    assert_eq!(stored.last().unwrap().event.lamport, 21);
    // Each event of the batch chains onto the one before it.
    for pair in stored.windows(2) {
        assert_eq!(pair[1].event.prev_digest, pair[0].digest);
    }
    store.append(NewEvent::new("test.single")).unwrap();

    // One ref update for the whole batch: the ref moved three times, as its reflog shows.
    let moves = env
        .git(&repo, &["reflog", "--format=%gs", "refs/spectra/events"])
        .success();
    assert_eq!(moves.stdout.lines().count(), 3, "{moves:?}");
    let events = Store::new(&opened)
        .events_oldest_first(&Filter::default())
        .unwrap();
    assert_eq!(events.len(), 22);
    let verification = store.verify().unwrap();
    assert!(verification.failure.is_none(), "{:?}", verification.failure);
    assert_eq!(verification.verified, 22);

    // Git itself reads every object and finds nothing wrong.
    env.git(&repo, &["fsck", "--strict", "--no-dangling"])
        .success();
    let attachment = env
        .git(&repo, &["show", &format!("{}:stdout", stored[3].commit)])
        .success();
    assert_eq!(attachment.stdout, "output 3\n");
    let count = env
        .git(&repo, &["rev-list", "--count", "refs/spectra/events"])
        .success();
    assert_eq!(count.stdout.trim(), "22");
    // And the binary sees the batch through a fresh process.
    let shown = env.spectra(&repo, &["show", &stored[0].event.id]).success();
    assert!(shown.stdout.contains("test.batched"), "{shown:?}");
}

#[test]
fn concurrent_batches_interleave_whole() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let threads: Vec<_> = (0..4)
        .map(|writer| {
            let repo = repo.clone();
            std::thread::spawn(move || {
                let opened = Repo::open(&repo).unwrap();
                let store = Store::new(&opened);
                for round in 0..10 {
                    store
                        .append_batch(batch(&format!("run-{writer}-{round}"), 10))
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let opened = Repo::open(&repo).unwrap();
    let store = Store::new(&opened);
    let events = store.events_oldest_first(&Filter::default()).unwrap();
    assert_eq!(events.len(), 400);
    // A batch is never split by another writer's events.
    for chunk in events.chunks(10) {
        let run = chunk[0].event.run.clone();
        assert!(chunk.iter().all(|stored| stored.event.run == run));
        let ns: Vec<u64> = chunk
            .iter()
            .map(|s| s.event.payload["n"].as_u64().unwrap())
            .collect();
        assert_eq!(ns, (0..10).collect::<Vec<u64>>());
    }
    assert!(store.verify().unwrap().failure.is_none());
    env.git(&repo, &["fsck", "--strict", "--no-dangling"])
        .success();
}

/// Every event of a log long enough that walks read it on several threads, by pack order and
/// delta family: packed batches, loose single events between them, then the same after `git gc`
/// has made the blobs deltas of one another. Each way of reading must give the same events in
/// the same order as reading one commit at a time.
#[test]
fn a_long_log_reads_the_same_by_pack_order_as_one_commit_at_a_time() {
    let env = TestEnv::new();
    let repo = env.init_repo("long");
    let opened = Repo::open(&repo).unwrap();
    let store = Store::new(&opened);
    for round in 0..25 {
        store
            .append_batch(batch(&format!("run-{round}"), 100))
            .unwrap();
        store
            .append(NewEvent::new("test.single").payload(serde_json::json!({"round": round})))
            .unwrap();
    }
    let middle = Store::new(&opened).tip().unwrap().unwrap();
    for round in 25..28 {
        store
            .append_batch(batch(&format!("run-{round}"), 100))
            .unwrap();
    }

    let check = |label: &str| {
        let opened = Repo::open(&repo).unwrap();
        let store = Store::new(&opened);
        let mut one_at_a_time: Vec<_> = store
            .walk_newest_first(&Filter::default())
            .collect::<Result<_, _>>()
            .unwrap();
        one_at_a_time.reverse();
        assert_eq!(one_at_a_time.len(), 2_825, "{label}");
        let events_only = store.events_after(None).unwrap();
        assert!(!events_only.reached, "{label}");
        let expected: Vec<_> = one_at_a_time.iter().map(|s| s.event.clone()).collect();
        assert!(
            events_only.events == expected,
            "{label}: events_after differs"
        );
        let with_commits = store.events_oldest_first(&Filter::default()).unwrap();
        assert!(
            with_commits
                .iter()
                .zip(&one_at_a_time)
                .all(|(a, b)| a.event == b.event
                    && a.commit == b.commit
                    && a.digest == b.digest
                    && a.subject == b.subject),
            "{label}: events_oldest_first differs"
        );
        assert_eq!(with_commits.len(), one_at_a_time.len(), "{label}");
        let tail = store.events_after(Some(middle)).unwrap();
        assert!(tail.reached, "{label}");
        assert!(
            tail.events[..] == expected[expected.len() - 300..],
            "{label}: tail"
        );
    };
    check("as written");
    env.git(&repo, &["gc", "-q"]).success();
    let packs = std::fs::read_dir(repo.join(".git/objects/pack"))
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|e| e == "pack")
        })
        .count();
    assert_eq!(packs, 1, "git gc packs everything into one pack");
    check("after git gc");
}
