//! Conflicts a merge of two logs recorded (both sides ran the same activity for the same
//! service), and which of them no later run has settled.

use serde::Serialize;

use crate::store::Store;

/// The conflicts merges recorded that no later run has settled, read from the log: only the
/// `log.merged` and `activity.finished` events are read, and nothing at all when the log holds
/// no merge.
pub fn open_conflicts(store: &Store) -> Result<Vec<Unresolved>, crate::store::StoreError> {
    use crate::event::kind;
    use crate::store::Filter;
    let of_kind = |kind: &str| {
        store.events_oldest_first(&Filter {
            kind: Some(kind.to_string()),
            ..Filter::default()
        })
    };
    let merges = of_kind(kind::LOG_MERGED)?;
    if merges.is_empty() {
        return Ok(Vec::new());
    }
    let mut events: Vec<crate::event::Event> = merges
        .into_iter()
        .chain(of_kind(kind::ACTIVITY_FINISHED)?)
        .map(|stored| stored.event)
        .collect();
    // The log's one order: lamport, then id.
    events.sort_by(|a, b| (a.lamport, &a.id).cmp(&(b.lamport, &b.id)));
    Ok(unresolved_conflicts(&events))
}

/// A conflict a merge recorded that no later run has settled yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unresolved {
    /// The `log.merged` event that found it.
    pub merge: String,
    /// The service both sides decided for.
    pub service: String,
    /// The activity both sides ran.
    pub activity: String,
    /// The local runs that decided it.
    pub ours: Vec<String>,
    /// The remote's runs that decided it.
    pub theirs: Vec<String>,
}

/// The conflicts recorded by `log.merged` events (both sides ran the same activity for the
/// same service since their merge base) that no later `activity.finished` of that activity
/// for that service, from another run, has settled. `events` are in the log's total order.
pub fn unresolved_conflicts(events: &[crate::event::Event]) -> Vec<Unresolved> {
    use crate::event::kind;
    let mut open: Vec<Unresolved> = Vec::new();
    for event in events {
        if event.kind == kind::LOG_MERGED {
            for conflict in event.payload["conflicts"].as_array().into_iter().flatten() {
                let text = |key: &str| conflict[key].as_str().unwrap_or_default().to_string();
                let runs = |key: &str| -> Vec<String> {
                    conflict[key]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|run| run.as_str().map(str::to_string))
                        .collect()
                };
                open.retain(|u| !(u.service == text("service") && u.activity == text("activity")));
                open.push(Unresolved {
                    merge: event.id.clone(),
                    service: text("service"),
                    activity: text("activity"),
                    ours: runs("ours"),
                    theirs: runs("theirs"),
                });
            }
        } else if event.kind == kind::ACTIVITY_FINISHED {
            let run = event.run.as_deref().unwrap_or_default();
            open.retain(|u| {
                let settles = event.service.as_deref() == Some(u.service.as_str())
                    && event.activity.as_deref() == Some(u.activity.as_str())
                    && !u.ours.iter().chain(&u.theirs).any(|r| r == run);
                !settles
            });
        }
    }
    open
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{NewEvent, kind, seal_for_tests};
    use serde_json::json;

    fn finished(run: &str, service: &str, activity: &str) -> NewEvent {
        NewEvent::new(kind::ACTIVITY_FINISHED)
            .run(run)
            .service(service)
            .activity(activity)
            .payload(json!({"outcome": "succeeded"}))
    }

    fn merged(conflicts: serde_json::Value) -> NewEvent {
        NewEvent::new(kind::LOG_MERGED).payload(json!({"conflicts": conflicts}))
    }

    #[test]
    fn a_conflict_stays_open_until_another_run_of_that_activity_for_that_service() {
        let conflict = json!([{"service": "logging", "activity": "discover",
            "ours": ["r1"], "theirs": ["r2"]}]);
        let events = seal_for_tests(vec![
            finished("r1", "logging", "discover"),
            finished("r2", "logging", "discover"),
            merged(conflict),
            // The conflicting runs themselves, or another service or activity, settle nothing.
            finished("r1", "logging", "discover"),
            finished("r3", "billing", "discover"),
            finished("r4", "logging", "plan"),
        ]);
        let open = unresolved_conflicts(&events);
        assert_eq!(open.len(), 1);
        assert_eq!(
            (open[0].service.as_str(), open[0].activity.as_str()),
            ("logging", "discover")
        );
        assert_eq!(open[0].merge, events[2].id);

        let mut settled = events.clone();
        settled.extend(seal_for_tests(vec![finished("r5", "logging", "discover")]));
        assert!(unresolved_conflicts(&settled).is_empty());
    }
}
