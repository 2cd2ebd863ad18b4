//! Checking a build's changes against HEAD before anything is written: the path's shape, what
//! HEAD has along it, the user's own changes there, and the new content of each file.

use std::path::Path;

use super::git::git_bytes;
use super::{ChangeResult, FileChange, MAX_CHANGES, Planned, kind_of};
use crate::builtin::BuiltinError;

/// Checks every change against `base`; the planned entries only when all of them pass.
pub(super) fn check_all(
    root: &Path,
    base: &str,
    changes: &[FileChange],
) -> Result<(Vec<ChangeResult>, Option<Vec<Planned>>), BuiltinError> {
    if changes.is_empty() {
        return Err(BuiltinError::Changes {
            message: "no changes to apply".into(),
        });
    }
    if changes.len() > MAX_CHANGES {
        return Err(BuiltinError::Changes {
            message: format!(
                "{} changes; one build makes at most {MAX_CHANGES}",
                changes.len()
            ),
        });
    }
    let mut results = Vec::new();
    let mut planned = Vec::new();
    for (index, change) in changes.iter().enumerate() {
        let repeated = changes[..index]
            .iter()
            .any(|earlier| earlier.path == change.path);
        let outcome = if repeated {
            Err("is changed twice; give one change per file".to_string())
        } else {
            check_one(root, base, change)?
        };
        let (applied, reason) = match outcome {
            Ok(plan) => {
                planned.push(plan);
                (true, None)
            }
            Err(reason) => (false, Some(reason)),
        };
        results.push(ChangeResult {
            path: change.path.clone(),
            kind: kind_of(change),
            applied,
            reason,
        });
    }
    if results.iter().all(|result| result.applied) {
        return Ok((results, Some(planned)));
    }
    // All or nothing: a change that passed is not applied either.
    for result in &mut results {
        if result.applied {
            result.applied = false;
            result.reason = Some("not applied: another change failed".into());
        }
    }
    Ok((results, None))
}

/// One change: `Err(reason)` when it is refused.
pub(super) fn check_one(
    root: &Path,
    base: &str,
    change: &FileChange,
) -> Result<Result<Planned, String>, BuiltinError> {
    if let Err(reason) = path_shape(&change.path) {
        return Ok(Err(reason));
    }
    let entries = tree_entries(root, base, &change.path)?;
    if let Err(reason) = through_tree(&change.path, &entries) {
        return Ok(Err(reason));
    }
    if has_uncommitted_changes(root, &change.path)? {
        return Ok(Err(
            "has uncommitted changes (staged, unstaged or untracked); commit or stash them first"
                .into(),
        ));
    }
    let existing = entries.get(&change.path).cloned();
    // `git status` does not show an ignored file (a `.env`, a build output), but merging a
    // branch that adds one would overwrite it without a word.
    if existing.is_none() && root.join(&change.path).symlink_metadata().is_ok() {
        return Ok(Err(
            "exists in the work tree but not in HEAD (an ignored or untracked file); \
             move it away or commit it first"
                .into(),
        ));
    }
    let current = match &existing {
        Some((_, id)) => Some(git_bytes(root, &["cat-file", "blob", id])?),
        None => None,
    };
    let mode = existing
        .as_ref()
        .map_or_else(|| "100644".to_string(), |(mode, _)| mode.clone());
    let content = match new_content(change, current.as_deref()) {
        Ok(content) => content,
        Err(reason) => return Ok(Err(reason)),
    };
    Ok(Ok(Planned {
        path: change.path.clone(),
        mode,
        content,
    }))
}

/// The file's new content (`None`: removed), or why the change cannot be made.
pub(super) fn new_content(
    change: &FileChange,
    current: Option<&[u8]>,
) -> Result<Option<Vec<u8>>, String> {
    if let Some(reason) = contradiction(change) {
        return Err(reason);
    }
    match (change.action.as_deref(), &change.search, &change.content) {
        (Some("delete"), _, _) => match current {
            Some(_) => Ok(None),
            None => Err("cannot be deleted: HEAD has no such file".into()),
        },
        (_, Some(search), _) => {
            let current =
                current.ok_or("search/replace needs an existing file: HEAD has no such file")?;
            let text = std::str::from_utf8(current)
                .map_err(|_| "is not UTF-8 text, so search/replace cannot edit it".to_string())?;
            replace_once(text, search, change.replace.as_deref().unwrap_or_default())
                .map(|text| Some(text.into_bytes()))
        }
        (action, None, Some(content)) => {
            if action == Some("create") && current.is_some() {
                return Err("already exists in HEAD; modify it with search/replace".into());
            }
            Ok(Some(content.clone().into_bytes()))
        }
        (_, None, None) => {
            Err("has neither `content` nor `search`/`replace`: nothing to apply".into())
        }
    }
}

/// Why the fields of a change ask for two different things, if they do: applying either one
/// would be a guess at what the model meant.
fn contradiction(change: &FileChange) -> Option<String> {
    let delete = change.action.as_deref() == Some("delete");
    let search = change.search.is_some();
    let content = change.content.is_some();
    if delete && (search || content) {
        return Some("says `delete` but also gives `content` or `search`; give one of them".into());
    }
    if search && content {
        return Some(
            "gives both `content` (the whole file) and `search`/`replace`; give one of them".into(),
        );
    }
    if search && change.replace.is_none() {
        return Some(
            "gives `search` without `replace`; give `replace` (\"\" removes the text)".into(),
        );
    }
    if !search && change.replace.is_some() {
        return Some("gives `replace` without `search`; give the text it replaces".into());
    }
    None
}

/// `text` with the one occurrence of `search` replaced.
pub(super) fn replace_once(text: &str, search: &str, replace: &str) -> Result<String, String> {
    if search.is_empty() {
        return Err("search text is empty".into());
    }
    match occurrences(text, search).as_slice() {
        [] => Err("search text not found in the file as HEAD has it".into()),
        [at] => Ok(format!(
            "{}{replace}{}",
            &text[..*at],
            &text[at + search.len()..]
        )),
        all => Err(format!(
            "search text found {} times; it must occur exactly once (include more surrounding lines)",
            all.len()
        )),
    }
}

/// Where `search` starts in `text`, overlapping occurrences included: `}\n}\n` occurs twice
/// in `}\n}\n}\n`, and a replacement there would be a guess.
pub(super) fn occurrences(text: &str, search: &str) -> Vec<usize> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(search) {
        found.push(from + at);
        // The next character boundary after this start.
        from += at + text[from + at..].chars().next().map_or(1, char::len_utf8);
    }
    found
}

/// Refuses paths that are empty, absolute, climb with `..`, reach into `.git`, or are not
/// written plainly (`a//b`, `./a`, a trailing `/`).
pub(super) fn path_shape(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the path is empty".into());
    }
    if path.starts_with('/') || Path::new(path).is_absolute() {
        return Err("is absolute; paths are relative to the repository root".into());
    }
    if path.contains('\\') {
        return Err("contains `\\`; use `/` between directories".into());
    }
    // A line break in a path would end the commit's subject line and could forge a trailer
    // below it; other control characters would hide text on a terminal.
    if path.chars().any(char::is_control) {
        return Err("contains a control character (a line break, NUL, an escape...)".into());
    }
    for component in path.split('/') {
        match component {
            ".." => return Err("climbs out of the repository with `..`".into()),
            "" | "." => return Err("is not a plain relative path (empty or `.` component)".into()),
            name if name.eq_ignore_ascii_case(".git") => {
                return Err("points into .git; spectra never writes there".into());
            }
            _ => {}
        }
    }
    Ok(())
}

/// The entries HEAD has for `path` and each directory above it: path → (mode, object id).
pub(super) fn tree_entries(
    root: &Path,
    base: &str,
    path: &str,
) -> Result<std::collections::BTreeMap<String, (String, String)>, BuiltinError> {
    let prefixes: Vec<String> = path
        .match_indices('/')
        .map(|(at, _)| path[..at].to_string())
        .chain(std::iter::once(path.to_string()))
        .collect();
    let mut args = vec!["--literal-pathspecs", "ls-tree", "-z", base, "--"];
    args.extend(prefixes.iter().map(String::as_str));
    let listing = git_bytes(root, &args)?;
    Ok(listing
        .split(|byte| *byte == 0)
        .filter_map(|entry| {
            let entry = std::str::from_utf8(entry).ok()?;
            let (meta, name) = entry.split_once('\t')?;
            let mut words = meta.split(' ');
            let (mode, _kind, id) = (words.next()?, words.next()?, words.next()?);
            Some((name.to_string(), (mode.to_string(), id.to_string())))
        })
        // ls-tree lists a directory's other entries when a pathspec reaches into it.
        .filter(|(name, _)| prefixes.contains(name))
        .collect())
}

/// Refuses a path whose directories are not all directories in HEAD (a symlink, a file, a
/// submodule), or that is itself a symlink or a submodule.
pub(super) fn through_tree(
    path: &str,
    entries: &std::collections::BTreeMap<String, (String, String)>,
) -> Result<(), String> {
    for (name, (mode, _)) in entries {
        let is_self = name == path;
        let problem = match mode.as_str() {
            "120000" => Some("a symlink"),
            "160000" => Some("a submodule"),
            "040000" if is_self => Some("a directory"),
            "100644" | "100755" if !is_self => Some("a file"),
            _ => None,
        };
        if let Some(problem) = problem {
            let which = if is_self {
                "is".to_string()
            } else {
                format!("goes through `{name}`, which is")
            };
            return Err(format!(
                "{which} {problem} in HEAD; spectra writes only regular files inside the tree"
            ));
        }
    }
    Ok(())
}

/// Whether the user has changes to `path` that HEAD does not have: staged, unstaged, or an
/// untracked file there.
pub(super) fn has_uncommitted_changes(root: &Path, path: &str) -> Result<bool, BuiltinError> {
    let status = git_bytes(
        root,
        &[
            "--literal-pathspecs",
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--",
            path,
        ],
    )?;
    Ok(!status.is_empty())
}
