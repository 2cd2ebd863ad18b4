//! Unit tests of `changes.apply` and `remove-build-branch` in scratch repositories.

use std::path::Path;

use super::check::*;
use super::git::*;
use super::*;

/// A repository with one commit: `src/lib.rs`, `README.md`, a symlink `out` → `/tmp`, a
/// symlink `inside` → `src`.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let git = |args: &[&str]| crate::builtin::test_git(root, args);
    git(&["init", "-q", "-b", "main"]);
    // The playbook's own commits (commit-tree, a revert) take the repository's identity.
    git(&["config", "user.name", "t"]);
    git(&["config", "user.email", "t@example.com"]);
    std::fs::create_dir(root.join("src")).unwrap();
    std::fs::write(root.join("src/lib.rs"), "fn a() {}\nfn b() {}\nfn b() {}\n").unwrap();
    std::fs::write(root.join("README.md"), "hello\n").unwrap();
    std::os::unix::fs::symlink("/tmp", root.join("out")).unwrap();
    std::os::unix::fs::symlink("src", root.join("inside")).unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "init"]);
    dir
}

fn whole(path: &str, content: &str) -> FileChange {
    FileChange {
        path: path.into(),
        content: Some(content.into()),
        ..FileChange::default()
    }
}

fn edit(path: &str, search: &str, replace: &str) -> FileChange {
    FileChange {
        path: path.into(),
        search: Some(search.into()),
        replace: Some(replace.into()),
        ..FileChange::default()
    }
}

fn reason(root: &Path, change: FileChange) -> String {
    let base = head(root).unwrap();
    let (results, planned) = check_all(root, &base, &[change]).unwrap();
    assert!(planned.is_none());
    results[0].reason.clone().unwrap()
}

#[test]
fn search_must_occur_exactly_once() {
    assert_eq!(replace_once("a b c", "b", "x").unwrap(), "a x c");
    assert!(
        replace_once("a b c", "z", "x")
            .unwrap_err()
            .contains("not found")
    );
    assert!(
        replace_once("b b", "b", "x")
            .unwrap_err()
            .contains("found 2 times")
    );
    assert!(replace_once("b", "", "x").unwrap_err().contains("empty"));
    // Overlapping occurrences count: the second `}\n}\n` starts inside the first.
    assert!(
        replace_once("}\n}\n}\n", "}\n}\n", "x")
            .unwrap_err()
            .contains("found 2 times")
    );
    assert_eq!(replace_once("é b é", "b", "x").unwrap(), "é x é");
    assert_eq!(occurrences("ééé", "éé"), [0, 2]);
}

#[test]
fn paths_stay_plain_and_out_of_git() {
    assert!(path_shape("src/lib.rs").is_ok());
    for (bad, why) in [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("../x", ".."),
        ("src/../../x", ".."),
        (".git/config", ".git"),
        ("sub/.GIT/hooks/pre-commit", ".git"),
        ("a//b", "plain"),
        ("./a", "plain"),
        ("a\nSpectra-Reverts: 0190", "control character"),
        ("a\r---", "control character"),
        ("a\u{1b}[2Jb", "control character"),
        ("a\0b", "control character"),
    ] {
        assert!(path_shape(bad).unwrap_err().contains(why), "{bad}");
    }
}

#[test]
fn symlinks_files_and_dirty_files_are_refused() {
    let dir = repo();
    let root = dir.path();
    assert!(reason(root, whole("out/x", "y")).contains("through `out`, which is a symlink"));
    assert!(reason(root, whole("inside/x", "y")).contains("symlink"));
    assert!(reason(root, whole("out", "y")).contains("is a symlink"));
    assert!(reason(root, whole("README.md/x", "y")).contains("a file"));
    assert!(reason(root, whole("src", "y")).contains("a directory"));
    std::fs::write(root.join("README.md"), "edited\n").unwrap();
    assert!(reason(root, whole("README.md", "y")).contains("uncommitted"));
    std::fs::write(root.join("new.txt"), "mine\n").unwrap();
    assert!(reason(root, whole("new.txt", "y")).contains("uncommitted"));
    // An ignored file does not show in `git status`, but is the user's all the same.
    std::fs::write(root.join(".gitignore"), ".env\n").unwrap();
    std::fs::write(root.join(".env"), "SECRET=1\n").unwrap();
    assert!(reason(root, whole(".env", "y")).contains("ignored or untracked"));
    // Staged, with the working tree back as HEAD has it: still the user's change.
    std::fs::write(root.join("src/lib.rs"), "staged\n").unwrap();
    let git = |args: &[&str]| git_env(root, args, &[], None).unwrap();
    git(&["add", "src/lib.rs"]);
    std::fs::write(root.join("src/lib.rs"), "fn a() {}\nfn b() {}\nfn b() {}\n").unwrap();
    assert!(reason(root, whole("src/lib.rs", "y")).contains("uncommitted"));
}

#[test]
fn search_replace_reads_the_file_as_head_has_it() {
    let dir = repo();
    let root = dir.path();
    assert!(reason(root, edit("src/lib.rs", "fn z", "x")).contains("not found"));
    assert!(reason(root, edit("src/lib.rs", "fn b() {}", "x")).contains("found 2 times"));
    assert!(reason(root, edit("missing.rs", "a", "b")).contains("HEAD has no such file"));
    let create = FileChange {
        action: Some("create".into()),
        ..whole("README.md", "x")
    };
    assert!(reason(root, create).contains("already exists"));
    let delete = FileChange {
        action: Some("delete".into()),
        ..FileChange::default()
    };
    assert!(
        reason(
            root,
            FileChange {
                path: "gone".into(),
                ..delete
            }
        )
        .contains("no such file")
    );
    assert!(
        reason(
            root,
            FileChange {
                path: "x".into(),
                ..FileChange::default()
            }
        )
        .contains("nothing to apply")
    );
}

#[test]
fn the_subject_is_one_line_whatever_the_paths() {
    // Paths are checked before a message is written; the message holds on its own too.
    let changes = [whole("a\nSpectra-Reverts: x", "x")];
    let message = commit_message("svc", "run-1234567890", Some("ev-1"), &changes);
    assert!(
        message.starts_with("build(svc): change a Spectra-Reverts: x\n\n"),
        "{message}"
    );
    assert!(
        !message
            .lines()
            .any(|line| line.starts_with("Spectra-Reverts")),
        "{message}"
    );
    assert!(message.ends_with("Spectra-Run: run-1234567890\nSpectra-Event: ev-1\n"));
}

#[test]
fn reading_the_status_leaves_the_index_bytes_alone() {
    let dir = repo();
    let root = dir.path();
    // New stat data for a file the index knows: a plain `git status` would write the index.
    let lib = root.join("src/lib.rs");
    let old = std::fs::metadata(&lib).unwrap().modified().unwrap();
    let file = std::fs::File::options().write(true).open(&lib).unwrap();
    file.set_modified(old + std::time::Duration::from_secs(5))
        .unwrap();
    drop(file);
    let index = std::fs::read(root.join(".git/index")).unwrap();
    assert!(!has_uncommitted_changes(root, "src/lib.rs").unwrap());
    assert_eq!(std::fs::read(root.join(".git/index")).unwrap(), index);
}

/// A build branch for run `run-5678efgh` that changes `README.md`; returns its commit.
fn built(root: &Path) -> String {
    let applied = apply(
        root,
        "svc",
        "run-5678efgh",
        Some("ev-1"),
        &[edit("README.md", "hello", "hello, world")],
    )
    .unwrap();
    applied.commit.unwrap()
}

#[test]
fn a_branch_the_user_committed_on_or_checked_out_elsewhere_is_not_removed() {
    let dir = repo();
    let root = dir.path();
    let commit = built(root);
    let branch = "spectra/svc/build-5678efgh";
    let git = |args: &[&str]| git_env(root, args, &[], None).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let review = elsewhere.path().join("review");
    git(&["worktree", "add", "-q", review.to_str().unwrap(), branch]);
    let refused = remove_branch(root, "svc", "run-5678efgh", &[]).unwrap_err();
    assert!(
        refused.to_string().contains("checked out in a worktree"),
        "{refused}"
    );
    git(&["worktree", "remove", "--force", review.to_str().unwrap()]);
    // The user adds a commit of their own on top of the build's.
    git(&["switch", "-q", branch]);
    std::fs::write(root.join("mine.txt"), "mine\n").unwrap();
    git(&["add", "mine.txt"]);
    git(&["commit", "-q", "-m", "my fix"]);
    git(&["switch", "-q", "main"]);
    let refused = remove_branch(root, "svc", "run-5678efgh", &[]).unwrap_err();
    assert!(refused.to_string().contains("has moved"), "{refused}");
    let tip = rev(root, &format!("refs/heads/{branch}")).unwrap().unwrap();
    assert_ne!(tip, commit, "the user's commit is still there");
}

#[test]
fn a_merged_build_is_reverted_with_trailers_or_left_alone_when_it_conflicts() {
    let dir = repo();
    let root = dir.path();
    let commit = built(root);
    let git = |args: &[&str]| git_env(root, args, &[], None).unwrap();
    git(&["merge", "-q", "--ff-only", "spectra/svc/build-5678efgh"]);
    // The user then edits the same line: the revert conflicts.
    std::fs::write(root.join("README.md"), "hello, everyone\n").unwrap();
    git(&["commit", "-q", "-am", "mine"]);
    let head = rev(root, "HEAD").unwrap();
    let trailers = [("Spectra-Run", "undo-run-1234")];
    let refused = remove_branch(root, "svc", "run-5678efgh", &trailers).unwrap_err();
    assert!(
        refused.to_string().contains("reverting its commit"),
        "{refused}"
    );
    assert_eq!(rev(root, "HEAD").unwrap(), head);
    assert!(rev(root, "REVERT_HEAD").unwrap().is_none());
    assert_eq!(git(&["status", "--porcelain"]), "");
    assert!(
        rev(root, "refs/heads/spectra/svc/build-5678efgh")
            .unwrap()
            .is_some()
    );
    // Without the conflicting edit the revert lands, carrying the undo's trailers.
    git(&["reset", "-q", "--hard", "HEAD~1"]);
    let removed = remove_branch(root, "svc", "run-5678efgh", &trailers).unwrap();
    assert_eq!((removed.action, removed.commit), ("reverted", Some(commit)));
    let message = git(&["log", "-1", "--format=%B"]);
    assert!(message.contains("Spectra-Run: undo-run-1234"), "{message}");
    assert_eq!(
        std::fs::read_to_string(root.join("README.md")).unwrap(),
        "hello\n"
    );
}

#[test]
fn revert_trailers_take_only_plain_ids() {
    assert_eq!(
        revert_trailers(Some("run-5678efgh"), Some("ev-1")).unwrap(),
        [("Spectra-Run", "run-5678efgh"), ("Spectra-Event", "ev-1")]
    );
    assert!(revert_trailers(None, Some("ev\nSpectra-Reverts: x")).is_err());
}

#[test]
fn one_failed_change_applies_none() {
    let dir = repo();
    let root = dir.path();
    let base = head(root).unwrap();
    let changes = [whole("ok.txt", "fine\n"), edit("README.md", "absent", "x")];
    let result = apply(root, "svc", "0000-abcdef12", None, &changes).unwrap();
    assert!(!result.success);
    assert!(result.commit.is_none());
    assert!(
        result.changes[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("another change failed")
    );
    assert!(
        rev(root, "refs/heads/spectra/svc/build-abcdef12")
            .unwrap()
            .is_none()
    );
    assert_eq!(head(root).unwrap(), base);
}

#[test]
fn apply_commits_on_a_branch_and_leaves_the_checkout_alone() {
    let dir = repo();
    let root = dir.path();
    let index_before = std::fs::read(root.join(".git/index")).unwrap();
    let changes = [
        whole("src/new.rs", "pub fn new() {}\n"),
        edit("src/lib.rs", "fn a() {}", "fn a() { b() }"),
        FileChange {
            path: "README.md".into(),
            action: Some("delete".into()),
            ..FileChange::default()
        },
    ];
    let result = apply(root, "svc", "run-1234abcd", Some("ev-1"), &changes).unwrap();
    assert!(result.success, "{result:?}");
    assert_eq!(result.branch, "spectra/svc/build-1234abcd");
    let commit = result.commit.unwrap();
    let show = |spec: &str| git_env(root, &["show", spec], &[], None).unwrap();
    assert!(show(&format!("{commit}:src/lib.rs")).starts_with("fn a() { b() }"));
    assert_eq!(show(&format!("{commit}:src/new.rs")), "pub fn new() {}");
    assert!(rev(root, &format!("{commit}:README.md")).unwrap().is_none());
    let message = git_env(root, &["log", "-1", "--format=%B", &commit], &[], None).unwrap();
    assert!(message.contains("Spectra-Run: run-1234abcd"), "{message}");
    assert!(message.contains("Spectra-Event: ev-1"), "{message}");
    assert_eq!(
        rev(root, &format!("{commit}^")).unwrap(),
        Some(result.base.clone())
    );
    assert!(
        result.diff_stat.contains("3 files changed"),
        "{}",
        result.diff_stat
    );
    assert_eq!(
        std::fs::read(root.join(".git/index")).unwrap(),
        index_before
    );
    assert_eq!(
        std::fs::read_to_string(root.join("README.md")).unwrap(),
        "hello\n"
    );
    assert!(!root.join("src/new.rs").exists());
    // The same build again changes nothing; removing the branch deletes it.
    let again = apply(root, "svc", "run-1234abcd", Some("ev-1"), &changes).unwrap();
    assert_eq!(again.commit, Some(commit.clone()));
    let removed = remove_branch(root, "svc", "run-1234abcd", &[]).unwrap();
    assert_eq!((removed.action, removed.commit), ("deleted", Some(commit)));
    assert_eq!(
        remove_branch(root, "svc", "run-1234abcd", &[])
            .unwrap()
            .action,
        "absent"
    );
    // A build branch the user is on is not pulled from under them.
    let again = apply(root, "svc", "run-1234abcd", Some("ev-1"), &changes).unwrap();
    assert!(again.success);
    git_env(root, &["switch", "-q", &again.branch], &[], None).unwrap();
    let refused = remove_branch(root, "svc", "run-1234abcd", &[]).unwrap_err();
    assert!(refused.to_string().contains("is checked out"), "{refused}");
}

#[test]
fn preview_shows_the_diff_and_writes_no_object() {
    let dir = repo();
    let root = dir.path();
    let count = || git_env(root, &["count-objects", "-v"], &[], None).unwrap();
    let before = count();
    let result = preview(
        root,
        "svc",
        "r-00000001",
        &[whole("brand-new.txt", "unique 8c1f\n")],
    )
    .unwrap();
    assert!(result.success);
    assert!(result.diff.unwrap().contains("+unique 8c1f"));
    assert!(result.diff_stat.contains("brand-new.txt"));
    assert_eq!(count(), before);
}

#[test]
fn run_ids_that_could_not_name_a_branch_are_refused() {
    assert!(check_run("0190f1e2-7b3c-7def-8abc-1234567890ab").is_ok());
    for bad in ["short", "a\nSpectra-Run: x", "--------", "ab/cd/efgh"] {
        assert!(check_run(bad).is_err(), "{bad}");
    }
}

#[test]
fn branch_names_use_the_random_end_of_the_run_id() {
    assert_eq!(
        branch_name("logs", "0190f1e2-7b3c-7def-8abc-1234567890ab"),
        "spectra/logs/build-567890ab"
    );
}

#[test]
fn a_change_whose_fields_ask_for_two_things_is_refused_not_guessed() {
    let dir = repo();
    let root = dir.path();
    let both = FileChange {
        content: Some("whole\n".into()),
        ..edit("src/lib.rs", "fn a() {}", "fn c() {}")
    };
    assert!(reason(root, both).contains("both `content`"));
    let delete_with_content = FileChange {
        action: Some("delete".into()),
        ..whole("src/lib.rs", "x\n")
    };
    assert!(reason(root, delete_with_content).contains("says `delete`"));
    // A missing `replace` would otherwise delete the searched text without a word.
    let no_replace = FileChange {
        replace: None,
        ..edit("src/lib.rs", "fn a() {}", "")
    };
    assert!(reason(root, no_replace).contains("without `replace`"));
    let lone_replace = FileChange {
        replace: Some("x".into()),
        ..whole("src/lib.rs", "y\n")
    };
    assert!(reason(root, lone_replace).contains("without `search`"));
}
