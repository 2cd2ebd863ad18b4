//! The merge's tests: fast-forwards, merge events, conflicts, refusals, and the integrity
//! cache a merge leaves.

use super::*;
use crate::store::Integrity;
use crate::store::test_git::{git, note, notes, oid, repository, side_line};

fn finished(run: &str, service: &str, dry_run: bool) -> Vec<NewEvent> {
    vec![
        NewEvent::new(kind::RUN_STARTED)
            .run(run)
            .payload(json!({"command": "discover", "dry_run": dry_run})),
        NewEvent::new(kind::ACTIVITY_FINISHED)
            .run(run)
            .activity("discover")
            .service(service)
            .payload(json!({"outcome": "succeeded"})),
    ]
}

fn merged(outcome: Merged) -> (StoredEvent, usize, usize, Vec<Conflict>) {
    match outcome {
        Merged::Merged {
            event,
            ours_events,
            theirs_events,
            conflicts,
        } => (event, ours_events, theirs_events, conflicts),
        other => panic!("expected a merge, got {other:?}"),
    }
}

fn sound(store: &Store) -> usize {
    let verification = store.verify().unwrap();
    assert!(verification.failure.is_none(), "{:?}", verification.failure);
    verification.verified
}

#[test]
fn diverged_logs_join_in_one_merge_event_that_verifies_and_later_appends_continue_it() {
    let (dir, store) = repository(2);
    let base = store.tip().unwrap().unwrap();
    let theirs = side_line(&store, Some(base), notes(100, 3));
    store.append_batch(notes(10, 2)).unwrap();
    let ours = store.tip().unwrap().unwrap();

    assert_eq!(
        store.divergence(theirs).unwrap(),
        Divergence {
            ahead: 2,
            behind: 3
        }
    );
    let (event, ours_events, theirs_events, conflicts) =
        merged(store.merge_log(theirs, "origin").unwrap());
    assert_eq!((ours_events, theirs_events), (2, 3));
    assert_eq!(
        store.divergence(theirs).unwrap(),
        Divergence {
            ahead: 3,
            behind: 0
        },
        "ours and the merge event"
    );
    assert!(conflicts.is_empty());
    assert_eq!(event.event.kind, kind::LOG_MERGED);
    assert_eq!(event.event.lamport, 6, "max(4, 5) + 1");
    assert_eq!(event.event.prev_digest, store.tip_at(ours).unwrap().digest);
    let expected_digest = event::merge_digest(
        &store.tip_at(ours).unwrap().digest,
        &store.tip_at(theirs).unwrap().digest,
        &event.event.canonical_json(),
    );
    assert_eq!(event.digest, expected_digest);
    assert_eq!(event.event.payload["ours"], ours.to_string());
    assert_eq!(event.event.payload["theirs"], theirs.to_string());
    assert_eq!(event.event.payload["remote"], "origin");
    assert_eq!(event.event.payload["ours_events"], 2);
    assert_eq!(
        git(dir.path(), &["rev-parse", &format!("{}^@", event.commit)]),
        format!("{ours}\n{theirs}"),
        "parents in order: ours, theirs"
    );
    assert_eq!(store.tip().unwrap(), Some(event.commit));
    assert_eq!(sound(&store), 8);
    assert_eq!(store.count().unwrap(), 8);

    let next = store.append(note(7)).unwrap();
    assert_eq!(next.event.lamport, 7);
    assert_eq!(next.event.prev_digest, event.digest);
    assert_eq!(sound(&store), 9);
    assert!(matches!(
        store.integrity().unwrap(),
        Integrity::Intact { events: 9, .. }
    ));
    let reflog = git(
        dir.path(),
        &["reflog", "--format=%gs", "refs/spectra/events"],
    );
    assert!(
        reflog.contains("spectra merge: joined origin (2 local, 3 remote events)"),
        "{reflog}"
    );
}

/// Removes the loose `event.json` of `commit`: a check that reads that event fails.
fn lose_event_json(dir: &std::path::Path, commit: ObjectId) {
    let blob = git(dir, &["rev-parse", &format!("{commit}:event.json")]);
    let loose = dir.join(".git/objects").join(&blob[..2]).join(&blob[2..]);
    std::fs::remove_file(loose).unwrap();
}

fn cache_bytes(store: &Store) -> Vec<u8> {
    std::fs::read(&store.integrity_cache).unwrap()
}

/// On a log the integrity cache says is sound, a merge reads only the events ours lacks:
/// with the first event's `event.json` gone, a check from the first event fails, and the
/// merge does not. It leaves the cache at the merge, so no later check reads the old ones.
#[test]
fn a_merge_on_a_verified_log_checks_only_their_new_events_and_caches_the_merge() {
    let (dir, store) = repository(2);
    let base = store.tip().unwrap().unwrap();
    let first = git(
        dir.path(),
        &["rev-list", "--max-parents=0", &base.to_string()],
    );
    let theirs = side_line(&store, Some(base), notes(100, 3));
    store.append(note(5)).unwrap();
    assert!(matches!(
        store.integrity().unwrap(),
        Integrity::Intact { events: 3, .. }
    ));
    lose_event_json(dir.path(), oid(&first));

    let (event, ours_events, theirs_events, _) = merged(store.merge_log(theirs, "origin").unwrap());
    assert_eq!((ours_events, theirs_events), (1, 3));
    match store.integrity().unwrap() {
        Integrity::Intact { events, tip } => {
            assert_eq!(events, 7);
            assert_eq!(tip, Some(event.commit));
        }
        broken => panic!("{broken:?}"),
    }
    // Appends after the merge continue from the cached merge.
    let next = store.append(note(6)).unwrap();
    assert!(matches!(
        store.integrity().unwrap(),
        Integrity::Intact { events: 8, tip: Some(tip) } if tip == next.commit
    ));
    let failure = store.verify().unwrap().failure.expect("event 1 is gone");
    assert_eq!(failure.position, 1);
}

/// On a log known sound, the walk that finds what each side holds stops where the two
/// logs meet: with the first commit itself gone, the merge and what it reports are as
/// ever. Also when their side is a merge already (their events reach ours twice).
#[test]
fn the_sides_of_a_merge_are_found_without_walking_below_where_the_logs_meet() {
    let (dir, store) = repository(3);
    let base = store.tip().unwrap().unwrap();
    let first = git(
        dir.path(),
        &["rev-list", "--max-parents=0", &base.to_string()],
    );
    let theirs = side_line(&store, Some(base), notes(100, 2));
    store.append_batch(notes(10, 3)).unwrap();
    store.integrity().unwrap();
    let loose = dir
        .path()
        .join(".git/objects")
        .join(&first[..2])
        .join(&first[2..]);
    std::fs::remove_file(loose).unwrap();

    let (merge, ours_events, theirs_events, _) = merged(store.merge_log(theirs, "origin").unwrap());
    assert_eq!((ours_events, theirs_events), (3, 2));
    assert_eq!(merge.event.payload["ours_events"], 3);
    assert!(matches!(
        store.integrity().unwrap(),
        Integrity::Intact { events: 9, .. }
    ));

    // Again across the merge: the walk meets the sides at the merge, not below it.
    let theirs = side_line(&store, Some(merge.commit), notes(200, 2));
    store.append(note(20)).unwrap();
    store.integrity().unwrap();
    assert!(matches!(
        store.merge_log(merge.commit, "origin").unwrap(),
        Merged::UpToDate
    ));
    let (_, ours_events, theirs_events, _) = merged(store.merge_log(theirs, "origin").unwrap());
    assert_eq!((ours_events, theirs_events), (1, 2));
    assert!(matches!(
        store.integrity().unwrap(),
        Integrity::Intact { events: 13, .. }
    ));
}

#[test]
fn a_fast_forward_on_a_verified_log_checks_only_the_new_events_and_caches_their_tip() {
    let (dir, store) = repository(2);
    let old = store.tip().unwrap().unwrap();
    let first = git(
        dir.path(),
        &["rev-list", "--max-parents=0", &old.to_string()],
    );
    let ahead = side_line(&store, Some(old), notes(20, 3));
    assert!(matches!(
        store.integrity().unwrap(),
        Integrity::Intact { events: 2, .. }
    ));
    lose_event_json(dir.path(), oid(&first));
    assert!(matches!(
        store.merge_log(ahead, "origin").unwrap(),
        Merged::FastForward { events: 3, .. }
    ));
    assert!(matches!(
        store.integrity().unwrap(),
        Integrity::Intact { events: 5, tip: Some(tip) } if tip == ahead
    ));
}

/// What the merge leaves in the cache is byte for byte what a check of the whole merged
/// log saves: the same count, lamport, digest and id hashes.
#[test]
fn the_state_cached_after_a_merge_is_the_one_a_whole_check_saves() {
    let (_dir, store) = repository(3);
    let base = store.tip().unwrap().unwrap();
    let theirs = side_line(&store, Some(base), notes(100, 4));
    store.append_batch(notes(10, 2)).unwrap();
    store.integrity().unwrap();
    merged(store.merge_log(theirs, "origin").unwrap());
    let after_merge = cache_bytes(&store);
    assert_eq!(sound(&store), 10);
    assert_eq!(cache_bytes(&store), after_merge);

    // Unrelated logs too: all of theirs is new, chained from the first of their events.
    let (_dir, store) = repository(2);
    store.integrity().unwrap();
    let stranger = side_line(&store, None, notes(300, 2));
    merged(store.merge_log(stranger, "bob").unwrap());
    let after_merge = cache_bytes(&store);
    assert_eq!(sound(&store), 5);
    assert_eq!(cache_bytes(&store), after_merge);
}

#[test]
fn contained_logs_fast_forward_or_are_up_to_date_and_the_reflog_says_so() {
    let (dir, store) = repository(2);
    let old = store.tip().unwrap().unwrap();
    let ahead = side_line(&store, Some(old), notes(20, 3));
    match store.merge_log(ahead, "origin").unwrap() {
        Merged::FastForward { from, to, events } => {
            assert_eq!((from, to, events), (Some(old), ahead, 3));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.tip().unwrap(), Some(ahead));
    assert!(matches!(
        store.merge_log(old, "origin").unwrap(),
        Merged::UpToDate
    ));
    assert!(matches!(
        store.merge_log(ahead, "origin").unwrap(),
        Merged::UpToDate
    ));
    assert_eq!(store.tip().unwrap(), Some(ahead));
    let reflog = git(
        dir.path(),
        &["reflog", "--format=%gs", "refs/spectra/events"],
    );
    assert_eq!(
        reflog.lines().next(),
        Some("spectra merge: fast-forward from origin")
    );

    let (_empty_dir, empty) = repository(0);
    let theirs = side_line(&empty, None, notes(0, 2));
    match empty.merge_log(theirs, "origin").unwrap() {
        Merged::FastForward { from, events, .. } => assert_eq!((from, events), (None, 2)),
        other => panic!("{other:?}"),
    }
    assert_eq!(sound(&empty), 2);
}

#[test]
fn a_merge_that_cannot_take_the_ref_gives_up_with_the_log_unchanged_and_succeeds_later() {
    let (dir, store) = repository(1);
    let base = store.tip().unwrap().unwrap();
    let theirs = side_line(&store, Some(base), notes(100, 1));
    store.append(note(1)).unwrap();
    let before = store.tip().unwrap();
    let lock = dir.path().join(".git/refs/spectra/events.lock");
    std::fs::write(&lock, b"").unwrap();
    let store = store.with_append_deadline(std::time::Duration::from_millis(20));
    let err = store.merge_log(theirs, "origin").unwrap_err();
    assert!(matches!(err, StoreError::Contention { .. }), "{err:?}");
    assert_eq!(store.tip().unwrap(), before);
    std::fs::remove_file(&lock).unwrap();
    merged(store.merge_log(theirs, "origin").unwrap());
    assert_eq!(sound(&store), 4);
}

#[test]
fn unrelated_logs_merge_with_everything_counted() {
    let (_dir, store) = repository(3);
    let theirs = side_line(&store, None, notes(100, 2));
    let (event, ours_events, theirs_events, _) = merged(store.merge_log(theirs, "bob").unwrap());
    assert_eq!((ours_events, theirs_events), (3, 2));
    assert_eq!(event.event.lamport, 4);
    assert_eq!(sound(&store), 6);
}

#[test]
fn both_sides_finishing_the_same_activity_for_a_service_is_a_conflict_dry_runs_are_not() {
    let (_dir, store) = repository(1);
    let base = store.tip().unwrap().unwrap();
    let mut their_events = finished("run-b", "logging", false);
    their_events.extend(finished("run-c", "billing", true));
    let theirs = side_line(&store, Some(base), their_events);
    let mut our_events = finished("run-a", "logging", false);
    our_events.extend(finished("run-d", "billing", false));
    store.append_batch(our_events).unwrap();

    let (event, _, _, conflicts) = merged(store.merge_log(theirs, "origin").unwrap());
    let expected = vec![Conflict {
        service: "logging".into(),
        activity: "discover".into(),
        ours: vec!["run-a".into()],
        theirs: vec!["run-b".into()],
    }];
    assert_eq!(conflicts, expected);
    assert_eq!(
        event.event.payload["conflicts"],
        serde_json::to_value(&expected).unwrap()
    );
}

#[test]
fn a_log_that_fails_verification_or_is_no_log_is_refused_and_nothing_moves() {
    let (dir, store) = repository(2);
    let base = store.tip().unwrap().unwrap();
    let theirs = side_line(&store, Some(base), notes(100, 2));
    store.append(note(5)).unwrap();
    let before = store.tip().unwrap();
    // Our log known sound: only their new events are checked, and the failure is still
    // named by its place in their whole log.
    assert!(matches!(
        store.integrity().unwrap(),
        Integrity::Intact { events: 3, .. }
    ));

    // Their tip's commit copied onto its grandparent: its prev_digest no longer chains.
    let message = git(
        dir.path(),
        &["log", "-1", "--format=%B", &theirs.to_string()],
    );
    let tree = format!("{theirs}^{{tree}}");
    let forged = oid(&git(
        dir.path(),
        &[
            "commit-tree",
            &tree,
            "-p",
            &base.to_string(),
            "-m",
            &message,
        ],
    ));
    match store.merge_log(forged, "origin").unwrap_err() {
        StoreError::UnverifiedLog { tip, failure } => {
            assert_eq!(tip, forged);
            assert_eq!(failure.commit, forged);
            assert_eq!(failure.position, 3);
            assert!(failure.reason.contains("prev_digest"), "{}", failure.reason);
        }
        other => panic!("{other:?}"),
    }

    let branch = oid(&git(
        dir.path(),
        &["commit-tree", &tree, "-m", "an ordinary commit"],
    ));
    let err = store.merge_log(branch, "origin").unwrap_err();
    assert!(
        matches!(&err, StoreError::NotALog { what, .. } if what.contains("without Spectra-Event")),
        "{err:?}"
    );
    let blob = oid(&git(
        dir.path(),
        &["rev-parse", &format!("{theirs}:event.json")],
    ));
    let err = store.merge_log(blob, "origin").unwrap_err();
    assert!(
        matches!(&err, StoreError::NotALog { what, .. } if what.contains("a blob object")),
        "{err:?}"
    );
    assert_eq!(store.tip().unwrap(), before);
}

#[test]
fn verify_refuses_a_hand_made_merge_and_more_than_two_parents() {
    let (dir, store) = repository(1);
    let base = store.tip().unwrap().unwrap();
    let theirs = side_line(&store, Some(base), notes(100, 1));
    let ours = store.append(note(1)).unwrap().commit;
    let message = git(dir.path(), &["log", "-1", "--format=%B", &ours.to_string()]);
    let tree = format!("{ours}^{{tree}}");
    let parents = |extra: &[ObjectId]| {
        let mut args = vec!["commit-tree".to_string(), tree.clone()];
        for parent in [base].iter().chain(extra) {
            args.extend(["-p".to_string(), parent.to_string()]);
        }
        args.extend(["-m".to_string(), message.clone()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        oid(&git(dir.path(), &args))
    };
    let by_hand = parents(&[theirs]);
    let failure = store.verify_at(by_hand).unwrap().failure.unwrap();
    assert_eq!(failure.commit, by_hand);
    assert!(
        failure
            .reason
            .contains("two parents but is a note.added, not a log.merged"),
        "{}",
        failure.reason
    );
    let three = parents(&[theirs, ours]);
    let failure = store.verify_at(three).unwrap().failure.unwrap();
    assert!(
        failure.reason.contains("it has 3 parents"),
        "{}",
        failure.reason
    );

    // The store will not write such a merge either.
    let err = store
        .write_merge(
            &note(9),
            &store.tip_at(ours).unwrap(),
            &store.tip_at(theirs).unwrap(),
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Unverifiable { .. }), "{err:?}");
}

#[test]
fn an_edited_event_on_their_side_of_a_merge_is_named_by_its_place_in_the_order() {
    let (dir, store) = repository(1);
    let base = store.tip().unwrap().unwrap();
    let theirs = side_line(&store, Some(base), notes(100, 2));
    store.append(note(1)).unwrap();
    let merge = merged(store.merge_log(theirs, "origin").unwrap()).0;
    assert_eq!(sound(&store), 5);
    // Rewrite the merge with its second parent swapped for a forged line: a new commit
    // whose digest trailer no longer matches what it covers.
    let message = git(
        dir.path(),
        &["log", "-1", "--format=%B", &merge.commit.to_string()],
    );
    let forged_theirs = side_line(&store, Some(base), notes(200, 2));
    let ours = git(dir.path(), &["rev-parse", &format!("{}^1", merge.commit)]);
    let tree = format!("{}^{{tree}}", merge.commit);
    let forged = oid(&git(
        dir.path(),
        &[
            "commit-tree",
            &tree,
            "-p",
            &ours,
            "-p",
            &forged_theirs.to_string(),
            "-m",
            &message,
        ],
    ));
    let failure = store.verify_at(forged).unwrap().failure.unwrap();
    assert_eq!(failure.commit, forged);
    assert_eq!(failure.position, 5);
    assert!(failure.reason.contains("digest"), "{}", failure.reason);
}
