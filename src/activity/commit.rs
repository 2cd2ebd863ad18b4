//! Writing an activity's files and committing them on the user's branch, intent first.
//!
//! The order is what makes a crash recoverable: `effect.intended` (the branch, HEAD, the blob
//! id of every file, and the id of the `files.committed` event to come) is appended before a
//! file is written; the commit's `Spectra-Event` trailer names that id; `files.committed`
//! follows the commit. The next command's `reconcile` finishes whatever a dead process left.
//! Another run's write and commit never interleave with this one (the repository's effect
//! lock), and every file is checked for the user's uncommitted changes again under the lock.

use serde_json::{Value, json};

use super::{ActivityError, ActivityWork, Engine, RunError, RunState};
use crate::event::{NewEvent, kind};
use crate::run_lock::EffectLock;

/// Files an activity is about to write and commit, and the commit's message.
pub(crate) struct Change {
    /// Each file's path (relative to the repository root) and its new content.
    pub files: Vec<(String, Vec<u8>)>,
    /// The commit's subject, e.g. `design: add design for logging`.
    pub subject: String,
    /// The commit message's body: the model's text is neutralised so it adds no trailers.
    pub body: String,
}

/// What became of a change.
pub(crate) struct Written {
    /// Whether the files were written (false when the write or the commit failed).
    pub written: bool,
    /// The commit, when one was made.
    pub commit: Option<String>,
}

/// A commit about to be made: the `effect.intended` event and what the commit will carry.
struct Intent {
    id: String,
    /// The id of the `files.committed` event that will record the commit.
    completion: String,
    message: String,
}

/// Records an error in `work` when any of `paths` has uncommitted changes: spectra never
/// overwrites the user's edits. A dry run writes nothing, so it checks nothing.
pub(crate) fn refuse_dirty(engine: &Engine<'_>, paths: &[String], work: &mut ActivityWork) {
    if engine.options.dry_run {
        return;
    }
    for path in paths {
        match engine.worktree().has_uncommitted_changes(path) {
            Ok(false) => {}
            Ok(true) => {
                work.errors.push(ActivityError::new(
                    "file_dirty",
                    format!(
                        "{path} has uncommitted changes; commit or stash them first (git spectra never overwrites your edits)"
                    ),
                ));
                return;
            }
            Err(error) => {
                work.errors
                    .push(ActivityError::new("git_failed", error.to_string()));
                return;
            }
        }
    }
}

/// Writes `change`'s files and, unless `--no-commit`, commits them with the run's trailers.
/// Failures are recorded in `work` (reason `files_unwritable` or `commit_failed`); a commit
/// that fails puts every file back as it was, so running the command again is not blocked.
pub(crate) fn write_and_commit(
    engine: &Engine<'_>,
    state: &mut RunState<'_>,
    work: &mut ActivityWork,
    service: &str,
    change: Change,
    under_lock: &dyn Fn(&mut ActivityWork),
) -> Result<Written, RunError> {
    let nothing = Written {
        written: false,
        commit: None,
    };
    // The decision and the playbooks' outcomes are in the log before a file is written.
    state.recorder.flush()?;
    let effects = match EffectLock::acquire(&engine.repo.state_dir()) {
        Ok(lock) => lock,
        Err(error) => {
            work.errors.push(ActivityError::new(
                "files_unwritable",
                format!("cannot take the effect lock: {error}"),
            ));
            return Ok(nothing);
        }
    };
    let paths: Vec<String> = change.files.iter().map(|(path, _)| path.clone()).collect();
    // The files may have changed since the decision. (Earlier errors, a failed playbook say,
    // are part of the result being written; only a new one stops the write.)
    let earlier_errors = work.errors.len();
    under_lock(work);
    if work.errors.len() == earlier_errors {
        refuse_dirty(engine, &paths, work);
    }
    if work.errors.len() > earlier_errors {
        return Ok(nothing);
    }
    let intent = if engine.options.no_commit {
        None
    } else {
        match intend_commit(engine, state, work, service, &change) {
            Ok(intent) => Some(intent),
            Err(error) => {
                work.errors.push(error);
                return Ok(nothing);
            }
        }
    };
    for (path, content) in &change.files {
        if let Err(error) = write_file(engine, path, content) {
            work.errors.push(ActivityError::new(
                "files_unwritable",
                format!("cannot write {path}: {error}"),
            ));
            put_back(engine, &paths);
            return Ok(nothing);
        }
    }
    let Some(intent) = intent else {
        return Ok(Written {
            written: true,
            commit: None,
        });
    };
    let written = match commit(engine, state, work, &effects, service, &paths, intent) {
        Ok(commit) => Written {
            written: true,
            commit: Some(commit),
        },
        Err(error) => {
            work.errors.push(error);
            nothing
        }
    };
    // The commit is recorded before another run may write.
    state.recorder.flush()?;
    Ok(written)
}

fn write_file(engine: &Engine<'_>, path: &str, content: &[u8]) -> std::io::Result<()> {
    let full = engine.root().join(path);
    if let Some(parent) = full.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(full, content)
}

/// Puts `paths` back as HEAD has them (or removes them when HEAD has none). Best effort: it
/// runs only after a failure that is already recorded.
fn put_back(engine: &Engine<'_>, paths: &[String]) -> Option<String> {
    let worktree = engine.worktree();
    let failures: Vec<String> = paths
        .iter()
        .filter_map(|path| worktree.restore_path(path).err())
        .map(|error| error.to_string())
        .collect();
    (!failures.is_empty()).then(|| failures.join("; "))
}

/// Records, and appends, that the change's files are about to be written and committed.
fn intend_commit(
    engine: &Engine<'_>,
    state: &mut RunState<'_>,
    work: &ActivityWork,
    service: &str,
    change: &Change,
) -> Result<Intent, ActivityError> {
    let completion = crate::event::new_id();
    let activity = &work.activity;
    let body = crate::trailer_text::neutralise(change.body.trim());
    let body = if body.is_empty() {
        String::new()
    } else {
        format!("{body}\n\n")
    };
    let message = format!(
        "{}\n\n{body}Spectra-Run: {}\nSpectra-Event: {completion}\n",
        change.subject,
        state.recorder.run(),
    );
    let repo = engine.repo.gix();
    let blobs: serde_json::Map<String, Value> = change
        .files
        .iter()
        .map(|(path, content)| {
            let blob = gix::objs::compute_hash(repo.object_hash(), gix::objs::Kind::Blob, content)
                .map(|id| id.to_string())
                .ok();
            (path.clone(), json!(blob))
        })
        .collect();
    let paths: Vec<&String> = change.files.iter().map(|(path, _)| path).collect();
    let (head, branch) = engine.worktree().head_commit().unzip();
    let mut intent = NewEvent::new(kind::EFFECT_INTENDED)
        .activity(activity.clone())
        .service(service)
        .subject(format!(
            "{activity}: about to commit {}",
            paths
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .payload(json!({
            "effect": "commit",
            "branch": branch.flatten(),
            "head": head,
            "files": paths,
            "blobs": blobs,
            "subject": change.subject,
            "completes": completion,
        }));
    if let Some(id) = &work.decision_event {
        intent = intent.cause(id.clone());
    }
    let id = state.recorder.record(intent);
    state
        .recorder
        .flush()
        .map_err(|error| ActivityError::new("commit_failed", error.to_string()))?;
    Ok(Intent {
        id,
        completion,
        message,
    })
}

/// Commits `paths` as `intent` said, and records `files.committed` after it.
fn commit(
    engine: &Engine<'_>,
    state: &mut RunState<'_>,
    work: &mut ActivityWork,
    effects: &EffectLock,
    service: &str,
    paths: &[String],
    intent: Intent,
) -> Result<String, ActivityError> {
    let worktree = engine.worktree();
    crate::test_hook::point("commit.before");
    let committed = {
        // git outliving this process keeps the run in progress until it is done.
        let _hold = effects.shared_with_children();
        worktree.commit_paths(paths, &intent.message)
    };
    let committed = match committed {
        Ok(committed) => committed,
        Err(error) => {
            let kept = match put_back(engine, paths) {
                None => "the files were put back as they were".to_string(),
                Some(restore) => format!("putting the files back failed too: {restore}"),
            };
            return Err(ActivityError::new(
                "commit_failed",
                format!("{error}; {kept} (the decision is in the log)"),
            ));
        }
    };
    crate::test_hook::point("commit.after");
    let mut event = NewEvent::new(kind::FILES_COMMITTED)
        .activity(work.activity.clone())
        .service(service)
        .subject(format!(
            "{}: committed {} as {}",
            work.activity,
            paths.join(", "),
            &committed.commit[..committed.commit.len().min(10)]
        ))
        .payload(serde_json::to_value(&committed).unwrap_or(Value::Null))
        .cause(intent.id);
    event.id = intent.completion;
    state.recorder.record(event);
    let id = committed.commit.clone();
    work.commit = Some(committed);
    Ok(id)
}
