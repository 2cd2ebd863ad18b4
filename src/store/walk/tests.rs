//! Every read sees each event once, in the total order, also across a merge of logs.

use super::*;
use crate::repo::Repo;
use crate::store::Merged;
use crate::store::test_git::{git, note, notes, repository, side_line};

/// The merge event of a merge that made one.
fn merge_event(outcome: Merged) -> StoredEvent {
    match outcome {
        Merged::Merged { event, .. } => event,
        other => panic!("expected a merge, got {other:?}"),
    }
}

#[test]
fn every_read_sees_each_event_once_in_lamport_then_id_order() {
    let (dir, store) = repository(1);
    let base = store.tip().unwrap().unwrap();
    let theirs = side_line(&store, Some(base), notes(100, 3));
    store.append_batch(notes(10, 2)).unwrap();
    store.merge_log(theirs, "origin").unwrap();
    store.append(note(50)).unwrap();

    let oldest_first = store.events_oldest_first(&Filter::default()).unwrap();
    let keys: Vec<(u64, String)> = oldest_first
        .iter()
        .map(|stored| (stored.event.lamport, stored.event.id.clone()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(keys.len(), 8);
    assert_eq!(
        keys.iter().map(|(lamport, _)| *lamport).collect::<Vec<_>>(),
        vec![1, 2, 2, 3, 3, 4, 5, 6]
    );

    let newest_first: Vec<String> = store
        .walk_newest_first(&Filter::default())
        .map(|stored| stored.unwrap().event.id)
        .collect();
    let mut reversed: Vec<String> = keys.iter().map(|(_, id)| id.clone()).collect();
    reversed.reverse();
    assert_eq!(newest_first, reversed);

    let after = store.events_after(None).unwrap();
    assert_eq!(
        after
            .events
            .iter()
            .map(|e| e.id.clone())
            .collect::<Vec<_>>(),
        keys.iter().map(|(_, id)| id.clone()).collect::<Vec<_>>()
    );
    // An event only the other side had is found like any other.
    let their_first = &oldest_first
        .iter()
        .find(|stored| stored.event.payload["n"] == 100)
        .unwrap()
        .event
        .id;
    assert_eq!(&store.find(their_first).unwrap().event.id, their_first);

    // The same order when parents come from git's commit-graph.
    git(dir.path(), &["commit-graph", "write", "--reachable"]);
    let store = Store::new(&Repo::open(dir.path()).unwrap());
    let from_graph: Vec<String> = store
        .events_after(None)
        .unwrap()
        .events
        .into_iter()
        .map(|event| event.id)
        .collect();
    let ids: Vec<String> = keys.into_iter().map(|(_, id)| id).collect();
    assert_eq!(from_graph, ids);
    assert_eq!(
        store
            .reachable(store.tip().unwrap().unwrap())
            .unwrap()
            .len(),
        8
    );
}

#[test]
fn events_after_returns_only_new_events_when_they_all_sort_after_the_known_ones() {
    let (_dir, store) = repository(1);
    let base = store.tip().unwrap().unwrap();
    let theirs = side_line(&store, Some(base), notes(100, 2));
    store.append_batch(notes(10, 2)).unwrap();
    let ours = store.tip().unwrap().unwrap();
    let merge = merge_event(store.merge_log(theirs, "origin").unwrap());

    // From the merge base everything new sorts after it.
    let after_base = store.events_after(Some(base)).unwrap();
    assert!(after_base.reached);
    assert_eq!(after_base.events.len(), 5);
    // Their events (lamport 2, 3) sort among ours (lamport 2, 3): fold again from scratch.
    let after_ours = store.events_after(Some(ours)).unwrap();
    assert!(!after_ours.reached);
    assert_eq!(after_ours.events.len(), 6);
    // A commit the log does not hold at all.
    let stranger = side_line(&store, None, notes(300, 1));
    assert!(!store.events_after(Some(stranger)).unwrap().reached);
    // After the merge, appends are a line again.
    let next = store.append(note(9)).unwrap();
    let after_merge = store.events_after(Some(merge.commit)).unwrap();
    assert!(after_merge.reached);
    assert_eq!(after_merge.events.len(), 1);
    assert_eq!(after_merge.events[0].id, next.event.id);
    assert_eq!(after_merge.tip, Some(next.commit));
}
